//! `homelab add-node MAC` / `homelab add-node --address ADDR --hostname NAME`: grow the
//! cluster by one PC, deployed by MAAS or already installed.

use super::{ChangeArgs, Global, catalog, real_world};
use crate::config::model::Role;
use crate::foundation::output::Ui;
use crate::ops::add_node::{AddNodeRequest, add_node};
use clap::Args;
use std::process::ExitCode;

/// Grow the cluster by one PC: deploy it with MAAS (by MAC), or reach one that runs Ubuntu
/// already (by `--address`), join it to MicroK8s, give its Ceph volume to Rook and wait for
/// its OSD, then add its entry to cluster.yaml (nothing else in the file changes). Touches
/// only the new machine and the control plane that issues the join token.
///
/// Examples: homelab add-node 52:54:00:00:00:04 --hostname kvm6
///           homelab add-node --address 192.168.1.14 --hostname pc4 --volume-group ubuntu-vg
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// MAC address of the new PC's boot interface (MAAS finds it by this).
    #[arg(required_unless_present = "address", conflicts_with = "address")]
    pub mac: Option<String>,
    #[command(flatten)]
    pub pre: super::PreinstalledArgs,
    /// Name for the node (default: the hostname MAAS gave it).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Role of the new node; a control plane keeps the datastore odd-sized only as the 3rd or 5th.
    #[arg(long, value_enum, default_value = "worker")]
    pub role: RoleArg,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Worker,
    ControlPlane,
}

pub async fn run(a: AddNodeArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (path, opts) = a.change.run_options(false);
    let cat = catalog(g)?;
    let storage = a.pre.storage();
    let req = AddNodeRequest {
        mac: a.mac.unwrap_or_default(),
        address: a.pre.address,
        hostname: a.hostname,
        role: match a.role {
            RoleArg::Worker => Role::Worker,
            RoleArg::ControlPlane => Role::ControlPlane,
        },
        storage,
    };
    let manifests = a.change.manifests.clone();
    add_node(&path, &req, &cat, &ui, opts, &|c| real_world(c, &manifests, true)).await?;
    Ok(ExitCode::SUCCESS)
}
