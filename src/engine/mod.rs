//! The phase engine: phases, runner, plan, events, output, waits, lock.

pub mod context;
pub mod events;
pub mod phase;
pub mod phases;
pub mod runner;
pub mod secrets;
pub mod ui;
pub mod wait;

pub use events::Event;
pub use phase::PhaseId;
pub use ui::{OutputFormat, Ui};

use context::Ctx;
use runner::RunReport;
use std::sync::Arc;

/// `up`: gathers the facts every phase needs (read-only), then runs the selected phases.
pub async fn up(cx: Arc<Ctx>) -> anyhow::Result<RunReport> {
    let ids = cx.opts.selection.resolve(&phases::applicable(&cx.cluster));
    if ids.is_empty() {
        anyhow::bail!("no phase selected: `--only/--from/--skip` leave nothing that applies to this cluster");
    }
    if cx.env.maas.is_some() {
        phases::machines::gather_facts(&cx).await?;
    }
    let mut list = Vec::new();
    for id in ids {
        match phases::build(id) {
            Some(p) => list.push(p),
            None => anyhow::bail!("the {id} phase is not available in this build"),
        }
    }
    runner::run(cx, list).await
}
