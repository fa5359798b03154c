//! `homelab kubeconfig [FILE]`: write or merge the cluster's kubeconfig.

use super::{Global, WorldArgs, default_file, load_cluster, real_env};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::engine::phases::kubernetes::fetch_kubeconfig;
use crate::engine::ui::Ui;
use crate::error::usage;
use crate::files::{Mode, write_atomic};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Write the cluster's kubeconfig (mode 0600, context `homelab-<name>`), or merge it into
/// your kubeconfig ($KUBECONFIG or ~/.kube/config) with `--merge`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  homelab kubeconfig                 writes ./homelab-garage.kubeconfig\n  homelab kubeconfig --merge --use   adds the context to ~/.kube/config and switches to it"
)]
pub struct KubeconfigArgs {
    /// The cluster file (default ./cluster.yaml).
    pub file: Option<PathBuf>,
    /// Merge into your kubeconfig instead of writing a separate file.
    #[arg(long)]
    pub merge: bool,
    /// With --merge: make it the current context.
    #[arg(long = "use")]
    pub use_context: bool,
    /// Where to write (default ./homelab-<name>.kubeconfig, or with --merge your kubeconfig).
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,
}

pub async fn run(a: KubeconfigArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let path = default_file(a.file);
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    if !cluster.kubernetes.is_microk8s() {
        return Err(usage(
            "this cluster uses your own kubeconfig (`kubernetes.kubeconfig`); there is nothing for homelab to write",
        ));
    }
    let name = cluster.context_name();
    let saved = super::state_dir(&cluster.name).join("kubeconfig");
    let text = match std::fs::read_to_string(&saved) {
        Ok(t) => t,
        Err(_) => {
            // Not fetched yet on this machine: ask the first control plane.
            let env = real_env(&cluster, &WorldArgs::default(), true)?;
            let cx = Ctx::new(
                cluster.clone(),
                ui.clone(),
                RunOptions { command: "kubeconfig".into(), timings: Timings::from_env(), ..Default::default() },
                env,
            );
            crate::engine::phases::machines::gather_facts(&cx).await?;
            let cp =
                cluster.first_control_plane().ok_or_else(|| anyhow::anyhow!("the cluster has no control plane"))?;
            let r = cx
                .remote(&cp.hostname)
                .await
                .context("connecting to the first control plane to fetch the kubeconfig")?;
            fetch_kubeconfig(&cx, cp, &r).await?;
            std::fs::read_to_string(&saved).with_context(|| format!("reading {}", saved.display()))?
        }
    };
    let target = if a.merge {
        let t =
            a.to.clone()
                .or_else(|| std::env::var_os("KUBECONFIG").and_then(|k| std::env::split_paths(&k).next()))
                .or_else(|| dirs::home_dir().map(|h| h.join(".kube/config")));
        let t = t.ok_or_else(|| anyhow::anyhow!("cannot tell where your kubeconfig is; pass --to PATH"))?;
        let existing = std::fs::read_to_string(&t).unwrap_or_default();
        if !existing.is_empty() {
            let backup = t.with_extension("homelab-backup");
            std::fs::copy(&t, &backup).with_context(|| format!("backing up {}", t.display()))?;
        }
        let merged = crate::kube::client::merge_kubeconfig(&existing, &text, &name, a.use_context)?;
        write_atomic(&t, merged.as_bytes(), Mode::Private).with_context(|| format!("writing {}", t.display()))?;
        t
    } else {
        let t = a.to.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.kubeconfig")));
        write_atomic(&t, text.as_bytes(), Mode::Private).with_context(|| format!("writing {}", t.display()))?;
        t
    };
    if a.merge {
        let how = if a.use_context {
            "; it is now the current context".to_owned()
        } else {
            format!("; use it with `kubectl --context {name} get nodes`")
        };
        ui.out(&format!("merged context {name} into {} (mode 0600){how}", target.display()));
    } else {
        ui.out(&format!(
            "wrote {} (mode 0600, context {name}); use it with `KUBECONFIG={} kubectl get nodes`",
            target.display(),
            target.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
