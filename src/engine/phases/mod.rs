//! The phases of `up`, one file each, in the order they run.

pub mod database;
pub mod hosts;
pub mod kafka;
pub mod kafka_apps;
pub mod kubernetes;
pub mod machines;
pub mod manifests;
pub mod storage;

use super::phase::Phase;
use super::phase::PhaseId;
use crate::config::Cluster;
use std::sync::Arc;

/// The phases that apply to this cluster, in order.
pub fn applicable(cluster: &Cluster) -> Vec<PhaseId> {
    let mut v = Vec::new();
    if cluster.kubernetes.is_microk8s() {
        // MAAS deploys only the machines with a MAC; a cluster of pre-installed machines
        // has no machines phase.
        if cluster.machines.iter().any(|m| m.mac.is_some()) {
            v.push(PhaseId::Machines);
        }
        v.extend([PhaseId::Hosts, PhaseId::Kubernetes]);
    }
    if cluster.rook.is_some() {
        v.push(PhaseId::Storage);
    }
    if cluster.kafka.is_some() {
        v.push(PhaseId::Kafka);
    }
    if cluster.database.is_some() {
        v.push(PhaseId::Database);
    }
    v
}

pub fn build(id: PhaseId) -> Option<Arc<dyn Phase>> {
    match id {
        PhaseId::Machines => Some(Arc::new(machines::MachinesPhase::default())),
        PhaseId::Hosts => Some(Arc::new(hosts::HostsPhase::default())),
        PhaseId::Kubernetes => Some(Arc::new(kubernetes::KubernetesPhase)),
        PhaseId::Storage => Some(Arc::new(storage::StoragePhase::default())),
        PhaseId::Kafka => Some(Arc::new(kafka::KafkaPhase::default())),
        PhaseId::Database => Some(Arc::new(database::DatabasePhase::default())),
    }
}
