//! The `ceph` commands homelab sends through the Rook toolbox (`kubectl exec` into
//! `deploy/rook-ceph-tools`, run by `microk8s kubectl` over SSH on a control plane), and the
//! parsing of their JSON answers into typed values. Answers are bounded by the SSH layer and
//! validated here: a field that is missing or of the wrong type is an error naming the
//! command, never a default that could hide a degraded cluster. Facts: docs/day2.md.

use crate::ssh::{Cmd, Output};
use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const NAMESPACE: &str = "rook-ceph";
pub const TOOLBOX: &str = "rook-ceph-tools";
/// Ceph's default backfillfull ratio: backfill stops into an OSD fuller than this.
pub const BACKFILLFULL: f64 = 0.90;

/// `ceph ARGS --format json` in the toolbox. `read_only` commands may be re-sent after a
/// broken link.
pub fn cmd(args: &[&str], read_only: bool) -> Cmd {
    let mut argv: Vec<String> =
        ["microk8s", "kubectl", "-n", NAMESPACE, "exec", &format!("deploy/{TOOLBOX}"), "--", "ceph"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.extend(["--format".to_owned(), "json".to_owned()]);
    let c = Cmd { argv, sudo: true, stdin: None, timeout: Duration::from_secs(60), read_only: false };
    if read_only { c.read_only() } else { c }
}

fn json_of(out: &Output, what: &str) -> Result<Value> {
    if !out.ok() {
        bail!("`ceph {what}` failed: {}", out.text());
    }
    serde_json::from_str(out.stdout.trim()).with_context(|| format!("`ceph {what}` did not answer JSON"))
}

fn u64_at(v: &Value, ptr: &str, what: &str) -> Result<u64> {
    v.pointer(ptr).and_then(Value::as_u64).ok_or_else(|| anyhow!("`ceph {what}`: no number at {ptr}"))
}

fn str_at<'a>(v: &'a Value, ptr: &str, what: &str) -> Result<&'a str> {
    v.pointer(ptr).and_then(Value::as_str).ok_or_else(|| anyhow!("`ceph {what}`: no text at {ptr}"))
}

/// `ceph status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub health: String,
    /// Health check name → summary.
    pub checks: BTreeMap<String, String>,
    pub osds: u64,
    pub osds_up: u64,
    pub osds_in: u64,
    pub pgs: u64,
    pub pgs_by_state: Vec<(String, u64)>,
    pub bytes_used: u64,
    pub bytes_total: u64,
}

impl Status {
    /// All PGs active+clean.
    pub fn clean(&self) -> bool {
        self.pgs_by_state.iter().all(|(s, _)| s == "active+clean")
    }
    /// PGs not active+clean, as "N state" pieces.
    pub fn unclean(&self) -> String {
        let v: Vec<String> =
            self.pgs_by_state.iter().filter(|(s, _)| s != "active+clean").map(|(s, n)| format!("{n} {s}")).collect();
        v.join(", ")
    }
    /// Whether a PG is still copying data (so waiting can help).
    pub fn recovering(&self) -> bool {
        self.pgs_by_state.iter().any(|(s, _)| s.contains("backfilling") || s.contains("recover"))
    }
}

pub fn parse_status(out: &Output) -> Result<Status> {
    let w = "status";
    let v = json_of(out, w)?;
    let mut checks = BTreeMap::new();
    if let Some(c) = v.pointer("/health/checks").and_then(Value::as_object) {
        for (k, c) in c {
            let msg = c.pointer("/summary/message").and_then(Value::as_str).unwrap_or_default();
            checks.insert(
                crate::foundation::text::printable(k).into_owned(),
                crate::foundation::text::printable(msg).into_owned(),
            );
        }
    }
    let mut by = Vec::new();
    for s in v.pointer("/pgmap/pgs_by_state").and_then(Value::as_array).into_iter().flatten() {
        by.push((str_at(s, "/state_name", w)?.to_owned(), u64_at(s, "/count", w)?));
    }
    Ok(Status {
        health: str_at(&v, "/health/status", w)?.to_owned(),
        checks,
        osds: u64_at(&v, "/osdmap/num_osds", w)?,
        osds_up: u64_at(&v, "/osdmap/num_up_osds", w)?,
        osds_in: u64_at(&v, "/osdmap/num_in_osds", w)?,
        pgs: u64_at(&v, "/pgmap/num_pgs", w)?,
        pgs_by_state: by,
        bytes_used: v.pointer("/pgmap/bytes_used").and_then(Value::as_u64).unwrap_or(0),
        bytes_total: v.pointer("/pgmap/bytes_total").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// One OSD from `ceph osd tree` and `ceph osd df`.
#[derive(Debug, Clone, PartialEq)]
pub struct Osd {
    pub id: u32,
    pub host: String,
    pub up: bool,
    pub inn: bool,
    pub bytes: u64,
    pub used: u64,
}

/// `ceph osd tree` (host of each OSD, up/in) joined with `ceph osd df` (size, use) when
/// given (sizes are 0 without it).
pub fn parse_osds(tree: &Output, df: Option<&Output>) -> Result<Vec<Osd>> {
    let t = json_of(tree, "osd tree")?;
    let d = df.map(|d| json_of(d, "osd df")).transpose()?.unwrap_or(Value::Null);
    let nodes = t.pointer("/nodes").and_then(Value::as_array).ok_or_else(|| anyhow!("`ceph osd tree`: no nodes"))?;
    let mut host_of: BTreeMap<i64, String> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n["type"] == "host") {
        let h = str_at(n, "/name", "osd tree")?;
        for c in n["children"].as_array().into_iter().flatten().filter_map(Value::as_i64) {
            host_of.insert(c, h.to_owned());
        }
    }
    let mut sizes: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for n in d.pointer("/nodes").and_then(Value::as_array).into_iter().flatten() {
        let id = n["id"].as_i64().ok_or_else(|| anyhow!("`ceph osd df`: an OSD without id"))?;
        sizes.insert(id, (u64_at(n, "/kb", "osd df")? * 1024, u64_at(n, "/kb_used", "osd df")? * 1024));
    }
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| n["type"] == "osd") {
        let id = n["id"].as_i64().filter(|i| *i >= 0).ok_or_else(|| anyhow!("`ceph osd tree`: an OSD without id"))?;
        let (bytes, used) = sizes.get(&id).copied().unwrap_or((0, 0));
        out.push(Osd {
            id: u32::try_from(id).map_err(|_| anyhow!("`ceph osd tree`: OSD id {id} out of range"))?,
            host: host_of.get(&id).cloned().unwrap_or_default(),
            up: n["status"] == "up",
            inn: n["reweight"].as_f64().unwrap_or(0.0) > 0.0,
            bytes,
            used,
        });
    }
    Ok(out)
}

/// The host buckets of `ceph osd tree` (the CRUSH map's hosts, an emptied one included).
pub fn parse_buckets(tree: &Output) -> Result<Vec<String>> {
    let t = json_of(tree, "osd tree")?;
    let nodes = t.pointer("/nodes").and_then(Value::as_array).ok_or_else(|| anyhow!("`ceph osd tree`: no nodes"))?;
    nodes.iter().filter(|n| n["type"] == "host").map(|n| str_at(n, "/name", "osd tree").map(str::to_owned)).collect()
}

/// The tokens of PG states that pass by themselves once Ceph has finished reacting to a
/// change of its OSDs (a map change peers, a new OSD is recovered onto, a remap backfills).
/// `undersized`, `peered`, `down`, `incomplete`, `stale`, `backfill_toofull` and the like
/// are not among them: waiting does not end those.
pub const TRANSIENT_PG_STATES: &[&str] = &[
    "active",
    "clean",
    "peering",
    "activating",
    "remapped",
    "backfilling",
    "backfill_wait",
    "recovering",
    "recovery_wait",
    "degraded",
    "wait",
];

impl Status {
    /// The PG states that are neither clean nor transient (a problem, not churn).
    pub fn stuck_pg_states(&self) -> Vec<&str> {
        self.pgs_by_state
            .iter()
            .map(|(s, _)| s.as_str())
            .filter(|s| s.split('+').any(|t| !TRANSIENT_PG_STATES.contains(&t)))
            .collect()
    }
}

/// PG health checks that a change of the OSD set raises while Ceph reacts to it.
const CHURN_CHECKS: &[&str] = &["PG_AVAILABILITY", "PG_DEGRADED"];

/// Whether Ceph is still reacting to a change of its OSDs, so that waiting ends it: an OSD
/// of a `joining` host not yet in the map, up and in; or, with every OSD up, only PG checks
/// whose PGs are all in passing states (peering onto an OSD that booted, recovering to a
/// new one, backfilling a remap). `None` when Ceph is settled or has a real problem (an OSD
/// down, another check, a stuck PG), which the caller then judges. A dead PC's removal has
/// OSDs down by design (`dead`): only a joining OSD is waited for then. The text says what
/// is awaited.
pub fn settling(status: Option<&Status>, osds: &[Osd], joining: &[&str], dead: bool) -> Option<String> {
    for j in joining {
        let mine: Vec<&Osd> = osds.iter().filter(|o| o.host == *j).collect();
        if mine.is_empty() {
            return Some(format!("the OSD of {j} is not in Ceph yet"));
        }
        if let Some(o) = mine.iter().find(|o| !o.up || !o.inn) {
            return Some(format!(
                "osd.{} of {j} is {} and {}",
                o.id,
                if o.up { "up" } else { "not up yet" },
                if o.inn { "in" } else { "not in yet" }
            ));
        }
    }
    if dead || osds.iter().any(|o| !o.up) {
        return None;
    }
    let st = status?;
    if st.checks.is_empty() || !st.checks.keys().all(|k| CHURN_CHECKS.contains(&k.as_str())) {
        return None;
    }
    if !st.stuck_pg_states().is_empty() {
        return None;
    }
    Some(format!("PGs {}", st.unclean()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub size: u32,
    pub min_size: u32,
    /// Bytes stored before replication, when Ceph reports it.
    pub stored: u64,
}

/// `ceph osd pool ls detail`.
pub fn parse_pools(out: &Output) -> Result<Vec<Pool>> {
    let w = "osd pool ls detail";
    let v = json_of(out, w)?;
    let list = v.as_array().ok_or_else(|| anyhow!("`ceph {w}`: not a list"))?;
    list.iter()
        .map(|p| {
            Ok(Pool {
                name: str_at(p, "/pool_name", w)?.to_owned(),
                size: u32::try_from(u64_at(p, "/size", w)?).unwrap_or(u32::MAX),
                min_size: u32::try_from(u64_at(p, "/min_size", w)?).unwrap_or(u32::MAX),
                stored: p.pointer("/stored").and_then(Value::as_u64).unwrap_or(0),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pg {
    pub pgid: String,
    pub state: String,
    pub up: Vec<u32>,
    pub acting: Vec<u32>,
}

/// `ceph pg ls`.
pub fn parse_pgs(out: &Output) -> Result<Vec<Pg>> {
    let w = "pg ls";
    let v = json_of(out, w)?;
    let ids = |x: &Value| -> Vec<u32> {
        x.as_array().into_iter().flatten().filter_map(Value::as_u64).filter_map(|n| u32::try_from(n).ok()).collect()
    };
    let list = v.pointer("/pg_stats").and_then(Value::as_array).ok_or_else(|| anyhow!("`ceph {w}`: no pg_stats"))?;
    list.iter()
        .map(|p| {
            Ok(Pg {
                pgid: str_at(p, "/pgid", w)?.to_owned(),
                state: str_at(p, "/state", w)?.to_owned(),
                up: ids(&p["up"]),
                acting: ids(&p["acting"]),
            })
        })
        .collect()
}

/// `ceph osd safe-to-destroy N`: exit 0 and N listed when safe; EBUSY (16) while PGs still
/// need it.
pub fn parse_safe_to_destroy(out: &Output, id: u32) -> Result<bool> {
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
    let listed = v
        .pointer("/safe_to_destroy")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_u64() == Some(u64::from(id))));
    match out.code {
        Some(0) if listed => Ok(true),
        Some(0) => Ok(false),
        Some(16) => Ok(false),
        _ => bail!("`ceph osd safe-to-destroy {id}` failed: {}", out.text()),
    }
}

/// `ceph osd out osd.N`: done when marked, or already out.
pub fn out_done(out: &Output) -> bool {
    out.ok() && (out.text().contains("marked out") || out.text().contains("already out"))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn o(code: i32, s: &str) -> Output {
        Output { code: Some(code), stdout: s.into(), stderr: String::new() }
    }

    #[test]
    fn status_and_safe_to_destroy() {
        let s = parse_status(&o(0, r#"{"health":{"status":"HEALTH_WARN","checks":{"PG_DEGRADED":{"severity":"HEALTH_WARN","summary":{"message":"Degraded"}}}},"osdmap":{"num_osds":3,"num_up_osds":2,"num_in_osds":3},"pgmap":{"num_pgs":4,"pgs_by_state":[{"state_name":"active+clean","count":3},{"state_name":"active+undersized+degraded","count":1}]}}"#)).unwrap();
        assert!(!s.clean());
        assert_eq!(s.unclean(), "1 active+undersized+degraded");
        assert!(parse_status(&o(0, r#"{"health":{}}"#)).is_err());
        assert!(parse_safe_to_destroy(&o(0, r#"{"safe_to_destroy":[2]}"#), 2).unwrap());
        assert!(!parse_safe_to_destroy(&o(16, r#"{"safe_to_destroy":[]}"#), 2).unwrap());
        assert!(parse_safe_to_destroy(&o(1, ""), 2).is_err());
    }
}
