//! `homelab diagnose` (issue 35) through the binary against the simulated lab: on a healthy
//! lab every layer is in the archive; on a broken one (a dead host, the API server gone) the
//! archive is still written and its manifest lists what failed; and in both, not one secret
//! value the lab knows is inside — even when an operator's log prints a password and a
//! `sasl.jaas.config` line.

mod support;

use homelab::sim::lab::FullLabOptions;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use support::subproc::World;

/// The archive's files by their path under `<cluster>-diagnose/`.
fn unpack(file: &Path) -> BTreeMap<String, String> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap());
    let mut ar = tar::Archive::new(gz);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let (top, rest) = path.split_once('/').unwrap();
        assert_eq!(top, "lab-diagnose", "{path}");
        assert_eq!(e.header().mode().unwrap() & 0o077, 0, "{path} is private");
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        out.insert(rest.to_owned(), text);
    }
    out
}

fn entries(files: &BTreeMap<String, String>) -> Vec<Value> {
    let m: Value = serde_json::from_str(&files["manifest.json"]).unwrap();
    m["entries"].as_array().unwrap().clone()
}

fn entry<'a>(entries: &'a [Value], path: &str) -> &'a Value {
    entries.iter().find(|e| e["path"] == path).unwrap_or_else(|| panic!("no entry {path}: {entries:#?}"))
}

fn no_secret(files: &BTreeMap<String, String>, secrets: &[String]) {
    for (path, text) in files {
        for s in secrets {
            assert!(!text.contains(s.as_str()), "{path} holds a secret value of {} bytes", s.len());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_bundles_every_layer_without_a_secret_and_lists_what_a_broken_lab_could_not_give() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let state = w.lab.lab.path("state-root");
    let dir = w.yaml.parent().unwrap().to_path_buf();
    let run = |args: &[&str]| {
        let mut c = w.homelab(args, &upstream);
        c.arg("-f").arg(&w.yaml);
        tokio::task::block_in_place(|| c.output().unwrap())
    };
    let o = run(&["up"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // An operator that prints secrets in its log, as a misconfigured one might.
    let secrets = support::subproc::lab_secrets(&w, &state);
    let db_password = w
        .lab
        .api
        .object("", "secrets", "databases", "shared-pg-app")
        .and_then(|s| s["data"]["password"].as_str().map(str::to_owned))
        .map(|b| {
            use base64::Engine as _;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        })
        .expect("the database's app Secret");
    w.lab.api.append_pod_log("kafka", "strimzi-cluster-operator", "2026-12-08 INFO reconciling Kafka my-cluster");
    w.lab.api.append_pod_log(
        "kafka",
        "strimzi-cluster-operator",
        &format!("debug: sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"app\" password=\"{db_password}\";"),
    );
    w.lab.api.append_pod_log(
        "rook-ceph",
        "rook-ceph-operator",
        &format!("op-cluster: connecting with password: {db_password}"),
    );

    // Healthy: every source answers.
    let healthy = dir.join("healthy.tar.gz");
    let o = run(&["diagnose", "--to", healthy.to_str().unwrap()]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}");
    let m = files_manifest(&healthy);
    assert!(out.contains("wrote ") && out.contains(" 0 not "), "{out}\n{m}");
    let files = unpack(&healthy);
    let es = entries(&files);
    for path in [
        "status.json",
        "maas/machines.json",
        "maas/events.json",
        "hosts/maas/snap-list.txt",
        "hosts/kvm4/microk8s-status.txt",
        "hosts/kvm5/journal-kubelite.txt",
        "kubernetes/nodes.json",
        "kubernetes/rook-ceph/cephclusters.json",
        "kubernetes/kafka/kafkas.json",
        "kubernetes/databases/postgresql-clusters.json",
        "logs/kafka/strimzi-cluster-operator.txt",
        "logs/rook-ceph/rook-ceph-operator.txt",
        "ceph/health-detail.json",
        "ceph/osd-tree.json",
        "ceph/crash-ls.json",
    ] {
        assert_eq!(entry(&es, path)["ok"], true, "{path}: {}", entry(&es, path));
        assert!(files.contains_key(path), "{path}");
    }
    assert!(files.keys().any(|k| k.starts_with("runs/") && k.ends_with("-up.log")), "{:?}", files.keys());
    assert!(files["hosts/maas/snap-list.txt"].contains("microk8s"));
    assert!(files["kubernetes/kafka/kafkas.json"].contains("\"Ready\""), "conditions are kept");
    assert!(!files.keys().any(|k| k.contains("secret")), "no Secret object: {:?}", files.keys());
    let log = &files["logs/kafka/strimzi-cluster-operator.txt"];
    assert!(log.contains("reconciling Kafka my-cluster") && log.contains("sasl.jaas.config=[redacted]"), "{log}");
    assert!(entry(&es, "logs/kafka/strimzi-cluster-operator.txt")["redacted"].as_u64().unwrap() >= 1);
    assert!(secrets.contains(&db_password));
    no_secret(&files, &secrets);

    // Broken: kvm5 is dead and the API server is gone.
    w.lab.hosts.power_off("kvm5");
    w.lab.lab.maas.power_off("kvm5");
    let kc = state.join("lab").join("kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap();
    let server = text.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_owned();
    std::fs::write(&kc, text.replace(&server, "https://127.0.0.1:9")).unwrap();
    let broken = dir.join("broken.tar.gz");
    let o = run(&["diagnose", "--to", broken.to_str().unwrap(), "--timeout", "10s", "-o", "json"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ev = events.iter().find(|e| e["event"] == "diagnose").unwrap_or_else(|| panic!("{out}")).clone();
    let files = unpack(&broken);
    let es = entries(&files);
    for path in ["hosts/kvm5/snap-list.txt", "kubernetes/"] {
        let e = entry(&es, path);
        assert_eq!(e["ok"], false, "{path}: {e}");
        assert!(e["error"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        assert!(ev["failed"].as_array().unwrap().iter().any(|f| f["path"] == path), "{ev}");
    }
    assert!(entry(&es, "kubernetes/")["error"].as_str().unwrap().contains("does not answer"), "{es:?}");
    for path in ["maas/machines.json", "hosts/maas/snap-list.txt", "hosts/kvm4/microk8s-status.txt"] {
        assert_eq!(entry(&es, path)["ok"], true, "{path}");
    }
    assert!(files["status.json"].contains("kvm5"), "the status still speaks of the dead PC");
    no_secret(&files, &secrets);
}

fn files_manifest(file: &Path) -> String {
    unpack(file).get("manifest.json").cloned().unwrap_or_default()
}
