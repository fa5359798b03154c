//! `homelab kubeconfig`

use super::Global;
use crate::engine::ui::Ui;
use clap::Args;
use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, Args)]
pub struct KubeconfigArgs {}

pub async fn run(_a: KubeconfigArgs, _g: &Global, _ui: Ui) -> anyhow::Result<ExitCode> {
    Err(crate::error::usage("kubeconfig is not available yet"))
}
