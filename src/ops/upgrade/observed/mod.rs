//! What `upgrade` observed of the cluster, as plain values: each machine (snap, Node), the
//! datastore's voters, Rook and its Ceph daemons, Ceph's health, Kafka, CloudNativePG, and
//! [`strimzi`], the Strimzi side. Filled by `observe`, read by the pure `gate` and `ladder`
//! and by the hops in `act`. No I/O.

pub mod strimzi;

use super::ladder::Versions;
use crate::catalog::{Catalog, parse_minor, parse_version};
use k8s_openapi::api::apps::v1::Deployment;

/// One machine as `upgrade` sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub host: String,
    pub control_plane: bool,
    /// The snap's tracking channel (`1.26/stable`), empty when unknown.
    pub tracking: String,
    /// The snap is held (no auto-refresh).
    pub held: bool,
    /// The Node object: Ready, its kubelet minor, cordoned.
    pub ready: bool,
    pub kubelet: Option<(u32, u32)>,
    pub unschedulable: bool,
    /// It answers SSH.
    pub reachable: bool,
    /// A MicroK8s round (its target minor) drained it and has not uncordoned it yet.
    pub drained_for: Option<(u32, u32)>,
}

impl NodeView {
    pub fn track_minor(&self) -> Option<(u32, u32)> {
        parse_minor(&self.tracking)
    }
}

/// A Ceph daemon Deployment (mon, mgr, osd, …) and its version labels.
#[derive(Debug, Clone, Default)]
pub struct Daemon {
    pub name: String,
    pub rook_version: Option<String>,
    pub ceph_version: Option<String>,
    pub ready: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub nodes: Vec<NodeView>,
    /// Voters the datastore lists, and how many the cluster should keep.
    pub voters: usize,
    pub voters_wanted: usize,
    pub operator_image: Option<String>,
    /// The operator Deployment rolled out (updated, ready replicas = replicas).
    pub operator_rolled: bool,
    pub ceph_spec_image: Option<String>,
    /// `status.version.version` of the CephCluster (`19.2.3-0`).
    pub ceph_running: Option<String>,
    /// Phase Ready for the current generation.
    pub ceph_ready: bool,
    /// The CephCluster's status message (progress or the operator's refusal).
    pub ceph_message: String,
    /// Its phase is `Failure`: the operator's last reconcile failed (a refused Ceph version).
    pub ceph_failed: bool,
    pub health: Option<String>,
    /// Health check codes.
    pub checks: Vec<String>,
    pub osds: u64,
    pub osds_up: u64,
    pub osds_in: u64,
    pub daemons: Vec<Daemon>,
    /// None: the file declares no Kafka, or it does not exist.
    pub kafka_ready: Option<bool>,
    /// What runs on the Strimzi side (see [`super::observe::strimzi::observe`]).
    pub strimzi: Option<strimzi::StrimziView>,
    /// Broker pods that are not Ready (a Strimzi hop waits for every broker).
    pub brokers_not_ready: Option<String>,
    /// The image of the CloudNativePG operator, when one runs.
    pub cnpg_image: Option<String>,
}

/// Health warnings a hop itself causes and that do not block the next one: Rook sets
/// `noout` on a drained host's OSDs (docs/day2.md §1.2).
pub const EXPECTED_WARNINGS: &[&str] = &["OSDMAP_FLAGS"];

impl Observed {
    /// The versions that run, as the ladder starts from them.
    pub fn versions(&self, cat: &Catalog) -> Result<Versions, String> {
        let kafka = match &self.strimzi {
            Some(v) if v.operator.is_some() && v.kafka.is_some() => Some(v.at(cat)?),
            _ => None,
        };
        let k = self
            .nodes
            .iter()
            .filter_map(NodeView::track_minor)
            .min()
            .ok_or_else(|| "no node answers with its MicroK8s channel".to_owned())?;
        let img = self.operator_image.clone().ok_or_else(|| "the Rook operator is not installed".to_owned())?;
        let tag = img.rsplit(':').next().unwrap_or_default().to_owned();
        let rook = cat
            .rook_ladder()
            .into_iter()
            .find(|r| r.version == tag || r.operator_image() == img)
            .map(|r| r.version.clone())
            .ok_or_else(|| format!("the Rook operator runs {img}, a release the catalog does not pin"))?;
        let ceph = self.ceph_spec_image.clone().ok_or_else(|| "the CephCluster has no cephVersion.image".to_owned())?;
        let cnpg = match &self.cnpg_image {
            None => None,
            Some(img) => {
                let tag = img.rsplit(':').next().unwrap_or_default().trim_start_matches('v');
                Some(
                    cat.cloudnativepg
                        .iter()
                        .find(|r| r.version.trim_start_matches('v') == tag)
                        .map(|r| r.version.clone())
                        .ok_or_else(|| {
                            format!("the CloudNativePG operator runs {img}, a release the catalog does not pin")
                        })?,
                )
            }
        };
        Ok(Versions { kubernetes: k, rook, ceph, kafka, cnpg })
    }

    /// What is still rolling from a hop already made (a run that was stopped, or the hop
    /// just done): `None` when everything runs the versions the cluster is set to.
    pub fn rolling(&self, cat: &Catalog, v: &Versions) -> Option<String> {
        if v.kafka.is_some()
            && let Some(m) = self.strimzi.as_ref().and_then(|s| s.rolling(cat))
        {
            return Some(m);
        }
        if !self.operator_rolled {
            return Some("the Rook operator Deployment is rolling out".into());
        }
        let ceph = parse_version(&v.ceph);
        let behind: Vec<&str> = self
            .daemons
            .iter()
            .filter(|d| {
                d.rook_version.as_deref() != Some(v.rook.as_str())
                    || d.ceph_version.as_deref().and_then(parse_version) != ceph
                    || !d.ready
            })
            .map(|d| d.name.as_str())
            .collect();
        if !behind.is_empty() {
            return Some(format!(
                "{} of {} Ceph daemons not yet at Rook {} and Ceph {} ({})",
                behind.len(),
                self.daemons.len(),
                v.rook,
                ceph.map(crate::catalog::fmt_version).unwrap_or_default(),
                behind.join(", ")
            ));
        }
        if self.ceph_running.as_deref().and_then(parse_version) != ceph {
            return Some(format!(
                "the CephCluster reports Ceph {} running",
                self.ceph_running.as_deref().unwrap_or("no version yet")
            ));
        }
        if !self.ceph_ready {
            return Some(format!("the CephCluster is not Ready yet ({})", self.ceph_message));
        }
        for n in &self.nodes {
            if n.track_minor() != Some(v.kubernetes) {
                continue;
            }
            if !n.ready || n.kubelet != Some(v.kubernetes) {
                return Some(format!("node {} is not Ready at v{}.{} yet", n.host, v.kubernetes.0, v.kubernetes.1));
            }
        }
        None
    }
}

/// A Deployment rolled out: its observed generation caught up, and its replicas, updated
/// and ready replicas all equal what its spec asks (docs/day2.md §3.3).
pub fn rolled(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let gen_ok = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    gen_ok
        && st.updated_replicas.unwrap_or(0) == want
        && st.ready_replicas.unwrap_or(0) == want
        && st.replicas.unwrap_or(0) == want
}
