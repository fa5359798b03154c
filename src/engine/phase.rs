//! What a phase is: observe, then act per machine and for the cluster. The selection
//! `--only/--from/--skip` makes of the phases is `foundation::phase_id::Selection`.

pub use crate::foundation::phase_id::{PhaseId, Selection};

use crate::config::Machine;
use crate::engine::context::Ctx;
use async_trait::async_trait;

#[async_trait]
pub trait Phase: Send + Sync {
    fn id(&self) -> PhaseId;
    /// Dry run: observe (read-only) and report, through [`Ctx::step`] and [`Ctx::changed`],
    /// exactly the actions a real run would take. By default the phase's own code runs in
    /// dry-run mode, so plan and run share one path; phases whose machine work cannot run
    /// before the machines exist (machines, hosts, kubernetes) observe and report what their
    /// decisions would do, through the same word functions as the run.
    async fn plan(&self, cx: &Ctx) -> anyhow::Result<()> {
        self.prepare(cx).await?;
        self.finish(cx).await
    }
    /// Checks that read only and must pass before the run changes anything anywhere (the
    /// preflight of machines that exist before the run). The runner calls it for every
    /// phase before any [`Phase::prepare`].
    async fn preflight(&self, _cx: &Ctx) -> anyhow::Result<()> {
        Ok(())
    }
    /// Cluster-level work before any machine work (checks, downloads).
    async fn prepare(&self, _cx: &Ctx) -> anyhow::Result<()> {
        Ok(())
    }
    /// Whether [`Phase::machine`] does anything.
    fn per_machine(&self) -> bool {
        false
    }
    /// The per-machine part, run inside that machine's pipeline.
    async fn machine(&self, _cx: &Ctx, _m: &Machine) -> anyhow::Result<()> {
        Ok(())
    }
    /// Cluster-level work after every machine finished this phase.
    async fn finish(&self, _cx: &Ctx) -> anyhow::Result<()> {
        Ok(())
    }
}
