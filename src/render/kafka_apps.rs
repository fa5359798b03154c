//! What applications use on the Kafka, rendered for the pinned Strimzi release: KafkaTopics,
//! KafkaUsers (ACLs always as `operations`, the only form `v1` has), the KafkaBridge (with
//! `spec` and `replicas` always set, as `v1` requires) and the homelab-owned NodePort
//! Service that exposes the bridge (Strimzi makes only a ClusterIP one). Every object
//! carries the label that marks what homelab created, so that `up --prune` deletes nothing
//! else. Pure.

use super::MANAGED_BY;
use crate::config::model::{AclSpec, TopicSpec, UserAuthentication};
use crate::config::{Bridge, Kafka, KafkaUser};
use serde_json::{Map, Value, json};

fn labels(cluster: Option<&str>) -> Value {
    let mut l = Map::new();
    if let Some(c) = cluster {
        l.insert("strimzi.io/cluster".into(), json!(c));
    }
    l.insert(MANAGED_BY.0.into(), json!(MANAGED_BY.1));
    Value::Object(l)
}

pub fn topic(k: &Kafka, t: &TopicSpec) -> Value {
    let mut spec = Map::new();
    if let Some(n) = &t.topic_name {
        spec.insert("topicName".into(), json!(n));
    }
    if let Some(p) = t.partitions {
        spec.insert("partitions".into(), json!(p));
    }
    if let Some(r) = t.replicas {
        spec.insert("replicas".into(), json!(r));
    }
    if let Some(c) = &t.config {
        spec.insert("config".into(), Value::Object(c.clone()));
    }
    json!({
        "apiVersion": k.release.api_version, "kind": "KafkaTopic",
        "metadata": {"name": t.name, "namespace": k.namespace, "labels": labels(Some(&k.name))},
        "spec": spec
    })
}

fn acl(a: &AclSpec) -> Value {
    let mut r = json!({"type": a.resource.kind});
    if let Some(n) = &a.resource.name {
        r["name"] = json!(n);
    }
    if let Some(p) = a.resource.pattern_type {
        r["patternType"] = json!(p);
    }
    let mut v = json!({"resource": r, "operations": a.operations});
    if let Some(h) = &a.host {
        v["host"] = json!(h);
    }
    if let Some(t) = a.kind {
        v["type"] = json!(t);
    }
    v
}

pub fn user(k: &Kafka, u: &KafkaUser) -> Value {
    let s = &u.spec;
    let mut spec = json!({"authentication": {"type": s.authentication.as_str()}});
    if !s.acls.is_empty() {
        spec["authorization"] = json!({"type": "simple", "acls": s.acls.iter().map(acl).collect::<Vec<_>>()});
    }
    if let Some(q) = &s.quotas {
        spec["quotas"] = serde_json::to_value(q).unwrap_or(Value::Null);
    }
    json!({
        "apiVersion": k.release.api_version, "kind": "KafkaUser",
        "metadata": {"name": s.name, "namespace": k.namespace, "labels": labels(Some(&k.name))},
        "spec": spec
    })
}

/// The Secret Strimzi writes for the Kafka's cluster CA (what clients trust).
pub fn cluster_ca_secret(k: &Kafka) -> String {
    format!("{}-cluster-ca-cert", k.name)
}

pub fn bridge(k: &Kafka, b: &Bridge) -> Value {
    let (_, port, tls) = &b.listener;
    let mut spec = json!({
        "replicas": b.replicas,
        "bootstrapServers": format!("{}-kafka-bootstrap:{port}", k.name),
        "http": {"port": b.port},
    });
    if *tls {
        spec["tls"] = json!({"trustedCertificates": [{"secretName": cluster_ca_secret(k), "certificate": "ca.crt"}]});
    }
    match &b.user {
        Some((u, UserAuthentication::ScramSha512)) => {
            spec["authentication"] = json!({"type": "scram-sha-512", "username": u, "passwordSecret": {"secretName": u, "password": "password"}});
        }
        Some((u, UserAuthentication::Tls)) => {
            spec["authentication"] = json!({"type": "tls", "certificateAndKey": {"secretName": u, "certificate": "user.crt", "key": "user.key"}});
        }
        None => {}
    }
    json!({
        "apiVersion": k.release.api_version, "kind": "KafkaBridge",
        "metadata": {"name": b.name, "namespace": k.namespace, "labels": labels(None)},
        "spec": spec
    })
}

/// The NodePort Service homelab owns for the bridge, with the selector Strimzi documents
/// for reaching the bridge pods from outside.
pub fn bridge_service(k: &Kafka, b: &Bridge) -> Option<Value> {
    let node_port = b.node_port?;
    Some(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": bridge_service_name(b), "namespace": k.namespace, "labels": labels(None)},
        "spec": {
            "type": "NodePort",
            "selector": {"strimzi.io/cluster": b.name, "strimzi.io/kind": "KafkaBridge"},
            "ports": [{"name": "rest-api", "port": b.port, "targetPort": b.port, "nodePort": node_port, "protocol": "TCP"}]
        }
    }))
}

pub fn bridge_service_name(b: &Bridge) -> String {
    format!("{}-bridge-nodeport", b.name)
}

/// Everything of the applications, in apply order: topics, users, then the bridge.
pub fn render(k: &Kafka) -> Vec<Value> {
    let mut out: Vec<Value> = k.topics.iter().map(|t| topic(k, t)).collect();
    out.extend(k.users.iter().map(|u| user(k, u)));
    if let Some(b) = &k.bridge {
        out.push(bridge(k, b));
        out.extend(bridge_service(k, b));
    }
    out
}
