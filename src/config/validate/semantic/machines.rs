//! The `machines` section of cluster.yaml: its semantic rules and its resolved form. A machine
//! with a `mac` is deployed by MAAS; one with an `address` is pre-installed (`preinstalled`).

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn layout(
        &mut self,
        ptr: &str,
        defaults: &model::StorageSpec,
        own: Option<&model::StorageSpec>,
    ) -> (Layout, Option<String>) {
        let own = own.cloned().unwrap_or_default();
        let layout = own.layout.or(defaults.layout).unwrap_or(model::Layout::Lvm);
        let device = own.device.clone();
        // A field set on the machine is reported at the machine, else at the defaults.
        let at = |field: &str, own_set: bool| -> String {
            if own_set { format!("{ptr}/storage/{field}") } else { format!("/storage/{field}") }
        };
        match layout {
            model::Layout::None => (Layout::Keep, device),
            model::Layout::Lvm => {
                let root_s = own.root_size.clone().or(defaults.root_size.clone());
                let root_p = at("rootSize", own.root_size.is_some());
                let root_bytes = match root_s.as_deref() {
                    None => 100_000_000_000,
                    Some(s) => match parse_bytes(s) {
                        Some(b) if b > crate::config::claims::MAX_DISK_BYTES => {
                            self.warn(
                                &root_p,
                                format!("rootSize {s} is larger than any disk a PC holds (the largest sold hold about 36 TB); MAAS will refuse it"),
                                "the root volume holds Ubuntu and MicroK8s: 50G to 100G is plenty; `homelab up --dry-run` checks it against each machine's disk",
                            );
                            b
                        }
                        Some(b) if b >= 3 * (1 << 30) => b,
                        Some(_) => {
                            self.err(
                                &root_p,
                                format!("rootSize {s} is below MAAS's minimum of 3 GiB (3221225472 bytes)"),
                                "Ubuntu needs room: use at least 20G",
                            );
                            0
                        }
                        None => {
                            self.err(
                                &root_p,
                                format!("`{s}` is not a size"),
                                "use an SI size as MAAS counts it: 100G, 512M",
                            );
                            0
                        }
                    },
                };
                let ceph_s = own.ceph.clone().or(defaults.ceph.clone()).unwrap_or_else(|| "rest".into());
                let ceph_p = at("ceph", own.ceph.is_some());
                let ceph = match ceph_s.as_str() {
                    "rest" => CephVolume::Rest,
                    "none" => CephVolume::None,
                    s => match parse_bytes(s) {
                        Some(b) if b >= 4 * (1 << 20) => CephVolume::Bytes(b),
                        Some(_) => {
                            self.err(
                                &ceph_p,
                                format!("a Ceph volume of {s} is too small"),
                                "MAAS's smallest logical volume is 4 MiB; Ceph wants at least 5G",
                            );
                            CephVolume::None
                        }
                        None => {
                            self.err(
                                &ceph_p,
                                format!("`{s}` is not `rest`, `none` or a size"),
                                "use `rest`, `none`, or a size like 200G",
                            );
                            CephVolume::None
                        }
                    },
                };
                if device.is_some() {
                    self.err_key(
                        &format!("{ptr}/storage/device"),
                        "`device` and an LVM Ceph volume are exclusive",
                        "use `layout: none` with `device`, or drop `device` to let homelab create the LV",
                    );
                }
                (Layout::Lvm { root_bytes, ceph }, device)
            }
        }
    }

    pub(in crate::config::validate) fn machines(&mut self, k: Option<&Kubernetes>) -> Vec<Machine> {
        let f = self.file;
        let microk8s = self.is_microk8s(k);
        let defaults = f.storage.clone().unwrap_or_default();
        if microk8s && f.machines.is_empty() {
            self.err_key(
                "/kubernetes",
                "`distribution: microk8s` needs at least one machine",
                "list the PCs under `machines:` with hostname, role and either `mac` (MAAS deploys it) or `address` (it runs Ubuntu already)",
            );
        }
        let mut out = Vec::new();
        let mut seen_host: HashMap<&str, usize> = HashMap::new();
        let mut seen_mac: HashMap<String, usize> = HashMap::new();
        let mut seen_addr: HashMap<String, usize> = HashMap::new();
        for (i, m) in f.machines.iter().enumerate() {
            let ptr = format!("/machines/{i}");
            if let Some(first) = seen_host.insert(&m.hostname, i) {
                let first_line = self.loc.pos(&format!("/machines/{first}/hostname")).value.line;
                self.err(
                    &format!("{ptr}/hostname"),
                    format!("hostname `{}` is used twice", m.hostname),
                    format!("it is already machines[{first}] (line {first_line}); every machine needs its own name"),
                );
            }
            let mac = m.mac.as_deref().map(|s| s.to_ascii_lowercase().replace('-', ":"));
            if let Some(mac) = &mac
                && let Some(first) = seen_mac.insert(mac.clone(), i)
            {
                let first_line = self.loc.pos(&format!("/machines/{first}/mac")).value.line;
                self.err(
                    &format!("{ptr}/mac"),
                    format!("MAC {mac} is used twice"),
                    format!("it is already machines[{first}] (line {first_line}); each PC has its own MAC"),
                );
            }
            let address = m.address.as_deref().map(|a| self.address(&ptr, a));
            if let Some(a) = &address
                && let Some(first) = seen_addr.insert(a.to_ascii_lowercase(), i)
            {
                let first_line = self.loc.pos(&format!("/machines/{first}/address")).value.line;
                self.err(
                    &format!("{ptr}/address"),
                    format!("address {a} is used twice"),
                    format!("it is already machines[{first}] (line {first_line}); every machine has its own address"),
                );
            }
            match (&mac, &address) {
                (Some(_), Some(_)) => self.err_key(
                    &format!("{ptr}/address"),
                    "a machine has either a `mac` (MAAS deploys it) or an `address` (it is already installed), not both",
                    "keep `mac` for a PC MAAS installs, or `address` for one that runs Ubuntu already (such as the MAAS host)",
                ),
                (None, None) if microk8s => self.err_key(
                    &ptr,
                    "missing field `mac` or `address`",
                    "MAAS finds a PC it deploys by the MAC of its boot interface: add `mac: \"52:54:00:…\"`; for a PC that runs Ubuntu already, add `address: 10.0.0.x`",
                ),
                (None, Some(_)) if !microk8s && k.is_some() => self.err_key(
                    &format!("{ptr}/address"),
                    "`address` is used with `distribution: microk8s` (homelab installs MicroK8s on the machine)",
                    "an existing cluster's nodes are reached through its API: remove `address`",
                ),
                _ => {}
            }
            if let Some(mac) = &mac
                && (mac == "00:00:00:00:00:00" || mac == "ff:ff:ff:ff:ff:ff")
            {
                self.err(
                    &format!("{ptr}/mac"),
                    format!("{mac} is not a real interface address"),
                    "copy the MAC from MAAS or the PC's network settings",
                );
            }
            if mac.is_some()
                && let Some(s) = &m.storage
                && s.volume_group.is_some()
            {
                self.err_key(
                    &format!("{ptr}/storage/volumeGroup"),
                    format!("MAAS makes this machine's volumes in its own volume group `{VOLUME_GROUP}`"),
                    "drop `volumeGroup`; `rootSize` and `ceph` size the volumes MAAS makes",
                );
            }
            let preinstalled = microk8s && mac.is_none() && address.is_some();
            let (layout, device, carve) = if preinstalled {
                let (device, carve) = self.preinstalled_storage(&ptr, m.storage.as_ref());
                (Layout::Keep, device, carve)
            } else if microk8s {
                let (layout, device) = self.layout(&ptr, &defaults, m.storage.as_ref());
                (layout, device, None)
            } else {
                if let Some(s) = &m.storage
                    && (s.layout.is_some() || s.root_size.is_some() || s.ceph.is_some() || s.volume_group.is_some())
                {
                    self.err_key(
                        &format!("{ptr}/storage"),
                        "disk layouts are applied by MAAS, which an existing cluster does not use",
                        "give the node's raw Ceph disk instead: `storage: {device: /dev/sdb}`",
                    );
                }
                (Layout::Keep, m.storage.as_ref().and_then(|s| s.device.clone()), None)
            };
            out.push(Machine {
                hostname: m.hostname.clone(),
                mac,
                address,
                role: m.role.unwrap_or_default(),
                layout,
                device,
                carve,
            });
        }
        if microk8s && !out.is_empty() {
            let cps = out.iter().filter(|m| m.role == Role::ControlPlane).count();
            if cps == 0 {
                self.err_key(
                    "/machines",
                    "no machine has `role: control-plane`",
                    "make the first machine (or three machines) `role: control-plane`",
                );
            } else if cps == 2 {
                // What a 3-PC cluster is after `remove-node` of a control plane: valid, but
                // without datastore HA, and said so on every run.
                self.warn(
                    "/machines",
                    "2 control-plane machines: dqlite has no fault tolerance (losing either stops the cluster)",
                    "add a third with `homelab add-node MAC --role control-plane`, or make one `role: worker`",
                );
            } else if cps % 2 == 0 {
                let hint = if cps == 2 {
                    "with 2 control-plane nodes dqlite has no fault tolerance (losing either stops the cluster); use 1 or 3, and make the others `role: worker`"
                } else {
                    "an even number of datastore voters tolerates no more failures than one fewer; use an odd number (3 or 5) and make the rest workers"
                };
                self.err_key(
                    "/machines",
                    format!("{cps} control-plane machines: the control plane needs an odd number"),
                    hint,
                );
            }
        }
        out
    }
}
