//! What applications use, end to end against the simulated lab with the real Strimzi files:
//! the examples' topics, users and HTTP bridge converge after the Kafka, a second `up`
//! changes nothing, `status` shows them, `connect` prints a client configuration without
//! the password; the refusals apply nothing; `--prune` deletes only what homelab created.

mod support;

use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::sim::lab::{FullLab, FullLabOptions};
use serde_json::{Value, json};
use support::{example, lab_source};

const G: &str = "kafka.strimzi.io";

async fn up_with(
    lab: &FullLab,
    yaml: &str,
    upstream: &std::path::Path,
    opts: RunOptions,
) -> (anyhow::Result<homelab::engine::runner::RunReport>, String) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(yaml, ui, opts, lab_source(lab, upstream)).unwrap();
    let r = homelab::engine::up(cx).await;
    (r, cap.all())
}

async fn up_ok(lab: &FullLab, yaml: &str, upstream: &std::path::Path) -> (homelab::engine::runner::RunReport, String) {
    let (r, out) = up_with(lab, yaml, upstream, RunOptions::fast()).await;
    (r.unwrap_or_else(|e| panic!("{e:#}\n{out}")), out)
}

fn ctx(lab: &FullLab, yaml: &str, upstream: &std::path::Path) -> std::sync::Arc<homelab::engine::context::Ctx> {
    let (ui, _cap) = Ui::capture(OutputFormat::Text);
    lab.ctx(yaml, ui, RunOptions::fast(), lab_source(lab, upstream)).unwrap()
}

/// A Java properties text as key → value (`#` comments, `key=value`, `\\` escapes).
fn parse_properties(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not a property line: {l}"));
            assert!(!k.trim().is_empty() && !k.trim_start_matches("export ").contains(' '), "bad key in {l}");
            (k.to_owned(), v.replace("\\\\", "\\"))
        })
        .collect()
}

/// `NAME='value'` shell lines as name → value (the quoting `connect database` writes).
fn parse_shell(text: &str) -> std::collections::BTreeMap<String, String> {
    parse_properties(text)
        .into_iter()
        .map(|(k, v)| {
            let k = k.strip_prefix("export ").unwrap_or_else(|| panic!("not exported: {k}")).to_owned();
            let inner = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("not quoted: {k}={v}"));
            (k, inner.replace("'\\''", "'"))
        })
        .collect()
}

fn pw_plain(secret: &Value) -> String {
    pw_key(secret, "password")
}

fn pw_key(secret: &Value, key: &str) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.decode(secret["data"][key].as_str().unwrap()).unwrap();
    String::from_utf8(b).unwrap()
}

fn assert_private(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
}

fn database_converges(lab: &FullLab, cnpg: &str, role_label: &str) {
    let op = lab.api.object("apps", "deployments", "cnpg-system", "cnpg-controller-manager").expect("the operator");
    assert_eq!(
        op["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/cloudnative-pg/cloudnative-pg:{cnpg}")
    );
    let c = lab.api.object("postgresql.cnpg.io", "clusters", "databases", "shared-pg").expect("the Cluster");
    assert_eq!(c["metadata"]["labels"]["app.kubernetes.io/managed-by"], "homelab");
    assert_eq!(c["spec"]["instances"], 3);
    assert_eq!(c["spec"]["storage"], json!({"size": "10Gi", "storageClass": "rook-ceph-block"}));
    assert_eq!(c["spec"]["walStorage"], json!({"size": "2Gi", "storageClass": "rook-ceph-block"}));
    assert_eq!(c["spec"]["bootstrap"]["initdb"], json!({"database": "app", "owner": "app"}));
    assert_eq!(c["spec"]["postgresql"]["parameters"], json!({"max_connections": "100", "shared_buffers": "256MB"}));
    assert_eq!(c["status"]["phase"], "Cluster in healthy state");
    assert_eq!(c["status"]["readyInstances"], 3);
    for n in 1..=3 {
        for pvc in [format!("shared-pg-{n}"), format!("shared-pg-{n}-wal")] {
            let p =
                lab.api.object("", "persistentvolumeclaims", "databases", &pvc).unwrap_or_else(|| panic!("PVC {pvc}"));
            assert_eq!(p["spec"]["storageClassName"], "rook-ceph-block");
        }
    }
    for svc in ["shared-pg-rw", "shared-pg-ro", "shared-pg-r"] {
        assert!(lab.api.object("", "services", "databases", svc).is_some(), "{svc}");
    }
    let s = lab.api.object("", "secrets", "databases", "shared-pg-app").unwrap();
    assert_eq!(s["type"], "kubernetes.io/basic-auth");
    let np = lab.api.object("", "services", "databases", "shared-pg-rw-nodeport").unwrap();
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30432);
    assert_eq!(np["spec"]["selector"], json!({"cnpg.io/cluster": "shared-pg", role_label: "primary"}));
    // The NodePort selects the primary's pod, as CloudNativePG's own -rw Service does.
    let rw = lab.api.object("", "services", "databases", "shared-pg-rw").unwrap();
    assert_eq!(rw["spec"]["selector"], np["spec"]["selector"]);
}

fn apps_converge(lab: &FullLab, api_version: &str) {
    let t = lab.api.object(G, "kafkatopics", "kafka", "events").expect("KafkaTopic events");
    assert_eq!(t["apiVersion"], format!("kafka.strimzi.io/{api_version}"));
    assert_eq!(t["metadata"]["labels"]["strimzi.io/cluster"], "my-cluster");
    assert_eq!(t["metadata"]["labels"]["app.kubernetes.io/managed-by"], "homelab");
    assert_eq!(t["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(t["status"]["topicName"], "events");
    let k = lab.api.object(G, "kafkas", "kafka", "my-cluster").unwrap();
    assert_eq!(k["spec"]["kafka"]["authorization"], json!({"type": "simple"}));
    let listeners = k["spec"]["kafka"]["listeners"].as_array().unwrap();
    let auth = |n: &str| listeners.iter().find(|l| l["name"] == n).unwrap()["authentication"].clone();
    assert_eq!(auth("external"), json!({"type": "scram-sha-512"}));
    assert_eq!(auth("tls"), json!({"type": "scram-sha-512"}));
    assert!(auth("plain").is_null(), "a listener no user names keeps no authentication");
    for u in ["app", "bridge"] {
        let o = lab.api.object(G, "kafkausers", "kafka", u).unwrap();
        assert_eq!(o["status"]["conditions"][0]["type"], "Ready", "{o}");
        assert_eq!(o["status"]["secret"], u);
        let acls = o["spec"]["authorization"]["acls"].as_array().unwrap();
        assert!(acls.iter().all(|a| a["operations"].is_array() && a.get("operation").is_none()));
        let s = lab.api.object("", "secrets", "kafka", u).unwrap();
        assert!(s["data"]["password"].is_string() && s["data"]["sasl.jaas.config"].is_string());
    }
    let b = lab.api.object(G, "kafkabridges", "kafka", "bridge").unwrap();
    assert_eq!(b["spec"]["replicas"], 1);
    assert_eq!(b["spec"]["bootstrapServers"], "my-cluster-kafka-bootstrap:9093");
    assert_eq!(b["spec"]["authentication"]["type"], "scram-sha-512");
    assert_eq!(b["status"]["url"], "http://bridge-bridge-service.kafka.svc:8080");
    let np = lab.api.object("", "services", "kafka", "bridge-bridge-nodeport").unwrap();
    assert_eq!(np["spec"]["type"], "NodePort");
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(np["spec"]["selector"], json!({"strimzi.io/cluster": "bridge", "strimzi.io/kind": "KafkaBridge"}));
    assert!(lab.api.object("apps", "deployments", "kafka", "bridge-bridge").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_examples_topics_users_and_bridge_converge_then_nothing_changes() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "seed-2023.yaml");
    let (r, out) = up_ok(&lab, &yaml, &upstream).await;
    let phases: Vec<String> = r.phases.iter().map(|p| p.phase.to_string()).collect();
    assert_eq!(phases, ["machines", "hosts", "kubernetes", "storage", "kafka", "database"]);
    apps_converge(&lab, "v1beta2");
    database_converges(&lab, "1.22.5", "role");
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{out}");
    }
    assert!(
        out.contains(
            "PostgreSQL 3 of 3 instances ready, primary shared-pg-1; credentials in Secret databases/shared-pg-app"
        ),
        "{out}"
    );
    assert!(out.contains("from the LAN: postgresql://app@10.0.0.1:30432/app"), "the MAAS host is node 1:\n{out}");
    assert!(out.contains("credentials in Secret kafka/app"), "{out}");
    assert!(out.contains("HTTP bridge: http://10.0.0.1:30080"), "{out}");
    let secret = lab.api.object("", "secrets", "kafka", "app").unwrap();
    assert!(!out.contains(&pw_plain(&secret)), "a password reached the output");
    let (r2, out2) = up_ok(&lab, &yaml, &upstream).await;
    assert_eq!(r2.changes, 0, "{out2}");
    // The credentials stayed (a second run does not make the operator regenerate them).
    let again = lab.api.object("", "secrets", "kafka", "app").unwrap();
    assert_eq!(again["data"]["password"], secret["data"]["password"]);

    // `status` shows every new part.
    let cx = ctx(&lab, &yaml, &upstream);
    let report = homelab::ops::status::gather(&cx).await;
    assert!(report.healthy, "{:?}", report.problems);
    let text = homelab::ops::status::render(&report);
    let row = |needle: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` row:\n{text}"))
            .to_owned()
    };
    let words = |l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(row("events")), ["events", "3", "3", "Ready"], "{text}");
    assert_eq!(words(row("app ")), ["app", "scram-sha-512", "Ready", "Secret", "app"], "{text}");
    assert!(text.contains("HTTP bridge bridge: Ready, 1 replica — http://10.0.0.1:30080"), "{text}");
    assert!(text.contains(":30080 (in the cluster: http://bridge-bridge-service.kafka.svc:8080)"), "{text}");
    assert!(text.contains("1 topic, 2 Kafka users"), "{text}");
    assert_eq!(report.totals.topics, 1);

    // `connect` prints a client configuration that parses, and no password.
    let dir = lab.lab.path("connect");
    let c = homelab::ops::connect::kafka_of(&cx, Some("app"), false, Some(&dir)).await.unwrap();
    let text = c.properties_text();
    assert!(!text.contains(&pw_plain(&secret)), "the password was printed:\n{text}");
    let props = parse_properties(&text);
    let external = lab.api.object(G, "kafkas", "kafka", "my-cluster").unwrap()["status"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "external")
        .unwrap()["bootstrapServers"]
        .clone();
    assert_eq!(props["bootstrap.servers"], external.as_str().unwrap());
    assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
    assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(props["config.providers"], "file");
    let jaas = &props["sasl.jaas.config"];
    let (before, file) = jaas.split_once("password=\"${file:").unwrap();
    assert_eq!(before, "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"app\" ");
    let file = file.strip_suffix(":password}\";").unwrap();
    let pw_file = std::fs::read_to_string(file).unwrap();
    assert_eq!(parse_properties(&pw_file)["password"], pw_plain(&secret));
    assert_private(std::path::Path::new(file));
    // The bridge's user connects through the TLS listener: the CA is written, 0600.
    let c = homelab::ops::connect::kafka_of(&cx, Some("bridge"), true, Some(&dir)).await.unwrap();
    let props = parse_properties(&c.properties_text());
    assert_eq!(props["security.protocol"], "SASL_SSL");
    assert_eq!(props["ssl.truststore.type"], "PEM");
    let ca = std::fs::read_to_string(&props["ssl.truststore.location"]).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_private(std::path::Path::new(&props["ssl.truststore.location"]));
    assert!(props["sasl.jaas.config"].contains("password=\""), "--show-secret prints it inline");
    // The database: status shows it; connect prints libpq settings, the password in a 0600 file.
    let report = homelab::ops::status::gather(&cx).await;
    let text = homelab::ops::status::render(&report);
    assert!(text.contains("PostgreSQL databases/shared-pg (CloudNativePG v1.22.5): 3 of 3 instances ready — Cluster in healthy state, primary shared-pg-1"), "{text}");
    assert!(text.contains("credentials: Secret databases/shared-pg-app"), "{text}");
    assert!(text.contains("in the cluster: postgresql://app@shared-pg-rw.databases:5432/app"), "{text}");
    assert!(text.contains("3 PostgreSQL instances ready"), "{text}");
    let app = lab.api.object("", "secrets", "databases", "shared-pg-app").unwrap();
    let db_pw = pw_plain(&app);
    assert!(!text.contains(&db_pw));
    let c = homelab::ops::connect::database_of(&cx, false, Some(&dir)).await.unwrap();
    let env = c.env_text();
    assert!(!env.contains(&db_pw), "the password was printed:\n{env}");
    let vars = parse_shell(&env);
    assert_eq!(
        (vars["PGPORT"].as_str(), vars["PGDATABASE"].as_str(), vars["PGUSER"].as_str()),
        ("30432", "app", "app")
    );
    assert_eq!(vars["PGHOST"], "10.0.0.1", "the MAAS host is node 1: {env}");
    assert_eq!(vars["DATABASE_URL"], format!("postgresql://app@{}:30432/app", vars["PGHOST"]));
    let pgpass = std::fs::read_to_string(&vars["PGPASSFILE"]).unwrap();
    assert_eq!(pgpass, format!("{}:30432:app:app:{db_pw}\n", vars["PGHOST"]));
    assert_private(std::path::Path::new(&vars["PGPASSFILE"]));
    // A real shell reads it as libpq would get it.
    let sh = std::process::Command::new("bash")
        .arg("-c")
        .arg("eval \"$1\" && env | grep -E '^(PGUSER|PGDATABASE|PGPORT)=' | sort")
        .arg("bash")
        .arg(&env)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sh.stdout), "PGDATABASE=app\nPGPORT=30432\nPGUSER=app\n", "{env}");
    let shown = homelab::ops::connect::database_of(&cx, true, Some(&dir)).await.unwrap();
    assert_eq!(parse_shell(&shown.env_text())["PGPASSWORD"], db_pw);
    // Unknown users are named.
    let e = homelab::ops::connect::kafka_of(&cx, Some("nobody"), false, Some(&dir)).await.unwrap_err();
    assert!(format!("{e:#}").contains("declares no Kafka user `nobody`; it declares app, bridge"), "{e:#}");
}

fn api_writes(lab: &FullLab) -> Vec<String> {
    lab.api.requests().into_iter().filter(|r| !r.starts_with("GET")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_kafka_cannot_do_to_a_topic_or_user_is_refused_with_nothing_applied_and_prune_deletes_only_homelabs() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "seed-2023.yaml");
    up_ok(&lab, &yaml, &upstream).await;
    let topic = "    - {name: events, partitions: 3, replicas: 3, config: {retention.ms: 604800000}}\n";
    assert!(yaml.contains(topic));
    // Refused by validation (no cluster needed): more replicas than brokers, a TLS user
    // name Kafka cannot carry.
    let long = "a-very-long-service-account-name-that-is-longer-than-sixty-four-chars";
    for (bad, why) in [
        (
            yaml.replacen(topic, "    - {name: events, partitions: 3, replicas: 4}\n", 1),
            "topic `events` asks for 4 replicas but there are only 3 brokers".to_owned(),
        ),
        (
            yaml.replacen(
                "  users:\n",
                &format!("  users:\n    - {{name: {long}, authentication: tls, listener: tls}}\n"),
                1,
            ),
            format!("`{long}`"),
        ),
    ] {
        let v = homelab::config::validate_bytes(
            bad.as_bytes(),
            "lab.yaml",
            &homelab::catalog::Catalog::embedded().unwrap(),
        );
        let text = v.render();
        assert!(v.cluster.is_none() && text.contains(&why) && text.contains("error"), "{text}");
    }
    // Refused against what runs, before anything of the run is applied.
    for (edit, why) in [
        (
            "    - {name: events, partitions: 2, replicas: 3, config: {retention.ms: 604800000}}\n",
            "Kafka cannot take partitions away (keep 3 or more)",
        ),
        (
            "    - {name: events, partitions: 3, replicas: 2, config: {retention.ms: 604800000}}\n",
            "it has 3 replicas, the file says 2",
        ),
        ("    - {name: events, topicName: Events.v2, partitions: 3, replicas: 3}\n", "a topic cannot be renamed"),
    ] {
        lab.api.clear_log();
        let (r, out) = up_with(&lab, &yaml.replacen(topic, edit, 1), &upstream, RunOptions::fast()).await;
        let e = format!("{:#}", r.expect_err(edit));
        assert!(e.contains(why) && e.contains("(nothing was applied)"), "{e}\n{out}");
        assert_eq!(api_writes(&lab), Vec::<String>::new(), "{edit}");
        let t = lab.api.object(G, "kafkatopics", "kafka", "events").unwrap();
        assert_eq!((t["spec"]["partitions"].clone(), t["spec"]["replicas"].clone()), (json!(3), json!(3)));
    }
    // A topic someone else made (no homelab label) and a second homelab topic.
    let mut foreign = lab.api.object(G, "kafkatopics", "kafka", "events").unwrap();
    foreign["metadata"] =
        json!({"name": "theirs", "namespace": "kafka", "labels": {"strimzi.io/cluster": "my-cluster"}});
    foreign.as_object_mut().unwrap().remove("status");
    lab.api.state().put(G, "kafkatopics", "kafka", foreign.clone());
    // One with homelab's label that homelab never applied (someone copied the label).
    let mut copied = foreign;
    copied["metadata"] = json!({"name": "copied", "namespace": "kafka", "labels": {"strimzi.io/cluster": "my-cluster", "app.kubernetes.io/managed-by": "homelab"}});
    lab.api.state().put(G, "kafkatopics", "kafka", copied);
    let two = yaml.replacen(topic, &format!("{topic}    - {{name: audit, partitions: 1, replicas: 3}}\n"), 1);
    up_ok(&lab, &two, &upstream).await;
    assert!(lab.api.object(G, "kafkatopics", "kafka", "audit").is_some());
    // Taken out of the file: reported and kept.
    let (r, out) = up_ok(&lab, &yaml, &upstream).await;
    assert!(out.contains("KafkaTopic audit is no longer in the file; kept"), "{out}");
    assert!(
        out.contains(
            "`homelab up --prune` would delete KafkaTopic audit: deleting it deletes topic `audit` and all its messages"
        ),
        "{out}"
    );
    assert!(
        !out.contains("theirs") && !out.contains("copied"),
        "a topic homelab did not make is not its business:\n{out}"
    );
    assert!(lab.api.object(G, "kafkatopics", "kafka", "audit").is_some());
    assert_eq!(r.changes, 0);
    // The plan of `--prune` names it; the run deletes it, and only it.
    let (r, out) =
        up_with(&lab, &yaml, &upstream, RunOptions { dry_run: true, prune: true, ..RunOptions::fast() }).await;
    r.unwrap();
    assert!(out.contains("delete KafkaTopic audit: deleting it deletes topic `audit`"), "{out}");
    assert!(lab.api.object(G, "kafkatopics", "kafka", "audit").is_some(), "a plan deletes nothing");
    let (r, out) = up_with(&lab, &yaml, &upstream, RunOptions { prune: true, ..RunOptions::fast() }).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(lab.api.object(G, "kafkatopics", "kafka", "audit").is_none());
    assert!(lab.api.object(G, "kafkatopics", "kafka", "theirs").is_some());
    assert!(lab.api.object(G, "kafkatopics", "kafka", "copied").is_some(), "homelab's field manager never applied it");
    assert!(lab.api.object(G, "kafkatopics", "kafka", "events").is_some());
    let deletes: Vec<String> = lab.api.requests().into_iter().filter(|r| r.starts_with("DELETE")).collect();
    assert_eq!(deletes, ["DELETE /apis/kafka.strimzi.io/v1beta2/namespaces/kafka/kafkatopics/audit"]);
    // The Topic Operator deleted the topic in Kafka (its data), and only that one.
    for _ in 0..100 {
        if !lab.strimzi_apps.deleted_topics.lock().unwrap().is_empty() {
            break;
        }
        lab.api.object(G, "kafkatopics", "kafka", "events"); // a read runs the operators
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(*lab.strimzi_apps.deleted_topics.lock().unwrap(), ["kafka/my-cluster/audit"]);
    // Let go with `strimzi.io/managed: "false"`: the KafkaTopic stays Unmanaged, the topic stays.
    let mut t = lab.api.object(G, "kafkatopics", "kafka", "theirs").unwrap();
    t["metadata"]["annotations"] = json!({"strimzi.io/managed": "false"});
    lab.api.state().put(G, "kafkatopics", "kafka", t);
    let (r, _) = up_ok(&lab, &yaml, &upstream).await;
    assert_eq!(r.changes, 0);
    let t = lab.api.object(G, "kafkatopics", "kafka", "theirs").unwrap();
    assert_eq!(t["status"]["conditions"][0]["type"], "Unmanaged", "{t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_current_example_gets_the_same_in_v1() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    // Plus a user with a client certificate (mutual TLS) on a TLS listener of its own (a
    // listener has one authentication).
    let yaml = example(&lab, "current-2026.yaml")
        .replacen(
            "      - {name: external, port: 9094, type: nodeport, tls: false}\n",
            "      - {name: external, port: 9094, type: nodeport, tls: false}\n      - {name: mtls, port: 9095, type: internal, tls: true}\n",
            1,
        )
        .replacen("    - name: bridge\n", "    - {name: metrics, authentication: tls, listener: mtls}\n    - name: bridge\n", 1);
    assert!(yaml.contains("listener: mtls") && yaml.contains("name: mtls"));
    up_ok(&lab, &yaml, &upstream).await;
    apps_converge(&lab, "v1");
    let s = lab.api.object("", "secrets", "kafka", "metrics").unwrap();
    for key in ["ca.crt", "user.crt", "user.key", "user.p12", "user.password"] {
        assert!(s["data"][key].is_string(), "{key} in {s}");
    }
    let u = lab.api.object(G, "kafkausers", "kafka", "metrics").unwrap();
    assert_eq!(u["status"]["username"], "CN=metrics");
    let cx = ctx(&lab, &yaml, &upstream);
    let dir = lab.lab.path("connect");
    let c = homelab::ops::connect::kafka_of(&cx, Some("metrics"), false, Some(&dir)).await.unwrap();
    let props = parse_properties(&c.properties_text());
    assert_eq!(props["security.protocol"], "SSL");
    assert_eq!(props["ssl.keystore.type"], "PEM");
    let pem = std::fs::read_to_string(&props["ssl.keystore.location"]).unwrap();
    assert!(pem.contains("PRIVATE KEY-----") && pem.contains("CERTIFICATE-----"), "{pem}");
    assert_private(std::path::Path::new(&props["ssl.keystore.location"]));
    assert!(!c.properties_text().contains("PRIVATE KEY"), "the key was printed");
    database_converges(&lab, "1.30.0", "cnpg.io/instanceRole");
    let svc = lab.api.object("", "services", "kafka", "bridge-bridge-service").unwrap();
    let ports: Vec<&str> = svc["spec"]["ports"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(ports, ["rest-api", "rest-api-mgmt"], "Strimzi 1.0+ adds the management port");
    let (r2, out2) = up_ok(&lab, &yaml, &upstream).await;
    assert_eq!(r2.changes, 0, "{out2}");
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_users_to_a_running_kafka_says_in_the_plan_that_the_brokers_roll() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let full = example(&lab, "seed-2023.yaml");
    up_ok(&lab, &support::without_kafka_apps(&full), &upstream).await;
    let rolls_before = lab.strimzi.rolls.lock().unwrap().len();
    let (r, plan) = up_with(&lab, &full, &upstream, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    r.unwrap();
    let says = "authentication on listener tls none → scram-sha-512; authentication on listener external none → scram-sha-512; authorization none → simple: Strimzi rolls the brokers one at a time";
    assert!(plan.contains(says), "{plan}");
    let (_, out) = up_ok(&lab, &full, &upstream).await;
    assert!(out.contains(says), "{out}");
    let rolled: Vec<String> = lab.strimzi.rolls.lock().unwrap()[rolls_before..].to_vec();
    assert_eq!(rolled.len(), 3, "each broker once: {rolled:?}");
    apps_converge(&lab, "v1beta2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_applied_while_the_webhook_cannot_be_called_still_converges() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "seed-2023.yaml");
    // The operator is Available and its CA is in place, yet the API server's calls to the
    // webhook are refused a few times (its Service or the CNI changing).
    lab.api.faults(|f| f.webhook_refusals = 4);
    let (r, out) = up_ok(&lab, &yaml, &upstream).await;
    assert!(r.changes > 0);
    assert!(
        out.contains("the API server to accept the Cluster (CloudNativePG's webhook answering)")
            && out.contains("failed calling webhook \"mcluster.cnpg.io\""),
        "{out}"
    );
    let c = lab.api.object("postgresql.cnpg.io", "clusters", "databases", "shared-pg").unwrap();
    assert_eq!(c["status"]["phase"], "Cluster in healthy state");
    assert_eq!(lab.api.state().faults.webhook_refusals, 0, "every refusal was met and retried");
    // Before the operator's CA is there, the API server itself refuses a Cluster.
    let lab2 = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml2 = example(&lab2, "seed-2023.yaml");
    up_ok(&lab2, &support::without_section(&yaml2, "database:"), &upstream).await;
    let install = homelab::render::cnpg::install_objects(
        homelab::catalog::Catalog::embedded().unwrap().cnpg("v1.22.5").unwrap(),
        &[(
            "releases/cnpg-1.22.5.yaml".to_owned(),
            std::fs::read_to_string(upstream.join("cloudnative-pg/v1.22.5/releases/cnpg-1.22.5.yaml")).unwrap(),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let client = lab2
        .ctx(&yaml2, Ui::capture(OutputFormat::Text).0, RunOptions::fast(), lab_source(&lab2, &upstream))
        .unwrap()
        .kube()
        .await
        .unwrap();
    let a = homelab::kube::apply::Applier::new(
        client,
        Ui::capture(OutputFormat::Text).0,
        homelab::foundation::phase_id::PhaseId::Database,
        Default::default(),
    );
    a.apply(&install).await.unwrap();
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "databases"}});
    a.apply(std::slice::from_mut(&mut ns)).await.unwrap();
    let cluster = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "early", "namespace": "databases"},
        "spec": {"instances": 1, "storage": {"size": "1Gi"}}});
    let e = format!("{:#}", a.apply(&[cluster]).await.unwrap_err());
    assert!(
        e.contains("failed calling webhook \"mcluster.cnpg.io\": failed to call webhook: Post \"https://cnpg-webhook-service.cnpg-system.svc:443/mutate-postgresql-cnpg-io-v1-cluster?timeout=10s\""),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_postgresql_cannot_do_is_refused_with_nothing_applied_and_prune_deletes_only_homelabs_database() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = example(&lab, "seed-2023.yaml");
    up_ok(&lab, &yaml, &upstream).await;
    for (edit, why) in [
        (
            yaml.replacen(
                "storage: {size: 10Gi, class: rook-ceph-block}",
                "storage: {size: 5Gi, class: rook-ceph-block}",
                1,
            ),
            "its storage is 10Gi, the file says 5Gi; a volume cannot shrink",
        ),
        (
            yaml.replacen("  walStorage: {size: 2Gi, class: rook-ceph-block}\n", "", 1),
            "CloudNativePG cannot remove a WAL volume",
        ),
        (
            yaml.replacen(
                "walStorage: {size: 2Gi, class: rook-ceph-block}",
                "walStorage: {size: 1Gi, class: rook-ceph-block}",
                1,
            ),
            "its WAL volume is 2Gi, the file says 1Gi",
        ),
    ] {
        assert_ne!(edit, yaml);
        lab.api.clear_log();
        let (r, out) = up_with(&lab, &edit, &upstream, RunOptions::fast()).await;
        let e = format!("{:#}", r.expect_err(why));
        assert!(e.contains(why) && e.contains("(nothing was applied)"), "{e}\n{out}");
        assert_eq!(api_writes(&lab), Vec::<String>::new(), "{why}");
    }
    // Growing the volume is carried to every PVC.
    let (_, out) = up_ok(
        &lab,
        &yaml.replacen(
            "size: 10Gi, class: rook-ceph-block}\n  walStorage",
            "size: 20Gi, class: rook-ceph-block}\n  walStorage",
            1,
        ),
        &upstream,
    )
    .await;
    assert!(
        out.contains("apply PostgreSQL cluster shared-pg (3 instances, 20Gi each + 2Gi WAL): 0 created, 1 changed"),
        "{out}"
    );
    let pvc = lab.api.object("", "persistentvolumeclaims", "databases", "shared-pg-2").unwrap();
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "20Gi");
    // A Cluster someone else made is not homelab's; the file's own one taken out is kept
    // and reported, and deleted only with --prune.
    let grown = yaml.replacen(
        "size: 10Gi, class: rook-ceph-block}\n  walStorage",
        "size: 20Gi, class: rook-ceph-block}\n  walStorage",
        1,
    );
    let theirs = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "theirs", "namespace": "databases"},
        "spec": {"instances": 1, "storage": {"size": "1Gi", "storageClass": "rook-ceph-block"}}});
    lab.api.state().put("postgresql.cnpg.io", "clusters", "databases", theirs);
    let renamed = grown.replacen("  name: shared-pg\n", "  name: orders-pg\n", 1);
    let (r, out) = up_with(&lab, &renamed, &upstream, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    r.unwrap();
    assert!(out.contains("`homelab up --prune` would delete PostgreSQL cluster databases/shared-pg: deleting it deletes its 3 volumes of 20Gi, 60 GiB in all"), "{out}");
    assert!(!out.contains("theirs"), "{out}");
    let (r, out) = up_with(&lab, &renamed, &upstream, RunOptions { prune: true, ..RunOptions::fast() }).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(lab.api.object("postgresql.cnpg.io", "clusters", "databases", "shared-pg").is_none());
    assert!(lab.api.object("postgresql.cnpg.io", "clusters", "databases", "theirs").is_some());
    assert!(lab.api.object("postgresql.cnpg.io", "clusters", "databases", "orders-pg").is_some());
}

#[test]
fn a_database_on_an_existing_cluster_uses_its_default_class_and_one_instance_is_warned_about() {
    let text = std::fs::read_to_string(format!("{}/examples/existing-kind.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap()
        + "database: {name: pg, storage: {size: 1Gi}}\n";
    let v =
        homelab::config::validate_bytes(text.as_bytes(), "kind.yaml", &homelab::catalog::Catalog::embedded().unwrap());
    let report = v.render();
    let c = v.cluster.unwrap_or_else(|| panic!("{report}"));
    assert!(
        report.contains("database `pg` has one instance: its PodDisruptionBudget blocks draining its node"),
        "{report}"
    );
    let d = c.database.unwrap();
    // The newest pinned release on a cluster whose version the file does not say.
    assert_eq!(d.release.version, "v1.30.0");
    let cluster = homelab::render::cnpg::cluster(&d);
    assert_eq!(cluster["spec"]["storage"], json!({"size": "1Gi"}), "no class: the cluster's default StorageClass");
    assert_eq!(cluster["spec"]["imageName"], "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie");
    assert_eq!(cluster["metadata"]["namespace"], "databases");
}
