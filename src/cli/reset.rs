//! `homelab reset [FILE]`: take down what the cluster file declares, to start over (the
//! operation is `ops::reset`).

use super::remove_node::ReleaseArgs;
use super::{ChangeArgs, Global, load_cluster, real_world};
use crate::engine::context::Ctx;
use crate::foundation::error::Failure;
use crate::foundation::output::Ui;
use crate::ops::reset::decide::{Ask, Layer, Step};
use clap::Args;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Take down what cluster.yaml declares, in the documented order, to start over: the
/// database and Kafka with their volumes, the pools and StorageClasses, the CephCluster
/// (Rook wipes its OSD volumes first) and the operators, then MicroK8s on every machine;
/// with --release the machines MAAS deployed go back to MAAS. Never a pre-installed PC or
/// the MAAS host, never a firewall rule. Asks you to type the cluster's name; run it again
/// after an interruption and it finishes the job.
///
/// Example: homelab reset --dry-run
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Only these layers (comma-separated): apps, storage, operators, kubernetes, machines.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LAYER")]
    pub only: Vec<Layer>,
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Print the steps and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm without a terminal: the cluster's name (metadata.name), as typed at the prompt.
    #[arg(long, value_name = "NAME")]
    pub yes_really_destroy_data: Option<String>,
    /// The cluster file (default ./cluster.yaml; also -f FILE).
    #[arg(value_name = "FILE", conflicts_with = "file")]
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

pub async fn run(a: ResetArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (path, mut opts) = a.change.run_options(a.dry_run);
    let path = a.path.clone().unwrap_or(path);
    opts.command = "reset".into();
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    let name = cluster.name.clone();
    // Confirmation is settled before anything is read: a wrong name changes nothing.
    let typed = match (&a.yes_really_destroy_data, a.dry_run) {
        (_, true) => None,
        (Some(n), false) if *n == name => None,
        (Some(n), false) => {
            return Err(Failure::Usage(format!(
                "--yes-really-destroy-data {n} does not name this cluster (`{name}`): nothing was changed"
            ))
            .into());
        }
        (None, false) if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => Some(name.clone()),
        (None, false) => {
            return Err(Failure::Usage(format!(
                "reset destroys the cluster `{name}` and its data; without a terminal to confirm on, it needs --yes-really-destroy-data {name} (nothing was changed)\n  hint: `homelab reset --dry-run` lists what it would take down"
            ))
            .into());
        }
    };
    let env = real_world(&cluster, &a.change.manifests, cluster.maas.is_some())?;
    let cx = Arc::new(Ctx::new(cluster, ui.clone(), opts, env));
    let ask = Ask {
        only: a.only,
        release: a.release.release,
        erase: a.release.erase.map(super::remove_node::EraseArg::name),
    };
    let prompt_ui = ui.clone();
    let confirm = move |_steps: &[Step]| -> anyhow::Result<bool> {
        let Some(want) = &typed else { return Ok(true) };
        prompt_ui.err(&format!("This destroys `{want}` and the data in it (the steps above)."));
        prompt_ui.err("Type the cluster's name to go on:");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim() == want)
    };
    let report = crate::ops::reset::reset(&cx, &ask, &confirm).await?;
    if a.dry_run {
        ui.out("dry run: nothing was changed");
    } else if !report.steps.is_empty() {
        ui.out(&format!(
            "reset `{}`: {} step{} in {}; `homelab up` builds it again from the file",
            cx.cluster.name,
            report.steps.len(),
            if report.steps.len() == 1 { "" } else { "s" },
            crate::foundation::time::fmt_secs(report.elapsed_s)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
