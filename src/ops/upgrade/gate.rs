//! The pure decisions `upgrade` takes on what it observed before every hop: whether the
//! previous hop is still rolling (wait, not refuse), and the gates a hop must pass, each a
//! refusal that names what blocks it. No I/O.

use super::ladder::{Hop, Versions};
use super::observed::{EXPECTED_WARNINGS, Observed};
use crate::catalog::{Catalog, parse_version};

/// Why `hop` must not start now (empty: it may). `now` are the versions that run.
pub fn gates(cat: &Catalog, o: &Observed, now: &Versions, hop: &Hop) -> Vec<String> {
    let mut out = common(o);
    out.extend(specific(cat, o, now, hop));
    // A Strimzi hop starts with every broker Ready.
    if hop.component() == "strimzi"
        && let Some(b) = &o.brokers_not_ready
    {
        out.push(b.clone());
    }
    out
}

/// The gates of every hop: Ceph healthy with every OSD up and in, every node Ready, the
/// datastore's voters, Kafka Ready.
pub fn common(o: &Observed) -> Vec<String> {
    let mut out: Vec<String> = health(o).into_iter().collect();
    if o.osds_up < o.osds || o.osds_in < o.osds {
        out.push(format!("{} of {} OSDs up, {} in", o.osds_up, o.osds, o.osds_in));
    }
    let not_ready: Vec<String> = o
        .nodes
        .iter()
        .filter(|n| !n.ready || !n.reachable)
        .map(|n| if n.reachable { n.host.clone() } else { format!("{} (does not answer SSH)", n.host) })
        .collect();
    if !not_ready.is_empty() {
        out.push(format!("node{} not Ready: {}", if not_ready.len() == 1 { "" } else { "s" }, not_ready.join(", ")));
    }
    if o.voters < o.voters_wanted {
        out.push(format!("the datastore has {} voters, it needs {}", o.voters, o.voters_wanted));
    }
    if o.kafka_ready == Some(false) {
        out.push("Kafka is not Ready".into());
    }
    out
}

/// What Ceph's health says against a hop (warnings a drain causes do not count).
fn health(o: &Observed) -> Option<String> {
    match o.health.as_deref() {
        Some("HEALTH_OK") => None,
        Some("HEALTH_WARN") => {
            let other: Vec<&str> =
                o.checks.iter().map(String::as_str).filter(|c| !EXPECTED_WARNINGS.contains(c)).collect();
            (!other.is_empty()).then(|| format!("Ceph is HEALTH_WARN ({})", other.join(", ")))
        }
        Some(h) => Some(format!("Ceph is {h} ({})", o.checks.join(", "))),
        None => Some("Ceph's health cannot be read (the Rook toolbox does not answer)".into()),
    }
}

/// The blockers no wait lifts: HEALTH_ERR, and a next version whose range does not contain
/// what runs. (The others — warnings, OSDs, nodes, voters, Kafka — can pass on their own.)
pub fn hard(cat: &Catalog, o: &Observed, now: &Versions, hop: &Hop) -> Vec<String> {
    let mut out: Vec<String> = health(o).filter(|_| o.health.as_deref() == Some("HEALTH_ERR")).into_iter().collect();
    out.extend(specific(cat, o, now, hop));
    out
}

/// Strimzi's refusal of a Kafka version a release does not run (`KafkaVersion.java`).
fn unsupported(r: &crate::catalog::StrimziRelease, v: &str) -> String {
    format!("Unsupported Kafka.spec.kafka.version: {v}. Supported versions are: [{}]", r.kafka_versions().join(", "))
}

/// The gates of one kind of hop: the next version's ranges contain what runs.
fn specific(cat: &Catalog, o: &Observed, now: &Versions, hop: &Hop) -> Vec<String> {
    let mut out = Vec::new();
    let running: Vec<(u32, u32)> = o.nodes.iter().filter_map(|n| n.kubelet).collect();
    match hop {
        Hop::Rook { to, .. } => {
            if let Some(r) = cat.rook(to) {
                let outside: Vec<String> = running
                    .iter()
                    .filter(|k| !r.kubernetes.contains(**k))
                    .map(|k| format!("{}.{}", k.0, k.1))
                    .collect();
                if !outside.is_empty() {
                    out.push(format!(
                        "Rook {to} supports Kubernetes {}, and nodes run {}",
                        r.kubernetes.describe(),
                        outside.join(", ")
                    ));
                }
                if let Some(c) = parse_version(&now.ceph)
                    && let Err(e) = r.accepts_ceph(c)
                {
                    out.push(format!("Rook {to} refuses the running Ceph: {e}"));
                }
            }
        }
        Hop::MicroK8s { to, .. } => {
            if let Some(r) = cat.rook(&now.rook)
                && !r.kubernetes.contains(*to)
            {
                out.push(format!(
                    "Rook {} supports Kubernetes {}, not {}.{}",
                    r.version,
                    r.kubernetes.describe(),
                    to.0,
                    to.1
                ));
            }
        }
        Hop::Ceph { to, .. } => {
            if let (Some(r), Some(c)) = (cat.rook(&now.rook), parse_version(to))
                && let Err(e) = r.accepts_ceph(c)
            {
                out.push(format!("Rook {} refuses Ceph {}: {e}", r.version, crate::catalog::fmt_version(c)));
            }
        }
        Hop::Strimzi { to, .. } => {
            if let (Some(r), Some(k)) = (cat.strimzi(to), &now.kafka) {
                if !r.supports(&k.version) {
                    out.push(format!("{} (Strimzi {to})", unsupported(r, &k.version)));
                }
                let old: Vec<String> = running
                    .iter()
                    .filter(|m| !r.kubernetes.contains(**m))
                    .map(|m| format!("{}.{}", m.0, m.1))
                    .collect();
                if !old.is_empty() {
                    out.push(format!(
                        "Strimzi {to} needs Kubernetes {}, and nodes run {}",
                        r.kubernetes.describe(),
                        old.join(", ")
                    ));
                }
            }
        }
        Hop::Kafka { to, .. } => {
            if let Some(r) = now.kafka.as_ref().and_then(|k| cat.strimzi(&k.strimzi))
                && !r.supports(to)
            {
                out.push(unsupported(r, to));
            }
        }
        Hop::Kraft | Hop::NodePools | Hop::StrimziV1 { .. } | Hop::CloudNativePg { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::upgrade::observed::{Daemon, NodeView};

    fn healthy() -> (Observed, Versions) {
        let nodes = ["maas", "kvm4", "kvm5"]
            .iter()
            .map(|h| NodeView {
                host: h.to_string(),
                control_plane: true,
                tracking: "1.26/stable".into(),
                held: true,
                ready: true,
                kubelet: Some((1, 26)),
                unschedulable: false,
                reachable: true,
                drained_for: None,
            })
            .collect();
        let o = Observed {
            nodes,
            voters: 3,
            voters_wanted: 3,
            operator_image: Some("rook/ceph:v1.10.10".into()),
            operator_rolled: true,
            ceph_spec_image: Some("quay.io/ceph/ceph:v17.2.5".into()),
            ceph_running: Some("17.2.5-0".into()),
            ceph_ready: true,
            health: Some("HEALTH_OK".into()),
            osds: 3,
            osds_up: 3,
            osds_in: 3,
            daemons: vec![Daemon {
                name: "rook-ceph-mon-a".into(),
                rook_version: Some("v1.10.10".into()),
                ceph_version: Some("17.2.5-0".into()),
                ready: true,
            }],
            kafka_ready: Some(true),
            ..Default::default()
        };
        let v = Versions {
            kubernetes: (1, 26),
            rook: "v1.10.10".into(),
            ceph: "quay.io/ceph/ceph:v17.2.5".into(),
            ..Default::default()
        };
        (o, v)
    }

    #[test]
    fn a_healthy_cluster_passes_and_each_gate_names_its_blocker() {
        let cat = Catalog::embedded().unwrap();
        let (o, v) = healthy();
        assert_eq!(o.versions(&cat).unwrap(), v);
        assert_eq!(o.rolling(&cat, &v), None);
        let hop = Hop::Rook { from: "v1.10.10".into(), to: "v1.11.11".into() };
        assert!(gates(&cat, &o, &v, &hop).is_empty());
        let mut bad = o.clone();
        bad.health = Some("HEALTH_ERR".into());
        bad.checks = vec!["OSD_FULL".into()];
        assert_eq!(gates(&cat, &bad, &v, &hop), ["Ceph is HEALTH_ERR (OSD_FULL)"]);
        let mut warn = o.clone();
        warn.health = Some("HEALTH_WARN".into());
        warn.checks = vec!["OSDMAP_FLAGS".into()];
        assert!(gates(&cat, &warn, &v, &hop).is_empty(), "noout of a drain is expected");
        let mut nr = o.clone();
        nr.nodes[1].ready = false;
        assert_eq!(gates(&cat, &nr, &v, &hop), ["node not Ready: kvm4"]);
        let mut vo = o.clone();
        vo.voters = 2;
        vo.kafka_ready = Some(false);
        vo.osds_up = 2;
        assert_eq!(gates(&cat, &vo, &v, &hop).len(), 3);
        let far = Hop::Rook { from: "v1.15.9".into(), to: "v1.16.9".into() };
        assert!(
            gates(&cat, &o, &v, &far)
                .iter()
                .any(|g| g.contains("supports Kubernetes 1.27 to 1.32, and nodes run 1.26"))
        );
    }

    #[test]
    fn a_half_done_hop_is_rolling_not_refused() {
        let cat = Catalog::embedded().unwrap();
        let (mut o, v) = healthy();
        o.daemons[0].rook_version = Some("v1.10.9".into());
        assert!(o.rolling(&cat, &v).unwrap().contains("rook-ceph-mon-a"));
        let (mut o, v) = healthy();
        o.nodes[0].kubelet = Some((1, 25));
        assert!(o.rolling(&cat, &v).unwrap().contains("maas"));
    }
}
