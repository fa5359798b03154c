//! The names of the phases of `up`, in the order they run, and the selection
//! `--only/--from/--skip` makes of them. Events, waits and every layer that reports progress
//! speak of phases by these ids.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PhaseId {
    /// MAAS: find, commission, lay out disks, deploy.
    Machines,
    /// SSH: reachable, cloud-init done, preflight checks.
    Hosts,
    /// MicroK8s: install, add-ons, join, kubeconfig.
    Kubernetes,
    /// Rook/Ceph: operator, CephCluster, pools, StorageClasses.
    Storage,
    /// Strimzi/Kafka: operator, Kafka, bootstrap addresses.
    Kafka,
    /// CloudNativePG: operator, webhook certificates, the PostgreSQL cluster.
    Database,
}

impl PhaseId {
    pub const ALL: [PhaseId; 6] =
        [PhaseId::Machines, PhaseId::Hosts, PhaseId::Kubernetes, PhaseId::Storage, PhaseId::Kafka, PhaseId::Database];

    pub fn name(self) -> &'static str {
        match self {
            PhaseId::Machines => "machines",
            PhaseId::Hosts => "hosts",
            PhaseId::Kubernetes => "kubernetes",
            PhaseId::Storage => "storage",
            PhaseId::Kafka => "kafka",
            PhaseId::Database => "database",
        }
    }
}

impl fmt::Display for PhaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which phases a run executes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<PhaseId>,
    pub from: Option<PhaseId>,
    pub skip: Vec<PhaseId>,
}

impl Selection {
    /// The selected phases among those that apply to the cluster, in order.
    pub fn resolve(&self, applicable: &[PhaseId]) -> Vec<PhaseId> {
        applicable
            .iter()
            .copied()
            .filter(|p| self.only.is_empty() || self.only.contains(p))
            .filter(|p| self.from.is_none_or(|f| *p >= f))
            .filter(|p| !self.skip.contains(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        let all = PhaseId::ALL;
        assert_eq!(Selection::default().resolve(&all), all.to_vec());
        let s = Selection { from: Some(PhaseId::Kubernetes), skip: vec![PhaseId::Storage], ..Default::default() };
        assert_eq!(s.resolve(&all), vec![PhaseId::Kubernetes, PhaseId::Kafka, PhaseId::Database]);
        let s = Selection { only: vec![PhaseId::Hosts], ..Default::default() };
        assert_eq!(s.resolve(&all), vec![PhaseId::Hosts]);
    }
}
