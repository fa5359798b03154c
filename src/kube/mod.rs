//! Kubernetes: the client, the server-side apply engine and the readiness waits.

pub mod client;
