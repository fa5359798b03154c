//! `homelab upgrade` against the simulated lab (MAAS, hosts whose MicroK8s refresh changes
//! the node's version and breaks when a minor is skipped, the API server reporting each
//! node's kubelet version, Rook rolling its daemons' version labels and enforcing its Ceph
//! gates) with the real upstream files of every Rook release of the ladder.

mod support;

use homelab::catalog::Catalog;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::ops::upgrade::{UpgradeRequest, upgrade};
use homelab::sim::lab::{FullLab, FullLabOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

fn world<'a>(
    lab: &'a FullLab,
    upstream: &'a Path,
) -> impl Fn(&homelab::config::Cluster) -> anyhow::Result<homelab::engine::context::World> + 'a {
    support::lab_world(lab, upstream)
}

fn target(seed: &str, channel: &str, rook: &str, ceph: &str) -> String {
    support::upgrade_target(seed, channel, rook, ceph)
}

async fn seed_lab(upstream: &Path) -> (FullLab, String) {
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = support::example(&lab, "seed-2023.yaml");
    let (r, out) = up(&lab, &yaml, upstream).await;
    assert!(r.changes > 0, "{out}");
    (lab, yaml)
}

async fn up(lab: &FullLab, yaml: &str, upstream: &Path) -> (homelab::engine::runner::RunReport, String) {
    support::up_lab(lab, yaml, upstream).await
}

async fn run_upgrade(
    lab: &FullLab,
    file: &Path,
    req: UpgradeRequest,
    upstream: &Path,
    opts: RunOptions,
) -> (anyhow::Result<homelab::ops::upgrade::UpgradeReport>, String) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let r = upgrade(file, &req, &cat, &ui, opts, &world(lab, upstream)).await;
    (r, cap.all())
}

fn writes(lab: &FullLab) -> Vec<String> {
    let mut w: Vec<String> = lab
        .api
        .requests()
        .into_iter()
        .filter(|r| ["POST", "PUT", "PATCH", "DELETE"].iter().any(|m| r.starts_with(m)) && !r.ends_with("(dry run)"))
        // The run's own lock (the cluster Lease) is not a change of the cluster.
        .filter(|r| !r.contains("/leases/homelab-run"))
        .collect();
    for h in ["maas", "kvm4", "kvm5"] {
        w.extend(lab.hosts.commands(h).into_iter().filter(|c| c.contains("refresh") || c.contains("dbctl")));
    }
    w
}

fn operator_image(lab: &FullLab) -> String {
    lab.api.object("apps", "deployments", "rook-ceph", "rook-ceph-operator").unwrap()["spec"]["template"]["spec"]
        ["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn yes() -> UpgradeRequest {
    UpgradeRequest { yes: true, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_climbs_to_microk8s_131_rook_120_ceph_19_readable_throughout_then_up_is_a_noop() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let goal = target(&seed, "1.31/stable", "v1.20.6", "v19.2.3");
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &goal).unwrap();
    // `up` of the target file refuses the version changes as drift and changes nothing.
    lab.api.clear_log();
    let (r, out) = up(&lab, &goal, &upstream).await;
    assert_eq!(r.changes, 0, "{out}");
    assert!(out.contains("MicroK8s tracks 1.26/stable, the file says 1.31/stable"), "{out}");
    assert!(out.contains("the Rook operator runs rook/ceph:v1.10.10, the file says v1.20.6"), "{out}");
    assert!(out.contains("`homelab upgrade`"), "{out}");
    assert!(writes(&lab).iter().all(|w| !w.contains("rook-ceph") && !w.contains("refresh")), "{:?}", writes(&lab));
    // The plan, then the run: the same hops in the same order.
    let (plan, plan_out) = run_upgrade(
        &lab,
        &file,
        UpgradeRequest { plan_only: true, ..Default::default() },
        &upstream,
        RunOptions::fast(),
    )
    .await;
    let plan = plan.unwrap_or_else(|e| panic!("{e:#}\n{plan_out}"));
    let planned: Vec<String> = plan.planned.iter().map(|h| h.name()).collect();
    assert_eq!(planned.len(), 17, "{planned:?}");
    assert_eq!(planned[4], "rook-v1.15.9");
    assert_eq!(planned[5], "ceph-19.2.3");
    assert_eq!(planned[10], "microk8s-1.31");
    // CloudNativePG right after the stage of MicroK8s rounds that reaches a Kubernetes
    // v1.30.0 accepts (the rounds are not split).
    assert_eq!(planned[11], "cloudnative-pg-v1.30.0");
    assert_eq!(planned[16], "rook-v1.20.6");
    let (stop, watch) = support::watch_readable(&lab);
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, RunOptions::fast()).await;
    stop.store(true, Ordering::Relaxed);
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    let unreadable = watch.await.unwrap();
    assert!(unreadable.is_empty(), "Ceph stopped serving some PGs: {:?}", &unreadable[..unreadable.len().min(5)]);
    let done: Vec<String> = r.done.iter().map(|h| h.hop.clone()).collect();
    assert_eq!(done, planned, "{out}");
    assert!(out.contains("time per hop"), "{out}");
    // Where it ended: every node on 1.31 (held), the operator and every daemon on v1.20.6,
    // Ceph 19.2.3 running.
    for h in ["maas", "kvm4", "kvm5"] {
        let refreshes: Vec<String> =
            lab.hosts.commands(h).into_iter().filter(|c| c.contains("snap refresh microk8s --channel")).collect();
        assert_eq!(refreshes.len(), 5, "{h}: {refreshes:?}");
        for (i, c) in refreshes.iter().enumerate() {
            assert!(c.ends_with(&format!("--channel=1.{}/stable", 27 + i)), "{h}: {refreshes:?}");
        }
        assert_eq!(lab.hosts.count(h, "snap refresh --hold=forever microk8s"), 1, "{h}");
    }
    // Control planes one at a time, in file order, within each round.
    let nodes = lab.hosts.nodes();
    assert!(nodes.iter().all(|n| n.version.starts_with("v1.31") && n.ready), "{nodes:?}");
    assert_eq!(operator_image(&lab), "docker.io/rook/ceph:v1.20.6");
    let c = lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").unwrap();
    assert_eq!(c["status"]["version"]["version"], "19.2.3-0");
    assert_eq!(c["status"]["phase"], "Ready");
    let daemons = lab.api.objects("apps", "deployments", Some("rook-ceph"));
    let labelled: Vec<&serde_json::Value> =
        daemons.iter().filter(|d| d["metadata"]["labels"]["rook_cluster"] == "rook-ceph").collect();
    assert!(labelled.len() >= 3 + 2 + 3, "{}", labelled.len());
    for d in &labelled {
        assert_eq!(d["metadata"]["labels"]["rook-version"], "v1.20.6", "{}", d["metadata"]["name"]);
        assert_eq!(d["metadata"]["labels"]["ceph-version"], "19.2.3-0", "{}", d["metadata"]["name"]);
    }
    // The kubelet path reached the CSI operator's OperatorConfig before v1.20.
    let oc = lab.api.object("csi.ceph.io", "operatorconfigs", "rook-ceph", "ceph-csi-operator-config").unwrap();
    assert_eq!(
        oc["spec"]["driverSpecDefaults"]["nodePlugin"]["kubeletDirPath"],
        "/var/snap/microk8s/common/var/lib/kubelet"
    );
    assert!(lab.rook.ceph().clean());
    // The next `up` of the upgraded file changes nothing; the next upgrade has no hop.
    let (r, out) = up(&lab, &goal, &upstream).await;
    assert_eq!(r.changes, 0, "the up after the upgrade changed something:\n{out}");
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, RunOptions::fast()).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(r.planned.is_empty() && out.contains("nothing to upgrade"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gates_refuse_with_nothing_changed() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let file: PathBuf = lab.lab.path("cluster.yaml");
    let before = operator_image(&lab);
    let check = |r: anyhow::Result<homelab::ops::upgrade::UpgradeReport>, out: &str, want: &str| {
        // The refusal, and for a file refused by validation its located diagnostics.
        let e = format!("{:#}\n{out}", r.err().unwrap_or_else(|| panic!("not refused:\n{out}")));
        assert!(e.contains(want), "{e}");
        assert!(e.contains("nothing"), "{e}");
    };
    // Unreachable targets: Ceph 17 kept while Rook goes past 1.15; MicroK8s past Rook 1.15's range.
    std::fs::write(&file, target(&seed, "1.31/stable", "v1.20.6", "v17.2.5")).unwrap();
    lab.api.clear_log();
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, RunOptions::fast()).await;
    // The file itself is refused (Rook 1.20 does not run Ceph 17), before anything is read.
    check(r, &out, "Rook v1.20.6 refuses Ceph 17.2.5");
    // A valid file no ladder reaches: MicroK8s never goes back a minor.
    // (Without the database: no pinned CloudNativePG runs on 1.25, which validation says first.)
    std::fs::write(&file, support::without_section(&target(&seed, "1.25/stable", "v1.10.10", "v17.2.5"), "database:"))
        .unwrap();
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, RunOptions::fast()).await;
    check(r, &out, "refusing to upgrade: the cluster runs Kubernetes 1.26, the file declares 1.25");
    assert!(writes(&lab).is_empty(), "{:?}", writes(&lab));
    // HEALTH_ERR: the first hop is refused, naming it.
    std::fs::write(&file, target(&seed, "1.31/stable", "v1.20.6", "v19.2.3")).unwrap();
    lab.rook.ceph().fault_full = true;
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, RunOptions::fast()).await;
    check(r, &out, "refusing hop rook-v1.11.11: Ceph is HEALTH_ERR (OSD_FULL)");
    lab.rook.ceph().fault_full = false;
    // A node NotReady (kvm5 off): waited for a while, then refused.
    lab.hosts.power_off("kvm5");
    let mut opts = RunOptions::fast();
    opts.timings.deadline_scale = 0.005;
    let (r, out) = run_upgrade(&lab, &file, yes(), &upstream, opts).await;
    let e = format!("{:#}", r.err().unwrap_or_else(|| panic!("not refused:\n{out}")));
    assert!(e.contains("node not Ready: kvm5") || e.contains("kvm5"), "{e}\n{out}");
    assert!(writes(&lab).is_empty(), "{:?}", writes(&lab));
    assert_eq!(operator_image(&lab), before);
}

/// The simulated MicroK8s breaks when a refresh skips a minor, as canonical/microk8s#3007
/// reports; homelab never sends such a refresh (the ladder goes one minor per round).
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_that_skips_a_minor_breaks_the_node() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, _) = seed_lab(&upstream).await;
    let r = lab.hosts.remote_of("kvm5").unwrap();
    let out = r.run(&homelab::microk8s::refresh_cmd("1.28/stable", std::time::Duration::from_secs(5))).await.unwrap();
    assert!(out.ok());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let n = lab.hosts.nodes().into_iter().find(|n| n.name == "kvm5").unwrap();
    assert!(!n.ready, "{n:?}");
    let st = r.run(&homelab::microk8s::datastore_cmd()).await.unwrap();
    assert!(st.stdout.contains("microk8s is not running"), "{st:?}");
}

#[test]
fn the_plan_of_the_seed_to_current_ladder() {
    use homelab::ops::upgrade::ladder::{Versions, plan};
    let cat = Catalog::embedded().unwrap();
    use homelab::ops::upgrade::ladder::{KafkaAt, Metadata};
    // examples/seed-2023.yaml: Strimzi 0.33.1 with Kafka 3.3.2 on ZooKeeper, CloudNativePG v1.22.5.
    let seed = Versions {
        kubernetes: (1, 26),
        rook: "v1.10.10".into(),
        ceph: "quay.io/ceph/ceph:v17.2.5".into(),
        kafka: Some(KafkaAt {
            strimzi: "0.33.1".into(),
            version: "3.3.2".into(),
            metadata: Metadata::ZooKeeper,
            v1: false,
        }),
        cnpg: Some("v1.22.5".into()),
    };
    // examples/current-2026.yaml: MicroK8s 1.33, Rook v1.20.6 with its default Ceph,
    // Strimzi 1.2.0 with Kafka 4.3.1 on KRaft, CloudNativePG v1.30.0.
    let current = Versions {
        kubernetes: (1, 33),
        rook: "v1.20.6".into(),
        ceph: "quay.io/ceph/ceph:v20.2.4".into(),
        kafka: Some(KafkaAt { strimzi: "1.2.0".into(), version: "4.3.1".into(), metadata: Metadata::KRaft, v1: true }),
        cnpg: Some("v1.30.0".into()),
    };
    let hops = plan(&cat, &seed, &current).unwrap();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    homelab::ops::upgrade::print_plan(&ui, &seed, &current, &hops, hops.len(), 3, 3);
    insta::assert_snapshot!("upgrade_plan_seed_to_current", cap.stdout());
}
