//! The rules of a pre-installed machine in cluster.yaml (`address`, no `mac`): its address,
//! and the Ceph volume it gives — a blank device it names, or a logical volume homelab carves
//! from a volume group's free extents. MAAS's layout fields do not apply to it.

use super::*;

impl Semantic<'_> {
    /// The address is an IP address or a DNS name; returns it as written, trimmed.
    pub(in crate::config::validate) fn address(&mut self, ptr: &str, a: &str) -> String {
        let a = a.trim().trim_start_matches('[').trim_end_matches(']').to_owned();
        let ip = a.parse::<std::net::IpAddr>().is_ok();
        let dns = !a.is_empty()
            && a.len() <= 253
            && a.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
            && !a.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()));
        if !ip && !dns {
            self.err(
                &format!("{ptr}/address"),
                format!("`{a}` is neither an IP address nor a DNS name"),
                "give the address homelab reaches the PC at over SSH, e.g. 10.0.0.1 or maas.lan",
            );
        }
        if let Ok(std::net::IpAddr::V4(v4)) = a.parse::<std::net::IpAddr>()
            && (v4.is_loopback() || v4.is_unspecified() || v4.is_broadcast())
        {
            self.err(
                &format!("{ptr}/address"),
                format!("{a} cannot be a cluster node's address"),
                "the other machines join this one at its address: give its address on the machines' network",
            );
        }
        a
    }

    /// The Ceph volume of a pre-installed machine: `(device, carve)`.
    pub(in crate::config::validate) fn preinstalled_storage(
        &mut self,
        ptr: &str,
        own: Option<&model::StorageSpec>,
    ) -> (Option<String>, Option<Carve>) {
        let Some(s) = own else { return (None, None) };
        if s.layout.is_some() || s.root_size.is_some() {
            let field = if s.layout.is_some() { "layout" } else { "rootSize" };
            self.err_key(
                &format!("{ptr}/storage/{field}"),
                format!("`{field}` is a disk layout MAAS applies when it deploys; a pre-installed machine keeps its disks"),
                "name Ceph's volume instead: a blank disk `storage: {device: /dev/sdb}`, or a new logical volume from free extents `storage: {volumeGroup: ubuntu-vg, ceph: rest}`",
            );
        }
        match (&s.device, &s.volume_group) {
            (Some(_), Some(_)) => {
                self.err_key(
                    &format!("{ptr}/storage/volumeGroup"),
                    "`device` and `volumeGroup` are exclusive",
                    "use `device` for a blank disk, partition or logical volume that exists, or `volumeGroup` (with `ceph`) for homelab to carve one",
                );
                (s.device.clone(), None)
            }
            (Some(d), None) => {
                if s.ceph.as_deref().is_some_and(|c| c != "rest") {
                    self.err_key(
                        &format!("{ptr}/storage/ceph"),
                        "a `device` is given to Ceph whole; `ceph` sizes a logical volume homelab carves",
                        "drop `ceph`, or use `volumeGroup` instead of `device`",
                    );
                }
                (Some(d.clone()), None)
            }
            (None, Some(vg)) => {
                let size_s = s.ceph.clone().unwrap_or_else(|| "rest".into());
                let at = format!("{ptr}/storage/ceph");
                let size = match size_s.as_str() {
                    "rest" => CephVolume::Rest,
                    "none" => {
                        self.err_key(
                            &at,
                            "`ceph: none` with a `volumeGroup` asks for a volume of no size",
                            "drop `storage` to give this machine no Ceph volume, or use `ceph: rest`",
                        );
                        CephVolume::Rest
                    }
                    other => match parse_bytes(other) {
                        Some(b) if b >= CEPH_MIN_BYTES => CephVolume::Bytes(b),
                        Some(_) => {
                            self.err(
                                &at,
                                format!("a Ceph volume of {other} is below Ceph's minimum of 5 GiB"),
                                "ceph-volume refuses devices under 5 GiB: use `rest` or at least 5Gi",
                            );
                            CephVolume::Rest
                        }
                        None => {
                            self.err(
                                &at,
                                format!("`{other}` is not `rest` or a size"),
                                "use `rest`, or a size like 200G",
                            );
                            CephVolume::Rest
                        }
                    },
                };
                (None, Some(Carve { volume_group: vg.clone(), size }))
            }
            (None, None) => {
                if s.ceph.is_some() {
                    self.err_key(
                        &format!("{ptr}/storage/ceph"),
                        "`ceph` on a pre-installed machine needs the volume group to carve it from",
                        "add `volumeGroup: ubuntu-vg` (see `sudo vgs` on the machine), or give a blank `device`",
                    );
                }
                (None, None)
            }
        }
    }
}
