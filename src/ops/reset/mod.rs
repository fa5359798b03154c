//! `reset`: take down what the cluster file declares, in the order the projects document
//! (hosts-lifecycle §B9; docs/reset.md), so that `up` can build it again from nothing. It
//! observes every layer ([`observe`]), refuses before touching anything when what `--only`
//! keeps would be left broken ([`decide::refusal`]), lists the steps still to do
//! ([`decide::steps`]) and needs the user's confirmation before the first ([`Confirm`]);
//! then runs each step and waits until the systems show it done ([`act`]). It never touches
//! what it did not make, never releases a machine MAAS did not deploy (a pre-installed PC,
//! the MAAS host) and never touches a host's firewall or network. Every run derives its
//! steps from the systems, so an interrupted reset is finished by running it again, and a
//! step that is done is never run twice. A dry run prints the same steps in the same words.

pub mod act;
pub mod decide;
pub mod observe;

use crate::engine::context::Ctx;
use crate::foundation::error::Failure;
use crate::foundation::time::fmt_secs;
use anyhow::{Context as _, Result};
use decide::{Ask, Step};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the user confirms, asked with the steps in front of them: `Ok(true)` goes on.
pub type Confirm<'a> = &'a (dyn Fn(&[Step]) -> Result<bool> + Sync);

#[derive(Debug, Clone, Default)]
pub struct ResetReport {
    /// (words, budget s, measured s) per step run.
    pub steps: Vec<(String, u64, f64)>,
    pub elapsed_s: f64,
}

pub fn print_plan(cx: &Ctx, steps: &[Step]) {
    let dry = cx.dry_run();
    let mut t = format!(
        "{} `{}` ({} step{}, budget on real hardware):\n",
        if dry { "would reset" } else { "resetting" },
        cx.cluster.name,
        steps.len(),
        if steps.len() == 1 { "" } else { "s" }
    );
    for s in steps {
        t.push_str(&format!("  {:>7}  {}: {}\n", fmt_secs(s.budget() as f64), s.target(), s.words()));
    }
    t.push_str(&format!("  {:>7}  total", fmt_secs(steps.iter().map(Step::budget).sum::<u64>() as f64)));
    cx.ui.err(&t);
}

/// Reads the cluster's API once (with a deadline): its applier, or why not.
async fn api(cx: &Ctx) -> (Option<crate::kube::apply::Applier>, Option<String>) {
    match tokio::time::timeout(Duration::from_secs(30), crate::engine::phases::manifests::reach(cx)).await {
        Ok(Ok(c)) => (Some(cx.applier(c, crate::foundation::phase_id::PhaseId::Kubernetes, Default::default())), None),
        Ok(Err(e)) => (None, Some(format!("{e:#}"))),
        Err(_) => (None, Some("the Kubernetes API did not answer within 30 s".into())),
    }
}

/// Runs `reset` on the cluster of `cx`.
pub async fn reset(cx: &Arc<Ctx>, ask: &Ask, confirm: Confirm<'_>) -> Result<ResetReport> {
    if ask.erase.is_some() && !ask.release {
        return Err(Failure::Usage("--erase needs --release (MAAS erases a machine as it releases it)".into()).into());
    }
    let _local = cx.local_lock().await?;
    crate::engine::up::look(cx).await?;
    let r = crate::engine::up::until_stopped(
        cx,
        run_locked(cx, ask, confirm),
        "a deletion it had asked for (Rook's cleanup Jobs, a MAAS release) carries on on its own",
    )
    .await;
    if tokio::time::timeout(Duration::from_secs(5), cx.release_lease()).await.is_err() {
        tracing::warn!("could not give the homelab locks back within 5s; they expire on their own");
    }
    r
}

async fn run_locked(cx: &Arc<Ctx>, ask: &Ask, confirm: Confirm<'_>) -> Result<ResetReport> {
    let started = Instant::now();
    let (a, why) = api(cx).await;
    let o = observe::observe(cx, a.as_ref()).await?;
    // The cluster's side cannot be read while MicroK8s still runs: nothing is taken down
    // under it (Ceph would keep its data, Kafka its volumes).
    let runs_k8s = o.hosts.iter().any(|h| h.microk8s == Some(true)) || !cx.cluster.kubernetes.is_microk8s();
    let cluster_side =
        [decide::Layer::Apps, decide::Layer::Storage, decide::Layer::Operators].iter().any(|l| ask.wants(*l));
    if !o.api && runs_k8s && cluster_side {
        return Err(Failure::Usage(format!(
            "the Kubernetes API does not answer ({}), so homelab cannot take the applications and Ceph down first; nothing was changed\n  hint: bring the API back (`homelab status` says what is down), or reset only the machines' MicroK8s with `--only kubernetes` if the cluster's data may stay on the disks",
            why.unwrap_or_default().lines().next().unwrap_or_default()
        ))
        .into());
    }
    if let Some((reason, safe)) = decide::refusal(&o, ask) {
        return Err(Failure::Usage(format!(
            "refusing to reset `{}`: {reason}\n  hint: {safe}\n  (nothing was changed)",
            cx.cluster.name
        ))
        .into());
    }
    let steps = decide::steps(&o, ask);
    if ask.wants(decide::Layer::Kubernetes) {
        for h in o.hosts.iter().filter(|h| h.microk8s.is_none()) {
            let released = h.releasable && h.maas_status.as_deref().is_some_and(|s| s != "Deployed");
            if !released {
                cx.ui.err(&format!(
                    "note: {} does not answer SSH, so its MicroK8s stays: wipe it by hand (`sudo snap remove microk8s --purge`) or let MAAS redeploy it",
                    h.name
                ));
            }
        }
    }
    print_plan(cx, &steps);
    let mut report = ResetReport::default();
    if steps.is_empty() {
        cx.ui.err(&format!("nothing to reset: what `{}` declares is gone already", cx.cluster.name));
        return Ok(report);
    }
    if cx.dry_run() {
        for s in &steps {
            cx.step(act::phase_of(s), &s.target(), s.words());
        }
        report.elapsed_s = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    if !confirm(&steps)? {
        return Err(Failure::Usage(format!("reset of `{}` not confirmed: nothing was changed", cx.cluster.name)).into());
    }
    if a.is_some() {
        cx.ensure_lease().await?;
    }
    let mut lease_held = a.is_some();
    for s in &steps {
        // The cluster's API goes with MicroK8s: its Lease is given back first.
        if lease_held && matches!(s, Step::RemoveMicrok8s { .. }) {
            cx.release_cluster_lease().await;
            lease_held = false;
        }
        cx.act(act::phase_of(s), &s.target(), s.words()).await?;
        let t = Instant::now();
        act::run_step(cx, a.as_ref(), s).await.with_context(|| format!("{}: {}", s.target(), s.words()))?;
        let took = t.elapsed().as_secs_f64();
        cx.info(act::phase_of(s), &s.target(), format!("done in {}", fmt_secs(took)));
        report.steps.push((s.words(), s.budget(), took));
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}
