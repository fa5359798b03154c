//! The preflight of one host, pure: from the facts script's answer, every problem that stops
//! the run before anything changes (all of them at once) and the warnings. A machine MAAS
//! deployed is checked for what homelab's layout and the stack need; a pre-installed machine
//! also for what an install homelab did not make may lack (sudo, release, snapd, clock,
//! memory, space, DNS, its address, the Ceph volume it names); the MAAS host also for the
//! frictions of running MicroK8s beside MAAS. Thresholds and sources: docs/hosts.md.

use crate::config::{CEPH_MIN_BYTES, Carve, CephVolume, Cluster, Machine};
use crate::microk8s::HostFacts;

/// The most a host's clock may differ from this workstation's: every two machines are then
/// within 30 s of each other, the skew k0sctl refuses past.
pub const MAX_CLOCK_OFFSET_S: u64 = 15;
/// Memory below which MicroK8s with the stack's daemons cannot run; and below which a Ceph
/// OSD (its memory target is 4 GiB) will be squeezed.
pub const MIN_MEMORY_KIB: u64 = 2 * 1024 * 1024;
pub const LOW_MEMORY_KIB: u64 = 4 * 1024 * 1024;
/// Free space where snaps keep data: the MicroK8s snap and its images, above the kubelet's
/// 1 GiB eviction line; and a level worth a warning.
pub const MIN_SNAP_FREE_KIB: u64 = 5 * 1024 * 1024;
pub const LOW_SNAP_FREE_KIB: u64 = 20 * 1024 * 1024;
/// The Ubuntu releases and machine architectures homelab installs MicroK8s on.
pub const MIN_UBUNTU: (u32, u32) = (20, 4);
pub const ARCHES: &[&str] = &["x86_64", "aarch64"];

/// What the preflight knows beside the host's facts.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// This workstation's clock (seconds since the epoch) when the facts were read.
    pub now: u64,
    /// The machine is the MAAS region/rack controller.
    pub maas_host: bool,
    /// MAAS's `dns_trusted_acl` setting, when it was read.
    pub dns_trusted_acl: Option<String>,
    /// The SSH user, for the sudo hint.
    pub user: String,
}

/// The pod network MicroK8s's Calico uses by default.
pub const POD_CIDR: &str = "10.1.0.0/16";

pub type Warnings = Vec<(String, String)>;

/// Every preflight problem of one host (empty: all good) and its warnings.
pub fn preflight(cluster: &Cluster, m: &Machine, f: &HostFacts, cx: &Context) -> (Vec<String>, Warnings) {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if f.hostname.to_lowercase() != m.hostname {
        problems.push(if m.is_preinstalled() {
            format!(
                "the machine calls itself `{}` but cluster.yaml names it `{}` (MicroK8s names the node after the host) — homelab never renames a host: run `sudo hostnamectl set-hostname {}` on it, or name it `{}` in cluster.yaml",
                f.hostname,
                m.hostname,
                m.hostname,
                f.hostname.to_lowercase()
            )
        } else {
            format!(
                "the machine calls itself `{}` but cluster.yaml names it `{}` (MicroK8s uses the lowercased hostname as the node name) — rename it in MAAS and redeploy, or fix cluster.yaml",
                f.hostname, m.hostname
            )
        });
    }
    if m.is_preinstalled() {
        preinstalled(m, f, cx, &mut problems, &mut warnings);
    }
    if let Some(dev) = m.ceph_device() {
        ceph_volume(cluster, m, f, &dev, &mut problems);
    }
    match f.clock.as_str() {
        "yes" => {}
        "no" => warnings.push((
            "the clock is not synchronized (NTP)".to_owned(),
            "Ceph monitors and MAAS's OAuth need clocks within seconds; enable time sync with `sudo timedatectl set-ntp true`".to_owned(),
        )),
        _ => {}
    }
    if cx.maas_host {
        maas_host(f, cx, &mut warnings);
    }
    (problems, warnings)
}

fn ubuntu_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn gib(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

fn gib_b(bytes: u64) -> String {
    gib(bytes / 1024)
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// MicroK8s looks for a resolv.conf whose nameservers are all non-loopback:
/// `/etc/resolv.conf`, then systemd-resolved's upstream file.
pub fn usable_resolv(f: &HostFacts) -> bool {
    let ok = |v: &[String]| !v.is_empty() && v.iter().all(|n| !is_loopback(n));
    ok(&f.resolv) || ok(&f.resolv_systemd)
}

fn preinstalled(m: &Machine, f: &HostFacts, cx: &Context, problems: &mut Vec<String>, warnings: &mut Warnings) {
    if f.without_sudo {
        problems.push(format!(
            "`sudo` asks {user} for a password; homelab runs its commands with `sudo -n` — allow {user} passwordless sudo on {host}: `echo '{user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/homelab`",
            user = cx.user,
            host = m.hostname
        ));
    }
    match (f.os_id.as_str(), ubuntu_version(&f.os_version)) {
        ("ubuntu", Some(v)) if v >= MIN_UBUNTU => {}
        ("ubuntu", _) => problems.push(format!(
            "it runs Ubuntu {}; homelab installs MicroK8s on Ubuntu {}.{:02} or newer — upgrade it (`sudo do-release-upgrade`) or reinstall it",
            f.os_version, MIN_UBUNTU.0, MIN_UBUNTU.1
        )),
        (id, _) => problems.push(format!(
            "it runs `{id} {}`, not Ubuntu; homelab installs MicroK8s as a snap on Ubuntu {}.{:02} or newer — install Ubuntu Server on it (or let MAAS deploy it: give its `mac` instead of its `address`)",
            f.os_version, MIN_UBUNTU.0, MIN_UBUNTU.1
        )),
    }
    if !f.arch.is_empty() && !ARCHES.contains(&f.arch.as_str()) {
        problems.push(format!(
            "its architecture is {}; homelab installs MicroK8s on {} only",
            f.arch,
            ARCHES.join(" and ")
        ));
    }
    if !f.snapd {
        problems.push("snapd is not installed — MicroK8s comes as a snap: `sudo apt install snapd`".to_owned());
    }
    if let Some(t) = f.epoch {
        let off = t.abs_diff(cx.now);
        if off > MAX_CLOCK_OFFSET_S {
            problems.push(format!(
                "its clock is {off} s {} this workstation's (at most {MAX_CLOCK_OFFSET_S} s, so that every two machines are within 30 s, as MicroK8s's datastore and Ceph's monitors need) — enable time sync on it (`sudo timedatectl set-ntp true`), or fix this workstation's clock if it is the one that is off",
                if t > cx.now { "ahead of" } else { "behind" }
            ));
        }
    }
    if let Some(kib) = f.mem_kib {
        if kib < MIN_MEMORY_KIB {
            problems.push(format!(
                "it has {} of memory; MicroK8s with Ceph and Kafka needs at least {} — use a PC with more memory",
                gib(kib),
                gib(MIN_MEMORY_KIB)
            ));
        } else if kib < LOW_MEMORY_KIB && m.ceph_device().is_some() {
            warnings.push((
                format!("it has {} of memory; a Ceph OSD alone aims at 4 GiB", gib(kib)),
                "expect memory pressure; give Ceph's volume to a PC with more memory if it can".to_owned(),
            ));
        }
    }
    if let Some(kib) = f.snap_free_kib {
        if kib < MIN_SNAP_FREE_KIB {
            problems.push(format!(
                "only {} is free for /var/snap; MicroK8s and its images need at least {} (the kubelet evicts pods below 1 GiB) — free space on it",
                gib(kib),
                gib(MIN_SNAP_FREE_KIB)
            ));
        } else if kib < LOW_SNAP_FREE_KIB {
            warnings.push((
                format!("only {} is free for /var/snap", gib(kib)),
                "container images fill it over time; free space before it reaches the kubelet's 1 GiB eviction line"
                    .to_owned(),
            ));
        }
    }
    if let Some(addr) = m.address.as_deref().filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        && !f.addrs.is_empty()
    {
        let own: Vec<&str> = f.addrs.iter().map(|a| a.split('/').next().unwrap_or(a)).collect();
        // On several networks it is joined at `addr`, and the kubernetes phase pins the
        // kubelet's node address to it.
        if !own.contains(&addr) {
            problems.push(format!(
                "{addr} is not one of its addresses ({}) — the other machines join it at its `address`: declare the address it has on the machines' network",
                own.join(", ")
            ));
        }
    }
    if !usable_resolv(f) && !cx.maas_host {
        warnings.push((
            format!(
                "it has no non-loopback nameserver (/etc/resolv.conf: {})",
                if f.resolv.is_empty() { "none".to_owned() } else { f.resolv.join(" ") }
            ),
            "MicroK8s's DNS then forwards pods' queries to 8.8.8.8 and 8.8.4.4, not to your network's DNS; give the host a non-loopback nameserver (netplan `nameservers`) if pods must resolve local names".to_owned(),
        ));
    }
}

/// The Ceph volume: present and blank, or (carved) a volume group with room for it.
fn ceph_volume(cluster: &Cluster, m: &Machine, f: &HostFacts, dev: &str, problems: &mut Vec<String>) {
    // Without sudo, blkid and vgs cannot read the disks: the sudo problem says what to fix.
    let readable = !f.without_sudo;
    match (f.ceph_present.filter(|_| readable), &m.carve) {
        (Some(false), Some(c)) => carve_room(m, f, c, problems),
        (Some(false), None) if m.is_preinstalled() || m.device.is_some() => problems.push(format!(
            "the Ceph device {dev} does not exist on {} — `lsblk` lists its disks; name a blank one in `storage.device`",
            m.hostname
        )),
        (Some(false), None) => problems.push(format!(
            "the Ceph volume {dev} does not exist — the machine was deployed without homelab's disk layout; check its storage in MAAS (it needs an unformatted logical volume vgroot/ceph)"
        )),
        (Some(true), _) if !f.ceph_signature.is_empty() && !f.ceph_signature.contains("ceph_bluestore") => {
            problems.push(format!(
                "the Ceph volume {dev} is not blank (it carries a `{}` signature) — Ceph only takes a blank volume; if its data is disposable, wipe it with `sudo wipefs -a {dev}` on {}",
                f.ceph_signature, m.hostname
            ))
        }
        (Some(true), _) if f.ceph_bytes.is_some_and(|b| b < CEPH_MIN_BYTES) => problems.push(format!(
            "the Ceph volume {dev} has {}; ceph-volume refuses devices under 5 GiB — give Ceph a larger one",
            gib_b(f.ceph_bytes.unwrap_or_default())
        )),
        _ => {}
    }
    if cluster.rook.is_some() && f.ceph_present.is_some() {
        if !f.lvm2 {
            problems.push(
                "lvm2 is not installed — Rook needs it for OSDs on this machine; install it with `sudo apt install lvm2`"
                    .into(),
            );
        }
        if !f.rbd {
            problems.push("the rbd kernel module cannot be loaded — Ceph block volumes need it; install it with `sudo apt install linux-modules-extra-$(uname -r)`".into());
        }
    }
}

/// The bytes a carve asks for: all free extents, or the declared size.
pub fn carve_bytes(c: &Carve, vg_free: u64) -> u64 {
    match c.size {
        CephVolume::Bytes(b) => b,
        _ => vg_free,
    }
}

fn carve_room(m: &Machine, f: &HostFacts, c: &Carve, problems: &mut Vec<String>) {
    let vg = &c.volume_group;
    match &f.vg {
        Some(Some(v)) => {
            let want = carve_bytes(c, v.free_bytes);
            if v.free_bytes < want || v.free_bytes < CEPH_MIN_BYTES || v.free_extents == 0 {
                let asked = match c.size {
                    CephVolume::Bytes(b) => format!("the declared {} ({b} bytes)", gib_b(b)),
                    _ => "Ceph's minimum of 5 GiB".to_owned(),
                };
                problems.push(format!(
                    "the volume group {vg} has {} free ({} extents), below {asked} — homelab only uses free extents and never shrinks or moves a volume: free space in {vg} yourself, declare a smaller `ceph`, or give a blank `device`",
                    gib_b(v.free_bytes),
                    v.free_extents
                ));
            }
        }
        Some(None) => problems.push(format!(
            "there is no volume group {vg} on {} — `sudo vgs` lists its volume groups; declare one of them in `storage.volumeGroup`",
            m.hostname
        )),
        None => {}
    }
}

fn maas_host(f: &HostFacts, cx: &Context, warnings: &mut Warnings) {
    if f.timesyncd == "active" {
        warnings.push((
            "systemd-timesyncd runs beside MAAS's chrony".to_owned(),
            "MAAS's install guide asks to disable it, as the two conflict: `sudo systemctl disable --now systemd-timesyncd`"
                .to_owned(),
        ));
    }
    if !usable_resolv(f) {
        warnings.push((
            format!(
                "the MAAS host's nameservers are loopback only ({}): MicroK8s forwards pods' DNS to 8.8.8.8 and 8.8.4.4, so pods lose the `.maas` names",
                f.resolv.join(" ")
            ),
            "give the host a non-loopback nameserver (its own address on the machines' network, in netplan's `nameservers`)".to_owned(),
        ));
    }
    match &cx.dns_trusted_acl {
        Some(acl) if acl.split([' ', ',', ';']).any(|s| s.trim() == POD_CIDR) => {}
        Some(_) => warnings.push((
            format!("MAAS's DNS answers recursive queries only from the networks it knows; the pods' network {POD_CIDR} is not among them"),
            format!("add it: `maas $PROFILE maas set-config name=dns_trusted_acl value=\"{POD_CIDR}\"` (keep what the setting already lists)"),
        )),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layout;
    use crate::config::model::Role;

    fn pre(carve: Option<Carve>, device: Option<&str>) -> Machine {
        Machine {
            hostname: "maas".into(),
            mac: None,
            address: Some("10.0.0.1".into()),
            role: Role::ControlPlane,
            layout: Layout::Keep,
            device: device.map(str::to_owned),
            carve,
        }
    }

    fn good() -> HostFacts {
        HostFacts {
            hostname: "maas".into(),
            os_id: "ubuntu".into(),
            os_version: "22.04".into(),
            arch: "x86_64".into(),
            snapd: true,
            epoch: Some(1000),
            mem_kib: Some(16 << 20),
            snap_free_kib: Some(100 << 20),
            resolv: vec!["10.0.0.1".into()],
            addrs: vec!["10.0.0.1/24".into()],
            lvm2: true,
            rbd: true,
            clock: "yes".into(),
            ..Default::default()
        }
    }

    fn cluster() -> Cluster {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed-2023.yaml")).unwrap();
        let cat = crate::catalog::Catalog::embedded().unwrap();
        crate::config::validate_bytes(text.as_bytes(), "seed.yaml", &cat).cluster.unwrap()
    }

    fn cx() -> Context {
        Context { now: 1000, user: "ubuntu".into(), ..Default::default() }
    }

    #[test]
    fn a_good_preinstalled_host_passes() {
        let (p, w) = preflight(&cluster(), &pre(None, None), &good(), &cx());
        assert!(p.is_empty() && w.is_empty(), "{p:?} {w:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = HostFacts {
            hostname: "MaaS-Box".into(),
            without_sudo: true,
            os_id: "debian".into(),
            os_version: "12".into(),
            arch: "riscv64".into(),
            snapd: false,
            epoch: Some(1000 + 40),
            mem_kib: Some(1 << 20),
            snap_free_kib: Some(1 << 20),
            addrs: vec!["192.168.1.9/24".into()],
            ..good()
        };
        let (p, _) = preflight(&cluster(), &pre(None, None), &f, &cx());
        for needle in [
            "hostnamectl",
            "passwordless sudo",
            "not Ubuntu",
            "riscv64",
            "snapd",
            "40 s ahead",
            "memory",
            "/var/snap",
            "not one of its addresses",
        ] {
            assert!(p.iter().any(|x| x.contains(needle)), "no `{needle}` in {p:#?}");
        }
    }

    #[test]
    fn a_carve_needs_room_and_an_existing_group() {
        let c = |size| Some(Carve { volume_group: "ubuntu-vg".into(), size });
        let mut f = good();
        f.ceph_present = Some(false);
        f.vg = Some(Some(crate::microk8s::VgFacts {
            name: "ubuntu-vg".into(),
            free_bytes: 50 << 30,
            extent_bytes: 4 << 20,
            free_extents: 12800,
        }));
        let (p, _) = preflight(&cluster(), &pre(c(CephVolume::Rest), None), &f, &cx());
        assert!(p.is_empty(), "{p:?}");
        let (p, _) = preflight(&cluster(), &pre(c(CephVolume::Bytes(200 << 30)), None), &f, &cx());
        assert!(p.iter().any(|x| x.contains("never shrinks")), "{p:?}");
        f.vg = Some(None);
        let (p, _) = preflight(&cluster(), &pre(c(CephVolume::Rest), None), &f, &cx());
        assert!(p.iter().any(|x| x.contains("no volume group ubuntu-vg")), "{p:?}");
        // An LV carved by an earlier run is checked like any device: blank is fine.
        f.ceph_present = Some(true);
        f.ceph_bytes = Some(50 << 30);
        let (p, _) = preflight(&cluster(), &pre(c(CephVolume::Rest), None), &f, &cx());
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn the_maas_host_is_warned_of_its_frictions() {
        let f = HostFacts { resolv: vec!["127.0.0.53".into()], timesyncd: "active".into(), ..good() };
        let c = Context { maas_host: true, dns_trusted_acl: Some(String::new()), ..cx() };
        let (p, w) = preflight(&cluster(), &pre(None, None), &f, &c);
        assert!(p.is_empty(), "{p:?}");
        let text = format!("{w:?}");
        assert!(text.contains("timesyncd") && text.contains("8.8.8.8") && text.contains("dns_trusted_acl"), "{text}");
        let c = Context { dns_trusted_acl: Some("10.1.0.0/16".into()), ..c };
        let (_, w) = preflight(&cluster(), &pre(None, None), &f, &c);
        assert!(!format!("{w:?}").contains("dns_trusted_acl"));
    }
}
