//! `homelab kubeconfig [FILE]`: write or merge the cluster's kubeconfig.

use super::{Global, ManifestArgs, load_cluster, real_world};
use crate::foundation::error::usage;
use crate::foundation::output::Ui;
use crate::ops::kubeconfig;
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
    #[command(flatten)]
    pub file: super::FileArg,
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
    let path = a.file.path();
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    if !cluster.kubernetes.is_microk8s() {
        return Err(usage(
            "this cluster uses your own kubeconfig (`kubernetes.kubeconfig`); there is nothing for homelab to write",
        ));
    }
    let name = cluster.context_name();
    let text =
        kubeconfig::obtain(cluster.clone(), &ui, || real_world(&cluster, &ManifestArgs::default(), true)).await?;
    let target = kubeconfig::write(
        &text,
        &name,
        &kubeconfig::Target { merge: a.merge, use_context: a.use_context, to: a.to.clone() },
    )?;
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
