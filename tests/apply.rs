//! The apply engine with the real Rook and Strimzi files: downloaded from a local mirror of
//! ../shared/upstream, verified by sha256, applied in dependency order against the simulated
//! API server; a converged re-apply changes nothing; faults are survived; deadlines name
//! what they waited for.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::catalog::bundle::{self, Release};
use homelab::catalog::{Catalog, FileRole};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::foundation::phase_id::PhaseId;
use homelab::foundation::wait::Backoff;
use homelab::kube::apply::{Applier, ApplyOptions, Stage};
use homelab::kube::wait::{ObjectRef, deployment_available, wait_object};
use homelab::sim::apiserver::{SimApiConfig, SimApiServer};
use serde_json::Value;
use std::time::Duration;

fn http() -> reqwest::Client {
    homelab::foundation::tls::install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

async fn objects(src: &ManifestSource, project: &str, version: &str) -> Vec<Value> {
    let cat = Catalog::embedded().unwrap();
    let files = match project {
        "rook" => cat.rook(version).unwrap().files.clone(),
        _ => cat.strimzi(version).unwrap().files.clone(),
    };
    let mut out = Vec::new();
    for f in files.iter().filter(|f| f.role != FileRole::Template) {
        let bytes = bundle::fetch(&http(), src, Release { project, version }, f).await.unwrap();
        let mut objs = bundle::parse_manifest(std::str::from_utf8(&bytes).unwrap(), &f.path).unwrap();
        if project == "strimzi" {
            // Strimzi's files carry no namespace: put them in `kafka` (the kafka phase does
            // this properly, including the binding subjects).
            for o in &mut objs {
                let k = o["kind"].as_str().unwrap_or("").to_owned();
                if ["ServiceAccount", "RoleBinding", "ConfigMap", "Deployment"].contains(&k.as_str()) {
                    o["metadata"]["namespace"] = "kafka".into();
                }
            }
        }
        out.extend(objs);
    }
    if project == "strimzi" {
        out.push(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}}));
    }
    out
}

/// The upstream files served by a local mirror, and a source that downloads from it into a
/// fresh cache (None, after a notice, without ../shared).
async fn mirrored() -> Option<(support::mirror::Mirror, tempfile::TempDir, ManifestSource)> {
    let up = support::mirror::upstream()?;
    let mirror = support::mirror::serve(up).await;
    let cache = tempfile::tempdir().unwrap();
    let src =
        ManifestSource { cache_dir: cache.path().to_path_buf(), mirror: Some(mirror.url.clone()), local_dir: None };
    Some((mirror, cache, src))
}

fn applier(api: &SimApiServer, client: kube::Client) -> Applier {
    let _ = api;
    let (ui, _) = Ui::capture(OutputFormat::Text);
    Applier::new(
        client,
        ui,
        PhaseId::Storage,
        ApplyOptions {
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
            crd_deadline: Duration::from_secs(20),
            ..Default::default()
        },
    )
}

async fn client(api: &SimApiServer) -> kube::Client {
    homelab::kube::client::from_text(&api.kubeconfig("sim"), None).await.unwrap()
}

#[tokio::test]
async fn real_bundles_download_verify_and_apply_in_order_then_converge() {
    let Some((mirror, _cache, src)) = mirrored().await else { return };
    for (project, version) in
        [("rook", "v1.10.10"), ("rook", "v1.20.6"), ("strimzi", "0.33.1"), ("strimzi", "0.45.2"), ("strimzi", "1.2.0")]
    {
        let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
        let objs = objects(&src, project, version).await;
        let a = applier(&api, client(&api).await);
        let r = a.apply(&objs).await.unwrap_or_else(|e| panic!("{project} {version}: {e:#}"));
        assert_eq!(r.objects() as usize, objs.len(), "{project} {version}");
        assert_eq!(r.changes() as usize, objs.len(), "{project} {version}: everything is new");
        assert!(r.stages[&Stage::Crds].created > 0);
        // Order: every CRD is applied before anything namespaced, and the first custom
        // resource only after the CRDs are Established.
        let log = api.requests();
        let patches: Vec<&String> = log.iter().filter(|l| l.starts_with("PATCH")).collect();
        let last_crd = patches.iter().rposition(|l| l.contains("customresourcedefinitions")).unwrap();
        let first_other = patches
            .iter()
            .position(|l| {
                !l.contains("customresourcedefinitions") && !l.contains("/namespaces/")
                    || l.contains("/namespaces/") && l.matches('/').count() > 5
            })
            .unwrap_or(usize::MAX);
        assert!(
            last_crd < first_other || first_other == usize::MAX || patches[first_other].contains("/api/v1/namespaces/"),
            "{project} {version}: CRDs first: {patches:?}"
        );
        if project == "rook" && version == "v1.20.6" {
            // operator.yaml's OperatorConfig and Drivers (csi.ceph.io) came after their CRDs,
            // and passed the real CRD schema.
            assert!(api.object("csi.ceph.io", "operatorconfigs", "rook-ceph", "ceph-csi-operator-config").is_some());
            assert_eq!(r.stages[&Stage::Custom].created, 3);
        }
        // A converged re-apply changes nothing, and sends nothing but reads: no write reaches
        // the server, not even a no-op apply.
        api.clear_log();
        let r2 = a.apply(&objs).await.unwrap();
        assert_eq!(r2.changes(), 0, "{project} {version}: {:?}", r2.stages);
        let writes: Vec<String> = api.requests().into_iter().filter(|l| !l.starts_with("GET")).collect();
        assert!(writes.is_empty(), "{project} {version}: a converged apply wrote: {writes:?}");
    }
    // The cache serves a second fetch without the network.
    let hits = mirror.hits.load(std::sync::atomic::Ordering::Relaxed);
    let _ = objects(&src, "rook", "v1.10.10").await;
    assert_eq!(mirror.hits.load(std::sync::atomic::Ordering::Relaxed), hits);
}

#[tokio::test]
async fn a_corrupted_byte_fails_the_checksum() {
    let Some(up) = support::mirror::upstream() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rel = "rook/v1.10.10/deploy/examples/common.yaml";
    let mut bytes = std::fs::read(up.join(rel)).unwrap();
    bytes[1000] ^= 0x20;
    std::fs::create_dir_all(dir.path().join(rel).parent().unwrap()).unwrap();
    std::fs::write(dir.path().join(rel), &bytes).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let src = ManifestSource {
        cache_dir: cache.path().to_path_buf(),
        mirror: None,
        local_dir: Some(dir.path().to_path_buf()),
    };
    let cat = Catalog::embedded().unwrap();
    let f = cat.rook("v1.10.10").unwrap().files.iter().find(|f| f.path.ends_with("common.yaml")).unwrap().clone();
    let e = bundle::fetch(&http(), &src, Release { project: "rook", version: "v1.10.10" }, &f).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("checksum mismatch for deploy/examples/common.yaml"), "{msg}");
    assert!(msg.contains(&f.sha256), "names the expected digest: {msg}");
    assert!(msg.contains(&bundle::sha256_hex(&bytes)), "names the actual digest: {msg}");
    assert!(!cache.path().join("rook/v1.10.10/deploy/examples/common.yaml").exists(), "a bad file is never cached");
}

#[tokio::test]
async fn discovery_lag_slow_crds_and_injected_errors_are_survived() {
    let Some(up) = support::mirror::upstream() else { return };
    let src = ManifestSource { cache_dir: tempfile::tempdir().unwrap().keep(), mirror: None, local_dir: Some(up) };
    let cfg = SimApiConfig {
        crd_establish: Duration::from_millis(400),
        discovery_lag: Duration::from_millis(300),
        ..Default::default()
    };
    let api = SimApiServer::start(cfg).await.unwrap();
    api.faults(|f| {
        f.conflict = 3;
        f.throttle = 3;
        f.unavailable = 3;
    });
    let objs = objects(&src, "rook", "v1.20.6").await;
    let a = applier(&api, client(&api).await);
    let r = a.apply(&objs).await.unwrap();
    assert_eq!(r.objects() as usize, objs.len());
    assert!(api.object("csi.ceph.io", "drivers", "rook-ceph", "rook-ceph.rbd.csi.ceph.com").is_some());
}

#[tokio::test]
async fn a_wait_that_cannot_succeed_names_the_object_and_condition() {
    let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
    api.faults(|f| f.stuck_deployments.push("rook-ceph/rook-ceph-operator".into()));
    let a = applier(&api, client(&api).await);
    let objs: Vec<Value> = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rook-ceph"}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "rook-ceph-operator", "namespace": "rook-ceph"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rook-ceph-operator"}}, "template": {"metadata": {"labels": {"app": "rook-ceph-operator"}}, "spec": {"containers": [{"name": "op", "image": "rook/ceph:v1.10.10"}]}}}}),
    ];
    a.apply(&objs).await.unwrap();
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let e = wait_object(
        &a,
        &ui,
        PhaseId::Storage,
        &ObjectRef::new("apps/v1", "Deployment", Some("rook-ceph"), "rook-ceph-operator"),
        "Available",
        &deployment_available(),
        Duration::from_millis(300),
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
        "check the operator pod's events",
    )
    .await
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("waiting for Available on Deployment rook-ceph/rook-ceph-operator"), "{msg}");
    assert!(msg.contains("condition Available is False"), "{msg}");
    assert!(msg.contains("hint: check the operator pod's events"), "{msg}");
}

#[tokio::test]
async fn invalid_custom_resources_are_rejected_like_the_real_server() {
    let Some(up) = support::mirror::upstream() else { return };
    let src = ManifestSource { cache_dir: tempfile::tempdir().unwrap().keep(), mirror: None, local_dir: Some(up) };
    let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
    let mut objs = objects(&src, "strimzi", "1.2.0").await;
    objs.push(serde_json::json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool", "metadata": {"name": "broker", "namespace": "kafka"}, "spec": {"replicas": "three", "roles": ["broker"], "storage": {"type": "ephemeral"}}}));
    let a = applier(&api, client(&api).await);
    let e = format!("{:#}", a.apply(&objs).await.unwrap_err());
    assert!(e.contains("KafkaNodePool kafka/broker") && e.contains("422") || e.contains("is invalid"), "{e}");
}

/// Drift stays corrected: a field homelab sets that another manager changed (an update, as
/// `kubectl edit` or `kubectl scale` sends) is seen without sending anything else, and one apply
/// puts it back; the next run is converged again.
#[tokio::test]
async fn a_field_another_manager_changed_is_put_back_by_one_apply() {
    let Some((_mirror, _cache, src)) = mirrored().await else { return };
    let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
    let objs = objects(&src, "strimzi", "0.33.1").await;
    let a = applier(&api, client(&api).await);
    a.apply(&objs).await.unwrap();
    let deploy = "/apis/apps/v1/namespaces/kafka/deployments/strimzi-cluster-operator";
    let image = |api: &SimApiServer| {
        let d = api.object("apps", "deployments", "kafka", "strimzi-cluster-operator").unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_owned()
    };
    let applied = image(&api);
    // Another manager changes the operator's image (an update, not an apply).
    let d = api.object("apps", "deployments", "kafka", "strimzi-cluster-operator").unwrap();
    let mut containers = d["spec"]["template"]["spec"]["containers"].clone();
    containers[0]["image"] = "quay.io/someone/else:latest".into();
    let r = http()
        .patch(format!("{}{deploy}?fieldManager=kubectl-edit", api.url))
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::json!({"spec": {"template": {"spec": {"containers": containers}}}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(image(&api), "quay.io/someone/else:latest");
    api.clear_log();
    let r = a.apply(&objs).await.unwrap();
    assert_eq!(r.changes(), 1, "{:?}", r.stages);
    let writes: Vec<String> = api.requests().into_iter().filter(|l| !l.starts_with("GET")).collect();
    assert_eq!(writes.len(), 1, "only the drifted object is sent: {writes:?}");
    assert!(writes[0].contains("deployments/strimzi-cluster-operator"), "{writes:?}");
    assert_eq!(image(&api), applied, "the apply put the image back");
    api.clear_log();
    let r = a.apply(&objs).await.unwrap();
    assert_eq!(r.changes(), 0, "{:?}", r.stages);
    assert!(api.requests().iter().all(|l| l.starts_with("GET")), "{:?}", api.requests());
}

/// The simulated server as `:16443` serves it — TLS with its own CA, charging what the real
/// one charges — is verified with the kubeconfig's CA (another CA is refused), and a converged
/// apply reuses the run's kept-alive connections: no new connection, no write.
#[tokio::test]
async fn over_tls_a_converged_apply_reuses_its_connections_and_writes_nothing() {
    let Some((_mirror, _cache, src)) = mirrored().await else { return };
    let cfg = SimApiConfig { tls: true, costs: homelab::sim::apiserver::ApiCosts::measured(), ..Default::default() };
    let api = SimApiServer::start(cfg.clone()).await.unwrap();
    assert!(api.url.starts_with("https://127.0.0.1:"), "{}", api.url);
    // Another server's CA does not verify this one.
    let other = SimApiServer::start(cfg).await.unwrap();
    let wrong = api.kubeconfig("sim").replace(
        api.kubeconfig("sim").lines().find(|l| l.contains("certificate-authority-data")).unwrap(),
        other.kubeconfig("sim").lines().find(|l| l.contains("certificate-authority-data")).unwrap(),
    );
    let c = homelab::kube::client::from_text(&wrong, None).await.unwrap();
    let e = c.apiserver_version().await.unwrap_err();
    assert!(format!("{e:?}").to_lowercase().contains("certificate"), "{e:?}");
    let objs = objects(&src, "strimzi", "0.33.1").await;
    let a = applier(&api, client(&api).await);
    a.apply(&objs).await.unwrap();
    let opened = api.meter.connections();
    assert!((1..=64).contains(&opened), "connections are pooled, not one per request: {opened}");
    api.clear_log();
    let t = std::time::Instant::now();
    let r = a.apply(&objs).await.unwrap();
    let took = t.elapsed();
    assert_eq!(r.changes(), 0, "{:?}", r.stages);
    assert!(api.requests().iter().all(|l| l.starts_with("GET")), "{:?}", api.requests());
    assert_eq!(api.meter.connections(), opened, "the converged apply opened a new connection");
    // Every request was charged: at least the base cost of the slowest stage chain.
    assert!(took >= std::time::Duration::from_millis(2), "{took:?}");
}
