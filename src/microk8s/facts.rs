//! The one round trip that gathers every fact the hosts and kubernetes phases compare, and
//! its parsing: `key=value` lines (multi-line values base64). It runs with sudo (blkid and
//! vgs need root); when sudo asks for a password it runs again without, so a pre-installed
//! machine's preflight still reports everything else at once (docs/hosts.md).

use crate::ssh::{Cmd, Output};
use anyhow::{Result, bail};
use base64::Engine as _;
use std::collections::HashMap;
use std::time::Duration;

/// Arguments: the Ceph device (or empty), the volume group a Ceph LV is carved from (or
/// empty), then the peers whose names the host should resolve.
pub const FACTS_SCRIPT: &str = r#"# homelab:facts v2
dev="$1"; vg="$2"; shift 2
echo "hostname=$(hostname)"
if command -v cloud-init >/dev/null 2>&1; then echo "cloud_init=$(cloud-init status 2>/dev/null | sed -n 's/^status: //p' | head -n1)"; else echo "cloud_init=absent"; fi
echo "hosts_b64=$(base64 -w0 /etc/hosts 2>/dev/null)"
if [ -n "$dev" ]; then
  if [ -b "$dev" ]; then
    echo "ceph_dev=present"
    echo "ceph_sig=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null; blkid -p -o value -s PTTYPE "$dev" 2>/dev/null)"
    echo "ceph_bytes=$(blockdev --getsize64 "$dev" 2>/dev/null)"
  else
    echo "ceph_dev=missing"
  fi
fi
if [ -n "$vg" ]; then
  echo "vg=$(vgs --noheadings --nosuffix --units b -o vg_name,vg_free,vg_extent_size,vg_free_count "$vg" 2>/dev/null | head -n1)"
fi
if command -v lvm >/dev/null 2>&1 || [ -x /sbin/lvm ] || [ -x /usr/sbin/lvm ]; then echo "lvm2=yes"; else echo "lvm2=no"; fi
if [ -d /sys/module/rbd ] || modprobe -n rbd >/dev/null 2>&1; then echo "rbd=yes"; else echo "rbd=no"; fi
echo "clock=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || echo unknown)"
echo "epoch=$(date +%s)"
echo "snap_tracking=$(snap list microk8s 2>/dev/null | awk 'NR==2 {print $4}')"
if command -v snap >/dev/null 2>&1; then echo "snapd=yes"; else echo "snapd=no"; fi
echo "os=$(. /etc/os-release 2>/dev/null; echo "${ID:-unknown} ${VERSION_ID:-unknown}")"
echo "arch=$(uname -m)"
echo "mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
d=/var/snap; [ -d "$d" ] || d=/var
echo "snap_free_kib=$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
echo "resolv=$(awk '/^nameserver/ {print $2}' /etc/resolv.conf 2>/dev/null | tr '\n' ' ')"
echo "resolv_systemd=$(awk '/^nameserver/ {print $2}' /run/systemd/resolve/resolv.conf 2>/dev/null | tr '\n' ' ')"
echo "addrs=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
echo "timesyncd=$(systemctl is-active systemd-timesyncd 2>/dev/null || true)"
for p in "$@"; do echo "resolve_$p=$(getent hosts "$p" | awk '{print $1; exit}')"; done
"#;

/// The facts command: with sudo (`sudo: false` for the second try when sudo wants a password).
pub fn facts_cmd(ceph_device: Option<&str>, volume_group: Option<&str>, peers: &[String], sudo: bool) -> Cmd {
    let mut argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        FACTS_SCRIPT.to_owned(),
        "homelab-facts".to_owned(),
        ceph_device.unwrap_or("").to_owned(),
        volume_group.unwrap_or("").to_owned(),
    ];
    argv.extend(peers.iter().cloned());
    Cmd { argv, sudo, stdin: None, timeout: Duration::from_secs(60), read_only: true }
}

/// Whether a command's failure is sudo asking for a password (`sudo -n` cannot give one).
pub fn sudo_wants_password(out: &Output) -> bool {
    !out.ok() && out.stderr.contains("sudo:") && out.stderr.contains("password")
}

/// A volume group as `vgs` reports it, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VgFacts {
    pub name: String,
    pub free_bytes: u64,
    pub extent_bytes: u64,
    pub free_extents: u64,
}

/// What the facts script found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    pub cloud_init: String,
    pub etc_hosts: String,
    /// `None`: no Ceph device asked for.
    pub ceph_present: Option<bool>,
    /// Filesystem or partition-table signature on the Ceph device (empty when blank).
    pub ceph_signature: String,
    /// The Ceph device's size, when it exists and could be read.
    pub ceph_bytes: Option<u64>,
    /// The volume group asked for: `None` when none was asked for, `Some(None)` when it does
    /// not exist.
    pub vg: Option<Option<VgFacts>>,
    pub lvm2: bool,
    pub rbd: bool,
    /// `yes`, `no` or `unknown`.
    pub clock: String,
    /// The host's clock (seconds since the epoch) when the script ran.
    pub epoch: Option<u64>,
    /// `snap list` Tracking column, empty when MicroK8s is not installed.
    pub snap_tracking: String,
    pub snapd: bool,
    /// `/etc/os-release` ID and VERSION_ID (`ubuntu`, `22.04`).
    pub os_id: String,
    pub os_version: String,
    /// `uname -m` (`x86_64`, `aarch64`).
    pub arch: String,
    pub mem_kib: Option<u64>,
    /// Free space where snaps keep their data (`/var/snap`, else `/var`).
    pub snap_free_kib: Option<u64>,
    /// Nameservers of `/etc/resolv.conf` and of systemd-resolved's upstream file.
    pub resolv: Vec<String>,
    pub resolv_systemd: Vec<String>,
    /// Global IPv4 addresses with their prefix (`10.0.0.1/24`).
    pub addrs: Vec<String>,
    /// `systemctl is-active systemd-timesyncd` (`active`, `inactive`, …).
    pub timesyncd: String,
    /// Peer name → address it resolves to (empty when it does not resolve).
    pub resolves: HashMap<String, String>,
    /// The facts were read without sudo, because sudo asked for a password.
    pub without_sudo: bool,
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_owned).collect()
}

fn parse_vg(v: &str) -> Option<VgFacts> {
    let w: Vec<&str> = v.split_whitespace().collect();
    match w.as_slice() {
        [name, free, extent, count] => Some(VgFacts {
            name: (*name).to_owned(),
            free_bytes: free.parse().ok()?,
            extent_bytes: extent.parse().ok()?,
            free_extents: count.parse().ok()?,
        }),
        _ => None,
    }
}

pub fn parse_facts(out: &Output) -> Result<HostFacts> {
    if !out.ok() {
        bail!("the facts script failed (exit {:?}): {}", out.code, out.text());
    }
    let mut f = HostFacts::default();
    let mut seen = false;
    for line in out.stdout.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim();
        seen |= k == "hostname";
        match k {
            "hostname" => f.hostname = v.to_owned(),
            "cloud_init" => f.cloud_init = v.to_owned(),
            "hosts_b64" => {
                f.etc_hosts = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()
            }
            "ceph_dev" => f.ceph_present = Some(v == "present"),
            "ceph_sig" => f.ceph_signature = v.split_whitespace().collect::<Vec<_>>().join(" "),
            "ceph_bytes" => f.ceph_bytes = v.parse().ok(),
            "vg" => f.vg = Some(parse_vg(v)),
            "lvm2" => f.lvm2 = v == "yes",
            "rbd" => f.rbd = v == "yes",
            "clock" => f.clock = v.to_owned(),
            "epoch" => f.epoch = v.parse().ok(),
            "snap_tracking" => f.snap_tracking = v.to_owned(),
            "snapd" => f.snapd = v == "yes",
            "os" => {
                let (id, ver) = v.split_once(' ').unwrap_or((v, ""));
                f.os_id = id.to_owned();
                f.os_version = ver.trim().to_owned();
            }
            "arch" => f.arch = v.to_owned(),
            "mem_kib" => f.mem_kib = v.parse().ok(),
            "snap_free_kib" => f.snap_free_kib = v.parse().ok(),
            "resolv" => f.resolv = words(v),
            "resolv_systemd" => f.resolv_systemd = words(v),
            "addrs" => f.addrs = words(v),
            "timesyncd" => f.timesyncd = v.to_owned(),
            k if k.starts_with("resolve_") => {
                f.resolves.insert(k.trim_start_matches("resolve_").to_owned(), v.to_owned());
            }
            _ => {}
        }
    }
    if !seen {
        bail!(
            "the facts script printed nothing homelab recognises: {:?}",
            out.stdout.chars().take(200).collect::<String>()
        );
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Output {
        Output { code: Some(0), stdout: s.into(), stderr: String::new() }
    }

    #[test]
    fn reads_the_v2_facts() {
        let f = parse_facts(&ok("hostname=maas\nvg=ubuntu-vg 107374182400 4194304 25600\nos=ubuntu 22.04\narch=x86_64\nmem_kib=16314564\nsnap_free_kib=90000000\nresolv=127.0.0.53 \nresolv_systemd=10.0.0.1 \naddrs=10.0.0.1/24 192.168.1.5/24 \nepoch=1700000000\nsnapd=yes\ntimesyncd=active\n")).unwrap();
        assert_eq!(
            f.vg,
            Some(Some(VgFacts {
                name: "ubuntu-vg".into(),
                free_bytes: 107374182400,
                extent_bytes: 4194304,
                free_extents: 25600
            }))
        );
        assert_eq!((f.os_id.as_str(), f.os_version.as_str(), f.arch.as_str()), ("ubuntu", "22.04", "x86_64"));
        assert_eq!(f.addrs, vec!["10.0.0.1/24", "192.168.1.5/24"]);
        assert_eq!(f.resolv, vec!["127.0.0.53"]);
        assert_eq!(f.epoch, Some(1_700_000_000));
        assert!(f.snapd);
        // A volume group that does not exist prints an empty line.
        assert_eq!(parse_facts(&ok("hostname=x\nvg=\n")).unwrap().vg, Some(None));
        assert_eq!(parse_facts(&ok("hostname=x\n")).unwrap().vg, None);
    }

    #[test]
    fn sudo_asking_for_a_password_is_recognised() {
        let o = Output {
            code: Some(1),
            stdout: String::new(),
            stderr: "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n".into(),
        };
        assert!(sudo_wants_password(&o));
        assert!(!sudo_wants_password(&ok("hostname=x")));
    }
}
