//! Benchmark of the `machines` phase against the MAAS simulator: with deploy time D (and
//! commissioning time C for machines that start New), the wall time for 3/50/200 machines
//! should stay within (C +) D + 5 % + 2 s, and the number of MAAS requests per machine per
//! poll interval stays small because waiting is one batched list request per interval for
//! all machines.
//!
//! `cargo bench --bench machines` (D defaults to 10 s, C to D/2; `HOMELAB_BENCH_D=30` to
//! change D).

use homelab::engine::context::{RunOptions, Timings};
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::sim::lab::{Lab, LabOptions, NoHosts};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let d = Duration::from_secs_f64(std::env::var("HOMELAB_BENCH_D").ok().and_then(|s| s.parse().ok()).unwrap_or(10.0));
    let poll = Duration::from_millis(500);
    println!(
        "machines phase, Ready or New → Deployed with the seed LVM layout; simulated deploy time D = {:.1}s, MAAS poll interval {:.1}s",
        d.as_secs_f64(),
        poll.as_secs_f64()
    );
    println!(
        "{:>8} {:>9} {:>11} {:>9} {:>6} {:>10} {:>10} {:>14}",
        "machines", "wall", "wall−waits", "budget", "ok", "requests", "req/mach", "polls/interval"
    );
    let c = d / 2;
    for (start, waits) in [(Status::Ready, d), (Status::New, c + d)] {
        println!(
            "from {start:?}{}",
            if start == Status::New { format!(" (commissioning C = {:.1}s)", c.as_secs_f64()) } else { String::new() }
        );
        for n in [3usize, 50, 200] {
            let mut lo = LabOptions { machines: n, status: start, seed_names: false, ..Default::default() };
            lo.maas.deploy_time = d;
            lo.maas.commission_time = c;
            let lab = Lab::start(lo).await?;
            let (ui, _cap) = Ui::capture(OutputFormat::Json);
            let yaml = lab.cluster_yaml(&format!(
                "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable}}\n",
                lab.machines_yaml(n, 1)
            ));
            let mut timings = Timings::fast();
            timings.maas_poll = poll;
            let opts = RunOptions {
                selection: Selection { only: vec![PhaseId::Machines], ..Default::default() },
                timings,
                ..RunOptions::fast()
            };
            let cx = lab.ctx(&yaml, Arc::new(NoHosts), ui, opts)?;
            let t = Instant::now();
            homelab::engine::up(cx).await?;
            let wall = t.elapsed().as_secs_f64();
            let budget = waits.as_secs_f64() * 1.05 + 2.0;
            let requests = lab.maas.requests().len();
            let polls = lab.maas.count("machines/?id=");
            let intervals = (wall / poll.as_secs_f64()).max(1.0);
            println!(
                "{:>8} {:>8.2}s {:>10.2}s {:>8.2}s {:>6} {:>10} {:>10.2} {:>14.2}",
                n,
                wall,
                wall - waits.as_secs_f64(),
                budget,
                if wall <= budget { "yes" } else { "NO" },
                requests,
                requests as f64 / n as f64,
                polls as f64 / intervals
            );
            println!("{:>8}   per machine per poll interval: {:.4} requests", "", polls as f64 / intervals / n as f64);
        }
    }
    Ok(())
}
