//! Strimzi: the pinned install files placed in the declared namespace (namespaced objects
//! get `metadata.namespace`, every binding's ServiceAccount subject is rewritten — no blind
//! text replace, which would also change the Kafka CRD's description), and the Kafka rendered
//! for the release: ZooKeeper mode up to 0.45, KRaft with KafkaNodePools (plus the opt-in
//! annotations where the release still needs them), the `v1` API from 1.0.

use crate::catalog::bundle::parse_manifest;
use crate::catalog::{FileRole, StrimziRelease};
use crate::config::model::MetadataMode;
use crate::config::{Kafka, VolumeClaim};
use crate::foundation::json::strip_nulls;
use anyhow::{Result, anyhow};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const NAMESPACED: &[&str] =
    &["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "Service", "Deployment", "Lease"];

/// Install objects for namespace `ns` (the Namespace first).
pub fn install_objects(rel: &StrimziRelease, files: &HashMap<String, String>, ns: &str) -> Result<Vec<Value>> {
    let mut out = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})];
    for f in rel.files.iter().filter(|f| f.role != FileRole::Template) {
        let text = files.get(&f.path).ok_or_else(|| anyhow!("{} was not downloaded", f.path))?;
        for mut o in parse_manifest(text, &f.path)? {
            let kind = o["kind"].as_str().unwrap_or("").to_owned();
            if NAMESPACED.contains(&kind.as_str()) {
                o["metadata"]["namespace"] = json!(ns);
            }
            if kind == "RoleBinding" || kind == "ClusterRoleBinding" {
                for s in o["subjects"].as_array_mut().into_iter().flatten() {
                    if s["kind"] == "ServiceAccount" {
                        s["namespace"] = json!(ns);
                    }
                }
            }
            strip_nulls(&mut o);
            out.push(o);
        }
    }
    Ok(out)
}

/// The node pool a ZooKeeper cluster's brokers move into (Strimzi's migration procedure
/// requires this name to keep node and PVC names).
pub const MIGRATED_POOL: &str = "kafka";

/// The KafkaNodePool `kafka` for the brokers of a ZooKeeper-mode Kafka `live` (its
/// `spec.kafka.replicas` and `storage` as they are), in API version `api`.
pub fn migrated_pool(live: &Value, api: &str) -> Option<Value> {
    let replicas = live.pointer("/spec/kafka/replicas")?.as_u64()?;
    let storage = live.pointer("/spec/kafka/storage")?.clone();
    Some(json!({
        "apiVersion": api, "kind": "KafkaNodePool",
        "metadata": {"name": MIGRATED_POOL, "namespace": live["metadata"]["namespace"], "labels": {"strimzi.io/cluster": live["metadata"]["name"]}},
        "spec": {"replicas": replicas, "roles": ["broker"], "storage": storage}
    }))
}

/// A Strimzi resource in `v1` form (what `v1-api-conversion.sh convert-resource` changes
/// for the resources homelab manages): the Kafka keeps no `spec.zookeeper` and no broker
/// `replicas`/`storage` (they live in node pools); a KafkaUser's ACL `operation` becomes
/// `operations`. Returns whether anything changed.
pub fn to_v1_form(obj: &mut Value) -> bool {
    let mut changed = false;
    match obj["kind"].as_str() {
        Some("Kafka") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                changed |= spec.remove("zookeeper").is_some();
                if let Some(k) = spec.get_mut("kafka").and_then(Value::as_object_mut) {
                    changed |= k.remove("replicas").is_some();
                    changed |= k.remove("storage").is_some();
                }
            }
        }
        Some("KafkaUser") => changed |= acl_operations(obj),
        _ => {}
    }
    changed
}

/// `spec.authorization.acls[].operation: X` → `operations: [X]` (needed before Strimzi
/// 0.49 is installed). Returns whether anything changed.
pub fn acl_operations(user: &mut Value) -> bool {
    let mut changed = false;
    for acl in user.pointer_mut("/spec/authorization/acls").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(m) = acl.as_object_mut()
            && let Some(op) = m.remove("operation")
        {
            let mut ops = m.get("operations").and_then(Value::as_array).cloned().unwrap_or_default();
            if !ops.contains(&op) {
                ops.push(op);
            }
            m.insert("operations".into(), Value::Array(ops));
            changed = true;
        }
    }
    changed
}

fn claim(c: &VolumeClaim) -> Value {
    let mut v = json!({"type": "persistent-claim", "size": c.size, "deleteClaim": c.delete_claim});
    if let Some(class) = &c.class {
        v["class"] = json!(class);
    }
    v
}

fn jbod(c: &VolumeClaim) -> Value {
    let mut vol = claim(c);
    vol["id"] = json!(0);
    vol["kraftMetadata"] = json!("shared");
    json!({"type": "jbod", "volumes": [vol]})
}

/// The KafkaNodePools and the Kafka for this release (pools first).
pub fn render(k: &Kafka) -> Vec<Value> {
    let rel = &k.release;
    let api = rel.api_version.clone();
    let listeners: Vec<Value> = k.listeners.iter().map(|l| serde_json::to_value(l).unwrap_or(Value::Null)).collect();
    let config = Value::Object(k.config.clone());
    let eo = Value::Object(k.entity_operator.clone());
    let mut out = Vec::new();
    let mut spec_kafka = Map::new();
    spec_kafka.insert("version".into(), json!(k.version));
    let mut annotations = Map::new();
    match k.mode {
        MetadataMode::Zookeeper => {
            spec_kafka.insert("replicas".into(), json!(k.replicas));
            spec_kafka.insert("storage".into(), claim(&k.storage));
        }
        MetadataMode::Kraft => {
            if let Some(mv) = &k.metadata_version {
                spec_kafka.insert("metadataVersion".into(), json!(mv));
            }
            let pool = |name: &str, replicas: u32, roles: &[&str], storage: Value| {
                json!({
                    "apiVersion": api, "kind": "KafkaNodePool",
                    "metadata": {"name": name, "namespace": k.namespace, "labels": {"strimzi.io/cluster": k.name}},
                    "spec": {"replicas": replicas, "roles": roles, "storage": storage}
                })
            };
            match &k.controllers {
                Some(ctl) => {
                    out.push(pool("controller", ctl.replicas, &["controller"], jbod(&ctl.storage)));
                    // The pool `kafka` holds brokers migrated from ZooKeeper: the same single
                    // claim keeps the PVC names `data-<cluster>-kafka-<id>` (docs/day2.md §2.4).
                    let storage = if k.broker_pool == MIGRATED_POOL { claim(&k.storage) } else { jbod(&k.storage) };
                    out.push(pool(&k.broker_pool, k.replicas, &["broker"], storage));
                }
                None => out.push(pool("dual-role", k.replicas, &["controller", "broker"], jbod(&k.storage))),
            }
            if rel.node_pool_annotations {
                annotations.insert("strimzi.io/node-pools".into(), json!("enabled"));
                annotations.insert("strimzi.io/kraft".into(), json!("enabled"));
            }
        }
    }
    spec_kafka.insert("listeners".into(), Value::Array(listeners));
    spec_kafka.insert("config".into(), config);
    if k.authorization {
        // The users' ACLs need it (docs/apps.md); adding it to a running Kafka rolls it.
        spec_kafka.insert("authorization".into(), json!({"type": "simple"}));
    }
    let mut spec = json!({"kafka": Value::Object(spec_kafka), "entityOperator": eo});
    if let (MetadataMode::Zookeeper, Some(z)) = (k.mode, &k.zookeeper) {
        spec["zookeeper"] = json!({"replicas": z.replicas, "storage": claim(&z.storage)});
    }
    let mut md = json!({"name": k.name, "namespace": k.namespace});
    if !annotations.is_empty() {
        md["annotations"] = Value::Object(annotations);
    }
    out.push(json!({"apiVersion": api, "kind": "Kafka", "metadata": md, "spec": spec}));
    out
}

/// Every StorageClass the Kafka's volumes ask for (`None`: the cluster's default).
pub fn storage_classes(k: &Kafka) -> Vec<Option<String>> {
    let mut v = vec![k.storage.class.clone()];
    v.extend(k.zookeeper.iter().map(|z| z.storage.class.clone()));
    v.extend(k.controllers.iter().map(|z| z.storage.class.clone()));
    v.sort();
    v.dedup();
    v
}

/// Bootstrap addresses from the Kafka's status: (listener, bootstrapServers).
pub fn bootstrap_addresses(kafka: &Value) -> Vec<(String, String)> {
    kafka
        .pointer("/status/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            Some((l["name"].as_str().or(l["type"].as_str())?.to_owned(), l["bootstrapServers"].as_str()?.to_owned()))
        })
        .collect()
}
