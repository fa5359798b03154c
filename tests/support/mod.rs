//! Shared test support.

#![allow(dead_code)]

pub mod crash;
pub mod mirror;
pub mod sshd;
pub mod subproc;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `../shared/<sub>` beside the checkout, or None with a printed notice when it is absent
/// (CI sets HOMELAB_REQUIRE_ALL, which turns the skip into a failure).
pub fn shared(sub: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared").join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        assert!(
            std::env::var_os("HOMELAB_REQUIRE_ALL").is_none(),
            "../shared/{sub} is missing but HOMELAB_REQUIRE_ALL is set"
        );
        eprintln!("notice: ../shared/{sub} is absent; skipping the tests that need it");
        None
    }
}

/// An example file of `examples/` (its `machines:` section onwards), with the lab's MAAS.
pub fn example(lab: &homelab::sim::lab::FullLab, name: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = text.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    lab.lab.cluster_yaml(&body)
}

/// `yaml` without the top-level section that starts with the line `header` (up to the next
/// top-level key or comment).
pub fn without_section(yaml: &str, header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in yaml.lines() {
        if l == header {
            skipping = true;
            continue;
        }
        if skipping && (l.starts_with(' ') || l.is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// An example's text without what applications use on its Kafka (topics, users, bridge):
/// the Kafka as the seed had it.
pub fn without_kafka_apps(yaml: &str) -> String {
    let Some(start) = yaml.find("  # What applications use.") else { return yaml.to_owned() };
    let rest = &yaml[start..];
    let end = rest.find("\n").map(|i| i + 1).unwrap_or(rest.len());
    let stop = rest[end..]
        .match_indices('\n')
        .map(|(i, _)| end + i + 1)
        .find(|&i| rest[i..].chars().next().is_some_and(|c| !c.is_whitespace()))
        .unwrap_or(rest.len());
    format!("{}{}", &yaml[..start], &rest[stop..])
}

/// Samples the simulated Ceph while a flow runs: no PG may ever stop serving I/O for longer
/// than a peering.
pub fn watch_readable(lab: &homelab::sim::lab::FullLab) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let ceph = lab.rook.ceph.clone();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let mut bad = Vec::new();
        while !s.load(Ordering::Relaxed) {
            {
                let mut c = ceph.lock().unwrap();
                c.tick(std::time::Instant::now());
                // Peering after a map change (an OSD booting) is how real Ceph serves too: a
                // PG pauses for it and serves again. Anything else inactive has lost data.
                for p in c.pgs() {
                    if !p.state.starts_with("active") && !p.state.ends_with("peering") {
                        bad.push(format!("{} {}", p.pgid, p.state));
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        bad
    });
    (stop, task)
}

/// The seed file moved to MicroK8s `channel`, Rook `rook` and the Ceph image tag `ceph`
/// (what a user edits before `homelab upgrade`).
pub fn upgrade_target(seed: &str, channel: &str, rook: &str, ceph: &str) -> String {
    seed.replace("channel: 1.26/stable", &format!("channel: {channel}"))
        .replace("  version: v1.10.10\n", &format!("  version: {rook}\n  cephImage: quay.io/ceph/ceph:{ceph}\n"))
}

/// The seed file's Kafka moved to Strimzi `strimzi` with Kafka `kafka` on KRaft: dedicated
/// controllers, the brokers in the node pool `kafka` (the migration keeps them there), no
/// ZooKeeper and no protocol pin (what a user edits before `homelab upgrade`).
pub fn kraft_target(seed: &str, strimzi: &str, kafka: &str) -> String {
    let out = seed
        .replace("strimziVersion: 0.33.1", &format!("strimziVersion: {strimzi}"))
        .replace("    version: 3.3.2\n", &format!("    version: {kafka}\n"))
        .replace("    metadata: zookeeper\n", "    metadata: kraft\n    brokerPool: kafka\n")
        .replace("      inter.broker.protocol.version: \"3.3\"\n", "")
        .replace(
            "    zookeeper: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block, deleteClaim: true}}\n",
            "    controllers: {replicas: 3, storage: {size: 20Gi, class: rook-ceph-block, deleteClaim: true}}\n",
        );
    assert!(out.contains("controllers:") && out.contains(&format!("strimziVersion: {strimzi}")), "the seed changed");
    out
}

/// The lab's manifest source: `upstream` (../shared/upstream) as the air-gapped directory.
pub fn lab_source(
    lab: &homelab::sim::lab::FullLab,
    upstream: &std::path::Path,
) -> homelab::catalog::bundle::ManifestSource {
    homelab::catalog::bundle::ManifestSource {
        cache_dir: lab.lab.path("cache"),
        mirror: None,
        local_dir: Some(upstream.to_path_buf()),
    }
}

/// The world of a day-2 command on the lab: its hosts, its state directory, `upstream`.
pub fn lab_world<'a>(
    lab: &'a homelab::sim::lab::FullLab,
    upstream: &'a std::path::Path,
) -> impl Fn(&homelab::config::Cluster) -> anyhow::Result<homelab::engine::context::World> + 'a {
    move |c| {
        let mut env = lab.lab.env(lab.hosts.clone(), &lab.lab.path("state"))?;
        env.manifests = lab_source(lab, upstream);
        if c.maas.is_none() {
            // As the real world: a cluster of pre-installed machines talks to no MAAS.
            env.maas = None;
        }
        Ok(env)
    }
}

/// `up` of `yaml` on the lab with `upstream`'s files: its report and everything it printed.
pub async fn up_lab(
    lab: &homelab::sim::lab::FullLab,
    yaml: &str,
    upstream: &std::path::Path,
) -> (homelab::engine::runner::RunReport, String) {
    use homelab::foundation::output::{OutputFormat, Ui};
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(yaml, ui, homelab::engine::context::RunOptions::fast(), lab_source(lab, upstream)).unwrap();
    let r = homelab::engine::up(cx).await.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    (r, cap.all())
}

/// The lab's Kafka `kafka/my-cluster` reports Ready.
pub fn kafka_ready(lab: &homelab::sim::lab::FullLab) -> bool {
    lab.api
        .object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster")
        .is_some_and(|k| k["status"]["conditions"][0]["type"] == "Ready")
}

/// The simulated Strimzi operator's history of the seed's Kafka climbing the whole ladder
/// (every operator release, every Kafka version, once and in order), up to and including
/// the Kafka step to `through`.
pub fn strimzi_history(through: &str) -> Vec<String> {
    let all = [
        "strimzi 0.33.1 → 0.35.1",
        "kafka 3.3.2 → 3.4.0",
        "strimzi 0.35.1 → 0.37.0",
        "kafka 3.4.0 → 3.5.1",
        "strimzi 0.37.0 → 0.39.0",
        "kafka 3.5.1 → 3.6.1",
        "strimzi 0.39.0 → 0.42.0",
        "kafka 3.6.1 → 3.7.1",
        "strimzi 0.42.0 → 0.44.0",
        "kafka 3.7.1 → 3.8.0",
        "strimzi 0.44.0 → 0.45.2",
        "kafka 3.8.0 → 3.9.1",
        "strimzi 0.45.2 → 0.47.0",
        "kafka 3.9.1 → 4.0.0",
        "strimzi 0.47.0 → 0.50.1",
        "kafka 4.0.0 → 4.1.1",
        "strimzi 0.50.1 → 1.0.1",
        "kafka 4.1.1 → 4.2.0",
        "strimzi 1.0.1 → 1.2.0",
        "kafka 4.2.0 → 4.3.1",
    ];
    let end = all.iter().position(|h| h.starts_with("kafka") && h.ends_with(&format!("→ {through}")));
    let end = end.unwrap_or_else(|| panic!("no Kafka step to {through} on the ladder"));
    all[..=end].iter().map(|h| format!("kafka/my-cluster: {h}")).collect()
}

/// The simulated operator's `kafkaMetadataState` transitions of one whole ZooKeeper → KRaft
/// migration of the seed's Kafka.
pub const MIGRATION_LOG: [&str; 5] = [
    "kafka/my-cluster: ZooKeeper → KRaftMigration",
    "kafka/my-cluster: KRaftMigration → KRaftDualWriting",
    "kafka/my-cluster: KRaftDualWriting → KRaftPostMigration",
    "kafka/my-cluster: KRaftPostMigration → PreKRaft",
    "kafka/my-cluster: PreKRaft → KRaft",
];

/// The (phase, target, action) of every JSON event of one kind (`step`, `planned`), sorted
/// (machines run in parallel).
pub fn actions(cap: &homelab::foundation::output::Captured, event: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = cap
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == event)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("phase"), s("target"), s("action"))
        })
        .collect();
    v.sort();
    v
}

/// The PCs of examples/preinstalled-3.yaml: name and address.
pub const PREINSTALLED_PCS: [(&str, &str); 3] =
    [("pc1", "192.168.1.11"), ("pc2", "192.168.1.12"), ("pc3", "192.168.1.13")];

/// A lab with no MAAS machine and the example's three PCs installed: pc1 and pc2 on 500 GiB
/// disks (installer layout: 100 GiB root, the rest free in ubuntu-vg), pc3 with a blank
/// second disk /dev/sdb.
pub async fn preinstalled_lab() -> homelab::sim::lab::FullLab {
    use homelab::sim::hosts::Preinstalled;
    use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions};
    let lab =
        FullLab::start(FullLabOptions { lab: LabOptions { machines: 0, ..Default::default() }, ..Default::default() })
            .await
            .unwrap();
    for (name, ip) in PREINSTALLED_PCS {
        let mut p = Preinstalled::new(name, ip, 500);
        if name == "pc3" {
            p.system.disks.push(homelab::sim::hosts::system::Disk {
                path: "/dev/sdb".into(),
                bytes: 1 << 40,
                signature: String::new(),
            });
        }
        lab.hosts.add_preinstalled(p);
    }
    lab
}

/// examples/preinstalled-3.yaml with the lab's key.
pub fn preinstalled_example(lab: &homelab::sim::lab::FullLab) -> String {
    let text = std::fs::read_to_string(format!("{}/examples/preinstalled-3.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.replace("~/.ssh/id_ed25519", &lab.lab.path("id_ed25519").display().to_string())
}
