//! A simulated Kubernetes API server (plain HTTP, in-process on 127.0.0.1) for the tests,
//! the benchmarks and `homelab demo`.
//!
//! What it does like the real one, because homelab depends on it: discovery (`/api`,
//! `/apis`, per group-version resource lists), GET/LIST (label selectors, metadata-only
//! lists), server-side apply (`application/apply-patch+yaml`: create or merge, no
//! annotation size limit, a no-op apply keeps the resourceVersion, a `resourceVersion` in the
//! applied object is a precondition, namespaced objects need their namespace), POST, DELETE,
//! `Status` error bodies, CRDs that become Established after a delay and are served by
//! discovery a moment later (discovery lag), custom resources validated against the CRD's
//! `openAPIV3Schema` (422 Invalid), Deployments that become Available, PVCs that bind only
//! when their StorageClass exists, Nodes from the simulated hosts, and pluggable simulated
//! operators ([`super::operators`]) that write the status of custom resources.
//!
//! Simplifications: lists in an apply replace the old list (no merge keys), fields dropped
//! from an apply are not removed, there is no watch and no authentication.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node as the simulated API server shows it.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    pub ip: String,
    pub ready: bool,
    pub worker: bool,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct SimApiConfig {
    /// A new CRD reports Established after this long.
    pub crd_establish: Duration,
    /// …and discovery serves its resources this much later.
    pub discovery_lag: Duration,
    /// A Deployment becomes Available after this long.
    pub deployment_ready: Duration,
    /// Validate custom resources against their CRD schema (as the real server does).
    pub validate: bool,
    /// Kubernetes version reported by `/version`.
    pub minor: u32,
    /// Added to every answer (network round trip plus API server work; benchmarks).
    pub latency: Duration,
}

impl Default for SimApiConfig {
    fn default() -> Self {
        SimApiConfig {
            crd_establish: Duration::from_millis(30),
            discovery_lag: Duration::from_millis(30),
            deployment_ready: Duration::from_millis(50),
            validate: true,
            minor: 33,
            latency: Duration::ZERO,
        }
    }
}

/// Fault injection: the next n apply requests get this answer.
#[derive(Debug, Default, Clone)]
pub struct ApiFaults {
    pub conflict: u32,
    pub throttle: u32,
    pub unavailable: u32,
    /// Deployments (namespace/name) that never become Available.
    pub stuck_deployments: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin { group, version, kind, plural, namespaced }
}

pub const BUILTINS: &[Builtin] = &[
    b("", "v1", "Namespace", "namespaces", false),
    b("", "v1", "ConfigMap", "configmaps", true),
    b("", "v1", "Secret", "secrets", true),
    b("", "v1", "ServiceAccount", "serviceaccounts", true),
    b("", "v1", "Service", "services", true),
    b("", "v1", "Node", "nodes", false),
    b("", "v1", "Pod", "pods", true),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    b("", "v1", "PersistentVolume", "persistentvolumes", false),
    b("", "v1", "Event", "events", true),
    b("apps", "v1", "Deployment", "deployments", true),
    b("apps", "v1", "DaemonSet", "daemonsets", true),
    b("apps", "v1", "StatefulSet", "statefulsets", true),
    b("apps", "v1", "ReplicaSet", "replicasets", true),
    b("batch", "v1", "Job", "jobs", true),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
    b("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false),
    b("storage.k8s.io", "v1", "StorageClass", "storageclasses", false),
    b("coordination.k8s.io", "v1", "Lease", "leases", true),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
    b("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true),
];

/// A kind the server serves: builtin, or defined by a CRD.
#[derive(Debug, Clone)]
pub struct Kind {
    pub group: String,
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub has_status: bool,
    /// CRDs only: when served by discovery, and the schema per version.
    pub served_at: Option<Instant>,
    pub schemas: HashMap<String, Value>,
}

pub type Key = (String, String, String, String); // group, plural, namespace, name

#[derive(Debug, Clone)]
pub struct Stored {
    pub value: Value,
    pub created: Instant,
    pub updated: Instant,
}

pub trait SimOperator: Send + Sync {
    fn name(&self) -> &str;
    /// Brings the objects it owns up to `now` (called before every request).
    fn reconcile(&self, st: &mut ApiState, now: Instant);
}

pub struct ApiState {
    pub objects: BTreeMap<Key, Stored>,
    pub kinds: Vec<Kind>,
    rv: u64,
    uid: u64,
    pub faults: ApiFaults,
    pub cfg: SimApiConfig,
    pub nodes: Option<Arc<dyn Fn() -> Vec<SimNode> + Send + Sync>>,
    operators: Vec<Arc<dyn SimOperator>>,
    pub log: Vec<String>,
    validators: HashMap<(String, String, String), Arc<jsonschema::Validator>>,
}

impl ApiState {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub fn kind_by_plural(&self, group: &str, plural: &str) -> Option<Kind> {
        self.kinds.iter().find(|k| k.group == group && k.plural == plural).cloned()
    }

    pub fn kind_by_kind(&self, group: &str, kind: &str) -> Option<Kind> {
        self.kinds.iter().find(|k| k.group == group && k.kind == kind).cloned()
    }

    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(group.into(), plural.into(), ns.into(), name.into())).map(|s| &s.value)
    }

    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| g == group && p == plural && ns.is_none_or(|x| x == n))
            .map(|(_, s)| &s.value)
            .collect()
    }

    /// Creates or replaces an object as a controller would (sets rv, uid, timestamps).
    pub fn put(&mut self, group: &str, plural: &str, ns: &str, mut value: Value) {
        let name = value["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let key = (group.to_owned(), plural.to_owned(), ns.to_owned(), name);
        let now = Instant::now();
        let prev = self.objects.get(&key).cloned();
        // A write that changes neither the content nor who owns which field is no write.
        if let Some(p) = &prev
            && strip_meta(&p.value) == strip_meta(&value)
            && same_owners(
                &p.value["metadata"]["managedFields"],
                value["metadata"]["managedFields"].as_array().map(Vec::as_slice).unwrap_or_default(),
            )
        {
            return;
        }
        let rv = self.next_rv();
        let uid = match &prev {
            Some(p) => p.value["metadata"]["uid"].clone(),
            None => {
                self.uid += 1;
                json!(format!("00000000-0000-4000-8000-{:012}", self.uid))
            }
        };
        let md = value["metadata"].as_object_mut();
        if let Some(md) = md {
            md.insert("resourceVersion".into(), json!(rv));
            md.insert("uid".into(), uid);
            md.entry("creationTimestamp").or_insert_with(|| json!(crate::foundation::time::now_rfc3339()));
            if !ns.is_empty() {
                md.insert("namespace".into(), json!(ns));
            }
        }
        let created = prev.map(|p| p.created).unwrap_or(now);
        self.objects.insert(key, Stored { value, created, updated: now });
    }

    /// Sets `status` of an object (a controller's status write); bumps resourceVersion when it changes.
    pub fn set_status(&mut self, group: &str, plural: &str, ns: &str, name: &str, status: Value) {
        let key = (group.to_owned(), plural.to_owned(), ns.to_owned(), name.to_owned());
        let Some(cur) = self.objects.get(&key) else { return };
        if cur.value.get("status") == Some(&status) {
            return;
        }
        let rv = self.next_rv();
        if let Some(s) = self.objects.get_mut(&key) {
            s.value["status"] = status;
            s.value["metadata"]["resourceVersion"] = json!(rv);
        }
    }

    pub fn age(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Duration> {
        self.objects.get(&(group.into(), plural.into(), ns.into(), name.into())).map(|s| s.created.elapsed())
    }

    pub fn since_update(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Duration> {
        self.objects.get(&(group.into(), plural.into(), ns.into(), name.into())).map(|s| s.updated.elapsed())
    }

    pub fn delete(&mut self, group: &str, plural: &str, ns: &str, name: &str) {
        self.objects.remove(&(group.into(), plural.into(), ns.into(), name.into()));
    }

    /// Whether Deployment `ns/name` is Available.
    pub fn deployment_available(&self, ns: &str, name: &str) -> bool {
        self.get("apps", "deployments", ns, name).is_some_and(|d| {
            d.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Available" && c["status"] == "True"))
        })
    }

    /// Nodes: the simulated hosts' plus stored Node objects.
    pub fn node_values(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self.list("", "nodes", None).into_iter().cloned().collect();
        if let Some(src) = &self.nodes {
            for n in src() {
                if out.iter().any(|o| o["metadata"]["name"] == n.name.as_str()) {
                    continue;
                }
                let role = if n.worker {
                    "node.kubernetes.io/microk8s-worker"
                } else {
                    "node.kubernetes.io/microk8s-controlplane"
                };
                out.push(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name, role: "microk8s-node"}, "resourceVersion": "1", "uid": format!("node-{}", n.name)},
                    "status": {
                        "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
                        "capacity": {"cpu": "4", "memory": "16318512Ki", "pods": "110"},
                        "allocatable": {"cpu": "4", "memory": "16216112Ki", "pods": "110"},
                        "conditions": [{"type": "Ready", "status": if n.ready { "True" } else { "False" }, "reason": "KubeletReady"}],
                        "nodeInfo": {"kubeletVersion": n.version, "osImage": "Ubuntu 22.04 LTS", "containerRuntimeVersion": "containerd://1.7"}
                    }
                }));
            }
        }
        out
    }
}

/// An object without the fields the server manages (to tell a no-op apply).
fn strip_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"] {
            md.remove(k);
        }
    }
    v
}

fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

/// Deep merge for server-side apply (maps merge, everything else is replaced).
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(bv) if bv.is_object() && v.is_object() => merge(bv, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

pub struct SimApiServer {
    pub url: String,
    /// Called after each request was acted on, before its answer leaves (crash tests).
    pub tap: super::tap::Tap,
    state: Arc<Mutex<ApiState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimApiServer {
    pub async fn start(cfg: SimApiConfig) -> anyhow::Result<SimApiServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let kinds = BUILTINS
            .iter()
            .map(|b| Kind {
                group: b.group.into(),
                versions: vec![b.version.into()],
                kind: b.kind.into(),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                has_status: matches!(
                    b.kind,
                    "Deployment"
                        | "DaemonSet"
                        | "StatefulSet"
                        | "Pod"
                        | "Node"
                        | "Namespace"
                        | "PersistentVolumeClaim"
                        | "CustomResourceDefinition"
                        | "Job"
                ),
                served_at: None,
                schemas: HashMap::new(),
            })
            .collect();
        let state = Arc::new(Mutex::new(ApiState {
            objects: BTreeMap::new(),
            kinds,
            rv: 1000,
            uid: 0,
            faults: ApiFaults::default(),
            cfg,
            nodes: None,
            operators: vec![],
            log: vec![],
            validators: HashMap::new(),
        }));
        for ns in ["default", "kube-system", "kube-public"] {
            state.lock().unwrap_or_else(|e| e.into_inner()).put("", "namespaces", "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
        }
        let tap = super::tap::Tap::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(tap.clone(), super::tap::layer));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SimApiServer { url: format!("http://{addr}"), tap, state, task })
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_operator(&self, op: Arc<dyn SimOperator>) {
        self.state().operators.push(op);
    }

    pub fn set_nodes(&self, f: Arc<dyn Fn() -> Vec<SimNode> + Send + Sync>) {
        self.state().nodes = Some(f);
    }

    pub fn faults(&self, f: impl FnOnce(&mut ApiFaults)) {
        f(&mut self.state().faults);
    }

    /// A kubeconfig for this server (token auth, no TLS).
    pub fn kubeconfig(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\ncurrent-context: {context}\nusers:\n- name: {context}\n  user:\n    token: sim-token-{context}\n",
            self.url
        )
    }

    /// Requests so far (`METHOD path`).
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
    }
    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    /// A stored object (after letting the operators run).
    pub fn object(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let mut st = self.state();
        reconcile(&mut st);
        st.get(group, plural, ns, name).cloned()
    }

    pub fn objects(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        let mut st = self.state();
        reconcile(&mut st);
        st.list(group, plural, ns).into_iter().cloned().collect()
    }

    /// Every stored object (after letting the operators run).
    pub fn all_objects(&self) -> Vec<Value> {
        let mut st = self.state();
        reconcile(&mut st);
        st.objects.values().map(|o| o.value.clone()).collect()
    }
}

fn json_with(code: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

/// The API server's 409 for a write based on an old resourceVersion.
fn conflict(plural: &str, name: &str) -> Response {
    status_body(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

fn status_body(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    json_with(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
}

fn ok_json(v: &Value) -> Response {
    json_with(StatusCode::OK, v)
}

fn created_json(v: &Value) -> Response {
    json_with(StatusCode::CREATED, v)
}

/// Lazily brings every controller up to now: CRD establishment, Deployments, PVCs, operators.
pub fn reconcile(st: &mut ApiState) {
    let now = Instant::now();
    // CRDs: Established after a delay, served by discovery a moment later. (Only names are
    // copied: CRDs are large and this runs before every request.)
    let crds: Vec<(String, String, String, bool)> = st
        .list("apiextensions.k8s.io", "customresourcedefinitions", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["group"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["names"]["plural"].as_str().unwrap_or_default().to_owned(),
                v.pointer("/status/conditions").is_some(),
            )
        })
        .collect();
    for (name, group, plural, has_conditions) in crds {
        let age = st.age("apiextensions.k8s.io", "customresourcedefinitions", "", &name).unwrap_or_default();
        if age >= st.cfg.crd_establish && !has_conditions {
            let (names, stored) = match st.get("apiextensions.k8s.io", "customresourcedefinitions", "", &name) {
                Some(v) => (
                    v["spec"]["names"].clone(),
                    v["spec"]["versions"]
                        .as_array()
                        .map(|a| {
                            a.iter().filter(|x| x["storage"] == true).map(|x| x["name"].clone()).collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                ),
                None => continue,
            };
            st.set_status(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
                &name,
                json!({"acceptedNames": names, "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                ], "storedVersions": stored}),
            );
        }
        if let Some(k) = st.kinds.iter_mut().find(|k| k.group == group && k.plural == plural)
            && k.served_at.is_none()
            && age >= st.cfg.crd_establish + st.cfg.discovery_lag
        {
            k.served_at = Some(now);
        }
    }
    // Deployments: Available after a delay (unless stuck).
    let deps: Vec<(String, String, Value)> = st
        .list("apps", "deployments", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v.clone(),
            )
        })
        .collect();
    for (ns, name, v) in deps {
        let since = st.since_update("apps", "deployments", &ns, &name).unwrap_or_default();
        let stuck = st.faults.stuck_deployments.iter().any(|s| s == &format!("{ns}/{name}"));
        let replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
        let gen_ = v["metadata"]["generation"].as_i64().unwrap_or(1);
        let ready = since >= st.cfg.deployment_ready && !stuck;
        let status = if ready {
            json!({"observedGeneration": gen_, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
        } else {
            json!({"observedGeneration": gen_, "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
                   "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}]})
        };
        st.set_status("apps", "deployments", &ns, &name, status);
    }
    // PVCs bind when their StorageClass exists.
    let default_sc: Option<String> = st
        .list("storage.k8s.io", "storageclasses", None)
        .into_iter()
        .find(|s| {
            s.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class").and_then(Value::as_str)
                == Some("true")
        })
        .and_then(|s| s["metadata"]["name"].as_str().map(str::to_owned));
    let pvcs: Vec<(String, String, Option<String>)> = st
        .list("", "persistentvolumeclaims", None)
        .into_iter()
        .map(|v| {
            (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                v["spec"]["storageClassName"].as_str().map(str::to_owned),
            )
        })
        .collect();
    for (ns, name, class) in pvcs {
        let class = class.or(default_sc.clone());
        let bound = class.as_deref().is_some_and(|c| st.get("storage.k8s.io", "storageclasses", "", c).is_some());
        let size = st
            .get("", "persistentvolumeclaims", &ns, &name)
            .and_then(|v| v.pointer("/spec/resources/requests/storage").cloned())
            .unwrap_or(json!("1Gi"));
        let status = if bound {
            json!({"phase": "Bound", "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]})
        } else {
            json!({"phase": "Pending"})
        };
        st.set_status("", "persistentvolumeclaims", &ns, &name, status);
    }
    let ops = st.operators.clone();
    for op in ops {
        op.reconcile(st, now);
    }
}

fn parse_label_selector(s: &str) -> Vec<(String, Option<String>)> {
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

fn matches_labels(v: &Value, sel: &[(String, Option<String>)]) -> bool {
    sel.iter().all(|(k, want)| {
        let got = v.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str);
        match want {
            Some(w) => got == Some(w.as_str()),
            None => got.is_some(),
        }
    })
}

struct Target {
    group: String,
    version: String,
    ns: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
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

fn query(uri: &Uri) -> HashMap<String, String> {
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

fn served(k: &Kind) -> bool {
    k.served_at.is_none_or(|t| t <= Instant::now()) && (k.schemas.is_empty() || k.served_at.is_some())
}

fn resource_list(st: &ApiState, group: &str, version: &str) -> Option<Value> {
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

async fn handle(
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
    st.log.push(format!("{method} {}", uri.path()));
    reconcile(&mut st);
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
            ok_json(
                &json!({"apiVersion": av, "kind": format!("{}List", kind.kind), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            )
        }
        ("GET", Some(name)) => {
            let obj = if kind.kind == "Node" {
                st.node_values().into_iter().find(|n| n["metadata"]["name"] == name.as_str())
            } else {
                st.get(&kind.group, &kind.plural, &ns, name).cloned()
            };
            match obj {
                Some(o) => ok_json(&o),
                None => status_body(
                    404,
                    "NotFound",
                    &format!("{}.{} \"{name}\" not found", kind.plural, kind.group).replace(". \"", " \""),
                ),
            }
        }
        ("PATCH", Some(name)) => {
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
            obj["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
            let generation = cur["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] =
                json!(if spec_part(&cur) != spec_part(&obj) { generation + 1 } else { generation });
            if kind.has_status {
                obj["status"] = cur["status"].clone();
            }
            st.put(&kind.group, &kind.plural, &ns, obj);
            ok_json(st.get(&kind.group, &kind.plural, &ns, name).unwrap_or(&Value::Null))
        }
        ("DELETE", Some(name)) => {
            if st.get(&kind.group, &kind.plural, &ns, name).is_none() {
                return status_body(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural));
            }
            st.delete(&kind.group, &kind.plural, &ns, name);
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

#[allow(clippy::too_many_arguments)]
fn apply(
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
    if let Some(md) = patch["metadata"].as_object_mut() {
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
    let fields = owned_fields(&patch);
    let managed = managed_fields(cur.as_ref(), &next, manager.as_deref(), is_apply, av, fields);
    if let Some(c) = &cur {
        if strip_meta(c) == strip_meta(&next) && same_owners(&c["metadata"]["managedFields"], &managed) {
            return ok_json(c);
        }
        let generation = c["metadata"]["generation"].as_i64().unwrap_or(1);
        next["metadata"]["generation"] =
            json!(if spec_part(c) != spec_part(&next) { generation + 1 } else { generation });
    } else {
        next["metadata"]["generation"] = json!(1);
    }
    if !managed.is_empty() {
        next["metadata"]["managedFields"] = Value::Array(managed);
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
    st.put(&kind.group, &kind.plural, ns, next);
    ok_json(st.get(&kind.group, &kind.plural, ns, name).unwrap_or(&Value::Null))
}

/// The leaf fields a request sets, as dotted paths (lists count as one field, as for
/// atomic lists; metadata counts only labels and annotations, as ownership does).
fn owned_fields(obj: &Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(x, &format!("{path}.{k}"), out);
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
                            walk(x, &format!("metadata.{part}"), &mut out);
                        }
                    }
                }
                _ => walk(v, k, &mut out),
            }
        }
    }
    out
}

/// `{"f:spec": {"f:replicas": {}}}` from dotted paths, the FieldsV1 form.
fn fields_v1(paths: &std::collections::BTreeSet<String>) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut cur = &mut root;
        for seg in p.split('.') {
            let Some(m) = cur.as_object_mut() else { break };
            cur = m.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
        }
    }
    root
}

fn paths_of(fields: &Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, x) in m {
                    let seg = k.strip_prefix("f:").unwrap_or(k);
                    walk(x, &if path.is_empty() { seg.to_owned() } else { format!("{path}.{seg}") }, out);
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

fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

/// The `managedFields` after a write, as the API server keeps them: one entry per manager
/// and operation holding the fields it set; a field another manager set to a different
/// value moves to the writer (a forced apply, or an update); equal values are shared.
fn managed_fields(
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
fn same_owners(a: &Value, b: &[Value]) -> bool {
    let key = |e: &Value| (e["manager"].clone(), e["operation"].clone(), e["fieldsV1"].clone());
    let a: Vec<_> = a.as_array().map(|v| v.iter().map(key).collect()).unwrap_or_default();
    let b: Vec<_> = b.iter().map(key).collect();
    a == b
}

fn register_crd(st: &mut ApiState, crd: &Value) -> Result<(), String> {
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
    let entry = Kind {
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

/// OpenAPI v3 (as CRDs write it) → JSON Schema: `nullable`, `x-kubernetes-*` handled.
pub fn crd_schema_to_json_schema(s: &Value) -> Value {
    match s {
        Value::Object(m) => {
            let mut out = Map::new();
            let nullable = m.get("nullable") == Some(&Value::Bool(true));
            let int_or_string = m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (k, v) in m {
                match k.as_str() {
                    "properties" | "patternProperties" => {
                        let props: Map<String, Value> = v
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), crd_schema_to_json_schema(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" | "not" => {
                        out.insert(k.clone(), if v.is_object() { crd_schema_to_json_schema(v) } else { v.clone() });
                    }
                    "allOf" | "anyOf" | "oneOf" => {
                        out.insert(
                            k.clone(),
                            Value::Array(
                                v.as_array()
                                    .map(|a| a.iter().map(crd_schema_to_json_schema).collect())
                                    .unwrap_or_default(),
                            ),
                        );
                    }
                    "nullable" | "format" | "example" | "externalDocs" | "description" => {}
                    k if k.starts_with("x-kubernetes") => {}
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            if int_or_string {
                out.remove("type");
                out.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
            }
            if preserve {
                out.remove("additionalProperties");
            }
            if nullable && let Some(t) = out.get("type").cloned() {
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Validates a custom resource against its CRD's schema; unknown fields are errors only
/// where the schema is closed (as structural pruning would drop them, the real server
/// reports them with `fieldValidation=Strict`).
pub fn validate_against(schema: &Value, obj: &Value) -> Result<(), String> {
    let js = crd_schema_to_json_schema(schema);
    let v = jsonschema::draft4::new(&js).map_err(|e| format!("the CRD schema cannot be used: {e}"))?;
    let errs: Vec<String> =
        v.iter_errors(obj).take(5).map(|e| format!("{}: {e}", e.instance_path().as_str())).collect();
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

fn validate(st: &mut ApiState, kind: &Kind, version: &str, obj: &Value) -> Result<(), String> {
    if !st.cfg.validate {
        return Ok(());
    }
    let Some(schema) = kind.schemas.get(version) else { return Ok(()) };
    let key = (kind.group.clone(), kind.plural.clone(), version.to_owned());
    let validator = match st.validators.get(&key) {
        Some(v) => v.clone(),
        None => {
            let js = crd_schema_to_json_schema(schema);
            let v = Arc::new(jsonschema::draft4::new(&js).map_err(|e| format!("the CRD schema cannot be used: {e}"))?);
            st.validators.insert(key, v.clone());
            v
        }
    };
    // Status is written through the status subresource, not validated here.
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    let errs: Vec<String> =
        validator.iter_errors(&o).take(5).map(|e| format!("{}: {e}", e.instance_path().as_str())).collect();
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}
