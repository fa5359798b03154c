//! Phase `hosts`: SSH to every deployed machine, wait for cloud-init, and preflight it.
//!
//! One round trip (the facts script) gathers everything; all problems of a host are reported
//! together: hostname, the Ceph volume present and blank, lvm2, the rbd module, the clock.
//! Where the MicroK8s version needs it (≤ 1.27), `/etc/hosts` gets an entry for every
//! machine of the cluster, in a block homelab owns.

use crate::config::{Cluster, Machine};
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::maas::Status;
use crate::microk8s::{self as mk, HostFacts};
use crate::ssh::Remote;
use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use std::sync::Arc;

const PHASE: PhaseId = PhaseId::Hosts;

#[derive(Default)]
pub struct HostsPhase;

/// The `/etc/hosts` block of machine `on`. Joins always go through the first control plane,
/// which must resolve every joining node (MicroK8s ≤ 1.27), so it lists every machine; any
/// other machine lists itself and the first control plane. Growing the cluster therefore
/// touches only the new machine and the first control plane.
pub fn host_entries(cx: &Ctx, on: &str) -> Vec<(String, String)> {
    entries_of(cx, &cx.cluster, on)
}

/// The `/etc/hosts` block of machine `on` in `cluster` (the run's, or the one a removal
/// leaves), with the addresses the run learned.
fn entries_of(cx: &Ctx, cluster: &Cluster, on: &str) -> Vec<(String, String)> {
    block_machines(cluster, on).filter_map(|m| cx.facts(&m.hostname).ip.map(|ip| (ip, m.hostname.clone()))).collect()
}

/// The machines listed in the `/etc/hosts` block of machine `on` (see [`host_entries`]).
fn block_machines<'a>(cluster: &'a Cluster, on: &'a str) -> impl Iterator<Item = &'a Machine> {
    let first = cluster.first_control_plane().map(|m| m.hostname.as_str()).unwrap_or_default();
    cluster.machines.iter().filter(move |m| on == first || m.hostname == on || m.hostname == first)
}

/// Brings the `/etc/hosts` block of every machine of `cluster` (reachable ones) in line with
/// that cluster — after `remove-node` the first control plane must stop listing the removed
/// PC, and a new first control plane lists everyone — so the next `up` changes nothing.
pub async fn sync_blocks(cx: &Ctx, cluster: &Cluster) -> Result<()> {
    if !cluster.kubernetes.minor().is_some_and(mk::needs_host_entries) {
        return Ok(());
    }
    for m in &cluster.machines {
        let Ok(r) = cx.remote(&m.hostname).await else { continue };
        let f = gather(cx, m, &r).await?;
        ensure_hosts_block(cx, PHASE, &m.hostname, &r, &f.etc_hosts, &entries_of(cx, cluster, &m.hostname)).await?;
    }
    Ok(())
}

pub fn peers(cluster: &Cluster) -> Vec<String> {
    cluster.machines.iter().map(|m| m.hostname.clone()).collect()
}

/// Waits until SSH answers (the machine may still be booting), then returns the connection.
pub async fn connect(cx: &Ctx, m: &Machine) -> Result<Arc<dyn Remote>> {
    let ip = cx.facts(&m.hostname).ip.unwrap_or_default();
    let spec = WaitSpec {
        phase: PHASE,
        target: m.hostname.clone(),
        what: format!("SSH on {ip}"),
        deadline: cx.opts.timings.deadline(cx.cluster.timeouts.ssh),
        backoff: cx.opts.timings.ssh_poll,
        hint: format!(
            "check that {} finished booting (its console in MAAS) and that port 22 is reachable from here; raise `timeouts.ssh` for slow PCs",
            m.hostname
        ),
    };
    wait_for(&cx.ui, &spec, || async {
        match cx.remote(&m.hostname).await {
            Ok(r) => Ok(Probe::Ready(r)),
            // A refused or changed host key will not fix itself: stop now.
            Err(e) if crate::ssh::is_host_key_refusal(&e) => Ok(Probe::Failed(e)),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Runs the facts script.
pub async fn gather(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>) -> Result<HostFacts> {
    let out = r.run(&mk::facts_cmd(m.ceph_device().as_deref(), &peers(&cx.cluster))).await?;
    mk::parse_facts(&out).map_err(|e| anyhow!("{}: {e:#}", m.hostname))
}

/// Every preflight problem of one host (empty: all good) and warnings.
pub fn preflight(cluster: &Cluster, m: &Machine, f: &HostFacts) -> (Vec<String>, Vec<(String, String)>) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if f.hostname.to_lowercase() != m.hostname {
        problems.push(format!(
            "the machine calls itself `{}` but cluster.yaml names it `{}` (MicroK8s uses the lowercased hostname as the node name) — rename it in MAAS and redeploy, or fix cluster.yaml",
            f.hostname, m.hostname
        ));
    }
    if let Some(dev) = m.ceph_device() {
        match f.ceph_present {
            Some(false) => problems.push(format!(
                "the Ceph volume {dev} does not exist — the machine was deployed without homelab's disk layout; check its storage in MAAS (it needs an unformatted logical volume vgroot/ceph)"
            )),
            Some(true) if !f.ceph_signature.is_empty() && !f.ceph_signature.contains("ceph_bluestore") => problems.push(format!(
                "the Ceph volume {dev} is not blank (it carries a `{}` signature) — Ceph only takes a blank volume; if its data is disposable, wipe it with `sudo wipefs -a {dev}` on {}",
                f.ceph_signature, m.hostname
            )),
            _ => {}
        }
        if cluster.rook.is_some() {
            if !f.lvm2 {
                problems.push("lvm2 is not installed — Rook needs it for OSDs on this machine; install it with `sudo apt install lvm2`".into());
            }
            if !f.rbd {
                problems.push("the rbd kernel module cannot be loaded — Ceph block volumes need it; install it with `sudo apt install linux-modules-extra-$(uname -r)`".into());
            }
        }
    }
    match f.clock.as_str() {
        "yes" => {}
        "no" => warnings.push((
            "the clock is not synchronized (NTP)".to_owned(),
            "Ceph monitors and MAAS's OAuth need clocks within seconds; enable time sync with `sudo timedatectl set-ntp true`".to_owned(),
        )),
        _ => {}
    }
    (problems, warnings)
}

async fn cloud_init_done(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>) -> Result<()> {
    let t = cx.opts.timings.deadline(cx.cluster.timeouts.ssh);
    let out = r.run(&mk::cloud_init_wait_cmd(t)).await?;
    match out.code {
        Some(0) => Ok(()),
        Some(2) => {
            cx.warn(
                PHASE,
                &m.hostname,
                "cloud-init finished with recoverable errors",
                Some("see `cloud-init status --long` on the machine".into()),
            );
            Ok(())
        }
        _ => bail!(
            "cloud-init failed on {} ({}): {}\n  hint: read /var/log/cloud-init-output.log on the machine; redeploying it in MAAS usually helps",
            m.hostname,
            out.code.map(|c| format!("exit {c}")).unwrap_or_else(|| "no exit code".into()),
            out.text()
        ),
    }
}

/// Makes `/etc/hosts` on `r` carry homelab's block with `entries` (one write, only if needed).
pub async fn ensure_hosts_block(
    cx: &Ctx,
    phase: PhaseId,
    target: &str,
    r: &Arc<dyn Remote>,
    current: &str,
    entries: &[(String, String)],
) -> Result<()> {
    let want = mk::hosts_with_block(current, entries);
    if want == current {
        return Ok(());
    }
    let names: Vec<&str> = entries.iter().map(|(_, n)| n.as_str()).collect();
    if cx.dry_run() {
        cx.step(phase, target, hosts_words(&names));
        return Ok(());
    }
    cx.act(phase, target, hosts_words(&names)).await?;
    let out = r.run(&mk::write_hosts_cmd(&want)).await?;
    if !out.ok() {
        bail!("cannot write /etc/hosts on {target}: {}\n  hint: the SSH user needs passwordless sudo", out.text());
    }
    Ok(())
}

/// The one text of writing homelab's `/etc/hosts` block, for the plan and the run.
fn hosts_words(names: &[&str]) -> String {
    format!("write /etc/hosts entries for {} (MicroK8s ≤ 1.27 resolves joining nodes by name)", names.join(", "))
}

fn needs_entries(cx: &Ctx) -> bool {
    cx.cluster.kubernetes.minor().is_some_and(mk::needs_host_entries)
}

/// Waits until every machine of the cluster has an address (MAAS assigns it when the
/// deployment starts), so the `/etc/hosts` block is complete.
async fn wait_for_all_addresses(cx: &Ctx) {
    let names: Vec<String> = cx.cluster.machines.iter().map(|m| m.hostname.clone()).collect();
    let deadline = cx.opts.timings.deadline(cx.cluster.timeouts.deploy);
    cx.wait_facts(deadline, |f| names.iter().all(|n| f.get(n).is_some_and(|x| x.ip.is_some()))).await;
}

#[async_trait]
impl Phase for HostsPhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn plan(&self, cx: &Ctx) -> Result<()> {
        for m in cx.machines() {
            let entries = host_entries(cx, &m.hostname);
            let deployed = cx.facts(&m.hostname).status == Some(Status::Deployed);
            let facts = if deployed {
                match cx.remote(&m.hostname).await {
                    Ok(r) => Some(gather(cx, &m, &r).await?),
                    Err(_) => None,
                }
            } else {
                None
            };
            if needs_entries(cx) {
                let write = match &facts {
                    Some(f) => mk::hosts_with_block(&f.etc_hosts, &entries) != f.etc_hosts,
                    None => true,
                };
                if write {
                    let names: Vec<&str> =
                        block_machines(&cx.cluster, &m.hostname).map(|x| x.hostname.as_str()).collect();
                    cx.step(PHASE, &m.hostname, hosts_words(&names));
                }
            }
            if let Some(f) = &facts {
                let (problems, _) = preflight(&cx.cluster, &m, f);
                for p in problems {
                    cx.warn(PHASE, &m.hostname, format!("preflight would fail: {p}"), None);
                }
            }
        }
        Ok(())
    }

    fn per_machine(&self) -> bool {
        true
    }

    async fn machine(&self, cx: &Ctx, m: &Machine) -> Result<()> {
        let r = connect(cx, m).await?;
        let _slot = cx.ssh_slot().await;
        let mut facts = gather(cx, m, &r).await?;
        if facts.cloud_init != "done" && facts.cloud_init != "absent" {
            cloud_init_done(cx, m, &r).await?;
            facts = gather(cx, m, &r).await?;
        }
        let (problems, warnings) = preflight(&cx.cluster, m, &facts);
        for (w, hint) in warnings {
            cx.warn(PHASE, &m.hostname, w, Some(hint));
        }
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
            bail!(
                "preflight of {} found {} problem{}:\n{}",
                m.hostname,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                list.join("\n")
            );
        }
        if needs_entries(cx) {
            wait_for_all_addresses(cx).await;
            let entries = host_entries(cx, &m.hostname);
            ensure_hosts_block(cx, PHASE, &m.hostname, &r, &facts.etc_hosts, &entries).await?;
            facts.etc_hosts = mk::hosts_with_block(&facts.etc_hosts, &entries);
        } else {
            for peer in &cx.cluster.machines {
                if peer.hostname != m.hostname && facts.resolves.get(&peer.hostname).is_some_and(|ip| ip.is_empty()) {
                    tracing::debug!(
                        "{} does not resolve {} (not needed by MicroK8s ≥ 1.28)",
                        m.hostname,
                        peer.hostname
                    );
                }
            }
        }
        cx.set_host_facts(&m.hostname, facts);
        cx.info(PHASE, &m.hostname, "reachable, cloud-init done, preflight passed");
        Ok(())
    }
}
