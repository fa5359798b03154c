//! `homelab upgrade [FILE]`: climb to the versions the file declares, hop by hop.

use super::{ChangeArgs, Global, catalog, real_world};
use crate::foundation::output::Ui;
use crate::ops::upgrade::{UpgradeRequest, upgrade};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Move the cluster to the MicroK8s channel, Rook release, Ceph image, Strimzi release and
/// Kafka the file declares, by the ladder of supported hops: Rook one minor at a time, Ceph
/// one supported major at a time, MicroK8s one minor per round (control planes first, each
/// node drained, refreshed, waited for, uncordoned), Strimzi to each release that runs the
/// Kafka that runs, Kafka one supported step at a time (two rolls), ZooKeeper → KRaft on
/// Strimzi 0.45 (stopping at the point of no return), the v1 API before Strimzi 1.0. Every
/// hop is gated (Ceph healthy, OSDs up and in, nodes Ready, the datastore's voters, Kafka
/// Ready with every broker) and refused, changing nothing, when a gate fails.
/// Without --yes it prints the ladder and changes nothing. Stopped anywhere, run it again:
/// it starts from what runs.
///
/// Example: homelab upgrade cluster.yaml --plan
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The cluster file with the target versions (default ./cluster.yaml; also -f FILE).
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub path: Option<PathBuf>,
    /// Print the ladder (hop, what changes, gate, wait, budget) and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Stop after this hop (`rook-v1.15.9`, `microk8s-1.31`, `ceph-19.2.3`) or stage letter.
    #[arg(long, value_name = "STAGE|HOP")]
    pub until: Option<String>,
    /// Run the hops.
    #[arg(long)]
    pub yes: bool,
    /// Go past the ZooKeeper → KRaft migration's point of no return (`strimzi.io/kraft=enabled`).
    #[arg(long)]
    pub continue_kraft: bool,
    /// Take a migration stopped at its point of no return back to ZooKeeper (with --yes).
    #[arg(long, conflicts_with = "continue_kraft")]
    pub rollback_kraft: bool,
    /// Write the lines of the file that the ZooKeeper → KRaft migration changes (every other
    /// byte stays); without it they are listed and a run with --yes is refused.
    #[arg(long)]
    pub write: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

pub async fn run(a: UpgradeArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (path, opts) = a.change.run_options(false);
    let path = a.path.clone().unwrap_or(path);
    let cat = catalog(g)?;
    let req = UpgradeRequest {
        plan_only: a.plan,
        until: a.until,
        yes: a.yes,
        continue_kraft: a.continue_kraft,
        rollback_kraft: a.rollback_kraft,
        write: a.write,
    };
    let manifests = a.change.manifests.clone();
    upgrade(&path, &req, &cat, &ui, opts, &|c| real_world(c, &manifests, true)).await?;
    Ok(ExitCode::SUCCESS)
}
