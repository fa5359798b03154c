//! `homelab schema`: print the JSON Schema of cluster.yaml (for editors).

use crate::foundation::output::Ui;
use clap::Args;
use std::process::ExitCode;

/// Print the JSON Schema of cluster.yaml, for editor completion and checking
/// (`# yaml-language-server: $schema=…`).
#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_a: SchemaArgs, ui: Ui) -> anyhow::Result<ExitCode> {
    ui.out(crate::config::schema::schema_json().trim_end());
    Ok(ExitCode::SUCCESS)
}
