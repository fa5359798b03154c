//! Simulated MAAS, hosts and Kubernetes API server, used by the tests and `homelab demo`.
//! They follow `docs/` to the letter so that passing against them means something against
//! the real systems.

pub mod apiserver;
pub mod ceph;
pub mod cnpg;
pub mod demo;
pub mod hosts;
pub mod hosts_http;
pub mod lab;
pub mod maas;
pub mod operators;
pub mod rook_teardown;
pub mod rook_upgrade;
pub mod standin;
pub mod strimzi;
pub mod strimzi_apps;
pub mod tap;
