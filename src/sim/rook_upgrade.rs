//! What the simulated Rook operator does with versions (docs/day2.md §2.3, §3.1): it reads
//! its own release from its image, keeps one Deployment per mon, mgr and OSD labelled
//! `rook-version` and `ceph-version`, and when either differs from what it should be it
//! restarts the daemons one at a time, one per step (mons, then mgrs, then OSDs). Before a
//! Ceph change it checks, with Rook's own texts, that its release accepts the declared
//! version, that it is not a downgrade, that Ceph upgrades from the running major, and that
//! Ceph is not HEALTH_ERR; a refused change leaves every daemon where it was. From v1.18 it
//! carries the ConfigMap's kubelet path into the CSI operator's OperatorConfig.
//!
//! The release facts are written out here on purpose (not read from homelab's catalog): the
//! simulator is an independent account of Rook.

use super::apiserver::ApiState;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

type V3 = (u32, u32, u32);

/// The lowest Ceph of each major a Rook minor runs (`pkg/operator/ceph/version/version.go`).
fn supported(rook_minor: u32) -> &'static [V3] {
    match rook_minor {
        ..=11 => &[(16, 2, 0), (17, 2, 0)],
        12 => &[(16, 2, 7), (17, 2, 0), (18, 2, 0)],
        13 | 14 => &[(17, 2, 0), (18, 2, 0)],
        15 => &[(17, 2, 0), (18, 2, 0), (19, 2, 0)],
        16 | 17 => &[(18, 2, 0), (19, 2, 0)],
        18 => &[(18, 2, 0), (19, 2, 0), (20, 2, 0)],
        19 => &[(19, 2, 0), (20, 2, 0)],
        _ => &[(19, 2, 0), (20, 2, 1)],
    }
}

fn parse(s: &str) -> Option<V3> {
    let s = s.rsplit(':').next()?.trim_start_matches('v');
    let s = s.split('-').next()?;
    let mut it = s.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

fn fmt(v: V3) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// The `ceph-version` label of a daemon running `v`.
pub fn ceph_label(v: V3) -> String {
    format!("{}-0", fmt(v))
}

/// Why Rook `rook_minor` refuses to run Ceph `want` (texts of `cluster/version.go`).
fn refusal(rook_minor: u32, running: V3, want: V3, health_err: bool) -> Option<String> {
    if want < running {
        return Some(format!(
            "image spec version {} is lower than the running cluster version {}, downgrading is not supported",
            fmt(want),
            fmt(running)
        ));
    }
    let mins = supported(rook_minor);
    let lowest = mins.iter().min().copied().unwrap_or((0, 0, 0));
    if want < lowest {
        return Some(format!("the version does not meet the minimum version \"{}\"", fmt(lowest)));
    }
    match mins.iter().find(|m| m.0 == want.0) {
        Some(m) if want < *m => return Some(format!("the version does not meet the minimum version \"{}\"", fmt(*m))),
        None => {
            return Some(format!("allowUnsupported must be set to true to run with this version \"{}\"", fmt(want)));
        }
        _ => {}
    }
    // Ceph itself: a major upgrades from the two before it (Tentacle from Reef or Squid).
    if want.0 > running.0 + 2 {
        return Some(format!(
            "Ceph {} cannot be upgraded to from {} (the mons refuse to start: upgrade through the major between)",
            want.0, running.0
        ));
    }
    if want != running && health_err {
        return Some("Ceph is HEALTH_ERR, the operator will refuse to proceed with the upgrade".into());
    }
    None
}

/// Per cluster: the Ceph that runs and when the last daemon was restarted.
#[derive(Debug, Default)]
pub struct VersionState {
    pub running: Option<V3>,
    pub last_roll: Option<Instant>,
}

/// The outcome of one reconcile: `Some` overrides the cluster's phase and message.
pub struct Roll {
    pub running: V3,
    pub status: Option<(&'static str, String)>,
}

fn daemon(ns: &str, name: &str, app: &str, node: Option<&str>, rook: &str, ceph: &str) -> Value {
    let mut labels = json!({"app": app, "rook_cluster": ns, "rook-version": rook, "ceph-version": ceph});
    if let Some(n) = node {
        labels["topology-location-host"] = json!(n);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}}
    })
}

/// The operator's version work on CephCluster `c` in `ns`. `created` is whether the cluster
/// got past its first mon step (daemons exist from then on).
#[allow(clippy::too_many_arguments)]
pub fn reconcile(
    st: &mut ApiState,
    vs: &mut VersionState,
    ns: &str,
    c: &Value,
    rook_version: &str,
    health_err: bool,
    step: Duration,
    now: Instant,
) -> Roll {
    let rook_minor = parse(rook_version).map(|v| v.1).unwrap_or(0);
    let want = c.pointer("/spec/cephVersion/image").and_then(Value::as_str).and_then(parse).unwrap_or((17, 2, 5));
    let running = *vs.running.get_or_insert(want);
    let refused = refusal(rook_minor, running, want, health_err);
    let target_ceph = if refused.is_some() { running } else { want };
    // The daemons as they should be: mons, mgrs, then every OSD.
    let mons = c.pointer("/spec/mon/count").and_then(Value::as_u64).unwrap_or(3);
    let mgrs = c.pointer("/spec/mgr/count").and_then(Value::as_u64).unwrap_or(1);
    let mut names: Vec<(String, &'static str)> = Vec::new();
    for i in 0..mons {
        names.push((format!("rook-ceph-mon-{}", (b'a' + i as u8) as char), "rook-ceph-mon"));
    }
    for i in 0..mgrs {
        names.push((format!("rook-ceph-mgr-{}", (b'a' + i as u8) as char), "rook-ceph-mgr"));
    }
    let mut osds: Vec<String> = st
        .list("apps", "deployments", Some(ns))
        .into_iter()
        .filter(|d| d.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("rook-ceph-osd"))
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    osds.sort();
    let label =
        |d: &Value, k: &str| d.pointer(&format!("/metadata/labels/{k}")).and_then(Value::as_str).map(str::to_owned);
    let want_ceph_label = ceph_label(target_ceph);
    // New daemons start at the versions they should have; existing ones are rolled.
    for (name, app) in &names {
        if st.get("apps", "deployments", ns, name).is_none() {
            st.put("apps", "deployments", ns, daemon(ns, name, app, None, rook_version, &want_ceph_label));
        }
    }
    for name in &osds {
        let Some(d) = st.get("apps", "deployments", ns, name).cloned() else { continue };
        if label(&d, "rook-version").is_none() {
            let mut d = d;
            d["metadata"]["labels"]["rook_cluster"] = json!(ns);
            d["metadata"]["labels"]["rook-version"] = json!(rook_version);
            d["metadata"]["labels"]["ceph-version"] = json!(ceph_label(running));
            st.put("apps", "deployments", ns, d);
        }
    }
    let order: Vec<String> = names.iter().map(|(n, _)| n.clone()).chain(osds).collect();
    let lagging: Vec<(String, Value)> = order
        .iter()
        .filter_map(|n| st.get("apps", "deployments", ns, n).cloned().map(|d| (n.clone(), d)))
        .filter(|(_, d)| {
            label(d, "rook-version").as_deref() != Some(rook_version)
                || label(d, "ceph-version").as_deref() != Some(want_ceph_label.as_str())
        })
        .collect();
    if let Some((name, d)) = lagging.first() {
        let due = vs.last_roll.is_none_or(|t| now.saturating_duration_since(t) >= step);
        if due {
            let mut d = d.clone();
            d["metadata"]["labels"]["rook-version"] = json!(rook_version);
            d["metadata"]["labels"]["ceph-version"] = json!(want_ceph_label);
            st.put("apps", "deployments", ns, d);
            vs.last_roll = Some(now);
        }
        let what = if name.contains("-mon-") {
            "Configuring Ceph Mons".to_owned()
        } else if name.contains("-mgr-") {
            "Configuring Ceph Mgr(s)".to_owned()
        } else {
            format!(
                "Processing OSD {} on node {:?}",
                name.trim_start_matches("rook-ceph-osd-"),
                label(d, "topology-location-host").unwrap_or_default()
            )
        };
        return Roll { running, status: Some(("Progressing", what)) };
    }
    if target_ceph != running {
        vs.running = Some(target_ceph);
    }
    let running = vs.running.unwrap_or(target_ceph);
    Roll { running, status: refused.map(|r| ("Failure", format!("failed the ceph version check: {r}"))) }
}

/// From v1.18 the operator writes the CSI operator's OperatorConfig from the ConfigMap's
/// `ROOK_CSI_KUBELET_DIR_PATH` when there is none (`operator_config.go @v1.18.11`).
pub fn convert_csi_settings(st: &mut ApiState, ns: &str, rook_version: &str) {
    if parse(rook_version).is_none_or(|v| v.1 < 18) {
        return;
    }
    if st.get("csi.ceph.io", "operatorconfigs", ns, "ceph-csi-operator-config").is_some() {
        return;
    }
    if !st.kinds.iter().any(|k| k.group == "csi.ceph.io" && k.plural == "operatorconfigs") {
        return;
    }
    let dir = st
        .get("", "configmaps", ns, "rook-ceph-operator-config")
        .and_then(|c| c.pointer("/data/ROOK_CSI_KUBELET_DIR_PATH").and_then(Value::as_str).map(str::to_owned));
    let mut spec = json!({"driverSpecDefaults": {"deploymentStrategy": "RollingUpdate"}});
    if let Some(d) = dir {
        spec["driverSpecDefaults"]["nodePlugin"] = json!({"kubeletDirPath": d});
    }
    st.put(
        "csi.ceph.io",
        "operatorconfigs",
        ns,
        json!({"apiVersion": "csi.ceph.io/v1", "kind": "OperatorConfig", "metadata": {"name": "ceph-csi-operator-config", "namespace": ns}, "spec": spec}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rook_refuses_with_its_own_texts() {
        assert_eq!(
            refusal(16, (17, 2, 5), (17, 2, 5), false).unwrap(),
            "the version does not meet the minimum version \"18.2.0\""
        );
        assert!(refusal(14, (18, 2, 4), (19, 2, 3), false).unwrap().starts_with("allowUnsupported must be set"));
        assert!(refusal(15, (19, 2, 3), (18, 2, 4), false).unwrap().contains("downgrading is not supported"));
        assert!(refusal(20, (17, 2, 5), (20, 2, 4), false).unwrap().contains("cannot be upgraded to from 17"));
        assert!(refusal(15, (17, 2, 5), (19, 2, 3), true).unwrap().contains("HEALTH_ERR"));
        assert_eq!(refusal(15, (17, 2, 5), (19, 2, 3), false), None);
        assert_eq!(
            refusal(20, (19, 2, 3), (20, 2, 0), false).unwrap(),
            "the version does not meet the minimum version \"20.2.1\""
        );
    }
}
