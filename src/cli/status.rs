//! `homelab status`

use super::Global;
use crate::engine::ui::Ui;
use clap::Args;
use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, Args)]
pub struct StatusArgs {}

pub async fn run(_a: StatusArgs, _g: &Global, _ui: Ui) -> anyhow::Result<ExitCode> {
    Err(crate::error::usage("status is not available yet"))
}
