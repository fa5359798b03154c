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
//! changes nothing.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::path::Path;
use std::time::Duration;
use support::crash::{run_and_kill_when, run_to_end};
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
        w.starts_with("PATCH")
            && w.contains("/clusterrolebindings/rook-ceph-global")
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

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_killed_across_the_ladder_finishes_with_every_hop_done_once() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = prepare(&upstream).await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let args = ["upgrade", &yaml, "--yes", "-o", "json"];
    let points = kill_points(&w.lab.api.shared());
    let total = points.len();
    let remaining = std::sync::Arc::new(std::sync::Mutex::new(points));
    let mut hits = Vec::new();
    for _ in 0..total {
        let t = std::time::Instant::now();
        let matched = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let (rem, m) = (remaining.clone(), matched.clone());
        let pred = move |w: &str| {
            let mut r = rem.lock().unwrap();
            match r.iter().position(|(_, p)| p(w)) {
                Some(i) => {
                    *m.lock().unwrap() = Some(r.remove(i).0);
                    true
                }
                None => false,
            }
        };
        match run_and_kill_when(&w, &upstream, &args, pred).await {
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
    let (code, out) = run_to_end(&w, &upstream, &args, Duration::from_secs(600)).await;
    eprintln!("{}", hits.join("\n"));
    assert_eq!(code, 0, "the run after the last kill failed:\n{out}");
    check(&w, &format!("after {} kills", hits.len()));
    let killed = hits.iter().filter(|h| h.starts_with("killed")).count();
    assert!(killed >= 20, "only {killed} kills landed: {hits:#?}");
    let missed: Vec<String> = remaining.lock().unwrap().iter().map(|(l, _)| l.clone()).collect();
    assert!(missed.len() * 10 <= total, "kill points never reached: {missed:?}");
    // Then `up` of the upgraded file changes nothing.
    let (code, out) = run_to_end(&w, &upstream, &["up", &yaml], Duration::from_secs(180)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("converged: no changes"), "{out}");
}
