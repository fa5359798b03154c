//! Phase `hosts`: SSH to every machine (deployed by MAAS or pre-installed), wait for
//! cloud-init, preflight it ([`preflight`], pure), and on a pre-installed machine carve the
//! Ceph volume it declares ([`volume`]).
//!
//! One round trip (the facts script) gathers everything; all problems of a host are reported
//! together, and nothing is changed on a host whose preflight fails. Where the MicroK8s
//! version needs it (≤ 1.27), `/etc/hosts` gets an entry for every machine of the cluster, in
//! a block homelab owns.

pub mod preflight;
pub mod volume;

use crate::config::{Cluster, Machine};
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::maas::Status;
use crate::microk8s::{self as mk, HostFacts};
use crate::ssh::Remote;
use anyhow::{Context as _, Result, anyhow, bail};
use async_trait::async_trait;
use preflight::Warnings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

const PHASE: PhaseId = PhaseId::Hosts;

/// What the phase reads once for all machines: MAAS's `dns_trusted_acl` when the MAAS host is
/// a node; and the facts the preflight read of each pre-installed machine, which its machine
/// work uses instead of asking again.
#[derive(Default)]
pub struct HostsPhase {
    dns_trusted_acl: OnceLock<Option<String>>,
    checked: Mutex<HashMap<String, HostFacts>>,
}

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
        hint: if m.is_preinstalled() {
            format!(
                "check that {ip} is {}'s address, that it is on and runs sshd (`ssh -i {} {}@{ip}` from here); raise `timeouts.ssh` for slow PCs",
                m.hostname,
                cx.cluster.ssh.identity_file.display(),
                cx.cluster.ssh.user
            )
        } else {
            format!(
                "check that {} finished booting (its console in MAAS) and that port 22 is reachable from here; raise `timeouts.ssh` for slow PCs",
                m.hostname
            )
        },
    };
    wait_for(&cx.ui, &spec, || async {
        match cx.remote(&m.hostname).await {
            Ok(r) => Ok(Probe::Ready(r)),
            // A refused or changed host key will not fix itself: stop now.
            Err(e) if crate::ssh::is_host_key_refusal(&e) => Ok(Probe::Failed(e)),
            // Nor will a pre-installed machine that does not know homelab's key (MAAS puts
            // the key on the machines it deploys, which may still be booting).
            Err(e) if m.is_preinstalled() && format!("{e:#}").contains("Permission denied") => {
                Ok(Probe::Failed(e.context(login_refused(cx, m, &ip))))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// What to do when a pre-installed machine refuses homelab's key.
fn login_refused(cx: &Ctx, m: &Machine, ip: &str) -> String {
    format!(
        "{} ({ip}) refused the login as {} with {}\n  hint: homelab logs in with that key; put its public half on the machine: `ssh-copy-id -i {} {}@{ip}`, or set `ssh.user`/`ssh.identityFile`",
        m.hostname,
        cx.cluster.ssh.user,
        cx.cluster.ssh.identity_file.display(),
        cx.cluster.ssh.public_key_file().display(),
        cx.cluster.ssh.user
    )
}

/// Runs the facts script. On a pre-installed machine whose sudo asks for a password it runs
/// again without sudo, so the preflight reports that with everything else.
pub async fn gather(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>) -> Result<HostFacts> {
    let dev = m.ceph_device();
    let vg = m.carve.as_ref().map(|c| c.volume_group.as_str());
    let peers = peers(&cx.cluster);
    let out = r.run(&mk::facts_cmd(dev.as_deref(), vg, &peers, true)).await?;
    if m.is_preinstalled() && mk::facts::sudo_wants_password(&out) {
        let out = r.run(&mk::facts_cmd(dev.as_deref(), vg, &peers, false)).await?;
        let mut f = mk::parse_facts(&out).map_err(|e| anyhow!("{}: {e:#}", m.hostname))?;
        f.without_sudo = true;
        return Ok(f);
    }
    mk::parse_facts(&out).map_err(|e| anyhow!("{}: {e:#}", m.hostname))
}

/// This workstation's clock, for the preflight's clock check.
fn now_epoch() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
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
            "cloud-init failed on {} ({}): {}\n  hint: read /var/log/cloud-init-output.log on the machine; {}",
            m.hostname,
            out.code.map(|c| format!("exit {c}")).unwrap_or_else(|| "no exit code".into()),
            out.text(),
            if m.is_preinstalled() {
                "fix what it reports (or `sudo cloud-init clean` if its configuration is stale), then run homelab again"
            } else {
                "redeploying it in MAAS usually helps"
            }
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

impl HostsPhase {
    /// Marks the pre-installed machines MAAS lists as its region or rack controller (by name
    /// or address), and reads MAAS's `dns_trusted_acl` once when one is a node.
    async fn find_maas_host(&self, cx: &Ctx) -> Result<()> {
        let Some(maas) = cx.world.maas.as_ref() else { return Ok(()) };
        let pre: Vec<Machine> = cx.cluster.machines.iter().filter(|m| m.is_preinstalled()).cloned().collect();
        if pre.is_empty() || self.dns_trusted_acl.get().is_some() {
            return Ok(());
        }
        let controllers = maas.controllers().await.context("reading MAAS's region and rack controllers")?;
        let mut any = false;
        for m in &pre {
            let ip = cx.facts(&m.hostname).ip;
            let is = controllers.iter().any(|c| {
                c.hostname.split('.').next() == Some(m.hostname.as_str())
                    || ip.as_ref().is_some_and(|ip| c.ip_addresses.contains(ip))
            });
            cx.update_facts(&m.hostname, |f| f.maas_controller = is);
            any |= is;
        }
        let acl = if any {
            maas.get_config("dns_trusted_acl").await.ok().map(|v| v.as_str().unwrap_or_default().to_owned())
        } else {
            None
        };
        let _ = self.dns_trusted_acl.set(acl);
        Ok(())
    }

    fn context(&self, cx: &Ctx, m: &Machine) -> preflight::Context {
        preflight::Context {
            now: now_epoch(),
            maas_host: cx.facts(&m.hostname).maas_controller,
            dns_trusted_acl: self.dns_trusted_acl.get().cloned().flatten(),
            user: cx.cluster.ssh.user.clone(),
        }
    }

    /// Connects, waits for cloud-init, gathers the facts (or takes those the preflight read)
    /// and runs the preflight of one machine: its facts, problems and warnings.
    async fn examine(&self, cx: &Ctx, m: &Machine) -> Result<(Arc<dyn Remote>, HostFacts, Vec<String>, Warnings)> {
        let r = connect(cx, m).await?;
        let _slot = cx.ssh_slot().await;
        let known = self.checked.lock().ok().and_then(|mut c| c.remove(&m.hostname));
        let mut facts = match known {
            Some(f) => f,
            None => gather(cx, m, &r).await?,
        };
        // `disabled`: a machine installed by hand whose cloud-init does not run at all.
        if !["done", "absent", "disabled"].contains(&facts.cloud_init.as_str()) {
            cloud_init_done(cx, m, &r).await?;
            facts = gather(cx, m, &r).await?;
        }
        let (problems, warnings) = preflight::preflight(&cx.cluster, m, &facts, &self.context(cx, m));
        Ok((r, facts, problems, warnings))
    }
}

/// "preflight of HOST found N problems:" and the list.
fn problem_list(host: &str, problems: &[String]) -> String {
    let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    format!(
        "preflight of {host} found {} problem{}:\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        list.join("\n")
    )
}

#[async_trait]
impl Phase for HostsPhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    /// The machines that exist before the run (pre-installed) are checked all together
    /// before anything changes anywhere; every problem of every one is reported at once.
    async fn preflight(&self, cx: &Ctx) -> Result<()> {
        let pre: Vec<Machine> = cx.machines().into_iter().filter(|m| m.is_preinstalled()).collect();
        if pre.is_empty() {
            return Ok(());
        }
        self.find_maas_host(cx).await?;
        // Meanwhile open the connections of the machines MAAS has deployed already (read
        // only; cached for the machine work), so the two kinds connect at once, not in turn.
        let deployed: Vec<Machine> = cx
            .machines()
            .into_iter()
            .filter(|m| !m.is_preinstalled() && cx.facts(&m.hostname).status == Some(Status::Deployed))
            .collect();
        let warm = futures::future::join_all(deployed.iter().map(|m| cx.remote(&m.hostname)));
        let (results, _) = tokio::join!(futures::future::join_all(pre.iter().map(|m| self.examine(cx, m))), warm);
        let mut refused = Vec::new();
        for (m, r) in pre.iter().zip(results) {
            match r {
                Ok((_, facts, problems, _)) if problems.is_empty() => {
                    if let Ok(mut c) = self.checked.lock() {
                        c.insert(m.hostname.clone(), facts);
                    }
                }
                Ok((_, _, problems, _)) => refused.push(problem_list(&m.hostname, &problems)),
                Err(e) => refused.push(format!("{}: {e:#}", m.hostname)),
            }
        }
        if !refused.is_empty() {
            bail!(
                "{}\nnothing was changed on any machine\n  hint: fix the problems above on the machines (homelab changes nothing on a machine it has not checked), then run `homelab {}` again",
                refused.join("\n"),
                cx.opts.command
            );
        }
        Ok(())
    }

    async fn plan(&self, cx: &Ctx) -> Result<()> {
        self.find_maas_host(cx).await?;
        for m in cx.machines() {
            let entries = host_entries(cx, &m.hostname);
            let exists = cx.is_installed(&m);
            let facts = if exists {
                match cx.remote(&m.hostname).await {
                    Ok(r) => Some((gather(cx, &m, &r).await?, r)),
                    Err(e) if m.is_preinstalled() => {
                        cx.warn(PHASE, &m.hostname, format!("preflight would fail: {e:#}"), None);
                        None
                    }
                    Err(_) => None,
                }
            } else {
                None
            };
            if let Some((f, r)) = &facts {
                let (problems, _) = preflight::preflight(&cx.cluster, &m, f, &self.context(cx, &m));
                for p in &problems {
                    cx.warn(PHASE, &m.hostname, format!("preflight would fail: {p}"), None);
                }
                if problems.is_empty() {
                    volume::ensure_carved(cx, &m, r, f).await?;
                }
            }
            if needs_entries(cx) {
                let write = match &facts {
                    Some((f, _)) => mk::hosts_with_block(&f.etc_hosts, &entries) != f.etc_hosts,
                    None => true,
                };
                if write {
                    let names: Vec<&str> =
                        block_machines(&cx.cluster, &m.hostname).map(|x| x.hostname.as_str()).collect();
                    cx.step(PHASE, &m.hostname, hosts_words(&names));
                }
            }
        }
        Ok(())
    }

    fn per_machine(&self) -> bool {
        true
    }

    async fn machine(&self, cx: &Ctx, m: &Machine) -> Result<()> {
        let (r, mut facts, problems, warnings) = self.examine(cx, m).await?;
        for (w, hint) in warnings {
            cx.warn(PHASE, &m.hostname, w, Some(hint));
        }
        if !problems.is_empty() {
            bail!("{}", problem_list(&m.hostname, &problems));
        }
        if volume::needs_carving(m, &facts) {
            volume::ensure_carved(cx, m, &r, &facts).await?;
            facts.ceph_present = Some(true);
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
