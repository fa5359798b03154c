//! `homelab status`: every layer at once — MAAS machines, Kubernetes nodes, Ceph (health,
//! OSDs per node, capacity), pools and StorageClasses, PVCs, Kafka (Ready, brokers,
//! bootstrap addresses), its topics, users and HTTP bridge — gathered in parallel, read-only, from MAAS and the Kubernetes API
//! (no SSH). What is wrong comes first; the command exits non-zero when anything is.
//!
//! [`report`] holds the rows, [`gather`] reads the systems, [`advice`] says what fixes a
//! dead or unhealthy PC, [`render`] draws the view.

pub mod advice;
pub mod apps;
pub mod gather;
pub mod render;
pub mod report;

pub use gather::gather;
pub use render::{print, print_watched, render};
pub use report::*;
