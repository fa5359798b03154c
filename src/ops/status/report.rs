//! What `homelab status` reports: one row type per layer and the report that holds them (also
//! the `-o json` document).

use serde::Serialize;
use std::collections::BTreeMap;

/// What the machines layer says of a machine MAAS does not deploy.
pub const PREINSTALLED: &str = "pre-installed (not managed by MAAS)";

#[derive(Debug, Clone, Serialize, Default)]
pub struct MachineRow {
    pub hostname: String,
    pub mac: String,
    pub status: String,
    pub power: String,
    pub ip: String,
    pub cores: u32,
    pub memory_mib: u64,
    pub disk_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub version: String,
    pub role: String,
    pub cores: u32,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CephRow {
    pub phase: String,
    pub health: String,
    pub osds: u32,
    pub osds_by_node: BTreeMap<String, u32>,
    pub raw_bytes: u64,
    pub used_bytes: u64,
    pub usable_bytes: u64,
    /// Health checks as `NAME: message`.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PoolRow {
    pub name: String,
    pub phase: String,
    pub replicas: u64,
    pub failure_domain: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ClassRow {
    pub name: String,
    pub provisioner: String,
    pub default: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PvcRow {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub capacity: String,
    pub class: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct KafkaRow {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    pub message: String,
    pub version: String,
    pub brokers: u64,
    pub bootstrap: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TopicRow {
    pub name: String,
    /// The topic's name in Kafka (`status.topicName`, else the object's).
    pub topic: String,
    pub partitions: Option<u64>,
    pub replicas: Option<u64>,
    /// Ready, NotReady (with the reason), or Unmanaged.
    pub state: String,
    pub message: String,
    /// Made by homelab (its label); `up --prune` may delete it when the file drops it.
    pub homelab: bool,
    pub in_file: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct UserRow {
    pub name: String,
    pub authentication: String,
    pub ready: bool,
    pub message: String,
    /// The Secret with the user's credentials (`homelab connect kafka --user NAME` reads it).
    pub secret: String,
    pub homelab: bool,
    pub in_file: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct BridgeRow {
    pub name: String,
    pub ready: bool,
    pub replicas: u64,
    /// Inside the cluster (`status.url`).
    pub url: String,
    /// From the LAN, through homelab's NodePort (when `expose` is set).
    pub lan_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct DatabaseRow {
    pub namespace: String,
    pub name: String,
    pub operator: String,
    pub instances: u64,
    pub ready_instances: u64,
    pub phase: String,
    pub primary: String,
    /// The Secret with the application's credentials (`<name>-app`).
    pub secret: String,
    /// Inside the cluster, without the password.
    pub uri: String,
    /// From the LAN through homelab's NodePort, without the password.
    pub lan_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub machines: usize,
    pub cores: u64,
    pub memory_bytes: u64,
    pub ceph_raw_bytes: u64,
    pub ceph_usable_bytes: u64,
    pub topics: usize,
    pub users: usize,
    pub database_instances: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StatusReport {
    pub cluster: String,
    pub healthy: bool,
    /// Each problem reads "what is wrong — what to do"; JSON carries the two apart.
    #[serde(serialize_with = "problems_json")]
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// What fixes a dead or unhealthy PC (see `advice`).
    pub advice: Vec<String>,
    pub machines: Vec<MachineRow>,
    pub nodes: Vec<NodeRow>,
    pub ceph: Option<CephRow>,
    pub pools: Vec<PoolRow>,
    pub storage_classes: Vec<ClassRow>,
    pub pvcs: Vec<PvcRow>,
    pub kafka: Option<KafkaRow>,
    pub topics: Vec<TopicRow>,
    pub users: Vec<UserRow>,
    pub bridge: Option<BridgeRow>,
    pub database: Option<DatabaseRow>,
    pub totals: Totals,
}

/// A problem as `{"message", "hint"}`: the text before and after its first " — ".
fn problems_json<S: serde::Serializer>(problems: &[String], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(problems.len()))?;
    for p in problems {
        let (message, hint) = match p.split_once(" — ") {
            Some((m, h)) => (m, Some(h)),
            None => (p.as_str(), None),
        };
        seq.serialize_element(&serde_json::json!({"message": message, "hint": hint}))?;
    }
    seq.end()
}

/// The status report as one line of the JSON stream: `{"event": "status", "ts", …report}`.
pub fn json_line(report: &StatusReport) -> String {
    crate::foundation::json::event_line("status", report)
}
