//! `homelab completions SHELL`

use clap::{Args, CommandFactory};
use std::process::ExitCode;

/// Print shell completions (bash, zsh, fish, elvish, powershell).
///
/// e.g. `homelab completions bash > ~/.local/share/bash-completion/completions/homelab`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

pub fn run(a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "homelab", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
