//! `homelab up`: gather the facts every phase needs (read-only), wait for another
//! workstation's run if one holds the cluster, then run the selected phases; and the two
//! pieces every other operation shares with it: [`look`] (MAAS read, other runs waited for)
//! and [`until_stopped`] (Ctrl-C and a lost cluster lock stop the work with a plain error).

use crate::engine::context::Ctx;
use crate::engine::runner::RunReport;
use crate::engine::{lock, phase, phases, runner};
use std::sync::Arc;

/// `up`: gathers the facts every phase needs (read-only), then runs the selected phases.
pub async fn up(cx: Arc<Ctx>) -> anyhow::Result<RunReport> {
    let ids = cx.opts.selection.resolve(&phases::applicable(&cx.cluster));
    if ids.is_empty() {
        anyhow::bail!("no phase selected: `--only/--from/--skip` leave nothing that applies to this cluster");
    }
    let _local = cx.local_lock().await?;
    // Waiting for another workstation's run makes what this one read stale, the file too.
    if look(&cx).await? {
        return Err(anyhow::Error::new(lock::StartOver));
    }
    let list = build(&ids)?;
    let r = until_stopped(
        &cx,
        runner::run(cx.clone(), list),
        "a command it had already sent (a MAAS deployment, a snap install) carries on on its own",
    )
    .await;
    // Another workstation's run claimed the cluster between this run's look and its first
    // change. Nothing has been changed: with a --lock-timeout, wait for that run and tell the
    // caller to start over from the file (that run may have changed it, as add-node does).
    let r = match r {
        Err(e)
            if e.downcast_ref::<lock::Preempted>().is_some()
                && cx.total_changes() == 0
                && !cx.opts.lock_timeout.is_zero() =>
        {
            cx.ui.err(&format!("{}; waiting for it, then starting over", root_line(&e)));
            cx.reset_preempted();
            match look(&cx).await {
                Ok(_) => Err(anyhow::Error::new(lock::StartOver)),
                Err(e) => Err(e),
            }
        }
        r => r,
    };
    // Give the cluster locks back, also after Ctrl-C, but never hang on it: an unreleased
    // Lease or MAAS claim expires on its own.
    if tokio::time::timeout(std::time::Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not give the homelab locks back within 5s; they expire on their own");
    }
    r
}

/// Runs `work` until it ends, Ctrl-C is pressed (when the run stops on it) or the run loses a
/// cluster lock (another run is changing the cluster): both stop at once with an error that
/// says what carries on (`in_flight`) and to run the command again.
pub(crate) async fn until_stopped<T>(
    cx: &Ctx,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    in_flight: &str,
) -> anyhow::Result<T> {
    let mut lost_rx = cx.lock_lost.subscribe();
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
                "interrupted (Ctrl-C): homelab stopped; {in_flight}\n  hint: run `homelab {}` again — it looks at every layer before acting, so it finishes the job without doing anything twice",
                cx.opts.command
            )
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        r = work => r,
        e = lost => Err(e),
        e = ctrl_c => Err(e),
    }
}

fn build(ids: &[phase::PhaseId]) -> anyhow::Result<Vec<Arc<dyn phase::Phase>>> {
    let mut list = Vec::new();
    for id in ids {
        match phases::build(*id) {
            Some(p) => list.push(p),
            None => anyhow::bail!("the {id} phase is not available in this build"),
        }
    }
    Ok(list)
}

/// The first line of an error's innermost cause.
fn root_line(e: &anyhow::Error) -> String {
    e.root_cause().to_string().lines().next().unwrap_or_default().to_owned()
}

/// Reads the machines (pre-installed ones' addresses, MAAS's view of the others; read-only)
/// and, when another run's claim stands on the control planes, waits for it. Returns
/// whether it waited.
pub(crate) async fn look(cx: &Arc<Ctx>) -> anyhow::Result<bool> {
    let found = phases::machines::gather_facts(cx).await?;
    match &cx.world.maas {
        Some(maas) => wait_for_other_runs(cx, maas, found).await,
        None => Ok(false),
    }
}

/// Records where the MAAS lock lives (the declared control planes MAAS knows) and waits,
/// reading only, while another run's claim stands there. Returns whether it waited.
async fn wait_for_other_runs(
    cx: &Arc<Ctx>,
    maas: &Arc<crate::maas::MaasClient>,
    found: Vec<crate::maas::Machine>,
) -> anyhow::Result<bool> {
    let cp_macs: Vec<&str> = cx.cluster.control_planes().filter_map(|m| m.mac.as_deref()).collect();
    let cps: Vec<crate::maas::Machine> =
        found.into_iter().filter(|m| m.macs().iter().any(|mac| cp_macs.contains(&mac.as_str()))).collect();
    cx.set_claimable(cps.iter().map(|m| m.system_id.clone()).collect());
    if cx.opts.dry_run || cps.is_empty() {
        return Ok(false);
    }
    let user = cx.maas_user().await?;
    lock::wait_while_held(maas, &user, cps, &cx.holder, cx.opts.lock_timeout, &cx.ui).await
}
