//! Simulated hosts: in-process machines behind the [`Remote`] trait, with MicroK8s behaviour
//! per version as `docs/microk8s.md` describes it (outputs, streams, exit codes, the join
//! checks in the cluster agent's order, tokens with TTL, dqlite membership, the ≤ 1.27
//! hostname resolution rule). Used by the engine tests, the benchmarks and `homelab demo`;
//! the SSH path itself is tested against a real sshd (`tests/ssh_hosts.rs`).
//!
//! Only the Kubernetes API part deviates: `microk8s config` returns a token kubeconfig for
//! every version, because the simulated API server speaks plain HTTP.

use super::apiserver::SimNode;
use super::maas::SimMaasView;
use crate::ssh::{Cmd, Connector, HostAddr, Output, Remote};
use async_trait::async_trait;
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A public key in the shape MAAS accepts (the simulator checks the shape, not the maths).
pub const DEMO_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHomeLabDemoKeyNotARealKeyXXXXXXXXXXXXXXXXXX homelab-demo";

#[derive(Debug, Clone)]
pub struct SimHostsConfig {
    /// `snap install` until MicroK8s runs.
    pub install_time: Duration,
    /// A control-plane join (the node is Ready this long after joining).
    pub join_time: Duration,
    /// URL of the simulated API server that stands for `https://<node>:16443`.
    pub api_server: Option<String>,
    /// Its CA (PEM) when it serves TLS: what `microk8s config` hands out.
    pub api_ca_pem: Option<String>,
    /// What SSH charges ([`SshCosts::measured`] in the benchmarks; free in tests).
    pub ssh: SshCosts,
}

/// What a real SSH connection costs, charged by the simulated hosts on top of the command's own
/// time: opening the connection (key exchange, authentication, the multiplexing master) and each
/// command's round trip over it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SshCosts {
    pub connect: Duration,
    pub command: Duration,
}

impl SshCosts {
    /// Measured against a real OpenSSH 9.2 `sshd` on loopback on this project's CI kind of
    /// machine (BENCHMARKS.md, "What the simulators charge"): a new connection 235 ms; a command
    /// through an established multiplexing master 11.7 ms with the `ssh` client, of which 6.6 ms
    /// is starting that client, which homelab's native multiplexing does not do: 5 ms.
    pub fn measured() -> SshCosts {
        SshCosts { connect: Duration::from_millis(235), command: Duration::from_millis(5) }
    }
}

impl Default for SimHostsConfig {
    fn default() -> Self {
        SimHostsConfig {
            install_time: Duration::from_millis(50),
            join_time: Duration::from_millis(50),
            api_server: None,
            api_ca_pem: None,
            ssh: SshCosts::default(),
        }
    }
}

/// Fault injection.
#[derive(Debug, Default)]
pub struct HostFaults {
    /// The next join is refused with "Invalid token" (the token is burnt).
    pub invalid_token_once: bool,
    /// Hostnames whose Ceph volume carries this signature.
    pub ceph_signature: HashMap<String, String>,
    /// Hostnames without a Ceph volume.
    pub ceph_missing: HashSet<String>,
    pub no_lvm2: HashSet<String>,
    pub no_rbd: HashSet<String>,
    /// Hostname → a piece of a command: the link breaks as that command is sent (it never runs).
    pub drop_before: HashMap<String, String>,
    /// Hostname → a piece of a command: the command runs, then the link breaks before its
    /// answer arrives (the case where the caller cannot know what happened).
    pub drop_after: HashMap<String, String>,
    /// Hostnames that reboot on their next command: the command does not run, the
    /// connection breaks, and the machine refuses SSH for the given time.
    pub reboot_next: HashMap<String, Duration>,
}

#[derive(Debug, Clone)]
struct Host {
    hostname: String,
    ip: String,
    etc_hosts: String,
    clock: String,
    snap: Option<(String, Instant)>,
    worker: bool,
    /// The cluster this node joined (its first control plane's IP) and when, if any.
    joined: Option<(String, Instant)>,
    /// Ran `microk8s leave`: a standalone MicroK8s now; its Node object lingers (NotReady)
    /// in the cluster it left until `remove-node`.
    left: bool,
    /// Its Node object was deleted (`microk8s remove-node`).
    removed: bool,
    /// Powered off: no SSH, its node NotReady, its dqlite vote lost.
    off: bool,
    /// `snap refresh --hold` was given: no auto-refresh.
    held: bool,
    /// Refreshed across more than one minor (or down): kubelite never comes back
    /// (canonical/microk8s#3007); its node stays NotReady.
    broken: bool,
    /// Files written by commands (`microk8s dbctl backup -o PATH`).
    files: BTreeSet<String>,
    commands: Vec<String>,
}

/// A dqlite member's role (docs/day2.md §1.7: the first three voters, next three standbys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DqRole {
    Voter,
    Standby,
    Spare,
}

/// The cluster a host belongs to: its first control plane's IP.
fn cluster_of(h: &Host) -> String {
    if h.left {
        format!("{}-standalone", h.ip)
    } else {
        h.joined.as_ref().map(|(c, _)| c.clone()).unwrap_or_else(|| h.ip.clone())
    }
}

impl Host {
    /// A freshly deployed machine: nothing installed, clock in sync.
    fn fresh(hostname: String, ip: &str, etc_hosts: String) -> Host {
        Host {
            hostname,
            ip: ip.to_owned(),
            etc_hosts,
            clock: "yes".into(),
            snap: None,
            worker: false,
            joined: None,
            left: false,
            removed: false,
            off: false,
            held: false,
            broken: false,
            files: BTreeSet::new(),
            commands: vec![],
        }
    }
}

#[derive(Default)]
struct World {
    hosts: BTreeMap<String, Host>,
    tokens: HashMap<String, (String, Instant)>,
    addons: BTreeMap<String, BTreeSet<String>>,
    faults: HostFaults,
    secret_counter: u64,
    /// Per host IP: refusing SSH until then (rebooting).
    down_until: HashMap<String, Instant>,
    /// Per host IP: boots so far (a connection from an earlier boot is dead).
    boots: HashMap<String, u64>,
    /// Per cluster: the dqlite members (IP, role) in join order.
    dqlite: HashMap<String, Vec<(String, DqRole)>>,
    /// What `microk8s kubectl -n NS exec TARGET -- ARGS` runs (the lab wires the Rook toolbox).
    exec: Option<ExecHook>,
    /// The public key logins present, when not the demo key (the real-sshd tests' client key).
    login_key: Option<String>,
}

/// `(namespace, target, argv) → output` of a `kubectl exec`.
pub type ExecHook = Arc<dyn Fn(&str, &str, &[&str]) -> Output + Send + Sync>;

impl World {
    /// The dqlite members of `cluster`, with a standby promoted for each voter that is gone
    /// (powered off), as dqlite does when a voter stops answering.
    fn members(&mut self, cluster: &str) -> Vec<(String, DqRole)> {
        let off: HashSet<String> = self.hosts.values().filter(|h| h.off).map(|h| h.ip.clone()).collect();
        let m = self.dqlite.entry(cluster.to_owned()).or_default();
        loop {
            let live_voters = m.iter().filter(|(ip, r)| *r == DqRole::Voter && !off.contains(ip)).count();
            if live_voters >= 3 {
                break;
            }
            let Some(i) = m.iter().position(|(ip, r)| *r == DqRole::Standby && !off.contains(ip)) else { break };
            if let Some(v) = m.iter().position(|(ip, r)| *r == DqRole::Voter && off.contains(ip)) {
                m[v].1 = DqRole::Spare;
            } else if m.iter().filter(|(_, r)| *r == DqRole::Voter).count() >= 3 {
                break;
            }
            m[i].1 = DqRole::Voter;
        }
        m.clone()
    }

    fn add_member(&mut self, cluster: &str, ip: &str) {
        let m = self.dqlite.entry(cluster.to_owned()).or_default();
        if m.iter().any(|(i, _)| i == ip) {
            return;
        }
        let voters = m.iter().filter(|(_, r)| *r == DqRole::Voter).count();
        let standby = m.iter().filter(|(_, r)| *r == DqRole::Standby).count();
        let role = if voters < 3 {
            DqRole::Voter
        } else if standby < 3 {
            DqRole::Standby
        } else {
            DqRole::Spare
        };
        m.push((ip.to_owned(), role));
    }

    fn remove_member(&mut self, cluster: &str, ip: &str) -> bool {
        let m = self.dqlite.entry(cluster.to_owned()).or_default();
        let before = m.len();
        m.retain(|(i, _)| i != ip);
        let removed = m.len() != before;
        // A standby takes the place of a removed voter.
        let voters = m.iter().filter(|(_, r)| *r == DqRole::Voter).count();
        if voters < 3
            && let Some(s) = m.iter_mut().find(|(_, r)| *r == DqRole::Standby)
        {
            s.1 = DqRole::Voter;
        }
        removed
    }
}

/// The simulated machines of a lab.
pub struct SimHosts {
    /// Called after each command ran, before its answer leaves (crash tests; see `hosts_http`).
    pub tap: super::tap::Tap,
    world: Arc<Mutex<World>>,
    maas: Option<SimMaasView>,
    cfg: SimHostsConfig,
}
impl SimHosts {
    /// Hosts appear when MAAS deploys them (with the keys MAAS gave them).
    pub fn new(maas: Option<SimMaasView>, cfg: SimHostsConfig) -> Arc<SimHosts> {
        Arc::new(SimHosts { tap: Default::default(), world: Arc::new(Mutex::new(World::default())), maas, cfg })
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self, f: impl FnOnce(&mut HostFaults)) {
        f(&mut self.world().faults);
    }

    /// Commands a host received (argv joined; scripts by their marker line).
    pub fn commands(&self, hostname: &str) -> Vec<String> {
        self.world().hosts.values().find(|h| h.hostname == hostname).map(|h| h.commands.clone()).unwrap_or_default()
    }

    pub fn count(&self, hostname: &str, needle: &str) -> usize {
        self.commands(hostname).iter().filter(|c| c.contains(needle)).count()
    }

    pub fn etc_hosts(&self, hostname: &str) -> String {
        self.world().hosts.values().find(|h| h.hostname == hostname).map(|h| h.etc_hosts.clone()).unwrap_or_default()
    }

    /// The Kubernetes nodes (for the simulated API server).
    pub fn nodes(&self) -> Vec<SimNode> {
        let w = self.world();
        let mut out = Vec::new();
        for h in w.hosts.values() {
            let Some((ch, at)) = &h.snap else { continue };
            if h.removed {
                continue;
            }
            let running = at.elapsed() >= self.cfg.install_time;
            let version = format!("v{}.3", ch.split('/').next().unwrap_or("1.33"));
            if h.left || h.off {
                out.push(SimNode {
                    name: h.hostname.to_lowercase(),
                    ip: h.ip.clone(),
                    ready: false,
                    worker: h.worker,
                    version,
                });
                continue;
            }
            let member =
                h.joined.is_some() || w.hosts.values().any(|o| o.joined.as_ref().is_some_and(|(cp, _)| cp == &h.ip));
            if h.joined.is_none() && !member && !running {
                continue;
            }
            // A lone control plane is a one-node cluster; list it when it runs.
            // Workers are Ready when their join returns ("a few seconds"); control planes
            // after the whole dqlite join.
            let ready = match &h.joined {
                Some((_, t)) => t.elapsed() >= join_settle(&self.cfg, h.worker) && running && !h.broken,
                None => running && !h.broken,
            };
            out.push(SimNode { name: h.hostname.to_lowercase(), ip: h.ip.clone(), ready, worker: h.worker, version });
        }
        out
    }

    /// A connection to a deployed host by hostname (tests drive a command by hand).
    pub fn remote_of(&self, hostname: &str) -> anyhow::Result<Arc<dyn Remote>> {
        let ip = self
            .world()
            .hosts
            .values()
            .find(|h| h.hostname == hostname)
            .map(|h| h.ip.clone())
            .ok_or_else(|| anyhow::anyhow!("no host {hostname}"))?;
        let boot = self.world().boots.get(&ip).copied().unwrap_or(0);
        Ok(Arc::new(SimRemote { world: self.world.clone(), boot, ip, cfg: self.cfg.clone(), trips: AtomicU64::new(0) }))
    }

    /// Whether the host's snap is held and whether a refresh broke it.
    pub fn snap_state(&self, hostname: &str) -> (bool, bool) {
        self.world().hosts.values().find(|h| h.hostname == hostname).map(|h| (h.held, h.broken)).unwrap_or_default()
    }

    /// Powers a machine off (it died): SSH is refused, its node goes NotReady and its dqlite
    /// vote is lost.
    pub fn power_off(&self, hostname: &str) {
        let mut w = self.world();
        let ip = w.hosts.values().find(|h| h.hostname == hostname).map(|h| h.ip.clone());
        if let Some(ip) = ip {
            if let Some(h) = w.hosts.get_mut(&ip) {
                h.off = true;
            }
            *w.boots.entry(ip.clone()).or_insert(0) += 1;
            w.down_until.insert(ip, Instant::now() + Duration::from_secs(365 * 24 * 3600));
        }
    }

    /// The public key logins present (default: the demo key): a host lets a login in only
    /// when MAAS put that key on it at deploy.
    pub fn set_login_key(&self, key: &str) {
        self.world().login_key = Some(key.to_owned());
    }

    /// Wires `microk8s kubectl exec` (the lab points it at the simulated Rook toolbox).
    pub fn set_exec(&self, hook: ExecHook) {
        self.world().exec = Some(hook);
    }

    /// The dqlite members of the cluster `hostname` belongs to, by hostname and role.
    pub fn dqlite(&self, hostname: &str) -> Vec<(String, DqRole)> {
        let mut w = self.world();
        let Some(h) = w.hosts.values().find(|h| h.hostname == hostname).cloned() else { return vec![] };
        let names: HashMap<String, String> = w.hosts.values().map(|h| (h.ip.clone(), h.hostname.clone())).collect();
        w.members(&cluster_of(&h)).into_iter().map(|(ip, r)| (names.get(&ip).cloned().unwrap_or(ip), r)).collect()
    }

    fn host_for(&self, addr: &HostAddr) -> anyhow::Result<()> {
        let mut w = self.world();
        if w.hosts.contains_key(&addr.ip) {
            return Ok(());
        }
        if let Some(maas) = &self.maas {
            match maas.deployed(&addr.ip) {
                None => anyhow::bail!("ssh: connect to host {} port 22: Connection refused", addr.ip),
                Some((hostname, keys)) => {
                    let login = w.login_key.as_deref().unwrap_or(DEMO_PUBLIC_KEY);
                    if !keys.iter().any(|k| k.contains(login.split_whitespace().nth(1).unwrap_or("?"))) {
                        anyhow::bail!("ubuntu@{}: Permission denied (publickey).", addr.ip);
                    }
                    let etc_hosts =
                        format!("127.0.0.1 localhost\n127.0.1.1 {hostname}\n\n::1 ip6-localhost ip6-loopback\n");
                    w.hosts.insert(addr.ip.clone(), Host::fresh(hostname, &addr.ip, etc_hosts));
                }
            }
        } else {
            let etc_hosts = format!("127.0.0.1 localhost\n127.0.1.1 {}\n", addr.hostname);
            w.hosts.insert(addr.ip.clone(), Host::fresh(addr.hostname.clone(), &addr.ip, etc_hosts));
        }
        Ok(())
    }
}

#[async_trait]
impl Connector for SimHosts {
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>> {
        let boot = {
            let w = self.world();
            if w.down_until.get(&host.ip).is_some_and(|t| Instant::now() < *t) {
                anyhow::bail!("ssh: connect to host {} port 22: Connection refused", host.ip);
            }
            w.boots.get(&host.ip).copied().unwrap_or(0)
        };
        self.host_for(host)?;
        if !self.cfg.ssh.connect.is_zero() {
            tokio::time::sleep(self.cfg.ssh.connect).await;
        }
        Ok(Arc::new(SimRemote {
            world: self.world.clone(),
            boot,
            ip: host.ip.clone(),
            cfg: self.cfg.clone(),
            trips: AtomicU64::new(0),
        }))
    }

    fn api_server_override(&self, _node_ip: &str) -> Option<String> {
        self.cfg.api_server.clone()
    }
}

struct SimRemote {
    world: Arc<Mutex<World>>,
    /// The boot this connection was opened in.
    boot: u64,
    ip: String,
    cfg: SimHostsConfig,
    trips: AtomicU64,
}

fn out(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Output {
    Output { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
}

/// How long a join takes until the node is Ready: workers "a few seconds", control planes
/// the whole dqlite join (docs/microk8s.md, Timing).
/// MicroK8s runs on the host: installed (or refreshed) long enough ago, and not broken.
fn host_running(h: &Host, cfg: &SimHostsConfig) -> bool {
    h.snap.as_ref().is_some_and(|(_, at)| at.elapsed() >= cfg.install_time) && !h.broken
}

fn join_settle(cfg: &SimHostsConfig, worker: bool) -> Duration {
    if worker { cfg.join_time / 4 } else { cfg.join_time }
}

fn minor_of(channel: &str) -> (u32, u32) {
    crate::catalog::parse_minor(channel).unwrap_or((1, 33))
}

fn hex(n: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51afd7ed558ccd);
            x ^= x >> 29;
            char::from_digit((x % 16) as u32, 16).unwrap_or('0')
        })
        .collect()
}

impl SimRemote {
    fn exec(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let label = if cmd.argv.first().map(String::as_str) == Some("sh") { cmd.display() } else { cmd.argv.join(" ") };
        let hostname = {
            let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host {} vanished", self.ip))?;
            h.commands.push(label);
            h.hostname.clone()
        };
        if w.boots.get(&self.ip).copied().unwrap_or(0) != self.boot {
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        let label = w.hosts.get(&self.ip).and_then(|h| h.commands.last().cloned()).unwrap_or_default();
        if w.faults.drop_before.get(&hostname).is_some_and(|n| label.contains(n.as_str())) {
            w.faults.drop_before.remove(&hostname);
            anyhow::bail!("client_loop: send disconnect: Broken pipe (to {hostname})");
        }
        let lose_answer = w.faults.drop_after.get(&hostname).is_some_and(|n| label.contains(n.as_str()));
        if lose_answer {
            w.faults.drop_after.remove(&hostname);
            drop(w);
            let _ = self.exec_inner(cmd);
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        if let Some(down) = w.faults.reboot_next.remove(&hostname) {
            *w.boots.entry(self.ip.clone()).or_insert(0) += 1;
            w.down_until.insert(self.ip.clone(), Instant::now() + down);
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        drop(w);
        self.exec_inner(cmd)
    }

    /// What the machine does with a command that reached it.
    fn exec_inner(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let a: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        let cfg = &self.cfg;
        let me = self.ip.clone();
        let installed = |w: &World| w.hosts.get(&me).and_then(|h| h.snap.clone());
        Ok(match a.as_slice() {
            ["sh", "-c", script, _name, rest @ ..] if script.contains("# homelab:facts") => {
                let dev = rest.first().copied().unwrap_or("");
                let peers = rest.get(1..).unwrap_or(&[]);
                let h = &w.hosts[&self.ip];
                let mut s = format!(
                    "hostname={}\ncloud_init=done\nhosts_b64={}\n",
                    h.hostname,
                    base64::engine::general_purpose::STANDARD.encode(&h.etc_hosts)
                );
                if !dev.is_empty() {
                    if w.faults.ceph_missing.contains(&h.hostname) {
                        s.push_str("ceph_dev=missing\n");
                    } else {
                        s.push_str(&format!(
                            "ceph_dev=present\nceph_sig={}\n",
                            w.faults.ceph_signature.get(&h.hostname).cloned().unwrap_or_default()
                        ));
                    }
                }
                s.push_str(&format!("lvm2={}\n", if w.faults.no_lvm2.contains(&h.hostname) { "no" } else { "yes" }));
                s.push_str(&format!("rbd={}\n", if w.faults.no_rbd.contains(&h.hostname) { "no" } else { "yes" }));
                s.push_str(&format!("clock={}\n", h.clock));
                s.push_str(&format!("snap_tracking={}\n", h.snap.as_ref().map(|(c, _)| c.clone()).unwrap_or_default()));
                for p in peers {
                    let ip = h
                        .etc_hosts
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .find(|l| l.split_whitespace().skip(1).any(|n| n == *p))
                        .and_then(|l| l.split_whitespace().next())
                        .unwrap_or("");
                    s.push_str(&format!("resolve_{p}={ip}\n"));
                }
                out(0, s, "")
            }
            ["cloud-init", "status", "--wait"] => out(0, "status: done\n", ""),
            ["tee", "/etc/hosts"] => {
                let text = String::from_utf8_lossy(cmd.stdin.as_deref().unwrap_or(&[])).into_owned();
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.etc_hosts = text.clone();
                }
                out(0, text, "")
            }
            ["snap", "wait", "system", "seed.loaded"] => out(0, "", ""),
            ["snap", "list", "microk8s"] => match installed(&w) {
                Some((ch, _)) => out(
                    0,
                    format!(
                        "Name      Version   Rev   Tracking     Publisher   Notes\nmicrok8s  v{}.3  7000  {ch}  canonical✓  classic{}\n",
                        ch.split('/').next().unwrap_or(""),
                        if w.hosts.get(&self.ip).is_some_and(|h| h.held) { ",held" } else { "" }
                    ),
                    "",
                ),
                None => out(1, "", "error: no matching snaps installed\n"),
            },
            ["snap", "install", "microk8s", "--classic", ch] if ch.starts_with("--channel=") => {
                let ch = ch.trim_start_matches("--channel=").to_owned();
                if installed(&w).is_some() {
                    return Ok(out(0, "", "snap \"microk8s\" is already installed, see 'snap help refresh'\n"));
                }
                let (maj, min) = minor_of(&ch);
                if maj != 1 || !(20..=36).contains(&min) {
                    return Ok(out(
                        1,
                        "",
                        format!(
                            "error: snap \"microk8s\" is not available on {ch} but is available to install on the\n       following tracks: 1.33/stable\n"
                        ),
                    ));
                }
                let ch = if ch.contains('/') { ch } else { format!("{ch}/stable") };
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                h.snap = Some((ch.clone(), Instant::now()));
                let cp = h.ip.clone();
                let mut def: BTreeSet<String> = ["ha-cluster", "helm", "helm3"].iter().map(|s| s.to_string()).collect();
                if (maj, min) >= (1, 27) {
                    def.insert("dns".into());
                }
                w.addons.insert(cp, def);
                out(0, format!("microk8s ({ch}) v{}.{}.3 from Canonical✓ installed\n", maj, min), "")
            }
            ["snap", "refresh", "--hold=forever", "microk8s"] => {
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                if h.snap.is_none() {
                    return Ok(out(1, "", "error: snap \"microk8s\" is not installed\n"));
                }
                h.held = true;
                out(0, "General refreshes of \"microk8s\" held indefinitely\n", "")
            }
            ["test", "-s", path] => {
                let has = w.hosts.get(&self.ip).is_some_and(|h| h.files.contains(*path));
                out(if has { 0 } else { 1 }, "", "")
            }
            ["snap", "refresh", "microk8s", ch] => {
                let ch = ch.trim_start_matches("--channel=").to_owned();
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                match &mut h.snap {
                    None => out(1, "", "error: snap \"microk8s\" is not installed\n"),
                    Some((cur, _)) if *cur == ch => out(0, "", "snap \"microk8s\" has no updates available\n"),
                    Some((cur, t)) => {
                        // One minor at a time: a skipped minor (or a step down) leaves a
                        // kubelite that never starts again.
                        let (a, b) = (minor_of(cur), minor_of(&ch));
                        if b.0 != a.0 || b.1 != a.1 + 1 {
                            h.broken = true;
                        }
                        *cur = ch.clone();
                        *t = Instant::now();
                        out(
                            0,
                            format!(
                                "microk8s ({ch}) v{}.3 from Canonical✓ refreshed\n",
                                ch.split('/').next().unwrap_or("")
                            ),
                            "",
                        )
                    }
                }
            }
            ["microk8s", ..] if installed(&w).is_none() => out(127, "", "sudo: microk8s: command not found\n"),
            ["microk8s", rest @ ..] => {
                drop(w);
                return self.microk8s(rest, cmd, cfg);
            }
            _ => out(127, "", format!("sh: 1: {}: not found\n", a.first().unwrap_or(&""))),
        })
    }

    fn microk8s(&self, args: &[&str], cmd: &Cmd, cfg: &SimHostsConfig) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let me = w.hosts.get(&self.ip).cloned().ok_or_else(|| anyhow::anyhow!("host vanished"))?;
        let (ch, installed_at) = me.snap.clone().unwrap_or_else(|| (String::new(), Instant::now()));
        let minor = minor_of(&ch);
        let running = installed_at.elapsed() >= cfg.install_time && !me.broken;
        let is_worker = me.worker && me.joined.is_some() && !me.left;
        let cp_ip = cluster_of(&me);
        let worker_msg = |what: &str| {
            format!("This MicroK8s deployment is acting as a node in a cluster.\nPlease use the {what}.\n")
        };
        Ok(match args {
            ["status", rest @ ..] => {
                if is_worker {
                    return Ok(out(0, worker_msg("control plane node"), ""));
                }
                if !running {
                    let wait = rest.contains(&"--wait-ready") && !me.broken;
                    if wait {
                        let left = cfg.install_time.saturating_sub(installed_at.elapsed());
                        drop(w);
                        std::thread::sleep(left.min(cmd.timeout));
                        return self.microk8s(args, cmd, cfg);
                    }
                    let code = if minor >= (1, 28) { 1 } else { 0 };
                    return Ok(out(
                        code,
                        "microk8s is not running. Use microk8s inspect for a deeper inspection.\n",
                        "",
                    ));
                }
                let addons = w.addons.get(&cp_ip).cloned().unwrap_or_default();
                if rest.contains(&"short") {
                    let mut s = "microk8s is running\naddons:\n".to_owned();
                    for a in &addons {
                        s.push_str(&format!("core/{a}: enabled\n"));
                    }
                    for a in ["cert-manager", "ingress", "rook-ceph", "hostpath-storage"]
                        .iter()
                        .filter(|a| !addons.contains(**a))
                    {
                        s.push_str(&format!("core/{a}: disabled\n"));
                    }
                    out(0, s, "")
                } else {
                    let mut m = w.members(&cp_ip);
                    if m.is_empty() {
                        m.push((self.ip.clone(), DqRole::Voter));
                    }
                    let list = |role: DqRole| {
                        let l: Vec<String> =
                            m.iter().filter(|(_, r)| *r == role).map(|(ip, _)| format!("{ip}:19001")).collect();
                        if l.is_empty() { "none".to_owned() } else { l.join(" ") }
                    };
                    let voters = m.iter().filter(|(_, r)| *r == DqRole::Voter).count();
                    out(
                        0,
                        format!(
                            "microk8s is running\nhigh-availability: {}\n  datastore master nodes: {}\n  datastore standby nodes: {}\n",
                            if voters > 2 { "yes" } else { "no" },
                            list(DqRole::Voter),
                            list(DqRole::Standby)
                        ),
                        "",
                    )
                }
            }
            ["enable", addon] => {
                if is_worker {
                    return Ok(out(1, worker_msg("master node"), ""));
                }
                let known = [
                    "dns",
                    "ingress",
                    "cert-manager",
                    "helm",
                    "helm3",
                    "ha-cluster",
                    "hostpath-storage",
                    "metrics-server",
                    "rbac",
                    "registry",
                    "dashboard",
                    "metallb",
                    "observability",
                    "rook-ceph",
                ];
                if !known.contains(addon) {
                    return Ok(out(
                        1,
                        "",
                        format!(
                            "Infer repository core for addon {addon}\nAddon {addon} was not found in any repository\n"
                        ),
                    ));
                }
                let set = w.addons.entry(cp_ip).or_default();
                if !set.insert((*addon).to_owned()) {
                    return Ok(out(
                        0,
                        format!("Addon core/{addon} is already enabled\n"),
                        "Infer repository core for addon {addon}\n",
                    ));
                }
                out(
                    0,
                    format!("Enabling {addon}\nApplying manifest\n{addon} is enabled\n"),
                    format!("Infer repository core for addon {addon}\n"),
                )
            }
            ["dbctl", "backup", "-o", path] => {
                if !running {
                    return Ok(out(1, "", "microk8s is not running. Use microk8s inspect for a deeper inspection.\n"));
                }
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.files.insert((*path).to_owned());
                }
                out(0, format!("Backup of the datastore written to {path}\n"), "")
            }
            ["kubectl", "get", "nodes", "-o", "json"] => {
                if is_worker {
                    return Ok(out(
                        0,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s kubectl on the master.\n",
                        "",
                    ));
                }
                if !running {
                    return Ok(out(
                        1,
                        "",
                        "The connection to the server 127.0.0.1:16443 was refused - did you specify the right host or port?\n",
                    ));
                }
                let items: Vec<serde_json::Value> = w
                    .hosts
                    .values()
                    .filter(|h| !h.removed && (cluster_of(h) == cp_ip || (h.left && h.joined.as_ref().is_some_and(|(c, _)| *c == cp_ip))))
                    .map(|h| {
                        let ready = !h.left && !h.off && host_running(h, cfg) && h.joined.as_ref().map(|(_, t)| t.elapsed() >= join_settle(cfg, h.worker)).unwrap_or(true);
                        let minor = minor_of(&h.snap.as_ref().map(|(c, _)| c.clone()).unwrap_or_default());
                        let mut labels = serde_json::Map::new();
                        labels.insert("kubernetes.io/hostname".into(), h.hostname.to_lowercase().into());
                        labels.insert(if h.worker { "node.kubernetes.io/microk8s-worker".into() } else { "node.kubernetes.io/microk8s-controlplane".into() }, "microk8s-node".into());
                        serde_json::json!({
                            "metadata": {"name": h.hostname.to_lowercase(), "labels": labels},
                            "status": {
                                "addresses": [{"type": "InternalIP", "address": h.ip}, {"type": "Hostname", "address": h.hostname}],
                                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                                "nodeInfo": {"kubeletVersion": format!("v{}.{}.3", minor.0, minor.1)},
                            }
                        })
                    })
                    .collect();
                out(0, serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(), "")
            }
            ["add-node", rest @ ..] => {
                if is_worker {
                    return Ok(out(
                        1,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s add-node on the master.\n",
                        "",
                    ));
                }
                let ttl = rest
                    .iter()
                    .position(|a| *a == "--token-ttl")
                    .and_then(|i| rest.get(i + 1))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                w.secret_counter += 1;
                let seed = w.secret_counter
                    ^ (self.ip.len() as u64) << 8
                    ^ std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as u64)
                        .unwrap_or(7);
                let token = hex(32, seed);
                let check = hex(12, seed ^ 0xabc);
                let expiry = if ttl > 0 {
                    Instant::now() + Duration::from_secs(ttl)
                } else {
                    Instant::now() + Duration::from_secs(3600)
                };
                w.tokens.insert(token.clone(), (self.ip.clone(), expiry));
                let default_ip = self.ip.clone();
                if rest.contains(&"token-check") {
                    out(0, format!("{token}/{check}\n"), "")
                } else {
                    out(
                        0,
                        format!(
                            "From the node you wish to join to this cluster, run the following:\nmicrok8s join {default_ip}:25000/{token}/{check}\n"
                        ),
                        "",
                    )
                }
            }
            ["join", conn, rest @ ..] => {
                let worker = rest.contains(&"--worker");
                let parts: Vec<&str> = conn.split('/').collect();
                let host_port = parts.first().copied().unwrap_or("");
                let target_ip = host_port.split(':').next().unwrap_or("");
                if minor >= (1, 29) && target_ip.parse::<std::net::IpAddr>().is_err() {
                    return Ok(out(1, "Invalid connection: Invalid master IP\n", ""));
                }
                let token = parts.get(1).copied().unwrap_or("");
                let Some(cp) = w.hosts.get(target_ip).cloned() else {
                    return Ok(out(
                        1,
                        "",
                        "Traceback (most recent call last):\n  ...\nConnectionRefusedError: [Errno 111] Connection refused\n",
                    ));
                };
                let contacting = format!("Contacting cluster at {target_ip}\n");
                // Server-side order: consume token → HA → same IP → hostname → dqlite.
                if w.faults.invalid_token_once {
                    w.faults.invalid_token_once = false;
                    w.tokens.remove(token);
                    return Ok(out(6, format!("{contacting}Connection failed. Invalid token (500).\n"), ""));
                }
                match w.tokens.get(token) {
                    Some((issuer, exp)) if issuer == target_ip && *exp > Instant::now() => {}
                    _ => return Ok(out(6, format!("{contacting}Connection failed. Invalid token (500).\n"), "")),
                }
                if target_ip == self.ip {
                    return Ok(out(
                        6,
                        format!(
                            "{contacting}Connection failed. The joining node has the same IP ({}) as the node we contact (503).\n",
                            self.ip
                        ),
                        "",
                    ));
                }
                let cp_minor = cp.snap.as_ref().map(|(c, _)| minor_of(c)).unwrap_or(minor);
                if cp_minor <= (1, 27) {
                    let resolves = cp.etc_hosts.lines().filter(|l| !l.trim_start().starts_with('#')).any(|l| {
                        let mut it = l.split_whitespace();
                        it.next() == Some(self.ip.as_str()) && it.any(|n| n.eq_ignore_ascii_case(&me.hostname))
                    });
                    if !resolves {
                        return Ok(out(
                            6,
                            format!(
                                "{contacting}Connection failed. The hostname ({}) of the joining node does not resolve to the IP \"{}\". Refusing join (400).\n",
                                me.hostname, self.ip
                            ),
                            "",
                        ));
                    }
                }
                if me.joined.is_some() && !me.worker {
                    let text = if cp_minor >= (1, 29) {
                        format!(
                            "Connection failed. Failed to retrieve dqlite cluster nodes: the joining node ({}) is already known to dqlite (500).\n",
                            self.ip
                        )
                    } else {
                        format!("Connection failed. The joining node ({}) is already known to dqlite (504).\n", self.ip)
                    };
                    return Ok(out(6, format!("{contacting}{text}"), ""));
                }
                let cluster = cluster_of(&cp);
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.joined = Some((cluster.clone(), Instant::now()));
                    h.worker = worker;
                    h.left = false;
                    h.removed = false;
                }
                if w.dqlite.get(&cluster).is_none_or(|m| m.is_empty()) {
                    w.add_member(&cluster, &cluster);
                }
                if !worker {
                    w.add_member(&cluster, &self.ip);
                }
                drop(w);
                std::thread::sleep(join_settle(cfg, worker).min(cmd.timeout));
                let done = if minor >= (1, 29) { "Successfully joined the cluster.\n" } else { "" };
                if worker {
                    out(
                        0,
                        format!(
                            "{contacting}\nThe node has joined the cluster and will appear in the nodes list in a few seconds.\n\nThis worker node gets automatically configured with the API server endpoints.\n{done}"
                        ),
                        "",
                    )
                } else {
                    out(
                        0,
                        format!("{contacting}Waiting for this node to finish joining the cluster. .. .. ..\n{done}"),
                        "",
                    )
                }
            }
            ["kubectl", "-n", ns, "exec", target, "--", rest @ ..] => {
                let Some(hook) = w.exec.clone() else {
                    return Ok(out(1, "", "error: unable to upgrade connection: container not found\n"));
                };
                drop(w);
                hook(ns, target, rest)
            }
            ["leave"] => {
                let members = w.members(&cp_ip);
                let me_voter = members.iter().any(|(ip, r)| *ip == self.ip && *r == DqRole::Voter);
                let voters = members.iter().filter(|(_, r)| *r == DqRole::Voter).count();
                let others =
                    w.hosts.values().filter(|h| h.ip != self.ip && !h.removed && cluster_of(h) == cp_ip).count();
                if !me.worker && me_voter && voters == 1 && others > 0 {
                    return Ok(out(
                        3,
                        "This node currently holds the only copy of the Kubernetes database so it cannot leave the cluster.\nTo remove this node you can either first remove all other nodes with 'microk8s remove-node' or\nform a highly available cluster by adding at least three nodes.\n",
                        "",
                    ));
                }
                w.remove_member(&cp_ip, &self.ip);
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    // The Node object stays in the cluster it left (NotReady) until remove-node.
                    if h.joined.is_none() {
                        h.joined = Some((h.ip.clone(), Instant::now()));
                    }
                    h.left = true;
                }
                drop(w);
                std::thread::sleep(cfg.join_time.min(cmd.timeout));
                out(0, "Generating new cluster certificates.\nWaiting for node to start. \n", "")
            }
            ["remove-node", rest @ ..] => {
                if is_worker {
                    return Ok(out(
                        1,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use microk8s leave.\n",
                        "",
                    ));
                }
                let (node, force) = match rest {
                    [] => return Ok(out(1, "Please provide the node you want to remove.\n", "")),
                    [n] => (*n, false),
                    [n, "--force"] => (*n, true),
                    _ => return Ok(out(1, "Please provide the node and the optional --force flag.\n", "")),
                };
                let target = w
                    .hosts
                    .values()
                    .find(|h| {
                        (h.hostname.eq_ignore_ascii_case(node) || h.ip == node)
                            && h.joined.as_ref().is_some_and(|(c, _)| *c == cp_ip)
                            || (h.ip == cp_ip && (h.hostname.eq_ignore_ascii_case(node) || h.ip == node))
                    })
                    .cloned();
                let members = w.members(&cp_ip);
                match target {
                    Some(t) if !t.removed => {
                        let in_dqlite = members.iter().any(|(ip, _)| *ip == t.ip);
                        if in_dqlite && !force {
                            return Ok(out(
                                1,
                                format!(
                                    "Removal failed. Node {node} is registered with dqlite. Please, run first 'microk8s leave' on the departing node. \nIf the node is not available anymore and will never attempt to join the cluster in the future use the '--force' flag \nto unregister the node while removing it.\n"
                                ),
                                "",
                            ));
                        }
                        if in_dqlite {
                            w.remove_member(&cp_ip, &t.ip);
                        }
                        if let Some(h) = w.hosts.get_mut(&t.ip) {
                            h.removed = true;
                        }
                        out(0, "", "")
                    }
                    t => {
                        let mut s = format!("Node {node} does not exist in Kubernetes.\n");
                        if force {
                            s.push_str(&format!("Attempting to remove {node} from dqlite.\n"));
                            if let Some(t) = t
                                && w.remove_member(&cp_ip, &t.ip)
                            {
                                s.push_str("Removing node entry found in dqlite.\n");
                            }
                        }
                        out(1, s, "")
                    }
                }
            }
            ["config"] => {
                if is_worker {
                    return Ok(out(
                        0,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s config on the master.\n",
                        "",
                    ));
                }
                let token = format!("simadmintoken{}", hex(24, self.ip.len() as u64 * 977));
                out(
                    0,
                    format!(
                        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://{}:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    token: {token}\n\n",
                        base64::engine::general_purpose::STANDARD
                            .encode(self.cfg.api_ca_pem.as_deref().unwrap_or("simulated CA")),
                        self.ip
                    ),
                    "",
                )
            }
            _ => out(1, "", format!("microk8s: unknown command {}\n", args.join(" "))),
        })
    }
}

#[async_trait]
impl Remote for SimRemote {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        // Joins and waits sleep: keep them off the async workers.
        let me = SimRemote {
            world: self.world.clone(),
            boot: self.boot,
            ip: self.ip.clone(),
            cfg: self.cfg.clone(),
            trips: AtomicU64::new(0),
        };
        let cmd = cmd.clone();
        if !self.cfg.ssh.command.is_zero() {
            tokio::time::sleep(self.cfg.ssh.command).await;
        }
        tokio::task::spawn_blocking(move || me.exec(&cmd)).await?
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}
