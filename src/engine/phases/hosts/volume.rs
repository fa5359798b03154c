//! Carving the Ceph logical volume on a pre-installed machine: when the preflight found the
//! volume missing and room for it in the declared volume group, one `lvcreate` from free
//! extents. A volume an earlier run made is found by the preflight (present, blank) and
//! used, so the volume is made once however often the run is stopped and started again.

use super::PHASE;
use super::preflight::carve_bytes;
use crate::config::size::human_iec;
use crate::config::{CEPH_LV, Carve, CephVolume, Machine};
use crate::engine::context::Ctx;
use crate::microk8s::{HostFacts, lvm};
use crate::ssh::Remote;
use anyhow::{Result, bail};
use std::sync::Arc;

/// The one text of carving the volume, for the plan and the run.
fn words(c: &Carve, bytes: u64) -> String {
    let size = match c.size {
        CephVolume::Bytes(_) => human_iec(bytes),
        _ => format!("all {} free", human_iec(bytes)),
    };
    format!("create the Ceph logical volume {}/{CEPH_LV} of {size}, from free extents only", c.volume_group)
}

/// Whether the machine still needs its Ceph volume carved (the preflight passed).
pub fn needs_carving(m: &Machine, f: &HostFacts) -> bool {
    m.carve.is_some() && f.ceph_present == Some(false)
}

/// Makes the volume when it is missing; in a dry run, plans it.
pub async fn ensure_carved(cx: &Ctx, m: &Machine, r: &Arc<dyn Remote>, f: &HostFacts) -> Result<()> {
    let Some(c) = m.carve.as_ref().filter(|_| needs_carving(m, f)) else { return Ok(()) };
    let free = f.vg.clone().flatten().map(|v| v.free_bytes).unwrap_or_default();
    let bytes = match c.size {
        CephVolume::Bytes(b) => Some(b),
        _ => None,
    };
    let cmd = lvm::lvcreate_cmd(&c.volume_group, CEPH_LV, bytes);
    if cx.dry_run() {
        cx.step_call(PHASE, &m.hostname, words(c, carve_bytes(c, free)), Some(cmd.display()));
        return Ok(());
    }
    cx.act_call(PHASE, &m.hostname, words(c, carve_bytes(c, free)), Some(cmd.display())).await?;
    let out = r.run(&cmd).await?;
    if !out.ok() {
        bail!("{}: {}", m.hostname, lvm::lvcreate_failure(&c.volume_group, CEPH_LV, &out));
    }
    Ok(())
}
