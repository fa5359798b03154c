#![recursion_limit = "256"]
//! `homelab`: one binary and one `cluster.yaml` that turn a few PCs into a cluster —
//! MAAS installs Ubuntu, MicroK8s joins them, Rook makes Ceph block storage, Strimzi runs Kafka.
//!
//! The library is the whole program; `src/main.rs` only parses arguments and maps errors to
//! exit codes.

// Layers, bottom up (ARCHITECTURE.md; `tests/architecture.rs` enforces them):
// foundation → clients (maas, ssh, microk8s, kube) and catalog → config → render → engine →
// ops → cli. `sim` serves tests, benches and `homelab demo` only.
pub mod foundation;

pub mod catalog;
pub mod ceph;
pub mod kube;
pub mod maas;
pub mod microk8s;
pub mod ssh;

pub mod config;

pub mod render;

pub mod engine;

pub mod ops;

pub mod cli;

pub mod sim;
