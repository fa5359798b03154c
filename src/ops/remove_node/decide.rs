//! The pure half of `remove-node`: from what was observed, whether removing the machine is
//! safe (and if not, why and what is safe instead), and the steps that are still to do, in
//! order. No I/O here; `super` observes and acts. Facts: docs/day2.md §1.

use crate::ceph::{Osd, Pg, Pool, Status};

/// Everything `remove-node` read before deciding.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub host: String,
    pub is_control_plane: bool,
    /// Control planes declared in the file, this one included.
    pub control_planes: usize,
    /// The machine answers SSH.
    pub reachable: bool,
    /// MAAS's power state (`on`, `off`, `unknown`) and status name.
    pub power: Option<String>,
    pub maas_status: Option<String>,
    /// The Kubernetes Node: exists, Ready, tainted out-of-service.
    pub node_exists: bool,
    pub node_ready: bool,
    pub out_of_service: bool,
    /// Other nodes that are not Ready.
    pub others_not_ready: Vec<String>,
    /// dqlite members as a survivor sees them (IPs), and this machine's IP.
    pub voters: Vec<String>,
    pub standby: Vec<String>,
    pub ip: Option<String>,
    /// A worker that still belongs to the cluster (its own `microk8s status` says so).
    pub worker_joined: bool,
    /// Ceph, when the cluster has Rook.
    pub ceph: Option<CephView>,
    /// Kafka Ready (None: no Kafka).
    pub kafka_ready: Option<bool>,
    /// Replicas of the Rook operator Deployment.
    pub operator_replicas: Option<i64>,
    /// The CephCluster still lists this host under storage.nodes.
    pub in_ceph_spec: bool,
    /// The file still has this machine.
    pub in_file: bool,
    /// MicroK8s ≤ 1.27: the machines' `/etc/hosts` blocks list the cluster.
    pub host_entries: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CephView {
    pub status: Option<Status>,
    pub osds: Vec<Osd>,
    pub pools: Vec<Pool>,
    pub pgs: Vec<Pg>,
    /// Failure domain per pool name (`host` unless the file says `osd`).
    pub failure_domains: Vec<(String, String)>,
    /// The CRUSH map's host buckets (a host whose OSDs are all purged may still have one).
    pub buckets: Vec<String>,
}

impl CephView {
    pub fn osds_of(&self, host: &str) -> Vec<&Osd> {
        self.osds.iter().filter(|o| o.host == host).collect()
    }
}

impl Observed {
    pub fn in_dqlite(&self) -> bool {
        self.ip.as_ref().is_some_and(|ip| self.voters.contains(ip) || self.standby.contains(ip))
    }
    pub fn is_voter(&self) -> bool {
        self.ip.as_ref().is_some_and(|ip| self.voters.contains(ip))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub safe: String,
}

/// The machine is to be removed as dead (asked, or found unreachable).
pub fn treat_as_dead(o: &Observed, asked_dead: bool) -> bool {
    asked_dead || (!o.reachable && o.node_exists && !o.node_ready)
}

/// Whether Ceph is still taking in a change of its OSDs ([`crate::ceph::settling`]), so
/// that the removal waits before it judges.
pub fn settling(c: &CephView, joining: Option<&str>, dead: bool) -> Option<String> {
    crate::ceph::settling(c.status.as_ref(), &c.osds, joining.as_slice(), dead)
}

/// Whether removing the machine now could lose data or quorum. `None`: it is safe.
pub fn refusal(o: &Observed, dead: bool, yes: bool) -> Option<Refusal> {
    let h = &o.host;
    let refuse = |reason: String, safe: String| Some(Refusal { reason, safe });
    if dead && o.reachable {
        return refuse(
            format!("{h} answers SSH, so it is not dead"),
            format!("retire it while it runs: `homelab remove-node {h}` (without --dead) copies its data off first"),
        );
    }
    if dead && o.power.as_deref() == Some("on") {
        return refuse(
            format!(
                "MAAS reports {h} powered on, though it does not answer SSH; forcing it out while it may still write to its disks could corrupt data"
            ),
            format!("power it off (MAAS: select {h} → Power off, or unplug it), then run this again"),
        );
    }
    let survivors_cp = o.control_planes - usize::from(o.is_control_plane);
    if o.is_control_plane && survivors_cp < 3 && !yes {
        return refuse(
            format!(
                "removing {h} leaves {survivors_cp} control plane{}: you will have no datastore HA",
                if survivors_cp == 1 { "" } else { "s" }
            ),
            format!(
                "`homelab replace-node {h} NEW_MAC` keeps it (the new PC joins first); or pass --yes to accept running without HA"
            ),
        );
    }
    // The datastore must keep a majority of its voters while this one goes.
    if o.is_voter() {
        let voters = o.voters.len();
        let lost_others = o.others_not_ready.len();
        let alive_after = voters.saturating_sub(1).saturating_sub(lost_others);
        if alive_after * 2 <= voters.saturating_sub(1) && voters > 1 {
            return refuse(
                format!("the datastore has {voters} voters and {} other node(s) are not Ready ({}): removing {h} could lose its majority", lost_others, o.others_not_ready.join(", ")),
                "bring the other nodes back first (`homelab status`); see microk8s.io/docs/restore-quorum if the majority is already lost".into(),
            );
        }
    }
    if !dead && !o.others_not_ready.is_empty() {
        return refuse(
            format!("other nodes are not Ready: {}", o.others_not_ready.join(", ")),
            "bring them back first (`homelab status` shows why); removing a machine now would leave less than the cluster expects".into(),
        );
    }
    if !dead && o.kafka_ready == Some(false) {
        return refuse(
            "Kafka is not Ready, so draining a broker could take a partition offline".into(),
            "wait until `homelab status` shows Kafka Ready, then run this again".into(),
        );
    }
    if let Some(c) = &o.ceph
        && let Some(r) = ceph_refusal(h, c, dead)
    {
        return Some(r);
    }
    None
}

fn ceph_refusal(h: &str, c: &CephView, dead: bool) -> Option<Refusal> {
    let mine: Vec<u32> = c.osds_of(h).iter().map(|o| o.id).collect();
    // Nothing of this host in Ceph any more: the Ceph part is done.
    if mine.is_empty() {
        return None;
    }
    let refuse = |reason: String, safe: String| Some(Refusal { reason, safe });
    let others_down: Vec<String> =
        c.osds.iter().filter(|o| o.host != h && !o.up).map(|o| format!("osd.{} on {}", o.id, o.host)).collect();
    if !others_down.is_empty() {
        return refuse(
            format!(
                "Ceph has other OSDs down ({}): removing {h} too could lose the last copy of some data",
                others_down.join(", ")
            ),
            "bring those OSDs back first (`homelab status`)".into(),
        );
    }
    // The last copy of any PG.
    for pg in &c.pgs {
        if !pg.acting.is_empty() && pg.acting.iter().all(|o| mine.contains(o)) && !pg.state.contains("clean") {
            return refuse(
                format!("PG {} ({}) has its only copy on {h}", pg.pgid, pg.state),
                "wait until Ceph has copied it elsewhere (`homelab status`), then run this again".into(),
            );
        }
    }
    if let Some(s) = &c.status {
        // A dead host explains its OSDs down and the PGs that lost a copy; nothing else.
        let explained = ["OSD_DOWN", "OSD_HOST_DOWN", "PG_DEGRADED", "PG_AVAILABILITY", "MON_DOWN"];
        let other: Vec<String> = s
            .checks
            .iter()
            .filter(|(k, _)| !(dead && explained.contains(&k.as_str())))
            .map(|(k, m)| format!("{k}: {m}"))
            .collect();
        if !other.is_empty() {
            return refuse(
                format!("Ceph is {} for a reason other than removing {h}: {}", s.health, other.join("; ")),
                "fix that first (`homelab status`; the toolbox's `ceph health detail`), or wait for HEALTH_OK, then run this again".into(),
            );
        }
    }
    // Can the survivors place every pool's replicas across its failure domain?
    let hosts_after: std::collections::BTreeSet<&str> =
        c.osds.iter().filter(|o| o.host != h && o.inn).map(|o| o.host.as_str()).collect();
    let osds_after = c.osds.iter().filter(|o| o.host != h && o.inn).count();
    for p in c.pools.iter().filter(|p| p.name != ".mgr") {
        let fd = c.failure_domains.iter().find(|(n, _)| *n == p.name).map(|(_, f)| f.as_str()).unwrap_or("host");
        let room = if fd == "host" { hosts_after.len() } else { osds_after };
        if (p.size as usize) > room {
            return refuse(
                format!(
                    "pool {} keeps {} copies across {fd}s; without {h} only {room} {fd}{} remain, so its data could never be whole again",
                    p.name,
                    p.size,
                    if room == 1 { "" } else { "s" }
                ),
                format!(
                    "add a PC first (`homelab replace-node {h} NEW_MAC` does both), or lower the pool's `replicas` in cluster.yaml and run `homelab up`"
                ),
            );
        }
    }
    // Capacity: every byte stored times its copies must fit below backfillfull.
    let cap_after: u64 = c.osds.iter().filter(|o| o.host != h).map(|o| o.bytes).sum();
    let raw: f64 = c.pools.iter().map(|p| p.stored as f64 * f64::from(p.size)).sum();
    let used_all: u64 = c.osds.iter().map(|o| o.used).sum();
    let need = raw.max(used_all as f64);
    if need > crate::ceph::BACKFILLFULL * cap_after as f64 {
        return refuse(
            format!(
                "the other OSDs cannot hold the data: {} stored with its copies, {} of room below the {:.0} % backfill limit",
                human(need as u64),
                human((crate::ceph::BACKFILLFULL * cap_after as f64) as u64),
                crate::ceph::BACKFILLFULL * 100.0
            ),
            format!("free space first, or add a PC before removing {h} (`homelab replace-node {h} NEW_MAC`)"),
        );
    }
    None
}

fn human(b: u64) -> String {
    let gb = b as f64 / 1e9;
    if gb >= 1000.0 { format!("{:.1} TB", gb / 1000.0) } else { format!("{gb:.1} GB") }
}

/// One step of the removal, in the words the plan and the run both print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Taint,
    RemoveNode { survivor: String, force: bool },
    WaitKafka,
    OsdOut(u32),
    WaitSafe(u32),
    StopOperator,
    StopOsd(u32),
    Purge { id: u32, force: bool },
    RemoveBucket,
    CephSpec,
    StartOperator,
    Drain,
    Leave,
    Release { erase: Option<String> },
    HostsFiles,
    EditFile,
}

impl Step {
    pub fn words(&self, host: &str) -> String {
        match self {
            Step::Taint => format!(
                "taint node {host} node.kubernetes.io/out-of-service=nodeshutdown:NoExecute so its pods are deleted and their volumes detach"
            ),
            Step::RemoveNode { survivor, force } => {
                format!("microk8s remove-node {host}{} on {survivor}", if *force { " --force" } else { "" })
            }
            Step::WaitKafka => "wait for Kafka Ready with its brokers on the other machines".into(),
            Step::OsdOut(id) => format!("ceph osd out osd.{id}: Ceph copies its data to the other OSDs"),
            Step::WaitSafe(id) => format!("wait until ceph osd safe-to-destroy {id} (all its PGs copied elsewhere)"),
            Step::StopOperator => {
                "stop the Rook operator (rook-ceph-operator to 0 replicas) so it does not re-create the OSD".into()
            }
            Step::StopOsd(id) => format!("stop osd.{id} (rook-ceph-osd-{id} to 0 replicas)"),
            Step::Purge { id, force } => format!(
                "purge osd.{id} with Rook's osd-purge Job{}",
                if *force { " (--force-osd-removal: its data can never become safe)" } else { "" }
            ),
            Step::RemoveBucket => {
                format!(
                    "remove {host}'s host bucket from the CRUSH map if the purge left it (ceph osd crush rm {host})"
                )
            }
            Step::CephSpec => {
                format!("remove {host} from the CephCluster's storage.nodes and size the .mgr pool for the hosts left")
            }
            Step::StartOperator => "start the Rook operator again (1 replica)".into(),
            Step::Drain => format!("drain {host}: cordon it and evict its pods (PodDisruptionBudgets respected)"),
            Step::Leave => format!("microk8s leave on {host}"),
            Step::Release { erase: Some(e) } => format!("release {host} in MAAS, erasing its disks ({e})"),
            Step::Release { erase: None } => format!("release {host} in MAAS (no erase)"),
            Step::HostsFiles => format!("bring the /etc/hosts blocks of the other machines up to date without {host}"),
            Step::EditFile => format!("delete {host}'s entry from the cluster file"),
        }
    }

    /// Time budget on real hardware, in seconds.
    pub fn budget(&self) -> u64 {
        match self {
            Step::Taint
            | Step::StopOperator
            | Step::StopOsd(_)
            | Step::RemoveBucket
            | Step::CephSpec
            | Step::EditFile
            | Step::HostsFiles => 10,
            Step::RemoveNode { .. } => 60,
            Step::WaitKafka => 600,
            Step::OsdOut(_) => 10,
            // Recovery copies the host's data: ~100 MB/s on cheap disks and 1 GbE.
            Step::WaitSafe(_) => 3 * 3600,
            Step::Purge { .. } => 180,
            Step::StartOperator => 120,
            Step::Drain => 600,
            Step::Leave => 120,
            Step::Release { .. } => 600,
        }
    }

    /// Whether the step reports its own changes through the gate, in the words of the phase
    /// it borrows (the CephCluster apply, the `/etc/hosts` writes): then the step itself is
    /// not announced, so the plan and the run list each change once, in the same words.
    pub fn reports_itself(&self) -> bool {
        matches!(self, Step::CephSpec | Step::HostsFiles)
    }

    /// Whether the step cannot be undone (announced as such; never repeated once done).
    pub fn destructive(&self) -> bool {
        matches!(self, Step::Purge { .. } | Step::Leave | Step::RemoveNode { .. } | Step::Release { .. })
    }
}

/// Whether a removal of this machine has visibly started: an OSD of it marked out, the
/// Rook operator stopped, or (for a machine the file gives a Ceph volume) the CephCluster no
/// longer listing it. `replace-node` asks before it (re)runs the add: once the removal has
/// begun, the new PC is in, and applying the cluster with the old one would undo the removal.
pub fn removal_begun(o: &Observed, declares_osd: bool) -> bool {
    let Some(c) = &o.ceph else { return false };
    c.osds_of(&o.host).iter().any(|x| !x.inn) || o.operator_replicas == Some(0) || (declares_osd && !o.in_ceph_spec)
}

/// The steps still to do, in order: copy the data off before anything goes (live), or make
/// Kubernetes let go of a dead node first so its brokers restart elsewhere (dead). Every step
/// is derived from what is still there, so a rerun after an interruption skips what is done.
pub fn steps(o: &Observed, dead: bool, survivor: &str, release: bool, erase: Option<String>) -> Vec<Step> {
    let mut s = Vec::new();
    let osds: Vec<(u32, bool, bool)> =
        o.ceph.as_ref().map(|c| c.osds_of(&o.host).iter().map(|x| (x.id, x.up, x.inn)).collect()).unwrap_or_default();
    let ceph = o.ceph.is_some();
    let member = o.node_exists || o.in_dqlite();
    if dead {
        if o.node_exists && !o.out_of_service {
            s.push(Step::Taint);
        }
        if member {
            s.push(Step::RemoveNode { survivor: survivor.to_owned(), force: true });
        }
        if o.kafka_ready.is_some() {
            s.push(Step::WaitKafka);
        }
    }
    if ceph {
        for (id, _, inn) in &osds {
            if *inn {
                s.push(Step::OsdOut(*id));
            }
            s.push(Step::WaitSafe(*id));
        }
        if !osds.is_empty() || o.operator_replicas == Some(0) || o.in_ceph_spec {
            s.push(Step::StopOperator);
        }
        for (id, up, _) in &osds {
            if *up || !dead {
                s.push(Step::StopOsd(*id));
            }
            s.push(Step::Purge { id: *id, force: false });
        }
        let bucket = o.ceph.as_ref().is_some_and(|c| c.buckets.contains(&o.host));
        if !osds.is_empty() || bucket {
            s.push(Step::RemoveBucket);
        }
        if o.in_ceph_spec {
            s.push(Step::CephSpec);
        }
        if !osds.is_empty() || o.operator_replicas == Some(0) || o.in_ceph_spec {
            s.push(Step::StartOperator);
        }
    }
    if !dead {
        if o.node_exists && o.node_ready {
            s.push(Step::Drain);
        }
        let must_leave = if o.is_control_plane { o.in_dqlite() } else { o.worker_joined };
        if must_leave && o.reachable {
            s.push(Step::Leave);
        }
        if o.node_exists || o.in_dqlite() {
            s.push(Step::RemoveNode { survivor: survivor.to_owned(), force: false });
        }
    }
    if release && !matches!(o.maas_status.as_deref(), Some("Ready") | Some("Releasing") | Some("Disk erasing") | None) {
        s.push(Step::Release { erase: if dead { None } else { erase } });
    }
    if o.host_entries && o.in_file {
        s.push(Step::HostsFiles);
    }
    if o.in_file {
        s.push(Step::EditFile);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::Osd;

    fn osd(id: u32, host: &str, used: u64) -> Osd {
        Osd { id, host: host.into(), up: true, inn: true, bytes: 400_000_000_000, used }
    }

    fn live() -> Observed {
        Observed {
            host: "pc3".into(),
            is_control_plane: true,
            control_planes: 3,
            reachable: true,
            power: Some("on".into()),
            maas_status: Some("Deployed".into()),
            node_exists: true,
            node_ready: true,
            voters: vec!["10.0.0.1".into(), "10.0.0.2".into(), "10.0.0.3".into()],
            ip: Some("10.0.0.3".into()),
            ceph: Some(CephView {
                status: None,
                osds: vec![osd(0, "pc1", 10), osd(1, "pc2", 10), osd(2, "pc3", 10)],
                pools: vec![Pool { name: "replicapool".into(), size: 2, min_size: 1, stored: 100_000_000_000 }],
                pgs: vec![],
                failure_domains: vec![],
                buckets: vec!["pc1".into(), "pc2".into(), "pc3".into()],
            }),
            kafka_ready: Some(true),
            operator_replicas: Some(1),
            in_ceph_spec: true,
            in_file: true,
            ..Default::default()
        }
    }

    #[test]
    fn below_three_control_planes_needs_yes() {
        let o = live();
        let r = refusal(&o, false, false).expect("refused");
        assert!(r.reason.contains("no datastore HA"), "{r:?}");
        assert!(r.safe.contains("replace-node"));
        assert_eq!(refusal(&o, false, true), None);
    }

    #[test]
    fn capacity_and_placement() {
        let mut o = live();
        o.control_planes = 5;
        if let Some(c) = o.ceph.as_mut() {
            c.pools[0].stored = 400_000_000_000;
        }
        assert!(refusal(&o, false, false).expect("refused").reason.contains("cannot hold"));
        if let Some(c) = o.ceph.as_mut() {
            c.pools[0].stored = 1;
            c.pools[0].size = 3;
        }
        assert!(refusal(&o, false, false).expect("refused").reason.contains("3 copies"));
    }

    #[test]
    fn a_begun_removal_is_recognised_at_each_of_its_marks() {
        let o = live();
        assert!(!removal_begun(&o, true));
        let mut out = live();
        if let Some(c) = out.ceph.as_mut() {
            c.osds[2].inn = false;
        }
        assert!(removal_begun(&out, true));
        let stopped = Observed { operator_replicas: Some(0), ..live() };
        assert!(removal_begun(&stopped, true));
        let unlisted = Observed { in_ceph_spec: false, ..live() };
        assert!(removal_begun(&unlisted, true));
        // A machine without a Ceph volume is never listed: that is no sign.
        assert!(!removal_begun(&unlisted, false));
        assert!(!removal_begun(&Observed { ceph: None, ..live() }, true));
    }

    #[test]
    fn a_rerun_skips_what_is_done() {
        let mut o = live();
        let all = steps(&o, false, "pc1", false, None);
        assert_eq!(all.first(), Some(&Step::OsdOut(2)));
        assert!(all.contains(&Step::Leave));
        // After the purge and the leave: only the remove-node and the file are left.
        if let Some(c) = o.ceph.as_mut() {
            c.osds.retain(|x| x.host != "pc3");
        }
        // The purge left the host bucket: it is removed before the CephCluster forgets the host.
        let bucket_left = steps(&o, false, "pc1", false, None);
        let at = |s: &Step| bucket_left.iter().position(|x| x == s);
        assert!(at(&Step::RemoveBucket).is_some_and(|b| Some(b) < at(&Step::CephSpec)), "{bucket_left:?}");
        if let Some(c) = o.ceph.as_mut() {
            c.buckets.retain(|b| b != "pc3");
        }
        o.in_ceph_spec = false;
        o.voters.retain(|v| v != "10.0.0.3");
        o.node_ready = false;
        let rest = steps(&o, false, "pc1", false, None);
        assert_eq!(rest, vec![Step::RemoveNode { survivor: "pc1".into(), force: false }, Step::EditFile]);
    }

    fn status(checks: &[(&str, &str)], pgs: &[(&str, u64)]) -> Status {
        Status {
            health: if checks.is_empty() { "HEALTH_OK".into() } else { "HEALTH_WARN".into() },
            checks: checks.iter().map(|(k, m)| (k.to_string(), m.to_string())).collect(),
            osds: 3,
            osds_up: 3,
            osds_in: 3,
            pgs: pgs.iter().map(|(_, n)| n).sum(),
            pgs_by_state: pgs.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            bytes_used: 0,
            bytes_total: 0,
        }
    }

    #[test]
    fn churn_from_a_new_osd_is_waited_for_and_a_problem_is_not() {
        let mut o = live();
        let c = o.ceph.as_mut().expect("ceph");
        // The new PC's OSD: absent, then down and out, then up and in.
        assert!(settling(c, Some("pc4"), false).expect("waits").contains("not in Ceph yet"));
        c.osds.push(Osd { up: false, inn: false, ..osd(3, "pc4", 0) });
        assert!(settling(c, Some("pc4"), false).expect("waits").contains("not up yet"));
        c.osds[3].up = true;
        c.osds[3].inn = true;
        assert_eq!(settling(c, Some("pc4"), false), None);
        // Peering then recovering onto it: churn.
        c.status = Some(status(
            &[("PG_AVAILABILITY", "Reduced data availability: 6 pgs inactive, 6 pgs peering")],
            &[("active+clean", 26), ("remapped+peering", 6)],
        ));
        assert!(settling(c, None, false).expect("waits").contains("6 remapped+peering"));
        c.status = Some(status(
            &[("PG_DEGRADED", "Degraded data redundancy: 5 pgs degraded")],
            &[("active+clean", 27), ("active+recovering+degraded", 5)],
        ));
        assert!(settling(c, None, false).is_some());
        // A real problem is not churn: an OSD down, a check of another kind, a stuck PG.
        c.status = Some(status(&[("PG_DEGRADED", "…")], &[("active+undersized+degraded", 5)]));
        assert_eq!(settling(c, None, false), None);
        c.status = Some(status(&[("MON_DOWN", "1/3 mons down")], &[("active+clean", 32)]));
        assert_eq!(settling(c, None, false), None);
        c.status = Some(status(&[("PG_AVAILABILITY", "…")], &[("peering", 3)]));
        c.osds[1].up = false;
        assert_eq!(settling(c, None, false), None);
        // A dead PC's removal waits for the joining OSD only.
        assert_eq!(settling(c, None, true), None);
    }
}
