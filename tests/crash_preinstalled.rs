//! Crash anywhere on the pre-installed path: `homelab up --only hosts,kubernetes,storage` of
//! three PCs that run Ubuntu already (examples/preinstalled-3.yaml, no MAAS) is SIGKILLed
//! right after each change the simulated hosts and API server carry out — the Ceph volume
//! carved, MicroK8s installed, a node joined, an object applied — before homelab hears the
//! answer; then run again. Every time: the same final state as an uninterrupted run, each
//! Ceph volume made once, MicroK8s installed once and each node joined once. CI tries every
//! change on the hosts and the Lease, and the first two then every 12th apply of each kind;
//! `HOMELAB_CRASH_ALL=1` tries every one.

mod support;

use std::collections::BTreeMap;
use support::crash::{kind_of, name_changes, record_changes, run_and_kill_at_change, run_to_end};
use support::subproc::World;

const PCS: [(&str, &str); 3] = support::PREINSTALLED_PCS;

async fn world() -> World {
    let lab = support::preinstalled_lab().await;
    let yaml = support::preinstalled_example(&lab);
    World::with_file(lab, &yaml).await
}

/// What must be the same after any interrupted-then-finished run.
#[derive(Debug, PartialEq, Eq)]
struct Final {
    /// Per PC: its logical volumes (name, bytes).
    volumes: Vec<Vec<(String, u64)>>,
    /// Per PC: `lvcreate`, `snap install`, `microk8s join` commands received.
    lvcreates: Vec<usize>,
    installs: Vec<usize>,
    joins: Vec<usize>,
    nodes_ready: usize,
    ceph_devices: Option<serde_json::Value>,
}

fn final_state(w: &World) -> Final {
    let h = &w.lab.hosts;
    let each = |needle: &str| PCS.iter().map(|(n, _)| h.count(n, needle)).collect::<Vec<_>>();
    Final {
        volumes: PCS.iter().map(|(n, _)| h.lvs(n, "ubuntu-vg")).collect(),
        lvcreates: each("lvcreate"),
        installs: each("snap install microk8s"),
        joins: each("microk8s join"),
        nodes_ready: h.nodes().iter().filter(|n| n.ready).count(),
        ceph_devices: w
            .lab
            .api
            .object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph")
            .map(|c| c["spec"]["storage"]["nodes"].clone()),
    }
}

fn args(w: &World) -> Vec<String> {
    ["up", w.yaml.to_str().unwrap(), "--only", "hosts,kubernetes,storage", "-o", "json"].map(str::to_owned).to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_each_change_of_the_preinstalled_path_the_next_run_converges() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = world().await;
    let changes = record_changes(&w);
    let a = args(&w);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out) = run_to_end(&w, &upstream, &a, std::time::Duration::from_secs(300)).await;
    assert_eq!(code, 0, "{out}");
    let reference = final_state(&w);
    assert_eq!(reference.lvcreates, [1, 1, 0]);
    assert_eq!(reference.installs, [1, 1, 1]);
    assert_eq!(reference.joins, [0, 1, 1]);
    assert_eq!(reference.nodes_ready, 3);
    assert!(reference.ceph_devices.is_some());
    let named = name_changes(&changes.lock().unwrap());
    assert!(named.len() > 10, "{named:?}");
    let all = std::env::var_os("HOMELAB_CRASH_ALL").is_some();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let named: Vec<(String, usize, String)> = named
        .into_iter()
        .filter(|(_, _, kind)| {
            let nth_of_kind = seen.entry(kind.clone()).or_default();
            *nth_of_kind += 1;
            all || !kind.starts_with("API PATCH") || *nth_of_kind <= 2 || nth_of_kind.is_multiple_of(12)
        })
        .collect();
    eprintln!("crash test (pre-installed): trying {} kill points", named.len());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut tried = 0;
    for (key, nth, _) in &named {
        let w = world().await;
        let a = args(&w);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let Some(what) = run_and_kill_at_change(&w, &upstream, &a, key, *nth).await else {
            eprintln!("not reached in this run: {key} #{nth}");
            continue;
        };
        let (code, out) = run_to_end(&w, &upstream, &a, std::time::Duration::from_secs(300)).await;
        assert_eq!(code, 0, "killed right after {key} #{nth} ({what}); the next run failed:\n{out}");
        assert_eq!(final_state(&w), reference, "killed right after {key} #{nth} ({what}): the final state differs");
        *kinds.entry(kind_of(&what)).or_default() += 1;
        tried += 1;
    }
    eprintln!("crash test (pre-installed): {tried} of {} kill points converged: {kinds:?}", named.len());
    assert!(kinds.keys().any(|k| k.contains("lvcreate")), "the carve was a kill point: {kinds:?}");
    assert!(kinds.keys().any(|k| k.contains("microk8s join")), "a join was a kill point: {kinds:?}");
    assert!(tried * 10 >= named.len() * 9, "only {tried} of {} kill points were reached", named.len());
}
