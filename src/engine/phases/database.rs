//! Phase `database` (CloudNativePG): the release manifest by server-side apply, a wait for
//! the operator's Deployment and for its CA in every webhook of both webhook
//! configurations (the operator injects it after it starts; a Cluster created before that
//! is refused by the API server), then the PostgreSQL `Cluster` — retried while the API
//! server still cannot call the webhook, within the deadline — and a wait for every
//! instance ready in the healthy phase. Then the `-app` Secret and the connection URI
//! (never the password) are reported.
//!
//! Before anything is applied, the file is compared with the running Cluster: a smaller
//! volume and a removed WAL volume are refused (CloudNativePG cannot do either). A Cluster
//! homelab created and the file no longer declares is kept and reported; `up --prune`
//! deletes it — and its volumes — only when it carries homelab's label. Facts: docs/apps.md.

use super::manifests::{self as addons, Download};
use crate::config::Database;
use crate::config::size::{human_iec, parse_quantity};
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::error::Failure;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::kube::apply::Applier;
use crate::kube::wait::{Check, Expect, ObjectRef, wait_object};
use crate::render::cnpg;
use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use serde_json::Value;

const PHASE: PhaseId = PhaseId::Database;

/// The phase of a Cluster whose instances all run (`api/v1/cluster_types.go`).
pub const HEALTHY: &str = "Cluster in healthy state";

#[derive(Default)]
pub struct DatabasePhase {
    download: Download,
}

fn database(cx: &Ctx) -> Result<&Database> {
    cx.cluster.database.as_ref().ok_or_else(|| anyhow!("the cluster declares no `database:`"))
}

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The refusals that need the running Cluster `live`; empty when the file can be applied.
pub fn refusals(live: &Value, d: &Database) -> Vec<String> {
    let mut out = Vec::new();
    let shrink = |what: &str, has: Option<&str>, want: &str, out: &mut Vec<String>| {
        if let (Some(h), Some(hb), Some(wb)) = (has, has.and_then(parse_quantity), parse_quantity(want))
            && wb < hb
        {
            out.push(format!(
                "database {}: its {what} is {h}, the file says {want}; a volume cannot shrink (keep {h} or more)",
                d.name
            ));
        }
    };
    shrink("storage", s(live, "/spec/storage/size"), &d.storage.0, &mut out);
    match (live.pointer("/spec/walStorage").filter(|w| !w.is_null()), &d.wal) {
        (Some(_), None) => out.push(format!(
            "database {}: it has a WAL volume and the file has none; CloudNativePG cannot remove a WAL volume (keep `walStorage`)",
            d.name
        )),
        (Some(w), Some((want, _))) => shrink("WAL volume", s(w, "/size"), want, &mut out),
        _ => {}
    }
    out
}

async fn check_live(a: &Applier, d: &Database) -> Result<()> {
    let Some(live) = a.get(cnpg::API, "Cluster", Some(&d.namespace), &d.name).await? else { return Ok(()) };
    let r = refusals(&serde_json::to_value(live)?, d);
    if !r.is_empty() {
        bail!(Failure::Usage(format!(
            "refusing to apply the database:\n  {}\n  (nothing was applied)",
            r.join("\n  ")
        )));
    }
    Ok(())
}

/// The release manifest by server-side apply, then the operator rolled out and its CA in
/// every webhook of both webhook configurations (what `up` and an `upgrade` hop share).
/// Returns the hint for what follows.
pub async fn install_operator(
    cx: &Ctx,
    a: &Applier,
    release: &crate::catalog::CnpgRelease,
    files: &addons::Files,
) -> Result<String> {
    let t = cx.opts.timings;
    let install = cnpg::install_objects(release, files)?;
    let webhooks = cnpg::webhook_counts(&install);
    let what = format!("the CloudNativePG {} manifest", release.version);
    addons::apply(cx, PHASE, a, cnpg::OPERATOR_NAMESPACE, &what, &install).await?;
    let hint = format!(
        "`kubectl -n {ns} logs deployment/{op}`; the operator creates its own CA at start-up and writes it into both webhook configurations",
        ns = cnpg::OPERATOR_NAMESPACE,
        op = cnpg::OPERATOR
    );
    addons::wait_operator(cx, PHASE, a, cnpg::OPERATOR_NAMESPACE, cnpg::OPERATOR, &hint).await?;
    if cx.dry_run() {
        return Ok(hint);
    }
    for (kind, name, n) in &webhooks {
        let mut e = Expect::default();
        for i in 0..*n {
            e = e.field(&format!("/webhooks/{i}/clientConfig/caBundle"), Check::Exists);
        }
        let r = ObjectRef::new("admissionregistration.k8s.io/v1", kind, None, name);
        let deadline = t.deadline(cx.cluster.timeouts.operator);
        let what = "the operator's CA in every webhook";
        wait_object(a, &cx.ui, PHASE, &r, what, &e, deadline, t.kube_poll, &hint).await?;
    }
    Ok(hint)
}

/// What a healthy Cluster reports: every instance ready, the healthy phase.
pub fn healthy() -> Expect {
    Expect::default()
        .field("/status/phase", Check::Equals(Value::from(HEALTHY)))
        .field("/status/readyInstances", Check::SameAs("/spec/instances".into()))
}

/// Waits for the Cluster `d` to be healthy; returns it.
pub async fn wait_healthy(cx: &Ctx, a: &Applier, d: &Database) -> Result<Value> {
    let t = cx.opts.timings;
    let r = ObjectRef::new(cnpg::API, "Cluster", Some(&d.namespace), &d.name);
    let hint = format!(
        "`kubectl -n {ns} get pods,pvc -l cnpg.io/cluster={n}` — a Pending PVC means the StorageClass cannot provision (is Ceph healthy?); `kubectl -n {ns} describe cluster {n}` shows the phase; first image pulls on old PCs are slow: raise `timeouts.database`",
        ns = d.namespace,
        n = d.name
    );
    let what = "every instance ready, Cluster in healthy state";
    wait_object(a, &cx.ui, PHASE, &r, what, &healthy(), t.deadline(cx.cluster.timeouts.database), t.kube_poll, &hint)
        .await
}

/// The image of the running CloudNativePG operator, if one runs.
pub async fn running_operator(a: &Applier) -> Result<Option<String>> {
    let Some(d) = a.get("apps/v1", "Deployment", Some(cnpg::OPERATOR_NAMESPACE), cnpg::OPERATOR).await? else {
        return Ok(None);
    };
    let d = serde_json::to_value(d)?;
    Ok(s(&d, "/spec/template/spec/containers/0/image").map(str::to_owned))
}

fn kube_words(cx: &Ctx) -> String {
    cx.cluster.kubernetes.minor().map(|m| format!("{}.{}", m.0, m.1)).unwrap_or_else(|| "of this cluster".into())
}

/// Is this apply error the API server failing to call CloudNativePG's webhook (not up yet,
/// its certificate not injected yet, its Service or the CNI changing)?
fn webhook_not_ready(e: &anyhow::Error) -> bool {
    let t = format!("{e:#}");
    t.contains("failed calling webhook") && t.contains("cnpg.io")
}

/// `postgresql://owner@host:port/db`: the URI without its password.
pub fn uri(owner: &str, host: &str, port: u16, db: &str) -> String {
    format!("postgresql://{owner}@{host}:{port}/{db}")
}

#[async_trait]
impl Phase for DatabasePhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn prepare(&self, cx: &Ctx) -> Result<()> {
        let d = database(cx)?;
        self.download.start(
            cx.world.manifests.clone(),
            "cloudnative-pg",
            d.release.version.clone(),
            addons::wanted_files(&d.release.files),
        );
        if let Some(c) = addons::try_client(cx).await {
            check_live(&cx.applier(c, PHASE, Default::default()), d).await?;
        }
        Ok(())
    }

    async fn finish(&self, cx: &Ctx) -> Result<()> {
        let d = database(cx)?;
        let files = self.download.files().await?;
        cx.ensure_lease().await?;
        let a = addons::applier(cx, PHASE).await?;
        let t = cx.opts.timings;
        // Another CloudNativePG release is `homelab upgrade`'s to change (its CRDs and the
        // running clusters move with the operator); `up` reports it and leaves it alone.
        if let Some(img) = running_operator(&a).await?
            && img.rsplit_once(':').map(|(_, t)| t.trim_start_matches('v'))
                != Some(d.release.version.trim_start_matches('v'))
        {
            cx.drift(
                PHASE,
                cnpg::OPERATOR_NAMESPACE,
                format!("the CloudNativePG operator runs {img}; Kubernetes {} calls for {}", kube_words(cx), d.release.version),
                "`homelab upgrade` moves CloudNativePG with the Kubernetes version; until then the database is left as it runs",
            );
            return leftovers(cx, &a, d).await;
        }
        let hint = install_operator(cx, &a, &d.release, &files).await?;
        let target = format!("{}/{}", d.namespace, d.name);
        let objs = cnpg::render(d);
        let what = format!(
            "PostgreSQL cluster {} ({} instance{}, {} each{})",
            d.name,
            d.instances,
            if d.instances == 1 { "" } else { "s" },
            d.storage.0,
            d.wal.as_ref().map(|w| format!(" + {} WAL", w.0)).unwrap_or_default()
        );
        let deadline = t.deadline(cx.cluster.timeouts.database);
        if cx.dry_run() {
            addons::apply(cx, PHASE, &a, &target, &what, &objs).await?;
        } else {
            // The operator's readiness does not prove the API server can call its webhook
            // yet: retry that one refusal with backoff until the deadline.
            let spec = WaitSpec {
                phase: PHASE,
                target: format!("Cluster {target}"),
                what: "the API server to accept the Cluster (CloudNativePG's webhook answering)".into(),
                deadline,
                backoff: t.kube_poll,
                hint: format!(
                    "{hint}; `kubectl get mutatingwebhookconfiguration cnpg-mutating-webhook-configuration -o yaml` shows whether the CA is there"
                ),
            };
            wait_for(&cx.ui, &spec, || async {
                match addons::apply(cx, PHASE, &a, &target, &what, &objs).await {
                    Ok(_) => Ok(Probe::Ready(())),
                    Err(e) if webhook_not_ready(&e) => {
                        let first =
                            format!("{e:#}").lines().next().unwrap_or_default().chars().take(200).collect::<String>();
                        Ok(Probe::Pending(Some(first)))
                    }
                    Err(e) => Ok(Probe::Failed(e)),
                }
            })
            .await?;
            let live = wait_healthy(cx, &a, d).await?;
            let primary = s(&live, "/status/currentPrimary").unwrap_or("?");
            cx.info(
                PHASE,
                &target,
                format!(
                    "PostgreSQL {} of {} instance{} ready, primary {primary}; credentials in Secret {}/{}",
                    live["status"]["readyInstances"],
                    d.instances,
                    if d.instances == 1 { "" } else { "s" },
                    d.namespace,
                    d.app_secret()
                ),
            );
            let host = format!("{}-rw.{}", d.name, d.namespace);
            cx.info(PHASE, &target, format!("in the cluster: {}", uri(&d.owner, &host, 5432, &d.database)));
            if let Some(p) = d.node_port {
                let node = addons::lan_address(&a).await.unwrap_or_else(|| "<node>".into());
                cx.info(PHASE, &target, format!("from the LAN: {}", uri(&d.owner, &node, p, &d.database)));
            }
        }
        leftovers(cx, &a, d).await
    }
}

/// Clusters homelab created (its label) that the file no longer declares: kept and
/// reported, or deleted with `--prune`.
async fn leftovers(cx: &Ctx, a: &Applier, d: &Database) -> Result<()> {
    let sel = crate::render::managed_selector();
    // (A kind not served yet, before the first install, lists as empty.)
    for o in a.list(cnpg::API, "Cluster", None, Some(&sel)).await? {
        let v = serde_json::to_value(&o)?;
        if !crate::render::made_by_homelab(&v) {
            continue;
        }
        let (ns, name) =
            (s(&v, "/metadata/namespace").unwrap_or_default(), s(&v, "/metadata/name").unwrap_or_default());
        if ns == d.namespace && name == d.name {
            continue;
        }
        let instances = v.pointer("/spec/instances").and_then(Value::as_u64).unwrap_or(1);
        let size = s(&v, "/spec/storage/size").unwrap_or("?");
        let bytes = parse_quantity(size).map(|b| format!(", {} in all", human_iec(b * instances))).unwrap_or_default();
        let words = format!(
            "PostgreSQL cluster {ns}/{name}: deleting it deletes its {instances} volume{} of {size}{bytes} and every database in them",
            if instances == 1 { "" } else { "s" }
        );
        let target = format!("{ns}/{name}");
        if cx.opts.prune {
            cx.act(PHASE, &target, format!("delete {words} (--prune)")).await?;
            if !cx.dry_run() {
                a.delete(cnpg::API, "Cluster", Some(ns), name).await?;
            }
        } else {
            cx.drift(
                PHASE,
                &target,
                format!("PostgreSQL cluster {name} is no longer in the file; kept"),
                format!("`homelab up --prune` would delete {words}"),
            );
        }
    }
    Ok(())
}
