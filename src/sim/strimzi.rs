//! The simulated Strimzi cluster operator, per release. The release is the tag of the
//! `strimzi-cluster-operator` Deployment's image and the Kafka versions it runs are the
//! keys of that Deployment's `STRIMZI_KAFKA_IMAGES` (the real install files say both). It
//! creates the PVCs (they must bind), the broker, controller and ZooKeeper pods (each on
//! the image `STRIMZI_KAFKA_IMAGES` names), the PodDisruptionBudgets, node IDs per node pool
//! (kept once given), and the status the release writes (docs/day2.md §3.2: no
//! `kafkaVersion` before 0.37, `kafkaMetadataState` 0.40–1.0). A changed image or broker
//! configuration rolls the brokers one at a time, the status keeping its last reconcile
//! (Ready, the old generation) until the roll ends. It refuses an unsupported
//! `spec.kafka.version` with Strimzi's text, enforces the migration prerequisites with
//! KRaftUtils' text, and walks the `kafkaMetadataState` machine of a ZooKeeper → KRaft
//! migration (and its rollback). Facts: docs/day2.md §2.4, docs/simulators.md.

use super::apiserver::{ApiState, SimOperator, node_ready, node_schedulable, node_tainted};
use super::operators::{name_of, ns_of, since_generation};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct StrimziOperator {
    pub step: Duration,
    /// Kubernetes force-detaches a volume from an unhealthy node after this long (6 minutes;
    /// docs/day2.md §1.1); until then a broker that moved waits on `Multi-Attach`.
    pub force_detach: Duration,
    /// The Kafka never becomes Ready (reconciliation keeps timing out).
    pub never_ready: Mutex<bool>,
    /// Reconciles during a roll that report the operation timeout (a slow roll, #7800) and
    /// recover on the next one.
    pub transient_timeouts: Mutex<u32>,
    /// Each change of a Kafka's metadata state, `ns/name: A → B`, in order.
    pub metadata_log: Mutex<Vec<String>>,
    /// Each pod restarted for a roll, in order.
    pub rolls: Mutex<Vec<String>>,
    /// Each change of a Kafka's operator release or `spec.kafka.version`, in order
    /// (`ns/name: strimzi 0.33.1 → 0.35.1`, `ns/name: kafka 3.3.2 → 3.4.0`).
    pub history: Mutex<Vec<String>>,
    seen: Mutex<HashMap<String, (String, String)>>,
    progress: Mutex<HashMap<String, (i64, Instant)>>,
    /// Kafkas in a roll (their status keeps the last reconcile).
    rolling: Mutex<HashSet<String>>,
}

impl StrimziOperator {
    pub fn new(step: Duration) -> StrimziOperator {
        StrimziOperator {
            step,
            force_detach: Duration::from_secs(360),
            never_ready: Mutex::new(false),
            transient_timeouts: Mutex::new(0),
            metadata_log: Mutex::new(Vec::new()),
            rolls: Mutex::new(Vec::new()),
            history: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            rolling: Mutex::new(HashSet::new()),
        }
    }
}

/// The running operator of a namespace: its release and `STRIMZI_KAFKA_IMAGES`.
struct Release {
    text: String,
    v: (u32, u32, u32),
    images: BTreeMap<String, String>,
}

impl Release {
    fn migrates(&self) -> bool {
        self.v >= (0, 40, 0) && self.v < (0, 46, 0)
    }
    fn zookeeper(&self) -> bool {
        self.v < (0, 46, 0)
    }
}

fn semver(s: &str) -> (u32, u32, u32) {
    let mut it = s.split(['.', '-']).map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn release(st: &ApiState, ns: &str) -> Option<Release> {
    if !super::operators::deployment_running(st, ns, "strimzi-cluster-operator") {
        return None;
    }
    let d = st.get("apps", "deployments", ns, "strimzi-cluster-operator")?;
    let c = d.pointer("/spec/template/spec/containers/0")?;
    let text = c["image"].as_str()?.rsplit_once(':')?.1.to_owned();
    let images = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "STRIMZI_KAFKA_IMAGES")
        .and_then(|e| e["value"].as_str())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    Some(Release { v: semver(&text), text, images })
}

fn mm(v: &str) -> String {
    let p = semver(v);
    format!("{}.{}", p.0, p.1)
}

fn stable_port(seed: &str) -> u64 {
    let h = seed.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
    30000 + h % 2700
}

fn hash(s: &str) -> String {
    format!("{:08x}", s.bytes().fold(2166136261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16777619)))
}

fn cfg(k: &Value, key: &str) -> Option<String> {
    let v = k.pointer("/spec/kafka/config")?.get(key)?;
    Some(v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
}

/// The brokers' security configuration: each listener's authentication and the
/// authorization (changing either rolls the brokers, docs/apps.md §1.1).
fn security(k: &Value) -> String {
    let listeners = k.pointer("/spec/kafka/listeners").and_then(Value::as_array).into_iter().flatten();
    let mut s: Vec<String> = listeners
        .map(|l| {
            format!(
                "{}:{}",
                l["name"].as_str().unwrap_or(""),
                l.pointer("/authentication/type").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    s.push(k.pointer("/spec/kafka/authorization/type").and_then(Value::as_str).unwrap_or("").to_owned());
    s.join(",")
}

/// The brokers' configuration token of a metadata state (what rolls them when it changes:
/// twice during the migration, once more into KRaft).
fn token(state: &str) -> &'static str {
    match state {
        "KRaftDualWriting" => "mig1",
        "KRaftPostMigration" | "PreKRaft" => "mig2",
        "KRaft" => "kraft",
        _ => "zk",
    }
}

/// A pod the operator wants: its claims, image and revision.
#[derive(Debug, Clone)]
struct Want {
    claims: Vec<String>,
    image: String,
    revision: String,
    broker: bool,
    controller: bool,
}

impl StrimziOperator {
    /// The pods of Kafka `ns/name`, one per node ID, each using its claims and on the image
    /// it is wanted on; the PodDisruptionBudgets Strimzi writes (`minAvailable` = pods − 1);
    /// pods placed on schedulable nodes, spread. A pod that was deleted (evicted,
    /// garbage-collected, rolled) is created again on a schedulable node; its volume follows
    /// only once it is detached from the old node: that node is Ready, gone, tainted
    /// out-of-service, or the force-detach time passed. Returns the pods that are not Ready.
    fn pods(&self, st: &mut ApiState, ns: &str, name: &str, want: &BTreeMap<String, Want>) -> Vec<String> {
        let nodes: HashMap<String, Value> = st
            .node_values()
            .into_iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(|s| (s.to_owned(), n.clone())))
            .collect();
        let mut not_ready = Vec::new();
        for component in ["kafka", "zookeeper"] {
            let mine: Vec<(&String, &Want)> = want
                .iter()
                .filter(|(p, _)| (component == "zookeeper") == p.starts_with(&format!("{name}-zookeeper-")))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let pdb = format!("{name}-{component}");
            let min = mine.len() as i64 - 1;
            // Strimzi's pods (through their StrimziPodSet) and PDBs go with the Kafka.
            let owner =
                json!([{"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "name": name, "controller": true}]);
            if st
                .get("policy", "poddisruptionbudgets", ns, &pdb)
                .and_then(|p| p.pointer("/spec/minAvailable").and_then(Value::as_i64))
                != Some(min)
            {
                st.put("policy", "poddisruptionbudgets", ns, json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": pdb, "namespace": ns, "labels": {"strimzi.io/cluster": name}, "ownerReferences": owner}, "spec": {"minAvailable": min, "selector": {"matchLabels": {"strimzi.io/name": pdb}}}}));
            }
            for (pod, w) in mine {
                let existing = st.get("", "pods", ns, pod).cloned();
                let node = match &existing {
                    Some(p) => p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    None => {
                        let mut load: Vec<(usize, String)> = nodes
                            .iter()
                            .filter(|(_, n)| node_schedulable(n))
                            .map(|(nn, _)| {
                                let c = st
                                    .list("", "pods", Some(ns))
                                    .iter()
                                    .filter(|p| {
                                        p.pointer("/metadata/labels/strimzi.io~1cluster").and_then(Value::as_str)
                                            == Some(name)
                                            && p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(nn.as_str())
                                    })
                                    .count();
                                (c, nn.clone())
                            })
                            .collect();
                        load.sort();
                        let Some((_, nn)) = load.into_iter().next() else {
                            not_ready.push(pod.clone());
                            continue;
                        };
                        let mut labels =
                            json!({"strimzi.io/cluster": name, "strimzi.io/name": pdb, "strimzi.io/kind": "Kafka"});
                        if w.broker {
                            labels["strimzi.io/broker-role"] = json!("true");
                        }
                        if w.controller {
                            labels["strimzi.io/controller-role"] = json!("true");
                        }
                        st.put("", "pods", ns, json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod, "namespace": ns, "labels": labels, "annotations": {"strimzi.io/revision": w.revision}, "ownerReferences": owner},
                            "spec": {"nodeName": nn, "containers": [{"name": component, "image": w.image}],
                                     "volumes": w.claims.iter().map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}})).collect::<Vec<_>>()},
                            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
                        }));
                        nn
                    }
                };
                let age = st.age("", "pods", ns, pod).unwrap_or_default();
                let node_ok = nodes.get(&node).is_some_and(node_ready);
                let mut blocked = None;
                for c in &w.claims {
                    let attached = st.get("", "persistentvolumeclaims", ns, c).and_then(|v| {
                        v.pointer("/metadata/annotations/sim~1attached-to").and_then(Value::as_str).map(str::to_owned)
                    });
                    if let Some(m) = attached.filter(|m| *m != node)
                        && let Some(mn) = nodes.get(&m)
                        && !node_ready(mn)
                        && !node_tainted(mn, "node.kubernetes.io/out-of-service")
                        && age < self.force_detach
                    {
                        blocked = Some(format!(
                            "Multi-Attach error for volume \"{c}\" Volume is already exclusively attached to one node and can't be attached to another"
                        ));
                    }
                }
                if blocked.is_none() && node_ok {
                    for c in &w.claims {
                        if let Some(mut v) = st.get("", "persistentvolumeclaims", ns, c).cloned()
                            && v.pointer("/metadata/annotations/sim~1attached-to").and_then(Value::as_str)
                                != Some(node.as_str())
                        {
                            v["metadata"]["annotations"]["sim/attached-to"] = json!(node);
                            st.put("", "persistentvolumeclaims", ns, v);
                        }
                    }
                }
                let ready = node_ok && blocked.is_none() && age >= self.step.min(Duration::from_secs(30));
                let cond = if ready { "True" } else { "False" };
                if let Some(mut p) = st.get("", "pods", ns, pod).cloned()
                    && p.pointer("/status/conditions/0/status").and_then(Value::as_str) != Some(cond)
                {
                    p["status"] = json!({"phase": if ready { "Running" } else { "Pending" }, "conditions": [{"type": "Ready", "status": cond}], "message": blocked.clone().unwrap_or_default()});
                    let status = p["status"].clone();
                    st.set_status("", "pods", ns, pod, status);
                }
                if !ready {
                    not_ready.push(pod.clone());
                }
            }
        }
        not_ready
    }

    fn log_state(&self, key: &str, from: &str, to: &str) {
        if let Ok(mut l) = self.metadata_log.lock() {
            l.push(format!("{key}: {from} → {to}"));
        }
    }
}

/// The next metadata state of a migration from `state` with annotation `ann`, when the
/// current one is settled (`None`: stay).
fn next_state(state: &str, ann: Option<&str>, has_controllers: bool) -> Option<&'static str> {
    match (state, ann) {
        ("ZooKeeper", Some("migration")) => Some("KRaftMigration"),
        ("KRaftMigration", Some("migration" | "enabled")) => Some("KRaftDualWriting"),
        ("KRaftDualWriting", Some("migration" | "enabled")) => Some("KRaftPostMigration"),
        ("KRaftPostMigration", Some("enabled")) => Some("PreKRaft"),
        ("PreKRaft", Some("enabled")) => Some("KRaft"),
        ("KRaftPostMigration", Some("rollback")) => Some("KRaftDualWriting"),
        ("KRaftDualWriting", Some("disabled")) if !has_controllers => Some("ZooKeeper"),
        _ => None,
    }
}

/// KRaftUtils' check before a migration starts (`cluster-operator/.../model/KRaftUtils.java
/// @0.45.2`): the Kafka version, the metadata version, the protocol and the message format
/// are one value, 3.7 or newer (unset ones default to the Kafka version's).
fn migration_refusal(k: &Value) -> Option<String> {
    let v = k.pointer("/spec/kafka/version").and_then(Value::as_str).unwrap_or_default();
    let kv = mm(v);
    let md = k.pointer("/spec/kafka/metadataVersion").and_then(Value::as_str).map(str::to_owned);
    let ibp = cfg(k, "inter.broker.protocol.version");
    let lmf = cfg(k, "log.message.format.version");
    let eff = |x: &Option<String>| x.as_deref().map(|s| mm(s.split('-').next().unwrap_or(s))).unwrap_or(kv.clone());
    let aligned = [eff(&md), eff(&ibp), eff(&lmf)].iter().all(|x| *x == kv) && semver(v) >= (3, 7, 0);
    (!aligned).then(|| {
        format!(
            "Migration cannot be performed with Kafka version {v}, metadata version {}, inter.broker.protocol.version {}, log.message.format.version {}. Please make sure the Kafka version, metadata version, inter.broker.protocol.version and log.message.format.version are all set to the same value, which must be equal to, or higher than 3.7.0",
            md.as_deref().unwrap_or("null"),
            ibp.as_deref().unwrap_or("null"),
            lmf.as_deref().unwrap_or("null"),
        )
    })
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
            let key = format!("{ns}/{name}");
            let Some(rel) = release(st, &ns) else { continue };
            let generation = k["metadata"]["generation"].as_i64().unwrap_or(1);
            let prev_status = k.get("status").cloned().unwrap_or(Value::Null);
            let version = k
                .pointer("/spec/kafka/version")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| rel.images.keys().max_by_key(|v| semver(v)).cloned())
                .unwrap_or_default();
            if let (Ok(mut seen), Ok(mut h)) = (self.seen.lock(), self.history.lock()) {
                let e = seen.entry(key.clone()).or_insert_with(|| (rel.text.clone(), version.clone()));
                if e.0 != rel.text {
                    h.push(format!("{key}: strimzi {} → {}", e.0, rel.text));
                    e.0 = rel.text.clone();
                }
                if e.1 != version {
                    h.push(format!("{key}: kafka {} → {version}", e.1));
                    e.1 = version.clone();
                }
            }
            let Some(image) = rel.images.get(&version).cloned() else {
                // `KafkaVersion.java`: the release does not run this version; nothing rolls.
                let supported: Vec<&str> = rel.images.keys().map(String::as_str).collect();
                let mut s = json!({"conditions": [{"type": "NotReady", "status": "True", "reason": "UnsupportedKafkaVersionException",
                    "message": format!("Unsupported Kafka.spec.kafka.version: {version}. Supported versions are: [{}]", supported.join(", "))}]});
                if let Some(og) = prev_status.get("observedGeneration") {
                    s["observedGeneration"] = og.clone();
                }
                st.set_status("kafka.strimzi.io", "kafkas", &ns, &name, s);
                continue;
            };
            let started = since_generation(&self.progress, &key, generation, now);
            let elapsed = now.saturating_duration_since(started);
            let ann = k.pointer("/metadata/annotations/strimzi.io~1kraft").and_then(Value::as_str).map(str::to_owned);
            let has_zk_spec = k.pointer("/spec/zookeeper").is_some();
            let mut state = prev_status
                .get("kafkaMetadataState")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| if has_zk_spec { "ZooKeeper".into() } else { "KRaft".into() });
            if !rel.migrates() && !matches!(state.as_str(), "ZooKeeper" | "KRaft") {
                state = if has_zk_spec { "ZooKeeper".into() } else { "KRaft".into() };
            }
            let zk_gone = matches!(state.as_str(), "PreKRaft" | "KRaft");
            // Node pools (KRaft, or node-pools enabled; always from 0.48).
            let pools: Vec<Value> = st
                .list("kafka.strimzi.io", "kafkanodepools", Some(&ns))
                .into_iter()
                .filter(|p| {
                    p.pointer("/metadata/labels/strimzi.io~1cluster").and_then(Value::as_str) == Some(name.as_str())
                })
                .cloned()
                .collect();
            let uses_pools = rel.v >= (0, 48, 0)
                || k.pointer("/metadata/annotations/strimzi.io~1node-pools").and_then(Value::as_str) == Some("enabled");
            let has_controllers = pools.iter().any(|p| {
                p["spec"]["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "controller"))
                    && p["spec"]["replicas"].as_u64().unwrap_or(0) > 0
            });
            // A refusal of the migration's prerequisites leaves everything as it is.
            if state == "ZooKeeper" && ann.as_deref() == Some("migration") && rel.migrates() {
                let why = migration_refusal(&k)
                    .or_else(|| {
                        (!uses_pools)
                            .then(|| "The Kafka cluster must use KafkaNodePools to be migrated to KRaft".to_owned())
                    })
                    .or_else(|| {
                        (!has_controllers).then(|| {
                            "Migration cannot be performed without a KafkaNodePool with the controller role".to_owned()
                        })
                    });
                if let Some(why) = why {
                    let mut s = prev_status.clone();
                    s["conditions"] = json!([{"type": "NotReady", "status": "True", "reason": "InvalidResourceException", "message": why}]);
                    st.set_status("kafka.strimzi.io", "kafkas", &ns, &name, s);
                    continue;
                }
            }
            let mut claims: Vec<(String, Value, String)> = Vec::new(); // pvc name, size, class
            let mut want: BTreeMap<String, Want> = BTreeMap::new();
            let vol = |s: &Value| -> Vec<(Option<u64>, Value, String)> {
                match s["type"].as_str() {
                    Some("jbod") => s["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| {
                            (
                                Some(v["id"].as_u64().unwrap_or(0)),
                                v["size"].clone(),
                                v["class"].as_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect(),
                    Some("persistent-claim") => {
                        vec![(None, s["size"].clone(), s["class"].as_str().unwrap_or("").to_owned())]
                    }
                    _ => vec![],
                }
            };
            let revision_of = |broker: bool, tok: &str| {
                let k = &k;
                hash(&format!(
                    "{image}|{}|{}|{}|{}|{}",
                    if broker { tok } else { "" },
                    if broker { security(k) } else { String::new() },
                    cfg(k, "inter.broker.protocol.version").unwrap_or_default(),
                    cfg(k, "log.message.format.version").unwrap_or_default(),
                    k.pointer("/spec/kafka/metadataVersion").and_then(Value::as_str).unwrap_or_default()
                ))
            };
            // The state the brokers are being taken to, and its configuration token.
            let target_state = if rel.migrates() { next_state(&state, ann.as_deref(), has_controllers) } else { None };
            let tok = token(target_state.unwrap_or(&state));
            let mut pool_status = Vec::new();
            if uses_pools {
                // IDs once given stay.
                let mut used: HashSet<u64> = HashSet::new();
                let mut given: Vec<(String, Vec<u64>)> = Vec::new();
                for p in &pools {
                    let replicas = p["spec"]["replicas"].as_u64().unwrap_or(0) as usize;
                    let ids: Vec<u64> = p
                        .pointer("/status/nodeIds")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    if ids.len() == replicas {
                        used.extend(ids.iter().copied());
                        given.push((name_of(p), ids));
                    }
                }
                // The pool `kafka` of a ZooKeeper cluster takes over its brokers' IDs 0..n.
                if has_zk_spec
                    && pools.iter().any(|p| name_of(p) == "kafka")
                    && !given.iter().any(|(g, _)| g == "kafka")
                {
                    let n = k.pointer("/spec/kafka/replicas").and_then(Value::as_u64).unwrap_or(0);
                    used.extend(0..n);
                    given.push(("kafka".into(), (0..n).collect()));
                }
                for p in &pools {
                    let pname = name_of(p);
                    let replicas = p["spec"]["replicas"].as_u64().unwrap_or(0);
                    let ids = match given.iter().find(|(g, _)| *g == pname) {
                        Some((_, ids)) => ids.clone(),
                        None => {
                            let mut ids = Vec::new();
                            let mut next = 0;
                            while (ids.len() as u64) < replicas {
                                if !used.contains(&next) {
                                    ids.push(next);
                                    used.insert(next);
                                }
                                next += 1;
                            }
                            ids
                        }
                    };
                    let roles = p["spec"]["roles"].clone();
                    let broker = roles.as_array().is_some_and(|r| r.iter().any(|x| x == "broker"));
                    let controller = roles.as_array().is_some_and(|r| r.iter().any(|x| x == "controller"));
                    for id in &ids {
                        let pod = format!("{name}-{pname}-{id}");
                        let mut cl = Vec::new();
                        for (vid, size, class) in vol(&p["spec"]["storage"]) {
                            let pvc = match vid {
                                Some(v) => format!("data-{v}-{name}-{pname}-{id}"),
                                None => format!("data-{name}-{pname}-{id}"),
                            };
                            claims.push((pvc.clone(), size, class));
                            cl.push(pvc);
                        }
                        want.insert(
                            pod,
                            Want {
                                claims: cl,
                                image: image.clone(),
                                revision: revision_of(broker, tok),
                                broker,
                                controller,
                            },
                        );
                    }
                    pool_status.push((pname, ids, roles, replicas, p["metadata"]["generation"].as_i64().unwrap_or(1)));
                }
            } else {
                let replicas = k.pointer("/spec/kafka/replicas").and_then(Value::as_u64).unwrap_or(0);
                for id in 0..replicas {
                    let mut cl = Vec::new();
                    for (_, size, class) in vol(&k["spec"]["kafka"]["storage"]) {
                        let pvc = format!("data-{name}-kafka-{id}");
                        claims.push((pvc.clone(), size, class));
                        cl.push(pvc);
                    }
                    want.insert(
                        format!("{name}-kafka-{id}"),
                        Want {
                            claims: cl,
                            image: image.clone(),
                            revision: revision_of(true, tok),
                            broker: true,
                            controller: false,
                        },
                    );
                }
            }
            if let Some(zk) = k.pointer("/spec/zookeeper").filter(|_| !zk_gone) {
                for id in 0..zk["replicas"].as_u64().unwrap_or(0) {
                    let mut cl = Vec::new();
                    for (_, size, class) in vol(&zk["storage"]) {
                        let pvc = format!("data-{name}-zookeeper-{id}");
                        claims.push((pvc.clone(), size, class));
                        cl.push(pvc);
                    }
                    want.insert(
                        format!("{name}-zookeeper-{id}"),
                        Want {
                            claims: cl,
                            image: image.clone(),
                            revision: hash(&image),
                            broker: false,
                            controller: false,
                        },
                    );
                }
            }
            // Pods and claims no longer wanted: ZooKeeper after PreKRaft (its claims when
            // `deleteClaim`), a deleted pool's pods.
            let stale: Vec<String> = st
                .list("", "pods", Some(&ns))
                .into_iter()
                .filter(|p| {
                    p.pointer("/metadata/labels/strimzi.io~1cluster").and_then(Value::as_str) == Some(name.as_str())
                })
                .map(name_of)
                .filter(|p| !want.contains_key(p) && (p.starts_with(&format!("{name}-zookeeper-")) || uses_pools))
                .collect();
            for p in stale {
                st.delete("", "pods", &ns, &p);
            }
            if zk_gone && k.pointer("/spec/zookeeper/storage/deleteClaim") == Some(&json!(true)) {
                for id in 0..k.pointer("/spec/zookeeper/replicas").and_then(Value::as_u64).unwrap_or(0) {
                    st.delete("", "persistentvolumeclaims", &ns, &format!("data-{name}-zookeeper-{id}"));
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
            let topology_ok =
                !uses_pools || (has_zk_spec && !zk_gone) || (has_roles("controller") && has_roles("broker"));
            let not_ready =
                if elapsed >= self.step && pending.is_empty() { self.pods(st, &ns, &name, &want) } else { vec![] };
            // A roll: every pod Ready, one on an old image or revision is restarted.
            let behind: Vec<String> = want
                .iter()
                .filter(|(p, w)| {
                    st.get("", "pods", &ns, p).is_some_and(|pod| {
                        pod.pointer("/spec/containers/0/image").and_then(Value::as_str) != Some(w.image.as_str())
                            || pod.pointer("/metadata/annotations/strimzi.io~1revision").and_then(Value::as_str)
                                != Some(w.revision.as_str())
                    })
                })
                .map(|(p, _)| p.clone())
                .collect();
            let in_roll =
                !behind.is_empty() || self.rolling.lock().is_ok_and(|r| r.contains(&key)) && !not_ready.is_empty();
            // Every wanted pod there and Ready (a roll restarts one pod at a time).
            let all_ready = want.keys().all(|p| {
                st.get("", "pods", &ns, p)
                    .is_some_and(|pod| pod.pointer("/status/conditions/0/status") == Some(&json!("True")))
            });
            if !behind.is_empty() && all_ready && not_ready.is_empty() && pending.is_empty() {
                // Brokers last (controllers first, as Strimzi's KafkaRoller orders them).
                let mut order = behind.clone();
                order.sort_by_key(|p| (want.get(p).is_some_and(|w| w.broker), p.clone()));
                let p = order[0].clone();
                st.delete("", "pods", &ns, &p);
                if let Ok(mut r) = self.rolls.lock() {
                    r.push(format!("{key}/{p}"));
                }
            }
            if let Ok(mut r) = self.rolling.lock() {
                if in_roll {
                    r.insert(key.clone());
                } else {
                    r.remove(&key);
                }
            }
            for (pname, ids, roles, replicas, g) in &pool_status {
                st.set_status("kafka.strimzi.io", "kafkanodepools", &ns, pname, json!({"nodeIds": ids, "roles": roles, "replicas": replicas, "observedGeneration": g, "clusterId": "sim-cluster-id"}));
            }
            let prev_ready =
                prev_status.pointer("/conditions/0").is_some_and(|c| c["type"] == "Ready" && c["status"] == "True");
            if in_roll && prev_ready && !never {
                // The status keeps the last reconcile until the roll ends; a slow one reports
                // the operation timeout once and recovers.
                let mut t = self.transient_timeouts.lock().unwrap_or_else(|e| e.into_inner());
                if *t > 0 {
                    *t -= 1;
                    let mut s = prev_status.clone();
                    s["conditions"] = json!([{"type": "NotReady", "status": "True", "reason": "TimeoutException",
                        "message": format!("Exceeded timeout of 300000ms while waiting for Pods resource {} in namespace {ns} to be ready", behind.first().cloned().unwrap_or_default())}]);
                    st.set_status("kafka.strimzi.io", "kafkas", &ns, &name, s);
                }
                continue;
            }
            let ready = elapsed >= self.step * 2
                && pending.is_empty()
                && !never
                && topology_ok
                && !claims.is_empty()
                && not_ready.is_empty()
                && all_ready
                && behind.is_empty();
            // Settled: the migration moves one state (its roll is done when the brokers carry
            // the next state's token).
            if ready && let Some(next) = target_state {
                let rolled = want.values().filter(|w| w.broker).all(|w| w.revision == revision_of(true, token(next)));
                if rolled && (next != "KRaftMigration" || has_controllers) {
                    self.log_state(&key, &state, next);
                    state = next.to_owned();
                }
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
                    if rel.v < (1, 0, 0) {
                        s["type"] = json!(lname);
                    }
                    s
                }).collect();
                let mut s = json!({
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": crate::foundation::time::now_rfc3339()}],
                    "observedGeneration": generation,
                    "listeners": listeners,
                    "clusterId": "sim-cluster-id",
                });
                if rel.v >= (0, 37, 0) {
                    s["operatorLastSuccessfulVersion"] = json!(rel.text);
                    s["kafkaVersion"] = json!(version);
                }
                if rel.v >= (0, 39, 0) {
                    s["kafkaMetadataVersion"] = json!(
                        k.pointer("/spec/kafka/metadataVersion")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| mm(&version))
                    );
                }
                if rel.v >= (0, 40, 0) && rel.v < (1, 1, 0) {
                    s["kafkaMetadataState"] = json!(state);
                }
                if uses_pools && rel.v >= (0, 36, 0) {
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
                let (reason, message) = if !rel.zookeeper() && has_zk_spec {
                    (
                        "InvalidResourceException",
                        "ZooKeeper-based Apache Kafka clusters are not supported anymore; migrate it to KRaft with Strimzi 0.45 first".to_owned(),
                    )
                } else if !pending.is_empty() && elapsed >= self.step {
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
                        format!(
                            "Exceeded timeout of 300000ms while waiting for Pods resource {name}-kafka-0 to be ready"
                        ),
                    )
                } else if let Some(p) = not_ready.first() {
                    ("NotReady", format!("Pod {p} is not ready"))
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
                if rel.v >= (0, 40, 0) && rel.v < (1, 1, 0) {
                    s["kafkaMetadataState"] = json!(state);
                }
                s
            };
            st.set_status("kafka.strimzi.io", "kafkas", &ns, &name, status);
        }
    }
}
