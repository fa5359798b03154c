//! Rendering the objects homelab installs on top of Kubernetes from the resolved cluster and a
//! pinned release: Rook/Ceph, Strimzi/Kafka and CloudNativePG. Pure functions: files and config in, JSON out.

pub mod cnpg;
pub mod kafka_apps;
pub mod rook;
pub mod strimzi;
