//! Phase `storage` (Rook/Ceph): the pinned operator bundle (MicroK8s kubelet path set where
//! the release reads it), the CephCluster with each machine's Ceph volume listed explicitly,
//! a wait until the cluster is Ready for the current generation, healthy, with one running
//! OSD on every machine that has a Ceph volume (phase Ready alone can mean zero OSDs), then
//! the `.mgr` pool, each declared pool and its StorageClass. A StorageClass whose immutable
//! fields differ is reported, never forced.

use super::manifests::{self as addons, Download};
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::kube::apply::Applier;
use crate::kube::wait::{Check, Expect, ObjectRef, wait_object};
use crate::render::rook;
use anyhow::{Result, anyhow};
use async_trait::async_trait;
use serde_json::{Value, json};

const PHASE: PhaseId = PhaseId::Storage;

#[derive(Default)]
pub struct StoragePhase {
    download: Download,
}

fn rook(cx: &Ctx) -> Result<&Rook> {
    cx.cluster.rook.as_ref().ok_or_else(|| anyhow!("the cluster declares no `rook:`"))
}

/// Waits until the CephCluster is Ready for its current generation, not HEALTH_ERR, and
/// every machine with a Ceph volume runs an OSD. Returns the raw capacity Rook reports
/// (`status.ceph.capacity.bytesTotal`, 0 when not reported yet).
async fn wait_ceph(cx: &Ctx, a: &Applier) -> Result<u64> {
    if cx.dry_run() {
        return Ok(0);
    }
    let expect = Expect::condition("Ready", "True")
        .with_generation()
        .field("/status/ceph/health", Check::OneOf(vec![json!("HEALTH_OK"), json!("HEALTH_WARN")]));
    let hosts: Vec<String> = cx.cluster.ceph_machines().map(|m| m.hostname.clone()).collect();
    let spec = WaitSpec {
        phase: PHASE,
        target: format!("CephCluster {}/{}", Rook::NAMESPACE, Rook::CLUSTER_NAME),
        what: format!("Ceph Ready with one OSD on each of {} machine{}", hosts.len(), if hosts.len() == 1 { "" } else { "s" }),
        deadline: cx.opts.timings.deadline(cx.cluster.timeouts.ceph),
        backoff: cx.opts.timings.kube_poll,
        hint: "`kubectl -n rook-ceph get pods` shows the mons, mgrs and OSDs; a missing OSD: `kubectl -n rook-ceph logs -l app=rook-ceph-osd-prepare` on that node (is its Ceph volume blank?); first image pulls on old PCs can take many minutes — raise `timeouts.ceph`".into(),
    };
    wait_for(&cx.ui, &spec, || async {
        let c = a.get("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME).await?;
        let Some(c) = c else { return Ok(Probe::Pending(Some("CephCluster not created yet".into()))) };
        let c = serde_json::to_value(&c)?;
        if c.pointer("/status/ceph/health").and_then(Value::as_str) == Some("HEALTH_ERR") {
            let details = c.pointer("/status/ceph/details").map(|d| d.to_string()).unwrap_or_default();
            return Ok(Probe::Failed(anyhow!(
                "Ceph reports HEALTH_ERR: {details}\n  hint: run the Rook toolbox and `ceph health detail`"
            )));
        }
        let phase = c
            .pointer("/status/message")
            .or(c.pointer("/status/phase"))
            .and_then(Value::as_str)
            .unwrap_or("no status yet")
            .to_owned();
        let osds = a.list("v1", "Pod", Some(Rook::NAMESPACE), Some(rook::OSD_SELECTOR)).await?;
        let running: Vec<String> = osds
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .filter_map(|p| rook::running_osd_host(&p).map(str::to_owned))
            .collect();
        let missing: Vec<&String> = hosts.iter().filter(|h| !running.iter().any(|r| r == *h)).collect();
        Ok(match (expect.unmet(&c), missing.is_empty()) {
            (None, true) => {
                Probe::Ready(c.pointer("/status/ceph/capacity/bytesTotal").and_then(Value::as_u64).unwrap_or(0))
            }
            (unmet, _) => {
                let mut msg = format!("{phase}; OSDs on {} of {} machines", hosts.len() - missing.len(), hosts.len());
                if !missing.is_empty() {
                    msg.push_str(&format!(
                        " (none on {})",
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
                if let Some(u) = unmet {
                    msg.push_str(&format!("; {u}"));
                }
                Probe::Pending(Some(msg))
            }
        })
    })
    .await
}

/// The size of a machine's Ceph device from the facts the hosts phase read: the device's
/// own size, or, for a logical volume carved after the facts were read, the size it was
/// carved to (all the volume group's free space for `rest`).
fn ceph_device_bytes(m: &crate::config::Machine, f: &crate::microk8s::HostFacts) -> Option<u64> {
    if let Some(b) = f.ceph_bytes {
        return Some(b);
    }
    match &m.carve {
        Some(crate::config::Carve { size: crate::config::CephVolume::Bytes(b), .. }) => Some(*b),
        Some(crate::config::Carve { size: crate::config::CephVolume::Rest, .. }) => {
            f.vg.as_ref().and_then(|v| v.as_ref()).map(|v| v.free_bytes)
        }
        _ => None,
    }
}

/// `ceph status` and `ceph osd tree` through the Rook toolbox on control plane `via`.
pub async fn ceph_now(cx: &Ctx, via: &str) -> Result<(crate::ceph::Status, Vec<crate::ceph::Osd>)> {
    let r = cx.remote(via).await?;
    let (status_cmd, tree_cmd) = (crate::ceph::cmd(&["status"], true), crate::ceph::cmd(&["osd", "tree"], true));
    let (st, tree) = tokio::try_join!(r.run(&status_cmd), r.run(&tree_cmd))?;
    Ok((crate::ceph::parse_status(&st)?, crate::ceph::parse_osds(&tree, None)?))
}

/// Waits, with the file's `timeouts.ceph` as deadline, until Ceph has taken in a change of
/// its OSDs ([`crate::ceph::settling`]): the OSDs of `joining` booted, up and in, and no PG
/// peering onto or recovering to them. Reads only, through the toolbox on `via`.
pub async fn settle(cx: &Ctx, via: &str, target: &str, joining: &[&str], dead: bool) -> Result<()> {
    let t = cx.opts.timings;
    let spec = WaitSpec {
        phase: PHASE,
        target: target.to_owned(),
        what: if joining.is_empty() {
            "Ceph settled: no PG peering or recovering after the last change of its OSDs".into()
        } else {
            format!("Ceph settled: the OSD of {} up and in, no PG peering or recovering onto it", joining.join(", "))
        },
        deadline: t.deadline(cx.cluster.timeouts.ceph),
        backoff: t.kube_poll,
        hint: "`kubectl -n rook-ceph exec deploy/rook-ceph-tools -- ceph status` shows what Ceph is doing; a new OSD that never comes up: `kubectl -n rook-ceph logs -l app=rook-ceph-osd-prepare`; raise `timeouts.ceph` on slow disks".into(),
    };
    wait_for(&cx.ui, &spec, || async {
        let (st, osds) = ceph_now(cx, via).await?;
        Ok(match crate::ceph::settling(Some(&st), &osds, joining, dead) {
            None => Probe::Ready(()),
            Some(why) => Probe::Pending(Some(why)),
        })
    })
    .await
}

/// The first control plane that answers SSH: where the toolbox commands run.
pub async fn toolbox_host(cx: &Ctx) -> Result<String> {
    let mut tried = Vec::new();
    for m in cx.cluster.control_planes() {
        match cx.remote(&m.hostname).await {
            Ok(_) => return Ok(m.hostname.clone()),
            Err(e) => tried.push(format!("{}: {e:#}", m.hostname)),
        }
    }
    Err(anyhow!(
        "no control plane answers SSH, so homelab cannot read Ceph through the Rook toolbox ({})\n  hint: `homelab status` shows which machines answer",
        tried.join("; ")
    ))
}

/// Waits until a pool is Ready for its current generation (not in a dry run: nothing changed).
async fn wait_pool(cx: &Ctx, a: &Applier, name: &str) -> Result<()> {
    if cx.dry_run() {
        return Ok(());
    }
    let t = cx.opts.timings;
    wait_object(
        a,
        &cx.ui,
        PHASE,
        &ObjectRef::new("ceph.rook.io/v1", "CephBlockPool", Some(Rook::NAMESPACE), name),
        "pool Ready",
        &Expect::default().with_generation().field("/status/phase", Check::Equals(json!("Ready"))),
        t.deadline(cx.cluster.timeouts.ceph),
        t.kube_poll,
        "`kubectl -n rook-ceph describe cephblockpool` shows why; a pool needs as many hosts with OSDs as its replicas",
    )
    .await
    .map(drop)
}

/// What runs: the Rook operator's image and the CephCluster's declared Ceph image.
#[derive(Debug, Clone, Default)]
pub struct LiveVersions {
    pub operator_image: Option<String>,
    pub ceph_image: Option<String>,
}

pub const UPGRADE_HINT: &str = "`homelab upgrade` moves Rook one minor at a time and Ceph one supported major at a time (`homelab upgrade --plan` lists the hops)";

pub async fn live_versions(a: &Applier) -> Result<LiveVersions> {
    let (op, c) = tokio::try_join!(
        a.get("apps/v1", "Deployment", Some(Rook::NAMESPACE), "rook-ceph-operator"),
        a.get("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME),
    )?;
    let op = op.and_then(|o| serde_json::to_value(o).ok());
    let c = c.and_then(|o| serde_json::to_value(o).ok());
    Ok(LiveVersions {
        operator_image: op.as_ref().and_then(rook::operator_image_of),
        ceph_image: c
            .as_ref()
            .and_then(|c| c.pointer("/spec/cephVersion/image"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The drift between the file's Rook and what runs, in words (None: the same versions).
pub fn version_drift(r: &Rook, live: &LiveVersions) -> Option<String> {
    let want = r.release.operator_image();
    let mut out = Vec::new();
    if let Some(img) = &live.operator_image
        && *img != want
    {
        out.push(format!("the Rook operator runs {img}, the file says {} ({want})", r.release.version));
    }
    if let Some(img) = &live.ceph_image
        && *img != r.ceph_image
    {
        out.push(format!("Ceph runs {img}, the file says {}", r.ceph_image));
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// Whether the live object carrying the MicroK8s kubelet path has it.
pub async fn kubelet_path_set(a: &Applier, rel: &crate::catalog::RookRelease, carrier: &Value) -> Result<bool> {
    let api = carrier["apiVersion"].as_str().unwrap_or("v1");
    let kind = carrier["kind"].as_str().unwrap_or("ConfigMap");
    let name = carrier["metadata"]["name"].as_str().unwrap_or_default();
    let ns = carrier["metadata"]["namespace"].as_str();
    let Some(live) = a.get(api, kind, ns, name).await? else { return Ok(false) };
    let live = serde_json::to_value(live)?;
    let ptr = format!("/{}", rel.kubelet_dir_path.field.replace('.', "/"));
    Ok(live.pointer(&ptr).and_then(Value::as_str) == Some(Rook::MICROK8S_KUBELET_DIR))
}

/// The CephCluster, the `.mgr` pool, the toolbox, each pool and its StorageClass, as
/// `cluster` declares them for its Rook release, applied and waited for. A StorageClass
/// whose immutable fields differ is drift for `up`; `upgrade` (`recreate_sc`) deletes and
/// recreates it (existing volumes keep working: docs/day2.md §2.3).
pub async fn converge_cluster(
    cx: &Ctx,
    a: &Applier,
    cluster: &crate::config::Cluster,
    files: &rook::Files,
    recreate_sc: bool,
) -> Result<()> {
    let r = cluster.rook.as_ref().ok_or_else(|| anyhow!("the cluster declares no `rook:`"))?;
    let objs = vec![rook::render_cluster(&r.release, files, cluster)?, rook::render_mgr_pool(rook::mgr_size(cluster))];
    addons::apply(cx, PHASE, a, "rook-ceph", "the CephCluster and the .mgr pool", &objs).await?;
    // Ceph's raw capacity: what Rook reports, or the Ceph devices the hosts phase measured
    // when Rook's figure lags behind OSDs still booting (both only ever undercount).
    let measured: u64 = cluster
        .ceph_machines()
        .filter_map(|m| cx.host_facts(&m.hostname).and_then(|f| ceph_device_bytes(m, &f)))
        .fold(0, u64::saturating_add);
    let capacity = wait_ceph(cx, a).await?.max(measured);
    // Ceph block volumes are thin: claims larger than Ceph are made and fail when it fills.
    // Said by runs of the whole cluster: a run for some machines (add-node) reads the facts
    // of those alone, while Rook's figure may not count their OSDs yet.
    if cx.opts.only_machines.is_none()
        && let Some((message, hint)) = crate::config::claims::over_capacity(&cluster.ceph_claims(), capacity)
    {
        cx.warn(PHASE, "rook-ceph", message, Some(hint));
    }
    // The Rook toolbox: `remove-node`, `replace-node` and `upgrade` read and steer Ceph through it.
    addons::apply(
        cx,
        PHASE,
        a,
        "rook-ceph",
        "the Rook toolbox",
        &rook::toolbox_objects(&r.release, files, &r.ceph_image)?,
    )
    .await?;
    for p in &r.pools {
        let (pool, sc) = rook::render_pool(&r.release, files, p)?;
        let name = pool["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        addons::apply(cx, PHASE, a, "rook-ceph", &format!("CephBlockPool {name}"), &[pool]).await?;
        wait_pool(cx, a, &name).await?;
        let Some(sc) = sc else { continue };
        let sc_name = sc["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let live = a.get("storage.k8s.io/v1", "StorageClass", None, &sc_name).await?;
        let diffs = match &live {
            Some(l) => rook::immutable_differences(&serde_json::to_value(l)?, &sc),
            None => vec![],
        };
        if diffs.is_empty() {
            addons::apply(cx, PHASE, a, "cluster", &format!("StorageClass {sc_name}"), &[sc]).await?;
        } else if recreate_sc {
            let words = format!(
                "recreate StorageClass {sc_name} with Rook {}'s parameters ({}; existing volumes keep working)",
                r.release.version,
                diffs.join("; ")
            );
            if cx.dry_run() {
                cx.step(PHASE, &sc_name, words);
            } else {
                cx.act(PHASE, &sc_name, words).await?;
                a.delete("storage.k8s.io/v1", "StorageClass", None, &sc_name).await?;
                addons::apply(cx, PHASE, a, "cluster", &format!("StorageClass {sc_name}"), &[sc]).await?;
            }
        } else {
            cx.drift(
                PHASE,
                &format!("StorageClass {sc_name}"),
                format!("immutable fields differ: {}", diffs.join("; ")),
                format!("Kubernetes cannot change these in place; `kubectl delete storageclass {sc_name}` and run homelab up again (existing volumes are kept)"),
            );
        }
    }
    Ok(())
}

#[async_trait]
impl Phase for StoragePhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn prepare(&self, cx: &Ctx) -> Result<()> {
        let r = rook(cx)?;
        self.download.start(
            cx.world.manifests.clone(),
            "rook",
            r.release.version.clone(),
            addons::wanted_files(&r.release.files),
        );
        Ok(())
    }

    async fn finish(&self, cx: &Ctx) -> Result<()> {
        let r = rook(cx)?;
        let files = self.download.files().await?;
        rook::check_bundle(&r.release, &files)?;
        cx.ensure_lease().await?;
        let a = addons::applier(cx, PHASE).await?;
        let live = live_versions(&a).await?;
        // A version change is `homelab upgrade`'s: one Rook minor at a time, gated. `up`
        // reports it and leaves storage as it is.
        if let Some(drift) = version_drift(r, &live) {
            cx.drift(PHASE, "rook-ceph", drift, UPGRADE_HINT);
            return Ok(());
        }
        let microk8s = cx.cluster.kubernetes.is_microk8s();
        let (bundle, install_only) = rook::bundle_objects(&r.release, &files, microk8s)?;
        // operator.yaml is applied when Rook is installed, never again (a re-apply resets
        // its CSI settings; docs/day2.md §2.3); the MicroK8s kubelet path it carries is
        // checked every run and put back when someone changed it.
        let installed = live.operator_image.is_some();
        let objs = if installed { bundle } else { [bundle, install_only.clone()].concat() };
        addons::apply(cx, PHASE, &a, "rook-ceph", &format!("the Rook {} operator bundle", r.release.version), &objs)
            .await?;
        if installed
            && microk8s
            && let Some(obj) = rook::kubelet_carrier(&r.release, &install_only)
            && !kubelet_path_set(&a, &r.release, obj).await?
        {
            addons::apply(
                cx,
                PHASE,
                &a,
                "rook-ceph",
                "the MicroK8s kubelet path of Ceph CSI",
                std::slice::from_ref(obj),
            )
            .await?;
        }
        let mut operators = vec!["rook-ceph-operator"];
        if r.release.uses_csi_operator() {
            operators.push("ceph-csi-controller-manager");
        }
        for d in operators {
            let hint = format!(
                "`kubectl -n rook-ceph describe deployment {d}` and the pod's events (image pulls on a slow uplink take long)"
            );
            addons::wait_operator(cx, PHASE, &a, Rook::NAMESPACE, d, &hint).await?;
        }
        converge_cluster(cx, &a, &cx.cluster, &files, false).await?;
        // A machine added to a running cluster (add-node, replace-node): its OSD boots after
        // its pod runs, then its PGs peer and data is recovered onto it. The run ends once
        // Ceph has taken it in, so the next step (a removal's safety check) sees Ceph settled.
        let joining: Vec<&str> = cx
            .cluster
            .ceph_machines()
            .filter(|m| cx.opts.only_machines.as_ref().is_some_and(|o| o.contains(&m.hostname)))
            .map(|m| m.hostname.as_str())
            .collect();
        if !cx.dry_run() && !joining.is_empty() && cx.cluster.kubernetes.is_microk8s() {
            let via = toolbox_host(cx).await?;
            settle(cx, &via, "rook-ceph", &joining, false).await?;
        }
        if !cx.dry_run() {
            cx.info(
                PHASE,
                "rook-ceph",
                format!("Ceph healthy with OSDs on {} machines", cx.cluster.ceph_machines().count()),
            );
        }
        Ok(())
    }
}
