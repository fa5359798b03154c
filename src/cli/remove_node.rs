//! `homelab remove-node HOST`: take a PC out of the cluster, retiring or dead.

use super::{ChangeArgs, Global, catalog, real_world};
use crate::foundation::output::Ui;
use crate::ops::remove_node::{RemoveRequest, remove_node};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Take a PC out of the cluster without losing data or the datastore's quorum. A running PC
/// has its Ceph data copied off first, its OSD purged, its pods drained, then leaves
/// MicroK8s; a dead one (--dead, or found unreachable) is forced out once it is confirmed
/// off. Refuses, changing nothing, when the removal could lose data or quorum, and says what
/// is safe. Run it again after an interruption: it finishes the job.
///
/// Example: homelab remove-node pc3 --release --erase quick
#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    /// The machine's hostname in cluster.yaml.
    pub host: String,
    /// The PC is dead (off for good): force it out instead of copying its data off.
    #[arg(long)]
    pub dead: bool,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Accept going below three control planes (no datastore HA afterwards).
    #[arg(long)]
    pub yes: bool,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The cluster file (default ./cluster.yaml; also -f FILE).
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// What becomes of the machine in MAAS (remove-node, replace-node).
#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// Release the machine in MAAS afterwards.
    #[arg(long)]
    pub release: bool,
    /// Erase its disks as MAAS releases it (never for a dead PC: it cannot boot to erase).
    #[arg(long, value_enum, requires = "release")]
    pub erase: Option<EraseArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EraseArg {
    /// Wipe 2 MiB at the start and end of each disk (fast, not secure).
    Quick,
    /// The drive's secure erase (falls back to a full overwrite).
    Secure,
    /// Overwrite every byte (slow).
    Full,
}

impl EraseArg {
    /// The erase as MAAS's release takes it.
    pub fn name(self) -> String {
        match self {
            EraseArg::Quick => "quick",
            EraseArg::Secure => "secure",
            EraseArg::Full => "full",
        }
        .to_owned()
    }
}

pub async fn run(a: RemoveNodeArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (path, opts) = a.change.run_options(a.dry_run);
    let path = a.path.clone().unwrap_or(path);
    let cat = catalog(g)?;
    let req = RemoveRequest {
        host: a.host,
        dead: a.dead,
        release: a.release.release,
        erase: a.release.erase.map(EraseArg::name),
        yes: a.yes,
        replace_with: None,
    };
    let manifests = a.change.manifests.clone();
    remove_node(&path, &req, &cat, &ui, opts, &|c| real_world(c, &manifests, true)).await?;
    Ok(ExitCode::SUCCESS)
}
