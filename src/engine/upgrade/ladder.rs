//! The pure half of `upgrade`: from the versions that run and the versions the file
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

use crate::catalog::{Catalog, RookRelease, StrimziRelease, fmt_version, parse_version};
use std::collections::{HashMap, HashSet};

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

/// No ladder reaches the target: why, and what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub reason: String,
    pub hint: String,
}

fn unreachable(reason: impl Into<String>, hint: impl Into<String>) -> Unreachable {
    Unreachable { reason: reason.into(), hint: hint.into() }
}

/// The hops that can be taken from `v` towards `target`, in order of preference, and why
/// each other move is blocked.
fn moves(cat: &Catalog, v: &Versions, target: &Versions) -> (Vec<Hop>, Vec<String>) {
    let mut blocked = Vec::new();
    let mut rook_moves = Vec::new();
    let mut ceph_moves = Vec::new();
    let mut k8s_moves = Vec::new();
    let (rm, trm) = (v.rook_minor(), target.rook_minor());
    let cur_rook = cat.rook(&v.rook);
    // Rook: the next minor, or the target's patch of the running minor.
    let next: Option<&RookRelease> = if rm == trm && v.rook != target.rook {
        cat.rook(&target.rook)
    } else if rm < trm {
        let nm = (rm.0, rm.1 + 1);
        if nm == trm { cat.rook(&target.rook) } else { cat.rook_of_minor(nm) }
    } else {
        None
    };
    if rm < trm && next.is_none() {
        blocked.push(format!("the catalog pins no Rook release of minor {}.{}", rm.0, rm.1 + 1));
    }
    if let Some(n) = next {
        let ceph = v.ceph_version();
        if !n.kubernetes.contains(v.kubernetes) {
            blocked.push(format!(
                "Rook {} supports Kubernetes {}, and {} runs",
                n.version,
                n.kubernetes.describe(),
                minor_s(v.kubernetes)
            ));
        } else if let Err(e) = n.accepts_ceph(ceph) {
            blocked.push(format!("Rook {} refuses Ceph {}: {e}", n.version, fmt_version(ceph)));
        } else {
            rook_moves.push(Hop::Rook { from: v.rook.clone(), to: n.version.clone() });
        }
    }
    // Ceph: the target image, or the pinned build of a major between, the highest first.
    let (c, tc) = (v.ceph_version(), target.ceph_version());
    if c < tc {
        let mut candidates: Vec<String> = vec![target.ceph.clone()];
        for m in (c.0 + 1..tc.0).rev() {
            if let Some(img) = cat.ceph_image_of(m) {
                candidates.push(img.to_owned());
            }
        }
        for img in candidates {
            let to = parse_version(&img).unwrap_or((0, 0, 0));
            let why = cat.ceph_step(c.0, to.0).err().or_else(|| match cur_rook {
                Some(r) => r
                    .accepts_ceph(to)
                    .err()
                    .map(|e| format!("Rook {} refuses Ceph {}: {e}", r.version, fmt_version(to))),
                None => Some(format!("Rook {} is not in the catalog", v.rook)),
            });
            match why {
                None => ceph_moves.push(Hop::Ceph { from: v.ceph.clone(), to: img }),
                Some(w) => blocked.push(w),
            }
        }
    }
    // MicroK8s: the next minor, inside the running Rook's range.
    if v.kubernetes < target.kubernetes {
        let to = (v.kubernetes.0, v.kubernetes.1 + 1);
        match cur_rook {
            _ if cat.track_of(to).is_none() => {
                blocked.push(format!("the catalog knows no MicroK8s track {}", minor_s(to)))
            }
            Some(r) if !r.kubernetes.contains(to) => blocked.push(format!(
                "Rook {} supports Kubernetes {}, so MicroK8s cannot go to {}",
                r.version,
                r.kubernetes.describe(),
                minor_s(to)
            )),
            _ => k8s_moves.push(Hop::MicroK8s { from: v.kubernetes, to }),
        }
    }
    ([rook_moves, ceph_moves, k8s_moves].concat(), blocked)
}

/// Why release `r` cannot take over from what runs (`None`: it can).
fn operator_refuses(r: &StrimziRelease, k8s: (u32, u32), k: &KafkaAt) -> Option<String> {
    if !r.supports(&k.version) {
        return Some(format!(
            "Strimzi {} does not run Kafka {} (it runs {})",
            r.version,
            k.version,
            r.kafka_versions().join(", ")
        ));
    }
    if !r.kubernetes.contains(k8s) {
        return Some(format!(
            "Strimzi {} needs Kubernetes {}, and {} runs",
            r.version,
            r.kubernetes.describe(),
            minor_s(k8s)
        ));
    }
    if !r.zookeeper && k.metadata != Metadata::KRaft {
        return Some(format!(
            "Strimzi {} has no ZooKeeper: the Kafka must be on KRaft first (the migration runs on Strimzi 0.40–0.45)",
            r.version
        ));
    }
    if r.v1_api() && !k.v1 {
        return Some(format!(
            "Strimzi {} serves only the v1 API: the Strimzi resources must be stored as v1 first (converted on 0.49–0.51)",
            r.version
        ));
    }
    None
}

/// The Strimzi moves from `k` towards `t`: operator hops (the newest first), Kafka steps
/// (the highest first), node pools, the KRaft migration, the `v1` conversion.
fn strimzi_moves(cat: &Catalog, k8s: (u32, u32), k: &KafkaAt, t: &KafkaAt, blocked: &mut Vec<String>) -> Vec<Hop> {
    let mut out = Vec::new();
    let Some(cur) = cat.strimzi(&k.strimzi) else {
        blocked.push(format!("Strimzi {} is not in the catalog", k.strimzi));
        return out;
    };
    let (cv, tv) = (cur.semver(), v3(&t.strimzi));
    let later: Vec<&StrimziRelease> =
        cat.strimzi_ladder().into_iter().filter(|r| r.semver() > cv && r.semver() <= tv).collect();
    if k.metadata == Metadata::Migrating {
        // A started migration is finished (or rolled back) before anything else moves.
        return vec![Hop::Kraft];
    }
    let mut first_refusal = None;
    for r in later.iter().rev() {
        // Storage already moved to v1 stays there: no release that stores v1beta2 again.
        if k.v1 && !r.v1_api() {
            continue;
        }
        match operator_refuses(r, k8s, k) {
            None => out.push(Hop::Strimzi { from: k.strimzi.clone(), to: r.version.clone() }),
            Some(why) => first_refusal = Some(why),
        }
    }
    if !out.iter().any(|h| matches!(h, Hop::Strimzi { .. }))
        && let Some(why) = first_refusal
    {
        blocked.push(why);
    }
    // Kafka: the target version, or the highest one the running operator and a later
    // release both run (so that release can take over).
    let (kv, tk) = (v3(&k.version), v3(&t.version));
    if kv < tk {
        let runs = |r: &StrimziRelease, x: &str| r.supports(x) && v3(x) > kv && v3(x) <= tk;
        let mut cands: Vec<String> = Vec::new();
        if cur.supports(&t.version) {
            cands.push(t.version.clone());
        }
        for r in &later {
            if let Some(x) =
                cur.kafka_versions().into_iter().filter(|x| runs(cur, x) && r.supports(x)).max_by_key(|x| v3(x))
            {
                cands.push(x.to_owned());
            }
        }
        cands.sort_by_key(|x| std::cmp::Reverse(v3(x)));
        cands.dedup();
        if cands.is_empty() && out.is_empty() {
            blocked.push(format!(
                "Strimzi {} runs Kafka {}: none of them is newer than {} and run by a later release",
                cur.version,
                cur.kafka_versions().join(", "),
                k.version
            ));
        }
        // Kafka steps come first: the running operator's newest Kafka before the next one.
        let steps: Vec<Hop> = cands
            .into_iter()
            .map(|to| Hop::Kafka { from: k.version.clone(), to, kraft: k.metadata == Metadata::KRaft })
            .collect();
        out.splice(0..0, steps);
    }
    // The v1 conversion on a release that serves both APIs, before its operator hops.
    if t.v1 && !k.v1 && cur.serves_v1_and_v1beta2() {
        let at = out.iter().position(|h| matches!(h, Hop::Strimzi { .. })).unwrap_or(out.len());
        out.insert(at, Hop::StrimziV1 { at: cur.version.clone() });
    }
    if t.metadata == Metadata::KRaft {
        match k.metadata {
            Metadata::ZooKeeper if cur.node_pools && cur.zookeeper => out.push(Hop::NodePools),
            Metadata::NodePools if cur.migration && kv >= (3, 7, 0) => out.push(Hop::Kraft),
            Metadata::NodePools => blocked.push(format!(
                "the ZooKeeper → KRaft migration needs Strimzi 0.40–0.45 with Kafka 3.7.0 or newer, and Strimzi {} runs Kafka {}",
                cur.version, k.version
            )),
            _ => {}
        }
    }
    out
}

/// The ladder from `now` to `target`, or why none exists.
pub fn plan(cat: &Catalog, now: &Versions, target: &Versions) -> Result<Vec<Hop>, Unreachable> {
    plan_after(cat, now, target, None)
}

/// The ladder from `now`, reached by a hop of infrastructure component `last` (`microk8s`,
/// `rook`, `ceph`; what `upgrade` keeps in the cluster): a run that resumes in the middle of
/// a stage carries the stage on, as the whole ladder had it.
pub fn plan_after(
    cat: &Catalog,
    now: &Versions,
    target: &Versions,
    last: Option<&str>,
) -> Result<Vec<Hop>, Unreachable> {
    let last: Option<&'static str> = ["microk8s", "rook", "ceph"].into_iter().find(|c| Some(*c) == last);
    // Refusals that no ladder can get around: going down.
    let (nr, tr) = (parse_version(&now.rook), parse_version(&target.rook));
    let (nc, tc) = (now.ceph_version(), target.ceph_version());
    if now.kubernetes > target.kubernetes {
        return Err(unreachable(
            format!(
                "the cluster runs Kubernetes {}, the file declares {}: MicroK8s does not go back a minor",
                minor_s(now.kubernetes),
                minor_s(target.kubernetes)
            ),
            format!("declare channel {}/stable (or newer) in the file", minor_s(now.kubernetes)),
        ));
    }
    if nr > tr {
        return Err(unreachable(
            format!(
                "the operator runs Rook {}, the file declares {}: Rook upgrades are only supported forward",
                now.rook, target.rook
            ),
            format!("declare rook.version {} (or newer)", now.rook),
        ));
    }
    if nc > tc {
        return Err(unreachable(
            format!(
                "image spec version {} is lower than the running cluster version {}, downgrading is not supported",
                fmt_version(tc),
                fmt_version(nc)
            ),
            format!("declare rook.cephImage {} (or a newer pinned build)", now.ceph),
        ));
    }
    if let (Some(k), Some(t)) = (&now.kafka, &target.kafka) {
        if v3(&k.strimzi) > v3(&t.strimzi) {
            return Err(unreachable(
                format!(
                    "the operator runs Strimzi {}, the file declares {}: homelab does not downgrade Strimzi",
                    k.strimzi, t.strimzi
                ),
                format!("declare kafka.strimziVersion {} (or newer)", k.strimzi),
            ));
        }
        if v3(&k.version) > v3(&t.version) {
            return Err(unreachable(
                format!(
                    "Kafka {} runs, the file declares {}: homelab does not downgrade Kafka (a raised metadata or protocol version cannot go back)",
                    k.version, t.version
                ),
                format!("declare kafka.cluster.version {} (or newer)", k.version),
            ));
        }
        if k.metadata == Metadata::KRaft && t.metadata != Metadata::KRaft {
            return Err(unreachable(
                "the Kafka runs on KRaft and the file declares ZooKeeper: a finished migration has no way back",
                "declare `metadata: kraft` with `controllers:`",
            ));
        }
    }
    // The infrastructure (MicroK8s, Rook, Ceph) first, then the Strimzi track placed on it.
    let (infra_now, infra_target) =
        (Versions { kafka: None, cnpg: None, ..now.clone() }, Versions { kafka: None, cnpg: None, ..target.clone() });
    let mut memo = HashMap::new();
    let Some(infra) =
        best(cat, &infra_now, &infra_target, last, &mut memo).map(|_| walk(&infra_now, &infra_target, last, &memo))
    else {
        return Err(no_ladder(cat, &infra_now, &infra_target, target));
    };
    let hops = match (&now.kafka, &target.kafka) {
        (Some(k), Some(t)) if k != t => merge_strimzi(cat, now, &infra, last, k, t)?,
        _ => infra,
    };
    place_cnpg(cat, now, target, hops, last)
}

/// Places the CloudNativePG hop at the first point of the ladder whose Kubernetes the
/// target release accepts, never between two MicroK8s rounds of one stage. The pinned
/// releases leave a gap (v1.22.5 documents Kubernetes up to 1.28, v1.30.0 from 1.30), so
/// the running release is carried over the rounds in between; the plan says so.
fn place_cnpg(
    cat: &Catalog,
    now: &Versions,
    target: &Versions,
    mut hops: Vec<Hop>,
    last: Option<&'static str>,
) -> Result<Vec<Hop>, Unreachable> {
    let (Some(from), Some(to)) = (&now.cnpg, &target.cnpg) else { return Ok(hops) };
    if from == to {
        return Ok(hops);
    }
    if v3(from) > v3(to) {
        return Err(unreachable(
            format!(
                "CloudNativePG {from} runs and the file's Kubernetes calls for {to}: homelab does not downgrade CloudNativePG"
            ),
            "declare the Kubernetes the cluster runs (or newer)",
        ));
    }
    let Some(min) = cat.cnpg(to).and_then(|r| crate::catalog::parse_minor(&r.kubernetes.min)) else {
        return Err(unreachable(
            format!("CloudNativePG {to} is not in the release catalog"),
            "add it with --catalog FILE",
        ));
    };
    let mut k = now.kubernetes;
    for i in 0..=hops.len() {
        let after_round = if i == 0 { last == Some("microk8s") } else { matches!(hops[i - 1], Hop::MicroK8s { .. }) };
        let splits = after_round && matches!(hops.get(i), Some(Hop::MicroK8s { .. }));
        if k >= min && !splits {
            hops.insert(i, Hop::CloudNativePg { from: from.clone(), to: to.clone() });
            return Ok(hops);
        }
        if let Some(Hop::MicroK8s { to, .. }) = hops.get(i) {
            k = *to;
        }
    }
    Err(unreachable(
        format!("CloudNativePG {to} needs Kubernetes {}.{} or later; the ladder ends on {}", min.0, min.1, minor_s(k)),
        "declare a newer MicroK8s channel",
    ))
}

fn no_ladder(cat: &Catalog, now: &Versions, target: &Versions, whole: &Versions) -> Unreachable {
    // No ladder: find how far one gets, and what blocks there.
    let mut seen: HashSet<Versions> = HashSet::new();
    let mut deepest: (usize, Versions, Option<Vec<String>>) = (0, now.clone(), None);
    furthest(cat, now, target, 0, &mut seen, &mut deepest);
    let (_, at, blocked) = deepest;
    let blocked = blocked.unwrap_or_default();
    let mut reason = format!("no ladder of supported hops reaches {}", whole.describe());
    if at != *now {
        reason.push_str(&format!("; the furthest one can climb is {}", at.describe()));
    }
    if !blocked.is_empty() {
        reason.push_str(&format!(", where {}", blocked.join("; ")));
    }
    unreachable(
        reason,
        "declare versions the ladder reaches: `homelab upgrade --plan` with a target file shows the hops; every Rook minor accepts only some Kubernetes minors and Ceph majors, every Strimzi release only some Kafka versions and a minimum Kubernetes (docs/day2.md §2.3, §2.4)",
    )
}

/// (Strimzi hops, the Kubernetes minors they run on).
type TrackCost = (usize, u64);
type TrackMemo = HashMap<(KafkaAt, usize), Option<(TrackCost, Option<Hop>)>>;

/// Places the Strimzi track on the infrastructure ladder: at each point of it (the
/// Kubernetes minor `k8s[i]`) the Strimzi moves that run there, or on to the next point.
/// Fewest hops, then each hop on the oldest Kubernetes it can run on; a state's best
/// suffix does not depend on how it was reached, so a resumed run takes the same track.
/// `open[i]`: Strimzi hops may run at point `i` (not between two MicroK8s rounds of one
/// stage: a stage is not split).
fn track(
    cat: &Catalog,
    k: &KafkaAt,
    i: usize,
    k8s: &[(u32, u32)],
    open: &[bool],
    t: &KafkaAt,
    memo: &mut TrackMemo,
) -> Option<TrackCost> {
    if k == t {
        return Some((0, 0));
    }
    let key = (k.clone(), i);
    if let Some(r) = memo.get(&key) {
        return r.as_ref().map(|(c, _)| *c);
    }
    memo.insert(key.clone(), None);
    // On to the next point first: at equal cost a Strimzi hop goes last among the hops on
    // its Kubernetes minor (after Rook and Ceph, right before the next MicroK8s round).
    let mut found: Option<(TrackCost, Option<Hop>)> =
        if i + 1 < k8s.len() { track(cat, k, i + 1, k8s, open, t, memo).map(|c| (c, None)) } else { None };
    let mut blocked = Vec::new();
    let moves = if open[i] { strimzi_moves(cat, k8s[i], k, t, &mut blocked) } else { vec![] };
    for h in moves {
        let next = h.apply_kafka(k);
        if let Some((n, late)) = track(cat, &next, i, k8s, open, t, memo) {
            let cost = (n + 1, late + u64::from(k8s[i].1));
            if found.as_ref().is_none_or(|(fc, _)| cost < *fc) {
                found = Some((cost, Some(h)));
            }
        }
    }
    memo.insert(key, found.clone());
    found.map(|(c, _)| c)
}

fn merge_strimzi(
    cat: &Catalog,
    now: &Versions,
    infra: &[Hop],
    last: Option<&'static str>,
    k: &KafkaAt,
    t: &KafkaAt,
) -> Result<Vec<Hop>, Unreachable> {
    let mut k8s = vec![now.kubernetes];
    let mut v = Versions { kafka: None, cnpg: None, ..now.clone() };
    for h in infra {
        v = h.apply(&v);
        k8s.push(v.kubernetes);
    }
    let is_round = |i: usize| -> bool {
        if i == 0 { last == Some("microk8s") } else { matches!(infra.get(i - 1), Some(Hop::MicroK8s { .. })) }
    };
    let open: Vec<bool> =
        (0..k8s.len()).map(|i| !(is_round(i) && matches!(infra.get(i), Some(Hop::MicroK8s { .. })))).collect();
    let mut memo = TrackMemo::new();
    if track(cat, k, 0, &k8s, &open, t, &mut memo).is_none() {
        // How far the track gets on the final Kubernetes, and what blocks there.
        let last = *k8s.last().unwrap_or(&now.kubernetes);
        let mut at = k.clone();
        let mut blocked = Vec::new();
        let mut seen = HashSet::new();
        while seen.insert(at.clone()) {
            blocked.clear();
            let moves = strimzi_moves(cat, last, &at, t, &mut blocked);
            let Some(h) = moves.into_iter().next() else { break };
            at = h.apply_kafka(&at);
        }
        let mut reason = format!(
            "no ladder of supported hops takes Strimzi {} with Kafka {} to Strimzi {} with Kafka {} on {}",
            k.strimzi,
            k.version,
            t.strimzi,
            t.version,
            t.metadata.words()
        );
        if at != *k {
            reason.push_str(&format!("; it gets as far as Strimzi {} with Kafka {}", at.strimzi, at.version));
        }
        if !blocked.is_empty() {
            reason.push_str(&format!(", where {}", blocked.join("; ")));
        }
        return Err(unreachable(
            reason,
            "declare versions the ladder reaches: every Strimzi release runs only some Kafka versions and needs a minimum Kubernetes (docs/day2.md §2.4)",
        ));
    }
    let mut out = Vec::new();
    let (mut cur, mut i) = (k.clone(), 0usize);
    loop {
        match memo.get(&(cur.clone(), i)) {
            Some(Some((_, Some(h)))) => {
                cur = h.apply_kafka(&cur);
                out.push(h.clone());
            }
            Some(Some((_, None))) if i < infra.len() => {
                out.push(infra[i].clone());
                i += 1;
            }
            _ => break,
        }
        if cur == *t {
            break;
        }
    }
    out.extend(infra[i..].iter().cloned());
    Ok(out)
}

/// (hops, switches between components).
type Cost = (usize, usize);
/// The best cost from a point (after a hop of a component) and the first hop of it.
type Memo = HashMap<(Versions, Option<&'static str>), Option<(Cost, Option<Hop>)>>;

/// The cost of the best ladder from `v` (after a hop of component `last`) to `target`.
fn best(cat: &Catalog, v: &Versions, target: &Versions, last: Option<&'static str>, memo: &mut Memo) -> Option<Cost> {
    if v == target {
        return Some((0, 0));
    }
    let key = (v.clone(), last);
    if let Some(r) = memo.get(&key) {
        return r.as_ref().map(|(c, _)| *c);
    }
    // Every hop raises a version, so no loop forms; the mark ends a defect's recursion.
    memo.insert(key.clone(), None);
    let mut found: Option<(Cost, Option<Hop>)> = None;
    let (hops, _) = moves(cat, v, target);
    for h in hops {
        let c = h.component();
        let Some((n, sw)) = best(cat, &h.apply(v), target, Some(c), memo) else { continue };
        let cost = (n + 1, sw + usize::from(last.is_some_and(|l| l != c)));
        if found.as_ref().is_none_or(|(fc, _)| cost < *fc) {
            found = Some((cost, Some(h)));
        }
    }
    memo.insert(key, found.clone());
    found.map(|(c, _)| c)
}

/// The ladder the memo of [`best`] describes from `now`.
fn walk(now: &Versions, target: &Versions, last: Option<&'static str>, memo: &Memo) -> Vec<Hop> {
    let mut out = Vec::new();
    let (mut v, mut last) = (now.clone(), last);
    while v != *target {
        let Some(Some((_, Some(h)))) = memo.get(&(v.clone(), last)) else { break };
        last = Some(h.component());
        v = h.apply(&v);
        out.push(h.clone());
    }
    out
}

/// Walks every point reachable from `v` (no ladder reaches the target), keeping the first
/// of the furthest ones and what blocks each move there.
fn furthest(
    cat: &Catalog,
    v: &Versions,
    target: &Versions,
    depth: usize,
    seen: &mut HashSet<Versions>,
    deepest: &mut (usize, Versions, Option<Vec<String>>),
) {
    if !seen.insert(v.clone()) || depth > 64 {
        return;
    }
    let (hops, blocked) = moves(cat, v, target);
    if depth > deepest.0 || deepest.2.is_none() {
        *deepest = (depth, v.clone(), Some(blocked));
    }
    for h in hops {
        furthest(cat, &h.apply(v), target, depth + 1, seen, deepest);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(k: u32, rook: &str, ceph: &str) -> Versions {
        Versions {
            kubernetes: (1, k),
            rook: rook.into(),
            ceph: format!("quay.io/ceph/ceph:{ceph}"),
            ..Default::default()
        }
    }

    fn with_kafka(mut v: Versions, strimzi: &str, kafka: &str, metadata: Metadata, v1: bool) -> Versions {
        v.kafka = Some(KafkaAt { strimzi: strimzi.into(), version: kafka.into(), metadata, v1 });
        v
    }

    fn seed() -> Versions {
        with_kafka(v(26, "v1.10.10", "v17.2.5"), "0.33.1", "3.3.2", Metadata::ZooKeeper, false)
    }

    fn current() -> Versions {
        with_kafka(v(33, "v1.20.6", "v20.2.4"), "1.2.0", "4.3.1", Metadata::KRaft, true)
    }

    #[test]
    fn the_strimzi_ladder_is_the_documented_one_interleaved() {
        let cat = Catalog::embedded().unwrap();
        let hops = plan(&cat, &seed(), &current()).unwrap();
        let names: Vec<String> = hops.iter().map(Hop::name).collect();
        let strimzi: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with("strimzi") || n.starts_with("kafka") || *n == "kraft")
            .collect();
        assert_eq!(
            strimzi,
            [
                "strimzi-0.35.1",
                "kafka-3.4.0",
                "strimzi-0.37.0",
                "kafka-3.5.1",
                "strimzi-0.39.0",
                "kafka-3.6.1",
                "strimzi-0.42.0",
                "kafka-3.7.1",
                "strimzi-0.44.0",
                "kafka-3.8.0",
                "strimzi-0.45.2",
                "kafka-3.9.1",
                "kafka-node-pool",
                "kraft",
                "strimzi-0.47.0",
                "kafka-4.0.0",
                "strimzi-0.50.1",
                "kafka-4.1.1",
                "strimzi-v1-api",
                "strimzi-1.0.1",
                "kafka-4.2.0",
                "strimzi-1.2.0",
                "kafka-4.3.1",
            ]
        );
        // The first Strimzi stage runs on the seed's Kubernetes, after Rook 1.15 and Ceph 19,
        // before the first MicroK8s round; 0.50.1 (Kubernetes ≥ 1.27) after the rounds.
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(at("ceph-19.2.6") < at("strimzi-0.35.1"), "{names:?}");
        assert!(at("strimzi-0.47.0") < at("microk8s-1.27"), "{names:?}");
        assert!(at("microk8s-1.31") < at("strimzi-0.50.1"), "{names:?}");
        assert!(at("rook-v1.20.6") < at("strimzi-0.50.1"), "{names:?}");
        assert_eq!(names.last().map(String::as_str), Some("microk8s-1.33"));
        // Each operator hop runs the Kafka that runs; no release is skipped that the Kafka needed.
        let mut cur = seed();
        for h in &hops {
            if let Hop::Strimzi { to, .. } = h {
                let k = cur.kafka.as_ref().unwrap();
                assert!(cat.strimzi(to).unwrap().supports(&k.version), "{to} with {}", k.version);
            }
            cur = h.apply(&cur);
        }
        assert_eq!(cur, current());
    }

    #[test]
    fn a_resumed_strimzi_ladder_is_the_rest_of_the_same_one() {
        let cat = Catalog::embedded().unwrap();
        let whole = plan(&cat, &seed(), &current()).unwrap();
        let mut at = seed();
        let mut last = None;
        for i in 0..whole.len() {
            assert_eq!(plan_after(&cat, &at, &current(), last).unwrap(), whole[i..].to_vec(), "resumed after {i} hops");
            at = whole[i].apply(&at);
            if whole[i].component() != "strimzi" {
                last = Some(whole[i].component());
            }
        }
        // A migration stopped half way is finished first.
        let mut m = seed();
        m.kafka = Some(KafkaAt {
            strimzi: "0.45.2".into(),
            version: "3.9.1".into(),
            metadata: Metadata::Migrating,
            v1: false,
        });
        let hops =
            strimzi_moves(&cat, (1, 26), m.kafka.as_ref().unwrap(), current().kafka.as_ref().unwrap(), &mut vec![]);
        assert_eq!(hops, [Hop::Kraft]);
    }

    #[test]
    fn strimzi_targets_no_ladder_reaches_say_why() {
        let cat = Catalog::embedded().unwrap();
        // A ZooKeeper target on a release without ZooKeeper is refused by validation; here a
        // KRaft file with the Kubernetes too old for 1.2 (it needs 1.30).
        let t = with_kafka(v(26, "v1.10.10", "v17.2.5"), "1.2.0", "4.3.1", Metadata::KRaft, true);
        let e = plan(&cat, &seed(), &t).unwrap_err();
        assert!(e.reason.contains("needs Kubernetes"), "{}", e.reason);
        // Going down.
        let mut down = seed();
        down.kafka.as_mut().unwrap().version = "3.2.3".into();
        assert!(plan(&cat, &seed(), &down).unwrap_err().reason.contains("does not downgrade Kafka"));
        let mut zk = current();
        zk.kafka.as_mut().unwrap().metadata = Metadata::ZooKeeper;
        assert!(plan(&cat, &current(), &zk).unwrap_err().reason.contains("no way back"));
    }

    #[test]
    fn the_seed_ladder_is_the_documented_one() {
        let cat = Catalog::embedded().unwrap();
        let hops = plan(&cat, &v(26, "v1.10.10", "v17.2.5"), &v(31, "v1.20.6", "v19.2.6")).unwrap();
        let names: Vec<String> = hops.iter().map(Hop::name).collect();
        assert_eq!(
            names,
            [
                "rook-v1.11.11",
                "rook-v1.12.11",
                "rook-v1.13.10",
                "rook-v1.14.12",
                "rook-v1.15.9",
                "ceph-19.2.6",
                "microk8s-1.27",
                "microk8s-1.28",
                "microk8s-1.29",
                "microk8s-1.30",
                "microk8s-1.31",
                "rook-v1.16.9",
                "rook-v1.17.9",
                "rook-v1.18.11",
                "rook-v1.19.10",
                "rook-v1.20.6",
            ]
        );
        assert_eq!(stages(&hops).join(""), "AAAAABCCCCCDDDDD");
        assert_eq!(cut(&hops, Some("C")), Ok(11));
        assert_eq!(cut(&hops, Some("rook-v1.15.9")), Ok(5));
        assert!(cut(&hops, Some("rook-v9")).unwrap_err().contains("names no hop"));
    }

    #[test]
    fn a_run_resumed_half_way_chooses_the_rest_of_the_same_ladder() {
        let cat = Catalog::embedded().unwrap();
        let (seed, goal) = (v(26, "v1.10.10", "v17.2.5"), v(31, "v1.20.6", "v19.2.3"));
        let whole = plan(&cat, &seed, &goal).unwrap();
        let mut at = seed;
        for i in 0..whole.len() {
            let last = i.checked_sub(1).map(|p| whole[p].component());
            assert_eq!(plan_after(&cat, &at, &goal, last).unwrap(), whole[i..].to_vec(), "resumed after {i} hops");
            at = whole[i].apply(&at);
        }
    }

    #[test]
    fn ceph_20_comes_after_rook_reaches_it() {
        let cat = Catalog::embedded().unwrap();
        let hops = plan(&cat, &v(26, "v1.10.10", "v17.2.5"), &v(33, "v1.20.6", "v20.2.4")).unwrap();
        let names: Vec<String> = hops.iter().map(Hop::name).collect();
        let i19 = names.iter().position(|n| n == "ceph-19.2.6").unwrap();
        let i20 = names.iter().position(|n| n == "ceph-20.2.4").unwrap();
        let r120 = names.iter().position(|n| n == "rook-v1.20.6").unwrap();
        assert!(i19 < i20 && r120 < i20, "{names:?}");
        assert_eq!(names.last().map(String::as_str), Some("microk8s-1.33"));
        // Every hop is one MicroK8s minor, one Rook minor, and no Ceph step skips two majors.
        let mut cur = v(26, "v1.10.10", "v17.2.5");
        for h in &hops {
            let n = h.apply(&cur);
            match h {
                Hop::MicroK8s { from, to } => assert_eq!(to.1, from.1 + 1),
                Hop::Rook { .. } => assert_eq!(n.rook_minor().1, cur.rook_minor().1 + 1),
                Hop::Ceph { .. } => assert!(cat.ceph_step(cur.ceph_version().0, n.ceph_version().0).is_ok()),
                _ => {}
            }
            cur = n;
        }
    }

    #[test]
    fn converged_is_an_empty_ladder_and_a_patch_is_one_hop() {
        let cat = Catalog::embedded().unwrap();
        let now = v(26, "v1.10.10", "v17.2.5");
        assert_eq!(plan(&cat, &now, &now).unwrap(), vec![]);
        let hops = plan(&cat, &now, &v(26, "v1.10.10", "v17.2.6")).unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].name(), "ceph-17.2.6");
    }

    #[test]
    fn unreachable_targets_say_why() {
        let cat = Catalog::embedded().unwrap();
        let seed = v(26, "v1.10.10", "v17.2.5");
        // Rook 1.16+ dropped Quincy: keeping Ceph 17 cannot reach Rook 1.20.
        let e = plan(&cat, &seed, &v(31, "v1.20.6", "v17.2.5")).unwrap_err();
        assert!(e.reason.contains("Rook v1.16.9 refuses Ceph 17.2.5"), "{}", e.reason);
        assert!(e.reason.contains("minimum version \"18.2.0\""), "{}", e.reason);
        // Rook 1.15 stops at Kubernetes 1.31.
        let e = plan(&cat, &seed, &v(32, "v1.15.9", "v19.2.6")).unwrap_err();
        assert!(e.reason.contains("so MicroK8s cannot go to 1.32"), "{}", e.reason);
        // Ceph 20 on Rook 1.15: the ladder takes Ceph to 19, and there Rook refuses 20.
        let e = plan(&cat, &v(26, "v1.15.9", "v17.2.5"), &v(26, "v1.15.9", "v20.2.4")).unwrap_err();
        assert!(e.reason.contains("Ceph 19.2.6"), "{}", e.reason);
        assert!(e.reason.contains("allowUnsupported must be set to true"), "{}", e.reason);
        // Ceph 17 → 20 directly is never a hop: Tentacle upgrades from Reef or Squid only.
        let (hops, blocked) = moves(&cat, &v(31, "v1.20.6", "v17.2.5"), &v(31, "v1.20.6", "v20.2.4"));
        assert!(hops.iter().all(|h| h.name() != "ceph-20.2.4"), "{hops:?}");
        assert!(
            blocked.iter().any(|b| b.contains("Ceph 20 (tentacle) upgrades only from 18 (reef) or 19 (squid)")),
            "{blocked:?}"
        );
        // Going down.
        let e = plan(&cat, &v(31, "v1.20.6", "v19.2.6"), &v(31, "v1.20.6", "v19.2.3")).unwrap_err();
        assert!(e.reason.contains("downgrading is not supported"), "{}", e.reason);
        assert!(plan(&cat, &v(28, "v1.10.10", "v17.2.5"), &seed).unwrap_err().reason.contains("does not go back"));
    }
}
