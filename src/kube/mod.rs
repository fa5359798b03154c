//! Kubernetes: the client, the server-side apply engine and the readiness waits.

pub mod apply;
pub mod client;
pub mod converged;
pub mod wait;
