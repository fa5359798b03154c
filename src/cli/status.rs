//! `homelab status [FILE]`: every layer at once; non-zero exit when something is unhealthy.

use super::{Global, WorldArgs, default_file, load_cluster, real_env};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::engine::ui::Ui;
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
}

pub async fn run(a: StatusArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = default_file(a.file);
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    let env = real_env(&cluster, &WorldArgs::default(), true)?;
    let cx = Ctx::new(
        cluster,
        ui.clone(),
        RunOptions { command: "status".into(), timings: Timings::from_env(), ..Default::default() },
        env,
    );
    let report = crate::engine::status::gather(&cx).await;
    print(&ui, &report);
    Ok(if report.healthy { ExitCode::SUCCESS } else { ExitCode::from(crate::error::EXIT_FAILED) })
}

pub fn print(ui: &Ui, report: &crate::engine::status::StatusReport) {
    if ui.is_json() {
        ui.out(&serde_json::to_string(report).unwrap_or_default());
    } else {
        ui.out(crate::engine::status::render(report).trim_end());
    }
}
