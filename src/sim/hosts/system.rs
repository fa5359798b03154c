//! What a simulated machine's operating system is, beside MicroK8s: its release and
//! architecture, memory and free space, DNS, networks, clock, sudo, and its disks with their
//! LVM layout. A machine MAAS deployed gets MAAS's layout (the Ceph volume `vgroot/ceph` is
//! MAAS's business, see `sim::maas`); a pre-installed one ([`Preinstalled`]) gets the Ubuntu
//! server installer's guided LVM layout for its disk size (docs/simulators.md): VG
//! `ubuntu-vg`, root LV `ubuntu-lv` sized by the installer's rule of its release, the rest
//! free extents. `lvcreate` follows lvm2's answers and exit codes.

use crate::ssh::Output;

const GIB: u64 = 1 << 30;
/// LVM's default extent size, and the installer's rounding chunk.
pub const EXTENT: u64 = 4 << 20;

/// Which Ubuntu installer laid the disk out: the root LV's size rule differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// 20.04 GA (tag 20.04.1): a fixed 4 GiB root volume.
    Focal2004Ga,
    /// 20.05.1 … 21.11: the scaled rule in 2 GiB units (thresholds 20/40/400 GiB, cap 200 GiB).
    FocalScaled,
    /// 21.12.1 on (22.04, 24.04): below 10 GiB all; 10–20 GiB → 10 GiB; 20–200 GiB → half;
    /// from 200 GiB → 100 GiB.
    Current,
}

/// The root LV the installer makes in a volume group of `vg` bytes, rounded down to 4 MiB.
pub fn root_lv_bytes(vg: u64, installer: Installer) -> u64 {
    let r = match installer {
        Installer::Focal2004Ga => (4 * GIB).min(vg),
        Installer::FocalScaled => match vg {
            v if v < 20 * GIB => v,
            v if v < 40 * GIB => 20 * GIB,
            v if v < 400 * GIB => v / 2,
            _ => 200 * GIB,
        },
        Installer::Current => match vg {
            v if v < 10 * GIB => v,
            v if v < 20 * GIB => 10 * GIB,
            v if v < 200 * GIB => v / 2,
            _ => 100 * GIB,
        },
    };
    r / EXTENT * EXTENT
}

/// One logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lv {
    pub name: String,
    pub bytes: u64,
    /// A filesystem or other signature on it (`ext4`), empty when blank.
    pub signature: String,
}

/// One volume group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vg {
    pub name: String,
    pub bytes: u64,
    pub lvs: Vec<Lv>,
}

impl Vg {
    pub fn free_bytes(&self) -> u64 {
        let used: u64 = self.lvs.iter().map(|l| l.bytes.div_ceil(EXTENT) * EXTENT).sum();
        self.bytes.saturating_sub(used) / EXTENT * EXTENT
    }
}

/// A whole disk or partition other than the installer's, e.g. a second disk `/dev/sdb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: String,
    pub bytes: u64,
    pub signature: String,
}

/// The operating system of a simulated machine.
#[derive(Debug, Clone)]
pub struct System {
    pub os: String,
    pub arch: String,
    pub mem_kib: u64,
    pub snap_free_kib: u64,
    pub snapd: bool,
    pub resolv: Vec<String>,
    pub resolv_systemd: Vec<String>,
    /// Networks besides the machine's address (`192.168.1.5/24`).
    pub other_addrs: Vec<String>,
    pub timesyncd: String,
    /// Seconds its clock is ahead of the real one (negative: behind).
    pub clock_skew_s: i64,
    /// `sudo -n` refuses: sudo wants a password.
    pub sudo_password: bool,
    pub vgs: Vec<Vg>,
    pub disks: Vec<Disk>,
}

impl Default for System {
    /// What MAAS deploys: Ubuntu 22.04 on amd64, enough of everything, DNS through MAAS.
    fn default() -> System {
        System {
            os: "ubuntu 22.04".into(),
            arch: "x86_64".into(),
            mem_kib: 16 << 20,
            snap_free_kib: 80 << 20,
            snapd: true,
            resolv: vec!["127.0.0.53".into()],
            resolv_systemd: vec!["10.0.0.1".into()],
            other_addrs: vec![],
            timesyncd: "active".into(),
            clock_skew_s: 0,
            sudo_password: false,
            vgs: vec![],
            disks: vec![],
        }
    }
}

impl System {
    /// The block device at `path`: an LV (`/dev/VG/LV` or `/dev/mapper/VG-LV`) or a disk,
    /// with its size and signature.
    pub fn device(&self, path: &str) -> Option<(u64, String)> {
        for vg in &self.vgs {
            for lv in &vg.lvs {
                let mapper = format!("/dev/mapper/{}-{}", vg.name.replace('-', "--"), lv.name.replace('-', "--"));
                if path == format!("/dev/{}/{}", vg.name, lv.name) || path == mapper {
                    return Some((lv.bytes, lv.signature.clone()));
                }
            }
        }
        self.disks.iter().find(|d| d.path == path).map(|d| (d.bytes, d.signature.clone()))
    }

    /// `vgs --noheadings --nosuffix --units b -o vg_name,vg_free,vg_extent_size,vg_free_count`
    /// of one group (empty when it does not exist).
    pub fn vgs_line(&self, name: &str) -> String {
        self.vgs
            .iter()
            .find(|v| v.name == name)
            .map(|v| format!("  {} {} {} {}", v.name, v.free_bytes(), EXTENT, v.free_bytes() / EXTENT))
            .unwrap_or_default()
    }

    /// `lvcreate --yes -W y -Z y -n LV (-l 100%FREE | -L <bytes>b) VG`, as lvm2 answers it.
    pub fn lvcreate(&mut self, args: &[&str]) -> Output {
        let out = |code: i32, o: &str, e: &str| Output { code: Some(code), stdout: o.into(), stderr: e.into() };
        let get = |flag: &str| args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1)).copied();
        let (Some(name), Some(vg_name)) = (get("-n"), args.last().copied()) else {
            return out(
                3,
                "",
                "  Please specify a logical volume name.\n  Run `lvcreate --help' for more information.\n",
            );
        };
        let Some(vg) = self.vgs.iter_mut().find(|v| v.name == vg_name) else {
            return out(
                5,
                "",
                &format!("  Volume group \"{vg_name}\" not found\n  Cannot process volume group {vg_name}\n"),
            );
        };
        if vg.lvs.iter().any(|l| l.name == name) {
            return out(5, "", &format!("  Logical Volume \"{name}\" already exists in volume group \"{vg_name}\"\n"));
        }
        let free = vg.free_bytes();
        let want = match (get("-l"), get("-L")) {
            (Some("100%FREE"), _) => {
                if free == 0 {
                    return out(5, "", "  Calculated size of logical volume is 0 extents. Needs to be larger.\n");
                }
                free
            }
            (_, Some(size)) => match size.strip_suffix('b').and_then(|s| s.parse::<u64>().ok()) {
                Some(b) => b.div_ceil(EXTENT) * EXTENT,
                None => return out(3, "", &format!("  Invalid argument for --size: {size}\n")),
            },
            _ => return out(3, "", "  Please specify either size or extents.\n"),
        };
        if want > free {
            return out(
                5,
                "",
                &format!(
                    "  Volume group \"{vg_name}\" has insufficient free space ({} extents): {} required.\n",
                    free / EXTENT,
                    want / EXTENT
                ),
            );
        }
        // `-W y -Z y`: old signatures wiped, the start zeroed — the new volume is blank.
        vg.lvs.push(Lv { name: name.to_owned(), bytes: want, signature: String::new() });
        out(0, &format!("  Logical volume \"{name}\" created.\n"), "")
    }
}

/// A machine that runs Ubuntu already, reached by SSH at its address: what a test or the
/// demo declares of it.
#[derive(Debug, Clone)]
pub struct Preinstalled {
    pub hostname: String,
    pub ip: String,
    /// The boot disk's size; the installer's layout follows from it.
    pub disk_bytes: u64,
    pub installer: Installer,
    pub system: System,
}

impl Preinstalled {
    /// A 22.04 server on a disk of `disk_gib` GiB, installed with the guided LVM layout.
    pub fn new(hostname: &str, ip: &str, disk_gib: u64) -> Preinstalled {
        Preinstalled {
            hostname: hostname.into(),
            ip: ip.into(),
            disk_bytes: disk_gib * GIB,
            installer: Installer::Current,
            system: System { resolv_systemd: vec!["10.0.0.1".into()], ..System::default() },
        }
    }

    /// The system with the installer's disk layout: 1 GiB ESP, 2 GiB `/boot`, the rest one
    /// partition for `ubuntu-vg` with `ubuntu-lv` (ext4, `/`).
    pub fn laid_out(&self) -> System {
        let mut s = self.system.clone();
        if s.vgs.is_empty() && self.disk_bytes > 3 * GIB {
            let vg = (self.disk_bytes - 3 * GIB) / EXTENT * EXTENT;
            let root = root_lv_bytes(vg, self.installer);
            s.vgs.push(Vg {
                name: "ubuntu-vg".into(),
                bytes: vg,
                lvs: vec![Lv { name: "ubuntu-lv".into(), bytes: root, signature: "ext4".into() }],
            });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installers_root_volume_follows_its_release() {
        assert_eq!(root_lv_bytes(8 * GIB, Installer::Current), 8 * GIB);
        assert_eq!(root_lv_bytes(15 * GIB, Installer::Current), 10 * GIB);
        assert_eq!(root_lv_bytes(100 * GIB, Installer::Current), 50 * GIB);
        assert_eq!(root_lv_bytes(900 * GIB, Installer::Current), 100 * GIB);
        assert_eq!(root_lv_bytes(900 * GIB, Installer::FocalScaled), 200 * GIB);
        assert_eq!(root_lv_bytes(30 * GIB, Installer::FocalScaled), 20 * GIB);
        assert_eq!(root_lv_bytes(900 * GIB, Installer::Focal2004Ga), 4 * GIB);
        // Rounded down to the 4 MiB chunk.
        assert_eq!(root_lv_bytes(100 * GIB + 6 * (1 << 20), Installer::Current) % EXTENT, 0);
    }

    #[test]
    fn lvcreate_answers_as_lvm2_does() {
        let mut s = Preinstalled::new("maas", "10.0.0.1", 500).laid_out();
        let free = s.vgs[0].free_bytes();
        assert_eq!(free, s.vgs[0].bytes - 100 * GIB);
        let too_big = format!("{}b", free + GIB);
        let o = s.lvcreate(&["--yes", "-W", "y", "-Z", "y", "-n", "ceph", "-L", &too_big, "ubuntu-vg"]);
        assert_eq!(o.code, Some(5));
        assert!(o.stderr.contains("insufficient free space"), "{}", o.stderr);
        let o = s.lvcreate(&["--yes", "-n", "ceph", "-l", "100%FREE", "nope-vg"]);
        assert_eq!(o.code, Some(5));
        assert!(o.stderr.contains("Volume group \"nope-vg\" not found"));
        let o = s.lvcreate(&["--yes", "-W", "y", "-Z", "y", "-n", "ceph", "-l", "100%FREE", "ubuntu-vg"]);
        assert_eq!((o.code, o.stdout.trim()), (Some(0), "Logical volume \"ceph\" created."));
        assert_eq!(s.device("/dev/ubuntu-vg/ceph"), Some((free, String::new())));
        assert_eq!(s.device("/dev/mapper/ubuntu--vg-ceph"), Some((free, String::new())));
        let o = s.lvcreate(&["--yes", "-n", "ceph", "-l", "100%FREE", "ubuntu-vg"]);
        assert!(o.stderr.contains("already exists"), "{}", o.stderr);
        let o = s.lvcreate(&["--yes", "-n", "more", "-l", "100%FREE", "ubuntu-vg"]);
        assert!(o.stderr.contains("is 0 extents"), "{}", o.stderr);
        assert_eq!(s.vgs_line("ubuntu-vg"), format!("  ubuntu-vg 0 {EXTENT} 0"));
        assert_eq!(s.vgs_line("other"), "");
    }
}
