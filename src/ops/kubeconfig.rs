//! `kubeconfig`: the cluster's kubeconfig (from the state directory, or fetched from the first
//! control plane when this workstation has none yet), written to a file of its own or merged
//! into the user's kubeconfig (a backup first, other contexts kept), always mode 0600.

use crate::config::Cluster;
use crate::engine::context::{Ctx, RunOptions, Timings, World};
use crate::engine::phases::kubernetes::fetch_kubeconfig;
use crate::foundation::files::{Mode, write_atomic};
use crate::foundation::output::Ui;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

/// The kubeconfig text of a MicroK8s cluster; `world` is built only when it must be fetched.
pub async fn obtain(
    cluster: Arc<Cluster>,
    ui: &Ui,
    world: impl FnOnce() -> anyhow::Result<World>,
) -> anyhow::Result<String> {
    let saved = crate::foundation::paths::state_dir(&cluster.name).join("kubeconfig");
    if let Ok(t) = std::fs::read_to_string(&saved) {
        return Ok(t);
    }
    // Not fetched yet on this machine: ask the first control plane.
    let cx = Ctx::new(
        cluster.clone(),
        ui.clone(),
        RunOptions { command: "kubeconfig".into(), timings: Timings::from_env(), ..Default::default() },
        world()?,
    );
    crate::engine::phases::machines::gather_facts(&cx).await?;
    let cp = cluster.first_control_plane().ok_or_else(|| anyhow::anyhow!("the cluster has no control plane"))?;
    let r = cx.remote(&cp.hostname).await.context("connecting to the first control plane to fetch the kubeconfig")?;
    fetch_kubeconfig(&cx, cp, &r).await?;
    std::fs::read_to_string(&saved).with_context(|| format!("reading {}", saved.display()))
}

/// Where the kubeconfig goes and how.
pub struct Target {
    pub merge: bool,
    pub use_context: bool,
    pub to: Option<PathBuf>,
}

/// Writes `text` (context `name`) as `t` says; returns the file written.
pub fn write(text: &str, name: &str, t: &Target) -> anyhow::Result<PathBuf> {
    if t.merge {
        let path =
            t.to.clone()
                .or_else(|| std::env::var_os("KUBECONFIG").and_then(|k| std::env::split_paths(&k).next()))
                .or_else(|| dirs::home_dir().map(|h| h.join(".kube/config")));
        let path = path.ok_or_else(|| anyhow::anyhow!("cannot tell where your kubeconfig is; pass --to PATH"))?;
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        if !existing.is_empty() {
            let backup = path.with_extension("homelab-backup");
            std::fs::copy(&path, &backup).with_context(|| format!("backing up {}", path.display()))?;
        }
        let merged = crate::kube::client::merge_kubeconfig(&existing, text, name, t.use_context)?;
        write_atomic(&path, merged.as_bytes(), Mode::Private).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    } else {
        let path = t.to.clone().unwrap_or_else(|| PathBuf::from(format!("{name}.kubeconfig")));
        write_atomic(&path, text.as_bytes(), Mode::Private).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
