//! Shared test support.

pub mod mirror;
pub mod sshd;
pub mod subproc;
