//! The validated, resolved cluster the program runs on: defaults filled in, sizes in bytes,
//! paths expanded, releases looked up in the catalog.

use super::model::{FailureDomain, HostKeyChecking, Listener, MetadataMode, Role};
use crate::catalog::{RookRelease, StrimziRelease};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Volume group and logical volume names MAAS creates (`vgroot` is MAAS's default VG).
pub const VOLUME_GROUP: &str = "vgroot";
pub const CEPH_LV: &str = "ceph";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    /// The file it was read from (absent for in-memory configs).
    pub source: Option<PathBuf>,
    pub maas: Option<Maas>,
    pub ssh: Ssh,
    pub machines: Vec<Machine>,
    pub kubernetes: Kubernetes,
    pub rook: Option<Rook>,
    pub kafka: Option<Kafka>,
    pub database: Option<Database>,
    pub timeouts: Timeouts,
}

impl Cluster {
    /// Records the file the cluster was read from and resolves its relative paths
    /// (`apiKeyFile`, `identityFile`, `knownHostsFile`, `kubeconfig`) against that file's
    /// directory, as ssh_config and kubeconfig do, so a run from another directory reads the
    /// same files.
    pub fn anchor(&mut self, file: &std::path::Path) {
        self.source = Some(file.to_path_buf());
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => return,
        };
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(m) = self.maas.as_mut() {
            if let KeySource::File(p) = &mut m.api_key {
                rebase(p);
            }
            if let Some(p) = m.ca_file.as_mut() {
                rebase(p);
            }
        }
        rebase(&mut self.ssh.identity_file);
        if let Some(p) = self.ssh.known_hosts_file.as_mut() {
            rebase(p);
        }
        if let Kubernetes::Existing { kubeconfig: Some(p), .. } = &mut self.kubernetes {
            rebase(p);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Maas {
    /// Without trailing slash, e.g. `http://10.0.0.1:5240/MAAS`.
    pub url: String,
    pub api_key: KeySource,
    pub distro_series: String,
    /// Extra trusted CA (PEM) for an https MAAS with a self-signed certificate.
    pub ca_file: Option<PathBuf>,
}

impl Maas {
    /// `<url>/api/2.0/`
    pub fn api_root(&self) -> String {
        format!("{}/api/2.0/", self.url.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Env,
}

#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: String,
    pub port: u16,
    pub identity_file: PathBuf,
    pub host_key_checking: HostKeyChecking,
    pub known_hosts_file: Option<PathBuf>,
    pub jump_host: Option<String>,
}

impl Ssh {
    pub fn public_key_file(&self) -> PathBuf {
        let mut p = self.identity_file.clone().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CephVolume {
    /// All space left in the volume group after the root volume.
    Rest,
    Bytes(u64),
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// MAAS `lvm` layout: root LV of `root_bytes`, plus the Ceph LV.
    Lvm { root_bytes: u64, ceph: CephVolume },
    /// Whatever the machine has; no Ceph volume unless `device` is given.
    Keep,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub hostname: String,
    /// Lower-case, colon separated: MAAS deploys this machine. `None` for a pre-installed
    /// machine and for nodes of an existing cluster.
    pub mac: Option<String>,
    /// A pre-installed machine's IP address or DNS name (no `mac`).
    pub address: Option<String>,
    pub role: Role,
    pub layout: Layout,
    /// Explicit blank device for Ceph (pre-installed machines, existing clusters).
    pub device: Option<String>,
    /// A Ceph logical volume homelab carves on a pre-installed machine.
    pub carve: Option<Carve>,
}

/// The Ceph logical volume [`CEPH_LV`] made from a volume group's free extents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carve {
    pub volume_group: String,
    /// `Rest` (all free extents) or `Bytes`; never `None`.
    pub size: CephVolume,
}

impl Carve {
    pub fn device(&self) -> String {
        format!("/dev/{}/{CEPH_LV}", self.volume_group)
    }
}

/// The smallest device ceph-volume accepts (`Insufficient space (<5GB)`): 5 GiB.
pub const CEPH_MIN_BYTES: u64 = 5 * (1 << 30);

impl Machine {
    /// A machine MAAS does not deploy: reached by SSH at its `address`.
    pub fn is_preinstalled(&self) -> bool {
        self.mac.is_none() && self.address.is_some()
    }
    /// The block device Rook gets on this machine, if any.
    pub fn ceph_device(&self) -> Option<String> {
        if let Some(d) = &self.device {
            return Some(d.clone());
        }
        if let Some(c) = &self.carve {
            return Some(c.device());
        }
        match self.layout {
            Layout::Lvm { ceph: CephVolume::Rest | CephVolume::Bytes(_), .. } => {
                Some(format!("/dev/{VOLUME_GROUP}/{CEPH_LV}"))
            }
            _ => None,
        }
    }
    pub fn is_control_plane(&self) -> bool {
        self.role == Role::ControlPlane
    }
}

#[derive(Debug, Clone)]
pub enum Kubernetes {
    Microk8s {
        channel: String,
        /// Kubernetes minor of the channel's track, e.g. (1, 26).
        minor: (u32, u32),
        addons: Vec<String>,
    },
    Existing {
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
    },
}

impl Kubernetes {
    pub fn is_microk8s(&self) -> bool {
        matches!(self, Kubernetes::Microk8s { .. })
    }
    pub fn minor(&self) -> Option<(u32, u32)> {
        match self {
            Kubernetes::Microk8s { minor, .. } => Some(*minor),
            Kubernetes::Existing { .. } => None,
        }
    }
    pub fn channel(&self) -> Option<&str> {
        match self {
            Kubernetes::Microk8s { channel, .. } => Some(channel),
            Kubernetes::Existing { .. } => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rook {
    pub release: RookRelease,
    /// The Ceph image the CephCluster runs (declared, or the release's default).
    pub ceph_image: String,
    pub pools: Vec<Pool>,
}

impl Rook {
    pub const NAMESPACE: &'static str = "rook-ceph";
    pub const CLUSTER_NAME: &'static str = "rook-ceph";
    /// MicroK8s runs kubelet with this root dir; Ceph CSI must mount it.
    pub const MICROK8S_KUBELET_DIR: &'static str = "/var/snap/microk8s/common/var/lib/kubelet";
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub failure_domain: FailureDomain,
    pub replicas: u32,
    pub storage_class: Option<StorageClass>,
}

#[derive(Debug, Clone)]
pub struct StorageClass {
    pub name: String,
    pub default: bool,
}

#[derive(Debug, Clone)]
pub struct Kafka {
    pub release: StrimziRelease,
    pub namespace: String,
    pub name: String,
    pub version: String,
    /// KRaft metadata version from the catalog.
    pub metadata_version: Option<String>,
    pub replicas: u32,
    pub mode: MetadataMode,
    pub storage: VolumeClaim,
    pub listeners: Vec<Listener>,
    pub config: Map<String, Value>,
    pub zookeeper: Option<Ensemble>,
    pub controllers: Option<Ensemble>,
    /// The brokers' node pool with dedicated controllers (`broker`, or `kafka` after a
    /// migration from ZooKeeper).
    pub broker_pool: String,
    pub entity_operator: Map<String, Value>,
    pub topics: Vec<crate::config::model::TopicSpec>,
    pub users: Vec<KafkaUser>,
    pub bridge: Option<Bridge>,
    /// `authorization: simple` on the Kafka (a user has ACLs).
    pub authorization: bool,
}

impl Kafka {
    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

/// A KafkaUser and the listener it connects through (whose authentication homelab sets).
#[derive(Debug, Clone)]
pub struct KafkaUser {
    pub spec: crate::config::model::UserSpec,
    pub listener: String,
}

/// The KafkaBridge: where it connects, as whom, and its NodePort.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    pub replicas: u32,
    pub port: u16,
    /// The KafkaUser it authenticates as, with its authentication.
    pub user: Option<(String, crate::config::model::UserAuthentication)>,
    /// The listener it connects to: name, port, TLS.
    pub listener: (String, u32, bool),
    pub node_port: Option<u16>,
}

/// The PostgreSQL cluster and the CloudNativePG release that runs it.
#[derive(Debug, Clone)]
pub struct Database {
    pub release: crate::catalog::CnpgRelease,
    pub namespace: String,
    pub name: String,
    pub instances: u32,
    /// Size and StorageClass of each instance's data volume.
    pub storage: (String, String),
    pub wal: Option<(String, String)>,
    pub database: String,
    pub owner: String,
    /// PostgreSQL parameters, as the strings CloudNativePG takes.
    pub parameters: std::collections::BTreeMap<String, String>,
    pub image: Option<String>,
    pub node_port: Option<u16>,
}

impl Database {
    /// The Secret with the application's credentials (`<name>-app`).
    pub fn app_secret(&self) -> String {
        format!("{}-app", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Ensemble {
    pub replicas: u32,
    pub storage: VolumeClaim,
}

#[derive(Debug, Clone)]
pub struct VolumeClaim {
    pub size: String,
    /// `None`: the cluster's default StorageClass.
    pub class: Option<String>,
    pub delete_claim: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub commission: Duration,
    pub deploy: Duration,
    pub ssh: Duration,
    pub microk8s: Duration,
    pub join: Duration,
    pub operator: Duration,
    pub ceph: Duration,
    pub kafka: Duration,
    pub database: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        Timeouts {
            commission: m(30),
            deploy: m(30),
            ssh: m(15),
            microk8s: m(10),
            join: m(5),
            operator: m(10),
            ceph: m(30),
            kafka: m(20),
            database: m(15),
        }
    }
}

impl Cluster {
    pub fn machine(&self, hostname: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.hostname == hostname)
    }
    pub fn control_planes(&self) -> impl Iterator<Item = &Machine> {
        self.machines.iter().filter(|m| m.is_control_plane())
    }
    /// The node that bootstraps the cluster and issues join tokens: the first control plane.
    pub fn first_control_plane(&self) -> Option<&Machine> {
        self.control_planes().next()
    }
    pub fn ceph_machines(&self) -> impl Iterator<Item = &Machine> {
        self.machines.iter().filter(|m| m.ceph_device().is_some())
    }
    pub fn context_name(&self) -> String {
        format!("homelab-{}", self.name)
    }
}
