//! Simulated hosts: in-process machines behind the [`Remote`] trait, with MicroK8s behaviour
//! per version as `docs/microk8s.md` describes it (outputs, streams, exit codes, the join
//! checks in the cluster agent's order, tokens with TTL, dqlite membership, the ≤ 1.27
//! hostname resolution rule). Used by the engine tests, the benchmarks and `homelab demo`;
//! the SSH path itself is tested against a real sshd (`tests/ssh_hosts.rs`).
//!
//! Only the Kubernetes API part deviates: `microk8s config` returns a token kubeconfig for
//! every version, because the simulated API server speaks plain HTTP.

mod microk8s;
mod remote;
mod shell;
mod state;
pub mod system;

pub use state::{DqRole, ExecHook};
pub use system::{Installer, Preinstalled, System};

use super::apiserver::SimNode;
use super::maas::SimMaasView;
use crate::ssh::{Connector, HostAddr, Remote};
use async_trait::async_trait;
use remote::{SimRemote, join_settle};
use state::{Host, World, cluster_of};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
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
    /// Pre-installed hosts (by hostname) that do not know homelab's key: SSH refuses the
    /// login.
    pub refuse_login: HashSet<String>,
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

    /// A machine that runs Ubuntu already (the MAAS host, a PC installed by hand): it exists
    /// before any deploy, answers SSH at its address, and has the installer's disk layout.
    pub fn add_preinstalled(&self, p: Preinstalled) {
        let etc_hosts = format!("127.0.0.1 localhost\n127.0.1.1 {}\n\n::1 ip6-localhost ip6-loopback\n", p.hostname);
        let mut h = Host::fresh(p.hostname.clone(), &p.ip, etc_hosts);
        h.sys = p.laid_out();
        h.preinstalled = true;
        self.world().hosts.insert(p.ip.clone(), h);
    }

    /// A pre-installed host's operating system, changed by a test (a wrong hostname is
    /// `Preinstalled::hostname`; this changes the rest).
    pub fn system(&self, hostname: &str, f: impl FnOnce(&mut System)) {
        if let Some(h) = self.world().hosts.values_mut().find(|h| h.hostname == hostname) {
            f(&mut h.sys);
        }
    }

    /// The logical volumes of a host's volume group `vg` (name, bytes).
    pub fn lvs(&self, hostname: &str, vg: &str) -> Vec<(String, u64)> {
        let w = self.world();
        let Some(h) = w.hosts.values().find(|h| h.hostname == hostname) else { return vec![] };
        h.sys
            .vgs
            .iter()
            .filter(|v| v.name == vg)
            .flat_map(|v| v.lvs.iter().map(|l| (l.name.clone(), l.bytes)))
            .collect()
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
                    ip: h.node_address(),
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
            out.push(SimNode {
                name: h.hostname.to_lowercase(),
                ip: h.node_address(),
                ready,
                worker: h.worker,
                version,
            });
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
        {
            let w = self.world();
            if let Some(h) = w.hosts.get(&host.ip)
                && h.preinstalled
                && w.faults.refuse_login.contains(&h.hostname)
            {
                anyhow::bail!("ubuntu@{}: Permission denied (publickey).", host.ip);
            }
        }
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
