//! Scale benchmark: the real `homelab up` binary against the simulated lab with 3, 50 and
//! 200 machines, with realistic *relative* timings (MAAS deploy D ≫ snap install > join >
//! operator steps), scaled down so the whole run takes minutes.
//!
//! Reported per size: wall time versus the critical path (the longest chain of waits the
//! systems impose, computed from the simulator's timings), the tool's overhead, peak memory
//! of the homelab process, MAAS requests and SSH round trips per machine, and the wall time
//! of a converged re-run.
//!
//! The API server serves TLS and charges what the real one charges, and SSH charges its
//! connects and round trips (`ApiCosts::measured`, `SshCosts::measured`; BENCHMARKS.md).
//!
//! Each size runs twice: every machine deployed by MAAS (`all-MAAS`), and half of them
//! pre-installed (`half pre`: the first ⌊n/2⌋ reached by SSH at their address, their Ceph volume
//! carved from the installer's volume group, the rest deployed by MAAS), the seed topology
//! grown to n machines.
//!
//! `cargo bench --bench scale` (reads ../shared/upstream; `HOMELAB_SCALE_SIZES=3,50` to pick,
//! `HOMELAB_SCALE_MIX=maas|half` for one of the two, `HOMELAB_BENCH_COSTS=free` for the
//! simulators without costs).

use homelab::maas::Status;
use homelab::sim::apiserver::ApiCosts;
use homelab::sim::hosts::SshCosts;
use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions};
use homelab::sim::maas::SimMaasConfig;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Timing {
    deploy: Duration,
    install: Duration,
    join: Duration,
    crd: Duration,
    lag: Duration,
    deployment: Duration,
    step: Duration,
}

const T: Timing = Timing {
    deploy: Duration::from_secs(8),
    install: Duration::from_millis(1500),
    join: Duration::from_millis(300),
    crd: Duration::from_millis(300),
    lag: Duration::from_millis(200),
    deployment: Duration::from_millis(800),
    step: Duration::from_millis(600),
};

/// The longest chain of waits the simulated systems impose on a fresh `up` of `n` machines
/// with 3 control planes: deploy, then install, then the joins one at a time (control planes
/// wait the full join, workers a quarter of it, as the simulated hosts do), then Rook (CRDs
/// established and served, operator Available, three operator steps), then Strimzi (CRDs,
/// operator Available, two steps).
fn critical_path(n: usize) -> Duration {
    let cps = n.min(3);
    let joins = T.join * (cps.saturating_sub(1) as u32) + (T.join / 4) * (n.saturating_sub(cps) as u32);
    let rook = T.crd + T.lag + T.deployment + T.step * 3;
    let strimzi = T.crd + T.lag + T.deployment + T.step * 2;
    T.deploy + T.install + joins + rook + strimzi
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn run(bin: &Path, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<(f64, u64, String)> {
    let mut c = Command::new(bin);
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let t = Instant::now();
    let child = c.spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while rx.try_recv().is_err() {
            if let Some(k) = peak_rss_kib(pid) {
                peak = peak.max(k);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output()?;
    let wall = t.elapsed().as_secs_f64();
    let _ = tx.send(());
    let peak = sampler.join().unwrap_or(0);
    anyhow::ensure!(out.status.success(), "homelab failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok((wall, peak, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// `machines 8.1s, hosts 0.2s, …` from the run_finished event of a JSON event stream.
fn phase_times(events: &str) -> String {
    let Some(last) = events
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v["event"] == "run_finished"))
    else {
        return "?".into();
    };
    let phases = last["phases"].as_array().cloned().unwrap_or_default();
    phases
        .iter()
        .map(|p| format!("{} {:.2}s", p["phase"].as_str().unwrap_or("?"), p["elapsed_s"].as_f64().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let upstream = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    if !upstream.is_dir() {
        println!("notice: ../shared/upstream is absent; nothing to benchmark");
        return Ok(());
    }
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/homelab-testlab");
    anyhow::ensure!(bin.exists(), "build the binary first: cargo build --release --example homelab-testlab");
    let sizes: Vec<usize> = std::env::var("HOMELAB_SCALE_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![3, 50, 200]);
    println!(
        "homelab up, fresh then converged, real binary against the simulated lab (D = {:.0}s deploy, {:.1}s snap install, {:.1}s join, {:.1}s operator step)",
        T.deploy.as_secs_f64(),
        T.install.as_secs_f64(),
        T.join.as_secs_f64(),
        T.step.as_secs_f64()
    );
    let costs = std::env::var("HOMELAB_BENCH_COSTS").as_deref() != Ok("free");
    println!(
        "{}",
        if costs {
            "costs: the API server over TLS charging ApiCosts::measured, SSH charging SshCosts::measured (HOMELAB_BENCH_COSTS=free to drop them)"
        } else {
            "costs: none (HOMELAB_BENCH_COSTS=free)"
        }
    );
    println!(
        "{:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>11}",
        "machines", "mix", "critical", "wall", "overhead", "ovh %", "peak RSS", "MAAS/mach", "SSH/mach", "converged"
    );
    let mixes: Vec<bool> = match std::env::var("HOMELAB_SCALE_MIX").as_deref() {
        Ok("maas") => vec![false],
        Ok("half") => vec![true],
        _ => vec![false, true],
    };
    for (n, half) in sizes.iter().flat_map(|n| mixes.iter().map(move |h| (*n, *h))) {
        let pre = if half { n / 2 } else { 0 };
        let mut fo = FullLabOptions {
            lab: LabOptions {
                machines: 0,
                status: Status::Ready,
                maas: SimMaasConfig { deploy_time: T.deploy, ..Default::default() },
                seed_names: false,
            },
            operator_step: T.step,
            ..Default::default()
        };
        fo.hosts.install_time = T.install;
        fo.hosts.join_time = T.join;
        fo.api.crd_establish = T.crd;
        fo.api.discovery_lag = T.lag;
        fo.api.deployment_ready = T.deployment;
        if costs {
            fo.api.tls = true;
            fo.api.costs = ApiCosts::measured();
            fo.hosts.ssh = SshCosts::measured();
        }
        let lab = FullLab::start(fo).await?;
        let mut machines = String::new();
        for i in 0..n {
            let (name, mac, ip) = homelab::sim::lab::machine_identity(i, false);
            let role = if i < 3 { "control-plane" } else { "worker" };
            if i < pre {
                lab.hosts.add_preinstalled(homelab::sim::hosts::Preinstalled::new(&name, &ip, 500));
                machines.push_str(&format!(
                    "  - {{hostname: {name}, address: {ip}, role: {role}, storage: {{volumeGroup: ubuntu-vg, ceph: rest}}}}\n"
                ));
            } else {
                lab.lab.add_machine(i, Status::Ready);
                machines.push_str(&format!("  - {{hostname: {name}, mac: \"{mac}\", role: {role}}}\n"));
            }
        }
        let (hosts_url, _task) = homelab::sim::hosts_http::serve(lab.hosts.clone()).await?;
        let body = format!(
            "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable, addons: [dns]}}\nrook:\n  version: v1.10.10\n  pools:\n    - {{name: replicapool, replicas: 2, storageClass: {{name: rook-ceph-block, default: true}}}}\nkafka:\n  strimziVersion: 0.33.1\n  cluster:\n    name: events\n    replicas: 3\n    metadata: zookeeper\n    storage: {{size: 100Gi, class: rook-ceph-block}}\n    zookeeper: {{replicas: 3, storage: {{size: 10Gi, class: rook-ceph-block}}}}\n",
            machines
        );
        let yaml = lab.lab.path("cluster.yaml");
        std::fs::write(&yaml, lab.lab.cluster_yaml(&body))?;
        let env = vec![
            ("HOMELAB_TESTLAB_HOSTS", hosts_url.clone()),
            ("HOMELAB_TIMINGS", "fast".to_owned()),
            ("HOMELAB_STATE_DIR", lab.lab.path("state-root").display().to_string()),
            ("HOMELAB_CACHE_DIR", lab.lab.path("cache").display().to_string()),
            ("HOMELAB_MANIFEST_DIR", upstream.display().to_string()),
        ];
        let args = ["up", yaml.to_str().unwrap_or_default(), "-o", "json", "--parallel", "20"];
        let (wall, peak, fresh) = tokio::task::block_in_place(|| run(&bin, &args, &env))?;
        if let Ok(dir) = std::env::var("HOMELAB_SCALE_EVENTS") {
            // The fresh run's event stream, for a timeline of where the time went.
            std::fs::write(format!("{dir}/scale-{n}.ndjson"), &fresh)?;
        }
        let maas_requests = lab.lab.maas.requests().len();
        let ssh: usize =
            (0..n).map(|i| lab.hosts.commands(&homelab::sim::lab::machine_identity(i, false).0).len()).sum();
        let (conv, _, out) = tokio::task::block_in_place(|| run(&bin, &args, &env))?;
        anyhow::ensure!(
            out.contains("\"event\":\"run_finished\",\"ok\":true,\"dry_run\":false,\"changes\":0"),
            "the re-run was not a no-op"
        );
        let cp = critical_path(n).as_secs_f64();
        println!(
            "{:>8} {:>9} {:>8.2}s {:>8.2}s {:>8.2}s {:>8.1}% {:>8.1} MB {:>10.1} {:>10.1} {:>10.2}s",
            n,
            if half { "half pre" } else { "all-MAAS" },
            cp,
            wall,
            wall - cp,
            (wall - cp) / cp * 100.0,
            peak as f64 / 1024.0,
            maas_requests as f64 / n as f64,
            ssh as f64 / n as f64,
            conv
        );
        println!("{:>8}   phases: {}", "", phase_times(&fresh));
        println!("{:>8}   converged phases: {}", "", phase_times(&out));
    }
    Ok(())
}
