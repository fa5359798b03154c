//! Crash anywhere: `homelab up` (the real binary) is SIGKILLed after its k-th event — every
//! MAAS call, SSH command and apply stage reports an event — then run again. Every run must
//! converge with no machine deployed twice, no node joined twice, nothing deleted, and the
//! same final state as an uninterrupted run.
//!
//! A second harness kills it at the most dangerous moment of every change instead: the
//! simulators call a tap after they acted on a mutating request (each MAAS POST, each API
//! server write, each mutating SSH command) and before the answer leaves, and the tap sends the
//! SIGKILL there — the machine is deploying, the node has joined, the object is applied, but
//! homelab never heard so.
//!
//! CI tries a sample of the kill points (every 12th event; the first two changes of each kind,
//! then every 4th MAAS, SSH or lease change and every 12th apply of that kind);
//! `HOMELAB_CRASH_ALL=1` tries all of them.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::crash::{kind_of, name_changes, record_changes, run_and_kill_at_change};
use support::subproc::World;

/// The seed's garage with the two PCs MAAS deploys only enlisted: the run commissions, lays
/// out and deploys them, and carves the MAAS host's Ceph volume.
fn from_new() -> FullLabOptions {
    let mut o = FullLabOptions::default();
    o.lab.status = homelab::maas::Status::New;
    o
}

/// What must be the same after any interrupted-then-finished run.
#[derive(Debug, PartialEq, Eq)]
struct Final {
    deployed: Vec<String>,
    deploy_calls: usize,
    /// `lvcreate`s on the MAAS host (pre-installed): its Ceph volume, made once.
    carves: usize,
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
        ("kafka.strimzi.io", "kafkatopics"),
        ("kafka.strimzi.io", "kafkausers"),
        ("kafka.strimzi.io", "kafkabridges"),
        ("postgresql.cnpg.io", "clusters"),
        ("", "secrets"),
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
        carves: w.lab.hosts.count("maas", "lvcreate"),
        joins: hosts.iter().map(|h| w.lab.hosts.count(h, "microk8s join")).collect(),
        installs: hosts.iter().map(|h| w.lab.hosts.count(h, "snap install microk8s")).collect(),
        objects,
        deletes: w.lab.api.requests().iter().filter(|r| r.starts_with("DELETE")).count(),
        nodes_ready: w.lab.hosts.nodes().iter().filter(|n| n.ready).count(),
        osds: w
            .lab
            .api
            .objects("", "pods", Some("rook-ceph"))
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "rook-ceph-osd")
            .count(),
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
    let w = World::start(from_new(), "seed-2023.yaml").await;
    let (code, out) = run_to_end(&w, &upstream).await;
    assert_eq!(code, 0, "{out}");
    let reference = final_state(&w);
    let events = out.lines().filter(|l| l.starts_with('{')).count();
    assert_eq!(reference.deploy_calls, 2, "kvm4 and kvm5; the MAAS host is installed already");
    assert_eq!(reference.carves, 1);
    assert_eq!(reference.joins, [0, 1, 1]);
    assert!(reference.kafka_ready && reference.osds == 3 && reference.nodes_ready == 3);
    let all = std::env::var_os("HOMELAB_CRASH_ALL").is_some();
    let points: Vec<usize> = (1..events).filter(|k| all || k % 12 == 1).collect();
    let mut tried = 0;
    for k in points {
        let w = World::start(from_new(), "seed-2023.yaml").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_each_change_before_the_answer_the_next_run_converges() {
    let Some(upstream) = support::mirror::upstream() else { return };
    // The uninterrupted reference, counting its changes.
    let w = World::start(from_new(), "seed-2023.yaml").await;
    let changes = record_changes(&w);
    let (code, out) = run_to_end(&w, &upstream).await;
    assert_eq!(code, 0, "{out}");
    let reference = final_state(&w);
    let n = changes.lock().unwrap().len();
    assert!(n > 20, "{:?}", changes.lock().unwrap());
    let mut in_reference: BTreeMap<String, usize> = BTreeMap::new();
    for c in changes.lock().unwrap().iter() {
        *in_reference.entry(kind_of(c)).or_default() += 1;
    }
    let named = name_changes(&changes.lock().unwrap());
    // CI: the first two changes of every kind (each MAAS call, SSH command, lease write and
    // apply kind), then every 4th further change of a MAAS, SSH or lease kind and every 12th
    // further apply of a kind, counted within the kind so no kind is skipped by aliasing.
    // `HOMELAB_CRASH_ALL=1` tries every one.
    let all = std::env::var_os("HOMELAB_CRASH_ALL").is_some();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let points: Vec<&(String, usize, String)> = named
        .iter()
        .filter(|(_, _, kind)| {
            let nth_of_kind = seen.entry(kind.as_str()).or_default();
            *nth_of_kind += 1;
            let stride = if kind.starts_with("API PATCH") { 12 } else { 4 };
            all || *nth_of_kind <= 2 || nth_of_kind.is_multiple_of(stride)
        })
        .collect();
    eprintln!("crash test (answer lost): trying {} of {} kill points", points.len(), named.len());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut tried = 0;
    for (key, nth, _) in points.iter().copied() {
        let w = World::start(from_new(), "seed-2023.yaml").await;
        let Some(what) =
            run_and_kill_at_change(&w, &upstream, &["up", w.yaml.to_str().unwrap(), "-o", "json"], key, *nth).await
        else {
            // Concurrent runs differ a little in their writes (a lease renewal, a retry).
            eprintln!("not reached in this run: {key} #{nth}");
            continue;
        };
        let (code, out) = run_to_end(&w, &upstream).await;
        assert_eq!(code, 0, "killed right after {key} #{nth} ({what}); the next run failed:\n{out}");
        assert_eq!(final_state(&w), reference, "killed right after {key} #{nth} ({what}): the final state differs");
        *kinds.entry(kind_of(&what)).or_default() += 1;
        tried += 1;
    }
    eprintln!("crash test (answer lost): {tried} kill points of {n} changes converged to the reference state");
    eprintln!("  killed  in a full run  change");
    for (kind, count) in &in_reference {
        eprintln!("  {:>6}  {count:>13}  {kind}", kinds.get(kind).copied().unwrap_or(0));
    }
    assert!(tried * 10 >= points.len() * 9, "only {tried} of {} kill points were reached", points.len());
}

/// Ctrl-C (SIGINT) in the middle of the storage phase: homelab stops within seconds with a
/// hint, gives the cluster lease back (so another machine need not wait for it to expire),
/// and the next run converges without a second deploy or join.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_promptly_gives_the_lease_back_and_the_next_run_converges() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(from_new(), "seed-2023.yaml").await;
    let mut c = w.homelab(&["up", w.yaml.to_str().unwrap(), "-o", "json"], &upstream);
    let (code, stderr, stopped_in) = tokio::task::spawn_blocking(move || {
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains(r#""event":"step""#) && line.contains(r#""phase":"storage""#) {
                break;
            }
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let t = Instant::now();
        lines.for_each(drop);
        let status = child.wait().unwrap();
        (status.code(), err.join().unwrap(), t.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("interrupted (Ctrl-C)") && stderr.contains("hint: run `homelab up` again"), "{stderr}");
    assert!(stopped_in < Duration::from_secs(5), "took {stopped_in:?} to stop");
    let lease = w.lab.api.object("coordination.k8s.io", "leases", "kube-system", "homelab-run").expect("the lease");
    assert!(lease["spec"]["holderIdentity"].is_null(), "the lease was not given back: {lease}");

    let (code, out) = run_to_end(&w, &upstream).await;
    assert_eq!(code, 0, "{out}");
    let f = final_state(&w);
    assert_eq!((f.deploy_calls, f.carves, f.joins, f.deletes), (2, 1, vec![0, 1, 1], 0));
    assert!(f.kafka_ready && f.osds == 3 && f.nodes_ready == 3);
}
