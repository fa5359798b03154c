//! The phase engine: phases, runner, plan, events, output, waits, lock.

pub mod add_node;
pub mod context;
pub mod events;
pub mod lock;
pub mod phase;
pub mod phases;
pub mod runner;
pub mod secrets;
pub mod status;
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
    let _local = if cx.opts.dry_run {
        None
    } else {
        Some(lock::acquire_local(&cx.env.state_dir, &cx.opts.command, cx.opts.lock_timeout, &cx.ui).await?)
    };
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
    let run = runner::run(cx.clone(), list);
    let r = if cx.opts.stop_on_ctrl_c {
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!(
                "interrupted (Ctrl-C): homelab stopped; a command it had already sent (a MAAS deployment, a snap install) carries on on its own\n  hint: run `homelab {}` again — it looks at every machine before acting, so it finishes the job without doing anything twice",
                cx.opts.command
            )),
        }
    } else {
        run.await
    };
    // Give the cluster lease back, also after Ctrl-C, but never hang on it: an unreleased
    // lease expires on its own.
    if tokio::time::timeout(std::time::Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not release the homelab Lease within 5s; it expires on its own");
    }
    r
}
