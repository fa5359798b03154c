//! The pinned releases homelab installs on top of Kubernetes: Rook/Ceph and Strimzi/Kafka.

pub mod bundle;
pub mod catalog;
pub mod rook;
pub mod strimzi;
