//! `homelab init`

use super::Global;
use crate::engine::ui::Ui;
use clap::Args;
use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, Args)]
pub struct InitArgs {}

pub async fn run(_a: InitArgs, _g: &Global, _ui: Ui) -> anyhow::Result<ExitCode> {
    Err(crate::error::usage("init is not available yet"))
}
