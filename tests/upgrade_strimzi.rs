//! `homelab upgrade` of the Strimzi side against the simulated lab: the simulated operator
//! runs the release its Deployment's image names with the Kafka versions of its
//! `STRIMZI_KAFKA_IMAGES`, rolls brokers one at a time, walks the ZooKeeper → KRaft states
//! and stops serving `v1beta2` at 1.0; the real upstream install files of every Strimzi
//! release of the ladder go through the real download, verify and apply path.

mod support;

use homelab::catalog::Catalog;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::ops::upgrade::{UpgradeRequest, upgrade};
use homelab::sim::lab::{FullLab, FullLabOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

async fn seed_lab(upstream: &Path) -> (FullLab, String) {
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = support::example(&lab, "seed-2023.yaml");
    let (r, out) = support::up_lab(&lab, &yaml, upstream).await;
    assert!(r.changes > 0, "{out}");
    (lab, yaml)
}

async fn run(
    lab: &FullLab,
    file: &Path,
    req: UpgradeRequest,
    upstream: &Path,
) -> (anyhow::Result<homelab::ops::upgrade::UpgradeReport>, String) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let r = upgrade(file, &req, &cat, &ui, RunOptions::fast(), &support::lab_world(lab, upstream)).await;
    (r, cap.all())
}

fn yes() -> UpgradeRequest {
    UpgradeRequest { yes: true, ..Default::default() }
}

fn kafka(lab: &FullLab) -> Value {
    lab.api.object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").unwrap()
}

fn state(lab: &FullLab) -> String {
    kafka(lab)["status"]["kafkaMetadataState"].as_str().unwrap_or("none").to_owned()
}

fn pvc_uids(lab: &FullLab) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = lab
        .api
        .objects("", "persistentvolumeclaims", Some("kafka"))
        .iter()
        .filter(|p| p["metadata"]["name"].as_str().unwrap_or("").starts_with("data-my-cluster-kafka-"))
        .map(|p| {
            (p["metadata"]["name"].as_str().unwrap().to_owned(), p["metadata"]["uid"].as_str().unwrap().to_owned())
        })
        .collect();
    v.sort();
    v
}

fn writes(lab: &FullLab) -> Vec<String> {
    lab.api
        .requests()
        .into_iter()
        .filter(|r| ["POST", "PUT", "PATCH", "DELETE"].iter().any(|m| r.starts_with(m)) && !r.ends_with("(dry run)"))
        .filter(|r| !r.contains("/leases/homelab-run"))
        .collect()
}

/// A client of the event bus: samples the Kafka's status and its broker pods while the
/// upgrade runs, and reports the longest time the Kafka was NotReady and the fewest broker
/// pods Ready at once.
fn client(lab: &FullLab) -> (Arc<AtomicBool>, tokio::task::JoinHandle<(Duration, usize, usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let api = lab.api.shared();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let (mut longest, mut since, mut fewest, mut samples) = (Duration::ZERO, None::<Instant>, usize::MAX, 0usize);
        while !s.load(Ordering::Relaxed) {
            {
                let mut st = api.lock().unwrap();
                homelab::sim::apiserver::reconcile(&mut st);
                let ready = st
                    .get("kafka.strimzi.io", "kafkas", "kafka", "my-cluster")
                    .is_some_and(|k| k["status"]["conditions"][0]["type"] == "Ready");
                let brokers = st
                    .list("", "pods", Some("kafka"))
                    .iter()
                    .filter(|p| p["metadata"]["labels"]["strimzi.io/broker-role"] == "true")
                    .filter(|p| p["status"]["conditions"][0]["status"] == "True")
                    .count();
                fewest = fewest.min(brokers);
                match (ready, since) {
                    (false, None) => since = Some(Instant::now()),
                    (true, Some(t)) => {
                        longest = longest.max(t.elapsed());
                        since = None;
                    }
                    _ => {}
                }
                samples += 1;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        if let Some(t) = since {
            longest = longest.max(t.elapsed());
        }
        (longest, fewest, samples)
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_kafka_climbs_to_strimzi_12_on_kraft_with_its_data_then_up_is_a_noop() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    // The seed's brokers: the ZooKeeper-era pods carry no role label; mark the first count.
    let before = pvc_uids(&lab);
    assert_eq!(before.len(), 3, "{before:?}");
    let goal =
        support::kraft_target(&support::upgrade_target(&seed, "1.31/stable", "v1.20.6", "v19.2.3"), "1.2.0", "4.3.1");
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &goal).unwrap();
    // `up` of the target refuses the Strimzi change as drift and changes nothing there.
    lab.api.clear_log();
    let (r, out) = support::up_lab(&lab, &goal, &upstream).await;
    assert_eq!(r.changes, 0, "{out}");
    assert!(out.contains("the Strimzi operator runs quay.io/strimzi/operator:0.33.1, the file says 1.2.0"), "{out}");
    assert!(writes(&lab).iter().all(|w| !w.contains("/namespaces/kafka/")), "{:?}", writes(&lab));
    // The plan names every hop; the run does exactly those, in order.
    let (plan, plan_out) = run(&lab, &file, UpgradeRequest { plan_only: true, ..Default::default() }, &upstream).await;
    let planned: Vec<String> =
        plan.unwrap_or_else(|e| panic!("{e:#}\n{plan_out}")).planned.iter().map(|h| h.name()).collect();
    assert!(plan_out.contains("POINT OF NO RETURN"), "{plan_out}");
    let at = |n: &str| planned.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} not in {planned:?}"));
    assert!(at("ceph-19.2.3") < at("strimzi-0.35.1") && at("strimzi-0.47.0") < at("microk8s-1.27"), "{planned:?}");
    assert!(at("rook-v1.20.6") < at("strimzi-0.50.1") && at("strimzi-v1-api") < at("strimzi-1.0.1"), "{planned:?}");
    *lab.strimzi.transient_timeouts.lock().unwrap() = 3;
    let (stop, watch) = client(&lab);
    // The first run stops at the migration's point of no return.
    let (r, out) = run(&lab, &file, yes(), &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert_eq!(r.stopped_at.as_deref(), Some("kraft"), "{out}");
    assert!(out.contains("This is the last point of return") && out.contains("--continue-kraft"), "{out}");
    assert_eq!(state(&lab), "KRaftPostMigration");
    let mut done: Vec<String> = r.done.iter().map(|h| h.hop.clone()).collect();
    assert_eq!(done, planned[..at("kraft")], "{out}");
    // The second goes on past it, to the end.
    let (r, out) = run(&lab, &file, UpgradeRequest { continue_kraft: true, ..yes() }, &upstream).await;
    stop.store(true, Ordering::Relaxed);
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    done.extend(r.done.iter().map(|h| h.hop.clone()));
    assert_eq!(done, planned, "{out}");
    let (longest, fewest, samples) = watch.await.unwrap();
    // One roll of three brokers at the simulated pace is ~150 ms; the client never saw the
    // Kafka NotReady longer than one roll (the operator's transient timeouts included), and
    // never more than one broker down.
    assert!(samples > 100, "{samples}");
    assert!(longest < Duration::from_millis(600), "NotReady for {longest:?}");
    assert!(fewest >= 2 || fewest == usize::MAX, "only {fewest} brokers Ready at once");
    // The end: Strimzi 1.2.0, Kafka 4.3.1 on KRaft, node pools, the same PVCs, v1 stored.
    let op = lab.api.object("apps", "deployments", "kafka", "strimzi-cluster-operator").unwrap();
    assert_eq!(op["spec"]["template"]["spec"]["containers"][0]["image"], "quay.io/strimzi/operator:1.2.0");
    let k = kafka(&lab);
    assert_eq!(k["spec"]["kafka"]["version"], "4.3.1");
    assert!(k["spec"].get("zookeeper").is_none() && k["spec"]["kafka"].get("replicas").is_none(), "{k}");
    assert!(k["spec"]["kafka"]["config"].get("inter.broker.protocol.version").is_none(), "{k}");
    assert_eq!(k["status"]["kafkaVersion"], "4.3.1");
    assert_eq!(k["status"]["operatorLastSuccessfulVersion"], "1.2.0");
    assert!(k["status"].get("kafkaMetadataState").is_none(), "1.1 removed it: {k}");
    assert_eq!(pvc_uids(&lab), before, "the brokers' claims were replaced");
    let pools: Vec<String> = lab
        .api
        .objects("kafka.strimzi.io", "kafkanodepools", Some("kafka"))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pools, ["controller", "kafka"]);
    for crd in lab.api.objects("apiextensions.k8s.io", "customresourcedefinitions", None) {
        // (KafkaMirrorMaker's CRD, left by 0.33.1 and shipped by no release since 0.46, stays
        // as it was: empty, and never served as v1.)
        let v1 = crd["spec"]["versions"].as_array().unwrap().iter().any(|v| v["name"] == "v1");
        if crd["spec"]["group"].as_str().unwrap().ends_with(".strimzi.io") && v1 {
            assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]), "{}", crd["metadata"]["name"]);
        }
    }
    assert!(
        lab.api
            .objects("", "pods", Some("kafka"))
            .iter()
            .all(|p| !p["metadata"]["name"].as_str().unwrap().contains("zookeeper"))
    );
    // The migration went through every state once, in order.
    let log = lab.strimzi.metadata_log.lock().unwrap().clone();
    assert_eq!(log, support::MIGRATION_LOG);
    // Every operator release and Kafka version once, in the ladder's order.
    let history = lab.strimzi.history.lock().unwrap().clone();
    let want = support::strimzi_history("4.3.1");
    assert_eq!(history, want);
    // `up` of the upgraded file changes nothing; the next upgrade has no hop.
    let (r, out) = support::up_lab(&lab, &goal, &upstream).await;
    assert_eq!(r.changes, 0, "the up after the upgrade changed something:\n{out}");
    let (r, out) = run(&lab, &file, yes(), &upstream).await;
    assert!(r.unwrap_or_else(|e| panic!("{e:#}\n{out}")).planned.is_empty(), "{out}");
}

/// Strimzi 0.45.2 with Kafka 3.9.1 on KRaft: the seed's Kubernetes, Rook and Ceph stay.
fn to_045(seed: &str) -> String {
    support::kraft_target(seed, "0.45.2", "3.9.1")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_stopped_at_its_point_of_no_return_rolls_back_to_zookeeper() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let before = pvc_uids(&lab);
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, to_045(&seed)).unwrap();
    let (r, out) = run(&lab, &file, yes(), &upstream).await;
    assert_eq!(r.unwrap_or_else(|e| panic!("{e:#}\n{out}")).stopped_at.as_deref(), Some("kraft"), "{out}");
    assert_eq!(state(&lab), "KRaftPostMigration");
    assert!(lab.api.object("kafka.strimzi.io", "kafkanodepools", "kafka", "controller").is_some());
    // Without --yes nothing changes.
    lab.api.clear_log();
    let (r, out) = run(&lab, &file, UpgradeRequest { rollback_kraft: true, ..Default::default() }, &upstream).await;
    assert!(r.is_err() && writes(&lab).is_empty(), "{out}");
    let (r, out) = run(&lab, &file, UpgradeRequest { rollback_kraft: true, ..yes() }, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(out.contains("back on ZooKeeper") && out.contains("/migration"), "{out}");
    assert_eq!(state(&lab), "ZooKeeper");
    assert!(lab.api.object("kafka.strimzi.io", "kafkanodepools", "kafka", "controller").is_none());
    let claims: Vec<String> = lab
        .api
        .objects("", "persistentvolumeclaims", Some("kafka"))
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(claims.iter().all(|c| !c.contains("controller")), "{claims:?}");
    assert_eq!(pvc_uids(&lab), before);
    assert!(support::kafka_ready(&lab));
    let log = lab.strimzi.metadata_log.lock().unwrap().clone();
    assert_eq!(
        log[3..],
        ["kafka/my-cluster: KRaftPostMigration → KRaftDualWriting", "kafka/my-cluster: KRaftDualWriting → ZooKeeper"]
    );
    // Past the point of no return there is no rollback: it is refused with nothing changed.
    let (r, out) = run(&lab, &file, UpgradeRequest { continue_kraft: true, ..yes() }, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert_eq!(state(&lab), "KRaft");
    lab.api.clear_log();
    let (r, out) = run(&lab, &file, UpgradeRequest { rollback_kraft: true, ..yes() }, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("past the point of no return"), "{e}\n{out}");
    assert!(writes(&lab).is_empty(), "{:?}", writes(&lab));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_change_nothing() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let file: PathBuf = lab.lab.path("cluster.yaml");
    let cases: Vec<(String, &str)> = vec![
        // A Kafka version the declared operator cannot manage: the file is refused with the list.
        (seed.replace("strimziVersion: 0.33.1", "strimziVersion: 0.37.0"), "Strimzi 0.37.0 runs Kafka 3.4.0, 3.4.1, 3.5.0, 3.5.1"),
        // Kubernetes too old for the operator the file declares.
        (support::kraft_target(&seed, "1.2.0", "4.3.1"), "Strimzi 1.2.0 needs Kubernetes"),
        // The migration's prerequisites: dedicated controllers, the brokers' pool `kafka`.
        (
            to_045(&seed).replace(
                "    controllers: {replicas: 3, storage: {size: 20Gi, class: rook-ceph-block, deleteClaim: true}}\n",
                "",
            )
            .replace("    brokerPool: kafka\n", ""),
            "needs dedicated controllers",
        ),
        (to_045(&seed).replace("    brokerPool: kafka\n", ""), "set `brokerPool: kafka`"),
        // Downgrades.
        (seed.replace("    version: 3.3.2\n", "    version: 3.3.1\n"), "does not downgrade Kafka"),
    ];
    for (yaml, want) in cases {
        std::fs::write(&file, &yaml).unwrap();
        lab.api.clear_log();
        let (r, out) = run(&lab, &file, yes(), &upstream).await;
        let e = match r {
            Ok(_) => panic!("accepted: {want}\n{out}"),
            Err(e) => format!("{e:#}\n{out}"),
        };
        assert!(e.contains(want), "wanted {want:?} in:\n{e}");
        assert!(writes(&lab).is_empty(), "{want}: {:?}", writes(&lab));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_operator_enforces_what_strimzi_enforces() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let file: PathBuf = lab.lab.path("cluster.yaml");
    // Climb to 0.45.2 with node pools, stopping before the migration.
    std::fs::write(&file, to_045(&seed)).unwrap();
    let (r, out) = run(&lab, &file, UpgradeRequest { until: Some("kafka-node-pool".into()), ..yes() }, &upstream).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(kafka(&lab)["status"].get("kafkaVersion").is_some(), "0.45 writes kafkaVersion");
    // A migration asked for with a protocol version behind: KRaftUtils' refusal.
    let api = lab.api.shared();
    {
        let mut st = api.lock().unwrap();
        let mut k = st.get("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").cloned().unwrap();
        k["spec"]["kafka"]["config"]["inter.broker.protocol.version"] = "3.8".into();
        k["metadata"]["annotations"]["strimzi.io/kraft"] = "migration".into();
        k["metadata"]["generation"] = (k["metadata"]["generation"].as_i64().unwrap() + 1).into();
        st.put("kafka.strimzi.io", "kafkas", "kafka", k);
    }
    let k = kafka(&lab);
    let msg = k["status"]["conditions"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        msg.starts_with("Migration cannot be performed with Kafka version 3.9.1, metadata version null, inter.broker.protocol.version 3.8"),
        "{msg}"
    );
    assert_eq!(state(&lab), "ZooKeeper");
    // An operator that does not run the Kafka version: Strimzi's text with its list.
    {
        let mut st = api.lock().unwrap();
        let mut k = st.get("kafka.strimzi.io", "kafkas", "kafka", "my-cluster").cloned().unwrap();
        k["spec"]["kafka"]["version"] = "3.3.2".into();
        st.put("kafka.strimzi.io", "kafkas", "kafka", k);
    }
    let msg = kafka(&lab)["status"]["conditions"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        msg,
        "Unsupported Kafka.spec.kafka.version: 3.3.2. Supported versions are: [3.8.0, 3.8.1, 3.9.0, 3.9.1, 3.9.2]"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_still_stored_as_v1beta2_are_unreadable_once_the_crd_drops_it() {
    // The API server's rule the v1 conversion exists for, on the simulated server alone.
    use homelab::sim::apiserver::{SimApiConfig, SimApiServer};
    let Some(upstream) = support::mirror::upstream() else { return };
    let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
    let crd = |v: &str| -> Value {
        let text = std::fs::read_to_string(
            upstream.join(format!("strimzi/{v}/install/cluster-operator/043-Crd-kafkatopic.yaml")),
        )
        .unwrap();
        let y: Value = serde_saphyr::from_str(&text).unwrap();
        y
    };
    homelab::foundation::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let apply = |path: String, body: Value| {
        let c = client.clone();
        let url = format!("{}{path}?fieldManager=test&force=true", api.url);
        async move {
            c.patch(url)
                .header("content-type", "application/apply-patch+yaml")
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let r = apply(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kafkatopics.kafka.strimzi.io".into(),
        crd("0.50.1"),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = api.objects("", "namespaces", None);
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}});
    assert!(apply("/api/v1/namespaces/kafka".into(), ns).await.status().is_success());
    let topic = serde_json::json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": {"name": "t", "namespace": "kafka"}, "spec": {"partitions": 1, "replicas": 1}});
    let r = apply("/apis/kafka.strimzi.io/v1beta2/namespaces/kafka/kafkatopics/t".into(), topic).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // 1.0's CRD has no v1beta2: while storedVersions lists it, the update is refused.
    let r = apply(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kafkatopics.kafka.strimzi.io".into(),
        crd("1.0.1"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("status.storedVersions[0]: Invalid value: \\\"v1beta2\\\": must appear in spec.versions")
    );
    // Forcing storedVersions to [v1] without rewriting the object, then dropping v1beta2:
    // the object stored as v1beta2 can no longer be read.
    {
        let sh = api.shared();
        let mut st = sh.lock().unwrap();
        let mut c = st
            .get("apiextensions.k8s.io", "customresourcedefinitions", "", "kafkatopics.kafka.strimzi.io")
            .cloned()
            .unwrap();
        c["status"]["storedVersions"] = serde_json::json!(["v1"]);
        st.put("apiextensions.k8s.io", "customresourcedefinitions", "", c);
    }
    let r = apply(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/kafkatopics.kafka.strimzi.io".into(),
        crd("1.0.1"),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client
        .get(format!("{}/apis/kafka.strimzi.io/v1/namespaces/kafka/kafkatopics/t", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("request to convert CR from an invalid group/version: kafka.strimzi.io/v1beta2")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_still_on_zookeeper_is_listed_then_rewritten_line_by_line_with_write() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, seed) = seed_lab(&upstream).await;
    let file: PathBuf = lab.lab.path("cluster.yaml");
    // The user changes one line: the Strimzi release.
    let bumped = seed.replace("strimziVersion: 0.33.1", "strimziVersion: 0.47.0");
    std::fs::write(&file, &bumped).unwrap();
    // A run is refused with the lines that change; nothing is written, in the file or the cluster.
    lab.api.clear_log();
    let (r, out) = run(&lab, &file, UpgradeRequest { continue_kraft: true, ..yes() }, &upstream).await;
    let e = format!("{:#}", r.unwrap_err());
    for want in [
        "declares Strimzi 0.47.0, which runs only KRaft",
        "- version: 3.3.2\n       + version: 4.0.0",
        "- metadata: zookeeper\n       + metadata: kraft\n       + brokerPool: kafka",
        "- inter.broker.protocol.version: \"3.3\"",
        "- zookeeper: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block, deleteClaim: true}}\n       + controllers: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block, deleteClaim: true}}",
        "`homelab upgrade --write`",
    ] {
        assert!(e.contains(want), "wanted {want:?} in:\n{e}\n{out}");
    }
    assert!(writes(&lab).is_empty(), "{:?}", writes(&lab));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), bumped);
    // The plan is made with the changed lines in memory; the file stays.
    let (r, out) = run(&lab, &file, UpgradeRequest { plan_only: true, ..Default::default() }, &upstream).await;
    let planned: Vec<String> = r.unwrap_or_else(|e| panic!("{e:#}\n{out}")).planned.iter().map(|h| h.name()).collect();
    assert!(out.contains("`--write` writes them into"), "{out}");
    assert_eq!(planned.last().map(String::as_str), Some("kafka-4.0.0"), "{planned:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), bumped);
    // --write rewrites exactly those lines, and the run climbs to the end with that file.
    let (r, out) = run(&lab, &file, UpgradeRequest { continue_kraft: true, write: true, ..yes() }, &upstream).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert_eq!(r.done.iter().map(|h| h.hop.clone()).collect::<Vec<_>>(), planned, "{out}");
    let written = std::fs::read_to_string(&file).unwrap();
    let want = bumped
        .replace("    version: 3.3.2\n", "    version: 4.0.0\n")
        .replace("    metadata: zookeeper\n", "    metadata: kraft\n    brokerPool: kafka\n")
        .replace("      inter.broker.protocol.version: \"3.3\"\n", "")
        .replace("    zookeeper: {replicas", "    controllers: {replicas");
    assert_eq!(written, want);
    let (r, out) = support::up_lab(&lab, &written, &upstream).await;
    assert_eq!(r.changes, 0, "{out}");
    // Nothing left to list.
    let (r, out) = run(&lab, &file, yes(), &upstream).await;
    assert!(r.unwrap_or_else(|e| panic!("{e:#}\n{out}")).planned.is_empty(), "{out}");
    assert!(!out.contains("runs only KRaft"), "{out}");
}
