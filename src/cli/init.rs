//! `homelab init`: draft a cluster.yaml from the machines MAAS has Ready.

use super::{Global, catalog};
use crate::config::KeySource;
use crate::config::validate::expand;
use crate::engine::ui::Ui;
use crate::error::usage;
use crate::maas::{ClientOptions, MaasClient, Status};
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
    let source = match &a.api_key_file {
        Some(f) => KeySource::File(expand(f)),
        None => KeySource::Env,
    };
    let key = super::maas_key(&source)?;
    let url = a.maas_url.trim_end_matches('/').to_owned();
    let client = MaasClient::new(&format!("{url}/api/2.0/"), key, ClientOptions::default())?;
    let me = client.whoami().await.context("checking the MAAS API key (GET users/?op=whoami)")?;
    let ready = client.machines_with_status(Status::Ready).await?;
    if ready.is_empty() {
        return Err(anyhow::anyhow!(
            "MAAS (user {}) has no Ready machine\n  hint: enlist your PCs (PXE boot) and commission them in MAAS; they become Ready",
            me.username
        ));
    }
    let text = crate::config::draft::draft(&a.name, &url, a.api_key_file.as_deref(), &ready);
    let v = crate::config::validate_bytes(text.as_bytes(), &a.to.display().to_string(), &catalog(g)?);
    if v.report.has_errors() {
        ui.error(&v.render());
        return Err(anyhow::anyhow!("the draft does not validate (a homelab bug); nothing was written"));
    }
    std::fs::write(&a.to, &text).with_context(|| format!("writing {}", a.to.display()))?;
    ui.out(&format!(
        "wrote {} with {} machine{} from MAAS; read it, then `homelab validate {}` and `homelab up --dry-run {}`",
        a.to.display(),
        ready.len(),
        if ready.len() == 1 { "" } else { "s" },
        a.to.display(),
        a.to.display()
    ));
    Ok(ExitCode::SUCCESS)
}
