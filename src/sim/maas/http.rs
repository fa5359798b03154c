//! The HTTP side of the simulated MAAS: OAuth PLAINTEXT checks, query and form parsing, routing,
//! MAAS's error texts and status codes.

use super::*;

pub(in crate::sim::maas) fn text(status: StatusCode, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-MAAS-API-Hash", "simulated")
        .body(Body::from(body.to_owned()))
        .unwrap_or_default()
}

pub(in crate::sim::maas) fn json_resp(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("X-MAAS-API-Hash", "simulated")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

pub(in crate::sim::maas) fn field_error(field: &str, msg: &str) -> Response {
    json_resp(StatusCode::BAD_REQUEST, &json!({ field: [msg] }))
}

pub(in crate::sim::maas) fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("simulated connection drop"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

pub(in crate::sim::maas) enum Auth {
    Ok,
    Anonymous,
    Bad(Response),
}

pub(in crate::sim::maas) fn check_auth(headers: &HeaderMap, st: &mut State, cfg: &SimMaasConfig) -> Auth {
    let Some(h) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Auth::Anonymous };
    let Some(rest) = h.strip_prefix("OAuth ") else { return Auth::Anonymous };
    let mut p: HashMap<String, String> = HashMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            let v = v.trim().trim_matches('"');
            p.insert(k.trim().to_owned(), v.replace("%26", "&"));
        }
    }
    let needed = [
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
    ];
    if needed.iter().any(|k| !p.contains_key(*k)) {
        // Incomplete OAuth parameters make the request anonymous, not rejected.
        return Auth::Anonymous;
    }
    let unauthorized = |msg: String| {
        Auth::Bad(
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .header(header::WWW_AUTHENTICATE, "OAuth realm=\"OAuth\"")
                .body(Body::from(msg))
                .unwrap_or_default(),
        )
    };
    if p.get("oauth_version").is_some_and(|v| v != "1.0") {
        return unauthorized("Authorization Error: 'OAuth version must be 1.0'".into());
    }
    let parts: Vec<&str> = cfg.api_key.split(':').collect();
    let (ck, tk, ts) = (
        parts.first().copied().unwrap_or(""),
        parts.get(1).copied().unwrap_or(""),
        parts.get(2).copied().unwrap_or(""),
    );
    if p["oauth_consumer_key"] != ck {
        return unauthorized("Authorization Error: Invalid API key.".into());
    }
    if p["oauth_token"] != tk {
        return unauthorized(format!("Authorization Error: 'Invalid access token: {}'", p["oauth_token"]));
    }
    let Ok(stamp) = p["oauth_timestamp"].parse::<u64>() else {
        return Auth::Bad(text(
            StatusCode::BAD_REQUEST,
            "'Bad Request: the following problems were found among the auth params: oauth_timestamp has an unexpected type'",
        ));
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now.saturating_sub(stamp) > 300 {
        return unauthorized(format!(
            "Authorization Error: 'Expired timestamp: given {stamp} and now {now} has a greater difference than threshold 300'"
        ));
    }
    if !st.nonces.insert(p["oauth_nonce"].clone()) {
        return unauthorized(format!("Authorization Error: 'Nonce already used: {}'", p["oauth_nonce"]));
    }
    if p["oauth_signature_method"] != "PLAINTEXT" {
        return unauthorized("Authorization Error: 'Signature method not supported'".into());
    }
    if p["oauth_signature"] != format!("&{ts}") {
        return unauthorized(format!(
            "Authorization Error: 'Invalid signature. Expected signature base string: &{ts}'"
        ));
    }
    Auth::Ok
}

pub(in crate::sim::maas) fn parse_query(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(form_urlencoded).unwrap_or_default()
}

pub(in crate::sim::maas) fn form_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_pct(k), decode_pct(v))
        })
        .collect()
}

pub(in crate::sim::maas) fn decode_pct(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(in crate::sim::maas) fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
}

pub(in crate::sim::maas) async fn handle(
    axum::extract::State((state, cfg)): axum::extract::State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (delay, drop_now) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let drop_now = st.faults.drop > 0;
        if drop_now {
            st.faults.drop -= 1;
        }
        (st.faults.slow, drop_now)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if drop_now {
        return dropped();
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let query = parse_query(&uri);
    let op = get(&query, "op").map(str::to_owned);
    let filter = query.first().filter(|_| op.is_none()).map(|(k, _)| format!("?{k}=…")).unwrap_or_default();
    st.log.push(format!(
        "{method} {}{}{filter}",
        uri.path(),
        op.as_deref().map(|o| format!("?op={o}")).unwrap_or_default()
    ));
    if st.faults.unavailable > 0 {
        st.faults.unavailable -= 1;
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unable to connect to any rack controller; no connections available.",
        );
        r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let path = uri.path().to_owned();
    let Some(rel) = path.strip_prefix("/MAAS/api/2.0/") else {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: {path}."));
    };
    let rel = rel.to_owned();
    // URL routing happens before authentication: an unknown endpoint is a 404 for everyone.
    let segs: Vec<&str> = rel.split('/').collect();
    let single_partition = segs.len() == 6 && segs[0] == "nodes" && segs[4] == "partition";
    if !(rel.ends_with('/') || single_partition) {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: {path}."));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if (method == Method::POST || method == Method::PUT) && is_json && cfg.reject_json {
        return text(
            StatusCode::BAD_REQUEST,
            "homelab simulator: MAAS handlers read form data (request.POST); this JSON body would be ignored by a real MAAS. Send application/x-www-form-urlencoded or multipart/form-data.",
        );
    }
    let form = if method == Method::POST || method == Method::PUT {
        form_urlencoded(&String::from_utf8_lossy(&body))
    } else {
        Vec::new()
    };
    // Anonymous endpoints first.
    if rel == "version/" && method == Method::GET {
        return json_resp(
            StatusCode::OK,
            &json!({"capabilities": ["networks-management", "static-ipaddresses", "ipv6-deployment-ubuntu", "devices-management", "storage-deployment-ubuntu", "network-deployment-ubuntu", "bridging-interface-ubuntu", "bridging-automatic-ubuntu", "authenticate-api"], "version": "3.6.5-16459-g.simulated", "subversion": ""}),
        );
    }
    let auth = check_auth(&headers, &mut st, &cfg);
    match auth {
        Auth::Bad(r) => return r,
        Auth::Anonymous => {
            return match (method.as_str(), rel.as_str()) {
                ("GET", "machines/") | ("POST", "machines/") => text(
                    StatusCode::BAD_REQUEST,
                    &format!("Unrecognised signature: method={method} op={}", op.as_deref().unwrap_or("None")),
                ),
                _ => text(StatusCode::UNAUTHORIZED, "Forbidden"),
            };
        }
        Auth::Ok => {}
    }
    advance_all(&mut st, &cfg);
    if method == Method::POST
        && let Some((fop, msg)) = st.faults.conflict.clone()
        && op.as_deref() == Some(fop.as_str())
    {
        st.faults.conflict = None;
        return text(StatusCode::CONFLICT, &msg);
    }
    let drop_after = method == Method::POST
        && st.faults.drop_after_acting.is_some()
        && st.faults.drop_after_acting.as_deref() == op.as_deref();
    let resp = route(&mut st, &cfg, &method, &rel, &query, &form, op.as_deref());
    if drop_after && resp.status().is_success() {
        st.faults.drop_after_acting = None;
        return dropped();
    }
    resp
}

pub(in crate::sim::maas) fn unrecognised(method: &Method, op: Option<&str>) -> Response {
    text(StatusCode::BAD_REQUEST, &format!("Unrecognised signature: method={method} op={}", op.unwrap_or("None")))
}

pub(in crate::sim::maas) fn route(
    st: &mut State,
    cfg: &SimMaasConfig,
    method: &Method,
    rel: &str,
    query: &[(String, String)],
    form: &[(String, String)],
    op: Option<&str>,
) -> Response {
    let segs: Vec<&str> = rel.split('/').collect();
    // Every endpoint except a single partition ends with a slash.
    let single_partition = segs.len() == 6 && segs[0] == "nodes" && segs[4] == "partition";
    if !(rel.ends_with('/') || single_partition) {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: /MAAS/api/2.0/{rel}."));
    }
    let segs: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["users"]) if op == Some("whoami") => json_resp(
            StatusCode::OK,
            &json!({"username": cfg.username, "email": format!("{}@example.com", cfg.username), "is_local": true, "is_superuser": true, "resource_uri": "/MAAS/api/2.0/users/"}),
        ),
        ("GET", ["users"]) => unrecognised(method, op),
        ("GET", ["regioncontrollers"]) | ("GET", ["rackcontrollers"]) => json_resp(
            StatusCode::OK,
            &json!([{
                "system_id": "c0ntr1",
                "hostname": cfg.controller_hostname,
                "fqdn": format!("{}.maas", cfg.controller_hostname),
                "ip_addresses": cfg.controller_ips,
                "node_type": 4,
                "node_type_name": "Region and rack controller",
                "resource_uri": format!("/MAAS/api/2.0/{}/c0ntr1/", segs[0]),
            }]),
        ),
        ("GET", ["maas"]) if op == Some("get_config") => match get(query, "name") {
            Some("dns_trusted_acl") => json_resp(StatusCode::OK, &json!(cfg.dns_trusted_acl)),
            Some("maas_name") => json_resp(StatusCode::OK, &json!(cfg.controller_hostname)),
            Some("default_distro_series") => json_resp(StatusCode::OK, &json!("jammy")),
            Some(n) => text(StatusCode::BAD_REQUEST, &format!("{{\"name\": [\"Invalid config name: {n}\"]}}")),
            None => text(StatusCode::BAD_REQUEST, "{\"name\": [\"This field is required.\"]}"),
        },
        ("GET", ["maas"]) => unrecognised(method, op),
        ("GET", ["machines"]) => list_machines(st, query),
        ("GET", ["machines", id]) => with_machine(st, id, |m, _| json_resp(StatusCode::OK, &machine_json(m))),
        ("POST", ["machines", id]) => machine_op(st, cfg, id, op, form),
        ("PUT", ["machines", id]) => with_machine(st, id, |m, _| {
            if let Some(h) = get(form, "hostname") {
                let ok = !h.is_empty()
                    && h.len() <= 63
                    && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !h.starts_with('-');
                if !ok {
                    return field_error(
                        "hostname",
                        &format!(
                            "Node name must start with a letter or number and contain only letters, numbers and hyphens: '{h}'"
                        ),
                    );
                }
                m.hostname = h.to_owned();
            }
            json_resp(StatusCode::OK, &machine_json(m))
        }),
        ("GET", ["nodes", id, "blockdevices"]) => {
            with_machine(st, id, |m, _| json_resp(StatusCode::OK, &Value::Array(block_devices(m))))
        }
        ("GET", ["nodes", id, "volume-groups"]) => {
            with_machine(st, id, |m, _| json_resp(StatusCode::OK, &Value::Array(volume_groups(m))))
        }
        ("GET", ["nodes", id, "volume-group", vg]) => with_machine(st, id, |m, _| {
            match volume_groups(m).into_iter().find(|v| v["id"].as_i64().map(|i| i.to_string()).as_deref() == Some(*vg))
            {
                Some(v) => json_resp(StatusCode::OK, &v),
                None => text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query."),
            }
        }),
        ("POST", ["nodes", id, "volume-group", vg]) if op == Some("create_logical_volume") => {
            create_lv(st, id, vg, form)
        }
        ("POST", ["nodes", _, "volume-group", _]) => unrecognised(method, op),
        ("GET", ["account", "prefs", "sshkeys"]) => {
            json_resp(StatusCode::OK, &Value::Array(st.ssh_keys.iter().map(|(id, k)| key_json(*id, k)).collect()))
        }
        ("POST", ["account", "prefs", "sshkeys"]) if op.is_none() => add_key(st, form),
        ("GET", ["events"]) if op == Some("query") => events(st, query),
        ("GET", ["events"]) => unrecognised(method, op),
        ("DELETE", ["machines"]) => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, POST")
            .body(Body::empty())
            .unwrap_or_default(),
        _ => text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: /MAAS/api/2.0/{rel}.")),
    }
}

pub(in crate::sim::maas) fn with_machine(
    st: &mut State,
    id: &str,
    f: impl FnOnce(&mut SimMachine, &mut i64) -> Response,
) -> Response {
    let mut next = st.next_event_id;
    let r = match st.machines.iter_mut().find(|m| m.system_id == id) {
        Some(m) => f(m, &mut next),
        None => text(StatusCode::NOT_FOUND, "No Machine matches the given query."),
    };
    st.next_event_id = next;
    r
}

pub(in crate::sim::maas) fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(in crate::sim::maas) fn list_machines(st: &State, query: &[(String, String)]) -> Response {
    const ALLOWED: [&str; 6] = ["id", "hostname", "mac_address", "status", "op", "domain"];
    for (k, _) in query {
        if !ALLOWED.contains(&k.as_str()) {
            return field_error(k, "No such constraint.");
        }
    }
    let macs: Vec<String> = query.iter().filter(|(k, _)| k == "mac_address").map(|(_, v)| v.clone()).collect();
    for m in &macs {
        if !is_mac(m) {
            return field_error("mac_address", &format!("'{m}' is not a valid MAC address."));
        }
    }
    let ids: Vec<&str> = query.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.as_str()).collect();
    let hosts: Vec<&str> = query.iter().filter(|(k, _)| k == "hostname").map(|(_, v)| v.as_str()).collect();
    let statuses: Vec<&str> = query.iter().filter(|(k, _)| k == "status").map(|(_, v)| v.as_str()).collect();
    for s in &statuses {
        if !(0..=22).any(|c| Status::from_code(c).filter_label() == *s) {
            return field_error("status", &format!("Select a valid choice. {s} is not one of the available choices."));
        }
    }
    let list: Vec<Value> = st
        .machines
        .iter()
        .filter(|m| macs.is_empty() || macs.contains(&m.mac))
        .filter(|m| ids.is_empty() || ids.contains(&m.system_id.as_str()))
        .filter(|m| hosts.is_empty() || hosts.contains(&m.hostname.as_str()))
        .filter(|m| statuses.is_empty() || statuses.contains(&m.status.filter_label().as_str()))
        .map(machine_json)
        .collect();
    json_resp(StatusCode::OK, &Value::Array(list))
}
