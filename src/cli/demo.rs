//! `homelab demo`

use super::Global;
use crate::engine::ui::Ui;
use clap::Args;
use std::process::ExitCode;

/// (not available yet)
#[derive(Debug, Args)]
pub struct DemoArgs {}

pub async fn run(_a: DemoArgs, _g: &Global, _ui: Ui) -> anyhow::Result<ExitCode> {
    Err(crate::error::usage("demo is not available yet"))
}
