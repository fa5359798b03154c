//! What the storage, kafka and database phases share: downloading a pinned release in the background
//! (it overlaps with the machines being deployed), and applying objects with a change report
//! — in a dry run through the same apply, computed by the API server (`dryRun=All`).

use crate::catalog::bundle::ManifestSource;
use crate::catalog::bundle::{self, Release};
use crate::catalog::{FileRole, PinnedFile};
use crate::engine::context::Ctx;
use crate::foundation::phase_id::PhaseId;
use crate::kube::apply::{Applier, ApplyOptions, ApplyReport};
use anyhow::{Result, anyhow};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;

pub type Files = HashMap<String, String>;

/// A release download that runs while other phases work.
#[derive(Default)]
pub struct Download {
    started: std::sync::atomic::AtomicBool,
    task: Mutex<Option<JoinHandle<Result<Files>>>>,
    done: tokio::sync::Mutex<Option<Files>>,
}

/// A run that is dropped (Ctrl-C, a failed phase) stops its download: nothing keeps writing
/// into the cache after the run is gone.
impl Drop for Download {
    fn drop(&mut self) {
        if let Some(t) = self.task.get_mut().ok().and_then(|t| t.take()) {
            t.abort();
        }
    }
}

impl Download {
    /// Starts fetching every file of a release the phase needs (templates included), once.
    pub fn start(&self, src: ManifestSource, project: &'static str, version: String, files: Vec<PinnedFile>) {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let task = tokio::spawn(async move {
            crate::foundation::tls::install_crypto_provider();
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(300))
                .build()?;
            let mut out = Files::new();
            for f in files {
                let bytes = bundle::fetch(&http, &src, Release { project, version: &version }, &f).await?;
                let text = String::from_utf8(bytes).map_err(|_| anyhow!("{} is not UTF-8 text", f.path))?;
                out.insert(f.path.clone(), text);
            }
            Ok(out)
        });
        if let Ok(mut t) = self.task.lock() {
            *t = Some(task);
        }
    }

    /// The downloaded files (waits for the download).
    pub async fn files(&self) -> Result<Files> {
        let mut done = self.done.lock().await;
        if let Some(f) = done.as_ref() {
            return Ok(f.clone());
        }
        let task = self
            .task
            .lock()
            .ok()
            .and_then(|mut t| t.take())
            .ok_or_else(|| anyhow!("the release download was never started"))?;
        let files = task.await.map_err(|e| anyhow!("the download task stopped: {e}"))??;
        *done = Some(files.clone());
        Ok(files)
    }
}

pub fn wanted_files(files: &[PinnedFile]) -> Vec<PinnedFile> {
    files
        .iter()
        .filter(|f| {
            f.role != FileRole::Template
                || f.path.ends_with("cluster.yaml")
                || f.path.ends_with("storageclass.yaml")
                || f.path.ends_with("toolbox.yaml")
        })
        .cloned()
        .collect()
}

/// The phase's applier: the cluster's client, or in a dry run a `dryRun=All` applier (one
/// that counts every object as created when the cluster does not exist yet).
pub async fn applier(cx: &Ctx, phase: PhaseId) -> Result<Applier> {
    let t = cx.opts.timings;
    let opts = ApplyOptions {
        crd_deadline: t.deadline(cx.cluster.timeouts.operator),
        backoff: t.kube_poll,
        dry_run: cx.opts.dry_run,
        ..Default::default()
    };
    if cx.opts.dry_run {
        return Ok(match try_client(cx).await {
            Some(c) => cx.applier(c, phase, opts),
            None => Applier::without_cluster(cx.ui.clone(), phase, opts),
        });
    }
    Ok(cx.applier(cx.kube().await?, phase, opts))
}

/// Waits until an operator's Deployment is Available (deadline: `timeouts.operator`). A dry
/// run changed nothing, so there is nothing to wait for.
pub async fn wait_operator(cx: &Ctx, phase: PhaseId, a: &Applier, ns: &str, name: &str, hint: &str) -> Result<()> {
    if cx.dry_run() {
        return Ok(());
    }
    let t = cx.opts.timings;
    crate::kube::wait::wait_object(
        a,
        &cx.ui,
        phase,
        &crate::kube::wait::ObjectRef::new("apps/v1", "Deployment", Some(ns), name),
        "Available",
        &crate::kube::wait::deployment_available(),
        t.deadline(cx.cluster.timeouts.operator),
        t.kube_poll,
        hint,
    )
    .await
    .map(drop)
}

/// Applies and reports: one change per object created or changed. In a dry run the same
/// apply is computed by the server and stored nowhere; the report has the same words.
pub async fn apply(
    cx: &Ctx,
    phase: PhaseId,
    a: &Applier,
    target: &str,
    what: &str,
    objs: &[Value],
) -> Result<ApplyReport> {
    let r = a.apply(objs).await?;
    let t = r.total();
    cx.changed_call(phase, target, apply_words(what, &t), Some(APPLY_CALL.into()), t.changes());
    Ok(r)
}

/// The one text of an apply, for the plan and for the run (with [`APPLY_CALL`]).
pub fn apply_words(what: &str, t: &crate::kube::apply::Counts) -> String {
    format!("apply {what}: {} created, {} changed, {} unchanged", t.created, t.changed, t.unchanged)
}

/// How every apply is made.
pub const APPLY_CALL: &str = "server-side apply, field manager homelab";

/// The cluster's client for a dry run: `None` when the cluster does not exist yet.
pub async fn try_client(cx: &Ctx) -> Option<kube::Client> {
    reach(cx).await.ok()
}

/// The cluster's client once its API server has answered (5 s), or why not, in one line with
/// a hint that fits the cluster: for commands that only read (`status`, `connect`).
pub async fn reach(cx: &Ctx) -> Result<kube::Client> {
    let existing = !cx.cluster.kubernetes.is_microk8s();
    let c = cx.kube().await.map_err(|e| {
        let first = format!("{e:#}");
        let first = first.lines().next().unwrap_or_default().to_owned();
        if existing {
            anyhow::anyhow!(
                "{first}\n  hint: set `kubernetes.kubeconfig` in the cluster file (or $KUBECONFIG) to the kubeconfig kubectl uses for this cluster; `kubectl get nodes` checks it"
            )
        } else {
            anyhow::anyhow!("{first}\n  hint: `homelab up` sets the cluster up and saves its kubeconfig; `homelab kubeconfig` prints it")
        }
    })?;
    let hint = if existing {
        "`kubectl get nodes` with the same kubeconfig shows whether the cluster answers from here"
    } else {
        "check that the first control plane is up (`homelab status` shows MAAS and SSH); `homelab kubeconfig` writes the kubeconfig again with an address this machine reaches"
    };
    // A kubeconfig that points nowhere yet (first run) counts as "no cluster".
    match tokio::time::timeout(Duration::from_secs(5), c.apiserver_version()).await {
        Ok(Ok(_)) => Ok(c),
        Ok(Err(e)) => {
            let cause = anyhow::Error::from(e).root_cause().to_string();
            Err(anyhow::anyhow!("the Kubernetes API server does not answer: {cause}\n  hint: {hint}"))
        }
        Err(_) => Err(anyhow::anyhow!("the Kubernetes API server did not answer within 5 s\n  hint: {hint}")),
    }
}

/// An address of the cluster reachable from the LAN: a Ready node's InternalIP (else its
/// hostname), where every NodePort answers.
pub async fn lan_address(a: &Applier) -> Option<String> {
    let nodes = a.list("v1", "Node", None, None).await.ok()?;
    let nodes: Vec<Value> = nodes.iter().filter_map(|n| serde_json::to_value(n).ok()).collect();
    let ready = |n: &&Value| {
        n.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let n = nodes.iter().find(ready).or(nodes.first())?;
    let addrs = n.pointer("/status/addresses").and_then(Value::as_array)?;
    let pick = |t: &str| addrs.iter().find(|x| x["type"] == t).and_then(|x| x["address"].as_str()).map(str::to_owned);
    pick("InternalIP").or_else(|| pick("Hostname"))
}
