//! Phase `kubernetes` (`distribution: microk8s`): install the snap on every machine, join
//! them one at a time, enable the add-ons, and fetch the kubeconfig.
//!
//! Per machine (pipelined after its host preflight): wait for snapd's seed, install MicroK8s
//! at the declared channel (another installed channel is drift, changed only by
//! `homelab upgrade`), wait until it runs; a pre-installed machine on several networks gets
//! the kubelet's `--node-ip` pinned to its declared address before anything joins. Then, on the cluster: membership is read from the first
//! control plane before every join, so a node is never joined twice (the "already known to
//! dqlite" trap); each join gets a fresh token with a short TTL that never reaches the
//! output; the node must be Ready before the next join.

use super::hosts;
use crate::config::{Kubernetes, Machine};
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::microk8s::{self as mk, JoinFailure, NodeInfo};
use crate::ssh::Remote;
use anyhow::{Context as _, Result, anyhow, bail};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

const PHASE: PhaseId = PhaseId::Kubernetes;
const TOKEN_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct KubernetesPhase;

fn channel(cx: &Ctx) -> Result<String> {
    match &cx.cluster.kubernetes {
        Kubernetes::Microk8s { channel, .. } => Ok(channel.clone()),
        Kubernetes::Existing { .. } => bail!("the kubernetes phase only runs with `distribution: microk8s`"),
    }
}

fn first_cp(cx: &Ctx) -> Result<Machine> {
    cx.cluster.first_control_plane().cloned().ok_or_else(|| anyhow!("the cluster has no control-plane machine"))
}

// The one text of each action, for the plan and the run: its words and the exact command.

fn install_words(ch: &str) -> (String, Option<String>) {
    ("install MicroK8s".into(), Some(format!("snap install microk8s --classic --channel={ch}")))
}

/// The drift a channel change is: `up` never refreshes (a refresh drains, goes one minor at a
/// time and control planes first: `homelab upgrade`).
pub const CHANNEL_DRIFT_HINT: &str =
    "`homelab upgrade` moves it one minor at a time, control planes first (`homelab upgrade --plan` lists the hops)";

/// The token is made just before the join and is a secret: the words name it, never show it.
fn join_words(cp: &str, worker: bool) -> (String, Option<String>) {
    (
        format!("join the cluster through {cp} as {}", if worker { "a worker" } else { "a control plane" }),
        Some(format!("microk8s join {cp}:25000/<fresh single-use token>{}", if worker { " --worker" } else { "" })),
    )
}

fn pin_words(addr: &str, networks: usize) -> (String, Option<String>) {
    (
        format!("pin the node's address to {addr} (it has {networks} networks; the kubelet could pick another)"),
        Some(format!("--node-ip={addr} in {}, then snap restart microk8s.daemon-kubelite", mk::KUBELET_ARGS)),
    )
}

/// The address to pin the kubelet to: a pre-installed machine's declared IP when it has
/// several networks and that IP is one of them (the preflight refused it otherwise).
fn pin_wanted<'a>(m: &'a Machine, f: &mk::HostFacts) -> Option<&'a str> {
    let addr = m.address.as_deref().filter(|a| m.is_preinstalled() && a.parse::<std::net::IpAddr>().is_ok())?;
    let own: Vec<&str> = f.addrs.iter().map(|a| a.split('/').next().unwrap_or(a)).collect();
    (own.len() > 1 && own.contains(&addr)).then_some(addr)
}

/// Pins the kubelet's node address when it is wanted and not yet so (read first), then
/// waits for MicroK8s to run again.
async fn ensure_node_ip(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>, f: &mk::HostFacts) -> Result<()> {
    let Some(addr) = pin_wanted(m, f) else { return Ok(()) };
    let args = r.run(&mk::kubelet_args_cmd()).await?;
    if mk::node_ip_of(&args.stdout) == Some(addr) {
        return Ok(());
    }
    let (w, c) = pin_words(addr, f.addrs.len());
    cx.act_call(PHASE, &m.hostname, w, c).await?;
    let t = cx.opts.timings.deadline(cx.cluster.timeouts.microk8s);
    run_ok(
        r,
        &m.hostname,
        &mk::pin_node_ip_cmd(addr, t),
        &format!("add `--node-ip={addr}` to {} by hand and run `sudo snap restart microk8s`", mk::KUBELET_ARGS),
    )
    .await?;
    wait_running(cx, m, r).await
}

fn enable_words(addon: &str) -> (String, Option<String>) {
    (format!("enable the {addon} add-on"), Some(format!("microk8s enable {addon}")))
}

async fn run_ok(r: &Arc<dyn Remote>, host: &str, cmd: &crate::ssh::Cmd, hint: &str) -> Result<crate::ssh::Output> {
    let out = r.run(cmd).await?;
    if !out.ok() {
        bail!(
            "`{}` failed on {host} (exit {}): {}\n  hint: {hint}",
            cmd.display(),
            out.code.map(|c| c.to_string()).unwrap_or("?".into()),
            out.text()
        );
    }
    Ok(out)
}

/// The nodes the cluster knows, read on the first control plane.
pub async fn nodes(r: &Arc<dyn Remote>) -> Result<Vec<NodeInfo>> {
    let out = r.run(&mk::nodes_cmd()).await?;
    mk::parse_nodes(&out)
}

/// `m`'s node in `nodes`, by name or by address.
fn node_of<'a>(nodes: &'a [NodeInfo], m: &Machine, ip: Option<&str>) -> Option<&'a NodeInfo> {
    nodes.iter().find(|n| n.name == m.hostname || (ip.is_some() && n.internal_ip.as_deref() == ip))
}

fn is_member(nodes: &[NodeInfo], m: &Machine, ip: Option<&str>) -> bool {
    node_of(nodes, m, ip).is_some()
}

async fn wait_running(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>) -> Result<()> {
    let t = cx.opts.timings.deadline(cx.cluster.timeouts.microk8s);
    let out = r.run(&mk::status_wait_cmd(t)).await?;
    if mk::is_running(&out) || mk::is_worker_status(&out) {
        return Ok(());
    }
    bail!(
        "MicroK8s on {} is not running after {}s: {}\n  hint: run `sudo microk8s inspect` on {} and read its report; old PCs may need a larger `timeouts.microk8s`",
        m.hostname,
        t.as_secs(),
        out.text().lines().next().unwrap_or(""),
        m.hostname
    )
}

/// Waits until `m` is a Ready node; returns the node list of that last look.
async fn wait_node_ready(cx: &Ctx, cp: &Machine, cp_r: &Arc<dyn Remote>, m: &Machine) -> Result<Vec<NodeInfo>> {
    let spec = WaitSpec {
        phase: PHASE,
        target: m.hostname.clone(),
        what: format!("node {} Ready in Kubernetes", m.hostname),
        deadline: cx.opts.timings.deadline(cx.cluster.timeouts.join),
        backoff: cx.opts.timings.kube_poll,
        hint: format!(
            "on {}: `sudo microk8s kubectl describe node {}`; on {}: `sudo microk8s inspect`. If the node never appears, the join failed silently (e.g. different MicroK8s versions): `sudo microk8s remove-node {} --force` on {}, reinstall MicroK8s on {} and run homelab up again",
            cp.hostname, m.hostname, m.hostname, m.hostname, cp.hostname, m.hostname
        ),
    };
    let ip = cx.facts(&m.hostname).ip;
    wait_for(&cx.ui, &spec, || async {
        let ns = nodes(cp_r).await?;
        Ok(match node_of(&ns, m, ip.as_deref()) {
            Some(n) if n.ready => Probe::Ready(ns),
            Some(_) => Probe::Pending(Some("joined, not Ready yet".into())),
            None => Probe::Pending(Some("not in the node list yet".into())),
        })
    })
    .await
}

/// Joins `m` through the first control plane, retrying an invalid token with a fresh one;
/// returns the node list once `m` is Ready.
async fn join(cx: &Ctx, cp: &Machine, cp_r: &Arc<dyn Remote>, m: &Machine) -> Result<Vec<NodeInfo>> {
    let cp_ip = cx.facts(&cp.hostname).ip.ok_or_else(|| anyhow!("no address for {}", cp.hostname))?;
    let r = cx.remote(&m.hostname).await?;
    if cx.cluster.kubernetes.minor().is_some_and(mk::needs_host_entries) {
        // The control plane must resolve the joining node's name (MicroK8s ≤ 1.27). What
        // the hosts phase saw and wrote there in this run is enough; look only if it did not.
        let mut cp_facts = match cx.host_facts(&cp.hostname) {
            Some(f) => f,
            None => hosts::gather(cx, cp, cp_r).await?,
        };
        let entries = hosts::host_entries(cx, &cp.hostname);
        hosts::ensure_hosts_block(cx, PHASE, &cp.hostname, cp_r, &cp_facts.etc_hosts, &entries).await?;
        cp_facts.etc_hosts = mk::hosts_with_block(&cp_facts.etc_hosts, &entries);
        cx.set_host_facts(&cp.hostname, cp_facts);
    }
    let worker = !m.is_control_plane();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let tok = run_ok(
            cp_r,
            &cp.hostname,
            &mk::add_node_cmd(TOKEN_TTL),
            "run `sudo microk8s status` on the control plane; it must be running",
        )
        .await?;
        let token = mk::parse_token(&tok)?;
        let url = format!("{cp_ip}:25000/{token}");
        {
            let (w, c) = join_words(&cp.hostname, worker);
            cx.act_call(PHASE, &m.hostname, w, c).await?
        };
        let t = cx.opts.timings.deadline(cx.cluster.timeouts.join);
        let out = r.run(&mk::join_cmd(&url, worker, t)).await?;
        let hint = match mk::classify_join(&out) {
            None => break,
            Some(JoinFailure::InvalidToken) if attempts < 3 => {
                cx.warn(PHASE, &m.hostname, "the join token was refused (Invalid token); retrying with a fresh one", None);
                continue;
            }
            Some(JoinFailure::InvalidToken) => "three fresh tokens were refused: check that the clocks of both machines agree and that nothing else consumes tokens".to_owned(),
            Some(JoinFailure::AlreadyKnown) => format!(
                "{} is already in the datastore of {} (a reinstalled node, or an earlier join that half-failed). Repair: on {}: `sudo microk8s remove-node {} --force`; on {}: `sudo snap remove microk8s --purge`; then run `homelab up` again",
                m.hostname, cp.hostname, cp.hostname, m.hostname, m.hostname
            ),
            Some(JoinFailure::HostnameResolution) => format!("{} cannot resolve {}'s hostname to its address: check the homelab block in /etc/hosts on {}", cp.hostname, m.hostname, cp.hostname),
            Some(JoinFailure::CertMismatch) => format!("{}'s certificate does not match the token's fingerprint; something between the two machines intercepts port 25000", cp.hostname),
            Some(JoinFailure::Unreachable) => format!("{} cannot reach the cluster agent on {}:25000; open ports 25000, 16443, 19001 and 10250 between the machines", m.hostname, cp_ip),
            Some(JoinFailure::SameIp) => format!("{} and {} have the same address; check the machines' IPs in MAAS", m.hostname, cp.hostname),
            Some(JoinFailure::Other(_)) => format!("run `sudo microk8s inspect` on {} and {}", m.hostname, cp.hostname),
        };
        bail!(
            "`microk8s join` failed on {} (exit {}): {}\n  hint: {hint}",
            m.hostname,
            out.code.map(|c| c.to_string()).unwrap_or("?".into()),
            out.text()
        );
    }
    let members = wait_node_ready(cx, cp, cp_r, m).await?;
    if !worker {
        // Let the datastore settle before the next join (maintainers' advice).
        wait_running(cx, cp, cp_r).await?;
    }
    Ok(members)
}

/// The kubeconfig from the first control plane, pointed at the address homelab knows.
pub async fn fetch_kubeconfig(cx: &Ctx, cp: &Machine, cp_r: &Arc<dyn Remote>) -> Result<()> {
    let out = run_ok(cp_r, &cp.hostname, &mk::config_cmd(), "run `sudo microk8s config` on the control plane").await?;
    let ip = cx.facts(&cp.hostname).ip.unwrap_or_default();
    let server = cx.world.hosts.api_server_override(&ip).unwrap_or_else(|| format!("https://{ip}:16443"));
    let text = mk::rewrite_kubeconfig(&out.stdout, &server, &cx.cluster.context_name())?;
    let path = crate::engine::cluster_api::saved_path(&cx.world.state_dir);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != text {
        crate::foundation::files::write_atomic(&path, text.as_bytes(), crate::foundation::files::Mode::Private)
            .with_context(|| format!("cannot save the kubeconfig to {}", path.display()))?;
        cx.info(PHASE, "kubeconfig", format!("saved to {} (context {})", path.display(), cx.cluster.context_name()));
    }
    if let Ok(mut k) = cx.kubeconfig.lock() {
        *k = Some(text);
    }
    Ok(())
}

#[async_trait]
impl Phase for KubernetesPhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn plan(&self, cx: &Ctx) -> Result<()> {
        let ch = channel(cx)?;
        let reachable = |m: &Machine| cx.is_installed(m);
        for m in cx.machines() {
            let seen = if reachable(&m) {
                match cx.remote(&m.hostname).await {
                    // The facts the hosts phase read already, else one read now.
                    Ok(r) => match cx.host_facts(&m.hostname) {
                        Some(f) => Some((f, r)),
                        None => Some((hosts::gather(cx, &m, &r).await?, r)),
                    },
                    Err(_) => None,
                }
            } else {
                None
            };
            let tracking = seen.as_ref().map(|(f, _)| f.snap_tracking.clone());
            match tracking.as_deref() {
                None | Some("") => {
                    let (w, c) = install_words(&ch);
                    cx.step_call(PHASE, &m.hostname, w, c)
                }
                Some(t) if t != ch => {
                    cx.drift(PHASE, &m.hostname, format!("MicroK8s tracks {t}, the file says {ch}"), CHANNEL_DRIFT_HINT)
                }
                Some(_) => {}
            }
            if let Some((f, r)) = &seen
                && let Some(addr) = pin_wanted(&m, f)
            {
                let pinned = if f.snap_tracking.is_empty() {
                    None
                } else {
                    r.run(&mk::kubelet_args_cmd()).await.ok().and_then(|o| mk::node_ip_of(&o.stdout).map(str::to_owned))
                };
                if pinned.as_deref() != Some(addr) {
                    let (w, c) = pin_words(addr, f.addrs.len());
                    cx.step_call(PHASE, &m.hostname, w, c);
                }
            }
        }
        let cp = first_cp(cx)?;
        let cp_r = if reachable(&cp) { cx.remote(&cp.hostname).await.ok() } else { None };
        let members = match &cp_r {
            Some(r) => nodes(r).await.unwrap_or_default(),
            None => vec![],
        };
        for m in cx.machines().iter().filter(|m| m.hostname != cp.hostname) {
            if !is_member(&members, m, cx.facts(&m.hostname).ip.as_deref()) {
                let (w, c) = join_words(&cp.hostname, !m.is_control_plane());
                cx.step_call(PHASE, &m.hostname, w, c);
            }
        }
        if let Kubernetes::Microk8s { addons, .. } = &cx.cluster.kubernetes {
            let enabled = match &cp_r {
                Some(r) => r.run(&mk::addon_status_cmd()).await.map(|o| o.stdout).unwrap_or_default(),
                None => String::new(),
            };
            for a in addons {
                if !mk::addon_enabled(&enabled, a) {
                    {
                        let (w, c) = enable_words(a);
                        cx.step_call(PHASE, &cp.hostname, w, c)
                    };
                }
            }
        }
        Ok(())
    }

    fn per_machine(&self) -> bool {
        true
    }

    async fn machine(&self, cx: &Ctx, m: &Machine) -> Result<()> {
        let ch = channel(cx)?;
        // No SSH slot here: the connection is already open (hosts phase) and the work is
        // waiting on the machine itself (snap download, MicroK8s start), which bounding would
        // only serialise into waves.
        let r = cx.remote(&m.hostname).await?;
        let facts = match cx.host_facts(&m.hostname) {
            Some(f) => f,
            None => hosts::gather(cx, m, &r).await?,
        };
        let tracking = facts.snap_tracking.clone();
        let install_t = cx.opts.timings.deadline(cx.cluster.timeouts.microk8s);
        if tracking.is_empty() {
            run_ok(
                &r,
                &m.hostname,
                &mk::seed_wait_cmd(install_t),
                "snapd is not ready; check `snap changes` on the machine",
            )
            .await?;
            {
                let (w, c) = install_words(&ch);
                cx.act_call(PHASE, &m.hostname, w, c).await?
            };
            let out = r.run(&mk::install_cmd(&ch, install_t)).await?;
            if !out.ok() {
                let t = out.text();
                let hint = if t.contains("not available on") {
                    format!("the channel {ch} does not exist; `snap info microk8s` lists them")
                } else if t.contains("too early") {
                    "snapd is still seeding after boot; run homelab up again in a minute".to_owned()
                } else if t.contains("change in progress") {
                    "another snap operation is running on the machine; wait for `snap changes` to finish".to_owned()
                } else {
                    "read the message above; `snap changes` on the machine shows what snapd did".to_owned()
                };
                bail!("installing MicroK8s on {} failed: {t}\n  hint: {hint}", m.hostname);
            }
        } else if tracking != ch {
            cx.drift(PHASE, &m.hostname, format!("MicroK8s tracks {tracking}, the file says {ch}"), CHANNEL_DRIFT_HINT);
        }
        wait_running(cx, m, &r).await?;
        ensure_node_ip(cx, m, &r, &facts).await
    }

    async fn finish(&self, cx: &Ctx) -> Result<()> {
        let ch = channel(cx)?;
        let cp = first_cp(cx)?;
        let cp_r = cx.remote(&cp.hostname).await.context("connecting to the first control plane")?;
        let mut members = nodes(&cp_r).await?;
        for m in cx.machines().iter().filter(|m| m.hostname != cp.hostname) {
            let ip = cx.facts(&m.hostname).ip;
            if is_member(&members, m, ip.as_deref()) {
                continue;
            }
            if let Some(f) = cx.host_facts(&m.hostname)
                && !f.snap_tracking.is_empty()
                && f.snap_tracking != ch
            {
                bail!(
                    "{} runs MicroK8s {} but the cluster uses {ch}; joining it would break the datastore\n  hint: `homelab upgrade` brings the cluster to one version; a new PC is installed at the file's channel",
                    m.hostname,
                    f.snap_tracking
                );
            }
            members = join(cx, &cp, &cp_r, m).await?;
        }
        if let Kubernetes::Microk8s { addons, .. } = &cx.cluster.kubernetes
            && !addons.is_empty()
        {
            let status =
                run_ok(&cp_r, &cp.hostname, &mk::addon_status_cmd(), "MicroK8s must be running on the control plane")
                    .await?;
            for a in addons {
                if !mk::addon_enabled(&status.stdout, a) {
                    {
                        let (w, c) = enable_words(a);
                        cx.act_call(PHASE, &cp.hostname, w, c).await?
                    };
                    run_ok(
                        &cp_r,
                        &cp.hostname,
                        &mk::enable_cmd(a, cx.opts.timings.deadline(cx.cluster.timeouts.microk8s)),
                        &format!("`microk8s enable {a}` failed; check the add-on name with `microk8s status`"),
                    )
                    .await?;
                }
            }
        }
        let not_ready: Vec<String> = cx
            .cluster
            .machines
            .iter()
            .filter(|m| cx.in_scope(&m.hostname))
            .filter(|m| !node_of(&members, m, cx.facts(&m.hostname).ip.as_deref()).is_some_and(|n| n.ready))
            .map(|m| m.hostname.clone())
            .collect();
        if !not_ready.is_empty() {
            bail!(
                "nodes not Ready: {}\n  hint: `sudo microk8s kubectl describe node <name>` on {}",
                not_ready.join(", "),
                cp.hostname
            );
        }
        fetch_kubeconfig(cx, &cp, &cp_r).await?;
        // From here on the cluster itself is locked too (storage and kafka insist on it; the
        // local lock already protects runs from this machine).
        if let Err(e) = cx.ensure_lease().await {
            cx.warn(
                PHASE,
                "cluster",
                format!("cannot take the cluster lease yet: {e:#}"),
                Some("the Kubernetes API is not reachable from here; check the kubeconfig's server address".into()),
            );
        }
        let ready = members.iter().filter(|n| n.ready).count();
        cx.info(PHASE, &cp.hostname, format!("{ready} node{} Ready", if ready == 1 { "" } else { "s" }));
        Ok(())
    }
}
