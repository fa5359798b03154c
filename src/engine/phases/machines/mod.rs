//! Phase `machines`: MAAS installs Ubuntu on every declared PC.
//!
//! For each machine: observe its MAAS state, [`decide`] the actions that bring it to
//! Deployed with the declared disk layout, then carry them out, waiting with a deadline after
//! each asynchronous one. The same `decide` produces the dry-run plan, so the plan lists
//! exactly what a real run does. After a transient MAAS error or an interrupted run, the next
//! round observes again and decides afresh — a machine is never deployed twice.
//!
//! Never released or wiped unless the user asked (`--redeploy-failed`); a deployed machine
//! with another layout is reported as drift. A pre-installed machine (an `address`, no
//! `mac`) is never touched through MAAS: this phase only records its address.

//!
//! The decision is pure ([`decide`]); the status board ([`board`]) batches the MAAS polls.

pub mod board;
pub mod decide;

pub use board::StatusBoard;
pub use decide::{Action, DecideInput, Decision, check_sizes, decide};

use crate::config::{CEPH_LV, Layout, Machine, VOLUME_GROUP};
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Backoff, Probe, WaitSpec, wait_for};
use crate::maas::types::{EventsPage, Machine as MaasMachine, Status};
use crate::maas::{MaasClient, MaasError};
use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use base64::Engine as _;
use std::sync::{Arc, OnceLock};

const PHASE: PhaseId = PhaseId::Machines;

#[derive(Default)]
pub struct MachinesPhase {
    board: OnceLock<Arc<StatusBoard>>,
}

/// Records the address of every pre-installed machine (its IP, or what its DNS name resolves
/// to here, as SSH will), then finds every machine MAAS deploys by MAC and records its MAAS
/// facts (read-only); returns MAAS's answer (none when no machine has a MAC).
pub async fn gather_facts(cx: &Ctx) -> anyhow::Result<Vec<crate::maas::Machine>> {
    record_addresses(cx).await?;
    // All machines, not only those in scope: `add-node` needs the address of the node that
    // issues its join token.
    let machines = cx.cluster.machines.clone();
    let macs: Vec<String> = machines.iter().filter_map(|m| m.mac.clone()).collect();
    if macs.is_empty() || cx.world.maas.is_none() {
        return Ok(vec![]);
    }
    let maas = cx.maas()?;
    let found = maas.machines_by_mac(&macs).await.context("looking the machines up in MAAS by MAC")?;
    for m in &machines {
        let Some(mac) = &m.mac else { continue };
        if let Some(mm) = found.iter().find(|f| f.macs().contains(mac)) {
            cx.update_facts(&m.hostname, |f| {
                f.system_id = Some(mm.system_id.clone());
                f.status = Some(mm.status());
                f.status_message = mm.status_message.clone();
                f.maas_hostname = Some(mm.hostname.clone());
                f.power = mm.power_state.clone();
                if let Some(ip) = mm.ip() {
                    f.ip = Some(ip);
                }
            });
        }
    }
    Ok(found)
}

/// The addresses of the pre-installed machines: an IP as written, a DNS name resolved once.
async fn record_addresses(cx: &Ctx) -> anyhow::Result<()> {
    for m in cx.cluster.machines.iter().filter(|m| m.is_preinstalled()) {
        let Some(addr) = m.address.as_deref() else { continue };
        if cx.facts(&m.hostname).ip.is_some() {
            continue;
        }
        let ip = match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => {
                let found = tokio::net::lookup_host((addr, cx.cluster.ssh.port)).await.map_err(|e| {
                    anyhow!(
                        "cannot resolve {addr}, the address of {}: {e}\n  hint: check the name with `getent hosts {addr}` here, or give the machine's IP address in cluster.yaml",
                        m.hostname
                    )
                })?;
                let mut all: Vec<std::net::SocketAddr> = found.collect();
                all.sort_by_key(|a| !a.is_ipv4());
                all.first().map(|a| a.ip().to_string()).ok_or_else(|| {
                    anyhow!("{addr} (the address of {}) resolves to nothing\n  hint: give the machine's IP address in cluster.yaml", m.hostname)
                })?
            }
        };
        cx.update_facts(&m.hostname, |f| f.ip = Some(ip));
    }
    Ok(())
}

fn unknown_mac(m: &Machine) -> anyhow::Error {
    anyhow!(
        "MAAS does not know a machine with MAC {} ({})\n  hint: enlist it: set the PC to boot from the network (PXE) and power it on on MAAS's network — it appears in MAAS as New — or add it in the MAAS UI (Machines → Add hardware → Machine) with this MAC",
        m.mac.as_deref().unwrap_or("?"),
        m.hostname
    )
}

fn cloud_init_user_data(pubkey: &str) -> String {
    let cfg = format!("#cloud-config\n# written by homelab\nssh_authorized_keys:\n  - {}\n", pubkey.trim());
    base64::engine::general_purpose::STANDARD.encode(cfg)
}

impl MachinesPhase {
    fn board(&self, cx: &Ctx) -> anyhow::Result<Arc<StatusBoard>> {
        let maas = cx.maas()?.clone();
        Ok(self.board.get_or_init(|| StatusBoard::new(maas, cx.opts.timings.maas_poll)).clone())
    }

    async fn failure_text(maas: &MaasClient, system_id: &str) -> Option<String> {
        let page: EventsPage = maas.events(system_id, "INFO", 20).await.ok()?;
        let interesting: Vec<String> = page
            .events
            .iter()
            .filter(|e| {
                let t = e.kind.as_deref().unwrap_or("");
                e.level.as_deref() == Some("ERROR")
                    || t.contains("fail")
                    || t.contains("Fail")
                    || t.contains("timed out")
            })
            .take(3)
            .map(|e| e.text())
            .collect();
        (!interesting.is_empty()).then(|| interesting.into_iter().rev().collect::<Vec<_>>().join(" / "))
    }

    /// Observes one machine and decides.
    async fn observe(&self, cx: &Ctx, spec: &Machine, system_id: &str) -> anyhow::Result<(MaasMachine, Decision)> {
        let maas = cx.maas()?;
        let mm = maas.machine(system_id).await?;
        let vgs = if mm.status() == Status::Ready && matches!(spec.layout, Layout::Lvm { .. }) {
            Some(maas.volume_groups(system_id).await?)
        } else {
            None
        };
        let failure = if mm.status().is_failed() { Self::failure_text(maas, system_id).await } else { None };
        if matches!(mm.status(), Status::Ready | Status::New | Status::Commissioning | Status::Allocated)
            && mm.boot_disk.is_some()
        {
            check_sizes(spec, &mm)?;
        }
        let me = cx.maas_user().await?;
        let input = DecideInput {
            me: &me,
            series: &cx.cluster.maas.as_ref().map(|m| m.distro_series.clone()).unwrap_or_else(|| "jammy".into()),
            redeploy_failed: cx.opts.redeploy_failed,
            volume_groups: vgs.as_deref(),
            failure: failure.as_deref(),
        };
        let d = decide(spec, &mm, &input)?;
        if let Some(ip) = mm.ip() {
            cx.update_facts(&spec.hostname, |f| f.ip = Some(ip));
        }
        cx.update_facts(&spec.hostname, |f| {
            f.status = Some(mm.status());
            f.status_message = mm.status_message.clone();
        });
        Ok((mm, d))
    }

    async fn wait_status(&self, cx: &Ctx, spec: &Machine, system_id: &str, want: Status) -> anyhow::Result<()> {
        let board = self.board(cx)?;
        board.forget(system_id);
        board.watch(system_id);
        let t = &cx.cluster.timeouts;
        let (what, deadline, hint) = match want {
            Status::Deployed => (
                "MAAS status Deployed",
                t.deploy,
                "MAAS itself fails a deployment after 30 minutes; watch the machine's console and its MAAS log. Raise `timeouts.deploy` for slow PCs",
            ),
            _ => (
                "MAAS status Ready",
                t.commission,
                "check the machine's power (BMC) settings and PXE boot in MAAS; raise `timeouts.commission` for slow PCs",
            ),
        };
        let spec_w = WaitSpec {
            phase: PHASE,
            target: spec.hostname.clone(),
            what: what.into(),
            deadline: cx.opts.timings.deadline(deadline),
            backoff: Backoff::new(cx.opts.timings.maas_poll / 4, cx.opts.timings.maas_poll),
            hint: hint.into(),
        };
        let maas = cx.maas()?.clone();
        let r = wait_for(&cx.ui, &spec_w, || {
            let board = board.clone();
            let maas = maas.clone();
            let host = spec.hostname.clone();
            async move {
                let Some(m) = board.get(system_id) else {
                    let err = board.last_error();
                    return Ok(Probe::Pending(err.map(|e| format!("MAAS poll failed: {e}"))));
                };
                if let Some(ip) = m.ip() {
                    cx.update_facts(&host, |f| f.ip = Some(ip));
                }
                let s = m.status();
                let msg = m.status_message.clone().or_else(|| Some(s.name().to_owned()));
                Ok(match (want, s) {
                    (w, s) if w == s => Probe::Ready(()),
                    (Status::Deployed, Status::Deploying) | (Status::Ready, Status::Commissioning | Status::Releasing | Status::DiskErasing | Status::Testing) => Probe::Pending(msg),
                    (_, s) if s.is_failed() => {
                        let text = Self::failure_text(&maas, system_id).await.or(m.status_message.clone()).unwrap_or_default();
                        let hint = if s == Status::FailedDeployment {
                            "read the installation log in MAAS, fix the cause, then run `homelab up --redeploy-failed` to release and deploy it again"
                        } else {
                            "check the machine in MAAS; `homelab up --redeploy-failed` commissions or redeploys it"
                        };
                        Probe::Failed(anyhow!("MAAS reports {} for {host}: {text}\n  hint: {hint}", s.name()))
                    }
                    (_, s) => Probe::Failed(anyhow!(
                        "{host} left the expected path: it is now `{}` (someone changed it in MAAS?)\n  hint: run `homelab up` again; it continues from the machine's current state",
                        s.name()
                    )),
                })
            }
        })
        .await;
        board.unwatch(system_id);
        r
    }

    async fn execute(&self, cx: &Ctx, spec: &Machine, system_id: &str, action: &Action) -> anyhow::Result<()> {
        let maas = cx.maas()?;
        if !action.is_wait() {
            cx.act_call(PHASE, &spec.hostname, action.words(), action.call(system_id)).await?;
        }
        match action {
            Action::Rename { to } => {
                maas.rename(system_id, to).await?;
            }
            Action::Release => {
                maas.release(system_id, "homelab up --redeploy-failed").await?;
            }
            Action::Commission => {
                maas.commission(system_id).await?;
            }
            Action::WaitReady => self.wait_status(cx, spec, system_id, Status::Ready).await?,
            Action::SetLayout { root_bytes } => {
                maas.set_lvm_layout(system_id, *root_bytes, VOLUME_GROUP).await?;
            }
            Action::CreateCephLv { size } => {
                let vgs = maas.volume_groups(system_id).await?;
                let vg = vgs.iter().find(|v| v.name == VOLUME_GROUP).ok_or_else(|| {
                    anyhow!("MAAS shows no volume group {VOLUME_GROUP} on {} after the LVM layout was applied\n  hint: run `homelab up` again to re-apply the layout", spec.hostname)
                })?;
                if vg.logical_volume(CEPH_LV).is_none() {
                    maas.create_logical_volume(system_id, vg.id, CEPH_LV, *size).await?;
                }
            }
            Action::Deploy { series } => {
                let pubkey = read_public_key(cx)?;
                let ud = cloud_init_user_data(&pubkey);
                let m = maas.deploy(system_id, series, Some(&ud)).await?;
                if let Some(ip) = m.ip() {
                    cx.update_facts(&spec.hostname, |f| f.ip = Some(ip));
                }
            }
            Action::WaitDeployed => self.wait_status(cx, spec, system_id, Status::Deployed).await?,
        }
        Ok(())
    }

    async fn ensure_ssh_key(&self, cx: &Ctx) -> anyhow::Result<()> {
        let maas = cx.maas()?;
        let pubkey = read_public_key(cx)?;
        let keys = maas.ssh_keys().await?;
        if has_key(&keys, &pubkey) {
            return Ok(());
        }
        let me = cx.maas_user().await?;
        cx.act(PHASE, "MAAS", ssh_key_words(&pubkey, &me)).await?;
        match maas.add_ssh_key(&pubkey).await {
            Ok(_) => Ok(()),
            Err(MaasError::BadRequest { text, .. }) if text.contains("already been added") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn needs_deploy(cx: &Ctx) -> bool {
        cx.machines()
            .iter()
            .any(|m| cx.facts(&m.hostname).status.is_some_and(|s| s != Status::Deployed && s != Status::Deploying))
    }
}

/// The one text of registering the SSH key, for the plan and the run.
fn ssh_key_words(pubkey: &str, me: &str) -> String {
    format!("register the SSH key {} for MAAS user {me} (POST account/prefs/sshkeys/)", key_label(pubkey))
}

fn key_label(pubkey: &str) -> String {
    let mut it = pubkey.split_whitespace();
    let kind = it.next().unwrap_or("key");
    let _ = it.next();
    match it.next() {
        Some(comment) => format!("{kind} {comment}"),
        None => kind.to_owned(),
    }
}

fn has_key(keys: &[crate::maas::types::SshKey], pubkey: &str) -> bool {
    let norm = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    keys.iter().any(|k| norm(&k.key) == norm(pubkey))
}

/// The public half of `ssh.identityFile`, which MAAS puts on the machines it deploys.
pub fn read_public_key(cx: &Ctx) -> anyhow::Result<String> {
    let path = cx.cluster.ssh.public_key_file();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "cannot read the SSH public key {}: {e}\n  hint: MAAS installs this key on the machines so homelab can log in; create a key pair with `ssh-keygen -t ed25519 -f {}` or point `ssh.identityFile` at yours",
            path.display(),
            cx.cluster.ssh.identity_file.display()
        )
    })?;
    let key = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#')).unwrap_or("").trim().to_owned();
    if key.split_whitespace().count() < 2 {
        bail!("{} is not an SSH public key\n  hint: it should look like `ssh-ed25519 AAAA… you@host`", path.display());
    }
    Ok(key)
}

#[async_trait]
impl Phase for MachinesPhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn plan(&self, cx: &Ctx) -> anyhow::Result<()> {
        let me = cx.maas_user().await?;
        if Self::needs_deploy(cx) {
            let pubkey = read_public_key(cx)?;
            if !has_key(&cx.maas()?.ssh_keys().await?, &pubkey) {
                cx.step(PHASE, "MAAS", ssh_key_words(&pubkey, &me));
            }
        }
        for m in cx.machines().into_iter().filter(|m| !m.is_preinstalled()) {
            let Some(id) = cx.facts(&m.hostname).system_id else { return Err(unknown_mac(&m)) };
            let (_, d) = self.observe(cx, &m, &id).await?;
            for (msg, hint) in &d.drift {
                cx.drift(PHASE, &m.hostname, msg, hint);
            }
            for a in d.actions.iter().filter(|a| !a.is_wait()) {
                cx.step_call(PHASE, &m.hostname, a.words(), a.call(&id));
            }
        }
        Ok(())
    }

    async fn prepare(&self, cx: &Ctx) -> anyhow::Result<()> {
        cx.maas_user().await?;
        if Self::needs_deploy(cx) {
            self.ensure_ssh_key(cx).await?;
        }
        Ok(())
    }

    fn per_machine(&self) -> bool {
        true
    }

    async fn machine(&self, cx: &Ctx, spec: &Machine) -> anyhow::Result<()> {
        if spec.is_preinstalled() {
            // Never allocated, deployed, released, erased or powered through MAAS.
            return Ok(());
        }
        let Some(system_id) = cx.facts(&spec.hostname).system_id else { return Err(unknown_mac(spec)) };
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (mm, d) = self.observe(cx, spec, &system_id).await?;
            for (msg, hint) in &d.drift {
                cx.drift(PHASE, &spec.hostname, msg, hint);
            }
            if d.actions.is_empty() {
                cx.info(
                    PHASE,
                    &spec.hostname,
                    format!("{} ({}), nothing to do", mm.status().name(), mm.ip().unwrap_or_default()),
                );
                return Ok(());
            }
            let mut transient = None;
            for a in &d.actions {
                match self.execute(cx, spec, &system_id, a).await {
                    Ok(()) => {}
                    Err(e) => {
                        let retry = e.downcast_ref::<MaasError>().is_some_and(|m| m.is_transient() || m.is_conflict());
                        if retry && rounds < 4 {
                            transient = Some(e);
                            break;
                        }
                        return Err(e);
                    }
                }
            }
            match transient {
                None => return Ok(()),
                Some(e) => {
                    tracing::info!(target: "homelab::machines", "{}: {e:#}; observing again", spec.hostname);
                    tokio::time::sleep(cx.opts.timings.maas_poll).await;
                }
            }
        }
    }
}
