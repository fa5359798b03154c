//! A simulated Kubernetes API server (in-process on 127.0.0.1; plain HTTP, or HTTPS with a CA
//! of its own, [`tls`]) for the tests, the benchmarks and `homelab demo`; in the benchmarks it
//! charges what the real one charges per request, connection, write and byte ([`costs`]).
//!
//! What it does like the real one, because homelab depends on it: discovery (`/api`,
//! `/apis`, per group-version resource lists), GET/LIST (label selectors, metadata-only
//! lists), server-side apply (`application/apply-patch+yaml`: create or merge, no
//! annotation size limit, a no-op apply keeps the resourceVersion, a `resourceVersion` in the
//! applied object is a precondition, namespaced objects need their namespace), POST, DELETE,
//! `Status` error bodies, CRDs that become Established after a delay and are served by
//! discovery a moment later (discovery lag), custom resources validated against the CRD's
//! `openAPIV3Schema` (422 Invalid), admission webhooks that refuse a write while they
//! cannot be called ([`admission`]), Deployments that become Available, PVCs that bind only
//! when their StorageClass exists, Nodes from the simulated hosts, and pluggable simulated
//! operators ([`super::operators`]) that write the status of custom resources.
//!
//! Simplifications: lists in an apply replace the old list (no merge keys, but for the few
//! list maps in `ssa::LIST_MAPS`), fields dropped
//! from an apply are not removed, there is no watch and no authentication.

mod admission;
pub mod costs;
mod http;
mod lifecycle;
mod schema;
mod ssa;
mod state;
pub mod tls;
mod views;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use admission::*;
use http::*;
use schema::*;
use ssa::*;

pub use costs::ApiCosts;
pub use schema::{crd_schema_to_json_schema, validate_against};
pub use state::*;
pub use views::reconcile;

pub struct SimApiServer {
    pub url: String,
    /// Called after each request was acted on, before its answer leaves (crash tests).
    pub tap: super::tap::Tap,
    /// What the requests cost, and the connections opened.
    pub meter: costs::Meter,
    /// The CA of the server's certificate (PEM), when it serves TLS.
    pub ca_pem: Option<String>,
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
        let (cfg_costs, tls_on) = (cfg.costs, cfg.tls);
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
                storage: None,
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
            pod_logs: HashMap::new(),
            had_cluster: false,
            validators: HashMap::new(),
            reconciled: None,
        }));
        for ns in ["default", "kube-system", "kube-public"] {
            state.lock().unwrap_or_else(|e| e.into_inner()).put("", "namespaces", "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
        }
        let tap = super::tap::Tap::default();
        let meter = costs::Meter::new(cfg_costs);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(tap.clone(), super::tap::layer))
            .layer(axum::middleware::from_fn_with_state(meter.clone(), costs::layer))
            .into_make_service_with_connect_info::<tls::PeerAddr>();
        let (scheme, ca_pem, task) = match tls_on {
            false => (
                "http",
                None,
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                }),
            ),
            true => {
                let t = tls::ServerTls::generate()?;
                let l = tls::TlsListener { tcp: listener, acceptor: t.acceptor };
                (
                    "https",
                    Some(t.ca_pem),
                    tokio::spawn(async move {
                        let _ = axum::serve(l, app).await;
                    }),
                )
            }
        };
        Ok(SimApiServer { url: format!("{scheme}://{addr}"), tap, meter, ca_pem, state, task })
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store itself, for simulated parts that act on the cluster from outside a request
    /// (the Rook toolbox behind `kubectl exec`).
    pub fn shared(&self) -> Arc<Mutex<ApiState>> {
        self.state.clone()
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

    /// A kubeconfig for this server (token auth; the server's CA when it serves TLS).
    pub fn kubeconfig(&self, context: &str) -> String {
        use base64::Engine as _;
        let ca = match &self.ca_pem {
            Some(pem) => {
                format!("    certificate-authority-data: {}\n", base64::engine::general_purpose::STANDARD.encode(pem))
            }
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n{ca}    server: {}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\ncurrent-context: {context}\nusers:\n- name: {context}\n  user:\n    token: sim-token-{context}\n",
            self.url
        )
    }

    /// Requests so far (`METHOD path`).
    /// Appends a line to what a pod's container printed (its `pods/NAME/log`); `pod` may name
    /// a Deployment, whose pod gets the line.
    pub fn append_pod_log(&self, ns: &str, pod: &str, line: &str) {
        let mut st = self.state();
        reconcile(&mut st);
        let name = if st.get("", "pods", ns, pod).is_some() { pod.to_owned() } else { views::deployment_pod(pod) };
        let text = st.pod_logs.entry(format!("{ns}/{name}")).or_default();
        text.push_str(line);
        text.push('\n');
    }

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
