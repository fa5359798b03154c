//! `homelab init`: draft a cluster.yaml from the machines MAAS has Ready.

use super::{Global, catalog};
use crate::foundation::error::usage;
use crate::foundation::output::Ui;
use crate::ops::init::draft_from_maas;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draft a cluster.yaml from the machines MAAS has Ready: roles (3 control planes when there
/// are 3+ PCs), the OS volume fitted to the smallest disk, current releases. Edit it, then
/// `homelab validate` and `homelab up --dry-run`.
///
/// Example: homelab init --maas-url http://10.0.0.1:5240/MAAS --api-key-file ~/.config/homelab/maas.key
#[derive(Debug, Args)]
pub struct InitArgs {
    /// MAAS URL, e.g. http://10.0.0.1:5240/MAAS.
    #[arg(long, value_name = "URL")]
    pub maas_url: String,
    /// File with the MAAS API key (else $MAAS_API_KEY).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<String>,
    /// Cluster name.
    #[arg(long, default_value = "garage")]
    pub name: String,
    /// Where to write the draft.
    #[arg(long, default_value = "cluster.yaml", value_name = "FILE")]
    pub to: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(a: InitArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    if a.to.exists() && !a.force {
        return Err(usage(format!("{} exists; pass --force to overwrite it, or --to another file", a.to.display())));
    }
    let label = a.to.display().to_string();
    let d = draft_from_maas(&a.name, &a.maas_url, a.api_key_file.as_deref(), &label, &catalog(g)?, &ui).await?;
    let text = d.text;
    std::fs::write(&a.to, &text).with_context(|| format!("writing {}", a.to.display()))?;
    ui.out(&format!(
        "wrote {} with {} machine{} from MAAS; read it, then `homelab validate {}` and `homelab up --dry-run {}`",
        a.to.display(),
        d.machines,
        if d.machines == 1 { "" } else { "s" },
        a.to.display(),
        a.to.display()
    ));
    Ok(ExitCode::SUCCESS)
}
