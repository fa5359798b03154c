//! `homelab reset` (issue 35) through the binary against the simulated seed lab — the MAAS
//! host `maas` pre-installed as node 1, kvm4 and kvm5 deployed by MAAS: refused off a
//! terminal without the confirmation, changing nothing; its dry run lists exactly the steps
//! the run then takes; the run takes everything down in the documented order (Rook's cleanup
//! Job on every node before the CephCluster goes) and releases only what MAAS deployed; a
//! second reset has nothing to do; and `up` from the same file builds the cluster again.
//! Killed right after any change it makes, the next reset finishes the job, repeating no
//! release and no cleanup.
//!
//! CI tries a sample of the kill points (every MAAS and SSH change, every 5th API write, at
//! most about 14); `HOMELAB_CRASH_ALL=1` tries all of them.

mod support;

use homelab::maas::Status;
use homelab::sim::lab::FullLabOptions;
use serde_json::Value;
use std::path::Path;
use support::crash::{name_changes, record_changes, run_and_kill_at_change, taps};
use support::subproc::World;

async fn run(w: &World, up: &Path, args: &[&str]) -> (i32, String) {
    support::crash::run_to_end(w, up, args, std::time::Duration::from_secs(180)).await
}

async fn converged(upstream: &Path) -> World {
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let (code, out) = run(&w, upstream, &["up", &yaml]).await;
    assert_eq!(code, 0, "{out}");
    w
}

fn reset_args(w: &World) -> Vec<String> {
    let yaml = w.yaml.to_str().unwrap().to_owned();
    ["reset", &yaml, "--release", "--erase", "quick", "--yes-really-destroy-data", "lab", "-o", "json"]
        .map(String::from)
        .to_vec()
}

/// The step (target, words) of each `step` or `planned` event.
fn steps(out: &str, event: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == event)
        .map(|e| {
            (e["target"].as_str().unwrap_or_default().to_owned(), e["action"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// What a finished reset leaves, however often it was interrupted.
fn check_gone(w: &World, what: &str) {
    let lab = &w.lab;
    assert!(lab.hosts.nodes().is_empty(), "{what}: nodes left {:?}", lab.hosts.nodes());
    for h in ["maas", "kvm4", "kvm5"] {
        assert_eq!(lab.hosts.count(h, "snap remove microk8s --purge"), 1, "{what}: {h} had MicroK8s removed once");
    }
    // Rook wiped the OSD volumes on each node, once.
    let mut cleaned = lab.rook.cleanups.lock().unwrap().clone();
    cleaned.sort();
    assert_eq!(cleaned, ["kvm4", "kvm5", "maas"], "{what}");
    assert!(lab.rook.ceph().osds.is_empty(), "{what}: Ceph kept OSDs");
    // Only what MAAS deployed went back to it, once each; the MAAS host was never asked about.
    let releases: Vec<String> = lab.lab.maas.requests().into_iter().filter(|r| r.contains("op=release")).collect();
    assert_eq!(releases.len(), 2, "{what}: {releases:?}");
    for h in ["kvm4", "kvm5"] {
        assert!(
            matches!(lab.lab.maas.status(h), Some(Status::Releasing | Status::DiskErasing | Status::Ready)),
            "{what}: {h} {:?}",
            lab.lab.maas.status(h)
        );
    }
    assert_eq!(lab.lab.maas.status("maas"), None, "{what}: MAAS knows no machine `maas`");
    // The API server lost its datastore with MicroK8s.
    assert!(lab.api.objects("kafka.strimzi.io", "kafkas", None).is_empty(), "{what}");
    assert!(lab.api.objects("ceph.rook.io", "cephclusters", None).is_empty(), "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_takes_the_seed_down_in_order_and_up_builds_it_again() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = converged(&upstream).await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let maas_before = w.lab.lab.maas.requests().len();
    let objects_before = w.lab.api.all_objects().len();
    // Off a terminal, without the confirmation: refused, nothing touched.
    for args in [vec!["reset", yaml.as_str()], vec!["reset", yaml.as_str(), "--yes-really-destroy-data", "garage"]] {
        let (code, out) = run(&w, &upstream, &args).await;
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("--yes-really-destroy-data") && out.contains("nothing was changed"), "{out}");
    }
    assert_eq!(w.lab.api.all_objects().len(), objects_before);
    assert!(w.lab.lab.maas.requests()[maas_before..].iter().all(|r| r.starts_with("GET")), "no MAAS write");
    // The dry run lists the steps.
    let mut dry = reset_args(&w);
    dry.retain(|a| a != "--yes-really-destroy-data" && a != "lab");
    dry.push("--dry-run".into());
    let argv: Vec<&str> = dry.iter().map(String::as_str).collect();
    let (code, out) = run(&w, &upstream, &argv).await;
    assert_eq!(code, 0, "{out}");
    let planned = steps(&out, "planned");
    assert_eq!(w.lab.api.all_objects().len(), objects_before, "the dry run changed nothing");
    let words: Vec<&str> = planned.iter().map(|(_, a)| a.as_str()).collect();
    let at = |p: &str| words.iter().position(|w| w.contains(p)).unwrap_or_else(|| panic!("no step {p}: {words:#?}"));
    assert!(at("PostgreSQL Cluster") < at("Kafka my-cluster"));
    assert!(at("Kafka my-cluster") < at("CephBlockPool"));
    assert!(at("CephBlockPool") < at("cleanupPolicy"));
    assert!(at("cleanupPolicy") < at("delete the CephCluster"));
    assert!(at("delete the CephCluster") < at("Rook operator"));
    assert!(at("Rook operator") < at("remove MicroK8s from kvm4"));
    assert!(at("remove MicroK8s from kvm5") < at("remove MicroK8s from maas"), "the first control plane last");
    assert!(at("remove MicroK8s from maas") < at("release kvm4"));
    assert!(!words.iter().any(|w| w.contains("release maas")), "{words:#?}");
    // The run takes exactly those steps.
    let args = reset_args(&w);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = run(&w, &upstream, &argv).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(steps(&out, "step"), planned, "the dry run is the run");
    check_gone(&w, "reset");
    // Nothing left to do.
    let (code, out) = run(&w, &upstream, &["reset", &yaml, "--yes-really-destroy-data", "lab"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to reset"), "{out}");
    // The same file builds it again, from released machines and a pre-installed host.
    let (code, out) = run(&w, &upstream, &["up", &yaml]).await;
    assert_eq!(code, 0, "{out}");
    assert!(support::kafka_ready(&w.lab), "{out}");
    assert_eq!(w.lab.hosts.nodes().iter().filter(|n| n.ready).count(), 3);
    let (code, out) = run(&w, &upstream, &["up", &yaml]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("converged: no changes"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_killed_after_each_change_finishes_on_the_next_run() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = converged(&upstream).await;
    let args = reset_args(&w);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let changes = record_changes(&w);
    let (code, out) = run(&w, &upstream, &argv).await;
    for tap in taps(&w) {
        tap.clear();
    }
    assert_eq!(code, 0, "{out}");
    check_gone(&w, "uninterrupted");
    let named = name_changes(&changes.lock().unwrap());
    assert!(named.len() > 8, "{named:?}");
    let points = support::crash::sample_points(&named, 5, 14, |p| {
        p.2.contains("snap remove")
            || p.0.contains("op=release")
            || p.0.starts_with("DELETE /apis/ceph.rook.io/v1/namespaces/rook-ceph/cephclusters")
    });
    let mut tried = 0;
    for (key, nth, _) in points.iter().copied() {
        let t = std::time::Instant::now();
        let w = converged(&upstream).await;
        let args = reset_args(&w);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let Some(what) = run_and_kill_at_change(&w, &upstream, &argv, key, *nth).await else {
            eprintln!("not reached in this run: {key} #{nth}");
            continue;
        };
        let (code, out) = run(&w, &upstream, &argv).await;
        assert_eq!(code, 0, "killed right after {key} #{nth} ({what}); the next run failed:\n{out}");
        check_gone(&w, &format!("killed right after {key} #{nth}"));
        tried += 1;
        eprintln!("reset: killed right after {key} #{nth}: finished ({:.1}s)", t.elapsed().as_secs_f64());
    }
    eprintln!("reset: {tried} kill points of {} changes finished", named.len());
    assert!(tried * 10 >= points.len() * 8, "only {tried} of {} kill points were reached", points.len());
}

/// `--only apps` on the current example (Strimzi 1.2, whose resources are `kafka.strimzi.io/v1`
/// only): the Kafka, its node pools, topics, users and bridge and the database go, read and
/// deleted at the version the release serves; the operators, Ceph and MicroK8s stay. A
/// second run has nothing to do and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn reset_only_apps_on_strimzi_1_takes_kafka_and_the_database_and_keeps_the_rest() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "current-2026.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let (code, out) = run(&w, &upstream, &["up", &yaml]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!w.lab.api.objects("kafka.strimzi.io", "kafkanodepools", Some("kafka")).is_empty());
    let args = ["reset", yaml.as_str(), "--only", "apps", "--yes-really-destroy-data", "lab"];
    let (code, out) = run(&w, &upstream, &args).await;
    assert_eq!(code, 0, "{out}");
    for plural in ["kafkas", "kafkanodepools", "kafkatopics", "kafkausers", "kafkabridges"] {
        assert!(w.lab.api.objects("kafka.strimzi.io", plural, Some("kafka")).is_empty(), "{plural} left:\n{out}");
    }
    assert!(w.lab.api.objects("postgresql.cnpg.io", "clusters", None).is_empty(), "{out}");
    assert!(w.lab.api.objects("", "persistentvolumeclaims", Some("kafka")).is_empty(), "{out}");
    assert!(
        w.lab.api.object("apps", "deployments", "kafka", "strimzi-cluster-operator").is_some(),
        "the operator stays"
    );
    assert!(w.lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").is_some(), "Ceph stays");
    assert_eq!(w.lab.hosts.nodes().len(), 3, "MicroK8s stays");
    // Again: nothing to do, and nothing written to the API server or MAAS.
    w.lab.api.clear_log();
    let maas_before = w.lab.lab.maas.requests().len();
    let (code, out) = run(&w, &upstream, &args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to reset"), "{out}");
    let writes: Vec<String> = w.lab.api.requests().into_iter().filter(|r| !r.starts_with("GET")).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(w.lab.lab.maas.requests()[maas_before..].iter().all(|r| r.starts_with("GET")), "no MAAS write");
}
