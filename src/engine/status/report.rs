//! What `homelab status` reports: one row type per layer and the report that holds them (also
//! the `-o json` document).

use serde::Serialize;
use std::collections::BTreeMap;

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
pub struct Totals {
    pub machines: usize,
    pub cores: u64,
    pub memory_bytes: u64,
    pub ceph_raw_bytes: u64,
    pub ceph_usable_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StatusReport {
    pub cluster: String,
    pub healthy: bool,
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
    pub totals: Totals,
}
