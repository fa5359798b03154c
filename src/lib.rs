#![recursion_limit = "256"]
//! `homelab`: one binary and one `cluster.yaml` that turn a few PCs into a cluster —
//! MAAS installs Ubuntu, MicroK8s joins them, Rook makes Ceph block storage, Strimzi runs Kafka.
//!
//! The library is the whole program; `src/main.rs` only parses arguments and maps errors to
//! exit codes.

pub mod addons;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod files;
pub mod json;
pub mod kube;
pub mod maas;
pub mod microk8s;
pub mod sim;
pub mod ssh;
pub mod tls;
