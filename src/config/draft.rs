//! `homelab init`: a first `cluster.yaml` drafted from the machines MAAS has Ready and from
//! PCs that run Ubuntu already (their facts read over SSH) — roles, sizes fitted to their
//! disks, current releases — for the user to read and edit.

use super::edit::{json_quoted, yaml_scalar};
use super::size::human_si;
use crate::maas::Machine;

/// Whether `s` is a name `cluster.yaml` accepts for a machine: a lowercase RFC 1123 label
/// (1–63 of `a-z0-9-`, starting and ending alphanumeric; the schema's `hostname` pattern).
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A lowercase RFC 1123 label from whatever MAAS calls a machine.
pub fn label(s: &str) -> String {
    let mut out: String = s.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    out = out.trim_matches('-').chars().take(63).collect();
    // Cutting at 63 may leave a dash at the end.
    out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "node".into() } else { out }
}

/// A PC that runs Ubuntu already, as `init --ssh` read it.
#[derive(Debug, Clone, Default)]
pub struct Preinstalled {
    pub hostname: String,
    pub address: String,
    pub mem_kib: Option<u64>,
    /// Free bytes in `ubuntu-vg` (the installer's volume group), when it exists.
    pub vg_free: Option<u64>,
}

/// The volume group the Ubuntu server installer makes.
pub const INSTALLER_VG: &str = "ubuntu-vg";

/// The draft text for `machines` (MAAS's Ready ones), validated by the caller.
pub fn draft(name: &str, maas_url: &str, api_key_file: Option<&str>, machines: &[Machine]) -> String {
    draft_mixed(name, Some((maas_url, api_key_file)), ("ubuntu", "~/.ssh/id_ed25519"), machines, &[])
}

/// The draft of pre-installed PCs (first: the MAAS host is node 1 in the seed) and MAAS's
/// Ready machines; `maas` is the URL and key file when some machine is MAAS's.
pub fn draft_mixed(
    name: &str,
    maas: Option<(&str, Option<&str>)>,
    ssh: (&str, &str),
    machines: &[Machine],
    pre: &[Preinstalled],
) -> String {
    let n = machines.len() + pre.len();
    let smallest =
        machines.iter().filter_map(|m| m.boot_disk.as_ref().map(|d| d.size)).min().unwrap_or(200_000_000_000);
    // A quarter of the smallest boot disk for the OS (at least 20 GB, at most 100 GB); the
    // rest of every disk becomes its Ceph volume.
    let root_gb = ((smallest / 4) / 10_000_000_000 * 10).clamp(20, 100);
    let cps = if n >= 3 { 3 } else { 1 };
    let mut seen = std::collections::HashSet::new();
    let mut lines = String::new();
    let mut ceph = 0;
    for (i, p) in pre.iter().enumerate() {
        let mut h = label(&p.hostname);
        while !seen.insert(h.clone()) {
            h.push_str("-x");
        }
        let role = if i < cps { "control-plane" } else { "worker" };
        let mem = p.mem_kib.map(|k| format!("{:.1} GiB memory", k as f64 / (1 << 20) as f64)).unwrap_or_default();
        match p.vg_free.filter(|b| *b >= super::CEPH_MIN_BYTES) {
            Some(free) => {
                ceph += 1;
                lines.push_str(&format!(
                    "  - {{hostname: {}, address: {}, role: {role}, storage: {{volumeGroup: {INSTALLER_VG}, ceph: rest}}}}   # pre-installed; {mem}, {} free in {INSTALLER_VG}\n",
                    yaml_scalar(&h),
                    yaml_scalar(&p.address),
                    human_si(free)
                ));
            }
            None => lines.push_str(&format!(
                "  - {{hostname: {}, address: {}, role: {role}}}   # pre-installed; {mem}; no room in {INSTALLER_VG}: give Ceph a blank disk with `storage: {{device: /dev/sdX}}`\n",
                yaml_scalar(&h),
                yaml_scalar(&p.address)
            )),
        }
    }
    for (i, m) in machines.iter().enumerate() {
        let i = i + pre.len();
        let mut h = label(&m.hostname);
        while !seen.insert(h.clone()) {
            h.push_str("-x");
        }
        let mac = m
            .boot_interface
            .as_ref()
            .and_then(|b| b.mac_address.clone())
            .or_else(|| m.macs().into_iter().next())
            .unwrap_or_default();
        let role = if i < cps { "control-plane" } else { "worker" };
        ceph += 1;
        lines.push_str(&format!(
            "  - {{hostname: {}, mac: {}, role: {role}}}   # {} cores, {} MiB, {} disk\n",
            yaml_scalar(&h),
            json_quoted(&mac),
            m.cpu_count.unwrap_or(0),
            m.memory.unwrap_or(0),
            m.boot_disk.as_ref().map(|d| human_si(d.size)).unwrap_or_else(|| "unknown".into())
        ));
    }
    let n_ceph = ceph;
    let replicas = n_ceph.clamp(1, 2);
    let brokers = n.clamp(1, 3);
    let isr = if brokers >= 3 { 2 } else { 1 };
    let controllers = if n >= 3 {
        "    controllers: {replicas: 3, storage: {size: 10Gi, class: rook-ceph-block, deleteClaim: true}}\n"
    } else {
        ""
    };
    let from = match (machines.is_empty(), pre.is_empty()) {
        (false, true) => format!("the {n} machine{} MAAS has Ready", if n == 1 { "" } else { "s" }),
        (true, _) => format!("{n} pre-installed PC{} read over SSH", if n == 1 { "" } else { "s" }),
        (false, false) => format!(
            "{} pre-installed PC{} read over SSH and the {} machine{} MAAS has Ready",
            pre.len(),
            if pre.len() == 1 { "" } else { "s" },
            machines.len(),
            if machines.len() == 1 { "" } else { "s" }
        ),
    };
    let maas_part = match maas.filter(|_| !machines.is_empty()) {
        Some((url, api_key_file)) => {
            let key = api_key_file
                .map(|k| format!("  apiKeyFile: {}\n", yaml_scalar(k)))
                .unwrap_or_else(|| "  # apiKeyFile: ~/.config/homelab/maas.key   (else $MAAS_API_KEY)\n".into());
            format!("maas:\n  url: {}\n{key}  distroSeries: noble\n", yaml_scalar(url))
        }
        None => String::new(),
    };
    let layout = if machines.is_empty() {
        String::new()
    } else {
        format!(
            "# {root_gb} GB for the OS of the machines MAAS deploys (a quarter of the smallest disk, {}); the rest of each disk is Ceph's.\nstorage: {{layout: lvm, rootSize: {root_gb}G, ceph: rest}}\n",
            human_si(smallest)
        )
    };
    format!(
        "# yaml-language-server: $schema=https://homelab.dev/schema/cluster.schema.json\n\
         # Drafted by `homelab init` from {from}. Read it, edit it, then\n\
         # `homelab validate` and `homelab up --dry-run`.\n\
         apiVersion: homelab/v1alpha1\n\
         kind: Cluster\n\
         metadata: {{name: {name}}}\n\
         {maas_part}\
         ssh: {{user: {user}, identityFile: {identity}, hostKeyChecking: accept-new}}\n\
         {layout}\
         machines:\n{lines}\
         kubernetes: {{distribution: microk8s, channel: 1.33/stable, addons: [dns]}}\n\
         rook:\n  version: v1.20.6\n  pools:\n    - name: replicapool\n      failureDomain: host\n      replicas: {replicas}\n      storageClass: {{name: rook-ceph-block, default: true}}\n\
         kafka:\n  strimziVersion: 1.2.0\n  namespace: kafka\n  cluster:\n    name: events\n    version: 4.3.1\n    replicas: {brokers}\n    metadata: kraft\n\
         \x20   storage: {{size: 20Gi, class: rook-ceph-block, deleteClaim: true}}\n{controllers}\
         \x20   config:\n      offsets.topic.replication.factor: {brokers}\n      transaction.state.log.replication.factor: {brokers}\n      transaction.state.log.min.isr: {isr}\n      default.replication.factor: {brokers}\n      min.insync.replicas: {isr}\n",
        name = yaml_scalar(name),
        user = yaml_scalar(ssh.0),
        identity = yaml_scalar(ssh.1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_made_from_maas_names_are_valid_names() {
        let long = format!("{}-tail", "a".repeat(62));
        for raw in ["Gaming-PC", "old_laptop", "--", "", "ÄÖ box", "x.y.z", long.as_str()] {
            let l = label(raw);
            assert!(is_label(&l), "{raw:?} -> {l:?}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_label(bad), "{bad:?}");
        }
        assert!(is_label("123") && is_label("kvm-4"));
    }
}
