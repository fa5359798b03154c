//! `homelab up [FILE]`: converge everything the file declares, phase by phase.

use super::{Global, ManifestArgs, load_cluster, real_world};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::engine::phase::{PhaseId, Selection};
use crate::foundation::output::Ui;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;

/// Converge everything the cluster file declares, phase by phase: machines → hosts →
/// kubernetes → storage → kafka → database. Observes first and changes only what differs; a
/// second run reports no changes.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub file: super::FileArg,
    /// Print the plan (every action, per phase and machine) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only these phases.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<PhaseId>,
    /// Start at this phase.
    #[arg(long, value_enum)]
    pub from: Option<PhaseId>,
    /// Skip these phases.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<PhaseId>,
    /// Release and redeploy machines MAAS reports as Failed deployment (erases them).
    #[arg(long)]
    pub redeploy_failed: bool,
    /// Delete what homelab created that the file no longer declares: Kafka topics (their
    /// messages go with them), users, the bridge, the PostgreSQL database (its data goes with
    /// it); without it they are reported and kept.
    #[arg(long)]
    pub prune: bool,
    /// Machines preflighted at once over SSH (long waits on the machines, such as the snap
    /// download, run for all of them together).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallel: usize,
    /// Wait this long for another homelab run on this cluster to finish (e.g. `10m`);
    /// without it a second run exits at once, naming the holder.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration_arg, default_value = "0s")]
    pub lock_timeout: std::time::Duration,
    #[command(flatten)]
    pub manifests: ManifestArgs,
}

pub async fn run(a: UpArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    // A run that waited for another workstation's run starts over from the file.
    for _ in 0..4 {
        match run_once(&a, g, ui.clone()).await {
            Err(e) if crate::engine::lock::is_start_over(&e) => continue,
            r => return r,
        }
    }
    run_once(&a, g, ui).await
}

async fn run_once(a: &UpArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let a = a.clone();
    let path = a.file.path();
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    let selection = Selection { only: a.only, from: a.from, skip: a.skip };
    let env = real_world(&cluster, &a.manifests, true)?;
    let opts = RunOptions {
        command: "up".into(),
        dry_run: a.dry_run,
        selection,
        redeploy_failed: a.redeploy_failed,
        prune: a.prune,
        parallel: a.parallel.max(1),
        timings: Timings::from_env(),
        only_machines: None,
        lock_timeout: a.lock_timeout,
        stop_on_ctrl_c: true,
    };
    let cx = Arc::new(Ctx::new(cluster, ui, opts, env));
    crate::engine::up(cx).await?;
    Ok(ExitCode::SUCCESS)
}
