//! What a run carries: the resolved cluster, the options, the outside world (MAAS, hosts,
//! Kubernetes, manifest source), the facts learned so far, and the change counters.

use crate::catalog::bundle::ManifestSource;
use crate::config::Cluster;
use crate::engine::plan::Planned;
use crate::foundation::events::Event;
use crate::foundation::output::Ui;
use crate::foundation::phase_id::{PhaseId, Selection};
use crate::foundation::wait::Backoff;
use crate::maas::{MaasClient, Status};
use crate::ssh::{Connector, HostAddr, Remote};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Polling cadences. Real systems are polled gently; the simulators run scaled down.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// The batched MAAS status poll (one request per interval for all machines).
    pub maas_poll: Duration,
    /// SSH reachability while a machine boots.
    pub ssh_poll: Backoff,
    /// Kubernetes readiness (CRDs, Deployments, custom resources, nodes).
    pub kube_poll: Backoff,
    pub ssh_connect_timeout: Duration,
    /// Multiplies every deadline (the simulators use short ones).
    pub deadline_scale: f64,
    /// How often the cluster Lease and the MAAS lock are renewed (a third of their duration).
    pub lease_renew: Duration,
    /// Between writing the MAAS lock and reading it back (longer than any pause of a racing
    /// run between its read and its write).
    pub lock_settle: Duration,
}

impl Timings {
    pub fn real() -> Timings {
        Timings {
            maas_poll: Duration::from_secs(5),
            ssh_poll: Backoff::new(Duration::from_secs(2), Duration::from_secs(10)),
            kube_poll: Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
            ssh_connect_timeout: Duration::from_secs(10),
            deadline_scale: 1.0,
            lease_renew: crate::engine::lock::LEASE_RENEW,
            lock_settle: Duration::from_secs(1),
        }
    }
    /// For the simulators: everything happens in milliseconds.
    pub fn fast() -> Timings {
        Timings {
            maas_poll: Duration::from_millis(25),
            ssh_poll: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
            kube_poll: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
            ssh_connect_timeout: Duration::from_secs(2),
            deadline_scale: 1.0,
            lease_renew: Duration::from_millis(200),
            lock_settle: Duration::from_millis(30),
        }
    }
    /// `HOMELAB_TIMINGS=fast` selects the simulator cadence (tests and `homelab demo`).
    pub fn from_env() -> Timings {
        match std::env::var("HOMELAB_TIMINGS").as_deref() {
            Ok("fast") => Timings::fast(),
            _ => Timings::real(),
        }
    }
    pub fn deadline(&self, d: Duration) -> Duration {
        d.mul_f64(self.deadline_scale)
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `up`, `add-node`, … (for events and the lock).
    pub command: String,
    pub dry_run: bool,
    pub selection: Selection,
    /// Release and redeploy machines MAAS reports as Failed deployment/commissioning.
    pub redeploy_failed: bool,
    /// Machines in flight at once.
    pub parallel: usize,
    pub timings: Timings,
    /// Restrict machine work to these hostnames (`add-node`).
    pub only_machines: Option<Vec<String>>,
    /// How long to wait for another run's lock (0: exit at once, naming the holder).
    pub lock_timeout: Duration,
    /// Stop at Ctrl-C (SIGINT), release the cluster lease and fail with a hint (the CLI sets
    /// it; tests and embedders leave the signal alone).
    pub stop_on_ctrl_c: bool,
    /// Delete what homelab created for applications (topics, users, the bridge) that the
    /// file no longer declares (`up --prune`); without it they are reported and kept.
    pub prune: bool,
}

impl RunOptions {
    /// Defaults with the simulator cadence (tests, demo, benchmarks).
    pub fn fast() -> RunOptions {
        RunOptions { timings: Timings::fast(), ..Default::default() }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            command: "up".into(),
            dry_run: false,
            selection: Selection::default(),
            redeploy_failed: false,
            parallel: 10,
            timings: Timings::real(),
            only_machines: None,
            lock_timeout: Duration::ZERO,
            stop_on_ctrl_c: false,
            prune: false,
        }
    }
}

/// The outside world.
pub struct World {
    pub maas: Option<Arc<MaasClient>>,
    pub hosts: Arc<dyn Connector>,
    pub manifests: ManifestSource,
    /// Per-cluster state: kubeconfig, known_hosts, lock.
    pub state_dir: PathBuf,
}

/// What homelab learned about a machine during this run.
#[derive(Debug, Clone, Default)]
pub struct MachineFacts {
    pub system_id: Option<String>,
    pub ip: Option<String>,
    pub status: Option<Status>,
    pub status_message: Option<String>,
    /// MAAS's own text for the machine (e.g. its hostname if it differs).
    pub maas_hostname: Option<String>,
    /// MAAS's power state (`on`, `off`, `unknown`).
    pub power: Option<String>,
    /// A pre-installed machine MAAS lists as its region or rack controller: the MAAS host.
    pub maas_controller: bool,
}

/// A host's one connection, made the first time a task asks for it.
type RemoteCell = Arc<tokio::sync::OnceCell<Arc<dyn Remote>>>;

pub struct Ctx {
    pub cluster: Arc<Cluster>,
    pub ui: Ui,
    pub opts: RunOptions,
    pub world: World,
    facts: Mutex<HashMap<String, MachineFacts>>,
    facts_changed: tokio::sync::Notify,
    /// One connection per host, made once; hosts connect at the same time (the map is locked
    /// only to find a host's cell, never across a connect).
    remotes: std::sync::Mutex<HashMap<String, RemoteCell>>,
    changes: [AtomicU32; PhaseId::ALL.len()],
    kube: tokio::sync::Mutex<Option<kube::Client>>,
    /// The run's API discovery, shared by all its appliers.
    discovery: crate::kube::apply::DiscoveryCache,
    /// Kubeconfig text of this cluster once known (MicroK8s: fetched by the kubernetes phase).
    pub kubeconfig: Mutex<Option<String>>,
    ssh_slots: tokio::sync::Semaphore,
    host_facts: Mutex<HashMap<String, crate::microk8s::HostFacts>>,
    lease: tokio::sync::Mutex<Option<crate::engine::lock::LeaseGuard>>,
    /// The MAAS user behind the API key (one `whoami` per run).
    maas_user: tokio::sync::OnceCell<String>,
    /// The declared control planes MAAS knows (their system ids): where the MAAS lock lives.
    claimable: Mutex<Vec<String>>,
    maas_lock: tokio::sync::Mutex<Option<crate::engine::lock::MaasLockGuard>>,
    /// Set once the MAAS lock is held (or there is nothing to claim): checked by every change.
    locked: std::sync::atomic::AtomicBool,
    /// Set when another run claimed the cluster first: every later change fails the same way,
    /// so the run stops having changed nothing.
    preempted: std::sync::atomic::AtomicBool,
    /// Who this run is in every lock it takes (host, pid, command, since).
    pub holder: crate::engine::lock::Holder,
    /// Becomes `Some(reason)` when this run loses a cluster lock (the MAAS claim or the
    /// Lease); the run then stops.
    pub lock_lost: tokio::sync::watch::Sender<Option<String>>,
    /// A dry run's record of the actions the real run would take (see [`Ctx::step`]).
    planned: Mutex<Vec<(PhaseId, Planned)>>,
}

impl Ctx {
    pub fn new(cluster: Arc<Cluster>, ui: Ui, opts: RunOptions, world: World) -> Ctx {
        let opts_parallel = opts.parallel.max(1);
        let holder = crate::engine::lock::Holder::me(&opts.command);
        Ctx {
            cluster,
            ui,
            opts,
            world,
            facts: Mutex::new(HashMap::new()),
            facts_changed: tokio::sync::Notify::new(),
            remotes: std::sync::Mutex::new(HashMap::new()),
            changes: Default::default(),
            kube: tokio::sync::Mutex::new(None),
            discovery: Default::default(),
            kubeconfig: Mutex::new(None),
            ssh_slots: tokio::sync::Semaphore::new(opts_parallel),
            host_facts: Mutex::new(HashMap::new()),
            lease: tokio::sync::Mutex::new(None),
            maas_user: tokio::sync::OnceCell::new(),
            claimable: Mutex::new(Vec::new()),
            maas_lock: tokio::sync::Mutex::new(None),
            locked: Default::default(),
            preempted: Default::default(),
            holder,
            lock_lost: tokio::sync::watch::channel(None).0,
            planned: Mutex::new(Vec::new()),
        }
    }

    /// Records where the MAAS lock lives (the control planes' system ids).
    pub fn set_claimable(&self, ids: Vec<String>) {
        if let Ok(mut c) = self.claimable.lock() {
            *c = ids;
        }
    }

    /// Holds the MAAS lock from now on: called right before the first change of a run. A run
    /// that finds another run's claim here (it started after this one looked) stops: what it
    /// decided may be stale, and it has changed nothing yet.
    pub async fn ensure_locked(&self) -> anyhow::Result<()> {
        let ids = self.claimable.lock().map(|c| c.clone()).unwrap_or_default();
        let Some(maas) = self.world.maas.as_ref().filter(|_| !self.opts.dry_run && !ids.is_empty()) else {
            self.locked.store(true, Ordering::Relaxed);
            return Ok(());
        };
        let mut l = self.maas_lock.lock().await;
        if l.is_some() {
            return Ok(());
        }
        let preempted = |e: &anyhow::Error| {
            let why = format!("{e:#}");
            anyhow::Error::new(crate::engine::lock::Preempted(format!(
                "another run started changing the cluster while this one was looking, so this one stopped before changing anything: {}\n  hint: run `homelab {}` again when it is done (with `--lock-timeout 10m` it waits and starts over by itself)",
                why.lines().next().unwrap_or_default(),
                self.opts.command
            )))
        };
        if self.preempted.load(Ordering::Relaxed) {
            return Err(preempted(&anyhow::anyhow!("(noticed by another machine's task)")));
        }
        let user = self.maas_user().await?;
        let machines = anyhow::Context::context(maas.machines_by_id(&ids).await, "reading the homelab lock in MAAS")?;
        let times = crate::engine::lock::MaasLockTimes {
            every: self.opts.timings.lease_renew,
            settle: self.opts.timings.lock_settle,
        };
        let guard = crate::engine::lock::acquire_maas(
            maas.clone(),
            &user,
            machines,
            self.holder.clone(),
            times,
            self.lock_lost.clone(),
        )
        .await
        .map_err(|e| {
            self.preempted.store(true, Ordering::Relaxed);
            preempted(&e)
        })?;
        *l = Some(guard);
        self.locked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a preemption before the run starts over.
    pub fn reset_preempted(&self) {
        self.preempted.store(false, Ordering::Relaxed);
    }

    /// Changes made (or planned) so far, all phases.
    pub fn total_changes(&self) -> u32 {
        self.changes.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The gate of a change in a real run: takes the MAAS lock if this is the first change,
    /// then reports it as [`Ctx::step`] does.
    pub async fn act(&self, phase: PhaseId, target: &str, action: impl Into<String>) -> anyhow::Result<()> {
        self.act_call(phase, target, action, None).await
    }

    /// Holds the cluster Lease from now on (once the cluster's API is reachable); the MAAS
    /// lock first, so that every run takes the two in the same order.
    pub async fn ensure_lease(&self) -> anyhow::Result<()> {
        if self.opts.dry_run {
            return Ok(());
        }
        self.ensure_locked().await?;
        let mut l = self.lease.lock().await;
        if l.is_none() {
            let client = self.kube().await?;
            *l = Some(
                crate::engine::lock::acquire_lease_as(
                    client,
                    self.holder.clone(),
                    self.opts.lock_timeout,
                    self.opts.timings.lease_renew,
                    self.lock_lost.clone(),
                    &self.ui,
                )
                .await?,
            );
        }
        Ok(())
    }

    /// This workstation's lock for a run that changes things (none in a dry run): one run per
    /// cluster at a time here, waiting up to `--lock-timeout` for another.
    pub async fn local_lock(&self) -> anyhow::Result<Option<crate::engine::lock::LocalLock>> {
        if self.opts.dry_run {
            return Ok(None);
        }
        let l = crate::engine::lock::acquire_local(
            &self.world.state_dir,
            &self.opts.command,
            self.opts.lock_timeout,
            &self.ui,
        )
        .await?;
        Ok(Some(l))
    }

    /// Gives the cluster Lease back and keeps the MAAS lock: before a step that takes the
    /// cluster's API away (`reset` removing MicroK8s), whose Lease could not be renewed.
    pub async fn release_cluster_lease(&self) {
        if let Some(l) = self.lease.lock().await.take() {
            l.release().await;
        }
    }

    /// Gives the cluster Lease and then the MAAS lock back (end of run).
    pub async fn release_lease(&self) {
        if let Some(l) = self.lease.lock().await.take() {
            l.release().await;
        }
        if let Some(l) = self.maas_lock.lock().await.take() {
            l.release().await;
        }
    }

    /// What the hosts phase found on a machine in this run.
    pub fn host_facts(&self, hostname: &str) -> Option<crate::microk8s::HostFacts> {
        self.host_facts.lock().ok().and_then(|f| f.get(hostname).cloned())
    }

    pub fn set_host_facts(&self, hostname: &str, f: crate::microk8s::HostFacts) {
        if let Ok(mut all) = self.host_facts.lock() {
            all.insert(hostname.to_owned(), f);
        }
    }

    /// A slot for SSH bursts on one machine — preflight and `/etc/hosts` (at most `--parallel`
    /// machines at once). Long waits on the machine itself do not take one.
    pub async fn ssh_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.ssh_slots.acquire().await.ok()
    }

    /// The machines this run works on (all, or the `add-node` machine).
    pub fn machines(&self) -> Vec<crate::config::Machine> {
        self.cluster
            .machines
            .iter()
            .filter(|m| self.opts.only_machines.as_ref().is_none_or(|o| o.contains(&m.hostname)))
            .cloned()
            .collect()
    }

    pub fn in_scope(&self, hostname: &str) -> bool {
        self.opts.only_machines.as_ref().is_none_or(|o| o.iter().any(|h| h == hostname))
    }

    /// The one gate of every mutating action: it is counted as one change of the phase and,
    /// in a real run, announced just before the caller carries it out; in a dry run it is
    /// recorded for the plan instead, in the same words (the caller must then not carry it
    /// out: check [`Ctx::dry_run`], or let the [`crate::kube::apply::Applier`] compute it).
    pub fn step(&self, phase: PhaseId, target: &str, action: impl Into<String>) {
        self.step_call(phase, target, action, None);
    }

    /// [`Ctx::act`] of an action whose exact call (`detail`) is worth keeping apart from its
    /// words: the terminal shows the words and, with `-v`, the call; the JSON event carries
    /// both; a dry run plans "words (call)".
    pub async fn act_call(
        &self,
        phase: PhaseId,
        target: &str,
        action: impl Into<String>,
        detail: Option<String>,
    ) -> anyhow::Result<()> {
        self.ensure_locked().await?;
        self.record(phase, target, action.into(), detail, 1);
        Ok(())
    }

    /// [`Ctx::step`] with the exact call apart from the words (see [`Ctx::act_call`]).
    pub fn step_call(&self, phase: PhaseId, target: &str, action: impl Into<String>, detail: Option<String>) {
        self.record(phase, target, action.into(), detail, 1);
    }

    /// A batch of `n` changes made (or, in a dry run, computed) by one action, e.g. the
    /// objects an apply created or changed. Nothing is reported when `n` is 0.
    pub fn changed(&self, phase: PhaseId, target: &str, action: impl Into<String>, n: u32) {
        self.changed_call(phase, target, action, None, n);
    }

    /// [`Ctx::changed`] with the exact call apart from the words (see [`Ctx::act_call`]).
    pub fn changed_call(
        &self,
        phase: PhaseId,
        target: &str,
        action: impl Into<String>,
        detail: Option<String>,
        n: u32,
    ) {
        if n > 0 {
            self.record(phase, target, action.into(), detail, n);
        }
    }

    fn record(&self, phase: PhaseId, target: &str, action: String, detail: Option<String>, n: u32) {
        // Every change of a real run happens under the MAAS lock ([`Ctx::act`], ensure_lease).
        debug_assert!(
            self.opts.dry_run || self.locked.load(Ordering::Relaxed) || self.world.maas.is_none(),
            "a change ({action}) was made before the MAAS lock was taken: use Ctx::act"
        );
        self.changes[phase as usize].fetch_add(n, Ordering::Relaxed);
        if self.opts.dry_run {
            if let Ok(mut p) = self.planned.lock() {
                p.push((phase, Planned::new(target, action.clone()).with_detail(detail.clone())));
            }
            self.ui.emit(Event::Planned { phase, target: target.into(), action, detail });
        } else {
            if let Some(d) = &detail {
                tracing::info!(target: "homelab::call", "{target}: {d}");
            }
            self.ui.emit(Event::Step { phase, target: target.into(), action, detail });
        }
    }

    /// Whether this is a dry run (mutations are recorded, not carried out).
    pub fn dry_run(&self) -> bool {
        self.opts.dry_run
    }

    /// The actions a dry run recorded so far (taken out).
    pub fn take_planned(&self) -> Vec<(PhaseId, Planned)> {
        self.planned.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default()
    }

    pub fn info(&self, phase: PhaseId, target: &str, message: impl Into<String>) {
        self.ui.emit(Event::Info { phase, target: target.into(), message: message.into() });
    }

    pub fn drift(&self, phase: PhaseId, target: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.ui.emit(Event::Drift { phase, target: target.into(), message: message.into(), hint: hint.into() });
    }

    pub fn warn(&self, phase: PhaseId, target: &str, message: impl Into<String>, hint: Option<String>) {
        self.ui.emit(Event::Warning { phase: Some(phase), target: target.into(), message: message.into(), hint });
    }

    pub fn changes(&self, phase: PhaseId) -> u32 {
        self.changes[phase as usize].load(Ordering::Relaxed)
    }

    pub fn facts(&self, hostname: &str) -> MachineFacts {
        self.facts.lock().map(|f| f.get(hostname).cloned().unwrap_or_default()).unwrap_or_default()
    }

    /// Whether `m` runs its operating system now, so SSH may reach it: a pre-installed
    /// machine always, a MAAS machine once Deployed.
    pub fn is_installed(&self, m: &crate::config::Machine) -> bool {
        m.is_preinstalled() || self.facts(&m.hostname).status == Some(crate::maas::Status::Deployed)
    }

    pub fn update_facts(&self, hostname: &str, f: impl FnOnce(&mut MachineFacts)) {
        if let Ok(mut all) = self.facts.lock() {
            f(all.entry(hostname.to_owned()).or_default());
        }
        self.facts_changed.notify_waiters();
    }

    pub fn all_facts(&self) -> HashMap<String, MachineFacts> {
        self.facts.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Waits until `pred` holds over the facts (e.g. every machine has an IP), or `deadline`.
    pub async fn wait_facts(&self, deadline: Duration, pred: impl Fn(&HashMap<String, MachineFacts>) -> bool) -> bool {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.facts_changed.notified();
            if pred(&self.all_facts()) {
                return true;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                return pred(&self.all_facts());
            }
        }
    }

    pub fn host_addr(&self, hostname: &str) -> Option<HostAddr> {
        self.facts(hostname).ip.map(|ip| HostAddr { hostname: hostname.to_owned(), ip })
    }

    /// A cached connection to a machine, opened on first use (no retry here; see the hosts
    /// phase for the wait-until-reachable loop). It reconnects by itself after a broken link
    /// and re-sends read-only commands ([`crate::ssh::resilient`]).
    pub async fn remote(&self, hostname: &str) -> anyhow::Result<Arc<dyn Remote>> {
        let cell = match self.remotes.lock() {
            Ok(mut m) => m.entry(hostname.to_owned()).or_default().clone(),
            Err(_) => anyhow::bail!("the connection table is poisoned (a task panicked); run the command again"),
        };
        let r = cell
            .get_or_try_init(|| async {
                let addr = self.host_addr(hostname).ok_or_else(|| {
                    anyhow::anyhow!("homelab does not know the address of {hostname} yet\n  hint: run the machines phase first (`homelab up`), which learns it from MAAS")
                })?;
                let first = self.world.hosts.connect(&addr).await?;
                let t = &self.opts.timings;
                Ok::<Arc<dyn Remote>, anyhow::Error>(Arc::new(crate::ssh::resilient::Resilient::new(
                    self.world.hosts.clone(),
                    addr,
                    first,
                    t.deadline(self.cluster.timeouts.ssh),
                    t.ssh_poll,
                )))
            })
            .await?;
        Ok(r.clone())
    }

    pub async fn forget_remote(&self, hostname: &str) {
        if let Ok(mut m) = self.remotes.lock() {
            m.remove(hostname);
        }
    }

    /// SSH commands sent so far, per host.
    pub async fn round_trips(&self) -> HashMap<String, u64> {
        let cells: Vec<(String, RemoteCell)> = match self.remotes.lock() {
            Ok(m) => m.iter().map(|(h, c)| (h.clone(), c.clone())).collect(),
            Err(_) => vec![],
        };
        cells.into_iter().filter_map(|(h, c)| c.get().map(|r| (h, r.round_trips()))).collect()
    }

    pub async fn set_kube(&self, client: kube::Client) {
        *self.kube.lock().await = Some(client);
    }

    /// An applier on `client` that shares the run's discovery.
    pub fn applier(
        &self,
        client: kube::Client,
        phase: crate::foundation::phase_id::PhaseId,
        opts: crate::kube::apply::ApplyOptions,
    ) -> crate::kube::apply::Applier {
        crate::kube::apply::Applier::new(client, self.ui.clone(), phase, opts).sharing_discovery(&self.discovery)
    }

    /// The Kubernetes client of this cluster.
    pub async fn kube(&self) -> anyhow::Result<kube::Client> {
        let mut k = self.kube.lock().await;
        if let Some(c) = k.as_ref() {
            return Ok(c.clone());
        }
        let cached = self.kubeconfig.lock().ok().and_then(|k| k.clone());
        let c = crate::engine::cluster_api::client(&self.cluster, &self.world.state_dir, cached).await?;
        *k = Some(c.clone());
        Ok(c)
    }

    /// The MAAS user behind the key, asked once (`whoami` checks the key before anything else).
    pub async fn maas_user(&self) -> anyhow::Result<String> {
        let maas = self.maas()?;
        let u = self
            .maas_user
            .get_or_try_init(|| async {
                maas.whoami()
                    .await
                    .map(|w| w.username)
                    .map_err(|e| anyhow::Error::new(e).context("checking the MAAS API key (GET users/?op=whoami)"))
            })
            .await?;
        Ok(u.clone())
    }

    pub fn maas(&self) -> anyhow::Result<&Arc<MaasClient>> {
        self.world.maas.as_ref().ok_or_else(|| anyhow::anyhow!("this cluster has no MAAS configured"))
    }
}
