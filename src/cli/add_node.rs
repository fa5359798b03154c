//! `homelab add-node MAC`: grow the cluster by one PC.

use super::{Global, ManifestArgs, catalog, default_file, real_world};
use crate::config::model::Role;
use crate::engine::add_node::{AddNodeRequest, add_node};
use crate::engine::context::{RunOptions, Timings};
use crate::foundation::output::Ui;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Grow the cluster by one PC: deploy it with MAAS, join it to MicroK8s, give its Ceph volume
/// to Rook and wait for its OSD, then add its entry to cluster.yaml (nothing else in the file
/// changes). Touches only the new machine and the control plane that issues the join token.
///
/// Example: homelab add-node 52:54:00:00:00:04 --hostname kvm6
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// MAC address of the new PC's boot interface (MAAS finds it by this).
    pub mac: String,
    /// Name for the node (default: the hostname MAAS gave it).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Role of the new node; a control plane keeps the datastore odd-sized only as the 3rd or 5th.
    #[arg(long, value_enum, default_value = "worker")]
    pub role: RoleArg,
    /// The cluster file (default ./cluster.yaml).
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Wait this long for another homelab run on this cluster to finish.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration_arg, default_value = "0s")]
    pub lock_timeout: std::time::Duration,
    #[command(flatten)]
    pub manifests: ManifestArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Worker,
    ControlPlane,
}

pub async fn run(a: AddNodeArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = default_file(a.file);
    let cat = catalog(g)?;
    let req = AddNodeRequest {
        mac: a.mac,
        hostname: a.hostname,
        role: match a.role {
            RoleArg::Worker => Role::Worker,
            RoleArg::ControlPlane => Role::ControlPlane,
        },
    };
    let opts = RunOptions {
        timings: Timings::from_env(),
        lock_timeout: a.lock_timeout,
        stop_on_ctrl_c: true,
        ..Default::default()
    };
    let manifests = a.manifests.clone();
    add_node(&path, &req, &cat, &ui, opts, &|c| real_world(c, &manifests, true)).await?;
    Ok(ExitCode::SUCCESS)
}
