//! `homelab diagnose`: one `.tar.gz` to attach to a bug report, with every layer's state and
//! no secret in it (hosts-lifecycle.md §C; docs/diagnose.md).
//!
//! [`sources`] lists the items (each a file of the bundle and the exact call that makes it);
//! they run a few at a time, each with a deadline and a size bound, and each may fail alone:
//! a dead host, a stopped API server or a MAAS that does not answer is a line of the
//! manifest, not the end of the bundle. [`redact`] scrubs every byte once, with every secret
//! value homelab can learn (registered ones, the kubeconfig's credentials, the values of the
//! Secrets in homelab's namespaces — read for this, never written). The archive holds
//! `manifest.json` (what was collected, from where, how long it took, what failed and how
//! many values were masked) and the items. The command fails only when no system answered
//! (the status report and the local run logs are written whatever answers).

pub mod redact;
pub mod sources;

use crate::engine::context::Ctx;
use anyhow::Result;
use base64::Engine as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An item larger than this is cut (the manifest says so).
pub const MAX_ITEM_BYTES: usize = 4 << 20;
/// Run logs put in the bundle: the newest ones.
pub const RUN_LOGS: usize = 5;
/// Items read at once.
const PARALLEL: usize = 8;

/// One file of the bundle, still to be read.
pub struct Item {
    pub path: String,
    /// The exact call behind it.
    pub source: String,
    pub fut: BoxFuture<'static, Result<String>>,
}

/// One line of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub path: String,
    pub source: String,
    pub ok: bool,
    pub bytes: usize,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Values masked in this item.
    pub redacted: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub homelab: String,
    pub cluster: String,
    pub created: String,
    /// Secret values known to the redaction pass (their number, never themselves).
    pub known_secrets: usize,
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn collected(&self) -> usize {
        self.entries.iter().filter(|e| e.ok).count()
    }
    /// Items read from the systems (MAAS, the hosts, the API, Ceph): the status report,
    /// which is written whatever answers, and the local run logs do not count.
    pub fn from_systems(&self) -> usize {
        self.entries.iter().filter(|e| e.ok && e.path != "status.json" && !e.path.starts_with("runs/")).count()
    }
    pub fn failed(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.ok)
    }
}

/// What to write and how long each item may take.
pub struct Request {
    pub to: PathBuf,
    pub per_item: Duration,
    /// The run log of this run (left out: it is still being written).
    pub own_log: Option<PathBuf>,
}

/// Collects, scrubs and writes the bundle; returns its manifest.
pub async fn diagnose(cx: Arc<Ctx>, req: &Request) -> Result<Manifest> {
    let started = Instant::now();
    // The API is reached once, with the item deadline; every Kubernetes item uses it.
    let kube = match tokio::time::timeout(req.per_item, crate::engine::phases::manifests::reach(&cx)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("the Kubernetes API did not answer within {}s", req.per_item.as_secs())),
    };
    let applier = kube.as_ref().ok().map(|c| {
        (
            Arc::new(cx.applier(c.clone(), crate::foundation::phase_id::PhaseId::Kubernetes, Default::default())),
            c.clone(),
        )
    });
    let redactor = redact::Redactor::new(known_secrets(&cx, applier.as_ref().map(|(a, _)| a.as_ref())).await);
    // The machines' addresses (pre-installed ones as written, MAAS's from MAAS), as every
    // command learns them; without them the host items fail, each saying so.
    // MAAS's view of the machines, read once: the addresses the host items need, and the
    // bundle's machines item.
    let (machines, addresses) =
        match tokio::time::timeout(req.per_item, crate::engine::phases::machines::gather_facts(&cx)).await {
            Ok(Ok(found)) => (Some(found), None),
            Ok(Err(e)) => (None, Some(format!("{e:#}"))),
            Err(_) => (None, Some(format!("MAAS did not answer within {}s", req.per_item.as_secs()))),
        };
    let mut items = sources::items(&cx, machines, applier, kube.err());
    if let Some(e) = addresses {
        items.push(Item {
            path: "maas/machines.json".into(),
            source: "GET machines/?mac_address=… (the machines' addresses)".into(),
            fut: Box::pin(async move { Err(anyhow::anyhow!(e)) }),
        });
    }
    items.extend(run_logs(req.own_log.as_deref()));
    let per_item = req.per_item;
    let results: Vec<(Entry, Option<String>)> = futures::stream::iter(items.into_iter().map(|item| async move {
        let t = Instant::now();
        let r = tokio::time::timeout(per_item, item.fut).await;
        let elapsed_ms = t.elapsed().as_millis() as u64;
        let mut entry = Entry {
            path: item.path,
            source: item.source,
            ok: false,
            bytes: 0,
            elapsed_ms,
            error: None,
            truncated: false,
            redacted: 0,
        };
        match r {
            Ok(Ok(text)) => {
                entry.ok = true;
                (entry, Some(text))
            }
            Ok(Err(e)) => {
                entry.error = Some(format!("{e:#}"));
                (entry, None)
            }
            Err(_) => {
                entry.error = Some(format!("no answer within {}s", per_item.as_secs()));
                (entry, None)
            }
        }
    }))
    .buffered(PARALLEL)
    .collect()
    .await;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    for (mut e, text) in results {
        if let Some(error) = e.error.take() {
            let (clean, n) = redactor.scrub(&error);
            e.error = Some(clean);
            e.redacted += n;
        }
        if let Some(mut text) = text {
            if text.len() > MAX_ITEM_BYTES {
                let mut cut = MAX_ITEM_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str("\n[cut by homelab diagnose]\n");
                e.truncated = true;
            }
            let (clean, n) = redactor.scrub(&text);
            e.redacted += n;
            e.bytes = clean.len();
            files.push((e.path.clone(), clean.into_bytes()));
        }
        entries.push(e);
    }
    let manifest = Manifest {
        homelab: env!("CARGO_PKG_VERSION").into(),
        cluster: cx.cluster.name.clone(),
        created: crate::foundation::time::now_rfc3339(),
        known_secrets: redactor.known(),
        entries,
    };
    let (manifest_text, _) = redactor.scrub(&serde_json::to_string_pretty(&manifest)?);
    files.insert(0, ("manifest.json".into(), manifest_text.into_bytes()));
    write_archive(&req.to, &cx.cluster.name, &files)?;
    tracing::debug!(target: "homelab::diagnose", "bundle written in {} ms", started.elapsed().as_millis());
    Ok(manifest)
}

/// Every secret value homelab can learn: the ones registered in this run (the MAAS key),
/// the kubeconfig's credentials, and each value of every Secret in homelab's namespaces.
async fn known_secrets(cx: &Ctx, a: Option<&crate::kube::apply::Applier>) -> Vec<String> {
    let mut known = crate::foundation::secrets::registered();
    let kubeconfig = match &cx.cluster.kubernetes {
        crate::config::Kubernetes::Microk8s { .. } => Some(crate::engine::cluster_api::saved_path(&cx.world.state_dir)),
        crate::config::Kubernetes::Existing { kubeconfig, .. } => kubeconfig.clone(),
    };
    if let Some(text) = kubeconfig.and_then(|p| std::fs::read_to_string(p).ok()) {
        for l in text.lines() {
            for k in ["token:", "client-key-data:", "password:"] {
                if let Some(v) = l.trim().strip_prefix(k) {
                    known.push(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    if let Some(a) = a {
        for ns in sources::namespaces(cx) {
            let Ok(secrets) = a.list("v1", "Secret", Some(&ns), None).await else { continue };
            for s in secrets {
                let v = serde_json::to_value(&s).unwrap_or_default();
                for value in v.pointer("/data").and_then(|d| d.as_object()).into_iter().flat_map(|d| d.values()) {
                    if let Some(b) =
                        value.as_str().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    {
                        let text = String::from_utf8_lossy(&b).into_owned();
                        // A multi-line value (a PEM, a properties file) by each line as well.
                        known.extend(text.lines().map(|l| l.trim().to_owned()).filter(|l| l.len() >= 8));
                        known.push(text);
                    }
                }
            }
        }
    }
    known
}

/// The newest run logs but this run's own.
fn run_logs(own: Option<&Path>) -> Vec<Item> {
    let mut logs = crate::foundation::runlog::list(&crate::foundation::paths::log_dir());
    logs.retain(|p| Some(p.as_path()) != own);
    let skip = logs.len().saturating_sub(RUN_LOGS);
    logs.into_iter()
        .skip(skip)
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Item {
                path: format!("runs/{name}"),
                source: format!("{}", p.display()),
                fut: Box::pin(async move {
                    crate::foundation::limits::read_text(&p, MAX_ITEM_BYTES as u64 * 2, "a run log").map_err(Into::into)
                }),
            }
        })
        .collect()
}

/// Writes the files as `<cluster>-diagnose/<path>` in a gzip'd tar, mode 0600, atomically.
fn write_archive(to: &Path, cluster: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
    let dir = to.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".homelab-diagnose").tempfile_in(dir)?;
    {
        let gz = flate2::write::GzEncoder::new(tmp.as_file(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mtime =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        for (path, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(mtime);
            h.set_cksum();
            tar.append_data(&mut h, format!("{cluster}-diagnose/{path}"), bytes.as_slice())?;
        }
        tar.into_inner()?.finish()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.persist(to).map_err(|e| anyhow::anyhow!("cannot write {}: {}", to.display(), e.error))?;
    Ok(())
}
