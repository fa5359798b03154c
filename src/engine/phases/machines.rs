//! Phase `machines`: MAAS installs Ubuntu on every declared PC.
//!
//! For each machine: observe its MAAS state, [`decide`] the actions that bring it to
//! Deployed with the declared disk layout, then carry them out, waiting with a deadline after
//! each asynchronous one. The same `decide` produces the dry-run plan, so the plan lists
//! exactly what a real run does. After a transient MAAS error or an interrupted run, the next
//! round observes again and decides afresh — a machine is never deployed twice.
//!
//! Never released or wiped unless the user asked (`--redeploy-failed`); a deployed machine
//! with another layout is reported as drift.

use crate::config::size::human_si;
use crate::config::{CEPH_LV, CephVolume, Layout, Machine, VOLUME_GROUP};
use crate::engine::context::Ctx;
use crate::engine::phase::PhaseId;
use crate::engine::runner::{Phase, Planned};
use crate::engine::wait::{Backoff, Probe, WaitSpec, wait_for};
use crate::maas::types::{EventsPage, Machine as MaasMachine, Status, VolumeGroup};
use crate::maas::{MaasClient, MaasError};
use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use base64::Engine as _;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

const PHASE: PhaseId = PhaseId::Machines;
const EXTENT: u64 = 4 << 20;
const EFI: u64 = 512 << 20;
const GPT_OVERHEAD: u64 = 5 << 20;

/// One step of bringing a machine to Deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Rename { to: String },
    Release,
    Commission,
    WaitReady,
    SetLayout { root_bytes: u64 },
    CreateCephLv { size: Option<u64> },
    Deploy { series: String },
    WaitDeployed,
}

impl Action {
    pub fn is_wait(&self) -> bool {
        matches!(self, Action::WaitReady | Action::WaitDeployed)
    }

    /// The exact call, for the plan and the progress output.
    pub fn describe(&self, system_id: &str) -> String {
        match self {
            Action::Rename { to } => format!("rename to {to} (PUT machines/{system_id}/ hostname={to})"),
            Action::Release => format!("release the failed machine (POST machines/{system_id}/?op=release)"),
            Action::Commission => format!("commission (POST machines/{system_id}/?op=commission)"),
            Action::WaitReady => "wait for MAAS status Ready".into(),
            Action::SetLayout { root_bytes } => format!(
                "lay out the boot disk: LVM, root volume {} (POST machines/{system_id}/?op=set_storage_layout storage_layout=lvm lv_size={root_bytes})",
                human_si(*root_bytes)
            ),
            Action::CreateCephLv { size } => format!(
                "create the unformatted logical volume {VOLUME_GROUP}/{CEPH_LV} for Ceph, {} (POST nodes/{system_id}/volume-group/<vgroot>/?op=create_logical_volume)",
                size.map(human_si).unwrap_or_else(|| "all free space".into())
            ),
            Action::Deploy { series } => {
                format!("deploy Ubuntu {series} (POST machines/{system_id}/?op=deploy distro_series={series})")
            }
            Action::WaitDeployed => "wait for MAAS status Deployed".into(),
        }
    }
}

/// What to do with one machine.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub actions: Vec<Action>,
    /// Differences homelab reports but does not change: (message, hint).
    pub drift: Vec<(String, String)>,
}

/// Inputs of [`decide`] besides the machine.
pub struct DecideInput<'a> {
    pub me: &'a str,
    pub series: &'a str,
    pub redeploy_failed: bool,
    /// The machine's volume groups (needed to judge the layout of a Ready machine).
    pub volume_groups: Option<&'a [VolumeGroup]>,
    /// MAAS's newest failure text for failed machines.
    pub failure: Option<&'a str>,
}

fn extents(b: u64) -> u64 {
    b / EXTENT * EXTENT
}

/// Checks the declared sizes against the boot disk with MAAS's SI arithmetic, before touching
/// anything: the OS volume must fit, and so must the Ceph volume.
pub fn check_sizes(spec: &Machine, mm: &MaasMachine) -> anyhow::Result<()> {
    let Layout::Lvm { root_bytes, ceph } = spec.layout else { return Ok(()) };
    let Some(disk) = mm.boot_disk.as_ref().map(|d| d.size).filter(|s| *s > 0) else {
        bail!(
            "MAAS shows no boot disk for {}\n  hint: commission the machine in MAAS so it discovers its disks",
            spec.hostname
        );
    };
    let max_root = disk.saturating_sub(EFI);
    let vg = (disk.saturating_sub(EFI + GPT_OVERHEAD) / EXTENT).saturating_sub(1) * EXTENT;
    if root_bytes > max_root || extents(root_bytes) > vg {
        bail!(
            "rootSize {} does not fit on the {} boot disk of {} (MAAS allows at most {} for the root volume)\n  hint: lower `storage.rootSize` for this machine",
            human_si(root_bytes),
            human_si(disk),
            spec.hostname,
            human_si(vg)
        );
    }
    let free = vg - extents(root_bytes);
    match ceph {
        CephVolume::Bytes(b) if extents(b) > free => bail!(
            "rootSize {} plus a {} Ceph volume do not fit on the {} boot disk of {} ({} left in the volume group)\n  hint: use `ceph: rest` or a smaller size",
            human_si(root_bytes),
            human_si(b),
            human_si(disk),
            spec.hostname,
            human_si(free)
        ),
        CephVolume::Rest if free < EXTENT => bail!(
            "no space is left for the Ceph volume on {} ({} disk, {} root)\n  hint: lower `storage.rootSize` or use `ceph: none`",
            spec.hostname,
            human_si(disk),
            human_si(root_bytes)
        ),
        _ => Ok(()),
    }
}

/// Does the machine (Ready: its volume groups; deployed: its block devices) carry the
/// declared layout?
fn layout_matches(spec: &Machine, mm: &MaasMachine, vgs: Option<&[VolumeGroup]>) -> Option<Result<(), String>> {
    let Layout::Lvm { root_bytes, ceph } = spec.layout else { return Some(Ok(())) };
    let root_name = format!("{VOLUME_GROUP}-lvroot");
    let ceph_name = format!("{VOLUME_GROUP}-{CEPH_LV}");
    let (root, cephlv) = match vgs {
        Some(vgs) => {
            let vg = vgs.iter().find(|v| v.name == VOLUME_GROUP)?;
            (vg.logical_volume("lvroot").cloned(), vg.logical_volume(CEPH_LV).cloned())
        }
        None => (
            mm.blockdevice_set.iter().find(|b| b.name == root_name).cloned(),
            mm.blockdevice_set.iter().find(|b| b.name == ceph_name).cloned(),
        ),
    };
    let Some(root) = root else { return Some(Err(format!("no LVM root volume {root_name}"))) };
    if root.size.abs_diff(extents(root_bytes)) > EXTENT {
        return Some(Err(format!("the root volume is {} instead of {}", human_si(root.size), human_si(root_bytes))));
    }
    match (ceph, cephlv) {
        (CephVolume::None, _) => Some(Ok(())),
        (_, None) => Some(Err(format!("no Ceph logical volume {ceph_name}"))),
        (_, Some(lv)) if lv.filesystem.as_ref().and_then(|f| f.fstype.as_ref()).is_some() => {
            Some(Err(format!("the Ceph volume {ceph_name} is formatted; Ceph needs it raw")))
        }
        (CephVolume::Bytes(b), Some(lv)) if lv.size.abs_diff(extents(b)) > EXTENT => {
            Some(Err(format!("the Ceph volume is {} instead of {}", human_si(lv.size), human_si(b))))
        }
        _ => Some(Ok(())),
    }
}

fn layout_actions(spec: &Machine, mm: &MaasMachine, vgs: Option<&[VolumeGroup]>) -> Vec<Action> {
    let Layout::Lvm { root_bytes, ceph } = spec.layout else { return vec![] };
    let ceph_action = match ceph {
        CephVolume::None => None,
        CephVolume::Rest => Some(Action::CreateCephLv { size: None }),
        CephVolume::Bytes(b) => Some(Action::CreateCephLv { size: Some(b) }),
    };
    // A Ready machine whose root volume is right and only lacks the Ceph volume (a run
    // interrupted between the two calls) gets just the missing volume.
    if let Some(vgs) = vgs
        && let Some(vg) = vgs.iter().find(|v| v.name == VOLUME_GROUP)
        && vg.logical_volume("lvroot").is_some_and(|lv| lv.size.abs_diff(extents(root_bytes)) <= EXTENT)
        && vg.logical_volume(CEPH_LV).is_none()
    {
        return ceph_action.into_iter().collect();
    }
    match layout_matches(spec, mm, vgs) {
        Some(Ok(())) => vec![],
        _ => std::iter::once(Action::SetLayout { root_bytes }).chain(ceph_action).collect(),
    }
}

/// The actions that bring `mm` to Deployed with `spec`'s layout, or why homelab must stop.
pub fn decide(spec: &Machine, mm: &MaasMachine, input: &DecideInput) -> anyhow::Result<Decision> {
    let mut d = Decision::default();
    let status = mm.status();
    let series = input.series.to_owned();
    let rename = (mm.hostname != spec.hostname).then(|| Action::Rename { to: spec.hostname.clone() });
    let ours = mm.owner.as_deref().is_none_or(|o| o == input.me);
    let failure = input.failure.map(|f| format!(": {f}")).unwrap_or_default();
    // Commissioning resets the layout to MAAS's default, so after it the whole layout is due.
    let full_layout = || -> Vec<Action> {
        match spec.layout {
            Layout::Keep => vec![],
            Layout::Lvm { root_bytes, ceph } => std::iter::once(Action::SetLayout { root_bytes })
                .chain(match ceph {
                    CephVolume::None => None,
                    CephVolume::Rest => Some(Action::CreateCephLv { size: None }),
                    CephVolume::Bytes(b) => Some(Action::CreateCephLv { size: Some(b) }),
                })
                .collect(),
        }
    };
    let deploy = [Action::Deploy { series }, Action::WaitDeployed];
    if !ours {
        bail!(
            "{} is owned by MAAS user `{}`, not by `{}` whose key homelab uses\n  hint: release it in MAAS (or use that user's key); homelab never takes a machine from another user",
            spec.hostname,
            mm.owner.as_deref().unwrap_or("?"),
            input.me
        );
    }
    match status {
        Status::New | Status::FailedCommissioning if status == Status::New || input.redeploy_failed => {
            d.actions.extend(rename);
            d.actions.push(Action::Commission);
            d.actions.push(Action::WaitReady);
            d.actions.extend(full_layout());
            d.actions.extend(deploy);
        }
        Status::FailedCommissioning => bail!(
            "MAAS could not commission {} (Failed commissioning){failure}\n  hint: check the machine's power and PXE settings in MAAS, then run `homelab up --redeploy-failed` to commission it again",
            spec.hostname
        ),
        Status::Commissioning | Status::Testing => {
            d.actions.push(Action::WaitReady);
            d.actions.extend(rename);
            d.actions.extend(full_layout());
            d.actions.extend(deploy);
        }
        Status::Ready => {
            d.actions.extend(rename);
            d.actions.extend(layout_actions(spec, mm, input.volume_groups));
            d.actions.extend(deploy);
        }
        Status::Releasing | Status::DiskErasing => {
            // Release keeps the layout designed while Ready; judge it once Ready again.
            d.actions.push(Action::WaitReady);
            d.actions.extend(rename);
            d.actions.extend(full_layout());
            d.actions.extend(deploy);
        }
        Status::Allocated => match layout_matches(spec, mm, None) {
            Some(Ok(())) => {
                d.actions.extend(rename);
                d.actions.extend(deploy);
            }
            _ => bail!(
                "{} is Allocated with a different disk layout, which MAAS only changes while a machine is Ready\n  hint: release it in MAAS (homelab never releases a machine on its own), then run `homelab up`",
                spec.hostname
            ),
        },
        Status::Deploying => d.actions.push(Action::WaitDeployed),
        Status::Deployed => {
            if let Some(Err(why)) = layout_matches(spec, mm, None) {
                d.drift.push((
                    format!("deployed with a different disk layout: {why}"),
                    "homelab never wipes a deployed machine; to re-lay it out, release it in MAAS and run `homelab up` (this erases the machine)".into(),
                ));
            }
            if mm.hostname != spec.hostname {
                d.drift.push((
                    format!("MAAS deployed it as `{}`", mm.hostname),
                    "rename it in cluster.yaml, or release and redeploy it".into(),
                ));
            }
        }
        Status::FailedDeployment if input.redeploy_failed => {
            d.actions.push(Action::Release);
            d.actions.push(Action::WaitReady);
            d.actions.extend(rename);
            d.actions.extend(full_layout());
            d.actions.extend(deploy);
        }
        Status::FailedDeployment => bail!(
            "MAAS failed to deploy {}{failure}\n  hint: read the installation log in MAAS (Machines → {} → Logs), fix the cause, then run `homelab up --redeploy-failed` to release and deploy it again",
            spec.hostname,
            mm.hostname
        ),
        Status::Broken => bail!(
            "{} is marked Broken in MAAS{}\n  hint: repair it and use \"Mark fixed\" in MAAS, then run `homelab up`",
            spec.hostname,
            mm.error_description.as_deref().filter(|s| !s.is_empty()).map(|s| format!(": {s}")).unwrap_or_default()
        ),
        Status::Unknown(code) => bail!(
            "MAAS reported no usable status for {} (status {code})\n  hint: check the machine in the MAAS UI and that homelab talks to a MAAS 3.x region",
            spec.hostname
        ),
        other => bail!(
            "{} is in MAAS state `{}`, which homelab does not move machines out of\n  hint: bring it back to Ready in MAAS, then run `homelab up`",
            spec.hostname,
            other.name()
        ),
    }
    Ok(d)
}

/// Every machine's latest MAAS record, refreshed by one list request per poll interval for
/// all machines being waited on (the cost of waiting does not grow with the machine count).
pub struct StatusBoard {
    client: Arc<MaasClient>,
    interval: Duration,
    watched: Mutex<HashSet<String>>,
    latest: watch::Sender<HashMap<String, Arc<MaasMachine>>>,
    last_error: Mutex<Option<String>>,
    running: Mutex<bool>,
}

impl StatusBoard {
    pub fn new(client: Arc<MaasClient>, interval: Duration) -> Arc<StatusBoard> {
        Arc::new(StatusBoard {
            client,
            interval,
            watched: Mutex::new(HashSet::new()),
            latest: watch::channel(HashMap::new()).0,
            last_error: Mutex::new(None),
            running: Mutex::new(false),
        })
    }

    fn watch(self: &Arc<Self>, system_id: &str) {
        if let Ok(mut w) = self.watched.lock() {
            w.insert(system_id.to_owned());
        }
        let start = self.running.lock().map(|mut r| !std::mem::replace(&mut *r, true)).unwrap_or(false);
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.poll_loop().await });
        }
    }

    fn unwatch(&self, system_id: &str) {
        if let Ok(mut w) = self.watched.lock() {
            w.remove(system_id);
        }
    }

    async fn poll_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.interval).await;
            let ids: Vec<String> = self.watched.lock().map(|w| w.iter().cloned().collect()).unwrap_or_default();
            if ids.is_empty() {
                if let Ok(mut r) = self.running.lock() {
                    // Re-check under the flag: a watcher may have arrived meanwhile.
                    if self.watched.lock().map(|w| w.is_empty()).unwrap_or(true) {
                        *r = false;
                        return;
                    }
                }
                continue;
            }
            match self.client.machines_by_id(&ids).await {
                Ok(ms) => {
                    if let Ok(mut e) = self.last_error.lock() {
                        *e = None;
                    }
                    self.latest.send_modify(|l| {
                        for m in ms {
                            l.insert(m.system_id.clone(), Arc::new(m));
                        }
                    });
                }
                Err(e) => {
                    if let Ok(mut le) = self.last_error.lock() {
                        *le = Some(e.to_string());
                    }
                }
            }
        }
    }

    fn get(&self, system_id: &str) -> Option<Arc<MaasMachine>> {
        self.latest.borrow().get(system_id).cloned()
    }

    fn forget(&self, system_id: &str) {
        self.latest.send_modify(|l| {
            l.remove(system_id);
        });
    }
}

#[derive(Default)]
pub struct MachinesPhase {
    board: OnceLock<Arc<StatusBoard>>,
    me: OnceLock<String>,
}

/// The MAAS user behind the key (checked with `whoami` before anything else).
async fn whoami(cx: &Ctx) -> anyhow::Result<String> {
    let maas = cx.maas()?;
    let me = maas.whoami().await.context("checking the MAAS API key (GET users/?op=whoami)")?;
    Ok(me.username)
}

/// Finds every machine in scope by MAC and records its MAAS facts (read-only).
pub async fn gather_facts(cx: &Ctx) -> anyhow::Result<()> {
    let maas = cx.maas()?;
    // All machines, not only those in scope: `add-node` needs the address of the node that
    // issues its join token.
    let machines = cx.cluster.machines.clone();
    let macs: Vec<String> = machines.iter().filter_map(|m| m.mac.clone()).collect();
    let found = maas.machines_by_mac(&macs).await.context("looking the machines up in MAAS by MAC")?;
    for m in &machines {
        let Some(mac) = &m.mac else { continue };
        if let Some(mm) = found.iter().find(|f| f.macs().contains(mac)) {
            cx.update_facts(&m.hostname, |f| {
                f.system_id = Some(mm.system_id.clone());
                f.status = Some(mm.status());
                f.status_message = mm.status_message.clone();
                f.maas_hostname = Some(mm.hostname.clone());
                if let Some(ip) = mm.ip() {
                    f.ip = Some(ip);
                }
            });
        }
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

    async fn me(&self, cx: &Ctx) -> anyhow::Result<String> {
        if let Some(me) = self.me.get() {
            return Ok(me.clone());
        }
        let me = whoami(cx).await?;
        let _ = self.me.set(me.clone());
        Ok(me)
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
        let me = self.me(cx).await?;
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
                    let err = board.last_error.lock().ok().and_then(|e| e.clone());
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
            cx.step(PHASE, &spec.hostname, action.describe(system_id));
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
        cx.step(
            PHASE,
            "maas",
            format!("register the SSH key {} for the MAAS user (POST account/prefs/sshkeys/)", key_label(&pubkey)),
        );
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

    async fn plan(&self, cx: &Ctx) -> anyhow::Result<Vec<Planned>> {
        let me = self.me(cx).await?;
        let mut out = Vec::new();
        if Self::needs_deploy(cx) {
            let pubkey = read_public_key(cx)?;
            if !has_key(&cx.maas()?.ssh_keys().await?, &pubkey) {
                out.push(Planned::new(
                    "maas",
                    format!(
                        "register the SSH key {} for MAAS user {me} (POST account/prefs/sshkeys/)",
                        key_label(&pubkey)
                    ),
                ));
            }
        }
        for m in cx.machines() {
            let Some(id) = cx.facts(&m.hostname).system_id else { return Err(unknown_mac(&m)) };
            let (_, d) = self.observe(cx, &m, &id).await?;
            for (msg, hint) in &d.drift {
                cx.drift(PHASE, &m.hostname, msg, hint);
            }
            out.extend(d.actions.iter().filter(|a| !a.is_wait()).map(|a| Planned::new(&m.hostname, a.describe(&id))));
        }
        Ok(out)
    }

    async fn prepare(&self, cx: &Ctx) -> anyhow::Result<()> {
        self.me(cx).await?;
        if Self::needs_deploy(cx) {
            self.ensure_ssh_key(cx).await?;
        }
        Ok(())
    }

    fn per_machine(&self) -> bool {
        true
    }

    async fn machine(&self, cx: &Ctx, spec: &Machine) -> anyhow::Result<()> {
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
