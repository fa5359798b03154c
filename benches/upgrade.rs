//! Benchmark of `homelab upgrade` against the simulated lab: a converged seed-like cluster
//! (MicroK8s 1.26, Rook v1.10.10, Ceph 17, Strimzi 0.33.1, real upstream files of every Rook
//! release of the ladder) climbs to MicroK8s 1.31, Rook v1.20.6 and Ceph 19.2.3: 16 hops.
//!
//! Every simulated wait is set to about nothing (snap restart, join, Deployment rollout, CRD
//! establishment, each operator step: 1 ms), so what a hop takes here is homelab's own time:
//! its reads before each hop and each node, its applies, its polls, its SSH commands. On real
//! hardware each hop adds the waits of the real systems on top (the budgets the plan prints).
//! Reported per hop and in total, at 3 and 50 machines.
//!
//! `cargo bench --bench upgrade` (`HOMELAB_UPGRADE_SIZES=3,50` to pick the sizes).

use homelab::catalog::Catalog;
use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::{RunOptions, World};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::upgrade::{UpgradeRequest, upgrade};
use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions};
use homelab::sim::maas::SimMaasConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(1);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let upstream = root.join("../shared/upstream");
    if !upstream.is_dir() {
        println!("notice: ../shared/upstream is absent; nothing to benchmark");
        return Ok(());
    }
    let sizes: Vec<usize> = std::env::var("HOMELAB_UPGRADE_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![3, 50]);
    let mut table: BTreeMap<usize, Vec<(String, f64, u32)>> = BTreeMap::new();
    let mut totals = BTreeMap::new();
    for &n in &sizes {
        let mut fo = FullLabOptions {
            lab: LabOptions {
                machines: n,
                status: Status::Ready,
                maas: SimMaasConfig { deploy_time: Duration::from_millis(50), ..Default::default() },
                seed_names: false,
            },
            operator_step: TICK,
            ..Default::default()
        };
        fo.hosts.install_time = TICK;
        fo.hosts.join_time = TICK;
        fo.api.deployment_ready = TICK;
        fo.api.crd_establish = TICK;
        fo.api.discovery_lag = TICK;
        let lab = FullLab::start(fo).await?;
        let body = format!(
            "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable, addons: [dns]}}\nrook:\n  version: v1.10.10\n  pools:\n    - {{name: replicapool, replicas: 2, storageClass: {{name: rook-ceph-block, default: true}}}}\nkafka:\n  strimziVersion: 0.33.1\n  cluster:\n    name: events\n    replicas: 3\n    metadata: zookeeper\n    storage: {{size: 100Gi, class: rook-ceph-block}}\n    zookeeper: {{replicas: 3, storage: {{size: 10Gi, class: rook-ceph-block}}}}\n",
            lab.lab.machines_yaml(n, 3)
        );
        let yaml = lab.lab.cluster_yaml(&body);
        let file = lab.lab.path("cluster.yaml");
        let source =
            ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(upstream.clone()) };
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let cx = lab.ctx(&yaml, ui, RunOptions::fast(), source.clone())?;
        homelab::engine::up(cx).await.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
        let goal = yaml
            .replace("channel: 1.26/stable", "channel: 1.31/stable")
            .replace("  version: v1.10.10\n", "  version: v1.20.6\n  cephImage: quay.io/ceph/ceph:v19.2.3\n");
        std::fs::write(&file, &goal)?;
        let state = lab.lab.path("state");
        let make = |_: &homelab::config::Cluster| -> anyhow::Result<World> {
            let mut env = lab.lab.env(lab.hosts.clone(), &state)?;
            env.manifests = source.clone();
            Ok(env)
        };
        let cat = Catalog::embedded()?;
        // Warm the download cache, as a second run on a workstation would have it.
        let (ui, _) = Ui::capture(OutputFormat::Text);
        let plan = UpgradeRequest { plan_only: true, ..Default::default() };
        upgrade(&file, &plan, &cat, &ui, RunOptions::fast(), &make).await?;
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let t = Instant::now();
        let r =
            upgrade(&file, &UpgradeRequest { yes: true, ..Default::default() }, &cat, &ui, RunOptions::fast(), &make)
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
        totals.insert(n, t.elapsed().as_secs_f64());
        table.insert(n, r.done.iter().map(|h| (h.hop.clone(), h.elapsed_s, h.changes)).collect());
    }
    print!("{:<16}", "hop");
    for n in &sizes {
        print!(" {:>10} {:>8}", format!("{n} machines"), "changes");
    }
    println!();
    let hops: Vec<String> = table.values().next().map(|v| v.iter().map(|h| h.0.clone()).collect()).unwrap_or_default();
    for (i, hop) in hops.iter().enumerate() {
        print!("{hop:<16}");
        for n in &sizes {
            let (_, s, c) = &table[n][i];
            print!(" {:>9.2}s {:>8}", s, c);
        }
        println!();
    }
    print!("{:<16}", "total");
    for n in &sizes {
        print!(" {:>9.2}s {:>8}", totals[n], "");
    }
    println!();
    Ok(())
}
