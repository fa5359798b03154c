//! The simulated Strimzi entity operator (Topic and User Operators) and the bridge part of
//! the cluster operator, after docs/apps.md §1–§2:
//! - a KafkaTopic is reconciled only when its `strimzi.io/cluster` Kafka is Ready and has
//!   `entityOperator.topicOperator`; it becomes Ready at its generation with
//!   `status.topicName`, or Ready=False with the Topic Operator's reasons and texts
//!   (NotSupported for fewer partitions, a changed replica count or a new `topicName`;
//!   KafkaError for more replicas than brokers); `strimzi.io/managed: "false"` makes it
//!   Unmanaged. The topics "in Kafka" are kept apart from the objects, so a deleted
//!   KafkaTopic deletes its topic (recorded in `deleted_topics`) and an unmanaged one keeps it;
//! - a KafkaUser needs `entityOperator.userOperator`; ACLs without `authorization: simple`
//!   and a TLS name over 64 characters are InvalidResourceException; otherwise the Secret
//!   named like the user holds the documented keys (SCRAM: `password` of 32 characters and
//!   `sasl.jaas.config`; TLS: `ca.crt`, `user.crt`, `user.key`, `user.p12`, `user.password`),
//!   kept across reconciles and deleted with the user;
//! - a Ready Kafka gets its `<cluster>-cluster-ca-cert` Secret;
//! - a KafkaBridge gets its Deployment `<name>-bridge`, ClusterIP Service
//!   `<name>-bridge-service` (`rest-api`, and `rest-api-mgmt` 8081 from 1.0), ConfigMap and
//!   PDB; it is Ready with `status.url` once the Deployment is Available.

use super::apiserver::{ApiState, SimOperator};
use super::operators::{image_minor, name_of, ns_of, since_generation};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const GROUP: &str = "kafka.strimzi.io";

/// A topic as Kafka has it.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSideTopic {
    pub partitions: u64,
    pub replicas: u64,
}

pub struct StrimziAppsOperator {
    pub step: Duration,
    /// Topics in Kafka, `ns/cluster/topic`.
    pub topics: Mutex<BTreeMap<String, KafkaSideTopic>>,
    /// Each topic deleted in Kafka because its KafkaTopic was deleted, `ns/cluster/topic`.
    pub deleted_topics: Mutex<Vec<String>>,
    /// KafkaTopics seen (key `ns/name`) and the Kafka topic each manages (None: unmanaged).
    seen: Mutex<HashMap<String, Option<String>>>,
    progress: Mutex<HashMap<String, (i64, Instant)>>,
    secrets: Mutex<u64>,
}

impl StrimziAppsOperator {
    pub fn new(step: Duration) -> StrimziAppsOperator {
        StrimziAppsOperator {
            step,
            topics: Mutex::new(BTreeMap::new()),
            deleted_topics: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            secrets: Mutex::new(0),
        }
    }

    /// A generated credential (not secret in a simulator, but of the real length and alphabet).
    fn credential(&self, len: usize) -> String {
        let mut n = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        let seed = format!("{:?}{}", Instant::now(), *n);
        let mut h: u64 = 1469598103934665603;
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|i| {
                for b in seed.bytes().chain([i as u8]) {
                    h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
                }
                alphabet[(h % alphabet.len() as u64) as usize] as char
            })
            .collect()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ready_kafka(st: &ApiState, ns: &str, name: &str) -> Option<Value> {
    let k = st.get(GROUP, "kafkas", ns, name)?;
    let ready = k
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    ready.then(|| k.clone())
}

fn cluster_label(v: &Value) -> Option<String> {
    v.pointer("/metadata/labels/strimzi.io~1cluster").and_then(Value::as_str).map(str::to_owned)
}

fn brokers(st: &ApiState, ns: &str, cluster: &str) -> u64 {
    st.list("", "pods", Some(ns))
        .into_iter()
        .filter(|p| {
            cluster_label(p).as_deref() == Some(cluster)
                && p.pointer("/metadata/labels/strimzi.io~1broker-role").and_then(Value::as_str) == Some("true")
        })
        .count() as u64
}

fn condition(kind: &str, status: &str, reason: Option<&str>, message: Option<&str>) -> Value {
    let mut c = json!({"type": kind, "status": status, "lastTransitionTime": crate::foundation::time::now_rfc3339()});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// Sets a status unless only the condition's timestamp would change (no churn when settled).
fn set_status(st: &mut ApiState, plural: &str, ns: &str, name: &str, mut s: Value) {
    if let Some(prev) = st.get(GROUP, plural, ns, name).and_then(|o| o.get("status")).cloned() {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(o) = c.as_object_mut() {
                        o.remove("lastTransitionTime");
                    }
                }
            }
            v
        };
        if strip(&prev) == strip(&s) {
            return;
        }
        if let (Some(old), Some(new)) = (prev.pointer("/conditions/0"), s.pointer_mut("/conditions/0"))
            && old["type"] == new["type"]
            && old["status"] == new["status"]
        {
            new["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
    }
    st.set_status(GROUP, plural, ns, name, s);
}

fn secret(ns: &str, name: &str, labels: Value, owner: Option<&Value>, data: &[(&str, String)]) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": data.iter().map(|(k, v)| ((*k).to_owned(), json!(b64(v)))).collect::<serde_json::Map<_, _>>()
    });
    if let Some(o) = owner {
        s["metadata"]["ownerReferences"] = json!([{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": name_of(o),
            "uid": o["metadata"]["uid"], "controller": false, "blockOwnerDeletion": false}]);
    }
    s
}

fn pem(kind: &str, body: &str) -> String {
    format!("-----BEGIN {kind}-----\n{}\n-----END {kind}-----\n", b64(body))
}

impl StrimziAppsOperator {
    fn cluster_ca(&self, st: &mut ApiState) {
        let kafkas: Vec<(String, String)> =
            st.list(GROUP, "kafkas", None).into_iter().map(|k| (ns_of(k), name_of(k))).collect();
        for (ns, name) in kafkas {
            let sname = format!("{name}-cluster-ca-cert");
            if ready_kafka(st, &ns, &name).is_none() || st.get("", "secrets", &ns, &sname).is_some() {
                continue;
            }
            let labels = json!({"strimzi.io/kind": "Kafka", "strimzi.io/cluster": name});
            let s = secret(
                &ns,
                &sname,
                labels,
                None,
                &[
                    ("ca.crt", pem("CERTIFICATE", &format!("simulated cluster CA of {ns}/{name}"))),
                    ("ca.p12", format!("simulated PKCS#12 of {name}")),
                    ("ca.password", self.credential(12)),
                ],
            );
            st.put("", "secrets", &ns, s);
        }
    }

    fn topics(&self, st: &mut ApiState, now: Instant) {
        let objs: Vec<Value> = st.list(GROUP, "kafkatopics", None).into_iter().cloned().collect();
        let mut present = HashMap::new();
        for t in objs {
            let (ns, name) = (ns_of(&t), name_of(&t));
            let key = format!("{ns}/{name}");
            let Some(cluster) = cluster_label(&t) else { continue };
            let Some(k) = ready_kafka(st, &ns, &cluster) else {
                present.insert(key.clone(), self.seen.lock().ok().and_then(|s| s.get(&key).cloned()).flatten());
                continue;
            };
            if k.pointer("/spec/entityOperator/topicOperator").is_none() {
                continue; // nobody watches it: no status
            }
            let generation = t["metadata"]["generation"].as_i64().unwrap_or(1);
            let started = since_generation(&self.progress, &format!("topic/{key}"), generation, now);
            if now.saturating_duration_since(started) < self.step {
                present.insert(key.clone(), self.seen.lock().ok().and_then(|s| s.get(&key).cloned()).flatten());
                continue;
            }
            let topic_name = t.pointer("/spec/topicName").and_then(Value::as_str).unwrap_or(&name).to_owned();
            let kafka_key = format!("{ns}/{cluster}/{topic_name}");
            let unmanaged =
                t.pointer("/metadata/annotations/strimzi.io~1managed").and_then(Value::as_str) == Some("false");
            let prev_name = t.pointer("/status/topicName").and_then(Value::as_str).map(str::to_owned);
            let mut status = json!({"observedGeneration": generation});
            if unmanaged {
                present.insert(key.clone(), None);
                status["conditions"] = json!([condition("Unmanaged", "True", None, None)]);
                if let Some(n) = prev_name {
                    status["topicName"] = json!(n);
                }
                set_status(st, "kafkatopics", &ns, &name, status);
                continue;
            }
            if let Some(pn) = prev_name.as_ref().filter(|pn| **pn != topic_name) {
                present.insert(key.clone(), Some(format!("{ns}/{cluster}/{pn}")));
                status["topicName"] = json!(pn);
                status["conditions"] = json!([condition(
                    "Ready",
                    "False",
                    Some("NotSupported"),
                    Some("Changing spec.topicName is not supported, the original value was restored")
                )]);
                set_status(st, "kafkatopics", &ns, &name, status);
                continue;
            }
            present.insert(key.clone(), Some(kafka_key.clone()));
            let max = brokers(st, &ns, &cluster);
            let want_p = t.pointer("/spec/partitions").and_then(Value::as_u64).unwrap_or(1);
            let want_r = t.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(max.min(3));
            let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
            let failure = match topics.get(&kafka_key) {
                None if want_r > max => Some((
                    "KafkaError",
                    format!(
                        "org.apache.kafka.common.errors.InvalidReplicationFactorException: Replication factor: {want_r} larger than available brokers: {max}."
                    ),
                )),
                None => {
                    topics.insert(kafka_key.clone(), KafkaSideTopic { partitions: want_p, replicas: want_r });
                    None
                }
                Some(have) if want_p < have.partitions => {
                    Some(("NotSupported", "Decreasing partitions not supported".to_owned()))
                }
                Some(have) if want_r != have.replicas => Some((
                    "NotSupported",
                    "Replication factor change not supported, but required for partitions [0]".to_owned(),
                )),
                Some(_) => {
                    topics.insert(kafka_key.clone(), KafkaSideTopic { partitions: want_p, replicas: want_r });
                    None
                }
            };
            drop(topics);
            status["topicName"] = json!(topic_name);
            status["conditions"] = match failure {
                None => json!([condition("Ready", "True", None, None)]),
                Some((reason, message)) => json!([condition("Ready", "False", Some(reason), Some(&message))]),
            };
            set_status(st, "kafkatopics", &ns, &name, status);
        }
        // A KafkaTopic that is gone deleted its topic (unless it had been let go).
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for (key, managed) in seen.iter() {
            if present.contains_key(key) {
                continue;
            }
            if let Some(kk) = managed {
                let gone = self.topics.lock().ok().and_then(|mut t| t.remove(kk));
                if gone.is_some()
                    && let Ok(mut d) = self.deleted_topics.lock()
                {
                    d.push(kk.clone());
                }
            }
        }
        *seen = present;
    }

    fn users(&self, st: &mut ApiState, now: Instant) {
        let objs: Vec<Value> = st.list(GROUP, "kafkausers", None).into_iter().cloned().collect();
        for u in &objs {
            let (ns, name) = (ns_of(u), name_of(u));
            let Some(cluster) = cluster_label(u) else { continue };
            let Some(k) = ready_kafka(st, &ns, &cluster) else { continue };
            if k.pointer("/spec/entityOperator/userOperator").is_none() {
                continue;
            }
            let generation = u["metadata"]["generation"].as_i64().unwrap_or(1);
            let started = since_generation(&self.progress, &format!("user/{ns}/{name}"), generation, now);
            if now.saturating_duration_since(started) < self.step {
                continue;
            }
            let auth = u.pointer("/spec/authentication/type").and_then(Value::as_str).map(str::to_owned);
            let has_acls =
                u.pointer("/spec/authorization/acls").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            let simple = k.pointer("/spec/kafka/authorization/type").and_then(Value::as_str) == Some("simple");
            let invalid = if has_acls && !simple {
                Some(
                    "Simple authorization ACL rules are configured but not supported in the Kafka cluster configuration.",
                )
            } else if auth.as_deref() == Some("tls") && name.len() > 64 {
                Some(
                    "Users with TLS client authentication can have a username (name of the KafkaUser custom resource) only up to 64 characters long.",
                )
            } else {
                None
            };
            let mut status = json!({"observedGeneration": generation});
            if let Some(m) = invalid {
                status["conditions"] =
                    json!([condition("NotReady", "True", Some("InvalidResourceException"), Some(m))]);
                set_status(st, "kafkausers", &ns, &name, status);
                continue;
            }
            let labels = json!({"strimzi.io/kind": "KafkaUser", "strimzi.io/cluster": cluster});
            let existing = st.get("", "secrets", &ns, &name).cloned();
            let kind_of = |s: &Value| {
                if s.pointer("/data/sasl.jaas.config").is_some() {
                    "scram-sha-512"
                } else if s.pointer("/data/user.crt").is_some() {
                    "tls"
                } else {
                    ""
                }
            };
            match auth.as_deref() {
                Some(a @ ("scram-sha-512" | "tls")) if existing.as_ref().map(kind_of) != Some(a) => {
                    let data = if a == "scram-sha-512" {
                        let pw = self.credential(32);
                        let jaas = format!(
                            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{name}\" password=\"{pw}\";"
                        );
                        vec![("password", pw), ("sasl.jaas.config", jaas)]
                    } else {
                        vec![
                            ("ca.crt", pem("CERTIFICATE", &format!("simulated clients CA of {ns}/{cluster}"))),
                            ("user.crt", pem("CERTIFICATE", &format!("CN={name}"))),
                            ("user.key", pem("PRIVATE KEY", &format!("key of {name}"))),
                            ("user.p12", format!("simulated PKCS#12 of {name}")),
                            ("user.password", self.credential(12)),
                        ]
                    };
                    st.put("", "secrets", &ns, secret(&ns, &name, labels, Some(u), &data));
                }
                Some("scram-sha-512" | "tls") => {}
                _ => {
                    if existing.is_some() {
                        st.delete("", "secrets", &ns, &name);
                    }
                }
            }
            status["conditions"] = json!([condition("Ready", "True", None, None)]);
            if let Some(a) = &auth {
                status["username"] = json!(if a == "tls" { format!("CN={name}") } else { name.clone() });
                if a != "tls-external" {
                    status["secret"] = json!(name);
                }
            }
            set_status(st, "kafkausers", &ns, &name, status);
        }
        // Secrets of deleted users go with them (their owner reference).
        let orphans: Vec<(String, String)> = st
            .list("", "secrets", None)
            .into_iter()
            .filter(|s| s.pointer("/metadata/labels/strimzi.io~1kind").and_then(Value::as_str) == Some("KafkaUser"))
            .map(|s| (ns_of(s), name_of(s)))
            .filter(|(ns, n)| st.get(GROUP, "kafkausers", ns, n).is_none())
            .collect();
        for (ns, n) in orphans {
            st.delete("", "secrets", &ns, &n);
        }
    }

    fn bridges(&self, st: &mut ApiState) {
        let objs: Vec<Value> = st.list(GROUP, "kafkabridges", None).into_iter().cloned().collect();
        for b in &objs {
            let (ns, name) = (ns_of(b), name_of(b));
            let Some(rel) = image_minor(st, &ns, "strimzi-cluster-operator") else { continue };
            if !st.deployment_available(&ns, "strimzi-cluster-operator") {
                continue;
            }
            let generation = b["metadata"]["generation"].as_i64().unwrap_or(1);
            let replicas = b.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1);
            let port = b.pointer("/spec/http/port").and_then(Value::as_u64).unwrap_or(8080);
            let labels = json!({"strimzi.io/cluster": name, "strimzi.io/kind": "KafkaBridge", "strimzi.io/name": format!("{name}-bridge")});
            let owner = json!([{"apiVersion": b["apiVersion"], "kind": "KafkaBridge", "name": name, "uid": b["metadata"]["uid"], "controller": false}]);
            let mut ports = vec![json!({"name": "rest-api", "port": port, "protocol": "TCP", "targetPort": port})];
            if rel >= (1, 0) {
                ports.push(json!({"name": "rest-api-mgmt", "port": 8081, "protocol": "TCP", "targetPort": 8081}));
            }
            let svc_name = format!("{name}-bridge-service");
            let cluster_ip = st
                .get("", "services", &ns, &svc_name)
                .and_then(|s| s.pointer("/spec/clusterIP").cloned())
                .unwrap_or_else(|| json!("10.152.183.200"));
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc_name, "namespace": ns, "labels": labels, "ownerReferences": owner},
                "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": ports,
                         "selector": {"strimzi.io/cluster": name, "strimzi.io/kind": "KafkaBridge", "strimzi.io/name": format!("{name}-bridge")}}});
            st.put("", "services", &ns, svc);
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{name}-bridge-config"), "namespace": ns, "labels": labels, "ownerReferences": owner},
                "data": {"application.properties": format!("bridge.id={name}\nkafka.bootstrap.servers={}\nhttp.port={port}\n",
                    b.pointer("/spec/bootstrapServers").and_then(Value::as_str).unwrap_or_default())}});
            st.put("", "configmaps", &ns, cm);
            let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": format!("{name}-bridge"), "namespace": ns, "labels": labels, "ownerReferences": owner},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"strimzi.io/cluster": name, "strimzi.io/kind": "KafkaBridge"}}}});
            st.put("policy", "poddisruptionbudgets", &ns, pdb);
            let dname = format!("{name}-bridge");
            let image = format!("quay.io/strimzi/kafka-bridge:sim-{}.{}", rel.0, rel.1);
            let dep_spec = json!({"replicas": replicas, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels},
                             "spec": {"containers": [{"name": dname, "image": image, "ports": [{"name": "rest-api", "containerPort": port}]}]}}});
            let unchanged = st.get("apps", "deployments", &ns, &dname).is_some_and(|d| d["spec"] == dep_spec);
            if !unchanged {
                let prev_gen = st
                    .get("apps", "deployments", &ns, &dname)
                    .and_then(|d| d.pointer("/metadata/generation").and_then(Value::as_i64))
                    .unwrap_or(0);
                st.put("apps", "deployments", &ns, json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": dname, "namespace": ns, "labels": labels, "ownerReferences": owner, "generation": prev_gen + 1},
                    "spec": dep_spec}));
            }
            let available = replicas == 0 || (unchanged && st.deployment_available(&ns, &dname));
            let mut status = json!({"observedGeneration": generation, "replicas": replicas,
                "labelSelector": format!("strimzi.io/cluster={name},strimzi.io/name={name}-bridge,strimzi.io/kind=KafkaBridge")});
            if replicas > 0 {
                status["url"] = json!(format!("http://{svc_name}.{ns}.svc:{port}"));
            }
            status["conditions"] = if available {
                json!([condition("Ready", "True", None, None)])
            } else {
                json!([condition(
                    "NotReady",
                    "True",
                    Some("Creating"),
                    Some("Waiting for the bridge Deployment to be ready")
                )])
            };
            if !available && let Some(og) = b.pointer("/status/observedGeneration") {
                status["observedGeneration"] = og.clone();
            }
            set_status(st, "kafkabridges", &ns, &name, status);
        }
        // Objects of deleted bridges go with them.
        let orphans: Vec<(String, String, String, String)> = [
            ("apps", "deployments", "-bridge"),
            ("", "services", "-bridge-service"),
            ("", "configmaps", "-bridge-config"),
            ("policy", "poddisruptionbudgets", "-bridge"),
        ]
        .iter()
        .flat_map(|(g, p, suffix)| {
            st.list(g, p, None)
                .into_iter()
                .filter(|o| {
                    o.pointer("/metadata/labels/strimzi.io~1kind").and_then(Value::as_str) == Some("KafkaBridge")
                })
                .filter(|o| o["metadata"]["ownerReferences"].is_array())
                .filter(|o| {
                    let n = name_of(o);
                    let bridge = n.strip_suffix(suffix).unwrap_or(&n).to_owned();
                    st.get(GROUP, "kafkabridges", &ns_of(o), &bridge).is_none()
                })
                .map(|o| ((*g).to_owned(), (*p).to_owned(), ns_of(o), name_of(o)))
                .collect::<Vec<_>>()
        })
        .collect();
        for (g, p, ns, n) in orphans {
            st.delete(&g, &p, &ns, &n);
        }
    }
}

impl SimOperator for StrimziAppsOperator {
    fn name(&self) -> &str {
        "strimzi-entity-operator"
    }

    fn reconcile(&self, st: &mut ApiState, now: Instant) {
        self.cluster_ca(st);
        self.topics(st, now);
        self.users(st, now);
        self.bridges(st);
    }
}
