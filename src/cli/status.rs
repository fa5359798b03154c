//! `homelab status [FILE]`: every layer at once; non-zero exit when something is unhealthy.

use super::{Global, ManifestArgs, load_cluster, real_world};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::foundation::output::Ui;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;

/// One view of every layer: MAAS machines, Kubernetes nodes, Ceph, pools and StorageClasses,
/// PVCs, Kafka with its topics, users and bridge URL, the PostgreSQL database, and the
/// totals. Read-only. Exits 1 when something is unhealthy (listed first).
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: super::FileArg,
    /// Keep watching: read every layer again every `--interval` and redraw the view in place
    /// (with `-o json`, one report per line); Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Time between two readings with `--watch` (`5s`, `1m`; a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration_arg, default_value = "2s", requires = "watch")]
    pub interval: std::time::Duration,
}

pub async fn run(a: StatusArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = a.file.path();
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
    if a.interval < std::time::Duration::from_millis(100) {
        return Err(crate::foundation::error::Failure::Usage(format!(
            "--interval {} is too short: give at least 100ms",
            crate::foundation::time::fmt_secs(a.interval.as_secs_f64())
        ))
        .into());
    }
    let every = a.interval.min(std::time::Duration::from_secs(3600));
    loop {
        let report = crate::ops::status::gather(&cx).await;
        crate::ops::status::print_watched(&ui, &report, every);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(code(report.healthy)),
        }
    }
}
