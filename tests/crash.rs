//! Crash anywhere: `homelab up` (the real binary) is SIGKILLed after its k-th event — every
//! MAAS call, SSH command and apply stage reports an event — then run again. Every run must
//! converge with no machine deployed twice, no node joined twice, nothing deleted, and the
//! same final state as an uninterrupted run.
//!
//! CI tries a sample of the kill points (every 8th); `HOMELAB_CRASH_ALL=1` tries all of them.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use support::subproc::World;

/// What must be the same after any interrupted-then-finished run.
#[derive(Debug, PartialEq, Eq)]
struct Final {
    deployed: Vec<String>,
    deploy_calls: usize,
    joins: Vec<usize>,
    installs: Vec<usize>,
    objects: BTreeSet<String>,
    deletes: usize,
    nodes_ready: usize,
    osds: usize,
    kafka_ready: bool,
}

fn final_state(w: &World) -> Final {
    let hosts = ["maas", "kvm4", "kvm5"];
    let mut objects = BTreeSet::new();
    for (g, p) in [
        ("ceph.rook.io", "cephclusters"),
        ("ceph.rook.io", "cephblockpools"),
        ("storage.k8s.io", "storageclasses"),
        ("kafka.strimzi.io", "kafkas"),
        ("apps", "deployments"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ] {
        for o in w.lab.api.objects(g, p, None) {
            objects.insert(format!(
                "{p}/{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            ));
        }
    }
    Final {
        deployed: hosts
            .iter()
            .filter(|h| w.lab.lab.maas.status(h) == Some(homelab::maas::Status::Deployed))
            .map(|h| h.to_string())
            .collect(),
        deploy_calls: w.lab.lab.maas.count("op=deploy"),
        joins: hosts.iter().map(|h| w.lab.hosts.count(h, "microk8s join")).collect(),
        installs: hosts.iter().map(|h| w.lab.hosts.count(h, "snap install microk8s")).collect(),
        objects,
        deletes: w.lab.api.requests().iter().filter(|r| r.starts_with("DELETE")).count(),
        nodes_ready: w.lab.hosts.nodes().iter().filter(|n| n.ready).count(),
        osds: w.lab.api.objects("", "pods", Some("rook-ceph")).len(),
        kafka_ready: w
            .lab
            .api
            .object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster")
            .is_some_and(|k| k["status"]["conditions"][0]["type"] == "Ready"),
    }
}

async fn run_to_end(w: &World, up: &std::path::Path) -> (i32, String) {
    let mut c = w.homelab(&["up", w.yaml.to_str().unwrap(), "-o", "json"], up);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// Runs `up`, SIGKILLs it right after its k-th output line; returns the lines seen.
async fn run_and_kill(w: &World, up: &std::path::Path, k: usize) -> usize {
    let mut c = w.homelab(&["up", w.yaml.to_str().unwrap(), "-o", "json"], up);
    tokio::task::spawn_blocking(move || {
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            if line.is_err() {
                break;
            }
            seen += 1;
            if seen == k {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        let _ = child.wait();
        seen
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_every_step_the_next_run_converges_without_duplicates() {
    let Some(upstream) = support::mirror::upstream() else { return };
    // The uninterrupted reference.
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let (code, out) = run_to_end(&w, &upstream).await;
    assert_eq!(code, 0, "{out}");
    let reference = final_state(&w);
    let events = out.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(reference.deploy_calls, 3);
    assert_eq!(reference.joins, [0, 1, 1]);
    assert!(reference.kafka_ready && reference.osds == 3 && reference.nodes_ready == 3);
    let all = std::env::var_os("HOMELAB_CRASH_ALL").is_some();
    let points: Vec<usize> = (1..events).filter(|k| all || k % 8 == 1).collect();
    let mut tried = 0;
    for k in points {
        let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
        let seen = run_and_kill(&w, &upstream, k).await;
        let (code, out) = run_to_end(&w, &upstream).await;
        assert_eq!(code, 0, "killed after event {k} ({seen} seen); the next run failed:\n{out}");
        let f = final_state(&w);
        assert_eq!(f, reference, "killed after event {k}: the final state differs");
        tried += 1;
    }
    eprintln!("crash test: {tried} kill points of {events} events converged to the reference state");
    assert!(tried >= 10);
}
