//! The engine of a run, which every operation builds on: the run context (`Ctx`, the one gate
//! of every change), the phases and their runner, the plan, the three locks, which Kubernetes
//! API a run talks to, and `up` itself (the run of the phases). The commands other than `up`
//! are operations in `ops`, one module per command.

pub mod cluster_api;
pub mod context;
pub mod lock;
pub mod phase;
pub mod phases;
pub mod plan;
pub mod runner;
pub mod up;

pub use up::up;
