//! What a simulated machine answers to the commands that are not `microk8s`: the facts
//! script, `snap`, the system commands homelab's preflight sends, files and clocks.

use super::remote::{SimRemote, minor_of, out};
use super::state::World;
use crate::ssh::{Cmd, Output};
use base64::Engine as _;
use std::collections::BTreeSet;
use std::time::Instant;

impl SimRemote {
    /// What the machine does with a command that reached it.
    pub(super) fn exec_inner(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let a: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        let cfg = &self.cfg;
        let me = self.ip.clone();
        let installed = |w: &World| w.hosts.get(&me).and_then(|h| h.snap.clone());
        Ok(match a.as_slice() {
            ["sh", "-c", script, _name, rest @ ..] if script.contains("# homelab:facts v2") => {
                let dev = rest.first().copied().unwrap_or("");
                let vg = rest.get(1).copied().unwrap_or("");
                let peers = rest.get(2..).unwrap_or(&[]);
                let h = &w.hosts[&self.ip];
                let mut s = format!(
                    "hostname={}\ncloud_init=done\nhosts_b64={}\n",
                    h.hostname,
                    base64::engine::general_purpose::STANDARD.encode(&h.etc_hosts)
                );
                if !dev.is_empty() {
                    let found = if h.preinstalled { h.sys.device(dev) } else { Some((0, String::new())) };
                    match found {
                        Some(_) if w.faults.ceph_missing.contains(&h.hostname) => s.push_str("ceph_dev=missing\n"),
                        None => s.push_str("ceph_dev=missing\n"),
                        Some((bytes, sig)) => {
                            let sig = w.faults.ceph_signature.get(&h.hostname).cloned().unwrap_or(sig);
                            // blkid -p reads the raw device: root only.
                            let sig = if cmd.sudo { sig } else { String::new() };
                            s.push_str(&format!("ceph_dev=present\nceph_sig={sig}\n"));
                            // A deployed PC's Ceph logical volume is the one the Rook
                            // simulator makes its OSD of.
                            let bytes = if h.preinstalled { bytes } else { crate::sim::operators::OSD_BYTES };
                            s.push_str(&format!("ceph_bytes={bytes}\n"));
                        }
                    }
                }
                if !vg.is_empty() {
                    // vgs as another user than root reads no volume group.
                    let line = if cmd.sudo { h.sys.vgs_line(vg) } else { String::new() };
                    s.push_str(&format!("vg={line}\n"));
                }
                let sys = &h.sys;
                s.push_str(&format!("lvm2={}\n", if w.faults.no_lvm2.contains(&h.hostname) { "no" } else { "yes" }));
                s.push_str(&format!("rbd={}\n", if w.faults.no_rbd.contains(&h.hostname) { "no" } else { "yes" }));
                s.push_str(&format!("clock={}\n", h.clock));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or_default();
                s.push_str(&format!("epoch={}\n", now + sys.clock_skew_s));
                s.push_str(&format!("snap_tracking={}\n", h.snap.as_ref().map(|(c, _)| c.clone()).unwrap_or_default()));
                s.push_str(&format!("snapd={}\n", if sys.snapd { "yes" } else { "no" }));
                s.push_str(&format!("os={}\narch={}\n", sys.os, sys.arch));
                s.push_str(&format!("mem_kib={}\nsnap_free_kib={}\n", sys.mem_kib, sys.snap_free_kib));
                s.push_str(&format!(
                    "resolv={}\nresolv_systemd={}\n",
                    sys.resolv.join(" "),
                    sys.resolv_systemd.join(" ")
                ));
                let mut addrs = vec![format!("{}/24", h.ip)];
                addrs.extend(sys.other_addrs.iter().cloned());
                s.push_str(&format!("addrs={}\ntimesyncd={}\n", addrs.join(" "), sys.timesyncd));
                for p in peers {
                    let ip = h
                        .etc_hosts
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .find(|l| l.split_whitespace().skip(1).any(|n| n == *p))
                        .and_then(|l| l.split_whitespace().next())
                        .unwrap_or("");
                    s.push_str(&format!("resolve_{p}={ip}\n"));
                }
                out(0, s, "")
            }
            ["lvcreate", args @ ..] => match w.hosts.get_mut(&self.ip) {
                Some(h) => h.sys.lvcreate(args),
                None => out(127, "", "sh: 1: lvcreate: not found\n"),
            },
            ["cloud-init", "status", "--wait"] => out(0, "status: done\n", ""),
            ["tee", "/etc/hosts"] => {
                let text = String::from_utf8_lossy(cmd.stdin.as_deref().unwrap_or(&[])).into_owned();
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.etc_hosts = text.clone();
                }
                out(0, text, "")
            }
            ["snap", "wait", "system", "seed.loaded"] => out(0, "", ""),
            // The remove hook stops MicroK8s, kills its containers and drops its state; the
            // machine leaves the datastore as a dead member would (hosts-lifecycle §B4).
            ["snap", "remove", "microk8s", rest @ ..] if rest.iter().all(|a| *a == "--purge") => {
                if installed(&w).is_none() {
                    out(0, "snap \"microk8s\" is not installed\n", "")
                } else {
                    let cluster = w.hosts.get(&me).map(super::state::cluster_of).unwrap_or_default();
                    w.remove_member(&cluster, &me);
                    if let Some(h) = w.hosts.get_mut(&me) {
                        h.snap = None;
                        h.joined = None;
                        h.left = false;
                        h.removed = false;
                        h.held = false;
                        h.broken = false;
                        h.node_ip = None;
                    }
                    out(0, "microk8s removed\n", "")
                }
            }
            ["snap", "list"] => {
                let mut t = "Name      Version   Rev    Tracking       Publisher   Notes\ncore20    20240111  2182   latest/stable  canonical✓  base\nsnapd     2.61.3    21759  latest/stable  canonical✓  snapd\n".to_owned();
                if let Some((ch, _)) = installed(&w) {
                    t.push_str(&format!(
                        "microk8s  v{}.3  7000  {ch}  canonical✓  classic\n",
                        ch.split('/').next().unwrap_or("")
                    ));
                }
                out(0, t, "")
            }
            // journald's answer for a unit: its start line once MicroK8s runs, else none.
            ["journalctl", "-u", unit, "--no-pager", "-n", _] => match installed(&w) {
                Some(_) => {
                    let host = w.hosts.get(&me).map(|h| h.hostname.clone()).unwrap_or_default();
                    let app = unit.trim_start_matches("snap.").trim_end_matches(".service");
                    out(
                        0,
                        format!("Dec 08 03:00:00 {host} systemd[1]: Started Service for snap application {app}.\n"),
                        "",
                    )
                }
                None => out(0, "-- No entries --\n", ""),
            },
            ["snap", "list", "microk8s"] => match installed(&w) {
                Some((ch, _)) => out(
                    0,
                    format!(
                        "Name      Version   Rev   Tracking     Publisher   Notes\nmicrok8s  v{}.3  7000  {ch}  canonical✓  classic{}\n",
                        ch.split('/').next().unwrap_or(""),
                        if w.hosts.get(&self.ip).is_some_and(|h| h.held) { ",held" } else { "" }
                    ),
                    "",
                ),
                None => out(1, "", "error: no matching snaps installed\n"),
            },
            ["snap", "install", "microk8s", "--classic", ch] if ch.starts_with("--channel=") => {
                let ch = ch.trim_start_matches("--channel=").to_owned();
                if installed(&w).is_some() {
                    return Ok(out(0, "", "snap \"microk8s\" is already installed, see 'snap help refresh'\n"));
                }
                let (maj, min) = minor_of(&ch);
                if maj != 1 || !(20..=36).contains(&min) {
                    return Ok(out(
                        1,
                        "",
                        format!(
                            "error: snap \"microk8s\" is not available on {ch} but is available to install on the\n       following tracks: 1.33/stable\n"
                        ),
                    ));
                }
                let ch = if ch.contains('/') { ch } else { format!("{ch}/stable") };
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                h.snap = Some((ch.clone(), Instant::now()));
                let cp = h.ip.clone();
                let mut def: BTreeSet<String> = ["ha-cluster", "helm", "helm3"].iter().map(|s| s.to_string()).collect();
                if (maj, min) >= (1, 27) {
                    def.insert("dns".into());
                }
                w.addons.insert(cp, def);
                out(0, format!("microk8s ({ch}) v{}.{}.3 from Canonical✓ installed\n", maj, min), "")
            }
            ["snap", "refresh", "--hold=forever", "microk8s"] => {
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                if h.snap.is_none() {
                    return Ok(out(1, "", "error: snap \"microk8s\" is not installed\n"));
                }
                h.held = true;
                out(0, "General refreshes of \"microk8s\" held indefinitely\n", "")
            }
            ["test", "-s", path] => {
                let has = w.hosts.get(&self.ip).is_some_and(|h| h.files.contains(*path));
                out(if has { 0 } else { 1 }, "", "")
            }
            ["snap", "refresh", "microk8s", ch] => {
                let ch = ch.trim_start_matches("--channel=").to_owned();
                let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host vanished"))?;
                match &mut h.snap {
                    None => out(1, "", "error: snap \"microk8s\" is not installed\n"),
                    Some((cur, _)) if *cur == ch => out(0, "", "snap \"microk8s\" has no updates available\n"),
                    Some((cur, t)) => {
                        // One minor at a time: a skipped minor (or a step down) leaves a
                        // kubelite that never starts again.
                        let (a, b) = (minor_of(cur), minor_of(&ch));
                        if b.0 != a.0 || b.1 != a.1 + 1 {
                            h.broken = true;
                        }
                        *cur = ch.clone();
                        *t = Instant::now();
                        out(
                            0,
                            format!(
                                "microk8s ({ch}) v{}.3 from Canonical✓ refreshed\n",
                                ch.split('/').next().unwrap_or("")
                            ),
                            "",
                        )
                    }
                }
            }
            ["cat", path] if *path == crate::microk8s::KUBELET_ARGS => match (installed(&w), cmd.sudo) {
                (None, _) => out(1, "", format!("cat: {path}: No such file or directory\n")),
                (Some(_), false) => out(1, "", format!("cat: {path}: Permission denied\n")),
                (Some(_), true) => {
                    let mut args = "--resolv-conf=/run/systemd/resolve/resolv.conf\n--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n".to_owned();
                    if let Some(ip) = w.hosts.get(&me).and_then(|h| h.node_ip.clone()) {
                        args.push_str(&format!("--node-ip={ip}\n"));
                    }
                    out(0, args, "")
                }
            },
            ["sh", "-c", script, _name, path, addr] if script.contains("# homelab:node-ip") => {
                match (installed(&w), cmd.sudo) {
                    (None, _) => out(2, "", format!("sed: can't read {path}: No such file or directory\n")),
                    (Some(_), false) => out(
                        4,
                        "",
                        "sed: couldn't open temporary file /var/snap/microk8s/current/args/sedX1b2c3: Permission denied\n",
                    ),
                    (Some(_), true) => {
                        if let Some(h) = w.hosts.get_mut(&me) {
                            h.node_ip = Some((*addr).to_owned());
                        }
                        out(0, "Restarted.\n", "")
                    }
                }
            }
            ["microk8s", ..] if installed(&w).is_none() => out(127, "", "sudo: microk8s: command not found\n"),
            ["microk8s", rest @ ..] => {
                drop(w);
                return self.microk8s(rest, cmd, cfg);
            }
            _ => out(127, "", format!("sh: 1: {}: not found\n", a.first().unwrap_or(&""))),
        })
    }
}
