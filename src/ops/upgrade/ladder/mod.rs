//! The pure half of `upgrade` (this file: a point of the ladder and its hops; [`moves`]:
//! which hops can be taken from a point; [`search`]: the choice among the ladders): from the versions that run and the versions the file
//! declares, the ladder of hops between them, derived from the catalog's compatibility data
//! (per Rook release its Kubernetes and Ceph ranges, per MicroK8s track its Kubernetes minor,
//! per Ceph major the majors it upgrades from). No I/O. Facts: docs/day2.md §2.
//!
//! The rules: MicroK8s one minor per round (inside the running Rook's Kubernetes range);
//! Rook one minor per hop (the next release must accept the Kubernetes and the Ceph that
//! run); Ceph to a major the running Rook accepts and Ceph upgrades to from the running one.
//! Strimzi (docs/day2.md §2.4): an operator hop to any later release that runs the Kafka
//! version that runs and accepts the Kubernetes that runs (its minimum), never to a release
//! without ZooKeeper before the cluster is on KRaft, never to 1.0+ before the Strimzi
//! resources are stored as `v1`; a Kafka step to the highest version the running operator
//! and a later one both run; the brokers into the node pool `kafka`, then the ZooKeeper →
//! KRaft migration on a release that migrates (0.40–0.45, Kafka ≥ 3.7.0); the `v1`
//! conversion on a release that serves both APIs (0.49–0.51).
//! Among the ladders that reach the target, the one chosen has the fewest hops, then the
//! fewest MicroK8s stages (the rounds run back to back), then the least work done on a
//! newer Kubernetes than needed (everything that can climb on the running Kubernetes does
//! so before the next round), then the fewest switches between components, then at the
//! first difference prefers Rook, then Ceph, then MicroK8s, then Strimzi. The choice
//! depends on the versions alone, so a run that resumes half way chooses the rest of the
//! same ladder. The seed's ladder reads: Rook to 1.15, Ceph 17 → 19, Strimzi to 0.47 with
//! Kafka on KRaft, MicroK8s to 1.31, Rook 1.16 → 1.20, Strimzi to 1.2 on `v1`.

mod moves;
mod search;
#[cfg(test)]
mod tests;

pub use search::{Unreachable, plan, plan_after};

use crate::catalog::{fmt_version, parse_version};

/// Where a Kafka keeps its metadata, as the ladder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metadata {
    /// ZooKeeper, brokers in `spec.kafka`.
    ZooKeeper,
    /// ZooKeeper, brokers in the node pool `kafka`.
    NodePools,
    /// A ZooKeeper → KRaft migration was started and is not finished.
    Migrating,
    /// KRaft, ZooKeeper gone from the spec.
    KRaft,
}

impl Metadata {
    fn words(self) -> &'static str {
        match self {
            Metadata::ZooKeeper => "ZooKeeper",
            Metadata::NodePools => "ZooKeeper, node pools",
            Metadata::Migrating => "migrating to KRaft",
            Metadata::KRaft => "KRaft",
        }
    }
}

/// The Strimzi side of one point of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaAt {
    /// The operator release (`0.45.2`).
    pub strimzi: String,
    /// `spec.kafka.version`.
    pub version: String,
    pub metadata: Metadata,
    /// Every Strimzi CRD stores `v1` (`status.storedVersions == [v1]`).
    pub v1: bool,
}

fn v3(s: &str) -> (u32, u32, u32) {
    parse_version(s).unwrap_or((0, 0, 0))
}

/// `3.9` of `3.9.1`: the protocol and message-format versions of a Kafka version.
pub fn major_minor(v: &str) -> String {
    let p = v3(v);
    format!("{}.{}", p.0, p.1)
}

/// Versions of the three ladders at one point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Versions {
    /// The Kubernetes minor every node runs (the lowest, while a round is half done).
    pub kubernetes: (u32, u32),
    /// The Rook release (`v1.15.9`).
    pub rook: String,
    /// The Ceph image (`quay.io/ceph/ceph:v19.2.3`).
    pub ceph: String,
    /// Strimzi and its Kafka (none: the file declares no Kafka, or none runs yet).
    pub kafka: Option<KafkaAt>,
    /// The CloudNativePG release (`v1.22.5`; none: no database declared, or none runs yet).
    pub cnpg: Option<String>,
}

impl Versions {
    fn ceph_version(&self) -> (u32, u32, u32) {
        parse_version(&self.ceph).unwrap_or((0, 0, 0))
    }
    fn rook_minor(&self) -> (u32, u32) {
        parse_version(&self.rook).map(|v| (v.0, v.1)).unwrap_or((0, 0))
    }
    pub fn describe(&self) -> String {
        let mut s = format!(
            "MicroK8s {}.{}, Rook {}, Ceph {}",
            self.kubernetes.0,
            self.kubernetes.1,
            self.rook,
            fmt_version(self.ceph_version())
        );
        if let Some(k) = &self.kafka {
            s.push_str(&format!(", Strimzi {} with Kafka {} on {}", k.strimzi, k.version, k.metadata.words()));
            if k.v1 {
                s.push_str(" (v1)");
            }
        }
        if let Some(c) = &self.cnpg {
            s.push_str(&format!(", CloudNativePG {c}"));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// One MicroK8s minor on every node: control planes one at a time, then workers.
    MicroK8s { from: (u32, u32), to: (u32, u32) },
    /// One Rook minor (or a patch within the running minor).
    Rook { from: String, to: String },
    /// The Ceph image of the CephCluster.
    Ceph { from: String, to: String },
    /// The Strimzi operator: the release's install files.
    Strimzi { from: String, to: String },
    /// `spec.kafka.version` with the protocol (ZooKeeper) or metadata version (KRaft)
    /// pinned, a roll, then the protocol raised, a second roll.
    Kafka { from: String, to: String, kraft: bool },
    /// The brokers into the KafkaNodePool `kafka` (same replicas and storage).
    NodePools,
    /// ZooKeeper → KRaft, with the point of no return before `strimzi.io/kraft=enabled`.
    Kraft,
    /// Strimzi resources rewritten in `v1` form, every Strimzi CRD storing `v1`.
    StrimziV1 { at: String },
    /// The CloudNativePG operator: the release manifest of the release the Kubernetes
    /// version calls for.
    CloudNativePg { from: String, to: String },
}

fn minor_s(m: (u32, u32)) -> String {
    format!("{}.{}", m.0, m.1)
}

impl Hop {
    /// The hop's name (`--until` takes it): `microk8s-1.27`, `rook-v1.11.11`, `ceph-19.2.6`.
    pub fn name(&self) -> String {
        match self {
            Hop::MicroK8s { to, .. } => format!("microk8s-{}", minor_s(*to)),
            Hop::Rook { to, .. } => format!("rook-{to}"),
            Hop::Ceph { to, .. } => format!("ceph-{}", fmt_version(parse_version(to).unwrap_or((0, 0, 0)))),
            Hop::Strimzi { to, .. } => format!("strimzi-{to}"),
            Hop::Kafka { to, .. } => format!("kafka-{to}"),
            Hop::NodePools => "kafka-node-pool".into(),
            Hop::Kraft => "kraft".into(),
            Hop::StrimziV1 { .. } => "strimzi-v1-api".into(),
            Hop::CloudNativePg { to, .. } => format!("cloudnative-pg-{to}"),
        }
    }

    /// The component the hop moves (its stage is a run of hops of one component).
    pub fn component(&self) -> &'static str {
        match self {
            Hop::MicroK8s { .. } => "microk8s",
            Hop::Rook { .. } => "rook",
            Hop::Ceph { .. } => "ceph",
            Hop::CloudNativePg { .. } => "cloudnative-pg",
            _ => "strimzi",
        }
    }

    /// What changes, in the words of the plan and of the run.
    pub fn words(&self) -> String {
        match self {
            Hop::MicroK8s { from, to } => format!(
                "MicroK8s {} → {} on every node, control planes first, one at a time (drain, snap refresh microk8s --channel={}/stable, wait Ready, uncordon)",
                minor_s(*from),
                minor_s(*to),
                minor_s(*to)
            ),
            Hop::Rook { from, to } => format!(
                "Rook {from} → {to} (apply its crds.yaml and common.yaml{}, then set the operator image; operator.yaml is not re-applied)",
                if parse_version(to).is_some_and(|v| (v.0, v.1) >= (1, 18)) { " and csi-operator.yaml" } else { "" }
            ),
            Hop::Ceph { from, to } => format!(
                "Ceph {} → {} (set the CephCluster's cephVersion.image to {to}; Rook restarts mons, mgrs and OSDs one at a time)",
                fmt_version(parse_version(from).unwrap_or((0, 0, 0))),
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
            Hop::Strimzi { from, to } => format!(
                "Strimzi {from} → {to} (apply its install files in the Kafka's namespace, objects it dropped deleted; the operator rolls the brokers onto its images)"
            ),
            Hop::Kafka { from, to, kraft: false } => format!(
                "Kafka {from} → {to} with inter.broker.protocol.version pinned at {}, a roll, then the protocol raised to {}, a second roll",
                major_minor(from),
                major_minor(to)
            ),
            Hop::Kafka { from, to, kraft: true } => {
                format!("Kafka {from} → {to} with metadataVersion pinned, a roll, then metadataVersion raised, a second roll")
            }
            Hop::NodePools => "the brokers into KafkaNodePool `kafka` (broker role, the same replicas and storage: pod names, PVC names and data stay), then strimzi.io/node-pools=enabled (no roll)".into(),
            Hop::Kraft => "ZooKeeper → KRaft: the four version settings aligned, the `controller` pool created, strimzi.io/kraft=migration, KRaftMigration → KRaftDualWriting → KRaftPostMigration; POINT OF NO RETURN (the run stops unless --continue-kraft is given); then strimzi.io/kraft=enabled, PreKRaft → KRaft, then spec.zookeeper and the protocol settings removed".into(),
            Hop::StrimziV1 { at } => format!(
                "every Strimzi resource rewritten in v1 form and each Strimzi CRD's storage version moved to v1 (status.storedVersions [v1]), on Strimzi {at}, before 1.0 stops serving v1beta2"
            ),
            Hop::CloudNativePg { from, to } => format!(
                "CloudNativePG {from} → {to} (apply its release manifest by server-side apply; the new operator then updates the PostgreSQL instances itself)"
            ),
        }
    }

    /// What is checked before the hop.
    pub fn gate_words(&self) -> String {
        let common =
            "Ceph HEALTH_OK, every OSD up and in, every node Ready, the datastore keeps its voters, Kafka Ready";
        match self {
            Hop::MicroK8s { to, .. } => format!("{common}; the running Rook supports Kubernetes {}", minor_s(*to)),
            Hop::Rook { to, .. } => format!("{common}; Rook {to} supports the Kubernetes and Ceph that run"),
            Hop::Ceph { to, .. } => format!(
                "{common}; the running Rook accepts Ceph {}",
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
            Hop::Strimzi { to, .. } => {
                format!(
                    "{common} with every broker ready; Strimzi {to} runs the Kafka version and the Kubernetes that run"
                )
            }
            Hop::Kafka { to, .. } => format!("{common} with every broker ready; the running Strimzi runs Kafka {to}"),
            Hop::NodePools => format!("{common} with every broker ready; the running Strimzi has node pools"),
            Hop::Kraft => format!(
                "{common} with every broker ready; the running Strimzi migrates (0.40–0.45), Kafka ≥ 3.7.0, the file declares dedicated controllers"
            ),
            Hop::StrimziV1 { .. } => format!("{common}; the running Strimzi serves v1 and v1beta2"),
            Hop::CloudNativePg { to, .. } => {
                format!(
                    "{common}; CloudNativePG {to} accepts the Kubernetes that runs (the first stop of the ladder it does)"
                )
            }
        }
    }

    /// What the hop waits for after its change.
    pub fn wait_words(&self) -> String {
        match self {
            Hop::MicroK8s { to, .. } => format!(
                "per node: MicroK8s ready, its Node Ready at v{}, Ceph clean and Kafka Ready before the next node",
                minor_s(*to)
            ),
            Hop::Rook { to, .. } => {
                format!("the operator rolled out and every Ceph daemon labelled rook-version={to}; Ceph Ready")
            }
            Hop::Ceph { to, .. } => format!(
                "every mon, mgr and OSD labelled ceph-version={}, the CephCluster's status.version at it, health not ERR",
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
            Hop::Strimzi { to, .. } => format!(
                "the operator rolled out on {to}; the Kafka reconciled by it (status.operatorLastSuccessfulVersion from 0.37, the broker pods' images before) and Ready"
            ),
            Hop::Kafka { to, .. } => format!(
                "each roll: every broker pod on the image of Kafka {to}, the Kafka Ready at its generation (status.kafkaVersion from 0.37); NotReady timeouts of a slow roll are waited through"
            ),
            Hop::NodePools => "the pool's nodeIds the brokers' ids, the Kafka Ready at its generation".into(),
            Hop::Kraft => "status.kafkaMetadataState through every state in order, the Kafka Ready after each".into(),
            Hop::StrimziV1 { .. } => "every Strimzi CRD's status.storedVersions is [v1]".into(),
            Hop::CloudNativePg { to, .. } => format!(
                "the operator rolled out on {to}, its CA in both webhook configurations, the PostgreSQL cluster healthy with every instance ready"
            ),
        }
    }

    /// Budget on real hardware, seconds (docs/day2.md §3.4: 15 min per MicroK8s node, 30 min
    /// per Rook hop, 15 min per OSD for a Ceph major).
    pub fn budget(&self, nodes: usize, osds: usize) -> u64 {
        match self {
            Hop::MicroK8s { .. } => 900 * nodes.max(1) as u64,
            Hop::Rook { .. } => 1800,
            Hop::Ceph { .. } => 900 * osds.max(1) as u64,
            // Strimzi waits up to 5 minutes per pod (STRIMZI_OPERATION_TIMEOUT_MS, docs/day2.md
            // §3.2); a roll takes every broker once (one per machine here).
            Hop::Strimzi { .. } => 300 + 300 * nodes.max(1) as u64,
            Hop::Kafka { .. } => 600 * nodes.max(1) as u64,
            Hop::NodePools => 300,
            Hop::Kraft => 600 + 1200 * nodes.max(1) as u64,
            Hop::StrimziV1 { .. } => 300,
            // CloudNativePG's e2e allows 120 s for the operator and 600 s for a cluster.
            Hop::CloudNativePg { .. } => 720,
        }
    }

    /// The Strimzi side after this hop (unchanged by MicroK8s, Rook and Ceph hops).
    pub fn apply_kafka(&self, k: &KafkaAt) -> KafkaAt {
        let mut n = k.clone();
        match self {
            Hop::Strimzi { to, .. } => n.strimzi = to.clone(),
            Hop::Kafka { to, .. } => n.version = to.clone(),
            Hop::NodePools => n.metadata = Metadata::NodePools,
            Hop::Kraft => n.metadata = Metadata::KRaft,
            Hop::StrimziV1 { .. } => n.v1 = true,
            Hop::MicroK8s { .. } | Hop::Rook { .. } | Hop::Ceph { .. } | Hop::CloudNativePg { .. } => {}
        }
        n
    }

    /// The versions after this hop.
    pub fn apply(&self, v: &Versions) -> Versions {
        let mut n = v.clone();
        match self {
            Hop::MicroK8s { to, .. } => n.kubernetes = *to,
            Hop::Rook { to, .. } => n.rook = to.clone(),
            Hop::Ceph { to, .. } => n.ceph = to.clone(),
            Hop::CloudNativePg { to, .. } => n.cnpg = Some(to.clone()),
            _ => n.kafka = n.kafka.as_ref().map(|k| self.apply_kafka(k)),
        }
        n
    }
}

/// Stages: runs of consecutive hops of one component, lettered A, B, C, …
pub fn stages(hops: &[Hop]) -> Vec<String> {
    let mut out = Vec::new();
    let mut letter = b'A';
    for (i, h) in hops.iter().enumerate() {
        if i > 0 && hops[i - 1].component() != h.component() {
            letter = letter.saturating_add(1);
        }
        out.push(char::from(letter).to_string());
    }
    out
}

/// The hops up to and including `until` (a hop name or a stage letter).
pub fn cut(hops: &[Hop], until: Option<&str>) -> Result<usize, String> {
    let Some(u) = until else { return Ok(hops.len()) };
    let st = stages(hops);
    if let Some(i) = hops.iter().position(|h| h.name() == u) {
        return Ok(i + 1);
    }
    if let Some(i) = st.iter().rposition(|s| s.eq_ignore_ascii_case(u)) {
        return Ok(i + 1);
    }
    let names: Vec<String> = hops.iter().map(Hop::name).collect();
    Err(format!(
        "--until {u} names no hop or stage of this ladder (hops: {}; stages: {})",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        {
            let mut s = st.clone();
            s.dedup();
            s.join(", ")
        }
    ))
}
