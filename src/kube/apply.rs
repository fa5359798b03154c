//! The apply engine: server-side apply (field manager `homelab`, force) of many objects in
//! dependency order — namespaces, CRDs (then wait until Established and refresh discovery),
//! RBAC and service accounts, configuration, workloads, custom resources — with bounded
//! concurrency inside each stage, retries on conflicts, throttling and server errors, and a
//! per-stage count of created, changed and unchanged objects.
//!
//! Observe, compare, act: one list per kind and namespace (for a cluster-wide kind, one GET
//! per object, since its list is the whole cluster's), all sent at once before the first
//! stage, gives the live objects; an object whose apply would change nothing
//! ([`super::converged`]: same values, nothing homelab owns dropped, drift by another manager
//! seen) is not sent, so a converged run makes no write. The others are applied and counted
//! by comparing the server's answer with the live object.
//!
//! A dry run goes through the same code with `dryRun=All`: the API server computes each apply
//! (defaults, admission, field ownership moving to `homelab`) and stores nothing, and the
//! answer compared with the live object tells created from changed from unchanged, exactly as
//! the real apply will count. Before the cluster exists, every object counts as created.

use super::converged::difference;
use crate::foundation::output::Ui;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Backoff, Probe, WaitSpec, wait_for};
use anyhow::{Result, anyhow, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, ApiGroup, Scope};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FIELD_MANAGER: &str = "homelab";

type Resources = Vec<(ApiResource, ApiCapabilities)>;
/// (apiVersion, kind, namespace) of one list.
type ListKey = (String, String, String);
/// Live objects of one list, by name.
type Observed = HashMap<String, Value>;

/// Discovery per group-version, fetched once even when many objects ask at the same time; one
/// per run, shared by every applier of the run ([`Applier::sharing_discovery`]).
pub type DiscoveryCache = Arc<Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Resources>>>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Namespaces,
    Crds,
    Rbac,
    Config,
    Workloads,
    Custom,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Namespaces, Stage::Crds, Stage::Rbac, Stage::Config, Stage::Workloads, Stage::Custom];
    pub fn name(self) -> &'static str {
        match self {
            Stage::Namespaces => "namespaces",
            Stage::Crds => "CRDs",
            Stage::Rbac => "RBAC and service accounts",
            Stage::Config => "configuration",
            Stage::Workloads => "workloads",
            Stage::Custom => "custom resources",
        }
    }
}

/// Groups served by every Kubernetes API server (everything else is a custom resource).
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "storage.k8s.io",
    "policy",
    "networking.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "admissionregistration.k8s.io",
    "autoscaling",
    "certificates.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

pub fn stage_of(obj: &Value) -> Stage {
    let kind = obj["kind"].as_str().unwrap_or("");
    let group = api_group(obj);
    match kind {
        "Namespace" => Stage::Namespaces,
        "CustomResourceDefinition" => Stage::Crds,
        "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding" => Stage::Rbac,
        "Deployment" | "DaemonSet" | "StatefulSet" | "Job" | "CronJob" | "Pod" => Stage::Workloads,
        _ if !BUILTIN_GROUPS.contains(&group.as_str()) => Stage::Custom,
        _ => Stage::Config,
    }
}

fn api_group(obj: &Value) -> String {
    group_version(obj["apiVersion"].as_str().unwrap_or("")).0.to_owned()
}

/// Whether a live CRD has the condition `Established=True`.
fn crd_established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

fn gvk(obj: &Value) -> Result<GroupVersionKind> {
    let av = obj["apiVersion"].as_str().ok_or_else(|| anyhow!("object without apiVersion"))?;
    let kind = obj["kind"].as_str().ok_or_else(|| anyhow!("object without kind"))?;
    let (g, v) = group_version(av);
    Ok(GroupVersionKind::gvk(g, v, kind))
}

pub fn describe(obj: &Value) -> String {
    let ns = obj["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
    format!("{} {ns}{}", obj["kind"].as_str().unwrap_or("?"), obj["metadata"]["name"].as_str().unwrap_or("?"))
}

/// Whether the server's answer to a dry-run apply is the live object itself (a list's items
/// and a patch's answer may differ in whether they carry `apiVersion` and `kind`).
fn same_object(live: &Value, answer: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    };
    strip(live) == strip(answer)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Changed,
    Unchanged,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub created: u32,
    pub changed: u32,
    pub unchanged: u32,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Changed => self.changed += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }
    pub fn changes(&self) -> u32 {
        self.created + self.changed
    }
}

/// What one apply did, per stage.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub stages: BTreeMap<Stage, Counts>,
}

impl ApplyReport {
    /// The counts of all stages together.
    pub fn total(&self) -> Counts {
        self.stages.values().fold(Counts::default(), |t, c| Counts {
            created: t.created + c.created,
            changed: t.changed + c.changed,
            unchanged: t.unchanged + c.unchanged,
        })
    }
    pub fn changes(&self) -> u32 {
        self.total().changes()
    }
    pub fn objects(&self) -> u32 {
        let t = self.total();
        t.created + t.changed + t.unchanged
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Objects applied at once within a stage.
    pub concurrency: usize,
    /// Deadline for CRDs to become Established (and served).
    pub crd_deadline: Duration,
    pub backoff: Backoff,
    /// Retries of one object on 409/429/5xx.
    pub retries: u32,
    /// Compute every apply on the server (`dryRun=All`) and store nothing.
    pub dry_run: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 8,
            crd_deadline: Duration::from_secs(120),
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
            retries: 8,
            dry_run: false,
        }
    }
}

pub struct Applier {
    /// None: the cluster does not exist yet (a dry run before the first `up`).
    client: Option<kube::Client>,
    ui: Ui,
    phase: PhaseId,
    opts: ApplyOptions,
    groups: DiscoveryCache,
    requests: AtomicU64,
}

/// A kind the API server does not serve (its CRD is gone, or was never applied): no object
/// of it can exist. `get`, `list` and `delete` read it as "none".
#[derive(Debug, thiserror::Error)]
#[error("the API server does not serve {kind} in {api_version}")]
pub struct NotServed {
    pub kind: String,
    pub api_version: String,
}

/// Whether resolving a kind failed because the server does not serve it: the kind is not in
/// its group-version, or the whole group-version is gone (404 from discovery).
fn not_served(e: &anyhow::Error) -> bool {
    e.is::<NotServed>() || e.downcast_ref::<kube::Error>().and_then(status_code) == Some(404)
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

impl Applier {
    pub fn new(client: kube::Client, ui: Ui, phase: PhaseId, opts: ApplyOptions) -> Applier {
        Applier {
            client: Some(client),
            ui,
            phase,
            opts,
            groups: DiscoveryCache::default(),
            requests: AtomicU64::new(0),
        }
    }

    /// This applier with the run's discovery, so the run asks for each group-version once.
    pub fn sharing_discovery(mut self, cache: &DiscoveryCache) -> Applier {
        self.groups = cache.clone();
        self
    }

    /// A dry-run applier for a cluster that does not exist yet: nothing is live, so every
    /// object would be created.
    pub fn without_cluster(ui: Ui, phase: PhaseId, opts: ApplyOptions) -> Applier {
        let opts = ApplyOptions { dry_run: true, ..opts };
        Applier { client: None, ui, phase, opts, groups: DiscoveryCache::default(), requests: AtomicU64::new(0) }
    }

    fn client(&self) -> Result<&kube::Client> {
        self.client.as_ref().ok_or_else(|| {
            anyhow!("the cluster's API server is not reachable yet\n  hint: run `homelab up` through the kubernetes phase first; a dry run before then plans every object as created")
        })
    }

    /// API requests sent by this applier (discovery, lists, patches, CRD polls).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves a kind through discovery (one request per group-version, cached).
    pub async fn resolve(&self, gvk: &GroupVersionKind) -> Result<(ApiResource, ApiCapabilities)> {
        let key = gvk.api_version();
        let cell = match self.groups.lock() {
            Ok(mut m) => m.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let resources = cell
            .get_or_try_init(|| async {
                self.count();
                let gv = kube::core::GroupVersion::gv(&gvk.group, &gvk.version);
                let g: ApiGroup = kube::discovery::pinned_group(self.client()?, &gv).await?;
                Ok::<_, anyhow::Error>(g.versioned_resources(&gvk.version))
            })
            .await?;
        resources
            .iter()
            .find(|(ar, _)| ar.kind == gvk.kind)
            .cloned()
            .ok_or_else(|| anyhow::Error::new(NotServed { kind: gvk.kind.clone(), api_version: key }))
    }

    /// Forgets cached discovery (after CRDs are established, or on a 404 from lag).
    pub fn refresh_discovery(&self, api_version: Option<&str>) {
        if let Ok(mut m) = self.groups.lock() {
            match api_version {
                Some(av) => {
                    m.remove(av);
                }
                None => m.clear(),
            }
        }
    }

    fn api(&self, ar: &ApiResource, caps: &ApiCapabilities, ns: Option<&str>) -> Result<Api<DynamicObject>> {
        let c = self.client()?.clone();
        Ok(match (caps.scope == Scope::Cluster, ns) {
            (true, _) => Api::all_with(c, ar),
            (false, Some(ns)) => Api::namespaced_with(c, ns, ar),
            (false, None) => Api::default_namespaced_with(c, ar),
        })
    }

    /// The existing objects of one kind in one namespace, whole: what a rendered object is
    /// compared with to know, without sending it, whether its apply would change anything.
    async fn existing(&self, ar: &ApiResource, caps: &ApiCapabilities, ns: Option<&str>) -> Result<Observed> {
        self.count();
        let api = self.api(ar, caps, ns)?;
        match api.list(&ListParams::default()).await {
            Ok(l) => Ok(l
                .items
                .into_iter()
                .filter_map(|o| {
                    let name = o.metadata.name.clone()?;
                    Some((name, serde_json::to_value(&o).ok()?))
                })
                .collect()),
            Err(e) if status_code(&e) == Some(404) => Ok(HashMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies one object (server-side apply, forced), retrying what is worth retrying.
    async fn apply_one(&self, obj: &Value, before: Option<&Value>) -> Result<Outcome> {
        if self.client.is_none() {
            // Dry run before the cluster exists.
            return Ok(Outcome::Created);
        }
        // Converged: the apply would change nothing, so it is not sent (nor in a dry run,
        // which plans exactly what the run does).
        if let Some(live) = before {
            match difference(obj, live, FIELD_MANAGER) {
                None => return Ok(Outcome::Unchanged),
                Some(why) => tracing::debug!(target: "homelab::apply", "{}: applying: {why}", describe(obj)),
            }
        }
        let gvk = gvk(obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let ns = obj["metadata"]["namespace"].as_str();
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        if self.opts.dry_run {
            pp = pp.dry_run();
        }
        let mut delay = self.opts.backoff.first;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (ar, caps) = match self.resolve(&gvk).await {
                Ok(x) => x,
                // A dry run of a kind whose CRD the same run would create first.
                Err(_) if self.opts.dry_run && before.is_none() => return Ok(Outcome::Created),
                Err(e) if attempt <= self.opts.retries => {
                    // Discovery may lag behind a CRD that just became Established.
                    tracing::debug!(target: "homelab::apply", "{}: {e:#}; refreshing discovery", describe(obj));
                    self.refresh_discovery(Some(&gvk.api_version()));
                    tokio::time::sleep(delay).await;
                    delay = self.opts.backoff.next(delay);
                    continue;
                }
                Err(e) => return Err(e.context(format!("applying {}", describe(obj)))),
            };
            self.count();
            let api = self.api(&ar, &caps, ns)?;
            match api.patch(&name, &pp, &Patch::Apply(obj)).await {
                Ok(o) => {
                    return Ok(match before {
                        None => Outcome::Created,
                        // A write moves the resourceVersion; a dry run's answer keeps it, and
                        // is the live object itself when it would change nothing.
                        Some(live)
                            if !self.opts.dry_run
                                && live["metadata"]["resourceVersion"].as_str()
                                    == o.metadata.resource_version.as_deref() =>
                        {
                            Outcome::Unchanged
                        }
                        Some(live) if self.opts.dry_run && same_object(live, &serde_json::to_value(&o)?) => {
                            Outcome::Unchanged
                        }
                        Some(_) => Outcome::Changed,
                    });
                }
                // A dry run cannot create an object in a namespace the same run would create.
                Err(e) if self.opts.dry_run && before.is_none() && status_code(&e) == Some(404) => {
                    return Ok(Outcome::Created);
                }
                Err(e) => {
                    let code = status_code(&e);
                    // An admission webhook the server cannot call is the caller's to wait
                    // for (with its deadline and its words), not a blip to retry here.
                    let webhook = code == Some(500) && e.to_string().contains("failed calling webhook");
                    let retry = match code {
                        Some(500) if webhook => false,
                        Some(409 | 429 | 500 | 502 | 503 | 504) => true,
                        Some(404) => {
                            self.refresh_discovery(Some(&gvk.api_version()));
                            true
                        }
                        None => matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_)),
                        _ => false,
                    };
                    if retry && attempt <= self.opts.retries {
                        tracing::debug!(target: "homelab::apply", "{}: {e}; retry {attempt}", describe(obj));
                        tokio::time::sleep(delay).await;
                        delay = self.opts.backoff.next(delay);
                        continue;
                    }
                    let hint = match code {
                        Some(422) => {
                            "the API server rejected the object's content; if this is a file from the pinned catalog, the cluster's Kubernetes may be too old or too new for this release"
                        }
                        Some(403) => "the kubeconfig's user lacks permission; homelab needs cluster-admin",
                        Some(409) => "another field manager keeps changing this object",
                        _ => "check that the API server is healthy (`kubectl get --raw /readyz`)",
                    };
                    bail!("cannot apply {}: {e}\n  hint: {hint}", describe(obj));
                }
            }
        }
    }

    /// Applies `objs` stage by stage.
    pub async fn apply(&self, objs: &[Value]) -> Result<ApplyReport> {
        let mut by_stage: BTreeMap<Stage, Vec<&Value>> = BTreeMap::new();
        for o in objs {
            by_stage.entry(stage_of(o)).or_default().push(o);
        }
        let before = self.observe(objs).await?;
        let mut report = ApplyReport::default();
        for (stage, items) in by_stage {
            let counts = self.apply_stage(&items, &before).await?;
            tracing::info!(target: "homelab::apply", "{}: {} created, {} changed, {} unchanged", stage.name(), counts.created, counts.changed, counts.unchanged);
            report.stages.insert(stage, counts);
            if stage == Stage::Crds && !self.opts.dry_run {
                let names: Vec<String> =
                    items.iter().filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned)).collect();
                // Nothing changed and every CRD was seen Established: nothing to wait for, and
                // discovery already serves them.
                let live = before.get(&(
                    "apiextensions.k8s.io/v1".to_owned(),
                    "CustomResourceDefinition".to_owned(),
                    String::new(),
                ));
                let settled = counts.changes() == 0
                    && names.iter().all(|n| live.and_then(|l| l.get(n)).is_some_and(crd_established));
                if !settled {
                    self.wait_crds_established(&names).await?;
                    self.refresh_discovery(None);
                }
            }
        }
        Ok(report)
    }

    /// The live objects of every kind and namespace `objs` name: one list each, all sent at
    /// once before anything is applied (a kind not served yet, whose CRD this apply creates,
    /// has none).
    async fn observe(&self, objs: &[Value]) -> Result<HashMap<ListKey, Observed>> {
        let mut kinds: HashMap<ListKey, (GroupVersionKind, Vec<String>)> = HashMap::new();
        for o in objs {
            let g = gvk(o)?;
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
            let name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            kinds.entry((g.api_version(), g.kind.clone(), ns)).or_insert((g, vec![])).1.push(name);
        }
        if self.client.is_none() {
            return Ok(HashMap::new());
        }
        // Discovery first (one request per group-version, cached), then every read in one
        // stream, so no more requests are in flight than `concurrency` (and no more pooled
        // connections are opened): one list per namespaced kind; for a cluster-wide kind, whose
        // list is the whole cluster's (every CRD with its schema, every built-in ClusterRole),
        // one GET per object of ours.
        let keys: Vec<(ListKey, (GroupVersionKind, Vec<String>))> = kinds.into_iter().collect();
        type Resolved = (ListKey, Option<(ApiResource, ApiCapabilities)>, Vec<String>);
        let resolves = keys.into_iter().map(|(key, (g, names))| async move {
            let r = self.resolve(&g).await.ok();
            Ok::<Resolved, anyhow::Error>((key, r, names))
        });
        let resolved: Vec<Resolved> =
            futures::stream::iter(resolves).buffer_unordered(self.opts.concurrency.max(1)).try_collect().await?;
        type Read<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(ListKey, Observed)>> + Send + 'a>>;
        let mut reads: Vec<Read<'_>> = Vec::new();
        let mut out: HashMap<ListKey, Observed> = HashMap::new();
        for (key, r, names) in resolved {
            let Some((ar, caps)) = r else {
                out.insert(key, HashMap::new());
                continue;
            };
            if caps.scope == Scope::Cluster {
                for n in names {
                    let key = key.clone();
                    reads.push(Box::pin(async move {
                        let found = match self.get(&key.0, &key.1, None, &n).await? {
                            Some(o) => HashMap::from([(n, serde_json::to_value(&o)?)]),
                            None => HashMap::new(),
                        };
                        Ok((key, found))
                    }));
                }
            } else {
                reads.push(Box::pin(async move {
                    let ns = (!key.2.is_empty()).then_some(key.2.as_str());
                    let found = self.existing(&ar, &caps, ns).await?;
                    Ok((key, found))
                }));
            }
        }
        let found: Vec<(ListKey, Observed)> =
            futures::stream::iter(reads).buffer_unordered(self.opts.concurrency.max(1)).try_collect().await?;
        for (key, objs) in found {
            out.entry(key).or_default().extend(objs);
        }
        Ok(out)
    }

    async fn apply_stage(&self, items: &[&Value], before: &HashMap<ListKey, Observed>) -> Result<Counts> {
        type Fut<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome>> + Send + 'a>>;
        let mut futs: Vec<Fut<'_>> = Vec::with_capacity(items.len());
        for o in items.iter().copied() {
            let g = gvk(o);
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
            let name = o["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let prior = g
                .ok()
                .and_then(|g| before.get(&(g.api_version(), g.kind.clone(), ns)).and_then(|m| m.get(&name)).cloned());
            futs.push(Box::pin(async move { self.apply_one(o, prior.as_ref()).await }));
        }
        let results: Vec<Result<Outcome>> =
            futures::stream::iter(futs).buffered(self.opts.concurrency.max(1)).collect().await;
        let mut counts = Counts::default();
        for r in results {
            counts.add(r?);
        }
        Ok(counts)
    }

    /// Waits until every CRD has `Established=True` ([`crd_established`], as for an observed one).
    pub async fn wait_crds_established(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        self.client()?;
        let spec = WaitSpec {
            phase: self.phase,
            target: "cluster".into(),
            what: format!("{} CRD{} Established", names.len(), if names.len() == 1 { "" } else { "s" }),
            deadline: self.opts.crd_deadline,
            backoff: self.opts.backoff,
            hint:
                "`kubectl get crd` shows which are missing; an API server under memory pressure establishes CRDs slowly"
                    .into(),
        };
        // Each poll reads only the CRDs not seen Established yet, one GET each, at once: a
        // list would carry every CRD's whole schema on every poll.
        let seen: Mutex<std::collections::HashSet<String>> = Mutex::default();
        wait_for(&self.ui, &spec, || async {
            let pending: Vec<String> = {
                let seen = seen.lock().map_err(|_| anyhow!("CRD wait state poisoned"))?;
                names.iter().filter(|n| !seen.contains(*n)).cloned().collect()
            };
            type Read<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(String, bool)>> + Send + 'a>>;
            let reads: Vec<Read<'_>> = pending
                .into_iter()
                .map(|n| {
                    Box::pin(async move {
                        let crd = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, &n).await?;
                        let established = match crd {
                            Some(c) => crd_established(&serde_json::to_value(&c)?),
                            None => false,
                        };
                        Ok::<_, anyhow::Error>((n, established))
                    }) as Read<'_>
                })
                .collect();
            let answers: Vec<(String, bool)> =
                futures::stream::iter(reads).buffer_unordered(self.opts.concurrency.max(1)).try_collect().await?;
            let mut missing: Vec<String> = Vec::new();
            let mut seen = seen.lock().map_err(|_| anyhow!("CRD wait state poisoned"))?;
            for (n, ok) in answers {
                if ok {
                    seen.insert(n);
                } else {
                    missing.push(n);
                }
            }
            drop(seen);
            missing.sort();
            Ok(if missing.is_empty() {
                Probe::Ready(())
            } else {
                Probe::Pending(Some(format!(
                    "{} not yet: {}",
                    missing.len(),
                    missing.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(", ")
                )))
            })
        })
        .await
    }

    /// Reads one object (None when it does not exist).
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>> {
        if self.client.is_none() {
            return Ok(None);
        }
        let (g, v) = group_version(api_version);
        let (ar, caps) = match self.resolve(&GroupVersionKind::gvk(g, v, kind)).await {
            Ok(x) => x,
            Err(_) => return Ok(None),
        };
        self.count();
        match self.api(&ar, &caps, ns)?.get_opt(name).await {
            Ok(o) => Ok(o),
            Err(e) if status_code(&e) == Some(404) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Lists objects of a kind (optionally in a namespace, with a label selector).
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        labels: Option<&str>,
    ) -> Result<Vec<DynamicObject>> {
        let Some(client) = self.client.clone() else { return Ok(vec![]) };
        let (g, v) = group_version(api_version);
        let (ar, caps) = match self.resolve(&GroupVersionKind::gvk(g, v, kind)).await {
            Ok(x) => x,
            Err(_) => return Ok(vec![]),
        };
        self.count();
        let mut lp = ListParams::default();
        if let Some(l) = labels {
            lp = lp.labels(l);
        }
        let api = match (caps.scope == Scope::Cluster, ns) {
            (true, _) | (false, None) => Api::all_with(client, &ar),
            (false, Some(n)) => Api::namespaced_with(client, n, &ar),
        };
        match api.list(&lp).await {
            Ok(l) => Ok(l.items),
            Err(e) if status_code(&e) == Some(404) => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes one object (gone already counts as done), its dependents with it in the
    /// background as kubectl does: a batch/v1 Job deleted without a propagation policy would
    /// orphan its pods (the API's legacy default for Jobs).
    pub async fn delete(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Result<()> {
        let (g, v) = group_version(api_version);
        let (ar, caps) = match self.resolve(&GroupVersionKind::gvk(g, v, kind)).await {
            Ok(x) => x,
            // A kind that is not served has no objects left to delete (they went with its CRD).
            Err(e) if not_served(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.count();
        match self.api(&ar, &caps, ns)?.delete(name, &kube::api::DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(anyhow!(e).context(format!("deleting {kind} {name}"))),
        }
    }

    /// A JSON merge patch of one object (the `kubectl patch --type=merge` / `set image` of
    /// an upgrade hop: only the named fields change; nothing else of the object is touched).
    pub async fn merge_patch(
        &self,
        api_version: &str,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<()> {
        let (g, v) = group_version(api_version);
        let (ar, caps) = self.resolve(&GroupVersionKind::gvk(g, v, kind)).await?;
        self.count();
        let pp = kube::api::PatchParams { dry_run: self.opts.dry_run, ..Default::default() };
        self.api(&ar, &caps, ns)?
            .patch(name, &pp, &kube::api::Patch::Merge(patch))
            .await
            .map_err(|e| anyhow!(e).context(format!("patching {kind} {name}")))?;
        Ok(())
    }
}
