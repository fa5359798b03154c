//! The `timeouts` section of cluster.yaml: its semantic rules and its resolved form.

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn timeouts(&mut self) -> Timeouts {
        let mut t = Timeouts::default();
        let Some(given) = self.file.timeouts.clone() else { return t };
        let fields: [(&str, Option<String>, &mut std::time::Duration); 9] = [
            ("commission", given.commission, &mut t.commission),
            ("deploy", given.deploy, &mut t.deploy),
            ("ssh", given.ssh, &mut t.ssh),
            ("microk8s", given.microk8s, &mut t.microk8s),
            ("join", given.join, &mut t.join),
            ("operator", given.operator, &mut t.operator),
            ("ceph", given.ceph, &mut t.ceph),
            ("kafka", given.kafka, &mut t.kafka),
            ("database", given.database, &mut t.database),
        ];
        let mut bad = Vec::new();
        for (name, value, slot) in fields {
            let Some(v) = value else { continue };
            match parse_duration(&v) {
                Some(d) if !d.is_zero() => *slot = d,
                _ => bad.push((name, v)),
            }
        }
        for (name, v) in bad {
            self.err(&format!("/timeouts/{name}"), format!("`{v}` is not a duration"), "use e.g. 30m, 90s or 1h30m");
        }
        t
    }
}
