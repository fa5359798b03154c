//! The phase engine: the run context, phases and their runner, the plan, the locks, `up`,
//! `add-node` and `status`.

pub mod add_node;
pub mod cluster_api;
pub mod context;
pub mod lock;
pub mod phase;
pub mod phases;
pub mod plan;
pub mod runner;
pub mod status;

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
        Some(lock::acquire_local(&cx.world.state_dir, &cx.opts.command, cx.opts.lock_timeout, &cx.ui).await?)
    };
    if cx.world.maas.is_some() {
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
    // A run that loses the cluster Lease stops at once: another run is changing the cluster.
    let mut lost_rx = cx.lease_lost.subscribe();
    let command = cx.opts.command.clone();
    let lost = async move {
        let reason = lost_rx.wait_for(Option::is_some).await.ok().and_then(|v| v.clone());
        let Some(reason) = reason else { return std::future::pending().await };
        anyhow::anyhow!(
            "stopped: {reason}; this run no longer holds the cluster lock, so it changes nothing more\n  hint: let the other run finish (`homelab status` shows the cluster), then run `homelab {command}` again; it picks up where this one stopped"
        )
    };
    let ctrl_c = async {
        if cx.opts.stop_on_ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
            anyhow::anyhow!(
                "interrupted (Ctrl-C): homelab stopped; a command it had already sent (a MAAS deployment, a snap install) carries on on its own\n  hint: run `homelab {}` again — it looks at every machine before acting, so it finishes the job without doing anything twice",
                cx.opts.command
            )
        } else {
            std::future::pending().await
        }
    };
    let r = tokio::select! {
        r = run => r,
        e = lost => Err(e),
        e = ctrl_c => Err(e),
    };
    // Give the cluster lease back, also after Ctrl-C, but never hang on it: an unreleased
    // lease expires on its own.
    if tokio::time::timeout(std::time::Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not release the homelab Lease within 5s; it expires on its own");
    }
    r
}
