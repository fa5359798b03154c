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
    let report = crate::engine::status::gather(&cx).await;
    crate::engine::status::print(&ui, &report);
    Ok(if report.healthy { ExitCode::SUCCESS } else { ExitCode::from(crate::foundation::error::EXIT_FAILED) })
}
