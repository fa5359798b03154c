//! The stored objects, the kinds the server serves (built in and from CRDs), its configuration and
//! injected faults: what the other parts of the simulated API server read and write.

use super::*;

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
    /// What each request costs ([`ApiCosts::measured`] in the benchmarks; free in tests).
    pub costs: ApiCosts,
    /// Serve HTTPS with a CA of its own, as `:16443` does (the kubeconfigs carry the CA).
    pub tls: bool,
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
            costs: ApiCosts::FREE,
            tls: false,
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
    /// The next N calls to an admission webhook fail as if its Service or the CNI were
    /// changing under a ready operator (`connect: connection refused`).
    pub webhook_refusals: u32,
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
    b("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false),
    b("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false),
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
    /// CRDs only: the version objects are stored in (`strategy: None` conversion rewrites
    /// only `apiVersion`, so an object is stored as the storage version of its last write).
    pub storage: Option<String>,
}

impl Kind {
    /// The object as a client asking for `av` reads it: its stored version must still be
    /// one the CRD defines, or the server cannot convert it (apiextensions-apiserver's
    /// `nopConverter` error).
    pub fn convert_out(&self, obj: &Value, av: &str) -> Result<Value, String> {
        if self.storage.is_none() {
            return Ok(obj.clone());
        }
        let stored = obj["apiVersion"].as_str().unwrap_or_default();
        let sv = stored.rsplit('/').next().unwrap_or_default();
        if !self.versions.iter().any(|v| v == sv) {
            return Err(format!("request to convert CR from an invalid group/version: {stored}"));
        }
        let mut o = obj.clone();
        o["apiVersion"] = json!(av);
        Ok(o)
    }
    /// The `apiVersion` an object written now is stored under.
    pub fn stored_av(&self, av: &str) -> String {
        match &self.storage {
            Some(s) => format!("{}/{s}", self.group),
            None => av.to_owned(),
        }
    }
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
    pub(in crate::sim::apiserver) rv: u64,
    pub(in crate::sim::apiserver) uid: u64,
    pub faults: ApiFaults,
    pub cfg: SimApiConfig,
    pub nodes: Option<Arc<dyn Fn() -> Vec<SimNode> + Send + Sync>>,
    pub(in crate::sim::apiserver) operators: Vec<Arc<dyn SimOperator>>,
    pub log: Vec<String>,
    /// What each pod's container printed (`ns/pod` → text), read through `pods/NAME/log`.
    pub pod_logs: HashMap<String, String>,
    /// Machines ran the cluster's datastore (see `lifecycle`: when none does any more, the
    /// objects are gone with it).
    pub had_cluster: bool,
    pub(in crate::sim::apiserver) validators: HashMap<(String, String, String), Arc<jsonschema::Validator>>,
    /// When the operators last ran (see `handle`: with costs on, reads share a recent run).
    pub(in crate::sim::apiserver) reconciled: Option<Instant>,
}

impl ApiState {
    pub(in crate::sim::apiserver) fn next_rv(&mut self) -> String {
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
        if let Some(p) = &prev
            && is_no_write(&p.value, &value)
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

    /// Nodes: the simulated hosts' plus stored Node objects. A host's node that was patched
    /// (cordoned, tainted) is stored with the annotation `sim/from-host`: its spec and labels
    /// come from the store, its status from the host, and it is gone when the host's node is
    /// (deleted by `microk8s remove-node`).
    pub fn node_values(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self.list("", "nodes", None).into_iter().cloned().collect();
        if let Some(src) = &self.nodes {
            let live = src();
            out.retain(|o| {
                o.pointer("/metadata/annotations/sim~1from-host").is_none()
                    || live.iter().any(|n| o["metadata"]["name"] == n.name.as_str())
            });
            for n in live {
                if let Some(o) = out.iter_mut().find(|o| o["metadata"]["name"] == n.name.as_str()) {
                    if o.pointer("/metadata/annotations/sim~1from-host").is_some() {
                        o["status"] = host_node(&n)["status"].clone();
                    }
                    continue;
                }
                out.push(host_node(&n));
            }
        }
        out
    }

    /// The node named `name`, if the cluster has it.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.node_values().into_iter().find(|n| n["metadata"]["name"] == name)
    }
}

/// The Node object of a simulated host.
pub fn host_node(n: &SimNode) -> Value {
    let role = if n.worker { "node.kubernetes.io/microk8s-worker" } else { "node.kubernetes.io/microk8s-controlplane" };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name, role: "microk8s-node"}, "resourceVersion": "1", "uid": format!("node-{}", n.name)},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
            "capacity": {"cpu": "4", "memory": "16318512Ki", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16216112Ki", "pods": "110"},
            "conditions": [{"type": "Ready", "status": if n.ready { "True" } else { "False" }, "reason": if n.ready { "KubeletReady" } else { "NodeStatusUnknown" }}],
            "nodeInfo": {"kubeletVersion": n.version, "osImage": "Ubuntu 22.04 LTS", "containerRuntimeVersion": "containerd://1.7"}
        }
    })
}

/// Whether a node (as listed) is Ready.
pub fn node_ready(n: &Value) -> bool {
    n.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Whether a node carries a taint with this key.
pub fn node_tainted(n: &Value, key: &str) -> bool {
    n.pointer("/spec/taints").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t["key"] == key))
}

/// Whether new pods may be placed on a node: Ready, not cordoned, no NoSchedule/NoExecute taint.
pub fn node_schedulable(n: &Value) -> bool {
    node_ready(n)
        && n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true)
        && !n
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|t| matches!(t["effect"].as_str(), Some("NoSchedule") | Some("NoExecute"))))
}

/// An object without the fields the server manages (to tell a no-op apply).
/// A write that changes neither the content nor who owns which field is no write: the
/// server keeps the object and its resourceVersion.
pub(in crate::sim::apiserver) fn is_no_write(prev: &Value, next: &Value) -> bool {
    strip_meta(prev) == strip_meta(next)
        && same_owners(
            &prev["metadata"]["managedFields"],
            next["metadata"]["managedFields"].as_array().map(Vec::as_slice).unwrap_or_default(),
        )
}

pub(in crate::sim::apiserver) fn strip_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"] {
            md.remove(k);
        }
    }
    v
}

pub(in crate::sim::apiserver) fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

/// Deep merge for server-side apply (maps merge, everything else is replaced).
pub(in crate::sim::apiserver) fn merge(base: &mut Value, patch: &Value) {
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
