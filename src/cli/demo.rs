//! `homelab demo`: the whole flow on a simulated lab, no hardware needed.

use super::Global;
use crate::foundation::output::Ui;
use crate::sim::demo::{DemoOptions, run as run_demo};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run the real phases of `up`, `add-node` and `status` against a built-in simulated lab
/// (simulated MAAS, hosts and Kubernetes API server): the whole flow on a laptop, in about
/// half a minute, with the progress and summary a real run shows.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Write the demo's cluster.yaml here and keep it (default: a temporary directory); an
    /// existing cluster.yaml there is never overwritten. The simulated lab, with its keys and
    /// kubeconfig, ends with the demo.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Use the pinned Rook/Strimzi files from this directory (`<project>/<version>/<path>`).
    #[arg(long, value_name = "DIR", env = "HOMELAB_MANIFEST_DIR")]
    pub manifests_dir: Option<PathBuf>,
    /// Do not try to download the pinned files; use homelab's stand-ins.
    #[arg(long)]
    pub offline: bool,
    /// Run 5× faster (less to watch).
    #[arg(long)]
    pub quick: bool,
}

pub async fn run(a: DemoArgs, _g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    // The temporary directory is owned here, outside the demo, so that it is removed last,
    // after everything the demo started has stopped writing into it.
    let scratch = match &a.dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("homelab-demo").tempdir()?),
    };
    let opts = DemoOptions {
        dir: a.dir.clone().or_else(|| scratch.as_ref().map(|t| t.path().to_path_buf())),
        dir_is_temporary: scratch.is_some(),
        manifests_dir: a.manifests_dir,
        quick: a.quick,
        offline: a.offline,
    };
    let demo = run_demo(&ui, opts);
    // Ctrl-C drops the demo: its simulators stop, its download is aborted, and its temporary
    // directories (which hold the lab's MAAS key and SSH key) are removed, as on a normal exit.
    let r = tokio::select! {
        r = demo => r?,
        _ = tokio::signal::ctrl_c() => {
            // What was aborted stops at its next await: give it that moment before removing.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if let Some(t) = scratch {
                let path = t.path().to_path_buf();
                if t.close().is_err() {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            ui.err("\ninterrupted (Ctrl-C): the demo stopped and removed its temporary files");
            return Ok(ExitCode::from(130));
        }
    };
    Ok(if r.healthy && r.second_up_changes == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::foundation::error::EXIT_FAILED)
    })
}
