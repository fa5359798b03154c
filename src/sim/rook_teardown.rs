//! How the simulated Rook operator lets a CephCluster go (ceph-teardown.md and the cluster
//! controller, as the research notes restate them): the cluster carries Rook's finalizer
//! while the operator runs; once deleted it is `Deleting`, blocked (`DeletionIsBlocked`,
//! reason `ObjectHasDependents`) while a CephBlockPool exists; with
//! `cleanupPolicy.confirmation: yes-really-destroy-data` the operator runs a
//! `cluster-cleanup-job-<node>` (label `app=rook-ceph-cleanup`) on each node with an OSD and
//! waits for them all to succeed; then Ceph's daemons go and the finalizer comes off.
//! Without the confirmation the data stays on the disks and the daemons go all the same.

use super::apiserver::ApiState;
use super::ceph::SimCeph;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// Rook's finalizer on a CephCluster.
pub const FINALIZER: &str = "cephcluster.ceph.rook.io";
/// The confirmation `cleanupPolicy` needs.
pub const CONFIRMATION: &str = "yes-really-destroy-data";

fn name_of(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

/// Puts Rook's finalizer on a cluster it manages (once).
pub fn hold(st: &mut ApiState, ns: &str, c: &Value) {
    let has =
        c.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    if !has {
        let mut c = c.clone();
        let mut f = c.pointer("/metadata/finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        f.push(json!(FINALIZER));
        c["metadata"]["finalizers"] = Value::Array(f);
        st.put("ceph.rook.io", "cephclusters", ns, c);
    }
}

/// A CephCluster marked for deletion, with the operator running: `step` is the operator's
/// pace (a cleanup Job's run), `ceph` the cluster behind it, `cleanups` the log of the nodes
/// whose cleanup Job ran.
pub fn deleting(
    st: &mut ApiState,
    ns: &str,
    c: &Value,
    step: Duration,
    ceph: &Mutex<SimCeph>,
    cleanups: &Mutex<Vec<String>>,
) {
    let name = name_of(c);
    let pools: Vec<String> = st.list("ceph.rook.io", "cephblockpools", Some(ns)).into_iter().map(name_of).collect();
    let mut status = c["status"].clone();
    status["phase"] = json!("Deleting");
    if !pools.is_empty() {
        status["conditions"] = json!([{"type": "DeletionIsBlocked", "status": "True", "reason": "ObjectHasDependents",
                "message": format!("CephCluster \"{ns}/{name}\" will not be deleted until all dependents are removed: CephBlockPool: [{}]", pools.join(" "))}]);
        st.set_status("ceph.rook.io", "cephclusters", ns, &name, status);
        return;
    }
    status["conditions"] = json!([{"type": "Deleting", "status": "True", "reason": "ClusterDeleting", "message": "Deleting the CephCluster"}]);
    st.set_status("ceph.rook.io", "cephclusters", ns, &name, status);
    let confirmed = c.pointer("/spec/cleanupPolicy/confirmation").and_then(Value::as_str) == Some(CONFIRMATION);
    if confirmed {
        let mut hosts: Vec<String> = st
            .list("apps", "deployments", Some(ns))
            .into_iter()
            .filter(|d| d.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("rook-ceph-osd"))
            .filter_map(|d| d.pointer("/metadata/labels/topology-location-host").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        hosts.sort();
        hosts.dedup();
        let mut all_done = true;
        for h in &hosts {
            let job = format!("cluster-cleanup-job-{h}");
            match st.get("batch", "jobs", ns, &job).cloned() {
                None => {
                    all_done = false;
                    st.put("batch", "jobs", ns, json!({"apiVersion": "batch/v1", "kind": "Job",
                            "metadata": {"name": job, "namespace": ns, "labels": {"app": "rook-ceph-cleanup", "rook-ceph-cleanup": "true"}},
                            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": h}, "restartPolicy": "OnFailure"}}},
                            "status": {"active": 1}}));
                }
                Some(j) if j.pointer("/status/succeeded").is_none() => {
                    all_done = false;
                    let age = st.age("batch", "jobs", ns, &job).unwrap_or_default();
                    if age >= step {
                        // The job sanitized this node's OSD devices and removed
                        // dataDirHostPath's cluster directory.
                        st.set_status(
                            "batch",
                            "jobs",
                            ns,
                            &job,
                            json!({"succeeded": 1,
                                "conditions": [{"type": "Complete", "status": "True"}]}),
                        );
                    }
                }
                Some(_) => {}
            }
        }
        if let Ok(mut log) = cleanups.lock()
            && all_done
        {
            log.extend(hosts.iter().cloned());
        }
        if !all_done {
            return;
        }
    }
    // Ceph's daemons go (their Deployments were the cluster's), then the finalizer.
    let daemons: Vec<String> = st
        .list("apps", "deployments", Some(ns))
        .into_iter()
        .filter(|d| {
            matches!(
                d.pointer("/metadata/labels/app").and_then(Value::as_str),
                Some("rook-ceph-osd" | "rook-ceph-mon" | "rook-ceph-mgr")
            ) || d.pointer("/metadata/labels/rook_cluster").is_some()
        })
        .map(name_of)
        .collect();
    for d in daemons {
        st.delete("apps", "deployments", ns, &d);
    }
    for p in st
        .list("", "pods", Some(ns))
        .into_iter()
        .filter(|p| p.pointer("/metadata/labels/osd").is_some())
        .map(name_of)
        .collect::<Vec<_>>()
    {
        st.delete("", "pods", ns, &p);
    }
    st.delete("policy", "poddisruptionbudgets", ns, "rook-ceph-osd");
    {
        let mut ceph = ceph.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = ceph.cfg.clone();
        *ceph = SimCeph::new(cfg);
    }
    if let Some(mut c) = st.get("ceph.rook.io", "cephclusters", ns, &name).cloned() {
        let f: Vec<Value> = c
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter(|x| *x != FINALIZER).cloned().collect())
            .unwrap_or_default();
        c["metadata"]["finalizers"] = Value::Array(f);
        st.put("ceph.rook.io", "cephclusters", ns, c);
    }
}
