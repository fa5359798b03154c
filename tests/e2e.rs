//! All five phases end to end against the simulated lab (MAAS, hosts, API server with the
//! simulated Rook and Strimzi operators), with the real Rook and Strimzi files from
//! ../shared/upstream going through the real download-verify-apply path.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::sim::lab::{FullLab, FullLabOptions};
use serde_json::Value;

fn manifests(lab: &FullLab, up: &std::path::Path) -> ManifestSource {
    ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(up.to_path_buf()) }
}

use support::example;

async fn up(
    lab: &FullLab,
    yaml: &str,
    up: &std::path::Path,
) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(yaml, ui, RunOptions::fast(), manifests(lab, up)).unwrap();
    (homelab::engine::up(cx).await, cap)
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_2023_converges_through_all_six_phases() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "seed-2023.yaml");
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(r.phases.len(), 6, "{:?}", r.phases);
    // Rook got the MicroK8s kubelet path in the ConfigMap v1.10 reads.
    let cm = lab.api.object("", "configmaps", "rook-ceph", "rook-ceph-operator-config").unwrap();
    assert_eq!(cm["data"]["ROOK_CSI_KUBELET_DIR_PATH"], "/var/snap/microk8s/common/var/lib/kubelet");
    // One OSD per machine, the pool with 2 replicas, the default StorageClass.
    let osds = lab.api.objects("", "pods", Some("rook-ceph"));
    assert_eq!(osds.iter().filter(|p| p["metadata"]["labels"]["app"] == "rook-ceph-osd").count(), 3);
    let pool = lab.api.object("ceph.rook.io", "cephblockpools", "rook-ceph", "replicapool").unwrap();
    assert_eq!(pool["spec"]["replicated"]["size"], 2);
    let sc = lab.api.object("storage.k8s.io", "storageclasses", "", "rook-ceph-block").unwrap();
    assert_eq!(sc["provisioner"], "rook-ceph.rbd.csi.ceph.com");
    assert_eq!(sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"], "true");
    // Strimzi in `kafka`, its bindings' subjects rewritten, the Kafka Ready with ZooKeeper.
    let rb =
        lab.api.object("rbac.authorization.k8s.io", "clusterrolebindings", "", "strimzi-cluster-operator").unwrap();
    assert_eq!(rb["subjects"][0]["namespace"], "kafka");
    let k = lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").unwrap();
    assert_eq!(k["apiVersion"], "kafka.strimzi.io/v1beta2");
    assert_eq!(k["spec"]["zookeeper"]["replicas"], 3);
    assert_eq!(k["status"]["conditions"][0]["type"], "Ready");
    let out = cap.all();
    assert!(
        out.contains("bootstrap external:")
            && out.contains("bootstrap plain: my-cluster-kafka-bootstrap.kafka.svc:9092"),
        "{out}"
    );
    // A second up reports zero changes.
    let (r2, cap2) = up(&lab, &yaml, &upstream).await;
    let r2 = r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all()));
    assert_eq!(r2.changes, 0, "{}", cap2.all());
    assert!(cap2.stdout().contains("converged: no changes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn current_2026_converges_with_kraft_node_pools() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "current-2026.yaml");
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    // v1.20: the kubelet path lives in the ceph-csi OperatorConfig.
    let oc = lab.api.object("csi.ceph.io", "operatorconfigs", "rook-ceph", "ceph-csi-operator-config").unwrap();
    assert_eq!(
        oc["spec"]["driverSpecDefaults"]["nodePlugin"]["kubeletDirPath"],
        "/var/snap/microk8s/common/var/lib/kubelet"
    );
    let k = lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").unwrap();
    assert_eq!(k["apiVersion"], "kafka.strimzi.io/v1");
    assert!(k["spec"]["zookeeper"].is_null() && k["spec"]["kafka"]["replicas"].is_null());
    assert_eq!(k["spec"]["kafka"]["metadataVersion"], "4.3-IV0");
    let pools = lab.api.objects("kafka.strimzi.io", "kafkanodepools", Some("kafka"));
    let names: Vec<&str> = pools.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["broker", "controller"]);
    assert!(
        k["status"]["listeners"].as_array().unwrap().iter().all(|l| l.get("type").is_none()),
        "v1 listener status has no type"
    );
    let (r2, cap2) = up(&lab, &yaml, &upstream).await;
    assert_eq!(r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all())).changes, 0, "{}", cap2.all());
    assert!(!cap.all().contains("when full"), "the example's volumes fit on the lab's Ceph: {}", cap.all());
}

/// Ceph block volumes are thin: a Kafka asking 900 TiB per broker is made and runs until
/// Ceph fills. The storage phase compares the claims (with the pool's copies) with the
/// capacity Rook reports and says so before Kafka is made (issue 36, item 8).
#[tokio::test(flavor = "multi_thread")]
async fn volumes_larger_than_ceph_are_named_before_kafka_is_made() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "current-2026.yaml");
    assert!(yaml.contains("storage: {size: 100Gi,"));
    let yaml = yaml.replacen("storage: {size: 100Gi,", "storage: {size: 900Ti,", 1);
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let out = cap.all();
    let line = out.lines().find(|l| l.contains("when full")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("storage rook-ceph: warning:"), "{line}");
    assert!(
        line.contains("3 Kafka broker volumes of 900 TiB × 2 copies") && line.contains("but Ceph has 1.1 TiB in all"),
        "{line}"
    );
    assert!(out.contains("lower the `storage.size` of Kafka"), "{out}");
}

fn with_timeouts(yaml: &str, t: &str) -> String {
    yaml.replacen("kind: Cluster\n", &format!("kind: Cluster\ntimeouts: {{{t}}}\n"), 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_operators_and_clusters_fail_at_their_deadline_naming_what() {
    let Some(upstream) = support::mirror::upstream() else { return };
    // The Rook operator never becomes Available.
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    lab.api.faults(|f| f.stuck_deployments.push("rook-ceph/rook-ceph-operator".into()));
    let yaml = with_timeouts(&example(&lab, "seed-2023.yaml"), "operator: 1s, ceph: 1s, kafka: 1s");
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("waiting for Available on Deployment rook-ceph/rook-ceph-operator"), "{e}\n{}", cap.all());
    assert!(e.contains("hint:"), "{e}");

    // The CephCluster reports Ready but one machine never gets an OSD.
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    *lab.rook.failure.lock().unwrap() = homelab::sim::operators::RookFailure::MissingOsds(vec!["kvm5".into()]);
    let yaml = with_timeouts(&example(&lab, "seed-2023.yaml"), "operator: 5s, ceph: 1s, kafka: 1s");
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("one OSD on each of 3 machines"), "{e}\n{}", cap.all());
    assert!(e.contains("none on kvm5"), "{e}");

    // Kafka never gets Ready.
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    *lab.strimzi.never_ready.lock().unwrap() = true;
    let yaml = with_timeouts(&example(&lab, "seed-2023.yaml"), "operator: 5s, ceph: 5s, kafka: 1s");
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("waiting for Ready on Kafka kafka/my-cluster"), "{e}\n{}", cap.all());
    assert!(e.contains("TimeoutException") || e.contains("last seen"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_cluster_mode_skips_maas_and_microk8s_and_checks_the_storage_class() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    // kind's one node (no simulated machines here): where Strimzi places the brokers.
    lab.api.state().put("", "nodes", "", serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kind-control-plane"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
    let kc = lab.lab.path("kind.kubeconfig");
    std::fs::write(&kc, lab.api.kubeconfig("kind-kind")).unwrap();
    let text = std::fs::read_to_string(format!("{}/examples/existing-kind.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let yaml = text.replace("~/.kube/config", &kc.display().to_string());
    // kind has a default StorageClass `standard`; without it the phase stops before applying the Kafka.
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("no StorageClass `standard`"), "{e}\n{}", cap.all());
    assert!(lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").is_none());
    lab.api.state().put("storage.k8s.io", "storageclasses", "", serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path"}));
    let (r, cap) = up(&lab, &yaml, &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(r.phases.iter().map(|p| p.phase.name()).collect::<Vec<_>>(), ["kafka"]);
    assert_eq!(lab.lab.maas.requests().len(), 0, "no MAAS call for an existing cluster");
    let k: Value = lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").unwrap();
    assert_eq!(k["status"]["conditions"][0]["type"], "Ready");
}
