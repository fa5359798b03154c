//! The applications' part of the status report: every KafkaTopic and KafkaUser of the
//! cluster's Kafka (whether the file declares it, whether homelab made it), the bridge and
//! the address it answers on from the LAN; the PostgreSQL cluster (instances ready, the
//! primary, the `-app` Secret, the connection URI without its password). Read-only.

use super::report::*;
use crate::config::{Database, Kafka};
use crate::kube::apply::Applier;
use serde_json::Value;

fn s(v: &Value, p: &str) -> String {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `(state, message)` of an operand: `Ready`, `Unmanaged`, or `NotReady (<reason>)`.
fn state(v: &Value) -> (String, String) {
    let conds = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    if conds.iter().any(|c| c["type"] == "Ready" && c["status"] == "True") {
        return ("Ready".into(), String::new());
    }
    if conds.iter().any(|c| c["type"] == "Unmanaged" && c["status"] == "True") {
        return ("Unmanaged".into(), String::new());
    }
    match conds.iter().find(|c| c["reason"].is_string() || c["message"].is_string()) {
        Some(c) => (format!("NotReady ({})", c["reason"].as_str().unwrap_or("?")), s(c, "/message")),
        None => ("NotReady".into(), "not reconciled yet".into()),
    }
}

/// The topics, users and bridge of `k`, with a problem for each declared one that is not
/// Ready; `node` is the address the bridge's NodePort answers on.
pub async fn gather(a: &Applier, k: &Kafka, node: Option<&str>, r: &mut StatusReport) {
    let api = k.release.api_version.as_str();
    let ns = Some(k.namespace.as_str());
    let selector = format!("strimzi.io/cluster={}", k.name);
    let bridge = async {
        match &k.bridge {
            Some(b) => a.get(api, "KafkaBridge", ns, &b.name).await.ok().flatten(),
            None => None,
        }
    };
    let (topics, users, bridge) = tokio::join!(
        a.list(api, "KafkaTopic", ns, Some(&selector)),
        a.list(api, "KafkaUser", ns, Some(&selector)),
        bridge,
    );
    let values = |r: anyhow::Result<Vec<kube::api::DynamicObject>>| -> Vec<Value> {
        r.unwrap_or_default().into_iter().filter_map(|o| serde_json::to_value(o).ok()).collect()
    };
    for t in values(topics) {
        let name = s(&t, "/metadata/name");
        let in_file = k.topics.iter().any(|x| x.name == name);
        let (state, message) = state(&t);
        if in_file && state != "Ready" {
            r.problems.push(format!("KafkaTopic {}/{name} is {state}: {message}", k.namespace));
        }
        let topic = [s(&t, "/status/topicName"), s(&t, "/spec/topicName"), name.clone()]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_default();
        r.topics.push(TopicRow {
            topic,
            partitions: t.pointer("/spec/partitions").and_then(Value::as_u64),
            replicas: t.pointer("/spec/replicas").and_then(Value::as_u64),
            state,
            message,
            homelab: crate::render::made_by_homelab(&t),
            in_file,
            name,
        });
    }
    for want in &k.topics {
        if !r.topics.iter().any(|t| t.name == want.name) {
            r.problems.push(format!("KafkaTopic {}/{} is missing — `homelab up` creates it", k.namespace, want.name));
        }
    }
    for u in values(users) {
        let name = s(&u, "/metadata/name");
        let in_file = k.users.iter().any(|x| x.spec.name == name);
        let (st, message) = state(&u);
        let ready = st == "Ready";
        if in_file && !ready {
            r.problems.push(format!("KafkaUser {}/{name} is {st}: {message}", k.namespace));
        }
        r.users.push(UserRow {
            authentication: s(&u, "/spec/authentication/type"),
            ready,
            message,
            secret: s(&u, "/status/secret"),
            homelab: crate::render::made_by_homelab(&u),
            in_file,
            name,
        });
    }
    for want in &k.users {
        if !r.users.iter().any(|u| u.name == want.spec.name) {
            r.problems
                .push(format!("KafkaUser {}/{} is missing — `homelab up` creates it", k.namespace, want.spec.name));
        }
    }
    if let Some(b) = &k.bridge {
        match bridge.and_then(|o| serde_json::to_value(o).ok()) {
            None => {
                r.problems.push(format!("KafkaBridge {}/{} is missing — `homelab up` creates it", k.namespace, b.name))
            }
            Some(o) => {
                let (st, message) = state(&o);
                let ready = st == "Ready";
                if !ready {
                    r.problems.push(format!("KafkaBridge {}/{} is {st}: {message}", k.namespace, b.name));
                }
                r.bridge = Some(BridgeRow {
                    name: b.name.clone(),
                    ready,
                    replicas: o.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0),
                    url: s(&o, "/status/url"),
                    lan_url: b.node_port.map(|p| format!("http://{}:{p}", node.unwrap_or("<node>"))),
                });
            }
        }
    }
    r.totals.topics = r.topics.len();
    r.totals.users = r.users.len();
}

/// The PostgreSQL cluster of `d`, with a problem when it is missing or not healthy; `node`
/// is the address its NodePort answers on.
pub async fn database(a: &Applier, d: &Database, node: Option<&str>, r: &mut StatusReport) {
    use crate::engine::phases::database::{HEALTHY, uri};
    let live = a.get(crate::render::cnpg::API, "Cluster", Some(&d.namespace), &d.name).await;
    let Some(v) = live.ok().flatten().and_then(|o| serde_json::to_value(o).ok()) else {
        r.problems.push(format!("no PostgreSQL cluster {}/{} — `homelab up` creates it", d.namespace, d.name));
        return;
    };
    let ready = v.pointer("/status/readyInstances").and_then(Value::as_u64).unwrap_or(0);
    let phase = s(&v, "/status/phase");
    if phase != HEALTHY || ready < u64::from(d.instances) {
        r.problems.push(format!(
            "PostgreSQL cluster {}/{}: {ready} of {} instances ready ({})",
            d.namespace,
            d.name,
            d.instances,
            if phase.is_empty() { "not reconciled yet" } else { phase.as_str() }
        ));
    }
    r.totals.database_instances = ready;
    r.database = Some(DatabaseRow {
        namespace: d.namespace.clone(),
        name: d.name.clone(),
        operator: format!("CloudNativePG {}", d.release.version),
        instances: u64::from(d.instances),
        ready_instances: ready,
        phase,
        primary: s(&v, "/status/currentPrimary"),
        secret: d.app_secret(),
        uri: uri(&d.owner, &format!("{}-rw.{}", d.name, d.namespace), 5432, &d.database),
        lan_uri: d.node_port.map(|p| uri(&d.owner, node.unwrap_or("<node>"), p, &d.database)),
    });
}
