//! The pure part of the machines phase: from one machine's MAAS record and its declared spec,
//! the actions that bring it to Deployed with the declared disk layout (or why homelab must
//! stop), and the size checks done with MAAS's own SI arithmetic. No I/O: the same decision
//! produces the plan and drives the run.

use crate::config::size::human_si;
use crate::config::{CEPH_LV, CephVolume, Layout, Machine, VOLUME_GROUP};
use crate::maas::types::{Machine as MaasMachine, Status, VolumeGroup};
use anyhow::bail;

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

    /// What the action does, in a few words (the progress output).
    pub fn words(&self) -> String {
        match self {
            Action::Rename { to } => format!("rename to {to}"),
            Action::Release => "release the failed machine".into(),
            Action::Commission => "commission".into(),
            Action::WaitReady => "wait for MAAS status Ready".into(),
            Action::SetLayout { root_bytes } => {
                format!("lay out the boot disk: LVM, root volume {}", human_si(*root_bytes))
            }
            Action::CreateCephLv { size } => format!(
                "create the unformatted logical volume {VOLUME_GROUP}/{CEPH_LV} for Ceph, {}",
                size.map(human_si).unwrap_or_else(|| "all free space".into())
            ),
            Action::Deploy { series } => format!("deploy Ubuntu {series}"),
            Action::WaitDeployed => "wait for MAAS status Deployed".into(),
        }
    }

    /// The exact MAAS call the action makes (None for a wait).
    pub fn call(&self, system_id: &str) -> Option<String> {
        Some(match self {
            Action::Rename { to } => format!("PUT machines/{system_id}/ hostname={to}"),
            Action::Release => format!("POST machines/{system_id}/?op=release"),
            Action::Commission => format!("POST machines/{system_id}/?op=commission"),
            Action::SetLayout { root_bytes } => {
                format!("POST machines/{system_id}/?op=set_storage_layout storage_layout=lvm lv_size={root_bytes}")
            }
            Action::CreateCephLv { .. } => {
                format!("POST nodes/{system_id}/volume-group/<vgroot>/?op=create_logical_volume")
            }
            Action::Deploy { series } => format!("POST machines/{system_id}/?op=deploy distro_series={series}"),
            Action::WaitReady | Action::WaitDeployed => return None,
        })
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
