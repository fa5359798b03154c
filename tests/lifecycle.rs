//! add-node, status and the run lock against the simulated lab with the real upstream files.

mod support;

use homelab::catalog::Catalog;
use homelab::catalog::bundle::ManifestSource;
use homelab::config::model::Role;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::add_node::{AddNodeRequest, add_node};
use homelab::sim::lab::{FullLab, FullLabOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn seed(lab: &FullLab) -> String {
    let text = std::fs::read_to_string(format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = text.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    lab.lab.cluster_yaml(&body)
}

fn src(lab: &FullLab, up: &Path) -> ManifestSource {
    ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(up.to_path_buf()) }
}

async fn up(lab: &FullLab, yaml: &str, up: &Path) -> homelab::engine::runner::RunReport {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(yaml, ui, RunOptions::fast(), src(lab, up)).unwrap();
    homelab::engine::up(cx).await.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()))
}

async fn grow(
    lab: &FullLab,
    file: &Path,
    mac: &str,
    upstream: &Path,
) -> (anyhow::Result<homelab::ops::add_node::AddNodeReport>, String) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let req = AddNodeRequest { mac: mac.into(), hostname: None, role: Role::Worker, ..Default::default() };
    let hosts = lab.hosts.clone();
    let source = src(lab, upstream);
    let state = lab.lab.path("state");
    let make = |_: &homelab::config::Cluster| -> anyhow::Result<homelab::engine::context::World> {
        let mut env = lab.lab.env(hosts.clone(), &state)?;
        env.manifests = source.clone();
        Ok(env)
    };
    let r = add_node(file, &req, &cat, &ui, RunOptions::fast(), &make).await;
    (r, cap.all())
}

#[tokio::test(flavor = "multi_thread")]
async fn add_node_grows_3_to_4_machines_and_4_osds_editing_only_its_entry() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = seed(&lab);
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    up(&lab, &yaml, &upstream).await;
    let (name, mac, _) = lab.lab.add_machine(3, Status::New);
    let before_cmds: Vec<usize> = ["maas", "kvm4", "kvm5"].iter().map(|h| lab.hosts.commands(h).len()).collect();
    lab.lab.maas.clear_log();
    let (r, out) = grow(&lab, &file, &mac, &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(r.inserted);
    assert!(out.contains("time budget (real hardware)") && out.contains("time per step"), "{out}");
    // 4 nodes, 4 OSDs.
    assert_eq!(lab.hosts.nodes().len(), 4);
    assert_eq!(
        lab.api
            .objects("", "pods", Some("rook-ceph"))
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "rook-ceph-osd")
            .count(),
        4
    );
    let cc = lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").unwrap();
    assert_eq!(cc["spec"]["storage"]["nodes"].as_array().unwrap().len(), 4);
    // The file gained exactly one line: the new entry.
    let after = std::fs::read_to_string(&file).unwrap();
    let added: Vec<&str> = after.lines().filter(|l| !yaml.lines().any(|o| o == *l)).collect();
    assert_eq!(added, [format!("  - {{hostname: {name}, mac: \"{mac}\", role: worker}}").as_str()]);
    assert_eq!(after.replace(&format!("{}\n", added[0]), ""), yaml);
    // Only the new machine (and the token-issuing control plane) were touched.
    assert!(
        lab.lab
            .maas
            .requests()
            .iter()
            .filter(|r| r.starts_with("POST") || r.starts_with("PUT"))
            .all(|r| !r.contains("sshkeys")),
        "{:?}",
        lab.lab.maas.requests()
    );
    for (h, b) in ["kvm4", "kvm5"].iter().zip(&before_cmds[1..]) {
        assert_eq!(lab.hosts.commands(h).len(), *b, "{h} was touched: {:?}", &lab.hosts.commands(h)[*b..]);
    }
    assert!(lab.hosts.commands("maas").len() > before_cmds[0], "the first control plane issued the token");
    // A following up is a no-op.
    let r = up(&lab, &after, &upstream).await;
    assert_eq!(r.changes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_add_node_resumes_and_edits_the_file_once() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let mut o = FullLabOptions::default();
    o.lab.maas.deploy_time = Duration::from_millis(800);
    let lab = FullLab::start(o).await.unwrap();
    let yaml = seed(&lab);
    let file = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    up(&lab, &yaml, &upstream).await;
    let (name, mac, _) = lab.lab.add_machine(3, Status::Ready);
    // Interrupt it while MAAS deploys.
    let _ = tokio::time::timeout(Duration::from_millis(400), grow(&lab, &file, &mac, &upstream)).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml, "the file changes only at the end");
    assert_eq!(lab.lab.maas.status(&name), Some(Status::Deploying));
    let (r, out) = grow(&lab, &file, &mac, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert_eq!(lab.lab.maas.count("op=deploy"), 3, "kvm4, kvm5, and the new machine once");
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(after.matches(&mac).count(), 1);
    // Running it again changes nothing and does not insert twice.
    let (r, out) = grow(&lab, &file, &mac, &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(!r.inserted);
    assert_eq!(r.changes, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_every_layer_and_fails_when_unhealthy() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = seed(&lab);
    up(&lab, &yaml, &upstream).await;
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), src(&lab, &upstream)).unwrap();
    let r = homelab::ops::status::gather(&cx).await;
    assert!(r.healthy, "{:?}", r.problems);
    assert_eq!(r.machines.len(), 3);
    // The MAAS host is pre-installed, its size read off its Node; MAAS deployed the others.
    assert_eq!(
        (r.machines[0].status.as_str(), r.machines[0].ip.as_str()),
        (homelab::ops::status::PREINSTALLED, "10.0.0.1")
    );
    assert!(r.machines[0].cores > 0 && r.machines[0].memory_mib > 0, "{:?}", r.machines[0]);
    assert!(r.machines[1..].iter().all(|m| m.status == "Deployed" && !m.ip.is_empty()));
    assert_eq!(r.nodes.len(), 3);
    let ceph = r.ceph.as_ref().unwrap();
    assert_eq!(ceph.osds, 3);
    assert_eq!(ceph.usable_bytes, ceph.raw_bytes / 2);
    // Kafka's 3 + ZooKeeper's 3, and the database's 3 data and 3 WAL volumes.
    assert!(r.pvcs.iter().all(|p| p.phase == "Bound") && r.pvcs.len() == 12, "{:?}", r.pvcs);
    let k = r.kafka.as_ref().unwrap();
    assert!(k.ready && k.brokers == 3 && k.bootstrap.iter().any(|(l, _)| l == "external"));
    assert_eq!(r.totals.cores, 12);
    let text = homelab::ops::status::render(&r);
    for section in [
        "healthy",
        "\nMachines\n",
        "pre-installed (not managed by MAAS)",
        "Kubernetes nodes",
        "Ceph: HEALTH_OK",
        "Pools",
        "StorageClasses",
        "PersistentVolumeClaims",
        "Kafka kafka/my-cluster: Ready",
        "Totals: 3 machines, 12 cores",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["healthy"], true);
    // Unhealthy: Kafka stops being Ready → problems first, healthy false.
    *lab.strimzi.never_ready.lock().unwrap() = true;
    let mut k = lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").unwrap();
    k["spec"]["kafka"]["config"]["log.retention.hours"] = 1.into();
    k["metadata"]["generation"] = 2.into();
    lab.api.state().put("kafka.strimzi.io", "kafkas", "kafka", k);
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), src(&lab, &upstream)).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = homelab::ops::status::gather(&cx).await;
    assert!(!r.healthy);
    let text = homelab::ops::status::render(&r);
    assert!(text.starts_with("cluster `lab`: 1 problem\n  ✗ Kafka kafka/my-cluster is not Ready"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_runs_one_proceeds_the_other_names_the_holder() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let mut o = FullLabOptions::default();
    o.lab.maas.deploy_time = Duration::from_millis(600);
    let lab = FullLab::start(o).await.unwrap();
    let yaml = seed(&lab);
    let (ui1, cap1) = Ui::capture(OutputFormat::Text);
    let cx1 = lab.ctx(&yaml, ui1, RunOptions::fast(), src(&lab, &upstream)).unwrap();
    let first = tokio::spawn(homelab::engine::up(cx1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ui2, _) = Ui::capture(OutputFormat::Text);
    let cx2 = lab.ctx(&yaml, ui2, RunOptions::fast(), src(&lab, &upstream)).unwrap();
    let e = format!("{:#}", homelab::engine::up(cx2).await.unwrap_err());
    assert!(
        e.contains("locked by `homelab up` on")
            && e.contains(&format!("pid {}", std::process::id()))
            && e.contains("since"),
        "{e}"
    );
    first.await.unwrap().unwrap_or_else(|e| panic!("{e:#}\n{}", cap1.all()));
    assert_eq!(lab.lab.maas.count("op=deploy"), 2, "kvm4 and kvm5 once each");
    // Across machines (different state directories) the cluster Lease does the same job.
    let client = homelab::kube::client::from_text(&lab.api.kubeconfig("x"), None).await.unwrap();
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let lost = tokio::sync::watch::channel(None).0;
    let held = homelab::engine::lock::acquire_lease(client.clone(), "up", Duration::ZERO, lost, &ui).await.unwrap();
    let other = tokio::spawn(async move {
        // Another process (simulated by a different identity) tries while it is held.
        let (ui, _) = Ui::capture(OutputFormat::Text);
        let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::namespaced(client, "kube-system");
        let l = api.get("homelab-run").await.unwrap();
        let _ = ui;
        l.spec.unwrap().holder_identity.unwrap()
    });
    let holder = other.await.unwrap();
    assert!(holder.ends_with(&format!("/{}", std::process::id())), "{holder}");
    held.release().await;
}

/// Issue 13 item 11: `add-node` validates the file before and after its edit; a warning both
/// share is shown once, not twice.
#[tokio::test(flavor = "multi_thread")]
async fn add_node_shows_each_validation_warning_once() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = seed(&lab).replacen("      replicas: 2\n", "      replicas: 1\n", 1);
    assert!(yaml.contains("      replicas: 1\n"));
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    up(&lab, &yaml, &upstream).await;
    let (_, mac, _) = lab.lab.add_machine(3, Status::New);
    let (r, out) = grow(&lab, &file, &mac, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert_eq!(out.matches("a single replica keeps one copy of your data").count(), 1, "{out}");
}
