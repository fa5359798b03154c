//! Rendering the objects homelab installs on top of Kubernetes from the resolved cluster and a
//! pinned release: Rook/Ceph, Strimzi/Kafka and CloudNativePG. Pure functions: files and config in, JSON out.
//! Here too: the mark on what homelab creates for applications, which `up --prune` requires.

pub mod cnpg;
pub mod kafka_apps;
pub mod rook;
pub mod strimzi;

use serde_json::Value;

/// The label on everything homelab creates for applications (what `--prune` may delete).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "homelab");

/// Whether homelab made `obj`: it carries homelab's label and homelab's field manager has
/// applied it (what `up --prune` requires before it deletes anything).
pub fn made_by_homelab(obj: &Value) -> bool {
    let labelled =
        obj.pointer("/metadata/labels").and_then(|l| l.get(MANAGED_BY.0)).and_then(Value::as_str) == Some(MANAGED_BY.1);
    let applied = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|e| e["manager"] == crate::kube::apply::FIELD_MANAGER));
    labelled && applied
}

/// `app.kubernetes.io/managed-by=homelab`, as a label selector.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}
