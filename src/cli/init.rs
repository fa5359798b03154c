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
    /// Where to write the draft (`-`: standard output). Default: standard output when it is
    /// redirected (`homelab init … > cluster.yaml`), else ./cluster.yaml.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Where the draft goes: a file, or standard output.
enum Target {
    File(PathBuf),
    Stdout,
}

fn target(a: &InitArgs) -> Target {
    use std::io::IsTerminal as _;
    match &a.to {
        Some(p) if p.as_os_str() == "-" => Target::Stdout,
        Some(p) => Target::File(p.clone()),
        // `homelab init … > cluster.yaml`: the shell made the file (empty) before homelab ran.
        None if !std::io::stdout().is_terminal() => Target::Stdout,
        None => Target::File(PathBuf::from("cluster.yaml")),
    }
}

pub async fn run(a: InitArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let to = target(&a);
    if let Target::File(p) = &to {
        // An empty file holds nothing to lose (a redirect the shell made, a `touch`).
        let holds_something = std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
        if holds_something && !a.force {
            return Err(usage(format!(
                "{} exists; pass --force to overwrite it, --to another file, or --to - for standard output",
                p.display()
            )));
        }
    }
    let label = match &to {
        Target::File(p) => p.display().to_string(),
        Target::Stdout => "cluster.yaml".to_owned(),
    };
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
    let plural = if d.machines == 1 { "" } else { "s" };
    match to {
        Target::File(p) => {
            std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
            ui.out(&format!(
                "wrote {} with {} machine{plural}; read it, then `homelab validate {}` and `homelab up --dry-run {}`",
                p.display(),
                d.machines,
                p.display(),
                p.display()
            ));
        }
        Target::Stdout => {
            // The draft alone on standard output (it is the file); what to do next on stderr.
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the draft to standard output")?;
            ui.err(&format!(
                "drafted {} machine{plural} on standard output; read the file, then `homelab validate` and `homelab up --dry-run` on it",
                d.machines
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
