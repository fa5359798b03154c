//! `homelab init`: draft a cluster.yaml from the machines MAAS has Ready and from PCs that
//! run Ubuntu already (`--ssh`).

use super::{Global, catalog};
use crate::foundation::error::usage;
use crate::foundation::output::Ui;
use crate::ops::init::{Sources, draft_from};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draft a cluster.yaml from the machines MAAS has Ready and from PCs that run Ubuntu already
/// (`--ssh`, read over SSH without changing anything): roles (3 control planes when there are
/// 3+ PCs, pre-installed ones first), the OS volume fitted to the smallest disk, each
/// pre-installed PC's Ceph volume from the installer's free extents, current releases. Edit it,
/// then `homelab validate` and `homelab up --dry-run`.
///
/// Examples: homelab init --maas-url http://10.0.0.1:5240/MAAS --api-key-file ~/.config/homelab/maas.key
///           homelab init --ssh 192.168.1.11,192.168.1.12,192.168.1.13
#[derive(Debug, Args)]
pub struct InitArgs {
    /// MAAS URL, e.g. http://10.0.0.1:5240/MAAS.
    #[arg(long, value_name = "URL", required_unless_present = "ssh")]
    pub maas_url: Option<String>,
    /// PCs that run Ubuntu already, by IP address or DNS name (comma separated).
    #[arg(long, value_name = "ADDR,…", value_delimiter = ',')]
    pub ssh: Vec<String>,
    /// The user homelab logs in as on them (passwordless sudo).
    #[arg(long, default_value = "ubuntu", value_name = "USER")]
    pub ssh_user: String,
    /// The private key it logs in with.
    #[arg(long, default_value = "~/.ssh/id_ed25519", value_name = "FILE")]
    pub identity_file: String,
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
    let connector = if a.ssh.is_empty() {
        None
    } else {
        Some(crate::ops::world::init_connector(&a.name, &a.ssh_user, &a.identity_file)?)
    };
    let src = Sources {
        maas: a.maas_url.as_deref().map(|u| (u, a.api_key_file.as_deref())),
        ssh: a.ssh.clone(),
        connector: connector.as_ref().map(|c| c as &dyn crate::ssh::Connector),
        ssh_login: (&a.ssh_user, &a.identity_file),
    };
    let d = draft_from(&a.name, &src, &label, &catalog(g)?, &ui).await?;
    let text = d.text;
    std::fs::write(&a.to, &text).with_context(|| format!("writing {}", a.to.display()))?;
    ui.out(&format!(
        "wrote {} with {} machine{}; read it, then `homelab validate {}` and `homelab up --dry-run {}`",
        a.to.display(),
        d.machines,
        if d.machines == 1 { "" } else { "s" },
        a.to.display(),
        a.to.display()
    ));
    Ok(ExitCode::SUCCESS)
}
