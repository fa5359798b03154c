//! Rendering the objects homelab installs on top of Kubernetes from the resolved cluster and a
//! pinned release: Rook/Ceph and Strimzi/Kafka. Pure functions: files and config in, JSON out.

pub mod rook;
pub mod strimzi;
