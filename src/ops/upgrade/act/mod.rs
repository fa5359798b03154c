//! How each hop is carried out and waited for. Every step observes first and acts only when
//! the cluster is not already there, so a run stopped anywhere is finished by the next one
//! and nothing is done twice. Kubernetes writes are server-side apply (field manager
//! `homelab`) or a merge patch of the named fields (the operator image, a node's cordon).
//! Facts: docs/day2.md §2.2 (MicroK8s), §2.3 (Rook, Ceph), §3 (readiness).

pub mod strimzi;

use super::gate;
use super::ladder::{Hop, Versions};
use super::observe;
use super::observed::Observed;
use crate::catalog::{Catalog, FileRole, RookRelease};
use crate::config::{Cluster, Rook};
use crate::engine::context::Ctx;
use crate::engine::phases::manifests::{self as addons, Download};
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::kube::apply::Applier;
use crate::microk8s as mk;
use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub fn phase_of(h: &Hop) -> PhaseId {
    match h {
        Hop::MicroK8s { .. } => PhaseId::Kubernetes,
        Hop::Rook { .. } | Hop::Ceph { .. } => PhaseId::Storage,
        Hop::CloudNativePg { .. } => PhaseId::Database,
        _ => PhaseId::Kafka,
    }
}

fn spec(cx: &Ctx, phase: PhaseId, target: &str, what: String, deadline: Duration, hint: &str) -> WaitSpec {
    WaitSpec {
        phase,
        target: target.to_owned(),
        what,
        deadline: cx.opts.timings.deadline(deadline),
        backoff: cx.opts.timings.kube_poll,
        hint: hint.to_owned(),
    }
}

/// Waits until nothing of an earlier hop is still rolling (the operator, the daemons, a
/// node just refreshed): `upgrade` picks up where a stopped run left the cluster.
pub async fn wait_settled(cx: &Arc<Ctx>, cat: &Catalog, v: &Versions) -> Result<Observed> {
    let s = spec(
        cx,
        PhaseId::Storage,
        "cluster",
        format!("the cluster settled at {}", v.describe()),
        cx.cluster.timeouts.ceph,
        "`kubectl -n rook-ceph get deploy -L rook-version,ceph-version` shows which daemon lags; `homelab status` shows the nodes",
    );
    wait_for(&cx.ui, &s, || async {
        let o = observe::observe(cx, cat).await?;
        Ok(match o.rolling(cat, v) {
            None => Probe::Ready(o),
            Some(m) => Probe::Pending(Some(m)),
        })
    })
    .await
}

/// A gate refusal: nothing of the hop was changed.
#[derive(Debug, thiserror::Error)]
#[error("refusing hop {hop}: {}\n  hint: {hint}\n  (nothing of this hop was changed; hops done so far stay done)", blockers.join("; "))]
pub struct GateRefused {
    pub hop: String,
    pub blockers: Vec<String>,
    pub hint: String,
}

/// Checks the hop's gates. Blockers that pass on their own after a hop (recovery after a
/// node's restart, Kafka rolling back to Ready) are waited for, up to the settle deadline;
/// the others ([`gate::hard`]) refuse at once. Either refusal changes nothing.
pub async fn check_gates(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, hop: &Hop, first: Observed) -> Result<Observed> {
    let refused = |blockers: Vec<String>| {
        GateRefused {
        hop: hop.name(),
        hint: "fix what blocks it (`homelab status`; `ceph health detail` in the Rook toolbox), then run `homelab upgrade` again: it starts from what runs".into(),
        blockers,
    }
    };
    let s = spec(
        cx,
        phase_of(hop),
        &hop.name(),
        format!("the gates of hop {}", hop.name()),
        Duration::from_secs(600),
        "the hop did not start",
    );
    let first = std::sync::Mutex::new(Some(first));
    let last = std::sync::Mutex::new(Vec::new());
    let r = wait_for(&cx.ui, &s, || async {
        let o = match first.lock().ok().and_then(|mut f| f.take()) {
            Some(o) => o,
            None => observe::observe(cx, cat).await?,
        };
        let hard = gate::hard(cat, &o, now, hop);
        if !hard.is_empty() {
            return Ok(Probe::Failed(anyhow::Error::new(refused(hard))));
        }
        let blockers = gate::gates(cat, &o, now, hop);
        if blockers.is_empty() {
            return Ok(Probe::Ready(o));
        }
        let msg = blockers.join("; ");
        if let Ok(mut l) = last.lock() {
            *l = blockers;
        }
        Ok(Probe::Pending(Some(msg)))
    })
    .await;
    match r {
        Err(e) if e.downcast_ref::<crate::foundation::wait::WaitTimeout>().is_some() => {
            Err(anyhow::Error::new(refused(last.lock().map(|l| l.clone()).unwrap_or_default())))
        }
        r => r,
    }
}

/// The cluster as it is declared for one point of the ladder: the file's, with the Rook
/// release and Ceph image of that point (what a hop renders its objects from).
pub fn cluster_at(cat: &Catalog, target: &Cluster, v: &Versions) -> Result<Cluster> {
    let mut c = target.clone();
    let r = c.rook.as_mut().ok_or_else(|| anyhow!("the file declares no `rook:`"))?;
    r.release = cat.rook(&v.rook).cloned().ok_or_else(|| anyhow!("Rook {} is not in the catalog", v.rook))?;
    r.ceph_image = v.ceph.clone();
    Ok(c)
}

async fn rook_files(cx: &Ctx, rel: &RookRelease) -> Result<crate::render::rook::Files> {
    let d = Download::default();
    d.start(cx.world.manifests.clone(), "rook", rel.version.clone(), addons::wanted_files(&rel.files));
    d.files().await
}

/// Brings the objects of the point the cluster is at (its Rook release's CephCluster, pools,
/// StorageClass and toolbox with the running Ceph image) to what that release renders: a run
/// stopped right after a hop's image set resumes here, since the ladder no longer lists the
/// hop. When nothing is left over this is a handful of unchanged applies.
pub async fn finish_point(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions) -> Result<()> {
    let c = cluster_at(cat, &cx.cluster, now)?;
    let rel = c.rook.as_ref().map(|r| r.release.clone()).ok_or_else(|| anyhow!("the file declares no `rook:`"))?;
    let files = rook_files(cx, &rel).await?;
    let a = addons::applier(cx, PhaseId::Storage).await?;
    Box::pin(crate::engine::phases::storage::converge_cluster(cx, &a, &c, &files, true)).await?;
    Box::pin(strimzi::finish_point(cx, cat, now)).await
}

/// Runs one hop. `now` are the versions before it.
/// Finishes a MicroK8s round a stopped run left with a node still drained (its refreshes
/// may all be done, so the ladder no longer lists it): waits for each node and uncordons.
pub async fn finish_round(cx: &Arc<Ctx>, cat: &Catalog, to: (u32, u32)) -> Result<()> {
    microk8s_round(cx, cat, (to.0, to.1.saturating_sub(1)), to).await
}

pub async fn run_hop(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, hop: &Hop, o: strimzi::HopOptions) -> Result<()> {
    match hop {
        Hop::MicroK8s { from, to } => Box::pin(microk8s_round(cx, cat, *from, *to)).await,
        Hop::Rook { to, .. } => Box::pin(rook_hop(cx, cat, now, to)).await,
        Hop::Ceph { to, .. } => Box::pin(ceph_hop(cx, cat, now, to)).await,
        Hop::CloudNativePg { to, .. } => Box::pin(cnpg_hop(cx, cat, to)).await,
        _ => Box::pin(strimzi::run_hop(cx, cat, now, hop, o)).await,
    }
}

// ---- CloudNativePG --------------------------------------------------------------------

/// The CloudNativePG release `to`: its manifest by server-side apply, the operator and its
/// webhooks ready, then the PostgreSQL cluster healthy again under it.
async fn cnpg_hop(cx: &Arc<Ctx>, cat: &Catalog, to: &str) -> Result<()> {
    use crate::engine::phases::{database, manifests};
    let rel = cat.cnpg(to).ok_or_else(|| anyhow!("CloudNativePG {to} is not in the release catalog"))?;
    let dl = manifests::Download::default();
    dl.start(cx.world.manifests.clone(), "cloudnative-pg", rel.version.clone(), manifests::wanted_files(&rel.files));
    let files = dl.files().await?;
    let a = manifests::applier(cx, PhaseId::Database).await?;
    database::install_operator(cx, &a, rel, &files).await?;
    if let Some(d) = &cx.cluster.database {
        database::wait_healthy(cx, &a, d).await?;
        // homelab's NodePort selects the primary by the label this release's own Services use.
        let target = format!("{}/{}", d.namespace, d.name);
        let what = format!("PostgreSQL cluster {} under CloudNativePG {to}", d.name);
        manifests::apply(cx, PhaseId::Database, &a, &target, &what, &crate::render::cnpg::render(d)).await?;
    }
    Ok(())
}

// ---- MicroK8s -------------------------------------------------------------------------

async fn run_ok(cx: &Ctx, host: &str, cmd: &crate::ssh::Cmd, hint: &str) -> Result<crate::ssh::Output> {
    let out = cx.remote(host).await?.run(cmd).await?;
    if !out.ok() {
        bail!("`{}` on {host} failed: {}\n  hint: {hint}", cmd.display(), out.text().trim());
    }
    Ok(out)
}

async fn microk8s_round(cx: &Arc<Ctx>, cat: &Catalog, from: (u32, u32), to: (u32, u32)) -> Result<()> {
    let phase = PhaseId::Kubernetes;
    let track = cat.track_of(to).ok_or_else(|| anyhow!("the catalog knows no MicroK8s track {}.{}", to.0, to.1))?;
    let channel = format!("{track}/stable");
    let order = observe::round_order(cx);
    // Hold the snap everywhere first: an auto-refresh in the middle of a round is how HA
    // clusters lose their datastore (canonical/microk8s#4775).
    // One read of every machine's snap serves the holds and the round (only this run refreshes).
    let mut tracks = std::collections::HashMap::new();
    for m in &order {
        let (tracking, held) = observe::snap_of(cx, &m.hostname).await?;
        tracks.insert(m.hostname.clone(), tracking);
        if !held {
            cx.act(phase, &m.hostname, "hold the MicroK8s snap (snap refresh --hold=forever microk8s)").await?;
            run_ok(cx, &m.hostname, &mk::hold_cmd(), "snapd ≥ 2.58 holds snaps; `snap version` on the machine").await?;
        }
    }
    // Back the datastore up before the round, once.
    let (ds_host, _) = observe::datastore(cx).await?;
    let path = mk::backup_path(from);
    let exists = cx.remote(&ds_host).await?.run(&mk::backup_exists_cmd(&path)).await?.ok();
    if !exists {
        cx.act(phase, &ds_host, format!("back up the datastore to {path} (microk8s dbctl backup)")).await?;
        run_ok(
            cx,
            &ds_host,
            &mk::backup_cmd(&path, cx.opts.timings.deadline(Duration::from_secs(600))),
            "the backup needs free space in /var/snap/microk8s/common",
        )
        .await?;
    }
    let rows = observe::nodes(cx).await?;
    for m in &order {
        let host = m.hostname.as_str();
        let tracking = tracks.get(host).cloned().unwrap_or_default();
        let drained_here = rows.iter().any(|n| n.name == host.to_lowercase() && n.round == Some(to));
        // Refreshed and given back by an earlier run of this round: done.
        if tracking == channel && !drained_here {
            continue;
        }
        if tracking != channel {
            let cur = crate::catalog::parse_minor(&tracking);
            if cur != Some(from) {
                bail!(
                    "{host} tracks MicroK8s {tracking}, neither {}.{} nor {channel}; homelab refreshes one minor at a time and will not skip\n  hint: bring {host} to {}.{}/stable by hand (`sudo snap refresh microk8s --channel={}.{}/stable`), then run `homelab upgrade` again",
                    from.0,
                    from.1,
                    from.0,
                    from.1,
                    from.0,
                    from.1
                );
            }
            // The previous node must be whole again before this one goes down (a second OSD
            // down with size-2 pools stops I/O; a second voter down loses the datastore).
            wait_clean(cx, cat, host).await?;
            let drain_hint =
                "a PodDisruptionBudget blocks it: `kubectl get pdb -A`; it frees once the other replicas are Ready";
            cx.act(phase, host, format!("drain {host} (cordon, evict its pods; PodDisruptionBudgets respected)"))
                .await?;
            let nodes: Api<Node> = Api::all(cx.kube().await?);
            let mark = json!({"metadata": {"annotations": {observe::DRAINED_FOR: format!("{}.{}", to.0, to.1)}}});
            nodes
                .patch(&host.to_lowercase(), &PatchParams::default(), &Patch::Merge(mark))
                .await
                .with_context(|| format!("marking {host} as drained by this round"))?;
            crate::ops::remove_node::act::drain(
                cx,
                &host.to_lowercase(),
                &spec(cx, phase, host, format!("every pod evicted from {host}"), Duration::from_secs(900), drain_hint),
            )
            .await?;
            cx.act(
                phase,
                host,
                format!(
                    "refresh MicroK8s {}.{} → {channel} (snap refresh microk8s --channel={channel})",
                    from.0, from.1
                ),
            )
            .await?;
            run_ok(
                cx,
                host,
                &mk::refresh_cmd(&channel, cx.opts.timings.deadline(cx.cluster.timeouts.microk8s)),
                "`snap changes` on the machine shows what failed; the datastore backup of this round is in /var/snap/microk8s/common",
            )
            .await?;
        }
        wait_node(cx, host, m.is_control_plane(), to).await?;
        // Uncordon what this round drained (a node someone else cordoned stays so).
        cx.act(phase, host, format!("uncordon {host}")).await?;
        let nodes: Api<Node> = Api::all(cx.kube().await?);
        let patch = json!({"metadata": {"annotations": {observe::DRAINED_FOR: null}}, "spec": {"unschedulable": null}});
        nodes
            .patch(&host.to_lowercase(), &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("uncordoning {host}"))?;
    }
    // The round ends with every node back and the cluster whole.
    let last = order.last().map(|m| m.hostname.clone()).unwrap_or_default();
    wait_clean(cx, cat, &last).await
}

/// MicroK8s ready on the machine, then its Node Ready at the new minor.
async fn wait_node(cx: &Arc<Ctx>, host: &str, control_plane: bool, to: (u32, u32)) -> Result<()> {
    let t = cx.opts.timings.deadline(cx.cluster.timeouts.microk8s);
    if control_plane {
        run_ok(cx, host, &mk::status_wait_cmd(t), "`sudo microk8s inspect` on the machine collects what went wrong")
            .await?;
    }
    let name = host.to_lowercase();
    let s = spec(
        cx,
        PhaseId::Kubernetes,
        host,
        format!("node {name} Ready at v{}.{}", to.0, to.1),
        cx.cluster.timeouts.microk8s,
        "`sudo microk8s inspect` on the machine; a node that skipped a minor does not come back (refresh it to the minor after the one it had)",
    );
    wait_for(&cx.ui, &s, || async {
        let nodes = observe::nodes(cx).await?;
        Ok(match nodes.iter().find(|n| n.name == name) {
            Some(n) if n.ready && n.kubelet == Some(to) => Probe::Ready(()),
            Some(n) => Probe::Pending(Some(format!(
                "{}, kubelet {}",
                if n.ready { "Ready" } else { "NotReady" },
                n.kubelet.map(|k| format!("v{}.{}", k.0, k.1)).unwrap_or_else(|| "unknown".into())
            ))),
            None => Probe::Pending(Some("no Node object".into())),
        })
    })
    .await
}

/// After a node came back: Ceph clean, Kafka Ready and the datastore's voters, before the
/// next node goes down (a second OSD down with size-2 pools stops I/O).
async fn wait_clean(cx: &Arc<Ctx>, cat: &Catalog, host: &str) -> Result<()> {
    let s = spec(
        cx,
        PhaseId::Kubernetes,
        host,
        "Ceph clean, Kafka Ready and the datastore's voters back".into(),
        cx.cluster.timeouts.ceph,
        "`ceph status` in the Rook toolbox shows the recovery; `microk8s status` the voters",
    );
    wait_for(&cx.ui, &s, || async {
        let o = observe::observe_health(cx, cat).await?;
        let b = gate::common(&o);
        Ok(if b.is_empty() { Probe::Ready(()) } else { Probe::Pending(Some(b.join("; "))) })
    })
    .await
}

// ---- Rook -----------------------------------------------------------------------------

async fn rook_hop(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, to: &str) -> Result<()> {
    let phase = PhaseId::Storage;
    let rel = cat.rook(to).cloned().ok_or_else(|| anyhow!("Rook {to} is not in the catalog"))?;
    let files = rook_files(cx, &rel).await?;
    crate::render::rook::check_bundle(&rel, &files)?;
    let a = addons::applier(cx, phase).await?;
    let microk8s = cx.cluster.kubernetes.is_microk8s();
    let (bundle, install_only) = crate::render::rook::bundle_objects(&rel, &files, microk8s)?;
    let names: Vec<&str> = rel.files.iter().filter(|f| f.role == FileRole::Apply).map(|f| f.file_name()).collect();
    addons::apply(cx, phase, &a, "rook-ceph", &format!("Rook {to}'s {}", names.join(", ")), &bundle).await?;
    // v1.20 reads the kubelet path only from the CSI operator's OperatorConfig: it must be
    // there before the v1.20 operator starts (docs/day2.md §2.3).
    if microk8s
        && rel.uses_csi_operator()
        && let Some(obj) = crate::render::rook::kubelet_carrier(&rel, &install_only)
        && !crate::engine::phases::storage::kubelet_path_set(&a, &rel, obj).await?
    {
        addons::apply(
            cx,
            phase,
            &a,
            "rook-ceph",
            &format!(
                "the MicroK8s kubelet path into {} {} (Rook {to} no longer reads the ConfigMap)",
                rel.kubelet_dir_path.kind, rel.kubelet_dir_path.name
            ),
            std::slice::from_ref(obj),
        )
        .await?;
    }
    let image = rel.operator_image();
    let live = crate::engine::phases::storage::live_versions(&a).await?;
    if live.operator_image.as_deref() != Some(image.as_str()) {
        cx.act(
            phase,
            "rook-ceph",
            format!("set the Rook operator image to {image} (kubectl set image deploy/rook-ceph-operator)"),
        )
        .await?;
        set_container_image(&a, "rook-ceph-operator", "rook-ceph-operator", &image).await?;
    }
    wait_rollout(cx, "rook-ceph-operator", &image).await?;
    if rel.uses_csi_operator() || rel.files.iter().any(|f| f.path.ends_with("csi-operator.yaml")) {
        addons::wait_operator(
            cx,
            phase,
            &a,
            Rook::NAMESPACE,
            "ceph-csi-controller-manager",
            "`kubectl -n rook-ceph describe deploy ceph-csi-controller-manager`",
        )
        .await?;
    }
    let after = Versions { rook: to.to_owned(), ..now.clone() };
    wait_daemons(cx, cat, &after).await?;
    // The objects `up` renders, from this release's own examples, so that the cluster ends
    // each hop as a fresh install of that release would have it.
    let c = cluster_at(cat, &cx.cluster, &after)?;
    Box::pin(crate::engine::phases::storage::converge_cluster(cx, &a, &c, &files, true)).await?;
    Ok(())
}

/// `kubectl set image`: the container's image, every other field of the Deployment as it is.
async fn set_container_image(a: &Applier, deploy: &str, container: &str, image: &str) -> Result<()> {
    let d = a
        .get("apps/v1", "Deployment", Some(Rook::NAMESPACE), deploy)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "deployment {}/{deploy} is missing\n  hint: `homelab up` with the file the cluster was built from puts the Rook operator back; then run `homelab upgrade` again",
                Rook::NAMESPACE
            )
        })?;
    let mut d = serde_json::to_value(d)?;
    let cs = d
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("deployment {deploy} has no containers"))?;
    let c = cs
        .iter_mut()
        .find(|c| c["name"] == container)
        .ok_or_else(|| anyhow!("deployment {deploy} has no container {container}"))?;
    c["image"] = json!(image);
    let patch = json!({"spec": {"template": {"spec": {"containers": cs.clone()}}}});
    a.merge_patch("apps/v1", "Deployment", Some(Rook::NAMESPACE), deploy, &patch).await
}

async fn wait_rollout(cx: &Arc<Ctx>, deploy: &str, image: &str) -> Result<()> {
    let s = spec(
        cx,
        PhaseId::Storage,
        "rook-ceph",
        format!("deployment {deploy} rolled out with {image}"),
        cx.cluster.timeouts.operator,
        "`kubectl -n rook-ceph describe deploy rook-ceph-operator` and its pod's events (an image pull on a slow uplink takes long)",
    );
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(cx.kube().await?, Rook::NAMESPACE);
    wait_for(&cx.ui, &s, || async {
        let Some(d) = deps.get_opt(deploy).await? else { return Ok(Probe::Pending(Some("no deployment".into()))) };
        let img = serde_json::to_value(&d).ok().as_ref().and_then(crate::render::rook::operator_image_of);
        Ok(if img.as_deref() == Some(image) && super::observed::rolled(&d) {
            Probe::Ready(())
        } else {
            let st = d.status.clone().unwrap_or_default();
            Probe::Pending(Some(format!(
                "{} of {} updated and ready",
                st.ready_replicas.unwrap_or(0).min(st.updated_replicas.unwrap_or(0)),
                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            )))
        })
    })
    .await
}

/// Every Ceph daemon at the versions of `v` (labels `rook-version`, `ceph-version`).
async fn wait_daemons(cx: &Arc<Ctx>, cat: &Catalog, v: &Versions) -> Result<()> {
    let s = spec(
        cx,
        PhaseId::Storage,
        "rook-ceph",
        format!(
            "every Ceph daemon at Rook {} and Ceph {}",
            v.rook,
            crate::catalog::fmt_version(crate::catalog::parse_version(&v.ceph).unwrap_or((0, 0, 0)))
        ),
        cx.cluster.timeouts.ceph,
        "`kubectl -n rook-ceph get deploy -L rook-version,ceph-version`; the operator log says why one waits (`kubectl -n rook-ceph logs deploy/rook-ceph-operator`)",
    );
    wait_for(&cx.ui, &s, || async {
        let o = observe::observe_health(cx, cat).await?;
        if o.health.as_deref() == Some("HEALTH_ERR") {
            return Ok(Probe::Failed(anyhow!(
                "Ceph went HEALTH_ERR during the hop ({}); Rook stops upgrading in that state\n  hint: `ceph health detail` in the Rook toolbox; fix it, then run `homelab upgrade` again",
                o.checks.join(", ")
            )));
        }
        if o.ceph_failed {
            return Ok(Probe::Failed(anyhow!(
                "the Rook operator refuses: {}\n  hint: the release runs only the Ceph the catalog lists for it (docs/day2.md); declare a build it runs in rook.cephImage, then run `homelab upgrade` again",
                o.ceph_message
            )));
        }
        Ok(match o.rolling(cat, v) {
            None => Probe::Ready(()),
            Some(m) => Probe::Pending(Some(m)),
        })
    })
    .await
}

// ---- Ceph -----------------------------------------------------------------------------

async fn ceph_hop(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, to: &str) -> Result<()> {
    let phase = PhaseId::Storage;
    let after = Versions { ceph: to.to_owned(), ..now.clone() };
    let c = cluster_at(cat, &cx.cluster, &after)?;
    let rel = c.rook.as_ref().map(|r| r.release.clone()).ok_or_else(|| anyhow!("no rook"))?;
    let files = rook_files(cx, &rel).await?;
    let a = addons::applier(cx, phase).await?;
    // The CephCluster with the new image (as `up` renders it); Rook restarts mons, mgrs and
    // OSDs one at a time and refuses while Ceph is HEALTH_ERR.
    Box::pin(crate::engine::phases::storage::converge_cluster(cx, &a, &c, &files, true)).await?;
    wait_daemons(cx, cat, &after).await
}
