//! Simulated operators for the simulated API server: Rook (a CephCluster goes through its
//! phases, one OSD pod per listed device appears on nodes that exist, pools become Ready) and
//! Strimzi (PVCs are created and must bind, node pools get node IDs, the Kafka becomes Ready
//! with listener addresses). Each has a delay per step and a failure mode. Status fields and
//! texts follow `docs/rook-strimzi.md` §3.

use super::apiserver::{ApiState, SimOperator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes of one simulated OSD (the seed's Ceph logical volume).
pub const OSD_BYTES: u64 = 411_566_080_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RookFailure {
    #[default]
    None,
    /// The CephCluster never gets past "Configuring Ceph OSDs" and no OSD appears.
    NoOsds,
    /// No OSD appears on these nodes, yet the cluster reports Ready (the trap docs warn of).
    MissingOsds(Vec<String>),
}

pub struct RookOperator {
    pub step: Duration,
    pub failure: Mutex<RookFailure>,
    progress: Mutex<HashMap<String, (i64, Instant)>>,
}

impl RookOperator {
    pub fn new(step: Duration) -> RookOperator {
        RookOperator { step, failure: Mutex::new(RookFailure::None), progress: Mutex::new(HashMap::new()) }
    }
}

/// When the operator started working on this generation of an object (a spec change restarts
/// its reconciliation).
fn since_generation(
    progress: &Mutex<HashMap<String, (i64, Instant)>>,
    key: &str,
    generation: i64,
    now: Instant,
) -> Instant {
    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
    let e = p.entry(key.to_owned()).or_insert((generation, now));
    if e.0 != generation {
        *e = (generation, now);
    }
    e.1
}

fn name_of(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}
fn ns_of(v: &Value) -> String {
    v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned()
}

impl SimOperator for RookOperator {
    fn name(&self) -> &str {
        "rook"
    }

    fn reconcile(&self, st: &mut ApiState, now: Instant) {
        let clusters: Vec<Value> = st.list("ceph.rook.io", "cephclusters", None).into_iter().cloned().collect();
        let failure = self.failure.lock().map(|f| f.clone()).unwrap_or_default();
        for c in clusters {
            let (ns, name) = (ns_of(&c), name_of(&c));
            if !st.deployment_available(&ns, "rook-ceph-operator") {
                continue;
            }
            let generation = c["metadata"]["generation"].as_i64().unwrap_or(1);
            let started = since_generation(&self.progress, &format!("{ns}/{name}"), generation, now);
            let elapsed = now.saturating_duration_since(started);
            let node_names: Vec<String> =
                st.node_values().iter().filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned)).collect();
            let mut wanted: Vec<(String, String)> = Vec::new();
            for n in c.pointer("/spec/storage/nodes").and_then(Value::as_array).into_iter().flatten() {
                let node = n["name"].as_str().unwrap_or_default().to_owned();
                for d in n["devices"].as_array().into_iter().flatten() {
                    wanted.push((node.clone(), d["name"].as_str().unwrap_or_default().to_owned()));
                }
            }
            wanted.sort();
            let prev = c["status"].clone();
            let prev_gen = prev["observedGeneration"].as_i64();
            let (phase, message) = if elapsed < self.step {
                ("Progressing", "Configuring Ceph Mons")
            } else if elapsed < self.step * 2 {
                ("Progressing", "Configuring Ceph Mgr(s)")
            } else if elapsed < self.step * 3 || failure == RookFailure::NoOsds {
                ("Progressing", "Configuring Ceph OSDs")
            } else {
                ("Ready", "Cluster created successfully")
            };
            // OSD pods, one per device on nodes that exist.
            if elapsed >= self.step * 2 && failure != RookFailure::NoOsds {
                // One look at the pods per pass (hundreds of nodes would make it quadratic).
                let existing = st.list("", "pods", Some(&ns));
                let mut hosts_with_osd: std::collections::HashSet<String> = existing
                    .iter()
                    .filter_map(|p| p.pointer("/metadata/labels/topology-location-host").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect();
                // OSD ids are handed out in order and never reused.
                let mut next_id = existing
                    .iter()
                    .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("rook-ceph-osd"))
                    .count();
                let node_names: std::collections::HashSet<&String> = node_names.iter().collect();
                for (node, dev) in wanted.iter() {
                    if !node_names.contains(node) {
                        continue;
                    }
                    if let RookFailure::MissingOsds(skip) = &failure
                        && skip.contains(node)
                    {
                        continue;
                    }
                    if !hosts_with_osd.insert(node.clone()) {
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    let pod = format!("rook-ceph-osd-{id}-{node}");
                    st.put(
                        "",
                        "pods",
                        &ns,
                        json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod, "labels": {"app": "rook-ceph-osd", "ceph-osd-id": id.to_string(), "topology-location-host": node, "device": dev}},
                            "spec": {"nodeName": node},
                            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
                        }),
                    );
                }
            }
            let osds = st
                .list("", "pods", Some(&ns))
                .into_iter()
                .filter(|p| p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("rook-ceph-osd"))
                .count() as u64;
            let total = osds * OSD_BYTES;
            let health = if osds < 3 { "HEALTH_WARN" } else { "HEALTH_OK" };
            let details = if osds == 0 {
                json!({"TOO_FEW_OSDS": {"message": "OSD count 0 < osd_pool_default_size 3", "severity": "HEALTH_WARN"}})
            } else if osds < 3 {
                json!({"PG_DEGRADED": {"message": "Degraded data redundancy: pgs undersized", "severity": "HEALTH_WARN"}})
            } else {
                json!({})
            };
            let ready = phase == "Ready";
            let mut status = json!({
                "phase": phase,
                "message": message,
                "state": if ready { "Created" } else { "Creating" },
                "ceph": {"health": health, "details": details, "capacity": {"bytesTotal": total, "bytesUsed": osds * 20_000_000, "bytesAvailable": total.saturating_sub(osds * 20_000_000), "lastUpdated": crate::foundation::time::now_rfc3339()}, "fsid": "5f3a2e1c-sim0-4000-8000-000000000001"},
                "conditions": [if ready {
                    json!({"type": "Ready", "status": "True", "reason": "ClusterCreated", "message": "Cluster created successfully"})
                } else {
                    json!({"type": "Progressing", "status": "True", "reason": "ClusterProgressing", "message": message})
                }],
                "version": {"image": c.pointer("/spec/cephVersion/image").cloned().unwrap_or(json!("quay.io/ceph/ceph")), "version": "17.2.5-0"}
            });
            // observedGeneration is written with the Ready condition only.
            match (ready, prev_gen) {
                (true, _) => status["observedGeneration"] = json!(generation),
                (false, Some(g)) => status["observedGeneration"] = json!(g),
                _ => {}
            }
            if let Some(st_obj) = status.pointer_mut("/ceph/capacity/lastUpdated") {
                // Keep the status stable between reconciles so a converged cluster does not churn.
                *st_obj = prev
                    .pointer("/ceph/capacity/lastUpdated")
                    .cloned()
                    .unwrap_or_else(|| json!(crate::foundation::time::now_rfc3339()));
            }
            st.set_status("ceph.rook.io", "cephclusters", &ns, &name, status);
            if ready {
                let pools: Vec<Value> =
                    st.list("ceph.rook.io", "cephblockpools", Some(&ns)).into_iter().cloned().collect();
                for p in pools {
                    let g = p["metadata"]["generation"].as_i64().unwrap_or(1);
                    st.set_status(
                        "ceph.rook.io",
                        "cephblockpools",
                        &ns,
                        &name_of(&p),
                        json!({"phase": "Ready", "observedGeneration": g}),
                    );
                }
            }
        }
    }
}

pub struct StrimziOperator {
    pub step: Duration,
    /// The Kafka never becomes Ready (reconciliation keeps timing out).
    pub never_ready: Mutex<bool>,
    progress: Mutex<HashMap<String, (i64, Instant)>>,
}

impl StrimziOperator {
    pub fn new(step: Duration) -> StrimziOperator {
        StrimziOperator { step, never_ready: Mutex::new(false), progress: Mutex::new(HashMap::new()) }
    }
}

fn stable_port(seed: &str) -> u64 {
    let h = seed.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
    30000 + h % 2700
}

impl SimOperator for StrimziOperator {
    fn name(&self) -> &str {
        "strimzi"
    }

    fn reconcile(&self, st: &mut ApiState, now: Instant) {
        let kafkas: Vec<Value> = st.list("kafka.strimzi.io", "kafkas", None).into_iter().cloned().collect();
        let never = self.never_ready.lock().map(|n| *n).unwrap_or(false);
        for k in kafkas {
            let (ns, name) = (ns_of(&k), name_of(&k));
            if !st.deployment_available(&ns, "strimzi-cluster-operator") {
                continue;
            }
            let api_v1 = k["apiVersion"].as_str() == Some("kafka.strimzi.io/v1");
            let generation = k["metadata"]["generation"].as_i64().unwrap_or(1);
            let started = since_generation(&self.progress, &format!("{ns}/{name}"), generation, now);
            let elapsed = now.saturating_duration_since(started);
            // Node pools (KRaft, or node-pools enabled).
            let pools: Vec<Value> = st
                .list("kafka.strimzi.io", "kafkanodepools", Some(&ns))
                .into_iter()
                .filter(|p| {
                    p.pointer("/metadata/labels/strimzi.io~1cluster").and_then(Value::as_str) == Some(name.as_str())
                })
                .cloned()
                .collect();
            let uses_pools = api_v1
                || k.pointer("/metadata/annotations/strimzi.io~1node-pools").and_then(Value::as_str) == Some("enabled");
            let mut claims: Vec<(String, Value, String)> = Vec::new(); // pvc name, size, class
            let vol = |s: &Value| -> Vec<(Value, String)> {
                match s["type"].as_str() {
                    Some("jbod") => s["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| (v["size"].clone(), v["class"].as_str().unwrap_or("").to_owned()))
                        .collect(),
                    Some("persistent-claim") => vec![(s["size"].clone(), s["class"].as_str().unwrap_or("").to_owned())],
                    _ => vec![],
                }
            };
            let mut next_id = 0u64;
            let mut pool_status = Vec::new();
            if uses_pools {
                for p in &pools {
                    let pname = name_of(p);
                    let replicas = p["spec"]["replicas"].as_u64().unwrap_or(0);
                    let ids: Vec<u64> = (next_id..next_id + replicas).collect();
                    next_id += replicas;
                    for id in &ids {
                        for (i, (size, class)) in vol(&p["spec"]["storage"]).into_iter().enumerate() {
                            claims.push((format!("data-{i}-{name}-{pname}-{id}"), size, class));
                        }
                    }
                    pool_status.push((
                        pname,
                        ids,
                        p["spec"]["roles"].clone(),
                        replicas,
                        p["metadata"]["generation"].as_i64().unwrap_or(1),
                    ));
                }
            } else {
                let replicas = k.pointer("/spec/kafka/replicas").and_then(Value::as_u64).unwrap_or(0);
                for id in 0..replicas {
                    for (size, class) in vol(&k["spec"]["kafka"]["storage"]) {
                        claims.push((format!("data-{name}-kafka-{id}"), size, class));
                    }
                }
            }
            if let Some(zk) = k.pointer("/spec/zookeeper") {
                for id in 0..zk["replicas"].as_u64().unwrap_or(0) {
                    for (size, class) in vol(&zk["storage"]) {
                        claims.push((format!("data-{name}-zookeeper-{id}"), size, class));
                    }
                }
            }
            if elapsed >= self.step {
                for (pvc, size, class) in &claims {
                    if st.get("", "persistentvolumeclaims", &ns, pvc).is_none() {
                        let mut spec =
                            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}});
                        if !class.is_empty() {
                            spec["storageClassName"] = json!(class);
                        }
                        st.put("", "persistentvolumeclaims", &ns, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": pvc, "labels": {"strimzi.io/cluster": name}}, "spec": spec}));
                    }
                }
            }
            let pending: Vec<String> = claims
                .iter()
                .filter(|(pvc, _, _)| {
                    st.get("", "persistentvolumeclaims", &ns, pvc)
                        .and_then(|p| p.pointer("/status/phase"))
                        .and_then(Value::as_str)
                        != Some("Bound")
                })
                .map(|(pvc, _, _)| pvc.clone())
                .collect();
            let has_roles = |role: &str| {
                pool_status
                    .iter()
                    .any(|(_, _, roles, n, _)| *n > 0 && roles.as_array().is_some_and(|r| r.iter().any(|x| x == role)))
            };
            let topology_ok = !uses_pools
                || k.pointer("/spec/zookeeper").is_some()
                || (has_roles("controller") && has_roles("broker"));
            let ready = elapsed >= self.step * 2 && pending.is_empty() && !never && topology_ok && !claims.is_empty();
            for (pname, ids, roles, replicas, g) in &pool_status {
                st.set_status("kafka.strimzi.io", "kafkanodepools", &ns, pname, json!({"nodeIds": ids, "roles": roles, "replicas": replicas, "observedGeneration": g, "clusterId": "sim-cluster-id"}));
            }
            let status = if ready {
                let node_host = st
                    .node_values()
                    .first()
                    .and_then(|n| {
                        n.pointer("/status/addresses").and_then(Value::as_array).and_then(|a| {
                            a.iter()
                                .find(|x| x["type"] == "Hostname")
                                .or(a.first())
                                .and_then(|x| x["address"].as_str().map(str::to_owned))
                        })
                    })
                    .unwrap_or_else(|| "node".into());
                let listeners: Vec<Value> = k.pointer("/spec/kafka/listeners").and_then(Value::as_array).into_iter().flatten().map(|l| {
                    let lname = l["name"].as_str().unwrap_or("plain");
                    let port = l["port"].as_u64().unwrap_or(9092);
                    let (host, p) = match l["type"].as_str() {
                        Some("nodeport") => (node_host.clone(), stable_port(&format!("{ns}/{name}/{lname}"))),
                        _ => (format!("{name}-kafka-bootstrap.{ns}.svc"), port),
                    };
                    let mut s = json!({"name": lname, "addresses": [{"host": host, "port": p}], "bootstrapServers": format!("{host}:{p}")});
                    if !api_v1 {
                        s["type"] = json!(lname);
                    }
                    s
                }).collect();
                let mut s = json!({
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": crate::foundation::time::now_rfc3339()}],
                    "observedGeneration": generation,
                    "listeners": listeners,
                    "clusterId": "sim-cluster-id",
                    "kafkaVersion": k.pointer("/spec/kafka/version").cloned().unwrap_or(Value::Null),
                    "kafkaMetadataState": if k.pointer("/spec/zookeeper").is_some() { "ZooKeeper" } else { "KRaft" },
                });
                if uses_pools {
                    s["kafkaNodePools"] =
                        json!(pool_status.iter().map(|(n, ..)| json!({"name": n})).collect::<Vec<_>>());
                }
                // Keep the timestamp stable once Ready (no churn on a converged cluster).
                if let Some(prev) = k.pointer("/status/conditions/0/lastTransitionTime")
                    && k.pointer("/status/conditions/0/type") == Some(&json!("Ready"))
                {
                    s["conditions"][0]["lastTransitionTime"] = prev.clone();
                }
                s
            } else {
                let (reason, message) = if !pending.is_empty() && elapsed >= self.step {
                    (
                        "TimeoutException",
                        format!(
                            "Exceeded timeout of 300000ms while waiting for PersistentVolumeClaims to be bound: {}",
                            pending.join(", ")
                        ),
                    )
                } else if never && elapsed >= self.step * 2 {
                    (
                        "TimeoutException",
                        "Exceeded timeout of 300000ms while waiting for Pods resource my-cluster-kafka-0 to be ready"
                            .to_owned(),
                    )
                } else if !topology_ok {
                    (
                        "InvalidResourceException",
                        "The Kafka cluster has no node pools with the controller and broker roles".to_owned(),
                    )
                } else {
                    ("Creating", "Kafka cluster is being deployed".to_owned())
                };
                let mut s = json!({"conditions": [{"type": "NotReady", "status": "True", "reason": reason, "message": message}]});
                if let Some(og) = k.pointer("/status/observedGeneration") {
                    s["observedGeneration"] = og.clone();
                }
                s
            };
            st.set_status("kafka.strimzi.io", "kafkas", &ns, &name, status);
        }
    }
}
