//! Benchmark of the day-2 flows against the simulated lab at 3 and 50 machines: a converged
//! cluster (Rook v1.10.10 over the simulated Ceph with 40 GB in the data pool, Strimzi
//! 0.33.1, real upstream files), then `replace-node` of its last machine by a new Ready PC,
//! then `remove-node --dead` of another one. Reported per flow: the wall time, the simulated
//! data recovery (the time the simulated Ceph spent copying, which on real disks scales with
//! the data), the simulated MAAS time (the new PC's deploy), and what is left: homelab's own
//! overhead plus the fixed waits of the other simulated systems (snap install, join, operator
//! steps), listed too.
//!
//! `cargo bench --bench day2` (`HOMELAB_DAY2_SIZES=3,50` to pick the sizes).

use homelab::catalog::Catalog;
use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::{RunOptions, World};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::remove_node::{RemoveRequest, remove_node};
use homelab::ops::replace_node::{ReplaceRequest, replace_node};
use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions, machine_identity};
use homelab::sim::maas::SimMaasConfig;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEPLOY: Duration = Duration::from_secs(4);
const INSTALL: Duration = Duration::from_millis(1500);
const JOIN: Duration = Duration::from_millis(300);
const STEP: Duration = Duration::from_millis(600);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let upstream = root.join("../shared/upstream");
    if !upstream.is_dir() {
        println!("notice: ../shared/upstream is absent; nothing to benchmark");
        return Ok(());
    }
    let sizes: Vec<usize> = std::env::var("HOMELAB_DAY2_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![3, 50]);
    println!(
        "timings: MAAS deploy {:.1}s, snap install {:.1}s, join {:.1}s, operator step {:.1}s; Ceph: 40 GB at 20 GB/s",
        DEPLOY.as_secs_f64(),
        INSTALL.as_secs_f64(),
        JOIN.as_secs_f64(),
        STEP.as_secs_f64()
    );
    println!(
        "{:>8}  {:<22} {:>8} {:>10} {:>8} {:>12} {:>10}",
        "machines", "flow", "wall", "recovery", "MAAS", "wall−rec−MAAS", "other sims"
    );
    for n in sizes {
        let mut fo = FullLabOptions {
            lab: LabOptions {
                machines: n,
                status: Status::Ready,
                maas: SimMaasConfig { deploy_time: DEPLOY, ..Default::default() },
                seed_names: false,
            },
            operator_step: STEP,
            ..Default::default()
        };
        fo.hosts.install_time = INSTALL;
        fo.hosts.join_time = JOIN;
        fo.ceph.recovery_bytes_per_sec = 20e9;
        let lab = FullLab::start(fo).await?;
        let body = format!(
            "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable, addons: [dns]}}\nrook:\n  version: v1.10.10\n  pools:\n    - {{name: replicapool, replicas: 2, storageClass: {{name: rook-ceph-block, default: true}}}}\nkafka:\n  strimziVersion: 0.33.1\n  cluster:\n    name: events\n    replicas: 3\n    metadata: zookeeper\n    storage: {{size: 100Gi, class: rook-ceph-block}}\n    zookeeper: {{replicas: 3, storage: {{size: 10Gi, class: rook-ceph-block}}}}\n",
            lab.lab.machines_yaml(n, 3)
        );
        let yaml = lab.lab.cluster_yaml(&body);
        let file = lab.lab.path("cluster.yaml");
        std::fs::write(&file, &yaml)?;
        let source =
            ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(upstream.clone()) };
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let cx = lab.ctx(&yaml, ui, RunOptions::fast(), source.clone())?;
        homelab::engine::up(cx).await.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
        let state = lab.lab.path("state");
        let make = |_: &homelab::config::Cluster| -> anyhow::Result<World> {
            let mut env = lab.lab.env(lab.hosts.clone(), &state)?;
            env.manifests = source.clone();
            Ok(env)
        };
        let cat = Catalog::embedded()?;
        let (old, _, _) = machine_identity(n - 1, false);
        let worker = n > 3;

        // replace-node OLD NEW_MAC: deploy, install, join, OSD, then the removal.
        let (_, mac, _) = lab.lab.add_machine(n, Status::Ready);
        let rec0 = lab.rook.ceph().recovering_time;
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let rq = ReplaceRequest {
            old: old.clone(),
            mac,
            hostname: None,
            dead: false,
            release: true,
            erase: None,
            ..Default::default()
        };
        let t = Instant::now();
        replace_node(&file, &rq, &cat, &ui, RunOptions::fast(), &make)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
        let wall = t.elapsed();
        let rec = lab.rook.ceph().recovering_time - rec0;
        // Other simulated waits: snap install, the join, the operator reconciling the new
        // generation twice (OSD added; node dropped) and restarting.
        let other = INSTALL + if worker { JOIN / 4 } else { JOIN } + STEP * 6;
        row(n, "replace-node (live)", wall, rec, DEPLOY, other);

        // remove-node --dead of another machine.
        let (victim, _, _) = machine_identity(if worker { n - 2 } else { 2 }, false);
        let victim = if victim == old { machine_identity(1, false).0 } else { victim };
        lab.hosts.power_off(&victim);
        lab.lab.maas.power_off(&victim);
        let rec0 = lab.rook.ceph().recovering_time;
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let rq = RemoveRequest { host: victim, dead: true, release: true, erase: None, yes: true, replace_with: None };
        let t = Instant::now();
        remove_node(&file, &rq, &cat, &ui, RunOptions::fast(), &make)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
        let wall = t.elapsed();
        let rec = lab.rook.ceph().recovering_time - rec0;
        // Other simulated waits: a moved broker becoming Ready, the operator restarting.
        row(n, "remove-node --dead", wall, rec, Duration::ZERO, STEP * 4);
    }
    Ok(())
}

fn row(n: usize, flow: &str, wall: Duration, rec: Duration, maas: Duration, other: Duration) {
    let left = wall.as_secs_f64() - rec.as_secs_f64() - maas.as_secs_f64();
    println!(
        "{n:>8}  {flow:<22} {:>7.2}s {:>9.2}s {:>7.2}s {:>11.2}s {:>9.2}s",
        wall.as_secs_f64(),
        rec.as_secs_f64(),
        maas.as_secs_f64(),
        left,
        other.as_secs_f64()
    );
}
