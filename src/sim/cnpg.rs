//! The simulated CloudNativePG operator, after docs/apps.md §4: its release is the tag of
//! the `cnpg-controller-manager` image. Once its Deployment is Available it makes its own CA
//! and writes it into every webhook of both webhook configurations (until then the API
//! server refuses Clusters: `sim::apiserver::admission`). For each `Cluster` it creates the
//! instances one at a time — PVC `<name>-<n>` (and `<name>-<n>-wal`), pod `<name>-<n>` ready
//! once its volumes are bound — the `-app` Secret (basic-auth, the documented keys, a
//! 64-character password kept across reconciles) and the `-rw`, `-ro`, `-r` Services, and
//! reports the documented phases (`Setting up primary`, `Creating a new replica`, `Cluster
//! in healthy state`) with `readyInstances`, `currentPrimary` and the Ready condition. A
//! larger `storage.size` is carried to the PVCs. There is no `observedGeneration`, as on
//! the real Cluster.

use super::apiserver::{ApiState, SimOperator};
use super::operators::{image_minor, name_of, ns_of};
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const G: &str = "postgresql.cnpg.io";
const NS: &str = "cnpg-system";
const OPERATOR: &str = "cnpg-controller-manager";

pub struct CnpgOperator {
    pub step: Duration,
    /// When each instance pod was created (`ns/pod`).
    born: Mutex<HashMap<String, Instant>>,
    /// When the operator was first seen Available (it writes its CA a step later).
    up_since: Mutex<Option<Instant>>,
    counter: Mutex<u64>,
}

impl CnpgOperator {
    pub fn new(step: Duration) -> CnpgOperator {
        CnpgOperator { step, born: Mutex::new(HashMap::new()), up_since: Mutex::new(None), counter: Mutex::new(0) }
    }

    fn password(&self) -> String {
        let mut n = self.counter.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut h: u64 = 0xcbf29ce484222325 ^ *n ^ (Instant::now().elapsed().as_nanos() as u64);
        (0..64)
            .map(|i| {
                h = (h ^ (i as u64 + 1)).wrapping_mul(0x100000001b3).rotate_left(7);
                alphabet[(h % alphabet.len() as u64) as usize] as char
            })
            .collect()
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn pvc_bound(st: &ApiState, ns: &str, name: &str) -> bool {
    st.get("", "persistentvolumeclaims", ns, name).is_some_and(|p| p.pointer("/status/phase") == Some(&json!("Bound")))
}

impl CnpgOperator {
    fn inject_ca(&self, st: &mut ApiState, now: Instant) {
        let mut up = self.up_since.lock().unwrap_or_else(|e| e.into_inner());
        if !st.deployment_available(NS, OPERATOR) {
            *up = None;
            return;
        }
        let since = *up.get_or_insert(now);
        if now.saturating_duration_since(since) < self.step {
            return;
        }
        let ca = b64("-----BEGIN CERTIFICATE-----\nsimulated CloudNativePG CA\n-----END CERTIFICATE-----\n");
        for p in ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"] {
            let name = if p.starts_with("mutating") {
                "cnpg-mutating-webhook-configuration"
            } else {
                "cnpg-validating-webhook-configuration"
            };
            let Some(mut c) = st.get("admissionregistration.k8s.io", p, "", name).cloned() else { continue };
            let mut changed = false;
            for w in c["webhooks"].as_array_mut().into_iter().flatten() {
                if w.pointer("/clientConfig/caBundle").is_none() && w["clientConfig"].is_object() {
                    w["clientConfig"]["caBundle"] = json!(ca);
                    changed = true;
                }
            }
            if changed {
                st.put("admissionregistration.k8s.io", p, "", c);
            }
        }
    }

    fn clusters(&self, st: &mut ApiState, now: Instant) {
        let Some(rel) = image_minor(st, NS, OPERATOR) else { return };
        if !st.deployment_available(NS, OPERATOR) {
            return;
        }
        let clusters: Vec<Value> = st.list(G, "clusters", None).into_iter().cloned().collect();
        for c in clusters {
            let (ns, name) = (ns_of(&c), name_of(&c));
            let instances = c.pointer("/spec/instances").and_then(Value::as_u64).unwrap_or(1);
            let size = c.pointer("/spec/storage/size").cloned().unwrap_or(json!("1Gi"));
            let class = c.pointer("/spec/storage/storageClass").cloned();
            let wal = c.pointer("/spec/walStorage").filter(|w| w.is_object()).cloned();
            let owner = json!([{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": name,
                "uid": c["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
            let db = c.pointer("/spec/bootstrap/initdb/database").and_then(Value::as_str).unwrap_or("app").to_owned();
            let user = c.pointer("/spec/bootstrap/initdb/owner").and_then(Value::as_str).unwrap_or(&db).to_owned();
            // Services first (the operator creates them with the Cluster).
            let role_label = if rel < (1, 24) { "role" } else { "cnpg.io/instanceRole" };
            for (suffix, selector) in [
                ("rw", json!({"cnpg.io/cluster": name, role_label: "primary"})),
                ("ro", json!({"cnpg.io/cluster": name, role_label: "replica"})),
                ("r", json!({"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"})),
            ] {
                let sname = format!("{name}-{suffix}");
                if st.get("", "services", &ns, &sname).is_none() {
                    st.put("", "services", &ns, json!({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": sname, "namespace": ns, "labels": {"cnpg.io/cluster": name}, "ownerReferences": owner},
                        "spec": {"type": "ClusterIP", "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}], "selector": selector}}));
                }
            }
            // The application's Secret (its password kept once made).
            let secret = format!("{name}-app");
            if st.get("", "secrets", &ns, &secret).is_none() {
                let pw = self.password();
                let host = format!("{name}-rw");
                let data = [
                    ("username", user.clone()),
                    ("user", user.clone()),
                    ("password", pw.clone()),
                    ("dbname", db.clone()),
                    ("host", host.clone()),
                    ("port", "5432".into()),
                    ("pgpass", format!("{host}:5432:{db}:{user}:{pw}\n")),
                    ("uri", format!("postgresql://{user}:{pw}@{host}.{ns}:5432/{db}")),
                    ("jdbc-uri", format!("jdbc:postgresql://{host}.{ns}:5432/{db}?password={pw}&user={user}")),
                    ("fqdn-uri", format!("postgresql://{user}:{pw}@{host}.{ns}.svc.cluster.local:5432/{db}")),
                    (
                        "fqdn-jdbc-uri",
                        format!("jdbc:postgresql://{host}.{ns}.svc.cluster.local:5432/{db}?password={pw}&user={user}"),
                    ),
                ];
                let data: serde_json::Map<String, Value> =
                    data.iter().map(|(k, v)| ((*k).to_owned(), json!(b64(v)))).collect();
                st.put("", "secrets", &ns, json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
                    "metadata": {"name": secret, "namespace": ns, "labels": {"cnpg.io/cluster": name, "cnpg.io/reload": "true"}, "ownerReferences": owner},
                    "data": data}));
            }
            // Instances one at a time: the next starts when the previous is ready.
            let mut ready = 0u64;
            let mut phase = "Setting up primary";
            for n in 1..=instances {
                let pod = format!("{name}-{n}");
                let mut claims = vec![(pod.clone(), size.clone(), class.clone())];
                if let Some(w) = &wal {
                    claims.push((format!("{pod}-wal"), w["size"].clone(), w.get("storageClass").cloned()));
                }
                for (pvc, sz, cl) in &claims {
                    match st.get("", "persistentvolumeclaims", &ns, pvc).cloned() {
                        None => {
                            let mut spec =
                                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": sz}}});
                            if let Some(cl) = cl.as_ref().filter(|c| c.is_string()) {
                                spec["storageClassName"] = cl.clone();
                            }
                            st.put("", "persistentvolumeclaims", &ns, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": {"name": pvc, "namespace": ns, "labels": {"cnpg.io/cluster": name, "cnpg.io/instanceName": pod}, "ownerReferences": owner},
                                "spec": spec}));
                        }
                        // A larger size is carried to the volume (Rook's class allows expansion).
                        Some(mut p) if p.pointer("/spec/resources/requests/storage") != Some(sz) => {
                            p["spec"]["resources"]["requests"]["storage"] = sz.clone();
                            st.put("", "persistentvolumeclaims", &ns, p);
                        }
                        Some(_) => {}
                    }
                }
                let key = format!("{ns}/{pod}");
                let role = if n == 1 { "primary" } else { "replica" };
                if st.get("", "pods", &ns, &pod).is_none() {
                    st.put("", "pods", &ns, json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": pod, "namespace": ns, "ownerReferences": owner, "labels": {
                            "cnpg.io/cluster": name, "cnpg.io/instanceName": pod, "cnpg.io/podRole": "instance",
                            "role": role, "cnpg.io/instanceRole": role}},
                        "spec": {"containers": [{"name": "postgres", "image": c.pointer("/spec/imageName").cloned().unwrap_or(json!("ghcr.io/cloudnative-pg/postgresql"))}],
                                 "volumes": claims.iter().map(|(p, ..)| json!({"name": p, "persistentVolumeClaim": {"claimName": p}})).collect::<Vec<_>>()},
                        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}}));
                    if let Ok(mut b) = self.born.lock() {
                        b.insert(key.clone(), now);
                    }
                }
                let born = self.born.lock().ok().and_then(|b| b.get(&key).copied()).unwrap_or(now);
                let bound = claims.iter().all(|(p, ..)| pvc_bound(st, &ns, p));
                let is_ready = bound && now.saturating_duration_since(born) >= self.step;
                let cond = if is_ready { "True" } else { "False" };
                if st.get("", "pods", &ns, &pod).and_then(|p| p.pointer("/status/conditions/0/status").cloned())
                    != Some(json!(cond))
                {
                    st.set_status(
                        "",
                        "pods",
                        &ns,
                        &pod,
                        json!({"phase": if is_ready { "Running" } else { "Pending" },
                        "conditions": [{"type": "Ready", "status": cond}]}),
                    );
                }
                if !is_ready {
                    if n > 1 {
                        phase = "Creating a new replica";
                    }
                    break;
                }
                ready += 1;
            }
            if ready == instances {
                phase = "Cluster in healthy state";
            }
            let healthy = ready == instances;
            let mut status = json!({
                "instances": instances.min(ready + 1),
                "readyInstances": ready,
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if healthy { "True" } else { "False" },
                    "reason": if healthy { "ClusterIsReady" } else { "ClusterIsNotReady" },
                    "message": if healthy { "Cluster is Ready" } else { "Cluster Is Not Ready" }}],
                "writeService": format!("{name}-rw"),
                "readService": format!("{name}-r"),
            });
            if ready > 0 {
                status["currentPrimary"] = json!(format!("{name}-1"));
                status["targetPrimary"] = json!(format!("{name}-1"));
            }
            if let Some(prev) = c.get("status")
                && prev.pointer("/conditions/0/status") == status.pointer("/conditions/0/status")
                && let Some(t) = prev.pointer("/conditions/0/lastTransitionTime")
            {
                status["conditions"][0]["lastTransitionTime"] = t.clone();
            } else {
                status["conditions"][0]["lastTransitionTime"] = json!(crate::foundation::time::now_rfc3339());
            }
            st.set_status(G, "clusters", &ns, &name, status);
        }
        // What a deleted Cluster owned goes with it (its PVCs too: their data).
        for (g, p) in [("", "pods"), ("", "persistentvolumeclaims"), ("", "services"), ("", "secrets")] {
            let orphans: Vec<(String, String)> = st
                .list(g, p, None)
                .into_iter()
                .filter(|o| o.pointer("/metadata/ownerReferences/0/kind") == Some(&json!("Cluster")))
                .filter(|o| {
                    let owner = o.pointer("/metadata/ownerReferences/0/name").and_then(Value::as_str).unwrap_or("");
                    st.get(G, "clusters", &ns_of(o), owner).is_none()
                })
                .map(|o| (ns_of(o), name_of(o)))
                .collect();
            for (ns, n) in orphans {
                st.delete(g, p, &ns, &n);
            }
        }
    }
}

impl SimOperator for CnpgOperator {
    fn name(&self) -> &str {
        "cloudnative-pg"
    }

    fn reconcile(&self, st: &mut ApiState, now: Instant) {
        self.inject_ca(st, now);
        self.clusters(st, now);
    }
}
