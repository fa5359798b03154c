//! Which Kubernetes API a cluster's run talks to: the kubeconfig homelab fetched from MicroK8s
//! (saved 0600 in the state directory), or the user's kubeconfig and context for an existing
//! cluster.

use crate::config::Kubernetes;
use crate::engine::context::Ctx;
use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Path of the saved kubeconfig of a MicroK8s cluster.
pub fn saved_path(cx: &Ctx) -> std::path::PathBuf {
    cx.world.state_dir.join("kubeconfig")
}

pub async fn client(cx: &Ctx) -> anyhow::Result<kube::Client> {
    crate::foundation::tls::install_crypto_provider();
    match &cx.cluster.kubernetes {
        Kubernetes::Microk8s { .. } => {
            let text = match cx.kubeconfig.lock().ok().and_then(|k| k.clone()) {
                Some(t) => t,
                None => std::fs::read_to_string(saved_path(cx)).map_err(|e| {
                    anyhow::anyhow!(
                        "no kubeconfig for cluster `{}` yet ({}: {e})\n  hint: run `homelab up` through the kubernetes phase first",
                        cx.cluster.name,
                        saved_path(cx).display()
                    )
                })?,
            };
            crate::kube::client::from_text(&text, None).await
        }
        Kubernetes::Existing { kubeconfig, context } => {
            let kc = match kubeconfig {
                Some(p) => {
                    Kubeconfig::read_from(p).with_context(|| format!("cannot read kubeconfig {}", p.display()))?
                }
                None => Kubeconfig::read().context("cannot read your kubeconfig ($KUBECONFIG or ~/.kube/config)")?,
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
