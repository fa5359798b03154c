//! `homelab replace-node OLD NEW_MAC` / `--address ADDR --hostname NEW`: swap a PC for a new
//! one, capacity first.

use super::remove_node::{EraseArg, ReleaseArgs};
use super::{ChangeArgs, Global, catalog, real_world};
use crate::foundation::output::Ui;
use crate::ops::replace_node::{ReplaceRequest, replace_node};
use clap::Args;
use std::process::ExitCode;

/// Swap a PC for a new one: the new PC joins first (same role; its OSD runs), then the old one
/// is removed as `remove-node` does, so Ceph copies the data once and the datastore keeps
/// three voters. One entry of cluster.yaml is rewritten; nothing else in the file changes.
///
/// Examples: homelab replace-node pc3 52:54:00:00:00:09 --hostname pc9 --release
///           homelab replace-node pc3 --address 192.168.1.19 --hostname pc9 --ceph-device /dev/sdb
#[derive(Debug, Args)]
pub struct ReplaceNodeArgs {
    /// The machine to replace (its hostname in cluster.yaml).
    pub old: String,
    /// MAC address of the new PC's boot interface (MAAS deploys it).
    #[arg(required_unless_present = "address", conflicts_with = "address")]
    pub mac: Option<String>,
    #[command(flatten)]
    pub pre: super::PreinstalledArgs,
    /// Name for the new node (default: the hostname MAAS gave it).
    #[arg(long)]
    pub hostname: Option<String>,
    /// The old PC is dead: remove it first (its data cannot be copied off), then add the new one.
    #[arg(long)]
    pub dead: bool,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

pub async fn run(a: ReplaceNodeArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (path, opts) = a.change.run_options(a.dry_run);
    let cat = catalog(g)?;
    let storage = a.pre.storage();
    let req = ReplaceRequest {
        old: a.old,
        mac: a.mac.unwrap_or_default(),
        address: a.pre.address,
        storage,
        hostname: a.hostname,
        dead: a.dead,
        release: a.release.release,
        erase: a.release.erase.map(EraseArg::name),
    };
    let manifests = a.change.manifests.clone();
    replace_node(&path, &req, &cat, &ui, opts, &|c| real_world(c, &manifests, true)).await?;
    Ok(ExitCode::SUCCESS)
}
