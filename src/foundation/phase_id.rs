//! The names of the phases of `up`, in the order they run. Events, waits and every layer
//! that reports progress speak of phases by these ids.

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
