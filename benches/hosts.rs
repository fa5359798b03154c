//! Benchmark: a converged re-run of the hosts and kubernetes phases, over 3 real-sshd test
//! hosts (when this machine can run them: root, sshd, unshare, losetup) and over 50
//! simulated hosts. Prints wall times and SSH round trips per host.
//!
//! `cargo bench --bench hosts`

#[path = "../tests/support/sshd.rs"]
mod sshd;

use homelab::config::model::HostKeyChecking;
use homelab::engine::context::RunOptions;
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::sim::hosts::SimHostsConfig;
use homelab::sim::lab::{Lab, LabOptions};
use homelab::sim::maas::SimMachineSpec;
use homelab::ssh::Connector;
use homelab::ssh::openssh_impl::OpenSshConnector;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn opts() -> RunOptions {
    RunOptions {
        selection: Selection { only: vec![PhaseId::Hosts, PhaseId::Kubernetes], ..Default::default() },
        ..RunOptions::fast()
    }
}

async fn twice(lab: &Lab, yaml: &str, hosts: impl Fn() -> Arc<dyn Connector>) -> anyhow::Result<(f64, f64, f64)> {
    let (ui, _) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(yaml, hosts(), ui, opts())?;
    let t = Instant::now();
    homelab::engine::up(cx).await?;
    let first = t.elapsed().as_secs_f64();
    let (ui, _) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(yaml, hosts(), ui, opts())?;
    let t = Instant::now();
    let r = homelab::engine::up(cx.clone()).await?;
    let again = t.elapsed().as_secs_f64();
    anyhow::ensure!(r.changes == 0, "the re-run changed {} things", r.changes);
    let trips = cx.round_trips().await;
    let per_host = trips.values().sum::<u64>() as f64 / trips.len().max(1) as f64;
    Ok((first, again, per_host))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    println!("hosts + kubernetes phases, converged re-run (zero changes)");
    println!("{:<28} {:>10} {:>14} {:>16}", "setup", "first run", "converged run", "SSH trips/host");
    // 50 simulated hosts.
    let lab =
        Lab::start(LabOptions { machines: 50, status: Status::Deployed, seed_names: false, ..Default::default() })
            .await?;
    let hosts = lab.hosts(SimHostsConfig {
        install_time: Duration::from_millis(20),
        join_time: Duration::from_millis(20),
        ..Default::default()
    });
    let yaml = lab.cluster_yaml(&format!(
        "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.33/stable}}\n",
        lab.machines_yaml(50, 3)
    ));
    let (a, b, t) = twice(&lab, &yaml, || hosts.clone() as Arc<dyn Connector>).await?;
    println!("{:<28} {:>9.2}s {:>13.3}s {:>16.1}", "50 simulated hosts", a, b, t);

    // 3 real-sshd hosts.
    if std::panic::catch_unwind(sshd::available).unwrap_or(false) {
        let ssh = sshd::SshLab::start(&["maas", "kvm4", "kvm5"]);
        let lab = Lab::start(LabOptions { machines: 0, ..Default::default() }).await?;
        let mut machines = String::new();
        for (i, h) in ssh.hosts.iter().enumerate() {
            let mac = format!("52:54:00:00:02:{:02x}", i + 1);
            lab.maas.add_machine(SimMachineSpec::new(&h.hostname, &mac, &h.ip).status(Status::Deployed));
            machines.push_str(&format!("  - {{hostname: {}, mac: \"{mac}\", role: control-plane}}\n", h.hostname));
        }
        let yaml = format!(
            "apiVersion: homelab/v1alpha1\nkind: Cluster\nmetadata: {{name: bench}}\nmaas: {{url: {}, apiKeyFile: {}}}\n{}\nmachines:\n{machines}kubernetes: {{distribution: microk8s, channel: 1.33/stable}}\n",
            lab.maas.url,
            lab.path("maas.key").display(),
            ssh.ssh_yaml()
        );
        let mk = || -> Arc<dyn Connector> {
            Arc::new(
                OpenSshConnector::new(ssh.ssh_options(
                    HostKeyChecking::AcceptNew,
                    std::env::temp_dir().join(format!("hlb{}", std::process::id())),
                ))
                .expect("connector"),
            )
        };
        let (a, b, t) = twice(&lab, &yaml, mk).await?;
        println!("{:<28} {:>9.2}s {:>13.3}s {:>16.1}", "3 real-sshd hosts", a, b, t);
    }
    Ok(())
}
