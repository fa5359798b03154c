//! The HTTP side of the simulated API server: paths and queries, discovery documents, label
//! selectors, `Status` error bodies, and one handler per method.

use super::*;

pub(in crate::sim::apiserver) fn json_with(code: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// The API server's 409 for a write based on an old resourceVersion.
pub(in crate::sim::apiserver) fn conflict(plural: &str, name: &str) -> Response {
    status_body(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

pub(in crate::sim::apiserver) fn status_body(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    json_with(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
}

pub(in crate::sim::apiserver) fn ok_json(v: &Value) -> Response {
    json_with(StatusCode::OK, v)
}

pub(in crate::sim::apiserver) fn created_json(v: &Value) -> Response {
    json_with(StatusCode::CREATED, v)
}

pub(in crate::sim::apiserver) fn parse_label_selector(s: &str) -> Vec<(String, Option<String>)> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| match x.split_once('=') {
            Some((k, v)) => {
                (k.trim_end_matches('=').trim().to_owned(), Some(v.trim_start_matches('=').trim().to_owned()))
            }
            None => (x.trim().to_owned(), None),
        })
        .collect()
}

pub(in crate::sim::apiserver) fn matches_labels(v: &Value, sel: &[(String, Option<String>)]) -> bool {
    sel.iter().all(|(k, want)| {
        let got = v.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str);
        match want {
            Some(w) => got == Some(w.as_str()),
            None => got.is_some(),
        }
    })
}

pub(in crate::sim::apiserver) struct Target {
    pub(in crate::sim::apiserver) group: String,
    pub(in crate::sim::apiserver) version: String,
    pub(in crate::sim::apiserver) ns: Option<String>,
    pub(in crate::sim::apiserver) plural: String,
    pub(in crate::sim::apiserver) name: Option<String>,
    pub(in crate::sim::apiserver) sub: Option<String>,
}

pub(in crate::sim::apiserver) fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), (*v).to_owned(), rest),
        ["apis", g, v, rest @ ..] => ((*g).to_owned(), (*v).to_owned(), rest),
        _ => return None,
    };
    let t = match rest {
        [] => return None,
        ["namespaces", ns, plural, rest @ ..] => Target {
            group,
            version,
            ns: Some((*ns).to_owned()),
            plural: (*plural).to_owned(),
            name: rest.first().map(|s| (*s).to_owned()),
            sub: rest.get(1).map(|s| (*s).to_owned()),
        },
        [plural, rest @ ..] => Target {
            group,
            version,
            ns: None,
            plural: (*plural).to_owned(),
            name: rest.first().map(|s| (*s).to_owned()),
            sub: rest.get(1).map(|s| (*s).to_owned()),
        },
    };
    Some(t)
}

pub(in crate::sim::apiserver) fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| {
                    (k.to_owned(), v.replace("%2C", ",").replace("%3D", "=").replace("%2F", "/").replace('+', " "))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(in crate::sim::apiserver) fn served(k: &Kind) -> bool {
    k.served_at.is_none_or(|t| t <= Instant::now()) && (k.schemas.is_empty() || k.served_at.is_some())
}

pub(in crate::sim::apiserver) fn resource_list(st: &ApiState, group: &str, version: &str) -> Option<Value> {
    let kinds: Vec<&Kind> =
        st.kinds.iter().filter(|k| k.group == group && k.versions.iter().any(|v| v == version) && served(k)).collect();
    if kinds.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    let mut resources = Vec::new();
    for k in kinds {
        resources
            .push(json!({"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced, "kind": k.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}));
        if k.has_status {
            resources.push(json!({"name": format!("{}/status", k.plural), "singularName": "", "namespaced": k.namespaced, "kind": k.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

pub(in crate::sim::apiserver) async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<ApiState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = state.lock().map(|s| s.cfg.latency).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // Decode the body before taking the lock (requests are served concurrently, as a real
    // API server does; only the store is serialized).
    let parsed: Option<Result<Value, String>> =
        (!body.is_empty()).then(|| serde_json::from_slice(&body).map_err(|e| e.to_string()));
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    // A `dryRun=All` request is logged as such: it computes a write and stores nothing.
    let dry = uri.query().is_some_and(|q| q.split('&').any(|p| p == "dryRun=All"));
    st.log.push(format!("{method} {}{}", uri.path(), if dry { " (dry run)" } else { "" }));
    // The simulated operators run inside the server, before each request. In a benchmark
    // (costs on) a read within 2 ms of the last run shares it, so the simulator's own CPU
    // per request (hundreds of simulated pods at 200 machines) does not stand in for the
    // real server's, which runs no operators; writes and the tests always run them.
    let fresh = st.reconciled.is_some_and(|t| t.elapsed() < Duration::from_millis(2));
    if !(fresh && method == Method::GET && !st.cfg.costs.is_free()) {
        reconcile(&mut st);
        st.reconciled = Some(Instant::now());
    }
    let path = uri.path().to_owned();
    match (method.as_str(), path.as_str()) {
        ("GET", "/version") => {
            return ok_json(
                &json!({"major": "1", "minor": st.cfg.minor.to_string(), "gitVersion": format!("v1.{}.3", st.cfg.minor), "platform": "linux/amd64"}),
            );
        }
        ("GET", "/api") => {
            return ok_json(&json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}));
        }
        ("GET", "/apis") => {
            let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for k in st.kinds.iter().filter(|k| !k.group.is_empty() && served(k)) {
                let e = groups.entry(k.group.clone()).or_default();
                for v in &k.versions {
                    if !e.contains(v) {
                        e.push(v.clone());
                    }
                }
            }
            let list: Vec<Value> = groups
                .into_iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> =
                        vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
                    json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            return ok_json(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}));
        }
        _ => {}
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::GET && (matches!(segs.as_slice(), ["api", _]) || matches!(segs.as_slice(), ["apis", _, _])) {
        let (g, v) = if segs[0] == "api" { ("", segs[1]) } else { (segs[1], segs[2]) };
        return match resource_list(&st, g, v) {
            Some(l) => ok_json(&l),
            None => status_body(404, "NotFound", "the server could not find the requested resource"),
        };
    }
    let Some(t) = parse_path(&path) else {
        return status_body(404, "NotFound", "the server could not find the requested resource");
    };
    let Some(kind) = st.kind_by_plural(&t.group, &t.plural).filter(served).filter(|k| k.versions.contains(&t.version))
    else {
        return status_body(404, "NotFound", "the server could not find the requested resource");
    };
    let q = query(&uri);
    let ns = if kind.namespaced { t.ns.clone().unwrap_or_else(|| "default".into()) } else { String::new() };
    let av = if kind.group.is_empty() { t.version.clone() } else { format!("{}/{}", kind.group, t.version) };
    match (method.as_str(), &t.name) {
        ("GET", None) => {
            let sel = q.get("labelSelector").map(|s| parse_label_selector(s)).unwrap_or_default();
            let all_ns = t.ns.is_none();
            let mut items: Vec<Value> = if kind.kind == "Node" {
                st.node_values()
            } else {
                st.list(&kind.group, &kind.plural, if kind.namespaced && !all_ns { Some(ns.as_str()) } else { None })
                    .into_iter()
                    .cloned()
                    .collect()
            };
            items.retain(|i| matches_labels(i, &sel));
            // Field selectors: `field=value` pairs on a field path (what homelab uses:
            // `spec.nodeName`); an unsupported field is a 400, as the real server answers.
            if let Some(fs) = q.get("fieldSelector") {
                for part in fs.split(',').filter(|p| !p.is_empty()) {
                    let Some((field, value)) = part.split_once('=') else {
                        return status_body(400, "BadRequest", &format!("invalid field selector: {part}"));
                    };
                    if !matches!(field, "spec.nodeName" | "metadata.name" | "metadata.namespace") {
                        return status_body(400, "BadRequest", &format!("field label not supported: {field}"));
                    }
                    let ptr = format!("/{}", field.replace('.', "/"));
                    items.retain(|i| i.pointer(&ptr).and_then(Value::as_str).unwrap_or("") == value);
                }
            }
            let meta_only = headers
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
            if meta_only {
                let items: Vec<Value> = items.iter().map(|i| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": i["metadata"]})).collect();
                return ok_json(
                    &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
                );
            }
            let mut out = Vec::with_capacity(items.len());
            for i in &items {
                match kind.convert_out(i, &av) {
                    Ok(o) => out.push(o),
                    Err(e) => return status_body(500, "InternalError", &e),
                }
            }
            ok_json(
                &json!({"apiVersion": av, "kind": format!("{}List", kind.kind), "metadata": {"resourceVersion": st.rv.to_string()}, "items": out}),
            )
        }
        ("GET", Some(name)) if t.sub.as_deref() == Some("log") && kind.kind == "Pod" => pod_log(&st, &ns, name, &q),
        ("GET", Some(name)) => {
            let obj = if kind.kind == "Node" {
                st.node_values().into_iter().find(|n| n["metadata"]["name"] == name.as_str())
            } else {
                st.get(&kind.group, &kind.plural, &ns, name).cloned()
            };
            match obj {
                Some(o) => match kind.convert_out(&o, &av) {
                    Ok(o) => ok_json(&o),
                    Err(e) => status_body(500, "InternalError", &e),
                },
                None => status_body(
                    404,
                    "NotFound",
                    &format!("{}.{} \"{name}\" not found", kind.plural, kind.group).replace(". \"", " \""),
                ),
            }
        }
        ("POST", Some(name)) if t.sub.as_deref() == Some("eviction") && kind.kind == "Pod" => evict(&mut st, &ns, name),
        ("PATCH", Some(name)) => {
            // A host's node is stored when first patched (cordon, taint); see `node_values`.
            if kind.kind == "Node" && st.get("", "nodes", "", name).is_none() {
                match st.node(name) {
                    Some(mut n) => {
                        n["metadata"]["annotations"] = json!({"sim/from-host": "true"});
                        st.put("", "nodes", "", n);
                    }
                    None => return status_body(404, "NotFound", &format!("nodes \"{name}\" not found")),
                }
            }
            if st.faults.conflict > 0 {
                st.faults.conflict -= 1;
                return conflict(&kind.plural, name);
            }
            if st.faults.throttle > 0 {
                st.faults.throttle -= 1;
                return status_body(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                );
            }
            if st.faults.unavailable > 0 {
                st.faults.unavailable -= 1;
                return status_body(503, "ServiceUnavailable", "the server is currently unable to handle the request");
            }
            let ct = headers.get(header::CONTENT_TYPE).and_then(|c| c.to_str().ok()).unwrap_or("");
            let patch: Value = match parsed {
                Some(Ok(v)) => v,
                Some(Err(e)) => return status_body(400, "BadRequest", &format!("error decoding patch: {e}")),
                None => return status_body(400, "BadRequest", "empty patch"),
            };
            if t.sub.as_deref() == Some("status") {
                let cur = st.get(&kind.group, &kind.plural, &ns, name).cloned();
                let Some(mut cur) = cur else {
                    return status_body(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural));
                };
                merge(&mut cur["status"], &patch["status"]);
                // A CRD's storedVersions must keep the storage version, and name only defined ones.
                if kind.kind == "CustomResourceDefinition"
                    && let Some(sv) = cur.pointer("/status/storedVersions").and_then(Value::as_array)
                {
                    let all: Vec<&str> = cur["spec"]["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v["name"].as_str())
                        .collect();
                    let storage = cur["spec"]["versions"]
                        .as_array()
                        .and_then(|a| a.iter().find(|v| v["storage"] == true))
                        .and_then(|v| v["name"].as_str())
                        .unwrap_or_default();
                    let bad = sv.iter().enumerate().find(|(_, v)| !v.as_str().is_some_and(|v| all.contains(&v)));
                    let msg = match bad {
                        Some((i, v)) => Some(format!(
                            "status.storedVersions[{i}]: Invalid value: {v}: must appear in spec.versions"
                        )),
                        None if !sv.iter().any(|v| v == storage) => Some(format!(
                            "status.storedVersions: Invalid value: {}: must have the storage version {storage}",
                            Value::Array(sv.clone())
                        )),
                        None => None,
                    };
                    if let Some(msg) = msg {
                        return status_body(
                            422,
                            "Invalid",
                            &format!("CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {msg}"),
                        );
                    }
                }
                let s = cur["status"].clone();
                st.set_status(&kind.group, &kind.plural, &ns, name, s);
                return ok_json(st.get(&kind.group, &kind.plural, &ns, name).unwrap_or(&Value::Null));
            }
            if !ct.starts_with("application/apply-patch") && !ct.starts_with("application/merge-patch") {
                return status_body(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/merge-patch+json (got {ct})"
                    ),
                );
            }
            let op = if st.get(&kind.group, &kind.plural, &ns, name).is_some() { "UPDATE" } else { "CREATE" };
            if let Some(refused) = admit(&mut st, &kind.group, &t.version, &kind.plural, op) {
                return refused;
            }
            apply(
                &mut st,
                &kind,
                &av,
                &ns,
                name,
                patch,
                q.get("fieldManager").cloned(),
                ct.starts_with("application/apply-patch"),
                q.get("dryRun").is_some_and(|d| d == "All"),
            )
        }
        ("POST", None) => {
            let obj: Value = match parsed {
                Some(Ok(v)) => v,
                Some(Err(e)) => return status_body(400, "BadRequest", &format!("error decoding body: {e}")),
                None => return status_body(400, "BadRequest", "empty body"),
            };
            let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            if st.get(&kind.group, &kind.plural, &ns, &name).is_some() {
                return status_body(409, "AlreadyExists", &format!("{} \"{name}\" already exists", kind.plural));
            }
            if let Some(refused) = admit(&mut st, &kind.group, &t.version, &kind.plural, "CREATE") {
                return refused;
            }
            let dry = q.get("dryRun").is_some_and(|d| d == "All");
            let r = apply(&mut st, &kind, &av, &ns, &name, obj, q.get("fieldManager").cloned(), false, dry);
            if dry {
                return r;
            }
            if r.status() == StatusCode::OK {
                created_json(st.get(&kind.group, &kind.plural, &ns, &name).unwrap_or(&Value::Null))
            } else {
                r
            }
        }
        ("PUT", Some(name)) => {
            let mut obj: Value = match parsed {
                Some(Ok(v)) => v,
                Some(Err(e)) => return status_body(400, "BadRequest", &format!("error decoding body: {e}")),
                None => return status_body(400, "BadRequest", "empty body"),
            };
            let Some(cur) = st.get(&kind.group, &kind.plural, &ns, name).cloned() else {
                return status_body(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural));
            };
            let Some(rv) = obj["metadata"]["resourceVersion"].as_str().map(str::to_owned) else {
                return status_body(
                    422,
                    "Invalid",
                    &format!(
                        "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                        kind.kind
                    ),
                );
            };
            if cur["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
                return conflict(&kind.plural, name);
            }
            if let Some(refused) = admit(&mut st, &kind.group, &t.version, &kind.plural, "UPDATE") {
                return refused;
            }
            obj["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
            let generation = cur["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] =
                json!(if spec_part(&cur) != spec_part(&obj) { generation + 1 } else { generation });
            if kind.has_status {
                obj["status"] = cur["status"].clone();
            }
            obj["apiVersion"] = json!(kind.stored_av(&av));
            if !kind.schemas.is_empty() {
                let version = av.rsplit('/').next().unwrap_or("");
                let mut check = obj.clone();
                check["apiVersion"] = json!(av);
                if let Err(msg) = validate(&mut st, &kind, version, &check) {
                    return status_body(
                        422,
                        "Invalid",
                        &format!("{}.{} \"{name}\" is invalid: {msg}", kind.kind, kind.group),
                    );
                }
            }
            st.put(&kind.group, &kind.plural, &ns, obj);
            let stored = st.get(&kind.group, &kind.plural, &ns, name).cloned().unwrap_or(Value::Null);
            ok_json(&kind.convert_out(&stored, &av).unwrap_or(stored))
        }
        ("DELETE", Some(name)) => {
            if st.get(&kind.group, &kind.plural, &ns, name).is_none() {
                return status_body(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural));
            }
            if let Some(marked) = lifecycle::delete(&mut st, &kind.group, &kind.plural, &ns, name) {
                // Held by finalizers (or a Namespace, Terminating): the object as it stands.
                return ok_json(&marked);
            }
            ok_json(
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "kind": kind.plural}}),
            )
        }
        _ => status_body(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method})"),
        ),
    }
}

/// The log subresource: what the pod's container printed, as text, the last `tailLines` lines
/// cut to `limitBytes`; 404 for a pod that does not exist, 400 with the kubelet's words for
/// one whose container has not started.
fn pod_log(st: &ApiState, ns: &str, name: &str, q: &HashMap<String, String>) -> Response {
    let Some(pod) = st.get("", "pods", ns, name) else {
        return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        let c = pod.pointer("/spec/containers/0/name").and_then(Value::as_str).unwrap_or(name);
        return status_body(
            400,
            "BadRequest",
            &format!("container \"{c}\" in pod \"{name}\" is waiting to start: ContainerCreating"),
        );
    }
    let text = st.pod_logs.get(&format!("{ns}/{name}")).cloned().unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = q.get("tailLines").and_then(|t| t.parse::<usize>().ok()).unwrap_or(lines.len());
    let mut out: String = lines[lines.len().saturating_sub(tail)..].iter().map(|l| format!("{l}\n")).collect();
    if let Some(limit) = q.get("limitBytes").and_then(|b| b.parse::<usize>().ok())
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Response::builder().status(200).header(header::CONTENT_TYPE, "text/plain").body(Body::from(out)).unwrap_or_default()
}

/// The Eviction subresource: a granted eviction deletes the pod (200); one a
/// PodDisruptionBudget forbids is a 429 with the API server's text (docs/day2.md §1.1).
/// `minAvailable` and `maxUnavailable` count pods that are Ready; an unready pod may go
/// while the budget is otherwise met (the default `IfHealthyBudget` policy).
pub(in crate::sim::apiserver) fn evict(st: &mut ApiState, ns: &str, name: &str) -> Response {
    let Some(pod) = st.get("", "pods", ns, name).cloned() else {
        return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let ready = |p: &Value| {
        p.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let pdbs: Vec<Value> = st.list("policy", "poddisruptionbudgets", Some(ns)).into_iter().cloned().collect();
    let pods: Vec<Value> = st.list("", "pods", Some(ns)).into_iter().cloned().collect();
    for pdb in pdbs {
        let sel: Vec<(String, Option<String>)> = pdb
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned))).collect())
            .unwrap_or_default();
        if sel.is_empty() || !matches_labels(&pod, &sel) {
            continue;
        }
        let matching: Vec<&Value> = pods.iter().filter(|p| matches_labels(p, &sel)).collect();
        let healthy = matching.iter().filter(|p| ready(p)).count() as i64;
        let expected = matching.len() as i64;
        let desired = match (pdb.pointer("/spec/minAvailable"), pdb.pointer("/spec/maxUnavailable")) {
            (Some(m), _) => m.as_i64().unwrap_or(0),
            (None, Some(m)) => expected - m.as_i64().unwrap_or(0),
            _ => 0,
        };
        let after = if ready(&pod) { healthy - 1 } else { healthy };
        if after < desired {
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                "reason": "TooManyRequests", "code": 429,
                "details": {"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {desired} healthy pods and has {healthy} currently", pdb["metadata"]["name"].as_str().unwrap_or(""))}]}});
            return json_with(StatusCode::TOO_MANY_REQUESTS, &body);
        }
    }
    st.delete("", "pods", ns, name);
    ok_json(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
}
