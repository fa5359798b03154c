//! Benchmark of `homelab add-node` against the simulated lab: a converged 3-machine seed
//! cluster (Rook v1.10.10, Strimzi 0.33.1, real upstream files) grows by one Ready machine.
//! MAAS deploys in D; snap install, join and the Rook operator steps take realistic relative
//! times. Reported: the wall time, wall − D (the goal: under 60 s on this machine),
//! wall minus the whole chain of waits the simulated systems impose (the tool's own
//! overhead), and the time of each step next to its budget on real hardware.
//!
//! `cargo bench --bench add_node` (`HOMELAB_BENCH_D=30` to change D, default 10 s).

use homelab::catalog::Catalog;
use homelab::catalog::bundle::ManifestSource;
use homelab::config::model::Role;
use homelab::engine::context::{RunOptions, World};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::add_node::{AddNodeRequest, BUDGET, add_node};
use homelab::sim::lab::{FullLab, FullLabOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let upstream = root.join("../shared/upstream");
    if !upstream.is_dir() {
        println!("notice: ../shared/upstream is absent; nothing to benchmark");
        return Ok(());
    }
    let d = Duration::from_secs_f64(std::env::var("HOMELAB_BENCH_D").ok().and_then(|s| s.parse().ok()).unwrap_or(10.0));
    let install = Duration::from_millis(1500);
    let join = Duration::from_millis(300);
    let step = Duration::from_millis(600);
    let mut fo = FullLabOptions { operator_step: step, ..Default::default() };
    fo.lab.maas.deploy_time = d;
    fo.hosts.install_time = install;
    fo.hosts.join_time = join;
    let lab = FullLab::start(fo).await?;
    let seed = std::fs::read_to_string(root.join("examples/seed-2023.yaml"))?;
    let body: String = seed.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    let yaml = lab.lab.cluster_yaml(&body);
    let file = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml)?;
    let source = ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(upstream.clone()) };

    // The existing cluster.
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), source.clone())?;
    homelab::engine::up(cx).await.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;

    let (_name, mac, _) = lab.lab.add_machine(3, Status::Ready);
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded()?;
    let req = AddNodeRequest { mac: mac.clone(), hostname: None, role: Role::Worker, ..Default::default() };
    let state = lab.lab.path("state");
    let hosts = lab.hosts.clone();
    let make = |_: &homelab::config::Cluster| -> anyhow::Result<World> {
        let mut env = lab.lab.env(hosts.clone(), &state)?;
        env.manifests = source.clone();
        Ok(env)
    };
    let t = Instant::now();
    let r = add_node(&file, &req, &cat, &ui, RunOptions::fast(), &make)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", cap.all()))?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(r.inserted && lab.hosts.nodes().len() == 4, "add-node did not grow the cluster");

    // The waits the systems impose on this one machine: deploy, install, a worker join (a
    // quarter of a control-plane join in the simulator), and the Rook operator reconciling
    // the new CephCluster generation (the simulated operator walks mons, mgr and OSDs again:
    // three steps) until the new OSD runs.
    let imposed = d + install + join / 4 + step * 3;
    println!(
        "add-node of one Ready machine to the converged seed cluster (D = {:.1}s deploy, {:.1}s snap install, {:.3}s worker join, {:.1}s operator step)",
        d.as_secs_f64(),
        install.as_secs_f64(),
        join.as_secs_f64() / 4.0,
        step.as_secs_f64()
    );
    println!(
        "  wall {:.2}s   wall − D {:.2}s (goal < 60 s)   imposed waits {:.2}s   tool overhead {:.2}s",
        wall,
        wall - d.as_secs_f64(),
        imposed.as_secs_f64(),
        wall - imposed.as_secs_f64()
    );
    println!("  {:<11} {:>9} {:>16}", "step", "measured", "real-hw budget");
    for (p, secs) in &r.steps {
        let budget = BUDGET.iter().find(|b| b.0 == *p).map(|b| b.2).unwrap_or(0);
        println!("  {:<11} {:>8.2}s {:>15}s", p.name(), secs, budget);
    }
    println!("  {:<11} {:>8.2}s {:>15}s", "total", r.elapsed_s, 900);
    Ok(())
}
