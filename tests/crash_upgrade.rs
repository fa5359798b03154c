//! Crash anywhere in `homelab upgrade`: the real binary climbs the seed cluster (MicroK8s
//! 1.26, Rook v1.10.10, Ceph 17) to MicroK8s 1.31, Rook v1.20.6 and Ceph 19 and is
//! SIGKILLed again and again, each time right after a change the simulators carried out (a
//! snap hold or refresh, a datastore backup, an operator image set, an apply)
//! before homelab heard the answer; each run starts where the last one was killed, so the
//! kills spread over every stage of the ladder (38 points: each Rook hop's image set and
//! some of their bundle applies, the Ceph image set, the holds, each round's backup and
//! every machine's refresh in every round). After the last kill one more run must
//! finish the ladder with every hop done once: five refreshes per machine in order, one hold
//! per machine, one backup per round, one operator image change per Rook hop, one Ceph
//! upgrade, the end state of an uninterrupted upgrade (`tests/upgrade.rs`), and an `up` that
//! changes nothing. The second test does the same across the Strimzi ladder (0.33.1 / Kafka
//! 3.3.2 on ZooKeeper to 0.47.0 / Kafka 4.0.0 on KRaft), 33 points, the migration included.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::path::Path;
use std::time::Duration;
use support::crash::{is_change, run_and_kill_on_call, run_to_end};
use support::subproc::World;

fn target(seed: &str) -> String {
    support::upgrade_target(seed, "1.31/stable", "v1.20.6", "v19.2.3")
}

/// A converged seed cluster whose file now declares the target versions.
async fn prepare(upstream: &Path) -> World {
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let (code, out) = run_to_end(&w, upstream, &["up", &yaml, "-o", "json"], Duration::from_secs(180)).await;
    assert_eq!(code, 0, "{out}");
    let seed = std::fs::read_to_string(&w.yaml).unwrap();
    std::fs::write(&w.yaml, target(&seed)).unwrap();
    // Count the upgrade's requests only.
    w.lab.api.clear_log();
    w
}

/// What every finished upgrade must show, however often it was interrupted.
fn check(w: &World, what: &str) {
    let lab = &w.lab;
    for h in ["maas", "kvm4", "kvm5"] {
        let refreshes: Vec<String> =
            lab.hosts.commands(h).into_iter().filter(|c| c.contains("snap refresh microk8s --channel")).collect();
        let want: Vec<String> = (27..=31).map(|m| format!("--channel=1.{m}/stable")).collect();
        assert_eq!(refreshes.len(), 5, "{what}: {h} refreshed {refreshes:?}");
        for (c, w) in refreshes.iter().zip(&want) {
            assert!(c.ends_with(w.as_str()), "{what}: {h} refreshed {refreshes:?}");
        }
        assert_eq!(lab.hosts.count(h, "snap refresh --hold=forever"), 1, "{what}: {h} held more than once");
        assert_eq!(lab.hosts.snap_state(h), (true, false), "{what}: {h} (held, broken)");
    }
    let backups: usize = ["maas", "kvm4", "kvm5"].iter().map(|h| lab.hosts.count(h, "microk8s dbctl backup")).sum();
    assert_eq!(backups, 5, "{what}: {backups} datastore backups");
    let image_sets = lab
        .api
        .requests()
        .iter()
        .filter(|r| r.starts_with("PATCH") && r.contains("/deployments/rook-ceph-operator") && !r.contains("dry"))
        .count();
    assert_eq!(image_sets, 10, "{what}: the operator image was set {image_sets} times");
    assert_eq!(*lab.rook.ceph_upgrades.lock().unwrap(), ["17.2.5 → 19.2.3"], "{what}");
    let nodes = lab.hosts.nodes();
    assert!(nodes.len() == 3 && nodes.iter().all(|n| n.ready && n.version.starts_with("v1.31")), "{what}: {nodes:?}");
    let op = lab.api.object("apps", "deployments", "rook-ceph", "rook-ceph-operator").unwrap();
    assert_eq!(op["spec"]["template"]["spec"]["containers"][0]["image"], "docker.io/rook/ceph:v1.20.6", "{what}");
    let c = lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").unwrap();
    assert_eq!(c["status"]["version"]["version"], "19.2.3-0", "{what}");
    assert!(lab.rook.ceph().clean(), "{what}: Ceph not clean");
    assert!(support::kafka_ready(lab), "{what}: Kafka not Ready");
}

type Pred = Box<dyn Fn(&str) -> bool + Send + Sync>;
type Api = std::sync::Arc<std::sync::Mutex<homelab::sim::apiserver::ApiState>>;

fn operator_image(api: &Api) -> String {
    let st = api.lock().unwrap_or_else(|e| e.into_inner());
    st.get("apps", "deployments", "rook-ceph", "rook-ceph-operator")
        .and_then(|o| o.pointer("/spec/template/spec/containers/0/image").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// The operator image set to Rook `v` (the tap runs after the write, so the object shows it).
fn image(api: &Api, v: &'static str) -> Pred {
    let api = api.clone();
    Box::new(move |w| {
        w.starts_with("PATCH") && w.contains("/deployments/rook-ceph-operator") && operator_image(&api).ends_with(v)
    })
}
/// In the middle of the bundle apply of the hop after Rook `v`.
fn mid_bundle(api: &Api, v: &'static str) -> Pred {
    let api = api.clone();
    Box::new(move |w| {
        // (The CephCluster CRD changes in every release; an object that does not — the
        // `rook-ceph-global` binding — is not sent at all once it is converged.)
        w.starts_with("PATCH")
            && w.contains("/customresourcedefinitions/cephclusters.ceph.rook.io")
            && operator_image(&api).ends_with(v)
    })
}
/// The CephCluster's image set to `tag`.
fn ceph_image(api: &Api, tag: &'static str) -> Pred {
    let api = api.clone();
    Box::new(move |w| {
        let st = api.lock().unwrap_or_else(|e| e.into_inner());
        w.starts_with("PATCH")
            && w.contains("/cephclusters/rook-ceph")
            && st
                .get("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph")
                .and_then(|c| c.pointer("/spec/cephVersion/image").and_then(|v| v.as_str()))
                .is_some_and(|i| i.ends_with(tag))
            && st
                .get("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph")
                .and_then(|c| c.pointer("/status/version/version").and_then(|v| v.as_str()))
                .is_some_and(|v| !v.starts_with(tag.trim_start_matches('v')))
    })
}
/// A mutating command on a machine.
fn ssh(host: &'static str, needle: String) -> Pred {
    Box::new(move |w| w.starts_with(&format!("SSH {host} rw")) && w.contains(&needle))
}

/// The kill points: each a moment the ladder passes once — in each Rook hop the middle of
/// its bundle apply (some) and right after the operator image set (all), the Ceph image
/// set, the snap holds, each round's datastore backup and every machine's refresh of every
/// round. Every run is killed at the first remaining point it reaches, which is then used up.
fn kill_points(api: &Api) -> Vec<(String, Pred)> {
    let mut p: Vec<(String, Pred)> = Vec::new();
    let rooks = [
        ("v1.10.10", "v1.11.11"),
        ("v1.11.11", "v1.12.11"),
        ("v1.12.11", "v1.13.10"),
        ("v1.13.10", "v1.14.12"),
        ("v1.14.12", "v1.15.9"),
        ("v1.15.9", "v1.16.9"),
        ("v1.16.9", "v1.17.9"),
        ("v1.17.9", "v1.18.11"),
        ("v1.18.11", "v1.19.10"),
        ("v1.19.10", "v1.20.6"),
    ];
    for (i, (from, to)) in rooks.iter().enumerate() {
        if i % 3 == 0 {
            p.push((format!("Rook {to}: mid bundle apply"), mid_bundle(api, from)));
        }
        p.push((format!("Rook {to}: operator image set"), image(api, to)));
    }
    p.push(("Ceph 19.2.3: CephCluster image set".into(), ceph_image(api, "v19.2.3")));
    for h in ["maas", "kvm4", "kvm5"] {
        p.push((format!("{h}: snap held"), ssh(h, "--hold=forever".into())));
    }
    for m in 26..=30 {
        p.push((format!("backup before 1.{}", m + 1), ssh("maas", format!("homelab-datastore-1.{m}.tar.gz"))));
        for h in ["maas", "kvm4", "kvm5"] {
            p.push((format!("{h}: refreshed to 1.{}", m + 1), ssh(h, format!("--channel=1.{}/stable", m + 1))));
        }
    }
    p
}

/// Runs `args` again and again, each run killed at the first remaining point it reaches
/// (reads included, so a point can be a wait), until every point is used up or a run ends
/// on its own; then one more run to the end, which must succeed. Asserts at least 20 kills
/// landed and at most a tenth of the points were never reached; returns what was hit.
async fn kill_through(w: &World, upstream: &Path, args: &[&str], points: Vec<(String, Pred)>) -> Vec<String> {
    let total = points.len();
    let remaining = std::sync::Arc::new(std::sync::Mutex::new(points));
    let mut hits = Vec::new();
    for _ in 0..total {
        let t = std::time::Instant::now();
        let matched = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let (rem, m) = (remaining.clone(), matched.clone());
        let pred = move |c: &str| {
            let mut r = rem.lock().unwrap();
            match r.iter().position(|(_, p)| p(c)) {
                Some(i) => {
                    *m.lock().unwrap() = Some(r.remove(i).0);
                    true
                }
                None => false,
            }
        };
        match run_and_kill_on_call(w, upstream, args, pred).await {
            Some(what) => {
                let label = matched.lock().unwrap().clone().unwrap_or_default();
                hits.push(format!("killed at {label}: {what} ({:.1}s)", t.elapsed().as_secs_f64()));
                eprintln!("{}", hits.last().map(String::as_str).unwrap_or_default());
            }
            None => {
                hits.push("a run finished without reaching a kill point".into());
                break;
            }
        }
    }
    let (code, out) = run_to_end(w, upstream, args, Duration::from_secs(600)).await;
    assert_eq!(code, 0, "the run after the last kill failed:\n{out}\n{hits:#?}");
    let killed = hits.iter().filter(|h| h.starts_with("killed")).count();
    assert!(killed >= 20, "only {killed} kills landed: {hits:#?}");
    let missed: Vec<String> = remaining.lock().unwrap().iter().map(|(l, _)| l.clone()).collect();
    assert!(missed.len() * 10 <= total, "kill points never reached: {missed:?}");
    hits
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_killed_across_the_ladder_finishes_with_every_hop_done_once() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = prepare(&upstream).await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let args = ["upgrade", &yaml, "--yes", "-o", "json"];
    // Points on changes only (each right after a write or a mutating command).
    let points = kill_points(&w.lab.api.shared())
        .into_iter()
        .map(|(l, p)| -> (String, Pred) { (l, Box::new(move |c: &str| is_change(c) && p(c))) })
        .collect();
    let hits = kill_through(&w, &upstream, &args, points).await;
    check(&w, &format!("after {} kills", hits.len()));
    // Then `up` of the upgraded file changes nothing.
    let (code, out) = run_to_end(&w, &upstream, &["up", &yaml], Duration::from_secs(180)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("converged: no changes"), "{out}");
}

// ---- the Strimzi ladder ------------------------------------------------------------------

fn kafka_obj(api: &Api) -> serde_json::Value {
    let st = api.lock().unwrap_or_else(|e| e.into_inner());
    st.get("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").cloned().unwrap_or_default()
}

fn strimzi_image(api: &Api) -> String {
    let st = api.lock().unwrap_or_else(|e| e.into_inner());
    st.get("apps", "deployments", "kafka", "strimzi-cluster-operator")
        .and_then(|o| o.pointer("/spec/template/spec/containers/0/image").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// A write to `path` while (after which) the Strimzi operator runs release `v`.
fn operator_write(api: &Api, path: &'static str, v: &str) -> Pred {
    let (api, tag) = (api.clone(), format!(":{v}"));
    Box::new(move |w| is_write(w) && w.contains(path) && strimzi_image(&api).ends_with(&tag))
}

/// A write to the Kafka after which `holds` is true of it.
fn kafka_write(api: &Api, holds: impl Fn(&serde_json::Value) -> bool + Send + Sync + 'static) -> Pred {
    let api = api.clone();
    Box::new(move |w| is_write(w) && w.contains("/kafkas/my-cluster") && holds(&kafka_obj(&api)))
}

fn is_write(w: &str) -> bool {
    is_change(w) && !w.contains("dryRun")
}

/// A read while the migration is in `state` (the run is waiting, not writing).
fn waiting_in(api: &Api, state: &'static str) -> Pred {
    let api = api.clone();
    Box::new(move |w| {
        w.starts_with("GET")
            && w.contains("/kafkas/my-cluster")
            && kafka_obj(&api)["status"]["kafkaMetadataState"] == state
    })
}

fn at(k: &serde_json::Value, p: &str) -> String {
    k.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_owned()
}

/// The kill points of the Strimzi ladder from 0.33.1 / Kafka 3.3.2 on ZooKeeper to 0.47.0 /
/// Kafka 4.0.0 on KRaft: each operator hop's image set (and the middle of some install
/// applies), each Kafka step's version raise and protocol raise, the node pool and its
/// annotation, and every write and two waits of the migration (in KRaftDualWriting, in
/// PreKRaft).
fn strimzi_points(api: &Api) -> Vec<(String, Pred)> {
    let mut p: Vec<(String, Pred)> = Vec::new();
    let ops = ["0.33.1", "0.35.1", "0.37.0", "0.39.0", "0.42.0", "0.44.0", "0.45.2", "0.47.0"];
    let kafkas: [&'static str; 6] = ["3.4.0", "3.5.1", "3.6.1", "3.7.1", "3.8.0", "3.9.1"];
    for (i, pair) in ops.windows(2).enumerate() {
        let (from, to) = (pair[0], pair[1]);
        if i % 3 == 0 {
            let crd = "/customresourcedefinitions/kafkas.kafka.strimzi.io";
            p.push((format!("Strimzi {to}: mid install apply"), operator_write(api, crd, from)));
        }
        p.push((
            format!("Strimzi {to}: operator image set"),
            operator_write(api, "/deployments/strimzi-cluster-operator", to),
        ));
        if let Some(&v) = kafkas.get(i) {
            let mm: String = v.rsplit_once('.').map(|x| x.0.to_owned()).unwrap_or_default();
            p.push((
                format!("Kafka {v}: version raised"),
                kafka_write(api, move |k| at(k, "/spec/kafka/version") == v),
            ));
            p.push((
                format!("Kafka {v}: protocol raised"),
                kafka_write(api, move |k| {
                    at(k, "/spec/kafka/version") == v && at(k, "/spec/kafka/config/inter.broker.protocol.version") == mm
                }),
            ));
        }
    }
    let api2 = api.clone();
    p.push((
        "node pool kafka created".into(),
        Box::new(move |w| {
            is_write(w)
                && w.contains("/kafkanodepools/kafka")
                && kafka_obj(&api2)["metadata"]["annotations"]["strimzi.io/node-pools"] != "enabled"
        }),
    ));
    p.push((
        "node pools annotation".into(),
        kafka_write(api, |k| k["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"),
    ));
    p.push((
        "migration: versions aligned".into(),
        kafka_write(api, |k| {
            !at(k, "/spec/kafka/metadataVersion").is_empty()
                && k["metadata"]["annotations"].get("strimzi.io/kraft").is_none()
        }),
    ));
    p.push((
        "migration: controller pool created".into(),
        Box::new(|w| is_write(w) && w.contains("/kafkanodepools/controller")),
    ));
    p.push((
        "migration: annotated".into(),
        kafka_write(api, |k| k["metadata"]["annotations"]["strimzi.io/kraft"] == "migration"),
    ));
    p.push(("migration: waiting in KRaftDualWriting".into(), waiting_in(api, "KRaftDualWriting")));
    p.push((
        "migration: enabled".into(),
        kafka_write(api, |k| k["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"),
    ));
    p.push(("migration: waiting in PreKRaft".into(), waiting_in(api, "PreKRaft")));
    p.push((
        "migration: ZooKeeper removed".into(),
        kafka_write(api, |k| k["spec"].get("zookeeper").is_none() && k["status"]["kafkaMetadataState"] == "KRaft"),
    ));
    p.push(("Kafka 4.0.0: version raised".into(), kafka_write(api, |k| at(k, "/spec/kafka/version") == "4.0.0")));
    p.push((
        "Kafka 4.0.0: metadata version raised".into(),
        kafka_write(api, |k| {
            at(k, "/spec/kafka/version") == "4.0.0" && at(k, "/spec/kafka/metadataVersion").starts_with("4.0")
        }),
    ));
    p
}

fn pvc_uids(w: &World) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = w
        .lab
        .api
        .objects("", "persistentvolumeclaims", Some("kafka"))
        .iter()
        .filter(|p| p["metadata"]["name"].as_str().unwrap_or("").starts_with("data-my-cluster-kafka-"))
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                p["metadata"]["uid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn strimzi_upgrade_killed_across_its_ladder_and_the_migration_finishes_with_every_step_done_once() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let (code, out) = run_to_end(&w, &upstream, &["up", &yaml, "-o", "json"], Duration::from_secs(180)).await;
    assert_eq!(code, 0, "{out}");
    let claims = pvc_uids(&w);
    assert_eq!(claims.len(), 3, "{claims:?}");
    let seed = std::fs::read_to_string(&w.yaml).unwrap();
    std::fs::write(&w.yaml, support::kraft_target(&seed, "0.47.0", "4.0.0")).unwrap();
    w.lab.api.clear_log();
    let args = ["upgrade", &yaml, "--yes", "--continue-kraft", "-o", "json"];
    let hits = kill_through(&w, &upstream, &args, strimzi_points(&w.lab.api.shared())).await;
    // Every operator release and Kafka version once, in order; the migration through every
    // state once; the brokers' claims the same.
    let history: Vec<String> = w.lab.strimzi.history.lock().unwrap().clone();
    let want = support::strimzi_history("4.0.0");
    assert_eq!(history, want, "{hits:#?}");
    let log = w.lab.strimzi.metadata_log.lock().unwrap().clone();
    assert_eq!(log, support::MIGRATION_LOG);
    assert_eq!(pvc_uids(&w), claims, "the brokers' claims were replaced");
    let k = kafka_obj(&w.lab.api.shared());
    assert_eq!(k["status"]["kafkaVersion"], "4.0.0", "{k}");
    assert!(k["spec"].get("zookeeper").is_none(), "{k}");
    assert!(support::kafka_ready(&w.lab), "Kafka not Ready");
    let (code, out) = run_to_end(&w, &upstream, &["up", &yaml], Duration::from_secs(180)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("converged: no changes"), "{out}");
}
