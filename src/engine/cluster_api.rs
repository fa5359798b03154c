//! Which Kubernetes API a cluster's run talks to: the kubeconfig homelab fetched from MicroK8s
//! (saved 0600 in the state directory), or the user's kubeconfig and context for an existing
//! cluster.

use crate::config::{Cluster, Kubernetes};
use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};

/// Path of the saved kubeconfig of a MicroK8s cluster, in the cluster's state directory.
pub fn saved_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kubeconfig")
}

/// The client of `cluster`'s API: for MicroK8s from `fetched` (the kubeconfig this run
/// fetched, when it did) or the one saved in `state_dir`; for an existing cluster from the
/// user's kubeconfig.
pub async fn client(cluster: &Cluster, state_dir: &Path, fetched: Option<String>) -> anyhow::Result<kube::Client> {
    crate::foundation::tls::install_crypto_provider();
    match &cluster.kubernetes {
        Kubernetes::Microk8s { .. } => {
            let text = match fetched {
                Some(t) => t,
                None => std::fs::read_to_string(saved_path(state_dir)).map_err(|e| {
                    anyhow::anyhow!(
                        "no kubeconfig for cluster `{}` yet ({}: {e})\n  hint: run `homelab up` through the kubernetes phase first",
                        cluster.name,
                        saved_path(state_dir).display()
                    )
                })?,
            };
            crate::kube::client::from_text(&text, None).await
        }
        Kubernetes::Existing { kubeconfig, context } => {
            let kc = match kubeconfig {
                // The cause once: kube's error repeats its source in its own text.
                Some(p) => Kubeconfig::read_from(p).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read the kubeconfig {}: {}",
                        p.display(),
                        anyhow::Error::from(e).root_cause()
                    )
                })?,
                None => Kubeconfig::read().map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read your kubeconfig ($KUBECONFIG or ~/.kube/config): {}",
                        anyhow::Error::from(e).root_cause()
                    )
                })?,
            };
            let opts = KubeConfigOptions { context: context.clone(), cluster: None, user: None };
            let cfg = kube::Config::from_custom_kubeconfig(kc, &opts).await.with_context(|| match context {
                Some(c) => format!("kubeconfig context `{c}` is unusable\n  hint: `kubectl config get-contexts` lists the contexts; set `kubernetes.context`"),
                None => "the kubeconfig's current context is unusable".to_owned(),
            })?;
            Ok(kube::Client::try_from(cfg)?)
        }
    }
}
