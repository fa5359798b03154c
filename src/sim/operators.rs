//! Simulated operators for the simulated API server: Rook (a CephCluster goes through its
//! phases, one OSD pod per listed device appears on nodes that exist, pools become Ready);
//! Strimzi lives in [`super::strimzi`]. Each has a delay per step and a failure mode. Status
//! fields and texts follow `docs/rook-strimzi.md` §3.

use super::apiserver::{ApiState, SimOperator, node_ready};
use super::ceph::{CephConfig, SimCeph};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes of one simulated OSD (the seed's Ceph logical volume).
pub const OSD_BYTES: u64 = 411_566_080_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RookFailure {
    #[default]
    None,
    /// The CephCluster never gets past "Configuring Ceph OSDs" and no OSD appears.
    NoOsds,
    /// No OSD appears on these nodes, yet the cluster reports Ready (the trap docs warn of).
    MissingOsds(Vec<String>),
}

pub struct RookOperator {
    pub step: Duration,
    pub failure: Mutex<RookFailure>,
    progress: Mutex<HashMap<String, (i64, Instant)>>,
    /// The Ceph cluster behind the CephCluster (one per lab).
    pub ceph: Arc<Mutex<SimCeph>>,
    /// What the purge Jobs did, in order (`purged osd.N`, `osd.N is NOT ok to destroy`, …).
    pub purge_log: Mutex<Vec<String>>,
    /// How often a purge Job checks `safe-to-destroy` again (15 s in v1.20, 1 min in v1.10;
    /// scaled like the operator's steps).
    pub purge_retry: Duration,
    purge_checked: Mutex<HashMap<String, Instant>>,
    /// The nodes whose cleanup Job ran when a CephCluster was deleted with the confirmation.
    pub cleanups: Mutex<Vec<String>>,
    /// Per CephCluster: the Ceph that runs and the last daemon restart (upgrades).
    versions: Mutex<HashMap<String, super::rook_upgrade::VersionState>>,
    /// Each change of the Ceph that runs, `17.2.5 → 19.2.3`, in order.
    pub ceph_upgrades: Mutex<Vec<String>>,
    /// The daemons' and the status checker's timings.
    pub timings: Mutex<RookTimings>,
    /// Fault: OSD daemons that outlive their pod (a process the kubelet did not stop).
    pub stray_daemons: Mutex<std::collections::BTreeSet<u32>>,
    /// Per OSD pod: when it started, and when its deletion began.
    pods: Mutex<HashMap<String, (Instant, Option<Instant>)>>,
    /// Per CephCluster: when the status checker last refreshed `status.ceph`.
    health_checked: Mutex<HashMap<String, Instant>>,
}

/// How long Rook's daemons and checks take, scaled like the operator's steps.
#[derive(Debug, Clone, Copy)]
pub struct RookTimings {
    /// An OSD pod runs this long before its daemon boots (joins the OSD map).
    pub osd_boot: Duration,
    /// A deleted OSD pod (scaled to 0) terminates after this long; its daemon runs until then.
    pub osd_stop_grace: Duration,
    /// How often the status checker refreshes the CephCluster's `status.ceph` (60 s in
    /// Rook's `cluster.yaml`).
    pub health_interval: Duration,
}

impl RookTimings {
    pub fn for_step(step: Duration) -> RookTimings {
        RookTimings { osd_boot: step, osd_stop_grace: step, health_interval: step * 4 }
    }
}

impl RookOperator {
    pub fn new(step: Duration) -> RookOperator {
        RookOperator::with_ceph(step, CephConfig::default())
    }

    pub fn with_ceph(step: Duration, cfg: CephConfig) -> RookOperator {
        RookOperator {
            step,
            failure: Mutex::new(RookFailure::None),
            progress: Mutex::new(HashMap::new()),
            ceph: Arc::new(Mutex::new(SimCeph::new(cfg))),
            purge_log: Mutex::new(Vec::new()),
            purge_retry: step,
            purge_checked: Mutex::new(HashMap::new()),
            cleanups: Mutex::default(),
            versions: Mutex::new(HashMap::new()),
            ceph_upgrades: Mutex::new(Vec::new()),
            timings: Mutex::new(RookTimings::for_step(step)),
            stray_daemons: Mutex::new(Default::default()),
            pods: Mutex::new(HashMap::new()),
            health_checked: Mutex::new(HashMap::new()),
        }
    }

    pub fn timings(&self) -> RookTimings {
        *self.timings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_timings(&self, t: RookTimings) {
        *self.timings.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn ceph(&self) -> std::sync::MutexGuard<'_, SimCeph> {
        self.ceph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many times OSD `id` was purged by a purge Job.
    pub fn purges_of(&self, id: u32) -> usize {
        let want = format!("purged osd.{id}");
        self.purge_log.lock().map(|l| l.iter().filter(|x| **x == want).count()).unwrap_or(0)
    }
}

/// Whether Deployment `ns/name` runs a pod (Available with a ready replica; scaled to 0 it
/// does not).
pub fn deployment_running(st: &ApiState, ns: &str, name: &str) -> bool {
    st.deployment_available(ns, name)
        && st
            .get("apps", "deployments", ns, name)
            .and_then(|d| d.pointer("/status/readyReplicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            >= 1
}

/// When the operator started working on this generation of an object (a spec change restarts
/// its reconciliation).
pub(crate) fn since_generation(
    progress: &Mutex<HashMap<String, (i64, Instant)>>,
    key: &str,
    generation: i64,
    now: Instant,
) -> Instant {
    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
    let e = p.entry(key.to_owned()).or_insert((generation, now));
    if e.0 != generation {
        *e = (generation, now);
    }
    e.1
}

/// `(major, minor)` of the image tag of Deployment `ns/name`'s first container (an
/// operator's release, as the simulated operators read it).
pub(crate) fn image_minor(st: &ApiState, ns: &str, name: &str) -> Option<(u32, u32)> {
    let d = st.get("apps", "deployments", ns, name)?;
    let tag = d.pointer("/spec/template/spec/containers/0/image")?.as_str()?.rsplit_once(':')?.1;
    let mut it = tag.trim_start_matches('v').split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    Some((it.next().unwrap_or(0), it.next().unwrap_or(0)))
}

pub(crate) fn name_of(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}
pub(crate) fn ns_of(v: &Value) -> String {
    v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned()
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1"))).and_then(Value::as_str)
}

impl RookOperator {
    /// The OSD daemons: a pod per OSD Deployment with replicas, on its node while the node
    /// exists; the daemon boots `osd_boot` after its pod starts on a Ready node and runs
    /// until the pod is gone. A pod scaled away terminates after `osd_stop_grace` (at once
    /// when its node is gone). Rook holds `noout` on a host whose OSDs are down on a cordoned
    /// or deleted node (a drain; docs/day2.md §1.2).
    fn daemons(&self, st: &mut ApiState, ns: &str, nodes: &HashMap<String, Value>) {
        let deps: Vec<Value> = st
            .list("apps", "deployments", Some(ns))
            .into_iter()
            .filter(|d| label(d, "app") == Some("rook-ceph-osd"))
            .cloned()
            .collect();
        let t = self.timings();
        let stray = self.stray_daemons.lock().map(|s| s.clone()).unwrap_or_default();
        let now = Instant::now();
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let mut ceph = self.ceph();
        for d in deps {
            let Some(id) = label(&d, "ceph-osd-id").and_then(|s| s.parse::<u32>().ok()) else { continue };
            let host = label(&d, "topology-location-host").unwrap_or_default().to_owned();
            let replicas = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let pod = format!("rook-ceph-osd-{id}-{host}");
            let node = nodes.get(&host);
            let ready = node.is_some_and(node_ready);
            // An evicted OSD pod's replacement cannot be placed on a cordoned node: it stays
            // Pending (no pod on the node) until the node is uncordoned.
            let cordoned =
                node.is_some_and(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true));
            let placed = st.get("", "pods", ns, &pod).is_some();
            if !placed {
                pods.remove(&pod);
            }
            if replicas >= 1 && node.is_some() && (placed || !cordoned) {
                let cond = if ready { "True" } else { "False" };
                let cur = st.get("", "pods", ns, &pod).and_then(|p| p.pointer("/status/conditions/0/status").cloned());
                let e = pods.entry(pod.clone()).or_insert((now, None));
                e.1 = None;
                if cur.as_ref().and_then(Value::as_str) != Some(cond) {
                    st.put(
                        "",
                        "pods",
                        ns,
                        json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod, "labels": {"app": "rook-ceph-osd", "ceph-osd-id": id.to_string(), "topology-location-host": host, "osd": id.to_string()}},
                            "spec": {"nodeName": host},
                            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": cond}]}
                        }),
                    );
                }
            } else if placed {
                // Terminating: the daemon runs until the grace period ends.
                let e = pods.entry(pod.clone()).or_insert((now, None));
                let since = *e.1.get_or_insert(now);
                if node.is_none() || now.saturating_duration_since(since) >= t.osd_stop_grace {
                    st.delete("", "pods", ns, &pod);
                    pods.remove(&pod);
                } else if let Some(mut p) = st.get("", "pods", ns, &pod).cloned()
                    && p.pointer("/metadata/deletionTimestamp").is_none()
                {
                    p["metadata"]["deletionTimestamp"] = json!(crate::foundation::time::now_rfc3339());
                    st.put("", "pods", ns, p);
                }
            }
            let started = pods.get(&pod).map(|(s, _)| *s);
            let running = stray.contains(&id)
                || (ready && started.is_some_and(|s| now.saturating_duration_since(s) >= t.osd_boot));
            if ceph.osds.get(&id).is_some_and(|o| o.running != running) {
                ceph.set_running(id, running);
            }
            let up = ceph.osds.get(&id).is_some_and(|o| o.up);
            let drained = node.is_none_or(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true));
            if !up && drained {
                ceph.noout.insert(host.clone());
            } else if up {
                ceph.noout.remove(&host);
            }
        }
    }

    /// Rook's `osd-purge.yaml` Job (pkg/daemon/ceph/osd/remove.go): skips an OSD that is up,
    /// marks it out, waits for safe-to-destroy unless forced, then deletes its Deployment and
    /// purges it. The Job never completes while an OSD it must remove is not safe.
    fn purge_jobs(&self, st: &mut ApiState, ns: &str) {
        let jobs: Vec<Value> = st
            .list("batch", "jobs", Some(ns))
            .into_iter()
            .filter(|j| label(j, "app") == Some("rook-ceph-purge-osd"))
            .cloned()
            .collect();
        for j in jobs {
            if j.pointer("/status/succeeded").and_then(Value::as_i64).unwrap_or(0) >= 1 {
                continue;
            }
            // The Job's loop: one look now, the next after its retry interval.
            {
                let mut checked = self.purge_checked.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if checked.get(&name_of(&j)).is_some_and(|t| now.saturating_duration_since(*t) < self.purge_retry) {
                    continue;
                }
                checked.insert(name_of(&j), now);
            }
            let args: Vec<String> = j
                .pointer("/spec/template/spec/containers/0/args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
            let force = after("--force-osd-removal").as_deref() == Some("true");
            let ids: Vec<u32> =
                after("--osd-ids").unwrap_or_default().split(',').filter_map(|s| s.trim().parse().ok()).collect();
            let mut done = true;
            let mut log = Vec::new();
            {
                let mut ceph = self.ceph();
                ceph.tick(Instant::now());
                for id in ids {
                    let Some(osd) = ceph.osds.get(&id).cloned() else { continue };
                    if osd.up {
                        log.push(format!("osd.{id} is healthy. It cannot be removed unless it is 'down'"));
                        continue;
                    }
                    if osd.inn {
                        ceph.command(&["osd", "out", &format!("osd.{id}")]);
                    }
                    if ceph.safe_to_destroy(id).is_err() && !force {
                        log.push(format!("osd.{id} is NOT ok to destroy, retrying in 15s until success"));
                        done = false;
                        continue;
                    }
                    let _ = ceph.purge(id);
                    log.push(format!("purged osd.{id}"));
                    // `ceph osd crush rm HOST`, refused while the host has other OSDs.
                    let _ = ceph.command(&["osd", "crush", "rm", &osd.host]);
                    st.delete("apps", "deployments", ns, &format!("rook-ceph-osd-{id}"));
                    st.delete("", "pods", ns, &format!("rook-ceph-osd-{id}-{}", osd.host));
                }
            }
            if let Ok(mut l) = self.purge_log.lock() {
                for x in log {
                    if l.last() != Some(&x) {
                        l.push(x);
                    }
                }
            }
            let status = if done {
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
            } else {
                json!({"active": 1})
            };
            st.set_status("batch", "jobs", ns, &name_of(&j), status);
        }
    }
}

impl SimOperator for RookOperator {
    fn name(&self) -> &str {
        "rook"
    }

    fn reconcile(&self, st: &mut ApiState, now: Instant) {
        let clusters: Vec<Value> = st.list("ceph.rook.io", "cephclusters", None).into_iter().cloned().collect();
        let failure = self.failure.lock().map(|f| f.clone()).unwrap_or_default();
        let nodes: HashMap<String, Value> = st
            .node_values()
            .into_iter()
            .filter_map(|n| n["metadata"]["name"].as_str().map(|s| (s.to_owned(), n.clone())))
            .collect();
        for c in clusters {
            let (ns, name) = (ns_of(&c), name_of(&c));
            // Ceph's daemons and Jobs run whether or not the operator does.
            self.daemons(st, &ns, &nodes);
            self.purge_jobs(st, &ns);
            if !deployment_running(st, &ns, "rook-ceph-operator") {
                continue;
            }
            if c.pointer("/metadata/deletionTimestamp").is_some() {
                super::rook_teardown::deleting(st, &ns, &c, self.step, &self.ceph, &self.cleanups);
                continue;
            }
            super::rook_teardown::hold(st, &ns, &c);
            let generation = c["metadata"]["generation"].as_i64().unwrap_or(1);
            let started = since_generation(&self.progress, &format!("{ns}/{name}"), generation, now);
            let elapsed = now.saturating_duration_since(started);
            let mut wanted: Vec<(String, String)> = Vec::new();
            for n in c.pointer("/spec/storage/nodes").and_then(Value::as_array).into_iter().flatten() {
                let node = n["name"].as_str().unwrap_or_default().to_owned();
                for d in n["devices"].as_array().into_iter().flatten() {
                    wanted.push((node.clone(), d["name"].as_str().unwrap_or_default().to_owned()));
                }
            }
            wanted.sort();
            let prev = c["status"].clone();
            let prev_gen = prev["observedGeneration"].as_i64();
            let (phase, message) = if elapsed < self.step {
                ("Progressing", "Configuring Ceph Mons")
            } else if elapsed < self.step * 2 {
                ("Progressing", "Configuring Ceph Mgr(s)")
            } else if elapsed < self.step * 3 || failure == RookFailure::NoOsds {
                ("Progressing", "Configuring Ceph OSDs")
            } else {
                ("Ready", "Cluster created successfully")
            };
            // An OSD Deployment per listed device on nodes that exist. A listed node without
            // one gets a new OSD, also one whose OSD was purged while the operator ran (the
            // re-created OSD of rook/rook#7968).
            if elapsed >= self.step * 2 && failure != RookFailure::NoOsds {
                let hosts_with_osd: std::collections::HashSet<String> = st
                    .list("apps", "deployments", Some(&ns))
                    .into_iter()
                    .filter(|d| label(d, "app") == Some("rook-ceph-osd"))
                    .filter_map(|d| label(d, "topology-location-host").map(str::to_owned))
                    .collect();
                let mut made = std::collections::HashSet::new();
                for (node, dev) in wanted.iter() {
                    if !nodes.get(node).is_some_and(node_ready) || hosts_with_osd.contains(node) {
                        continue;
                    }
                    if let RookFailure::MissingOsds(skip) = &failure
                        && skip.contains(node)
                    {
                        continue;
                    }
                    if !made.insert(node.clone()) {
                        continue;
                    }
                    let id = self.ceph().add_osd(node, OSD_BYTES);
                    st.put(
                        "apps",
                        "deployments",
                        &ns,
                        json!({
                            "apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": format!("rook-ceph-osd-{id}"), "namespace": ns, "labels": {"app": "rook-ceph-osd", "ceph-osd-id": id.to_string(), "topology-location-host": node, "device": dev}},
                            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rook-ceph-osd", "ceph-osd-id": id.to_string()}}, "template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": node}}}}
                        }),
                    );
                }
                self.daemons(st, &ns, &nodes);
            }
            let ready = phase == "Ready";
            if ready {
                let pools: Vec<Value> =
                    st.list("ceph.rook.io", "cephblockpools", Some(&ns)).into_iter().cloned().collect();
                for p in pools {
                    let pname = p
                        .pointer("/spec/name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| name_of(&p));
                    let size = p.pointer("/spec/replicated/size").and_then(Value::as_u64).unwrap_or(3) as u32;
                    let fd = p.pointer("/spec/failureDomain").and_then(Value::as_str).unwrap_or("host").to_owned();
                    {
                        let mut ceph = self.ceph();
                        let same = ceph.pools.get(&pname).is_some_and(|x| x.size == size && x.failure_domain == fd);
                        if !same {
                            ceph.set_pool(&pname, size, &fd, pname != ".mgr");
                        }
                    }
                    let g = p["metadata"]["generation"].as_i64().unwrap_or(1);
                    if p.pointer("/status/observedGeneration").and_then(Value::as_i64) != Some(g) {
                        st.set_status(
                            "ceph.rook.io",
                            "cephblockpools",
                            &ns,
                            &name_of(&p),
                            json!({"phase": "Ready", "observedGeneration": g}),
                        );
                    }
                }
                if st.get("policy", "poddisruptionbudgets", &ns, "rook-ceph-osd").is_none() {
                    st.put("policy", "poddisruptionbudgets", &ns, json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "rook-ceph-osd", "namespace": ns}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "rook-ceph-osd"}}}}));
                }
            }
            let (health, details, total, used, osds) = {
                let mut ceph = self.ceph();
                ceph.tick(now);
                let (h, d) = ceph.health();
                (h, d, ceph.bytes_total(), ceph.bytes_used(), ceph.osds.len())
            };
            // Versions: the daemons at this operator's release and the declared Ceph, rolled
            // one at a time; a refused Ceph change leaves them where they are.
            let rook_version = st
                .get("apps", "deployments", &ns, "rook-ceph-operator")
                .and_then(|d| {
                    d.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).map(str::to_owned)
                })
                .and_then(|i| i.rsplit(':').next().map(str::to_owned))
                .unwrap_or_default();
            super::rook_upgrade::convert_csi_settings(st, &ns, &rook_version);
            let (phase, message, ready, running) = if elapsed >= self.step {
                let mut vs = self.versions.lock().unwrap_or_else(|e| e.into_inner());
                let v = vs.entry(format!("{ns}/{name}")).or_default();
                let before = v.running;
                let roll = super::rook_upgrade::reconcile(
                    st,
                    v,
                    &ns,
                    &c,
                    &rook_version,
                    health == "HEALTH_ERR",
                    self.step,
                    now,
                );
                if let Some(b) = before
                    && v.running != Some(b)
                    && let (Ok(mut log), Some(a)) = (self.ceph_upgrades.lock(), v.running)
                {
                    log.push(format!("{}.{}.{} → {}.{}.{}", b.0, b.1, b.2, a.0, a.1, a.2));
                }
                match (&roll.status, ready) {
                    (Some((p, m)), _) => (*p, m.clone(), false, Some(roll.running)),
                    (None, r) => (phase, message.to_owned(), r, Some(roll.running)),
                }
            } else {
                (phase, message.to_owned(), ready, None)
            };
            let phase: &str = phase;
            let message = message.as_str();
            let version = running.map(super::rook_upgrade::ceph_label).unwrap_or_else(|| "17.2.5-0".into());
            let mut details: serde_json::Map<String, Value> =
                details.into_iter().map(|(k, (sev, msg))| (k, json!({"message": msg, "severity": sev}))).collect();
            let mut health = health;
            if osds == 0 {
                details.insert(
                    "TOO_FEW_OSDS".into(),
                    json!({"message": "OSD count 0 < osd_pool_default_size 3", "severity": "HEALTH_WARN"}),
                );
                health = "HEALTH_WARN".into();
            }
            let mut status = json!({
                "phase": phase,
                "message": message,
                "state": if ready { "Created" } else if phase == "Failure" { "Error" } else { "Creating" },
                "ceph": {"health": health, "details": details, "capacity": {"bytesTotal": total, "bytesUsed": used, "bytesAvailable": total.saturating_sub(used), "lastUpdated": crate::foundation::time::now_rfc3339()}, "fsid": "5f3a2e1c-sim0-4000-8000-000000000001"},
                "conditions": [if ready {
                    json!({"type": "Ready", "status": "True", "reason": "ClusterCreated", "message": "Cluster created successfully"})
                } else {
                    json!({"type": "Progressing", "status": "True", "reason": "ClusterProgressing", "message": message})
                }],
                "version": {"image": c.pointer("/spec/cephVersion/image").cloned().unwrap_or(json!("quay.io/ceph/ceph")), "version": version}
            });
            // observedGeneration is written with the Ready condition only.
            match (ready, prev_gen) {
                (true, _) => status["observedGeneration"] = json!(generation),
                (false, Some(g)) => status["observedGeneration"] = json!(g),
                _ => {}
            }
            // The status checker refreshes `status.ceph` on its interval, not on every change.
            {
                let mut checked = self.health_checked.lock().unwrap_or_else(|e| e.into_inner());
                let key = format!("{ns}/{name}");
                let due = checked
                    .get(&key)
                    .is_none_or(|t| now.saturating_duration_since(*t) >= self.timings().health_interval);
                if due || prev.get("ceph").is_none() {
                    checked.insert(key, now);
                } else {
                    status["ceph"] = prev["ceph"].clone();
                }
            }
            if let Some(st_obj) = status.pointer_mut("/ceph/capacity/lastUpdated") {
                // Keep the status stable between reconciles so a converged cluster does not churn.
                *st_obj = prev
                    .pointer("/ceph/capacity/lastUpdated")
                    .cloned()
                    .unwrap_or_else(|| json!(crate::foundation::time::now_rfc3339()));
            }
            if prev != status {
                st.set_status("ceph.rook.io", "cephclusters", &ns, &name, status);
            }
        }
    }
}
