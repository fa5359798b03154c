//! Crash anywhere in the day-2 flows: `replace-node` of a live PC and `remove-node --dead`
//! (the real binary) are SIGKILLed right after each change the simulators carry out — a
//! MAAS or API server write, a mutating SSH command (`microk8s leave`, `remove-node`,
//! `ceph osd out`, …) — before homelab hears the answer, then run again. The rerun must
//! finish the job with no OSD purged twice, no second `leave`, and no release of a machine
//! that was not asked for.
//!
//! CI tries a sample of the kill points (SSH and MAAS changes, every 6th API write, at most
//! about 14, always the `leave` and `remove-node`);
//! `HOMELAB_CRASH_ALL=1` tries all of them.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::collections::BTreeMap;
use std::path::Path;
use support::crash::{name_changes, record_changes, run_and_kill_at_change, taps};
use support::subproc::World;

async fn run(w: &World, up: &Path, args: &[&str]) -> (i32, String) {
    support::crash::run_to_end(w, up, args, std::time::Duration::from_secs(180)).await
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flow {
    ReplaceLive,
    RemoveDead,
}

/// A converged seed cluster and, for the flow, its precondition (a new PC enlisted, or kvm5
/// dead). Returns the command line of the flow.
async fn prepare(upstream: &Path, flow: Flow) -> (World, Vec<String>) {
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let (code, out) = run(&w, upstream, &["up", &yaml, "-o", "json"]).await;
    assert_eq!(code, 0, "{out}");
    let args: Vec<String> = match flow {
        Flow::ReplaceLive => {
            let (_, mac, _) = w.lab.lab.add_machine(3, homelab::maas::Status::Ready);
            ["replace-node", "kvm5", &mac, "--release", "--file", &yaml, "-o", "json"].map(String::from).to_vec()
        }
        Flow::RemoveDead => {
            w.lab.hosts.power_off("kvm5");
            w.lab.lab.maas.power_off("kvm5");
            ["remove-node", "kvm5", "--dead", "--yes", "--release", "--file", &yaml, "-o", "json"]
                .map(String::from)
                .to_vec()
        }
    };
    (w, args)
}

/// What every finished run must show, however often it was interrupted.
fn check(w: &World, flow: Flow, old_osd: u32, what: &str) {
    let lab = &w.lab;
    assert_eq!(lab.rook.purges_of(old_osd), 1, "{what}: osd.{old_osd} purged {} times", lab.rook.purges_of(old_osd));
    let leaves = lab.hosts.count("kvm5", "microk8s leave");
    assert_eq!(leaves, if flow == Flow::ReplaceLive { 1 } else { 0 }, "{what}: {leaves} leaves");
    let releases: Vec<String> = lab.lab.maas.requests().into_iter().filter(|r| r.contains("op=release")).collect();
    assert_eq!(releases.len(), 1, "{what}: releases {releases:?}");
    assert_eq!(lab.lab.maas.status("kvm4"), Some(homelab::maas::Status::Deployed), "{what}: kvm4 was released");
    let nodes = lab.hosts.nodes();
    assert_eq!(nodes.len(), if flow == Flow::ReplaceLive { 3 } else { 2 }, "{what}: {nodes:?}");
    assert!(nodes.iter().all(|n| n.ready && n.name != "kvm5"), "{what}: {nodes:?}");
    assert!(lab.rook.ceph().clean(), "{what}: Ceph not clean");
    {
        let c = lab.rook.ceph();
        let left: Vec<u32> = c.osds.values().filter(|o| o.host == "kvm5").map(|o| o.id).collect();
        assert!(
            left.is_empty() && !c.buckets.contains("kvm5"),
            "{what}: Ceph kept kvm5: OSDs {left:?}, buckets {:?}",
            c.buckets
        );
    }
    assert!(support::kafka_ready(lab), "{what}: Kafka not Ready");
    let text = std::fs::read_to_string(&w.yaml).unwrap();
    assert!(!text.contains("kvm5"), "{what}: kvm5 still in the file");
}

async fn killed_after_each_change(flow: Flow) {
    let Some(upstream) = support::mirror::upstream() else { return };
    // The uninterrupted reference, naming its changes.
    let (w, args) = prepare(&upstream, flow).await;
    let old_osd = w.lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    let changes = record_changes(&w);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = run(&w, &upstream, &argv).await;
    for tap in taps(&w) {
        tap.clear();
    }
    assert_eq!(code, 0, "{out}");
    check(&w, flow, old_osd, "uninterrupted");
    let named = name_changes(&changes.lock().unwrap());
    assert!(named.len() > 8, "{named:?}");
    // CI: the SSH and MAAS changes (the destructive ones among them) and every 6th API write,
    // thinned to at most 14 points; lock renewals are the same write over and over.
    let points = support::crash::sample_points(&named, 6, 14, |p| p.2.contains("leave") || p.2.contains("remove-node"));
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut tried = 0;
    for (key, nth, kind) in points.iter().copied() {
        let t = std::time::Instant::now();
        let (w, args) = prepare(&upstream, flow).await;
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let old_osd = w.lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
        let Some(what) = run_and_kill_at_change(&w, &upstream, &argv, key, *nth).await else {
            eprintln!("not reached in this run: {key} #{nth}");
            continue;
        };
        let (code, out) = run(&w, &upstream, &argv).await;
        assert_eq!(code, 0, "killed right after {key} #{nth} ({what}); the next run failed:\n{out}");
        check(&w, flow, old_osd, &format!("killed right after {key} #{nth}"));
        *kinds.entry(kind.clone()).or_default() += 1;
        tried += 1;
        eprintln!("{flow:?}: killed right after {key} #{nth}: converged ({:.1}s)", t.elapsed().as_secs_f64());
    }
    eprintln!("{flow:?}: {tried} kill points of {} changes converged", named.len());
    for (k, n) in &kinds {
        eprintln!("  {n:>4}  {k}");
    }
    assert!(tried * 10 >= points.len() * 8, "only {tried} of {} kill points were reached", points.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_node_killed_after_each_change_finishes_on_the_next_run() {
    killed_after_each_change(Flow::ReplaceLive).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_dead_node_killed_after_each_change_finishes_on_the_next_run() {
    killed_after_each_change(Flow::RemoveDead).await;
}
