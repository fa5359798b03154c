//! What the server derives from the stored objects on every read, as controllers would: Deployments
//! that become Available, PVCs that bind once their StorageClass exists, CRDs Established after a
//! delay, Nodes from the simulated hosts, and the pluggable simulated operators.

use super::*;

/// The name of a Deployment's pod (as a ReplicaSet names it: Deployment, template hash,
/// five random characters; fixed here).
pub fn deployment_pod(deployment: &str) -> String {
    format!("{deployment}-5d8f7c9b6-x7k2p")
}

/// Lazily brings every controller up to now: CRD establishment, Deployments, PVCs, operators.
pub fn reconcile(st: &mut ApiState) {
    let now = Instant::now();
    lifecycle::reconcile(st);
    // CRDs: Established after a delay, served by discovery a moment later. (Only names are
    // copied: CRDs are large and this runs before every request.)
    let crds: Vec<(String, String, String, bool)> = st
        .list("apiextensions.k8s.io", "customresourcedefinitions", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["group"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["names"]["plural"].as_str().unwrap_or_default().to_owned(),
                v.pointer("/status/conditions").is_some(),
            )
        })
        .collect();
    for (name, group, plural, has_conditions) in crds {
        let age = st.age("apiextensions.k8s.io", "customresourcedefinitions", "", &name).unwrap_or_default();
        if age >= st.cfg.crd_establish && !has_conditions {
            let (names, stored) = match st.get("apiextensions.k8s.io", "customresourcedefinitions", "", &name) {
                Some(v) => (
                    v["spec"]["names"].clone(),
                    v["spec"]["versions"]
                        .as_array()
                        .map(|a| {
                            a.iter().filter(|x| x["storage"] == true).map(|x| x["name"].clone()).collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                ),
                None => continue,
            };
            st.set_status(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
                &name,
                json!({"acceptedNames": names, "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                ], "storedVersions": stored}),
            );
        }
        if let Some(k) = st.kinds.iter_mut().find(|k| k.group == group && k.plural == plural)
            && k.served_at.is_none()
            && age >= st.cfg.crd_establish + st.cfg.discovery_lag
        {
            k.served_at = Some(now);
        }
    }
    // Deployments: Available after a delay (unless stuck).
    let deps: Vec<(String, String, Value)> = st
        .list("apps", "deployments", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v.clone(),
            )
        })
        .collect();
    for (ns, name, v) in deps {
        let since = st.since_update("apps", "deployments", &ns, &name).unwrap_or_default();
        let stuck = st.faults.stuck_deployments.iter().any(|s| s == &format!("{ns}/{name}"));
        let replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
        let gen_ = v["metadata"]["generation"].as_i64().unwrap_or(1);
        let ready = since >= st.cfg.deployment_ready && !stuck;
        let status = if ready {
            json!({"observedGeneration": gen_, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
        } else {
            json!({"observedGeneration": gen_, "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
                   "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}]})
        };
        st.set_status("apps", "deployments", &ns, &name, status);
        // Its pod (one, whatever the replicas), with the template's labels, Running once the
        // Deployment is Available; none while it is scaled to 0. (Owned by the Deployment
        // itself: the ReplicaSet between them is not simulated; the garbage collector takes
        // the pod with the Deployment, as it would through the ReplicaSet.) The OSD Deployments' pods are
        // the Rook simulator's (their boot and stop timings are its own).
        if v.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("rook-ceph-osd") {
            continue;
        }
        let pod = deployment_pod(&name);
        let labels = v.pointer("/spec/template/metadata/labels").cloned().unwrap_or_else(|| json!({}));
        let container = v.pointer("/spec/template/spec/containers/0/name").and_then(Value::as_str).unwrap_or(&name);
        let want = if replicas < 1 {
            None
        } else if ready {
            Some(("Running", "True"))
        } else {
            Some(("Pending", "False"))
        };
        let cur = st
            .get("", "pods", &ns, &pod)
            .and_then(|p| p.pointer("/status/phase").and_then(Value::as_str).map(str::to_owned));
        match want {
            None if cur.is_some() => st.delete("", "pods", &ns, &pod),
            Some((phase, cond)) if cur.as_deref() != Some(phase) => st.put(
                "",
                "pods",
                &ns,
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": pod, "namespace": ns, "labels": labels, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": true}]},
                       "spec": {"containers": [{"name": container}]},
                       "status": {"phase": phase, "conditions": [{"type": "Ready", "status": cond}]}}),
            ),
            _ => {}
        }
    }
    // PVCs bind when their StorageClass exists.
    let default_sc: Option<String> = st
        .list("storage.k8s.io", "storageclasses", None)
        .into_iter()
        .find(|s| {
            s.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class").and_then(Value::as_str)
                == Some("true")
        })
        .and_then(|s| s["metadata"]["name"].as_str().map(str::to_owned));
    let pvcs: Vec<(String, String, Option<String>)> = st
        .list("", "persistentvolumeclaims", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["storageClassName"].as_str().map(str::to_owned),
            )
        })
        .collect();
    for (ns, name, class) in pvcs {
        let class = class.or(default_sc.clone());
        let bound = class.as_deref().is_some_and(|c| st.get("storage.k8s.io", "storageclasses", "", c).is_some());
        let size = st
            .get("", "persistentvolumeclaims", &ns, &name)
            .and_then(|v| v.pointer("/spec/resources/requests/storage").cloned())
            .unwrap_or(json!("1Gi"));
        let status = if bound {
            json!({"phase": "Bound", "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]})
        } else {
            json!({"phase": "Pending"})
        };
        st.set_status("", "persistentvolumeclaims", &ns, &name, status);
    }
    // PodGC: pods bound to a node that no longer exists, and pods on a NotReady node tainted
    // out-of-service, are deleted (docs/day2.md §1.1).
    if st.nodes.is_some() {
        let nodes: HashMap<String, Value> = st
            .node_values()
            .into_iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(|s| (s.to_owned(), n.clone())))
            .collect();
        let gone: Vec<(String, String)> = st
            .list("", "pods", None)
            .into_iter()
            .filter_map(|p| {
                let node = p.pointer("/spec/nodeName").and_then(Value::as_str)?;
                let orphan = match nodes.get(node) {
                    None => true,
                    Some(n) => !node_ready(n) && node_tainted(n, "node.kubernetes.io/out-of-service"),
                };
                orphan.then(|| {
                    (
                        p["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                        p["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
            })
            .collect();
        for (ns, name) in gone {
            st.delete("", "pods", &ns, &name);
        }
    }
    let ops = st.operators.clone();
    for op in ops {
        op.reconcile(st, now);
    }
    // What the operators released (finalizers) or dropped (owners) goes now.
    lifecycle::reconcile(st);
}
