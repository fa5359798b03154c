//! Admission webhooks, called as the API server calls them: every stored
//! Mutating/ValidatingWebhookConfiguration whose rules match a create or update is called
//! through its Service. With `failurePolicy: Fail` (the default) a webhook that cannot be
//! reached refuses the write with the API server's `InternalError` text: no Deployment
//! behind the Service (`connection refused`), no CA in `clientConfig.caBundle` yet (the
//! call times out), or an injected fault. Facts: docs/apps.md §4.1.

use super::*;

fn rule_matches(rule: &Value, group: &str, version: &str, plural: &str, op: &str) -> bool {
    let has = |key: &str, v: &str| rule[key].as_array().is_some_and(|a| a.iter().any(|x| x == "*" || x == v));
    has("apiGroups", group) && has("apiVersions", version) && has("resources", plural) && has("operations", op)
}

/// Whether Service `ns/name` has a ready backend: an Available Deployment in its namespace
/// whose pods carry every label the Service selects.
fn backend_ready(st: &ApiState, ns: &str, svc: &Value) -> bool {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else { return false };
    st.list("apps", "deployments", Some(ns)).into_iter().any(|d| {
        let labels = d.pointer("/spec/template/metadata/labels");
        sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            && st.deployment_available(ns, d["metadata"]["name"].as_str().unwrap_or_default())
    })
}

/// The refusal of a write to `group/version` `plural` (`op`: CREATE or UPDATE), if a webhook
/// that must be called cannot be.
pub(in crate::sim::apiserver) fn admit(
    st: &mut ApiState,
    group: &str,
    version: &str,
    plural: &str,
    op: &str,
) -> Option<Response> {
    let mut hooks = Vec::new();
    for p in ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"] {
        for c in st.list("admissionregistration.k8s.io", p, None) {
            for w in c["webhooks"].as_array().into_iter().flatten() {
                if w["rules"].as_array().into_iter().flatten().any(|r| rule_matches(r, group, version, plural, op)) {
                    hooks.push(w.clone());
                }
            }
        }
    }
    for w in hooks {
        if w["failurePolicy"].as_str() == Some("Ignore") {
            continue;
        }
        let name = w["name"].as_str().unwrap_or("webhook");
        let svc = &w["clientConfig"]["service"];
        let (sns, sname) = (svc["namespace"].as_str().unwrap_or("default"), svc["name"].as_str().unwrap_or(""));
        let port = svc["port"].as_u64().unwrap_or(443);
        let url = format!(
            "https://{sname}.{sns}.svc:{port}{}?timeout={}s",
            svc["path"].as_str().unwrap_or("/"),
            w["timeoutSeconds"].as_u64().unwrap_or(10)
        );
        let service = st.get("", "services", sns, sname).cloned();
        let ip = service
            .as_ref()
            .and_then(|s| s.pointer("/spec/clusterIP").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "10.152.183.43".into());
        let cause = match &service {
            None => Some(format!("service \"{sname}\" not found")),
            Some(s) if !backend_ready(st, sns, s) => Some(format!("dial tcp {ip}:{port}: connect: connection refused")),
            Some(_) if w.pointer("/clientConfig/caBundle").and_then(Value::as_str).is_none_or(str::is_empty) => {
                Some("context deadline exceeded".to_owned())
            }
            Some(_) if st.faults.webhook_refusals > 0 => {
                st.faults.webhook_refusals -= 1;
                Some(format!("dial tcp {ip}:{port}: connect: connection refused"))
            }
            Some(_) => None,
        };
        if let Some(cause) = cause {
            return Some(status_body(
                500,
                "InternalError",
                &format!(
                    "Internal error occurred: failed calling webhook \"{name}\": failed to call webhook: Post \"{url}\": {cause}"
                ),
            ));
        }
    }
    None
}
