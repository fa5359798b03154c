//! Rook: the pinned operator bundle with the MicroK8s kubelet path set where the release
//! reads it, and the objects homelab renders from the release's own examples — the
//! CephCluster (each machine's Ceph volume listed explicitly, mon/mgr counts fitted to the
//! machines), the `.mgr` pool sized for small clusters, and each declared pool with its
//! StorageClass.

use crate::catalog::bundle::parse_manifest;
use crate::catalog::{FileRole, RookRelease};
use crate::config::{Cluster, Pool, Rook};
use crate::foundation::json::strip_nulls;
use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The downloaded, verified files of a release: path → text.
pub type Files = HashMap<String, String>;

fn file<'a>(files: &'a Files, rel: &RookRelease, name: &str) -> Result<&'a str> {
    let f = rel
        .files
        .iter()
        .find(|f| f.path.ends_with(name))
        .ok_or_else(|| anyhow!("the catalog entry of Rook {} has no {name}", rel.version))?;
    files.get(&f.path).map(String::as_str).ok_or_else(|| anyhow!("{} was not downloaded", f.path))
}

/// The operator objects in file order, the kubelet path patched in for MicroK8s.
pub fn operator_objects(rel: &RookRelease, files: &Files, microk8s: bool) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for f in rel.files.iter().filter(|f| f.role != FileRole::Template) {
        let text = files.get(&f.path).ok_or_else(|| anyhow!("{} was not downloaded", f.path))?;
        out.extend(parse_manifest(text, &f.path)?);
    }
    if microk8s {
        set_kubelet_dir(rel, &mut out, Rook::MICROK8S_KUBELET_DIR)?;
    }
    for o in &mut out {
        strip_nulls(o);
    }
    Ok(out)
}

/// The operator objects split in two: those of the files applied on every run (CRDs, RBAC,
/// the CSI operator) and those of `operator.yaml`, applied when Rook is installed only.
pub fn bundle_objects(rel: &RookRelease, files: &Files, microk8s: bool) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut always, mut install) = (Vec::new(), Vec::new());
    for f in rel.files.iter().filter(|f| f.role != FileRole::Template) {
        let text = files.get(&f.path).ok_or_else(|| anyhow!("{} was not downloaded", f.path))?;
        let objs = parse_manifest(text, &f.path)?;
        if f.role == FileRole::Patch { install.extend(objs) } else { always.extend(objs) }
    }
    if microk8s {
        set_kubelet_dir(rel, &mut install, Rook::MICROK8S_KUBELET_DIR)?;
    }
    for o in always.iter_mut().chain(install.iter_mut()) {
        strip_nulls(o);
    }
    Ok((always, install))
}

/// The object of `operator.yaml` that carries the kubelet path (catalog `kubeletDirPath`).
pub fn kubelet_carrier<'a>(rel: &RookRelease, install: &'a [Value]) -> Option<&'a Value> {
    let k = &rel.kubelet_dir_path;
    install.iter().find(|o| o["kind"] == k.kind.as_str() && o["metadata"]["name"] == k.name.as_str())
}

/// The image of the `rook-ceph-operator` container of an operator Deployment.
pub fn operator_image_of(dep: &Value) -> Option<String> {
    let cs = dep.pointer("/spec/template/spec/containers")?.as_array()?;
    cs.iter().find(|c| c["name"] == "rook-ceph-operator").or(cs.first())?["image"].as_str().map(str::to_owned)
}

/// Sets the kubelet directory where this Rook release reads it (`catalog.kubeletDirPath`).
pub fn set_kubelet_dir(rel: &RookRelease, objs: &mut [Value], dir: &str) -> Result<()> {
    let k = &rel.kubelet_dir_path;
    let target = objs
        .iter_mut()
        .find(|o| o["kind"] == k.kind.as_str() && o["metadata"]["name"] == k.name.as_str())
        .ok_or_else(|| {
            anyhow!(
                "Rook {}'s files have no {} {} to carry the MicroK8s kubelet path (catalog: {})",
                rel.version,
                k.kind,
                k.name,
                k.field
            )
        })?;
    let parts: Vec<&str> = k.field.split('.').collect();
    crate::foundation::json::set(target, &parts, json!(dir))
        .map_err(|e| anyhow!("cannot set {} in {} {}: {e}", k.field, k.kind, k.name))
}

/// Mons: 3 when there are 3+ nodes, else 1 (an even count gains nothing; 2 loses quorum
/// with either). Mgrs: 2 when possible.
pub fn mon_mgr_counts(nodes: usize) -> (u32, u32) {
    (if nodes >= 3 { 3 } else { 1 }, if nodes >= 2 { 2 } else { 1 })
}

/// The CephCluster, from the release's `cluster.yaml` with homelab's storage selection.
pub fn render_cluster(rel: &RookRelease, files: &Files, cluster: &Cluster) -> Result<Value> {
    let text = file(files, rel, "deploy/examples/cluster.yaml")?;
    let mut docs = parse_manifest(text, "cluster.yaml")?;
    let mut c = docs
        .drain(..)
        .find(|d| d["kind"] == "CephCluster")
        .ok_or_else(|| anyhow!("Rook {}'s cluster.yaml has no CephCluster", rel.version))?;
    strip_nulls(&mut c);
    let nodes: Vec<Value> = cluster
        .ceph_machines()
        .map(|m| json!({"name": m.hostname, "devices": [{"name": m.ceph_device().unwrap_or_default()}]}))
        .collect();
    let (mons, mgrs) = mon_mgr_counts(cluster.machines.len().max(nodes.len()));
    c["metadata"] = json!({"name": Rook::CLUSTER_NAME, "namespace": Rook::NAMESPACE});
    if let Some(r) = &cluster.rook {
        c["spec"]["cephVersion"]["image"] = json!(r.ceph_image);
    }
    c["spec"]["mon"]["count"] = json!(mons);
    c["spec"]["mon"]["allowMultiplePerNode"] = json!(false);
    c["spec"]["mgr"]["count"] = json!(mgrs);
    c["spec"]["mgr"]["allowMultiplePerNode"] = json!(false);
    // Rook never picks logical volumes on its own: list each machine's volume explicitly.
    c["spec"]["storage"] =
        json!({"useAllNodes": false, "useAllDevices": false, "onlyApplyOSDPlacement": false, "nodes": nodes});
    Ok(c)
}

/// The Rook toolbox Deployment of the release (`toolbox.yaml`, unchanged but for its
/// namespace and its image, which follows the cluster's Ceph image), when the catalog pins it.
pub fn toolbox_objects(rel: &RookRelease, files: &Files, ceph_image: &str) -> Result<Vec<Value>> {
    let Some(f) = rel.files.iter().find(|f| f.path.ends_with("toolbox.yaml")) else { return Ok(vec![]) };
    let text = files.get(&f.path).ok_or_else(|| anyhow!("{} was not downloaded", f.path))?;
    let mut docs = parse_manifest(text, "toolbox.yaml")?;
    docs.retain(|d| d["kind"] == "Deployment");
    for d in &mut docs {
        d["metadata"]["namespace"] = json!(Rook::NAMESPACE);
        if let Some(cs) = d.pointer_mut("/spec/template/spec/containers").and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter(|c| c["image"].as_str().is_some_and(|i| i.contains("ceph/ceph:"))) {
                c["image"] = json!(ceph_image);
            }
        }
    }
    Ok(docs)
}

/// The size of Ceph's own `.mgr` pool: as many copies as the data pools keep (at most 3),
/// and never more than there are hosts with OSDs. Ceph's default, size 3 across hosts, keeps
/// a cluster that lost one of three hosts from ever reaching HEALTH_OK (docs/day2.md §1.5).
pub fn mgr_size(cluster: &Cluster) -> usize {
    let hosts = cluster.ceph_machines().count();
    let data = cluster.rook.as_ref().and_then(|r| r.pools.iter().map(|p| p.replicas as usize).max()).unwrap_or(3);
    data.min(hosts).clamp(1, 3)
}

/// Ceph's own `.mgr` pool with `size` copies across hosts.
pub fn render_mgr_pool(size: usize) -> Value {
    let size = size.clamp(1, 3);
    json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephBlockPool",
        "metadata": {"name": "builtin-mgr", "namespace": Rook::NAMESPACE},
        "spec": {"name": ".mgr", "failureDomain": "host", "replicated": {"size": size, "requireSafeReplicaSize": size > 1}, "parameters": {"compression_mode": "none"}, "mirroring": {"enabled": false}}
    })
}

/// A declared pool and its StorageClass, from the release's `csi/rbd/storageclass.yaml`
/// (provisioner, parameters and secrets as that release has them).
pub fn render_pool(rel: &RookRelease, files: &Files, pool: &Pool) -> Result<(Value, Option<Value>)> {
    let text = file(files, rel, "csi/rbd/storageclass.yaml")?;
    let docs = parse_manifest(text, "storageclass.yaml")?;
    let mut p = docs
        .iter()
        .find(|d| d["kind"] == "CephBlockPool")
        .cloned()
        .ok_or_else(|| anyhow!("storageclass.yaml has no CephBlockPool"))?;
    let sc_t = docs
        .iter()
        .find(|d| d["kind"] == "StorageClass")
        .cloned()
        .ok_or_else(|| anyhow!("storageclass.yaml has no StorageClass"))?;
    strip_nulls(&mut p);
    let bad = |e: String| anyhow!("Rook {}'s storageclass.yaml has an unexpected shape: {e}", rel.version);
    use crate::foundation::json::set;
    set(&mut p, &["metadata"], json!({"name": pool.name, "namespace": Rook::NAMESPACE})).map_err(bad)?;
    let fd = pool.failure_domain.name();
    set(&mut p, &["spec", "failureDomain"], json!(fd)).map_err(bad)?;
    set(&mut p, &["spec", "replicated"], json!({"size": pool.replicas, "requireSafeReplicaSize": pool.replicas > 1}))
        .map_err(bad)?;
    let sc = match &pool.storage_class {
        None => None,
        Some(s) => {
            let mut sc = sc_t.clone();
            strip_nulls(&mut sc);
            let mut md = json!({"name": s.name});
            if s.default {
                md["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
            }
            set(&mut sc, &["metadata"], md).map_err(bad)?;
            set(&mut sc, &["parameters", "pool"], json!(pool.name)).map_err(bad)?;
            set(&mut sc, &["parameters", "clusterID"], json!(Rook::NAMESPACE)).map_err(bad)?;
            set(&mut sc, &["parameters", "csi.storage.k8s.io/fstype"], json!("ext4")).map_err(bad)?;
            set(&mut sc, &["reclaimPolicy"], json!("Delete")).map_err(bad)?;
            set(&mut sc, &["allowVolumeExpansion"], json!(true)).map_err(bad)?;
            Some(sc)
        }
    };
    Ok((p, sc))
}

/// StorageClass fields Kubernetes does not let change in place.
/// The label selector of Rook's OSD pods.
pub const OSD_SELECTOR: &str = "app=rook-ceph-osd";

/// What `cleanupPolicy.confirmation` must say for Rook to wipe the cluster's data when the
/// CephCluster is deleted (ceph-cluster-crd.md, the same at v1.10.10 and v1.20.6).
pub const CLEANUP_CONFIRMATION: &str = "yes-really-destroy-data";

/// The merge patch that confirms the cleanup: the OSD devices sanitized the quick way (the
/// default method, zeros, one pass) when the CephCluster is then deleted.
pub fn cleanup_patch() -> Value {
    json!({"spec": {"cleanupPolicy": {"confirmation": CLEANUP_CONFIRMATION, "sanitizeDisks": {"method": "quick", "dataSource": "zero", "iteration": 1}}}})
}

/// The machine a running OSD pod serves (Rook's host label, else the pod's node); `None`
/// for a pod that is not Running.
pub fn running_osd_host(pod: &Value) -> Option<&str> {
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        return None;
    }
    Some(
        pod.pointer("/metadata/labels/topology-location-host")
            .or(pod.pointer("/spec/nodeName"))
            .and_then(Value::as_str)
            .unwrap_or("?"),
    )
}

pub fn immutable_differences(live: &Value, want: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["provisioner", "reclaimPolicy", "volumeBindingMode"] {
        let (l, w) = (&live[f], &want[f]);
        if !w.is_null() && l != w {
            out.push(format!("{f}: {l} → {w}"));
        }
    }
    let lp = live["parameters"].as_object().cloned().unwrap_or_default();
    let wp = want["parameters"].as_object().cloned().unwrap_or_default();
    for (k, v) in &wp {
        if lp.get(k) != Some(v) {
            out.push(format!(
                "parameters.{k}: {} → {v}",
                lp.get(k).map(|x| x.to_string()).unwrap_or_else(|| "(none)".into())
            ));
        }
    }
    for k in lp.keys().filter(|k| !wp.contains_key(*k)) {
        out.push(format!("parameters.{k} would be removed"));
    }
    out
}

/// Checks a release's bundle has what homelab needs (used before anything is applied).
pub fn check_bundle(rel: &RookRelease, files: &Files) -> Result<()> {
    for name in ["deploy/examples/cluster.yaml", "csi/rbd/storageclass.yaml"] {
        file(files, rel, name)?;
    }
    if rel.files.iter().any(|f| f.path.ends_with("psp.yaml")) {
        bail!(
            "the catalog lists psp.yaml for Rook {}; PodSecurityPolicy is gone since Kubernetes 1.25 and homelab never applies it",
            rel.version
        );
    }
    Ok(())
}
