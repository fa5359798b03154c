//! A simulated Ceph cluster behind the simulated Rook operator: OSDs (one per host, as homelab
//! lays them out), replicated pools split into placement groups, a CRUSH-like placement across
//! hosts, and recovery that takes time in proportion to the data it copies. It answers the
//! `ceph` commands homelab sends through the Rook toolbox, in their JSON forms.
//!
//! Behaviour follows `docs/day2.md` (facts restated from ../shared/docs/day2.md §1.3–1.6):
//! - A PG wants `size` OSDs on distinct hosts among the OSDs that are `in`; a copy on an OSD
//!   that is down does not serve. PGs with fewer up copies than `min_size` (size − size/2) are
//!   inactive; fewer than `size` is degraded/undersized; a new home must be backfilled.
//! - Backfill runs at `recovery_bytes_per_sec` shared by the PGs that copy, and stalls
//!   (`backfill_toofull`) when the target OSD would pass the backfillfull ratio (0.90).
//! - A down OSD is marked out after `down_out` (600 s on real Ceph) unless its host carries
//!   `noout`, and only while at least 75 % of OSDs stay in (`mon_osd_min_in_ratio`).
//! - `safe-to-destroy N` holds only when no PG maps to N and no PG still needs N's copy.
//! - `purge` refuses an OSD that is up.
//! - A new OSD is created down and out; when its daemon first boots it is marked in, and
//!   the PGs that map to a booting OSD peer (inactive) for `peering`; after that the copies
//!   a new OSD still lacks are degraded and recovered at the recovery rate, so the window
//!   is sized by the data (day2.md §1.5: `PG_AVAILABILITY` … `peering`, then `PG_DEGRADED`).
//! - `ceph osd down` of an OSD whose daemon still runs marks it down, and the daemon reports
//!   itself up again after `rejoin` (its log: `wrongly marked me down`), peering again.
//! - Host buckets stay in the CRUSH map until `ceph osd crush rm HOST` (refused while the
//!   host has OSDs), which Rook's purge Job runs after purging a host's last OSD.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub const NEARFULL: f64 = 0.85;
pub const BACKFILLFULL: f64 = 0.90;
pub const FULL: f64 = 0.95;
pub const MIN_IN_RATIO: f64 = 0.75;

#[derive(Debug, Clone)]
pub struct CephConfig {
    pub pgs_per_pool: u32,
    /// Bytes per second the whole cluster copies while recovering.
    pub recovery_bytes_per_sec: f64,
    /// Bytes stored in each data pool (before replication).
    pub data_bytes: u64,
    /// A down OSD is marked out after this long.
    pub down_out: Duration,
    /// How long the PGs of an OSD that just booted stay peering (inactive).
    pub peering: Duration,
    /// An OSD marked down while its daemon runs reports itself up again after this long.
    pub rejoin: Duration,
}

impl Default for CephConfig {
    fn default() -> Self {
        CephConfig {
            pgs_per_pool: 16,
            // 40 GB in 0.4 s: the tests' fast time (real: ~100 MB/s on cheap disks).
            recovery_bytes_per_sec: 100e9,
            data_bytes: 40_000_000_000,
            down_out: Duration::from_secs(3),
            // Real: about 2 s for a handful of PGs, and seconds to rejoin.
            peering: Duration::from_millis(60),
            rejoin: Duration::from_millis(120),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Osd {
    pub id: u32,
    pub host: String,
    pub bytes: u64,
    /// Up in the OSD map (the daemon booted and nobody has marked it down since).
    pub up: bool,
    pub inn: bool,
    /// The daemon runs (its pod runs on a Ready node).
    pub running: bool,
    down_since: Option<Instant>,
    /// When it last booted: its PGs peer for `peering` after.
    booted: Option<Instant>,
    /// Holds no data yet: the copies it is to get are degraded, not merely misplaced.
    fresh: bool,
    /// Marked down while its daemon ran: it reports itself up again then.
    rejoin_at: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct Pg {
    /// Created on OSDs (a pool made before any OSD was in waits for them: `creating`).
    created: bool,
    /// OSDs holding a complete copy.
    have: Vec<u32>,
    /// Bytes copied so far to an OSD that is to hold a copy.
    backfill: HashMap<u32, f64>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub size: u32,
    pub stored: u64,
    /// `host` or `osd`.
    pub failure_domain: String,
    pgs: Vec<Pg>,
}

/// What one PG looks like now.
#[derive(Debug, Clone)]
pub struct PgView {
    pub pgid: String,
    pub state: String,
    pub up: Vec<u32>,
    pub acting: Vec<u32>,
}

pub struct SimCeph {
    pub cfg: CephConfig,
    pub osds: BTreeMap<u32, Osd>,
    pub pools: BTreeMap<String, Pool>,
    /// Hosts with `noout` set (Rook sets it on a drained host).
    pub noout: BTreeSet<String>,
    last: Option<Instant>,
    /// Bytes copied by recovery so far, and the time spent recovering (benchmarks subtract it).
    pub recovered_bytes: f64,
    pub recovering_time: Duration,
    /// Commands received (argv joined).
    pub log: Vec<String>,
    next_free: u32,
    /// Fault: an OSD reports full (HEALTH_ERR) whatever the data says.
    pub fault_full: bool,
    /// Host buckets of the CRUSH map.
    pub buckets: BTreeSet<String>,
    /// What the daemons logged (`osd.N … wrongly marked me down`).
    pub daemon_log: Vec<String>,
}

fn rank(pool: &str, pg: usize, osd: u32) -> u64 {
    let mut h: u64 = 1469598103934665603;
    for b in pool.bytes().chain((pg as u64).to_le_bytes()).chain(osd.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    h ^ (h >> 29)
}

impl SimCeph {
    pub fn new(cfg: CephConfig) -> SimCeph {
        SimCeph {
            cfg,
            osds: BTreeMap::new(),
            pools: BTreeMap::new(),
            noout: BTreeSet::new(),
            last: None,
            recovered_bytes: 0.0,
            recovering_time: Duration::ZERO,
            log: vec![],
            next_free: 0,
            fault_full: false,
            buckets: BTreeSet::new(),
            daemon_log: Vec::new(),
        }
    }

    /// A new OSD, down and out until its daemon boots (ids are handed out in order and never
    /// reused, as Ceph does); its host gets a bucket.
    pub fn add_osd(&mut self, host: &str, bytes: u64) -> u32 {
        let id = self.osds.keys().next_back().map(|k| k + 1).unwrap_or(0).max(self.next_free);
        self.next_free = id + 1;
        self.osds.insert(
            id,
            Osd {
                id,
                host: host.to_owned(),
                bytes,
                up: false,
                inn: false,
                running: false,
                down_since: None,
                booted: None,
                fresh: true,
                rejoin_at: None,
            },
        );
        self.buckets.insert(host.to_owned());
        id
    }

    /// A new OSD whose daemon runs at once.
    pub fn add_running_osd(&mut self, host: &str, bytes: u64) -> u32 {
        let id = self.add_osd(host, bytes);
        self.set_running(id, true);
        id
    }

    /// OSDs whose PGs peer now (booted less than `peering` ago).
    fn peering_osds(&self, now: Instant) -> BTreeSet<u32> {
        self.osds
            .values()
            .filter(|o| o.up && o.booted.is_some_and(|b| now.saturating_duration_since(b) < self.cfg.peering))
            .map(|o| o.id)
            .collect()
    }

    /// Creates or resizes a pool. A new pool starts clean on its first placement.
    pub fn set_pool(&mut self, name: &str, size: u32, failure_domain: &str, data: bool) {
        let now = Instant::now();
        self.tick(now);
        let stored = if data { self.cfg.data_bytes } else { 1_000_000 };
        let n = self.cfg.pgs_per_pool as usize;
        let new = !self.pools.contains_key(name);
        let p = self.pools.entry(name.to_owned()).or_insert_with(|| Pool {
            name: name.to_owned(),
            size,
            stored,
            failure_domain: failure_domain.to_owned(),
            pgs: vec![Pg::default(); n],
        });
        p.size = size.max(1);
        p.failure_domain = failure_domain.to_owned();
        if new {
            let name = name.to_owned();
            for i in 0..n {
                let want = self.want(&name, i);
                if let Some(p) = self.pools.get_mut(&name) {
                    p.pgs[i].created = !want.is_empty();
                    p.pgs[i].have = want;
                }
            }
        }
    }

    pub fn min_size(size: u32) -> u32 {
        size - size / 2
    }

    /// Where CRUSH puts PG `i` of `pool`: `size` in-OSDs on distinct failure domains, highest
    /// rank first (stable while the OSD set stays).
    fn want(&self, pool: &str, i: usize) -> Vec<u32> {
        let Some(p) = self.pools.get(pool) else { return vec![] };
        let mut cands: Vec<&Osd> = self.osds.values().filter(|o| o.inn).collect();
        cands.sort_by_key(|o| std::cmp::Reverse(rank(pool, i, o.id)));
        let mut hosts = BTreeSet::new();
        let mut out = Vec::new();
        for o in cands {
            if out.len() as u32 >= p.size {
                break;
            }
            if p.failure_domain == "host" && !hosts.insert(o.host.clone()) {
                continue;
            }
            out.push(o.id);
        }
        out
    }

    fn pg_bytes(p: &Pool) -> f64 {
        p.stored as f64 / p.pgs.len().max(1) as f64
    }

    /// Bytes each OSD holds now (complete copies plus partial backfill).
    pub fn used(&self) -> HashMap<u32, f64> {
        let mut u: HashMap<u32, f64> = HashMap::new();
        for p in self.pools.values() {
            let b = Self::pg_bytes(p);
            for pg in &p.pgs {
                for o in &pg.have {
                    *u.entry(*o).or_default() += b;
                }
                for (o, done) in &pg.backfill {
                    *u.entry(*o).or_default() += done;
                }
            }
        }
        u
    }

    /// Advances recovery and the down → out timer to `now`.
    pub fn tick(&mut self, now: Instant) {
        let dt = self.last.map(|l| now.saturating_duration_since(l)).unwrap_or_default();
        self.last = Some(now);
        // A daemon that was marked down while it ran says so and boots again.
        for o in self.osds.values_mut() {
            if o.running && !o.up && o.rejoin_at.is_some_and(|t| now >= t) {
                o.up = true;
                o.booted = Some(now);
                o.down_since = None;
                o.rejoin_at = None;
                self.daemon_log.push(format!("osd.{} map e1 wrongly marked me down", o.id));
            }
        }
        let peering = self.peering_osds(now);
        // Down OSDs are marked out after the interval, within the in-ratio.
        let total = self.osds.len().max(1) as f64;
        let ids: Vec<u32> = self.osds.keys().copied().collect();
        for id in ids {
            let Some(o) = self.osds.get(&id) else { continue };
            let due =
                !o.up && o.inn && o.down_since.is_some_and(|t| now.saturating_duration_since(t) >= self.cfg.down_out);
            if due && !self.noout.contains(&o.host) {
                // The in-ratio is read before marking (OSDMonitor::can_mark_out).
                let in_now = self.osds.values().filter(|o| o.inn).count() as f64;
                if in_now / total >= MIN_IN_RATIO - 1e-9
                    && let Some(o) = self.osds.get_mut(&id)
                {
                    o.inn = false;
                }
            }
        }
        // Backfill: the budget of this interval is shared by the PGs that copy.
        let up: BTreeSet<u32> = self.osds.values().filter(|o| o.up).map(|o| o.id).collect();
        let caps: HashMap<u32, f64> = self.osds.values().map(|o| (o.id, o.bytes as f64)).collect();
        let mut used = self.used();
        let names: Vec<String> = self.pools.keys().cloned().collect();
        let mut jobs: Vec<(String, usize, u32)> = Vec::new();
        for name in &names {
            let n = self.pools[name].pgs.len();
            for i in 0..n {
                let want = self.want(name, i);
                let p = self.pools.get_mut(name).map(|p| &mut p.pgs[i]);
                let Some(pg) = p else { continue };
                if !pg.created {
                    // Nothing stored yet: the PG is made where CRUSH puts it, once it can be.
                    if !want.is_empty() && want.iter().all(|o| up.contains(o)) {
                        pg.created = true;
                        pg.have = want.clone();
                    }
                    continue;
                }
                pg.have.retain(|o| caps.contains_key(o));
                pg.backfill.retain(|o, _| want.contains(o));
                let source = pg.have.iter().any(|o| up.contains(o));
                if want.iter().chain(pg.have.iter()).any(|o| peering.contains(o)) {
                    continue; // peering: nothing moves yet
                }
                for o in &want {
                    if !pg.have.contains(o) && up.contains(o) && source {
                        jobs.push((name.clone(), i, *o));
                    }
                }
            }
        }
        let budget = self.cfg.recovery_bytes_per_sec * dt.as_secs_f64();
        if !jobs.is_empty() && budget > 0.0 {
            let share = budget / jobs.len() as f64;
            let mut moved = false;
            for (name, i, o) in jobs {
                let b = Self::pg_bytes(&self.pools[&name]);
                let cap = caps.get(&o).copied().unwrap_or(1.0);
                let u = used.get(&o).copied().unwrap_or(0.0);
                let Some(pg) = self.pools.get_mut(&name).map(|p| &mut p.pgs[i]) else { continue };
                let done = pg.backfill.get(&o).copied().unwrap_or(0.0);
                let step = share.min(b - done);
                if (u + step) / cap > BACKFILLFULL {
                    continue; // backfill_toofull
                }
                moved = true;
                *used.entry(o).or_default() += step;
                self.recovered_bytes += step;
                if done + step >= b - 1e-6 {
                    pg.backfill.remove(&o);
                    pg.have.push(o);
                } else {
                    pg.backfill.insert(o, done + step);
                }
            }
            if moved {
                self.recovering_time += dt;
            }
        }
        // A PG whose wanted copies are all complete and up drops the copies it no longer wants.
        for name in &names {
            let n = self.pools[name].pgs.len();
            for i in 0..n {
                let want = self.want(name, i);
                let Some(pg) = self.pools.get_mut(name).map(|p| &mut p.pgs[i]) else { continue };
                if want.iter().all(|o| pg.have.contains(o) && up.contains(o)) {
                    pg.have.retain(|o| want.contains(o));
                }
            }
        }
        // An OSD that has every copy it is to hold is no longer new.
        let fresh: Vec<u32> = self.osds.values().filter(|o| o.fresh && o.up).map(|o| o.id).collect();
        for id in fresh {
            let lacks = self
                .pools
                .values()
                .any(|p| (0..p.pgs.len()).any(|i| self.want(&p.name, i).contains(&id) && !p.pgs[i].have.contains(&id)));
            if !lacks && let Some(o) = self.osds.get_mut(&id) {
                o.fresh = false;
            }
        }
    }

    /// Every PG with its state in Ceph's words.
    pub fn pgs(&self) -> Vec<PgView> {
        let up: BTreeSet<u32> = self.osds.values().filter(|o| o.up).map(|o| o.id).collect();
        let caps: HashMap<u32, f64> = self.osds.values().map(|o| (o.id, o.bytes as f64)).collect();
        let used = self.used();
        let peering = self.peering_osds(self.last.unwrap_or_else(Instant::now));
        let fresh: BTreeSet<u32> = self.osds.values().filter(|o| o.fresh && o.up).map(|o| o.id).collect();
        let mut out = Vec::new();
        for (pi, p) in self.pools.values().enumerate() {
            for (i, pg) in p.pgs.iter().enumerate() {
                let want = self.want(&p.name, i);
                let acting: Vec<u32> = pg.have.iter().copied().filter(|o| up.contains(o)).collect();
                let mut s: Vec<&str> = Vec::new();
                if !pg.created {
                    s.push("creating");
                } else if want.iter().chain(pg.have.iter()).any(|o| peering.contains(o)) {
                    // A map change it takes part in: the PG peers before it serves again.
                    if want != pg.have {
                        s.push("remapped");
                    }
                    s.push("peering");
                } else if (acting.len() as u32) < Self::min_size(p.size) {
                    s.extend(["undersized", "degraded", "peered"]);
                } else {
                    s.push("active");
                    let complete = want.len() as u32 == p.size
                        && want.iter().all(|o| pg.have.contains(o) && up.contains(o))
                        && pg.have.len() == want.len();
                    if complete {
                        s.push("clean");
                    } else {
                        let missing: Vec<u32> = want.iter().copied().filter(|o| !pg.have.contains(o)).collect();
                        // Copies a new OSD is to get are recovered as degraded objects.
                        let to_new = !acting.is_empty() && missing.iter().any(|o| fresh.contains(o));
                        if to_new {
                            s.push("recovering");
                        }
                        if (acting.len() as u32) < p.size {
                            s.push("undersized");
                            s.push("degraded");
                        } else if to_new {
                            s.push("degraded");
                        }
                        if !missing.is_empty() && !to_new {
                            let full = missing.iter().any(|o| {
                                used.get(o).copied().unwrap_or(0.0) / caps.get(o).copied().unwrap_or(1.0)
                                    > BACKFILLFULL - 0.001
                            });
                            if full {
                                s.push("backfill_toofull");
                            } else if missing.iter().any(|o| up.contains(o)) && !acting.is_empty() {
                                s.push("backfilling");
                            }
                        } else if missing.is_empty() && acting.len() as u32 >= p.size {
                            s.push("remapped");
                        }
                    }
                }
                out.push(PgView { pgid: format!("{}.{:x}", pi + 1, i), state: s.join("+"), up: want, acting });
            }
        }
        out
    }

    /// Whether every PG is active+clean.
    pub fn clean(&self) -> bool {
        self.pgs().iter().all(|p| p.state == "active+clean")
    }

    /// OSD ids that could be destroyed now without reducing durability, or the PG count that
    /// still needs each of the others.
    pub fn safe_to_destroy(&self, id: u32) -> Result<(), usize> {
        let up: BTreeSet<u32> = self.osds.values().filter(|o| o.up).map(|o| o.id).collect();
        let mut needed = 0;
        for p in self.pools.values() {
            for (i, pg) in p.pgs.iter().enumerate() {
                let want = self.want(&p.name, i);
                let others_complete = want.iter().filter(|o| **o != id).all(|o| pg.have.contains(o) && up.contains(o))
                    && want.len() as u32 >= p.size.min(self.hosts_in(&p.failure_domain));
                if want.contains(&id) || (pg.have.contains(&id) && !others_complete) {
                    needed += 1;
                }
            }
        }
        if needed == 0 { Ok(()) } else { Err(needed) }
    }

    fn hosts_in(&self, fd: &str) -> u32 {
        if fd == "host" {
            self.osds.values().filter(|o| o.inn).map(|o| o.host.clone()).collect::<BTreeSet<_>>().len() as u32
        } else {
            self.osds.values().filter(|o| o.inn).count() as u32
        }
    }

    /// The daemon of OSD `id` starts (it boots: up, and in on its first boot) or stops
    /// (down at once: a daemon that shuts down tells the monitors).
    pub fn set_running(&mut self, id: u32, running: bool) {
        let now = Instant::now();
        self.tick(now);
        if let Some(o) = self.osds.get_mut(&id) {
            if running && !o.running {
                o.up = true;
                o.booted = Some(now);
                o.down_since = None;
                o.rejoin_at = None;
                if o.fresh {
                    o.inn = true;
                }
            }
            if !running {
                if o.up {
                    o.down_since = Some(now);
                }
                o.up = false;
                o.rejoin_at = None;
            }
            o.running = running;
        }
    }

    /// `ceph osd down`: marked down now; a daemon that still runs boots again after `rejoin`.
    pub fn mark_down(&mut self, id: u32) {
        let now = Instant::now();
        if let Some(o) = self.osds.get_mut(&id)
            && o.up
        {
            o.up = false;
            o.down_since = Some(now);
            if o.running {
                o.rejoin_at = Some(now + self.cfg.rejoin);
            }
        }
    }

    /// Removes OSD `id` from the maps (`ceph osd purge`).
    pub fn purge(&mut self, id: u32) -> Result<(), String> {
        self.tick(Instant::now());
        match self.osds.get(&id) {
            None => Err(format!("osd.{id} does not exist")),
            Some(o) if o.up => Err(format!("osd.{id} is not `down`.")),
            Some(_) => {
                self.osds.remove(&id);
                Ok(())
            }
        }
    }

    /// Health status and checks (name → (severity, message)), as `ceph status` and the
    /// CephCluster's `status.ceph` report them.
    pub fn health(&self) -> (String, BTreeMap<String, (String, String)>) {
        let mut checks = BTreeMap::new();
        let down: Vec<&Osd> = self.osds.values().filter(|o| !o.up && o.inn).collect();
        if !down.is_empty() {
            checks.insert("OSD_DOWN".into(), ("HEALTH_WARN".into(), format!("{} osds down", down.len())));
            let hosts: BTreeSet<&str> = down.iter().map(|o| o.host.as_str()).collect();
            let host_down =
                hosts.iter().filter(|h| self.osds.values().filter(|o| o.host == **h).all(|o| !o.up)).count();
            if host_down > 0 {
                checks.insert(
                    "OSD_HOST_DOWN".into(),
                    ("HEALTH_WARN".into(), format!("{host_down} host ({} osds) down", down.len())),
                );
            }
        }
        let pgs = self.pgs();
        let degraded = pgs.iter().filter(|p| p.state.contains("degraded")).count();
        let undersized = pgs.iter().filter(|p| p.state.contains("undersized")).count();
        let inactive = pgs.iter().filter(|p| !p.state.starts_with("active")).count();
        let toofull = pgs.iter().filter(|p| p.state.contains("backfill_toofull")).count();
        let peering = pgs.iter().filter(|p| p.state.contains("peering")).count();
        if inactive > 0 {
            let mut m = format!("Reduced data availability: {inactive} pgs inactive");
            if peering > 0 {
                m.push_str(&format!(", {peering} pgs peering"));
            }
            checks.insert("PG_AVAILABILITY".into(), ("HEALTH_WARN".into(), m));
        }
        if degraded > 0 {
            let mut m = format!("Degraded data redundancy: {degraded} pgs degraded");
            if undersized > 0 {
                m.push_str(&format!(", {undersized} pgs undersized"));
            }
            checks.insert("PG_DEGRADED".into(), ("HEALTH_WARN".into(), m));
        }
        if toofull > 0 {
            checks.insert(
                "PG_BACKFILL_FULL".into(),
                ("HEALTH_WARN".into(), format!("Low space hindering backfill: {toofull} pgs backfill_toofull")),
            );
        }
        let used = self.used();
        for o in self.osds.values() {
            let r = used.get(&o.id).copied().unwrap_or(0.0) / o.bytes.max(1) as f64;
            let (key, sev, what) = if r >= FULL {
                ("OSD_FULL", "HEALTH_ERR", "full")
            } else if r >= BACKFILLFULL {
                ("OSD_BACKFILLFULL", "HEALTH_WARN", "backfillfull")
            } else if r >= NEARFULL {
                ("OSD_NEARFULL", "HEALTH_WARN", "nearfull")
            } else {
                continue;
            };
            checks.insert(key.into(), (sev.into(), format!("1 {what} osd(s)")));
        }
        if self.fault_full {
            checks.insert("OSD_FULL".into(), ("HEALTH_ERR".into(), "1 full osd(s)".into()));
        }
        let status = if checks.values().any(|(s, _)| s == "HEALTH_ERR") {
            "HEALTH_ERR"
        } else if checks.is_empty() {
            "HEALTH_OK"
        } else {
            "HEALTH_WARN"
        };
        (status.into(), checks)
    }

    pub fn bytes_total(&self) -> u64 {
        self.osds.values().filter(|o| o.up).map(|o| o.bytes).sum()
    }

    pub fn bytes_used(&self) -> u64 {
        self.used().values().sum::<f64>() as u64
    }

    /// Runs a `ceph …` command as the toolbox would: (exit code, stdout, stderr).
    pub fn command(&mut self, args: &[&str]) -> (i32, String, String) {
        self.tick(Instant::now());
        self.log.push(args.join(" "));
        let args: Vec<&str> = args.iter().copied().filter(|a| !matches!(*a, "-f" | "--format" | "json")).collect();
        let osd_id = |s: &str| s.trim_start_matches("osd.").parse::<u32>().ok();
        match args.as_slice() {
            ["status"] => {
                let (status, checks) = self.health();
                let pgs = self.pgs();
                let mut by: BTreeMap<String, usize> = BTreeMap::new();
                for p in &pgs {
                    *by.entry(p.state.clone()).or_default() += 1;
                }
                let checks: serde_json::Map<String, serde_json::Value> = checks
                    .into_iter()
                    .map(|(k, (sev, msg))| (k, serde_json::json!({"severity": sev, "summary": {"message": msg}})))
                    .collect();
                let v = serde_json::json!({
                    "health": {"status": status, "checks": checks},
                    "osdmap": {"num_osds": self.osds.len(), "num_up_osds": self.osds.values().filter(|o| o.up).count(), "num_in_osds": self.osds.values().filter(|o| o.inn).count()},
                    "pgmap": {"num_pgs": pgs.len(), "pgs_by_state": by.into_iter().map(|(s, c)| serde_json::json!({"state_name": s, "count": c})).collect::<Vec<_>>(), "bytes_used": self.bytes_used(), "bytes_total": self.bytes_total()},
                });
                (0, v.to_string(), String::new())
            }
            ["health", "detail"] => {
                let (status, checks) = self.health();
                let checks: serde_json::Map<String, serde_json::Value> = checks
                    .into_iter()
                    .map(|(k, (sev, msg))| {
                        (k, serde_json::json!({"severity": sev, "summary": {"message": msg, "count": 1}, "detail": [{"message": msg}], "muted": false}))
                    })
                    .collect();
                (0, serde_json::json!({"status": status, "checks": checks, "mutes": []}).to_string(), String::new())
            }
            // No daemon of the simulated Ceph ever crashes: the crash module lists none.
            ["crash", "ls"] => (0, "[]".into(), String::new()),
            ["osd", "tree"] => {
                let mut nodes = Vec::new();
                let hosts: BTreeSet<&str> =
                    self.osds.values().map(|o| o.host.as_str()).chain(self.buckets.iter().map(String::as_str)).collect();
                for (i, h) in hosts.iter().enumerate() {
                    let kids: Vec<u32> = self.osds.values().filter(|o| o.host == *h).map(|o| o.id).collect();
                    nodes.push(serde_json::json!({"id": -(i as i64) - 2, "name": h, "type": "host", "children": kids}));
                }
                for o in self.osds.values() {
                    nodes.push(serde_json::json!({"id": o.id, "name": format!("osd.{}", o.id), "type": "osd", "status": if o.up { "up" } else { "down" }, "reweight": if o.inn { 1.0 } else { 0.0 }}));
                }
                (0, serde_json::json!({"nodes": nodes, "stray": []}).to_string(), String::new())
            }
            ["osd", "df"] => {
                let used = self.used();
                let nodes: Vec<serde_json::Value> = self
                    .osds
                    .values()
                    .map(|o| {
                        let u = used.get(&o.id).copied().unwrap_or(0.0);
                        serde_json::json!({"id": o.id, "name": format!("osd.{}", o.id), "kb": o.bytes / 1024, "kb_used": (u / 1024.0) as u64, "utilization": 100.0 * u / o.bytes.max(1) as f64, "status": if o.up { "up" } else { "down" }, "reweight": if o.inn { 1.0 } else { 0.0 }})
                    })
                    .collect();
                (0, serde_json::json!({"nodes": nodes}).to_string(), String::new())
            }
            ["osd", "pool", "ls", "detail"] => {
                let v: Vec<serde_json::Value> = self
                    .pools
                    .values()
                    .enumerate()
                    .map(|(i, p)| serde_json::json!({"pool_id": i + 1, "pool_name": p.name, "size": p.size, "min_size": Self::min_size(p.size), "pg_num": p.pgs.len(), "failure_domain": p.failure_domain, "stored": p.stored}))
                    .collect();
                (0, serde_json::Value::Array(v).to_string(), String::new())
            }
            ["pg", "ls"] => {
                let v: Vec<serde_json::Value> = self
                    .pgs()
                    .into_iter()
                    .map(|p| serde_json::json!({"pgid": p.pgid, "state": p.state, "up": p.up, "acting": p.acting}))
                    .collect();
                (0, serde_json::json!({"pg_ready": true, "pg_stats": v}).to_string(), String::new())
            }
            ["osd", "out", o] => match osd_id(o).and_then(|id| self.osds.get_mut(&id)) {
                None => (2, String::new(), format!("Error ENOENT: {o} does not exist\n")),
                Some(osd) if !osd.inn => (0, String::new(), format!("osd.{} is already out. \n", osd.id)),
                Some(osd) => {
                    osd.inn = false;
                    (0, String::new(), format!("marked out osd.{}. \n", osd.id))
                }
            },
            ["osd", "down", o] => match osd_id(o).and_then(|id| self.osds.get(&id)).map(|x| (x.id, x.up)) {
                None => (2, String::new(), format!("Error ENOENT: {o} does not exist\n")),
                Some((id, false)) => (0, String::new(), format!("osd.{id} is already down. \n")),
                // A daemon that still runs reports itself up again within seconds.
                Some((id, true)) => {
                    self.mark_down(id);
                    (0, String::new(), format!("marked down osd.{id}. \n"))
                }
            },
            ["osd", "crush", "rm", name] => {
                if self.osds.values().any(|x| x.host == *name) {
                    (39, String::new(), "Error ENOTEMPTY: (39) Directory not empty\n".into())
                } else if self.buckets.remove(*name) {
                    (0, String::new(), format!("removed item id -2 name '{name}' from crush map\n"))
                } else {
                    (0, String::new(), format!("device '{name}' does not appear in the crush map\n"))
                }
            }
            ["osd", "safe-to-destroy", o] => match osd_id(o) {
                Some(id) if self.osds.contains_key(&id) => match self.safe_to_destroy(id) {
                    Ok(()) => (
                        0,
                        serde_json::json!({"safe_to_destroy": [id], "active": [], "missing_stats": [], "stored_pgs": []})
                            .to_string(),
                        format!("OSD(s) {id} are safe to destroy without reducing data durability.\n"),
                    ),
                    Err(n) => (
                        16,
                        serde_json::json!({"safe_to_destroy": [], "active": [], "missing_stats": [], "stored_pgs": [id]})
                            .to_string(),
                        format!("Error EBUSY: OSD(s) {id} have {n} pgs currently mapped to them.\n"),
                    ),
                },
                // A purged OSD destroys nothing more.
                Some(id) => (
                    0,
                    serde_json::json!({"safe_to_destroy": [id], "active": [], "missing_stats": [], "stored_pgs": []})
                        .to_string(),
                    format!("OSD(s) {id} are safe to destroy without reducing data durability.\n"),
                ),
                None => (22, String::new(), format!("Error EINVAL: invalid osd id {o}\n")),
            },
            ["osd", "purge", o, "--yes-i-really-mean-it"] | ["osd", "purge", o, "--force", "--yes-i-really-mean-it"] => {
                match osd_id(o) {
                    Some(id) => match self.purge(id) {
                        Ok(()) => (0, String::new(), format!("purged osd.{id}\n")),
                        Err(e) if e.contains("does not exist") => (0, String::new(), format!("{e}\n")),
                        Err(e) => (16, String::new(), format!("Error EBUSY: {e}\n")),
                    },
                    None => (22, String::new(), format!("Error EINVAL: invalid osd id {o}\n")),
                }
            }
            _ => (22, String::new(), format!("no valid command found; 10 closest matches:\n{}\n", args.join(" "))),
        }
    }
}
