//! Drawing the status report as tables, what is wrong first; or printing it as JSON.

use super::report::*;
use crate::config::size::{human_iec, human_si};

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// The report as text: what is wrong first, then one table per layer, then the totals.
pub fn render(r: &StatusReport) -> String {
    let mut s = String::new();
    if r.healthy {
        s.push_str(&format!("cluster `{}`: healthy\n", r.cluster));
    } else {
        s.push_str(&format!(
            "cluster `{}`: {} problem{}\n",
            r.cluster,
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        ));
        for p in &r.problems {
            s.push_str(&format!("  ✗ {p}\n"));
        }
        let tables = !r.machines.is_empty() || !r.nodes.is_empty() || r.ceph.is_some();
        s.push_str(&format!(
            "  next: `homelab up --dry-run` lists what homelab would change, `homelab up` converges it{}\n",
            if tables { "; the tables below show each layer" } else { "" }
        ));
    }
    for w in &r.warnings {
        s.push_str(&format!("  ! {w}\n"));
    }
    for a in &r.advice {
        s.push_str(&format!("  → {a}\n"));
    }
    if !r.machines.is_empty() {
        // "MAAS machines" while MAAS deploys them all; "Machines" once some are pre-installed.
        let all_maas = r.machines.iter().all(|m| m.status != PREINSTALLED);
        s.push_str(if all_maas { "\nMAAS machines\n" } else { "\nMachines\n" });
        s.push_str(&table(
            &["machine", "status", "power", "ip", "cores", "memory", "disk"],
            r.machines
                .iter()
                .map(|m| {
                    vec![
                        m.hostname.clone(),
                        m.status.clone(),
                        m.power.clone(),
                        m.ip.clone(),
                        // 0: not known (nothing answered for it), not a machine without memory.
                        known(m.cores.into(), |c| c.to_string()),
                        known(m.memory_mib << 20, human_iec),
                        known(m.disk_bytes, human_si),
                    ]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if !r.nodes.is_empty() {
        s.push_str("\nKubernetes nodes\n");
        s.push_str(&table(
            &["node", "ready", "role", "version"],
            r.nodes
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        if n.ready { "Ready".into() } else { "NotReady".into() },
                        n.role.clone(),
                        n.version.clone(),
                    ]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if let Some(c) = &r.ceph {
        s.push_str(&format!(
            "\nCeph: {} ({}), {} OSD{}, {} raw, {} used, ~{} usable\n",
            c.health,
            c.phase,
            c.osds,
            if c.osds == 1 { "" } else { "s" },
            human_si(c.raw_bytes),
            human_si(c.used_bytes),
            human_si(c.usable_bytes)
        ));
        s.push_str(&table(
            &["node", "OSDs"],
            c.osds_by_node.iter().map(|(n, k)| vec![n.clone(), k.to_string()]).collect(),
        ));
        s.push('\n');
    }
    if !r.pools.is_empty() {
        s.push_str("\nPools\n");
        s.push_str(&table(
            &["pool", "phase", "replicas", "failure domain"],
            r.pools
                .iter()
                .map(|p| vec![p.name.clone(), p.phase.clone(), p.replicas.to_string(), p.failure_domain.clone()])
                .collect(),
        ));
        s.push('\n');
    }
    if !r.storage_classes.is_empty() {
        s.push_str("\nStorageClasses\n");
        s.push_str(&table(
            &["class", "provisioner", "default"],
            r.storage_classes
                .iter()
                .map(|c| {
                    vec![c.name.clone(), c.provisioner.clone(), if c.default { "yes".into() } else { String::new() }]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if !r.pvcs.is_empty() {
        s.push_str("\nPersistentVolumeClaims\n");
        s.push_str(&table(
            &["namespace", "claim", "phase", "capacity", "class"],
            r.pvcs
                .iter()
                .map(|p| {
                    vec![p.namespace.clone(), p.name.clone(), p.phase.clone(), p.capacity.clone(), p.class.clone()]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if let Some(k) = &r.kafka {
        s.push_str(&format!(
            "\nKafka {}/{}: {} — Kafka {}, {} broker{}\n",
            k.namespace,
            k.name,
            if k.ready { "Ready" } else { "NOT Ready" },
            k.version,
            k.brokers,
            if k.brokers == 1 { "" } else { "s" }
        ));
        for (l, a) in &k.bootstrap {
            s.push_str(&format!("  bootstrap {l}: {a}\n"));
        }
    }
    let origin = |homelab: bool, in_file: bool| match (in_file, homelab) {
        (true, _) => String::new(),
        (false, true) => "not in the file (`up --prune` deletes it)".to_owned(),
        (false, false) => "not made by homelab".to_owned(),
    };
    if !r.topics.is_empty() {
        s.push_str("\nKafka topics\n");
        let n = |x: Option<u64>| x.map(|x| x.to_string()).unwrap_or_else(|| "default".into());
        s.push_str(&table(
            &["topic", "partitions", "replicas", "state", "note"],
            r.topics
                .iter()
                .map(|t| {
                    let mut note = origin(t.homelab, t.in_file);
                    if t.topic != t.name {
                        note = format!("Kafka name {} {note}", t.topic).trim_end().to_owned();
                    }
                    if !t.message.is_empty() {
                        note = format!("{note} {}", t.message).trim_start().to_owned();
                    }
                    vec![t.name.clone(), n(t.partitions), n(t.replicas), t.state.clone(), note]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if !r.users.is_empty() {
        s.push_str("\nKafka users\n");
        s.push_str(&table(
            &["user", "authentication", "ready", "credentials", "note"],
            r.users
                .iter()
                .map(|u| {
                    let note = format!("{} {}", origin(u.homelab, u.in_file), u.message).trim().to_owned();
                    vec![
                        u.name.clone(),
                        u.authentication.clone(),
                        if u.ready { "Ready".into() } else { "NotReady".into() },
                        if u.secret.is_empty() { "-".into() } else { format!("Secret {}", u.secret) },
                        note,
                    ]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if let Some(b) = &r.bridge {
        s.push_str(&format!(
            "\nHTTP bridge {}: {}, {} replica{} — {}{}\n",
            b.name,
            if b.ready { "Ready" } else { "NOT Ready" },
            b.replicas,
            if b.replicas == 1 { "" } else { "s" },
            b.lan_url.as_deref().unwrap_or(&b.url),
            if b.lan_url.is_some() { format!(" (in the cluster: {})", b.url) } else { String::new() }
        ));
    }
    if let Some(d) = &r.database {
        s.push_str(&format!(
            "\nPostgreSQL {}/{} ({}): {} of {} instance{} ready — {}{}\n",
            d.namespace,
            d.name,
            d.operator,
            d.ready_instances,
            d.instances,
            if d.instances == 1 { "" } else { "s" },
            if d.phase.is_empty() { "not reconciled yet" } else { &d.phase },
            if d.primary.is_empty() { String::new() } else { format!(", primary {}", d.primary) }
        ));
        s.push_str(&format!(
            "  credentials: Secret {}/{} (`homelab connect database` prints them)\n",
            d.namespace, d.secret
        ));
        s.push_str(&format!("  in the cluster: {}\n", d.uri));
        if let Some(u) = &d.lan_uri {
            s.push_str(&format!("  from the LAN: {u}\n"));
        }
    }
    let t = &r.totals;
    // Sizes nothing reported are unknown, not zero.
    let size = if t.cores == 0 && t.memory_bytes == 0 {
        "cores and memory unknown (nothing answered)".to_owned()
    } else {
        format!("{} cores, {} memory", t.cores, human_iec(t.memory_bytes))
    };
    let ceph = match &r.ceph {
        Some(_) => format!(", Ceph {} raw / ~{} usable", human_si(t.ceph_raw_bytes), human_si(t.ceph_usable_bytes)),
        None => String::new(),
    };
    s.push_str(&format!(
        "\nTotals: {} machine{}, {size}{ceph}{}\n",
        t.machines,
        if t.machines == 1 { "" } else { "s" },
        if t.topics + t.users > 0 {
            format!(
                ", {} topic{}, {} Kafka user{}",
                t.topics,
                if t.topics == 1 { "" } else { "s" },
                t.users,
                if t.users == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        } + &if r.database.is_some() {
            format!(
                ", {} PostgreSQL instance{} ready",
                t.database_instances,
                if t.database_instances == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    ));
    s
}

/// One reading of `status --watch`: on a terminal the view is redrawn in place (from the top
/// of the screen, what is left below cleared); piped, each reading follows the last under a
/// line with its time; in JSON, one report per line.
pub fn print_watched(ui: &crate::foundation::output::Ui, report: &StatusReport, every: std::time::Duration) {
    if ui.is_json() {
        return print(ui, report);
    }
    let head = format!(
        "homelab status — {} (every {}, Ctrl-C stops)",
        crate::foundation::time::now_rfc3339(),
        crate::foundation::time::fmt_secs(every.as_secs_f64())
    );
    ui.redraw(&format!("{head}\n\n{}", render(report).trim_end()));
}

/// Prints the report: JSON with `-o json`, else the text view.
pub fn print(ui: &crate::foundation::output::Ui, report: &StatusReport) {
    if ui.is_json() {
        ui.out(&super::report::json_line(report));
    } else {
        ui.out(render(report).trim_end());
    }
}

/// A size or count, or `-` when nothing told it.
fn known(v: u64, f: impl Fn(u64) -> String) -> String {
    if v == 0 { "-".to_owned() } else { f(v) }
}
