//! Canonical MAAS: the REST API 2.0 client and its types.

pub mod client;
pub mod types;

pub use client::{ApiKey, ClientOptions, MaasClient, MaasError};
pub use types::{Machine, Status};
