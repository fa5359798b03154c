//! What `homelab status` tells the user to do when a PC is dead or unhealthy: from the report
//! alone (pure), so it is the same in text and JSON. A PC whose node is NotReady, whose OSDs
//! are down and that MAAS reads as powered off is dead: the fix is `replace-node` (a new PC
//! in its place) or `remove-node --dead`. What Ceph, Kafka and the datastore lose meanwhile
//! is said too, because that decides how urgent it is. Facts: docs/day2.md.

use super::report::StatusReport;
use crate::config::Cluster;

pub fn advise(r: &StatusReport, cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    if r.nodes.is_empty() {
        return out;
    }
    let cps = cluster.control_planes().count();
    let mut down = Vec::new();
    for m in &cluster.machines {
        let node = r.nodes.iter().find(|n| n.name == m.hostname);
        if node.is_some_and(|n| n.ready) {
            continue;
        }
        let power = r.machines.iter().find(|x| x.hostname == m.hostname).map(|x| x.power.as_str()).unwrap_or("");
        let osd_down =
            r.ceph.as_ref().is_some_and(|c| m.ceph_device().is_some() && !c.osds_by_node.contains_key(&m.hostname));
        let mut signs = vec![if node.is_some() { "node NotReady" } else { "not a node" }.to_owned()];
        if osd_down {
            signs.push("its OSD down".into());
        }
        if !power.is_empty() {
            signs.push(format!("MAAS power {power}"));
        }
        let cp_note = if m.is_control_plane() {
            format!(" (it is a control plane: removing it leaves {} — pass --yes)", cps - 1)
        } else {
            String::new()
        };
        if power == "on" {
            out.push(format!(
                "{} is unhealthy ({}): look at it first (its console in MAAS, `ssh`, `sudo microk8s inspect`); if it is gone for good, power it off, then `homelab replace-node {} NEW_MAC --dead` or `homelab remove-node {} --dead`{cp_note}",
                m.hostname,
                signs.join(", "),
                m.hostname,
                m.hostname
            ));
        } else {
            out.push(format!(
                "{} looks dead ({}): `homelab replace-node {} NEW_MAC --dead` puts a new PC in its place; `homelab remove-node {} --dead` takes it out{cp_note}",
                m.hostname,
                signs.join(", "),
                m.hostname,
                m.hostname
            ));
        }
        down.push(m.clone());
    }
    if down.is_empty() {
        return out;
    }
    let cp_down = down.iter().filter(|m| m.is_control_plane()).count();
    if cp_down > 0 && cps >= 3 {
        let left = cps - cp_down;
        out.push(if left * 2 > cps {
            format!("datastore: {left} of {cps} voters answer — one more control-plane failure stops the cluster")
        } else {
            format!("datastore: only {left} of {cps} voters answer — the majority is lost; see microk8s.io/docs/restore-quorum")
        });
    }
    if let Some(c) = &r.ceph
        && c.health != "HEALTH_OK"
        && !c.details.is_empty()
    {
        out.push(format!(
            "Ceph is {} ({}): data on the dead PC has fewer copies until Ceph re-replicates it; `remove-node --dead` marks its OSD out at once instead of after 10 minutes",
            c.health,
            c.details.join("; ")
        ));
    }
    if let Some(k) = &r.kafka
        && !k.ready
    {
        out.push(format!(
            "Kafka {}/{} is not Ready: a broker on a dead node is only restarted elsewhere once that node is removed (`remove-node --dead` taints it out-of-service first)",
            k.namespace, k.name
        ));
    }
    out
}
