//! The CloudNativePG objects homelab applies: the release manifest as it is (server-side
//! apply: its Cluster and Pooler CRDs are too large for client-side apply's annotation), the
//! database's namespace, the `Cluster` (image, storage, WAL volume, the database and owner
//! created at bootstrap, parameters as strings) and, when asked, the homelab-owned NodePort
//! Service on the primary. Everything homelab creates carries its label. Pure.

use super::MANAGED_BY;
use crate::catalog::bundle::parse_manifest;
use crate::catalog::{CnpgRelease, FileRole};
use crate::config::Database;
use crate::foundation::json::strip_nulls;
use anyhow::{Result, anyhow};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const API: &str = "postgresql.cnpg.io/v1";
/// Where the release manifest installs the operator.
pub const OPERATOR_NAMESPACE: &str = "cnpg-system";
pub const OPERATOR: &str = "cnpg-controller-manager";
pub const WEBHOOK_CONFIGURATIONS: [(&str, &str); 2] = [
    ("MutatingWebhookConfiguration", "cnpg-mutating-webhook-configuration"),
    ("ValidatingWebhookConfiguration", "cnpg-validating-webhook-configuration"),
];

fn labels() -> Value {
    json!({MANAGED_BY.0: MANAGED_BY.1})
}

/// The release manifest's objects, unchanged.
pub fn install_objects(rel: &CnpgRelease, files: &HashMap<String, String>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for f in rel.files.iter().filter(|f| f.role != FileRole::Template) {
        let text = files.get(&f.path).ok_or_else(|| anyhow!("{} was not downloaded", f.path))?;
        for mut o in parse_manifest(text, &f.path)? {
            strip_nulls(&mut o);
            out.push(o);
        }
    }
    Ok(out)
}

/// How many webhooks each webhook configuration of the manifest has (each must get the
/// operator's CA before a Cluster can be created).
pub fn webhook_counts(install: &[Value]) -> Vec<(String, String, usize)> {
    WEBHOOK_CONFIGURATIONS
        .iter()
        .filter_map(|(kind, name)| {
            install
                .iter()
                .find(|o| o["kind"] == *kind && o["metadata"]["name"] == *name)
                .map(|o| ((*kind).to_owned(), (*name).to_owned(), o["webhooks"].as_array().map_or(0, Vec::len)))
        })
        .collect()
}

pub fn namespace(d: &Database) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": d.namespace}})
}

pub fn cluster(d: &Database) -> Value {
    // No class given (an existing cluster): the cluster's default StorageClass.
    let volume = |size: &str, class: &str| {
        let mut v = json!({"size": size});
        if !class.is_empty() {
            v["storageClass"] = json!(class);
        }
        v
    };
    let mut spec = json!({
        "instances": d.instances,
        "storage": volume(&d.storage.0, &d.storage.1),
        "bootstrap": {"initdb": {"database": d.database, "owner": d.owner}},
    });
    if let Some(i) = &d.image {
        spec["imageName"] = json!(i);
    }
    if let Some((size, class)) = &d.wal {
        spec["walStorage"] = volume(size, class);
    }
    if !d.parameters.is_empty() {
        let p: Map<String, Value> = d.parameters.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        spec["postgresql"] = json!({"parameters": p});
    }
    json!({
        "apiVersion": API, "kind": "Cluster",
        "metadata": {"name": d.name, "namespace": d.namespace, "labels": labels()},
        "spec": spec
    })
}

/// The label on the primary's pod that CloudNativePG's own `-rw` Service selects: `role`
/// before 1.24, `cnpg.io/instanceRole` from it (1.24 release notes, #4897).
pub fn primary_selector(d: &Database) -> Value {
    if d.release.semver() < (1, 24, 0) {
        json!({"cnpg.io/cluster": d.name, "role": "primary"})
    } else {
        json!({"cnpg.io/cluster": d.name, "cnpg.io/instanceRole": "primary"})
    }
}

/// The homelab-owned NodePort on the primary (CloudNativePG makes ClusterIP Services only).
pub fn nodeport_service(d: &Database) -> Option<Value> {
    let port = d.node_port?;
    Some(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("{}-rw-nodeport", d.name), "namespace": d.namespace, "labels": labels()},
        "spec": {"type": "NodePort", "selector": primary_selector(d),
                 "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432, "nodePort": port, "protocol": "TCP"}]}
    }))
}

/// The database's objects in apply order.
pub fn render(d: &Database) -> Vec<Value> {
    let mut v = vec![namespace(d), cluster(d)];
    v.extend(nodeport_service(d));
    v
}
