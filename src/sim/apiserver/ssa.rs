//! Writes: server-side apply and updates with per-manager `managedFields` (a field another manager
//! set to another value moves to the writer, equal values are shared, a write that changes
//! neither content nor ownership is no write), `dryRun=All`, and CRD registration.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(in crate::sim::apiserver) fn apply(
    st: &mut ApiState,
    kind: &Kind,
    av: &str,
    ns: &str,
    name: &str,
    mut patch: Value,
    manager: Option<String>,
    is_apply: bool,
    dry_run: bool,
) -> Response {
    if is_apply && manager.is_none() {
        return status_body(400, "BadRequest", "PATCH, application/apply-patch+yaml requires fieldManager to be set");
    }
    if kind.namespaced && st.get("", "namespaces", "", ns).is_none() {
        return status_body(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
    }
    if patch["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return status_body(400, "BadRequest", "the name of the object does not match the name on the URL");
    }
    if is_apply && (patch["apiVersion"].as_str() != Some(av) || patch["kind"].as_str() != Some(kind.kind.as_str())) {
        return status_body(
            400,
            "BadRequest",
            &format!("apply patches must have apiVersion {av} and kind {}", kind.kind),
        );
    }
    // Status is not written through the main resource of kinds with a status subresource.
    if (kind.has_status || !kind.schemas.is_empty())
        && let Some(o) = patch.as_object_mut()
    {
        o.remove("status");
    }
    let precondition = patch["metadata"]["resourceVersion"].as_str().map(str::to_owned);
    // (`get_mut`: indexing would insert a `metadata: null`, which a merge patch reads as
    // "delete metadata".)
    if let Some(md) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        md.remove("managedFields");
        md.remove("creationTimestamp");
    }
    let cur = st.get(&kind.group, &kind.plural, ns, name).cloned();
    if let (Some(pre), Some(c)) = (&precondition, &cur)
        && c["metadata"]["resourceVersion"].as_str() != Some(pre.as_str())
    {
        return conflict(&kind.plural, name);
    }
    if precondition.is_some() && cur.is_none() {
        return status_body(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural));
    }
    let cur = match cur.as_ref().map(|c| kind.convert_out(c, av)) {
        Some(Err(e)) => return status_body(500, "InternalError", &e),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    // (What the applier owns is what it sent, before list items are merged with the stored.)
    let applied_fields = owned_fields(&patch);
    if let Some(c) = &cur {
        merge_list_maps(kind, c, &mut patch);
    }
    let mut next =
        cur.clone().unwrap_or_else(|| json!({"apiVersion": av, "kind": kind.kind, "metadata": {"name": name}}));
    merge(&mut next, &patch);
    next["apiVersion"] = json!(av);
    if kind.namespaced {
        next["metadata"]["namespace"] = json!(ns);
    }
    if !kind.schemas.is_empty() {
        let version = av.rsplit('/').next().unwrap_or("");
        if let Err(msg) = validate(st, kind, version, &next) {
            return status_body(422, "Invalid", &format!("{}.{} \"{name}\" is invalid: {msg}", kind.kind, kind.group));
        }
    }
    let fields = applied_fields;
    let managed = managed_fields(cur.as_ref(), &next, manager.as_deref(), is_apply, av, fields);
    if !managed.is_empty() {
        next["metadata"]["managedFields"] = Value::Array(managed);
    }
    if let Some(c) = &cur {
        // Stored under another version, a write rewrites it (what a storage migration does).
        let restore = st.get(&kind.group, &kind.plural, ns, name).and_then(|s| s["apiVersion"].as_str())
            != Some(kind.stored_av(av).as_str());
        if is_no_write(c, &next) && !restore {
            let mut r = ok_json(c);
            r.extensions_mut().insert(costs::NoWrite);
            return r;
        }
        let generation = c["metadata"]["generation"].as_i64().unwrap_or(1);
        next["metadata"]["generation"] =
            json!(if spec_part(c) != spec_part(&next) { generation + 1 } else { generation });
    } else {
        next["metadata"]["generation"] = json!(1);
    }
    if dry_run {
        // Validated and computed as a real write would be, then dropped (`dryRun=All`): the
        // answer is the object as it would be stored, under its current resourceVersion.
        if let Some(c) = &cur {
            next["metadata"]["resourceVersion"] = c["metadata"]["resourceVersion"].clone();
            next["metadata"]["uid"] = c["metadata"]["uid"].clone();
            next["metadata"]["creationTimestamp"] = c["metadata"]["creationTimestamp"].clone();
        }
        if let Some(s) = cur.as_ref().and_then(|c| c.get("status")) {
            next["status"] = s.clone();
        }
        return if cur.is_some() { ok_json(&next) } else { created_json(&next) };
    }
    if kind.kind == "CustomResourceDefinition"
        && let Err(msg) = register_crd(st, &next)
    {
        return status_body(
            422,
            "Invalid",
            &format!("CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {msg}"),
        );
    }
    // A CRD whose storage version changed lists the new one in status.storedVersions too.
    if kind.kind == "CustomResourceDefinition"
        && let Some(stored) = cur.as_ref().and_then(|c| c.pointer("/status/storedVersions")).cloned()
        && let Some(sv) = next["spec"]["versions"]
            .as_array()
            .and_then(|a| a.iter().find(|v| v["storage"] == true))
            .and_then(|v| v["name"].as_str())
    {
        let mut list = stored.as_array().cloned().unwrap_or_default();
        if !list.iter().any(|x| x == sv) {
            list.push(json!(sv));
        }
        next["status"]["storedVersions"] = Value::Array(list);
    }
    let answer_av = av.to_owned();
    next["apiVersion"] = json!(kind.stored_av(av));
    st.put(&kind.group, &kind.plural, ns, next);
    let stored = st.get(&kind.group, &kind.plural, ns, name).cloned().unwrap_or(Value::Null);
    ok_json(&kind.convert_out(&stored, &answer_av).unwrap_or(stored))
}

/// The leaf fields a request sets, as paths of names (lists count as one field, as for
/// atomic lists; metadata counts only labels and annotations, as ownership does).
/// Top-level lists the real API server merges by a key (`x-kubernetes-list-type: map`)
/// instead of replacing: (group, kind, field, key). Everything else stays atomic.
const LIST_MAPS: &[(&str, &str, &str, &str)] = &[
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "webhooks", "name"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "webhooks", "name"),
];

/// In a list map, an applied item is merged into the stored item of the same key, so that
/// fields another manager set and the applier does not (CloudNativePG's injected
/// `clientConfig.caBundle`) stay.
fn merge_list_maps(kind: &Kind, cur: &Value, patch: &mut Value) {
    for (_, _, field, key) in LIST_MAPS.iter().filter(|(g, k, ..)| *g == kind.group && *k == kind.kind) {
        for item in patch[*field].as_array_mut().into_iter().flatten() {
            let old = cur[*field].as_array().and_then(|a| a.iter().find(|o| o[*key] == item[*key]));
            if let Some(old) = old {
                let mut merged = old.clone();
                merge(&mut merged, item);
                *item = merged;
            }
        }
    }
}

/// Joins the names of a field path (a key may hold dots: `log4j2.properties`,
/// `controller-gen.kubebuilder.io/version`).
const SEP: char = '\u{1f}';

pub(in crate::sim::apiserver) fn owned_fields(obj: &Value) -> std::collections::BTreeSet<String> {
    pub(in crate::sim::apiserver) fn walk(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(x, &format!("{path}{SEP}{k}"), out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            match k.as_str() {
                "apiVersion" | "kind" | "status" => {}
                "metadata" => {
                    for part in ["labels", "annotations"] {
                        if let Some(x) = v.get(part) {
                            walk(x, &format!("metadata{SEP}{part}"), &mut out);
                        }
                    }
                }
                _ => walk(v, k, &mut out),
            }
        }
    }
    out
}

/// `{"f:spec": {"f:replicas": {}}}` from field paths, the FieldsV1 form.
pub(in crate::sim::apiserver) fn fields_v1(paths: &std::collections::BTreeSet<String>) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut cur = &mut root;
        for seg in p.split(SEP) {
            let Some(m) = cur.as_object_mut() else { break };
            cur = m.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
        }
    }
    root
}

pub(in crate::sim::apiserver) fn paths_of(fields: &Value) -> std::collections::BTreeSet<String> {
    pub(in crate::sim::apiserver) fn walk(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, x) in m {
                    let seg = k.strip_prefix("f:").unwrap_or(k);
                    walk(x, &if path.is_empty() { seg.to_owned() } else { format!("{path}{SEP}{seg}") }, out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(fields, "", &mut out);
    out
}

pub(in crate::sim::apiserver) fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split(SEP).try_fold(v, |cur, seg| cur.get(seg))
}

/// The `managedFields` after a write, as the API server keeps them: one entry per manager
/// and operation holding the fields it set; a field another manager set to a different
/// value moves to the writer (a forced apply, or an update); equal values are shared.
pub(in crate::sim::apiserver) fn managed_fields(
    cur: Option<&Value>,
    next: &Value,
    manager: Option<&str>,
    is_apply: bool,
    av: &str,
    fields: std::collections::BTreeSet<String>,
) -> Vec<Value> {
    let mut entries: Vec<Value> =
        cur.and_then(|c| c["metadata"]["managedFields"].as_array().cloned()).unwrap_or_default();
    let Some(m) = manager else { return entries };
    let op = if is_apply { "Apply" } else { "Update" };
    let changed: std::collections::BTreeSet<&String> =
        fields.iter().filter(|p| cur.and_then(|c| value_at(c, p)) != value_at(next, p)).collect();
    for e in entries.iter_mut() {
        if e["manager"] == m && e["operation"] == op {
            continue;
        }
        let mut own = paths_of(&e["fieldsV1"]);
        let before = own.len();
        own.retain(|p| !changed.contains(p));
        if own.len() != before {
            e["fieldsV1"] = fields_v1(&own);
        }
    }
    entries.retain(|e| {
        !paths_of(&e["fieldsV1"]).iter().all(|p| p.is_empty()) || (e["manager"] == m && e["operation"] == op)
    });
    let mine = json!({"manager": m, "operation": op, "apiVersion": av, "time": crate::foundation::time::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&fields)});
    match entries.iter_mut().find(|e| e["manager"] == m && e["operation"] == op) {
        Some(e) if is_apply && e["fieldsV1"] == mine["fieldsV1"] => {}
        Some(e) if !is_apply => {
            // An update adds to what the manager already owned.
            let mut own = paths_of(&e["fieldsV1"]);
            let before = own.clone();
            own.extend(fields);
            if own != before {
                *e = json!({"manager": m, "operation": op, "apiVersion": av, "time": mine["time"], "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&own)});
            }
        }
        Some(e) => *e = mine,
        None => entries.push(mine),
    }
    entries
}

/// Whether two `managedFields` lists name the same owners of the same fields (the time of
/// an entry alone does not make a write).
pub(in crate::sim::apiserver) fn same_owners(a: &Value, b: &[Value]) -> bool {
    let key = |e: &Value| (e["manager"].clone(), e["operation"].clone(), e["fieldsV1"].clone());
    let a: Vec<_> = a.as_array().map(|v| v.iter().map(key).collect()).unwrap_or_default();
    let b: Vec<_> = b.iter().map(key).collect();
    a == b
}

pub(in crate::sim::apiserver) fn register_crd(st: &mut ApiState, crd: &Value) -> Result<(), String> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().ok_or("spec.group: Required value")?.to_owned();
    let names = &spec["names"];
    let plural = names["plural"].as_str().ok_or("spec.names.plural: Required value")?.to_owned();
    let kind = names["kind"].as_str().ok_or("spec.names.kind: Required value")?.to_owned();
    let versions: Vec<String> = spec["versions"]
        .as_array()
        .map(|a| {
            a.iter().filter(|v| v["served"] != false).filter_map(|v| v["name"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err("spec.versions: Invalid value: must have exactly one version marked as storage version".into());
    }
    let mut schemas = HashMap::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if let (Some(n), Some(s)) = (v["name"].as_str(), v.pointer("/schema/openAPIV3Schema")) {
            schemas.insert(n.to_owned(), s.clone());
        }
    }
    let storage = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .map(str::to_owned);
    // Every version objects may still be stored in must stay defined (the real server's
    // validation of an update).
    let all: Vec<&str> = spec["versions"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    for (i, sv) in crd.pointer("/status/storedVersions").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(sv) = sv.as_str()
            && !all.contains(&sv)
        {
            return Err(format!("status.storedVersions[{i}]: Invalid value: \"{sv}\": must appear in spec.versions"));
        }
    }
    let entry = Kind {
        storage,
        group: group.clone(),
        versions,
        kind,
        plural: plural.clone(),
        singular: names["singular"].as_str().unwrap_or_default().to_owned(),
        namespaced: spec["scope"].as_str() != Some("Cluster"),
        has_status: true,
        served_at: None,
        schemas,
    };
    st.validators.retain(|(g, p, _), _| !(g == &group && p == &plural));
    match st.kinds.iter_mut().find(|k| k.group == group && k.plural == plural) {
        Some(k) => {
            let served_at = k.served_at;
            *k = Kind { served_at, ..entry };
        }
        None => st.kinds.push(entry),
    }
    Ok(())
}
