//! How each `remove-node` step is carried out and waited for. Every wait goes through
//! `foundation::wait::wait_for` with a deadline; errors name the step, the machine and what
//! to try next. Kubernetes writes use a merge patch or server-side apply (field manager
//! `homelab`); the purge Job is Rook's own `osd-purge.yaml` of the pinned release.

use super::decide::{Observed, Step};
use super::observe::Files;
use crate::catalog::bundle;
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::microk8s as mk;
use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// safe-to-destroy can never come (a dead PC's data is gone for some PGs): purge with force.
    NeverSafe,
}

pub fn phase_of(s: &Step) -> PhaseId {
    match s {
        Step::Release { .. } | Step::EditFile => PhaseId::Machines,
        Step::HostsFiles => PhaseId::Hosts,
        Step::Taint | Step::RemoveNode { .. } | Step::Drain | Step::Leave => PhaseId::Kubernetes,
        Step::WaitKafka => PhaseId::Kafka,
        _ => PhaseId::Storage,
    }
}

fn deadline(cx: &Ctx, s: &Step) -> Duration {
    cx.opts.timings.deadline(Duration::from_secs(s.budget() * 2))
}

async fn ceph(cx: &Ctx, survivor: &str, args: &[&str], read_only: bool) -> Result<crate::ssh::Output> {
    cx.remote(survivor).await?.run(&crate::ceph::cmd(args, read_only)).await
}

async fn scale(cx: &Ctx, name: &str, replicas: i32) -> Result<()> {
    let deps: Api<Deployment> = Api::namespaced(cx.kube().await?, Rook::NAMESPACE);
    deps.patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": replicas}})))
        .await
        .with_context(|| format!("scaling deployment {}/{name} to {replicas}", Rook::NAMESPACE))?;
    Ok(())
}

/// The pinned Rook files the steps render from (the purge Job, the CephCluster template),
/// downloaded once per run through the same verified download as `up`.
async fn rook_files<'a>(cx: &Ctx, job: &'a Job<'_>) -> Result<&'a crate::render::rook::Files> {
    job.rook_files
        .get_or_try_init(|| async {
            let r = cx.cluster.rook.as_ref().ok_or_else(|| anyhow!("the cluster declares no `rook:`"))?;
            let wanted = r
                .release
                .files
                .iter()
                .filter(|f| {
                    f.path.ends_with("osd-purge.yaml")
                        || f.path.ends_with("deploy/examples/cluster.yaml")
                        || f.path.ends_with("storageclass.yaml")
                })
                .cloned()
                .collect();
            let d = crate::engine::phases::manifests::Download::default();
            d.start(cx.world.manifests.clone(), "rook", r.release.version.clone(), wanted);
            d.files().await
        })
        .await
}

/// Rook's purge Job for one OSD, from the pinned `osd-purge.yaml` (its args set as the file's
/// own comment says; one Job per OSD so a rerun re-applies the same object).
fn purge_job(files: &crate::render::rook::Files, id: u32, force: bool) -> Result<Value> {
    let (path, text) = files
        .iter()
        .find(|(p, _)| p.ends_with("osd-purge.yaml"))
        .ok_or_else(|| anyhow!("the pinned Rook release has no osd-purge.yaml in the catalog"))?;
    let docs = bundle::parse_manifest(text, path)?;
    let mut job = docs.into_iter().find(|d| d["kind"] == "Job").ok_or_else(|| anyhow!("{path} has no Job"))?;
    job["metadata"]["name"] = json!(format!("rook-ceph-purge-osd-{id}"));
    job["metadata"]["namespace"] = json!(Rook::NAMESPACE);
    let args = job
        .pointer_mut("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("{path}: the Job has no container args"))?;
    let mut out = Vec::new();
    let mut it = args.iter().cloned().peekable();
    while let Some(a) = it.next() {
        let flag = a.as_str().unwrap_or_default().to_owned();
        out.push(a);
        if flag == "--osd-ids" {
            it.next();
            out.push(json!(id.to_string()));
        } else if flag == "--force-osd-removal" {
            it.next();
            out.push(json!(if force { "true" } else { "false" }));
        }
    }
    *args = out;
    Ok(job)
}

/// What every step needs besides the run context.
pub struct Job<'a> {
    pub files: &'a Files,
    pub host: &'a str,
    pub survivor: &'a str,
    pub observed: &'a Observed,
    pub dead: bool,
    pub replace_with: Option<&'a crate::config::edit::NewMachine>,
    pub rook_files: tokio::sync::OnceCell<crate::render::rook::Files>,
}

pub async fn run_step(cx: &Arc<Ctx>, job: &Job<'_>, s: &Step) -> Result<Outcome> {
    let (files, host, survivor, o, dead, replace_with) =
        (job.files, job.host, job.survivor, job.observed, job.dead, job.replace_with);
    let phase = phase_of(s);
    let t = cx.opts.timings;
    let spec = |what: String, hint: &str| WaitSpec {
        phase,
        target: host.to_owned(),
        what,
        deadline: deadline(cx, s),
        backoff: t.kube_poll,
        hint: hint.to_owned(),
    };
    match s {
        Step::Taint => {
            let nodes: Api<Node> = Api::all(cx.kube().await?);
            let n = nodes.get(host).await?;
            let mut taints: Vec<Value> =
                n.spec.and_then(|s| s.taints).unwrap_or_default().iter().filter_map(|t| serde_json::to_value(t).ok()).collect();
            taints.push(json!({"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}));
            nodes.patch(host, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": taints}}))).await?;
        }
        Step::RemoveNode { survivor, force } => {
            let r = cx.remote(survivor).await?;
            let out = r.run(&mk::remove_node_cmd(host, *force)).await?;
            match mk::classify_remove(&out) {
                mk::RemoveOutcome::Removed => {}
                mk::RemoveOutcome::NotInKubernetes => {
                    // Done when dqlite no longer lists it either (docs/day2.md §1.7).
                    let ds = mk::parse_datastore(&r.run(&mk::datastore_cmd()).await?)?;
                    if o.ip.as_ref().is_some_and(|ip| ds.has(ip)) {
                        bail!("{host} is gone from Kubernetes but still a dqlite member\n  hint: on {survivor}: `sudo microk8s remove-node {host} --force`, only if {host} will never come back");
                    }
                }
                mk::RemoveOutcome::StillInDqlite => bail!(
                    "{host} is still a dqlite member: {}\n  hint: it did not leave; run `homelab remove-node {host}` again (it runs `microk8s leave` first), or pass --dead if it is off for good",
                    out.text()
                ),
                mk::RemoveOutcome::OnWorker => bail!("{survivor} is a worker; homelab picked the wrong machine (a bug): {}", out.text()),
                mk::RemoveOutcome::Failed(t) => bail!("`microk8s remove-node {host}` on {survivor} failed: {t}\n  hint: run it by hand on {survivor} to see why"),
            }
        }
        Step::WaitKafka => {
            let k = cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("no kafka"))?;
            let a = crate::engine::phases::manifests::applier(cx, PhaseId::Kafka).await?;
            crate::kube::wait::wait_object(
                &a,
                &cx.ui,
                phase,
                &crate::kube::wait::ObjectRef::new(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name),
                "Ready with its brokers on the other machines",
                &crate::kube::wait::Expect::condition("Ready", "True"),
                deadline(cx, s),
                t.kube_poll,
                "`kubectl -n kafka get pods -o wide`: a broker stuck ContainerCreating with Multi-Attach waits for its volume to detach from the dead node",
            )
            .await?;
        }
        Step::OsdOut(id) => {
            let out = ceph(cx, survivor, &["osd", "out", &format!("osd.{id}")], false).await?;
            if !crate::ceph::out_done(&out) {
                bail!("`ceph osd out osd.{id}` failed: {}", out.text());
            }
        }
        Step::WaitSafe(id) => {
            let stalled = std::sync::atomic::AtomicU32::new(0);
            let never = wait_for(&cx.ui, &spec(format!("ceph osd safe-to-destroy {id} (its data copied to the other OSDs)"), "`ceph status` in the toolbox shows the recovery; a PG stuck backfill_toofull needs more room"), || async {
                let out = ceph(cx, survivor, &["osd", "safe-to-destroy", &id.to_string()], true).await?;
                if crate::ceph::parse_safe_to_destroy(&out, *id)? {
                    return Ok(Probe::Ready(false));
                }
                let st = crate::ceph::parse_status(&ceph(cx, survivor, &["status"], true).await?)?;
                // A dead PC's only copies cannot come back: once nothing recovers any more,
                // waiting longer cannot make it safe.
                if dead && !st.recovering() {
                    if stalled.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 5 {
                        return Ok(Probe::Ready(true));
                    }
                } else {
                    stalled.store(0, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Probe::Pending(Some(format!("{}; PGs: {}", st.health, st.unclean()))))
            })
            .await?;
            if never {
                cx.warn(phase, host, format!("osd.{id} can never become safe to destroy: nothing recovers any more"), Some("its purge uses --force-osd-removal; data whose only copy was on this PC is lost".into()));
                return Ok(Outcome::NeverSafe);
            }
        }
        Step::StopOperator | Step::StartOperator => {
            let want = if matches!(s, Step::StopOperator) { 0 } else { 1 };
            scale(cx, "rook-ceph-operator", want).await?;
            let deps: Api<Deployment> = Api::namespaced(cx.kube().await?, Rook::NAMESPACE);
            wait_for(&cx.ui, &spec(format!("rook-ceph-operator at {want} ready replica{}", if want == 1 { "" } else { "s" }), "`kubectl -n rook-ceph describe deployment rook-ceph-operator`"), || async {
                let d = deps.get("rook-ceph-operator").await?;
                let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                Ok(if ready == want { Probe::Ready(()) } else { Probe::Pending(Some(format!("{ready} ready"))) })
            })
            .await?;
        }
        Step::StopOsd(id) => {
            // Marked down while its daemon still runs, an OSD boots again within seconds
            // (`wrongly marked me down`), and a purge that looks then skips it. So: the pod
            // gone first (its daemon with it), then down in the map.
            scale(cx, &format!("rook-ceph-osd-{id}"), 0).await?;
            let pods: Api<Pod> = Api::namespaced(cx.kube().await?, Rook::NAMESPACE);
            let selector = format!("app=rook-ceph-osd,ceph-osd-id={id}");
            wait_for(&cx.ui, &spec(format!("no pod of osd.{id} left (rook-ceph-osd-{id} at 0 replicas)"), &format!("`kubectl -n rook-ceph get pods -l {selector}`: a pod stuck Terminating on a node that does not answer goes with `kubectl delete pod --force` once the PC is off")), || async {
                let left: Vec<String> = pods
                    .list(&ListParams::default().labels(&selector))
                    .await?
                    .items
                    .into_iter()
                    .map(|p| p.metadata.name.unwrap_or_default())
                    .collect();
                Ok(if left.is_empty() { Probe::Ready(()) } else { Probe::Pending(Some(format!("{} terminating", left.join(", ")))) })
            })
            .await?;
            let _ = ceph(cx, survivor, &["osd", "down", &format!("osd.{id}")], false).await?;
            wait_for(&cx.ui, &spec(format!("osd.{id} down"), "`kubectl -n rook-ceph get pods -l app=rook-ceph-osd`"), || async {
                let tree = ceph(cx, survivor, &["osd", "tree"], true).await?;
                let osds = crate::ceph::parse_osds(&tree, None)?;
                Ok(match osds.iter().find(|x| x.id == *id) {
                    Some(x) if x.up => Probe::Pending(Some("still up".into())),
                    _ => Probe::Ready(()),
                })
            })
            .await?;
        }
        Step::Purge { id, force } => {
            let rf = rook_files(cx, job).await?;
            let job = purge_job(rf, *id, *force)?;
            let a = crate::engine::phases::manifests::applier(cx, PhaseId::Storage).await?;
            let name = format!("rook-ceph-purge-osd-{id}");
            let logs = format!("`kubectl -n rook-ceph logs job/{name}`");
            // A Job that finished runs no more: an earlier run's is deleted so this one purges.
            let finished = |j: &Value| {
                ["/status/succeeded", "/status/failed"]
                    .iter()
                    .any(|p| j.pointer(p).and_then(Value::as_i64).unwrap_or(0) >= 1)
            };
            let get = || async {
                Ok::<_, anyhow::Error>(
                    a.get("batch/v1", "Job", Some(Rook::NAMESPACE), &name).await?.and_then(|j| serde_json::to_value(j).ok()),
                )
            };
            if get().await?.is_some_and(|j| finished(&j)) {
                a.delete("batch/v1", "Job", Some(Rook::NAMESPACE), &name).await?;
                wait_for(&cx.ui, &spec(format!("the earlier Job {name} deleted"), "`kubectl -n rook-ceph get jobs`"), || async {
                    Ok(if get().await?.is_none() { Probe::Ready(()) } else { Probe::Pending(Some("deleting".into())) })
                })
                .await?;
            }
            a.apply(std::slice::from_ref(&job)).await?;
            wait_for(&cx.ui, &spec(format!("Job {name} complete (osd.{id} purged)"), &logs), || async {
                Ok(match get().await? {
                    Some(j) if j.pointer("/status/succeeded").and_then(Value::as_i64).unwrap_or(0) >= 1 => Probe::Ready(()),
                    Some(j) if j.pointer("/status/failed").and_then(Value::as_i64).unwrap_or(0) >= 1 => Probe::Failed(anyhow!(
                        "Rook's purge Job {name} failed\n  hint: {logs} says why; run `homelab remove-node {host}` again once that is fixed"
                    )),
                    _ => Probe::Pending(Some("purging".into())),
                })
            })
            .await?;
            // The Job exits 0 also when it skipped the OSD: Ceph itself must say it is gone.
            let tree = ceph(cx, survivor, &["osd", "tree"], true).await?;
            if let Some(x) = crate::ceph::parse_osds(&tree, None)?.into_iter().find(|x| x.id == *id) {
                bail!(
                    "Rook's purge Job {name} completed, but Ceph still has osd.{id} ({}, {}) on {}\n  hint: {logs} says why (`osd.{id} is healthy. It cannot be removed unless it is 'down'` means its daemon ran again); {host} stays in the cluster file: run `homelab remove-node {host}` again, it stops osd.{id} and purges it once more",
                    if x.up { "up" } else { "down" },
                    if x.inn { "in" } else { "out" },
                    x.host
                );
            }
        }
        Step::RemoveBucket => {
            let tree = ceph(cx, survivor, &["osd", "tree"], true).await?;
            if crate::ceph::parse_buckets(&tree)?.iter().any(|b| b == host) {
                if let Some(x) = crate::ceph::parse_osds(&tree, None)?.into_iter().find(|x| x.host == host) {
                    bail!(
                        "Ceph still has osd.{} under host {host}, so its bucket cannot go\n  hint: run `homelab remove-node {host}` again: it purges osd.{} first",
                        x.id,
                        x.id
                    );
                }
                let out = ceph(cx, survivor, &["osd", "crush", "rm", host], false).await?;
                let tree = ceph(cx, survivor, &["osd", "tree"], true).await?;
                if crate::ceph::parse_buckets(&tree)?.iter().any(|b| b == host) {
                    bail!(
                        "`ceph osd crush rm {host}` left the host bucket in the CRUSH map: {}\n  hint: `ceph osd tree` in the toolbox shows it; run `homelab remove-node {host}` again",
                        out.text()
                    );
                }
            }
        }
        Step::CephSpec => {
            let r = files.after.rook.as_ref().ok_or_else(|| anyhow!("no rook"))?;
            let rf = rook_files(cx, job).await?;
            let objs = vec![
                crate::render::rook::render_cluster(&r.release, rf, &files.after)?,
                crate::render::rook::render_mgr_pool(crate::render::rook::mgr_size(&files.after)),
            ];
            let a = crate::engine::phases::manifests::applier(cx, PhaseId::Storage).await?;
            crate::engine::phases::manifests::apply(cx, PhaseId::Storage, &a, "rook-ceph", "the CephCluster without this host and the .mgr pool", &objs).await?;
        }
        Step::Drain => drain(cx, host, &spec(format!("every pod evicted from {host}"), "a PodDisruptionBudget blocks it: `kubectl get pdb -A`; the budget frees once the other replicas are Ready")).await?,
        Step::Leave => {
            let r = cx.remote(host).await?;
            let out = r.run(&mk::leave_cmd(cx.opts.timings.deadline(Duration::from_secs(300)))).await?;
            if mk::leave_refused_only_copy(&out) {
                bail!("{}\n  hint: the datastore has no other voter; add control planes first", out.text());
            }
            if !out.ok() {
                bail!("`microk8s leave` on {host} failed: {}", out.text());
            }
        }
        Step::Release { erase } => {
            let maas = cx.maas()?;
            let id = cx.facts(host).system_id.ok_or_else(|| {
                anyhow!("MAAS does not know {host} by its MAC any more, so homelab cannot release it\n  hint: it is out of the cluster; release or delete it in the MAAS UI if it is still listed there")
            })?;
            maas.release_erasing(&id, "homelab remove-node", erase.as_deref()).await.context("releasing the machine in MAAS")?;
        }
        Step::HostsFiles => crate::engine::phases::hosts::sync_blocks(cx, &files.after).await?,
        Step::EditFile => {
            let file = files.path.display().to_string();
            let now = crate::foundation::limits::read_text(&files.path, crate::config::MAX_FILE_BYTES as u64, &file)?;
            let has = crate::config::tree::parse(&now).is_ok_and(|t| {
                t.value.get("machines").and_then(|v| v.as_array()).is_some_and(|ms| ms.iter().any(|m| m.get("hostname").and_then(|h| h.as_str()) == Some(host)))
            });
            if has {
                let edited = match replace_with {
                    Some(n) => crate::config::edit::replace_machine(&now, host, n),
                    None => crate::config::edit::remove_machine(&now, host),
                };
                let out = edited
                    .with_context(|| format!("{host} is out of the cluster, but {file} could not be updated; delete its entry by hand"))?;
                crate::foundation::files::write_atomic(&files.path, out.as_bytes(), crate::foundation::files::Mode::Keep)?;
            }
            match replace_with {
                Some(n) => cx.ui.err(&format!("replaced {host} by {} in {file} (one entry rewritten; nothing else in the file changed)", n.hostname)),
                None => cx.ui.err(&format!("removed {host} from {file} (one entry deleted; nothing else in the file changed)")),
            }
        }
    }
    Ok(Outcome::Done)
}

/// Cordon, then evict every pod on the node except DaemonSet and mirror pods; a 429 (a
/// PodDisruptionBudget) is retried until the deadline, which names the pod.
pub(crate) async fn drain(cx: &Ctx, host: &str, spec: &WaitSpec) -> Result<()> {
    let client = cx.kube().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.patch(host, &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": true}}))).await?;
    let all: Api<Pod> = Api::all(client.clone());
    wait_for(&cx.ui, spec, || async {
        let pods = all.list(&ListParams::default().fields(&format!("spec.nodeName={host}"))).await?;
        let mine: Vec<&Pod> = pods
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(host))
            .filter(|p| {
                !p.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet"))
                    && !p.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
            })
            .collect();
        if mine.is_empty() {
            return Ok(Probe::Ready(()));
        }
        let mut blocked = Vec::new();
        for p in mine {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            match api.evict(&name, &EvictParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 429 => blocked.push(format!("{ns}/{name} (disruption budget)")),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(anyhow!(e).context(format!("evicting {ns}/{name}"))),
            }
        }
        Ok(Probe::Pending(Some(if blocked.is_empty() {
            "waiting for evicted pods to go".into()
        } else {
            format!("blocked: {}", blocked.join(", "))
        })))
    })
    .await
}
