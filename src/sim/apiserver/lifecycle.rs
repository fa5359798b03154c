//! How objects go away, as the real API server and its controllers make them go: a DELETE of
//! an object with finalizers only marks it (`deletionTimestamp`) until its controllers take
//! their finalizers off; a deleted Namespace is `Terminating` while what it holds is
//! deleted, and goes when it is empty; the garbage collector deletes an object whose every
//! owner (its `ownerReferences`) is gone (background propagation); and when the cluster's
//! datastore is gone (no machine runs MicroK8s any more after one did), so is every object.

use super::*;

/// A DELETE: gone at once, or marked when finalizers hold it. Returns the object as it
/// stands when it is only marked.
pub fn delete(st: &mut ApiState, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
    let cur = st.get(group, plural, ns, name)?.clone();
    let held = cur.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    let namespace = group.is_empty() && plural == "namespaces";
    if !held && !namespace {
        st.delete(group, plural, ns, name);
        return None;
    }
    let mut v = cur;
    if v.pointer("/metadata/deletionTimestamp").is_none() {
        v["metadata"]["deletionTimestamp"] = json!(crate::foundation::time::now_rfc3339());
        if namespace {
            v["status"] = json!({"phase": "Terminating"});
        }
        st.put(group, plural, ns, v.clone());
    }
    Some(v)
}

/// Brings deletions up to now: marked objects without finalizers go, Terminating namespaces
/// empty and go, orphans are collected, a lost datastore loses everything.
pub fn reconcile(st: &mut ApiState) {
    datastore(st);
    // Terminating namespaces: everything in them is deleted (marked when held).
    let terminating: Vec<String> = st
        .list("", "namespaces", None)
        .into_iter()
        .filter(|n| n.pointer("/metadata/deletionTimestamp").is_some())
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    for ns in &terminating {
        let inside: Vec<(String, String, String)> = st
            .objects
            .keys()
            .filter(|(_, _, n, _)| n == ns)
            .map(|(g, p, _, name)| (g.clone(), p.clone(), name.clone()))
            .collect();
        for (g, p, name) in &inside {
            let _ = delete(st, g, p, ns, name);
        }
        if !st.objects.keys().any(|(_, _, n, _)| n == ns) {
            st.delete("", "namespaces", "", ns);
        }
    }
    // Marked objects whose finalizers are all off.
    let done: Vec<Key> = st
        .objects
        .iter()
        .filter(|(k, s)| {
            !(k.0.is_empty() && k.1 == "namespaces")
                && s.value.pointer("/metadata/deletionTimestamp").is_some()
                && s.value.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(|f| f.is_empty())
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in done {
        st.objects.remove(&k);
    }
    // Custom resources whose CRD is gone go with it, and their kind is no longer served.
    let gone: Vec<(String, String)> = st
        .kinds
        .iter()
        .filter(|k| k.storage.is_some())
        .filter(|k| {
            st.get("apiextensions.k8s.io", "customresourcedefinitions", "", &format!("{}.{}", k.plural, k.group))
                .is_none()
        })
        .map(|k| (k.group.clone(), k.plural.clone()))
        .collect();
    for (g, p) in &gone {
        st.objects.retain(|k, _| !(&k.0 == g && &k.1 == p));
    }
    st.kinds.retain(|k| !gone.iter().any(|(g, p)| &k.group == g && &k.plural == p));
    // Orphans: every owner named in ownerReferences is gone from the namespace (their own
    // dependents follow on the next pass).
    loop {
        let orphans: Vec<Key> = st
            .objects
            .iter()
            .filter(|(k, s)| {
                s.value.pointer("/metadata/deletionTimestamp").is_none()
                    && s.value
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|o| !o.is_empty() && o.iter().all(|r| !owner_exists(st, &k.2, r)))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if orphans.is_empty() {
            break;
        }
        for (g, p, ns, name) in orphans {
            // Held by a finalizer: only marked, collected once it is released.
            let _ = delete(st, &g, &p, &ns, &name);
        }
    }
}

fn owner_exists(st: &ApiState, ns: &str, r: &Value) -> bool {
    let kind = r["kind"].as_str().unwrap_or_default();
    let group = r["apiVersion"].as_str().and_then(|a| a.rsplit_once('/').map(|(g, _)| g)).unwrap_or("");
    let name = r["name"].as_str().unwrap_or_default();
    let Some(k) = st.kinds.iter().find(|k| k.kind == kind && k.group == group) else {
        // A kind this server does not know: kept.
        return true;
    };
    let ns = if k.namespaced { ns } else { "" };
    st.get(&k.group, &k.plural, ns, name).is_some()
}

/// The datastore is the MicroK8s cluster's: once machines ran it and none does any more,
/// every object is gone with it (a new cluster starts from the built-in namespaces).
fn datastore(st: &mut ApiState) {
    let Some(nodes) = st.nodes.clone() else { return };
    let running = !nodes().is_empty();
    if running {
        st.had_cluster = true;
    } else if st.had_cluster {
        st.had_cluster = false;
        st.objects.clear();
        st.pod_logs.clear();
        for ns in ["default", "kube-system", "kube-public"] {
            st.put(
                "",
                "namespaces",
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}),
            );
        }
    }
}
