//! `homelab add-node MAC` / `homelab add-node --address ADDR --hostname NAME`: grow the
//! cluster by one PC, deployed by MAAS or already installed.

use super::{ChangeArgs, Global, catalog, real_world};
use crate::config::edit::NewStorage;
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
    /// IP address or DNS name of a PC that runs Ubuntu already (needs `--hostname`); MAAS is
    /// not asked about it.
    #[arg(long, value_name = "ADDR", requires = "hostname")]
    pub address: Option<String>,
    /// A blank device of the pre-installed PC for Ceph (a disk, partition or logical volume).
    #[arg(long, value_name = "DEV", requires = "address", conflicts_with = "volume_group")]
    pub ceph_device: Option<String>,
    /// The volume group of the pre-installed PC to carve Ceph's logical volume from (only
    /// free extents are used).
    #[arg(long, value_name = "VG", requires = "address")]
    pub volume_group: Option<String>,
    /// The size of that logical volume: `rest` (all free extents) or a size such as 200G.
    #[arg(long, value_name = "SIZE", default_value = "rest", requires = "volume_group")]
    pub ceph_size: String,
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
    let storage = match (a.ceph_device, a.volume_group) {
        (Some(d), _) => Some(NewStorage::Device(d)),
        (None, Some(vg)) => Some(NewStorage::VolumeGroup { volume_group: vg, ceph: a.ceph_size }),
        (None, None) => None,
    };
    let req = AddNodeRequest {
        mac: a.mac.unwrap_or_default(),
        address: a.address,
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
