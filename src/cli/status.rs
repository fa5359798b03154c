//! `homelab status [FILE]`: every layer at once; non-zero exit when something is unhealthy.

use super::{Global, ManifestArgs, default_file, load_cluster, real_world};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::foundation::output::Ui;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// One view of every layer: MAAS machines, Kubernetes nodes, Ceph, pools and StorageClasses,
/// PVCs, Kafka and the totals. Read-only. Exits 1 when something is unhealthy (listed first).
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster file (default ./cluster.yaml).
    pub file: Option<PathBuf>,
    /// Keep watching: read every layer again every `--interval` and redraw the view in place
    /// (with `-o json`, one report per line); Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two readings with `--watch`.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, requires = "watch")]
    pub interval: f64,
}

pub async fn run(a: StatusArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = default_file(a.file);
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    let env = real_world(&cluster, &ManifestArgs::default(), true)?;
    let cx = Ctx::new(
        cluster,
        ui.clone(),
        RunOptions { command: "status".into(), timings: Timings::from_env(), ..Default::default() },
        env,
    );
    let code =
        |healthy: bool| if healthy { ExitCode::SUCCESS } else { ExitCode::from(crate::foundation::error::EXIT_FAILED) };
    if !a.watch {
        let report = crate::ops::status::gather(&cx).await;
        crate::ops::status::print(&ui, &report);
        return Ok(code(report.healthy));
    }
    if !(a.interval.is_finite() && a.interval >= 0.1) {
        return Err(crate::foundation::error::Failure::Usage(format!(
            "--interval {} is too short: give at least 0.1 seconds",
            a.interval
        ))
        .into());
    }
    let every = std::time::Duration::from_secs_f64(a.interval.min(3600.0));
    loop {
        let report = crate::ops::status::gather(&cx).await;
        crate::ops::status::print_watched(&ui, &report, every);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(code(report.healthy)),
        }
    }
}
