//! `homelab add-node MAC`

use super::Global;
use crate::engine::ui::Ui;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Grow the cluster by one PC.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// MAC address of the new PC's boot interface.
    pub mac: String,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(short, long)]
    pub file: Option<PathBuf>,
}

pub async fn run(_a: AddNodeArgs, _g: &Global, _ui: Ui) -> anyhow::Result<ExitCode> {
    Err(crate::error::usage("add-node is not available yet"))
}
