//! What the simulated machines are: each host's state (hostname, clock, the snap, its
//! cluster, power), and the world they share (join tokens, add-ons, dqlite membership, the
//! faults a test injects).

use super::HostFaults;
use super::system::System;
use crate::ssh::Output;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub(super) struct Host {
    pub(super) hostname: String,
    pub(super) ip: String,
    pub(super) etc_hosts: String,
    pub(super) clock: String,
    pub(super) snap: Option<(String, Instant)>,
    pub(super) worker: bool,
    /// The cluster this node joined (its first control plane's IP) and when, if any.
    pub(super) joined: Option<(String, Instant)>,
    /// Ran `microk8s leave`: a standalone MicroK8s now; its Node object lingers (NotReady)
    /// in the cluster it left until `remove-node`.
    pub(super) left: bool,
    /// Its Node object was deleted (`microk8s remove-node`).
    pub(super) removed: bool,
    /// Powered off: no SSH, its node NotReady, its dqlite vote lost.
    pub(super) off: bool,
    /// `snap refresh --hold` was given: no auto-refresh.
    pub(super) held: bool,
    /// Refreshed across more than one minor (or down): kubelite never comes back
    /// (canonical/microk8s#3007); its node stays NotReady.
    pub(super) broken: bool,
    /// Files written by commands (`microk8s dbctl backup -o PATH`).
    pub(super) files: BTreeSet<String>,
    /// Its operating system: release, memory, DNS, networks, sudo, disks and volumes.
    pub(super) sys: System,
    /// Installed before homelab: it exists without MAAS deploying it.
    pub(super) preinstalled: bool,
    /// The kubelet's `--node-ip`, when its arguments set one.
    pub(super) node_ip: Option<String>,
    pub(super) commands: Vec<String>,
}

/// A dqlite member's role (docs/day2.md §1.7: the first three voters, next three standbys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DqRole {
    Voter,
    Standby,
    Spare,
}

/// The cluster a host belongs to: its first control plane's IP.
pub(super) fn cluster_of(h: &Host) -> String {
    if h.left {
        format!("{}-standalone", h.ip)
    } else {
        h.joined.as_ref().map(|(c, _)| c.clone()).unwrap_or_else(|| h.ip.clone())
    }
}

impl Host {
    /// The address its Node reports: `--node-ip` when set, else the kubelet's own pick, the
    /// first other network's address when it has several (the one with the default route,
    /// on a MAAS host the outside network), else its address.
    pub(super) fn node_address(&self) -> String {
        self.node_ip
            .clone()
            .or_else(|| self.sys.other_addrs.first().map(|a| a.split('/').next().unwrap_or(a).to_owned()))
            .unwrap_or_else(|| self.ip.clone())
    }

    /// A freshly deployed machine: nothing installed, clock in sync.
    pub(super) fn fresh(hostname: String, ip: &str, etc_hosts: String) -> Host {
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
            sys: System::default(),
            preinstalled: false,
            node_ip: None,
            commands: vec![],
        }
    }
}

#[derive(Default)]
pub(super) struct World {
    pub(super) hosts: BTreeMap<String, Host>,
    pub(super) tokens: HashMap<String, (String, Instant)>,
    pub(super) addons: BTreeMap<String, BTreeSet<String>>,
    pub(super) faults: HostFaults,
    pub(super) secret_counter: u64,
    /// Per host IP: refusing SSH until then (rebooting).
    pub(super) down_until: HashMap<String, Instant>,
    /// Per host IP: boots so far (a connection from an earlier boot is dead).
    pub(super) boots: HashMap<String, u64>,
    /// Per cluster: the dqlite members (IP, role) in join order.
    pub(super) dqlite: HashMap<String, Vec<(String, DqRole)>>,
    /// What `microk8s kubectl -n NS exec TARGET -- ARGS` runs (the lab wires the Rook toolbox).
    pub(super) exec: Option<ExecHook>,
    /// The public key logins present, when not the demo key (the real-sshd tests' client key).
    pub(super) login_key: Option<String>,
}

/// `(namespace, target, argv) → output` of a `kubectl exec`.
pub type ExecHook = Arc<dyn Fn(&str, &str, &[&str]) -> Output + Send + Sync>;

impl World {
    /// The dqlite members of `cluster`, with a standby promoted for each voter that is gone
    /// (powered off), as dqlite does when a voter stops answering.
    pub(super) fn members(&mut self, cluster: &str) -> Vec<(String, DqRole)> {
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

    pub(super) fn add_member(&mut self, cluster: &str, ip: &str) {
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

    pub(super) fn remove_member(&mut self, cluster: &str, ip: &str) -> bool {
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
