//! Whether a server-side apply would change nothing: the pure comparison of an object homelab
//! renders with the live object, so a converged run sends no write at all.
//!
//! An apply with field manager `homelab` (forced) would leave a live object as it is when
//! both hold:
//! - every field the rendered object sets has that value in the live object (defaults and
//!   fields of other managers may sit beside them; a list must have the same length and each
//!   item must hold what the rendered item holds) — so a field another manager changed or
//!   removed is seen and the apply puts it back;
//! - every field the live `managedFields` say `homelab` owns through `Apply` is still set by
//!   the rendered object — so a field homelab stopped setting is applied (and the server
//!   removes it) instead of lingering.
//!
//! The ownership tree (`fieldsV1`) names fields `f:<name>`, list items by key `k:{..}`, by value
//! `v:<json>` or by index `i:<n>`, and the node itself `.`; the list types come from it, so no
//! schema is needed here. Not being sure counts as not converged: a value the server rewrites
//! (a quantity `1000m` stored as `1`) costs a no-op apply each run, never a skipped change.
//! `status` is left out, as the server ignores it in an apply of kinds with a status
//! subresource, and of `metadata` only labels and annotations count (the name and namespace
//! are what the object was found by).

use serde_json::Value;

/// Whether applying `desired` as `manager` would change nothing in `live`.
pub fn apply_is_noop(desired: &Value, live: &Value, manager: &str) -> bool {
    difference(desired, live, manager).is_none()
}

/// Why an apply of `desired` would change `live` (None: it would not), for the log.
pub fn difference(desired: &Value, live: &Value, manager: &str) -> Option<String> {
    let Some(owned) = applied_fields(live, manager) else { return Some(format!("never applied by {manager}")) };
    let desired = content(desired);
    if let Some(at) = first_uncontained(&desired, &content(live), "") {
        return Some(format!("the live object differs at {at}"));
    }
    (!owned_still_set(owned, &desired)).then(|| format!("{manager} owns fields it no longer sets"))
}

/// The fields `manager` owns through `Apply` (None when it never applied this object).
fn applied_fields<'a>(live: &'a Value, manager: &str) -> Option<&'a Value> {
    live["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map(|e| &e["fieldsV1"])
}

/// What an apply sets of an object: all but identity, status and server-kept metadata.
fn content(obj: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                let mut md = serde_json::Map::new();
                for part in ["labels", "annotations"] {
                    if let Some(x) = v.get(part).filter(|x| !x.is_null()) {
                        md.insert(part.to_owned(), x.clone());
                    }
                }
                out.insert(k.clone(), Value::Object(md));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The first field `want` sets that `have` lacks or holds another value at (a path such as
/// `spec.template.spec.containers[0].image`); None when all are there. A `null` asks nothing.
fn first_uncontained(want: &Value, have: &Value, at: &str) -> Option<String> {
    match (want, have) {
        (Value::Null, _) => None,
        (Value::Object(w), Value::Object(h)) => w.iter().find_map(|(k, wv)| {
            let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            match h.get(k) {
                Some(hv) => first_uncontained(wv, hv, &path),
                None if wv.is_null() => None,
                None => Some(path),
            }
        }),
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
            w.iter().zip(h).enumerate().find_map(|(i, (a, b))| first_uncontained(a, b, &format!("{at}[{i}]")))
        }
        (Value::Number(a), Value::Number(b)) if a == b || a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y) => {
            None
        }
        _ if want == have => None,
        _ => Some(at.to_owned()),
    }
}

/// Whether every field in the ownership tree `owned` is still set in `desired`.
fn owned_still_set(owned: &Value, desired: &Value) -> bool {
    let Some(children) = owned.as_object() else { return true };
    children.iter().all(|(key, sub)| {
        if key == "." {
            return true;
        }
        if let Some(name) = key.strip_prefix("f:") {
            return match desired.get(name) {
                Some(v) if !v.is_null() => owned_still_set(sub, v),
                _ => false,
            };
        }
        let Some(items) = desired.as_array() else { return false };
        if let Some(k) = key.strip_prefix("k:") {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else { return false };
            return items
                .iter()
                .find(|item| keys.iter().all(|(kn, kv)| item.get(kn) == Some(kv)))
                .is_some_and(|item| owned_still_set(sub, item));
        }
        if let Some(v) = key.strip_prefix("v:") {
            let Ok(v) = serde_json::from_str::<Value>(v) else { return false };
            return items.contains(&v);
        }
        if let Some(i) = key.strip_prefix("i:") {
            return i.parse::<usize>().ok().and_then(|i| items.get(i)).is_some_and(|item| owned_still_set(sub, item));
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(fields: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "op", "namespace": "rook-ceph", "resourceVersion": "7", "uid": "u1",
                "labels": {"app": "op"},
                "managedFields": [{"manager": "homelab", "operation": "Apply", "fieldsV1": fields}]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "op", "image": "rook/ceph:v1.10.10", "imagePullPolicy": "IfNotPresent",
                 "args": ["ceph", "operator"]}]}}},
            "status": {"readyReplicas": 1}
        })
    }

    fn owned() -> Value {
        json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {
            "f:containers": {"k:{\"name\":\"op\"}": {".": {}, "f:name": {}, "f:image": {}, "f:args": {}}}}}}})
    }

    fn desired() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "op", "namespace": "rook-ceph", "labels": {"app": "op"}, "creationTimestamp": null},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "op", "image": "rook/ceph:v1.10.10", "args": ["ceph", "operator"]}]}}},
            "status": {}})
    }

    #[test]
    fn an_applied_object_with_defaults_beside_it_is_converged() {
        assert!(apply_is_noop(&desired(), &live(owned()), "homelab"));
    }

    #[test]
    fn never_applied_by_this_manager_is_not_converged() {
        assert!(!apply_is_noop(&desired(), &live(owned()), "someone-else"));
    }

    #[test]
    fn a_value_another_manager_changed_is_drift() {
        let mut l = live(owned());
        l["spec"]["replicas"] = json!(3);
        assert!(!apply_is_noop(&desired(), &l, "homelab"));
        let mut l = live(owned());
        l["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["ceph"]);
        assert!(!apply_is_noop(&desired(), &l, "homelab"));
        let mut l = live(owned());
        l["metadata"]["labels"] = json!({});
        assert!(!apply_is_noop(&desired(), &l, "homelab"));
    }

    #[test]
    fn a_field_homelab_no_longer_sets_needs_an_apply() {
        let mut d = desired();
        d["metadata"]["labels"] = json!({});
        assert!(!apply_is_noop(&d, &live(owned()), "homelab"));
        let mut d = desired();
        d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("other");
        assert!(!apply_is_noop(&d, &live(owned()), "homelab"));
    }

    #[test]
    fn a_changed_rendering_needs_an_apply() {
        let mut d = desired();
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("rook/ceph:v1.11.11");
        assert!(!apply_is_noop(&d, &live(owned()), "homelab"));
        let mut d = desired();
        d["spec"]["paused"] = json!(true);
        assert!(!apply_is_noop(&d, &live(owned()), "homelab"));
    }

    #[test]
    fn status_and_server_metadata_do_not_count() {
        let mut l = live(owned());
        l["status"] = json!({"readyReplicas": 0});
        l["metadata"]["resourceVersion"] = json!("99");
        assert!(apply_is_noop(&desired(), &l, "homelab"));
    }

    #[test]
    fn set_and_index_items_are_read_from_the_ownership_tree() {
        let l = json!({"metadata": {"managedFields": [{"manager": "homelab", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:finalizers": {"v:\"a\"": {}}, "f:ports": {"i:0": {"f:port": {}}}}}}]},
            "spec": {"finalizers": ["a"], "ports": [{"port": 80, "protocol": "TCP"}]}});
        let d = json!({"spec": {"finalizers": ["a"], "ports": [{"port": 80}]}});
        assert!(apply_is_noop(&d, &l, "homelab"));
        let d = json!({"spec": {"finalizers": ["b"], "ports": [{"port": 80}]}});
        assert!(!apply_is_noop(&d, &l, "homelab"));
        let d = json!({"spec": {"finalizers": ["a"], "ports": [{"port": 80.0}]}});
        assert!(apply_is_noop(&d, &l, "homelab"));
    }
}
