//! What the storage and kafka phases share: downloading a pinned release in the background
//! (it overlaps with the machines being deployed), applying objects with a change report,
//! and the dry-run comparison of desired objects with the live ones.

use crate::addons::bundle::{self, Release};
use crate::addons::catalog::{FileRole, PinnedFile};
use crate::engine::context::{Ctx, ManifestSource};
use crate::engine::phase::PhaseId;
use crate::engine::runner::Planned;
use crate::kube::apply::{Applier, ApplyOptions, ApplyReport, describe};
use anyhow::{Result, anyhow};
use futures::StreamExt;
use kube::api::DynamicObject;
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

impl Download {
    /// Starts fetching every file of a release the phase needs (templates included), once.
    pub fn start(&self, src: ManifestSource, project: &'static str, version: String, files: Vec<PinnedFile>) {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let task = tokio::spawn(async move {
            crate::tls::install_crypto_provider();
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
            f.role != FileRole::Template || f.path.ends_with("cluster.yaml") || f.path.ends_with("storageclass.yaml")
        })
        .cloned()
        .collect()
}

pub fn applier(cx: &Ctx, phase: PhaseId, client: kube::Client) -> Applier {
    let t = cx.opts.timings;
    Applier::new(
        client,
        cx.ui.clone(),
        phase,
        ApplyOptions {
            crd_deadline: t.deadline(cx.cluster.timeouts.operator),
            backoff: t.kube_poll,
            ..Default::default()
        },
    )
}

/// Waits until an operator's Deployment is Available (deadline: `timeouts.operator`).
pub async fn wait_operator(cx: &Ctx, phase: PhaseId, a: &Applier, ns: &str, name: &str, hint: &str) -> Result<()> {
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

/// Applies and reports: one change per object created or changed.
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
    cx.changed(
        phase,
        target,
        format!(
            "apply {what}: {} created, {} changed, {} unchanged (server-side apply, field manager homelab)",
            t.created, t.changed, t.unchanged
        ),
        t.changes(),
    );
    Ok(r)
}

/// Whether every field of `want` has the same value in `live` (what a dry run calls "in sync").
pub fn subset(want: &Value, live: &Value) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| l.get(k).is_some_and(|lv| subset(v, lv))),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The live version of `o` (None when there is no cluster yet or no such object).
async fn live_object(a: Option<&Applier>, o: &Value) -> Option<DynamicObject> {
    a?.get(
        o["apiVersion"].as_str().unwrap_or(""),
        o["kind"].as_str().unwrap_or(""),
        o["metadata"]["namespace"].as_str(),
        o["metadata"]["name"].as_str().unwrap_or(""),
    )
    .await
    .ok()
    .flatten()
}

/// Dry run: what applying `objs` would do, against the live cluster when reachable.
pub async fn plan_objects(
    a: Option<&Applier>,
    target: &str,
    objs: &[Value],
    summarize: Option<&str>,
) -> Result<Vec<Planned>> {
    // The live objects, read a few at a time (a dry run of Rook reads about a hundred).
    type Fut<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<DynamicObject>> + Send + 'a>>;
    let reads: Vec<Fut<'_>> = objs.iter().map(|o| -> Fut<'_> { Box::pin(live_object(a, o)) }).collect();
    let lives: Vec<Option<DynamicObject>> = futures::stream::iter(reads).buffered(8).collect().await;
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for (o, live) in objs.iter().zip(lives) {
        match live {
            None => creates.push(describe(o)),
            Some(l) => {
                let lv = serde_json::to_value(&l)?;
                let mut w = o.clone();
                if let Some(m) = w.as_object_mut() {
                    m.remove("status");
                }
                if !subset(&w, &lv) {
                    updates.push(describe(o));
                }
            }
        }
    }
    Ok(match summarize {
        Some(what) if creates.len() + updates.len() > 0 => {
            vec![Planned::new(
                target,
                format!(
                    "apply {what}: {} to create, {} to update, {} unchanged",
                    creates.len(),
                    updates.len(),
                    objs.len() - creates.len() - updates.len()
                ),
            )]
        }
        Some(_) => vec![],
        None => creates
            .into_iter()
            .map(|d| Planned::new(target, format!("create {d}")))
            .chain(updates.into_iter().map(|d| Planned::new(target, format!("update {d}"))))
            .collect(),
    })
}

/// The cluster's client for a dry run: `None` when the cluster does not exist yet.
pub async fn try_client(cx: &Ctx) -> Option<kube::Client> {
    let c = cx.kube().await.ok()?;
    // A kubeconfig that points nowhere yet (first run) counts as "no cluster".
    match tokio::time::timeout(Duration::from_secs(5), c.apiserver_version()).await {
        Ok(Ok(_)) => Some(c),
        _ => None,
    }
}
