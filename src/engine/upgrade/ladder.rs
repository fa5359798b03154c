//! The pure half of `upgrade`: from the versions that run and the versions the file
//! declares, the ladder of hops between them, derived from the catalog's compatibility data
//! (per Rook release its Kubernetes and Ceph ranges, per MicroK8s track its Kubernetes minor,
//! per Ceph major the majors it upgrades from). No I/O. Facts: docs/day2.md §2.
//!
//! The rules: MicroK8s one minor per round (inside the running Rook's Kubernetes range);
//! Rook one minor per hop (the next release must accept the Kubernetes and the Ceph that
//! run); Ceph to a major the running Rook accepts and Ceph upgrades to from the running one.
//! Among the ladders that reach the target, the one chosen has the fewest hops, then the
//! fewest switches between components (each stage does one thing), then at the first
//! difference prefers Rook, then Ceph, then MicroK8s. The choice depends on the versions
//! alone, so a run that resumes half way chooses the rest of the same ladder. The seed's
//! ladder reads: Rook to 1.15, Ceph 17 → 19, MicroK8s to 1.31, Rook 1.16 → 1.20.

use crate::catalog::{Catalog, RookRelease, fmt_version, parse_version};
use std::collections::{HashMap, HashSet};

/// Versions of the three ladders at one point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Versions {
    /// The Kubernetes minor every node runs (the lowest, while a round is half done).
    pub kubernetes: (u32, u32),
    /// The Rook release (`v1.15.9`).
    pub rook: String,
    /// The Ceph image (`quay.io/ceph/ceph:v19.2.3`).
    pub ceph: String,
}

impl Versions {
    fn ceph_version(&self) -> (u32, u32, u32) {
        parse_version(&self.ceph).unwrap_or((0, 0, 0))
    }
    fn rook_minor(&self) -> (u32, u32) {
        parse_version(&self.rook).map(|v| (v.0, v.1)).unwrap_or((0, 0))
    }
    pub fn describe(&self) -> String {
        format!(
            "MicroK8s {}.{}, Rook {}, Ceph {}",
            self.kubernetes.0,
            self.kubernetes.1,
            self.rook,
            fmt_version(self.ceph_version())
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// One MicroK8s minor on every node: control planes one at a time, then workers.
    MicroK8s { from: (u32, u32), to: (u32, u32) },
    /// One Rook minor (or a patch within the running minor).
    Rook { from: String, to: String },
    /// The Ceph image of the CephCluster.
    Ceph { from: String, to: String },
}

fn minor_s(m: (u32, u32)) -> String {
    format!("{}.{}", m.0, m.1)
}

impl Hop {
    /// The hop's name (`--until` takes it): `microk8s-1.27`, `rook-v1.11.11`, `ceph-19.2.6`.
    pub fn name(&self) -> String {
        match self {
            Hop::MicroK8s { to, .. } => format!("microk8s-{}", minor_s(*to)),
            Hop::Rook { to, .. } => format!("rook-{to}"),
            Hop::Ceph { to, .. } => format!("ceph-{}", fmt_version(parse_version(to).unwrap_or((0, 0, 0)))),
        }
    }

    /// The component the hop moves (its stage is a run of hops of one component).
    pub fn component(&self) -> &'static str {
        match self {
            Hop::MicroK8s { .. } => "microk8s",
            Hop::Rook { .. } => "rook",
            Hop::Ceph { .. } => "ceph",
        }
    }

    /// What changes, in the words of the plan and of the run.
    pub fn words(&self) -> String {
        match self {
            Hop::MicroK8s { from, to } => format!(
                "MicroK8s {} → {} on every node, control planes first, one at a time (drain, snap refresh microk8s --channel={}/stable, wait Ready, uncordon)",
                minor_s(*from),
                minor_s(*to),
                minor_s(*to)
            ),
            Hop::Rook { from, to } => format!(
                "Rook {from} → {to} (apply its crds.yaml and common.yaml{}, then set the operator image; operator.yaml is not re-applied)",
                if parse_version(to).is_some_and(|v| (v.0, v.1) >= (1, 18)) { " and csi-operator.yaml" } else { "" }
            ),
            Hop::Ceph { from, to } => format!(
                "Ceph {} → {} (set the CephCluster's cephVersion.image to {to}; Rook restarts mons, mgrs and OSDs one at a time)",
                fmt_version(parse_version(from).unwrap_or((0, 0, 0))),
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
        }
    }

    /// What is checked before the hop.
    pub fn gate_words(&self) -> String {
        let common =
            "Ceph HEALTH_OK, every OSD up and in, every node Ready, the datastore keeps its voters, Kafka Ready";
        match self {
            Hop::MicroK8s { to, .. } => format!("{common}; the running Rook supports Kubernetes {}", minor_s(*to)),
            Hop::Rook { to, .. } => format!("{common}; Rook {to} supports the Kubernetes and Ceph that run"),
            Hop::Ceph { to, .. } => format!(
                "{common}; the running Rook accepts Ceph {}",
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
        }
    }

    /// What the hop waits for after its change.
    pub fn wait_words(&self) -> String {
        match self {
            Hop::MicroK8s { to, .. } => format!(
                "per node: MicroK8s ready, its Node Ready at v{}, Ceph clean and Kafka Ready before the next node",
                minor_s(*to)
            ),
            Hop::Rook { to, .. } => {
                format!("the operator rolled out and every Ceph daemon labelled rook-version={to}; Ceph Ready")
            }
            Hop::Ceph { to, .. } => format!(
                "every mon, mgr and OSD labelled ceph-version={}, the CephCluster's status.version at it, health not ERR",
                fmt_version(parse_version(to).unwrap_or((0, 0, 0)))
            ),
        }
    }

    /// Budget on real hardware, seconds (docs/day2.md §3.4: 15 min per MicroK8s node, 30 min
    /// per Rook hop, 15 min per OSD for a Ceph major).
    pub fn budget(&self, nodes: usize, osds: usize) -> u64 {
        match self {
            Hop::MicroK8s { .. } => 900 * nodes.max(1) as u64,
            Hop::Rook { .. } => 1800,
            Hop::Ceph { .. } => 900 * osds.max(1) as u64,
        }
    }

    /// The versions after this hop.
    pub fn apply(&self, v: &Versions) -> Versions {
        let mut n = v.clone();
        match self {
            Hop::MicroK8s { to, .. } => n.kubernetes = *to,
            Hop::Rook { to, .. } => n.rook = to.clone(),
            Hop::Ceph { to, .. } => n.ceph = to.clone(),
        }
        n
    }
}

/// No ladder reaches the target: why, and what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub reason: String,
    pub hint: String,
}

fn unreachable(reason: impl Into<String>, hint: impl Into<String>) -> Unreachable {
    Unreachable { reason: reason.into(), hint: hint.into() }
}

/// The hops that can be taken from `v` towards `target`, in order of preference, and why
/// each other move is blocked.
fn moves(cat: &Catalog, v: &Versions, target: &Versions) -> (Vec<Hop>, Vec<String>) {
    let mut blocked = Vec::new();
    let mut rook_moves = Vec::new();
    let mut ceph_moves = Vec::new();
    let mut k8s_moves = Vec::new();
    let (rm, trm) = (v.rook_minor(), target.rook_minor());
    let cur_rook = cat.rook(&v.rook);
    // Rook: the next minor, or the target's patch of the running minor.
    let next: Option<&RookRelease> = if rm == trm && v.rook != target.rook {
        cat.rook(&target.rook)
    } else if rm < trm {
        let nm = (rm.0, rm.1 + 1);
        if nm == trm { cat.rook(&target.rook) } else { cat.rook_of_minor(nm) }
    } else {
        None
    };
    if rm < trm && next.is_none() {
        blocked.push(format!("the catalog pins no Rook release of minor {}.{}", rm.0, rm.1 + 1));
    }
    if let Some(n) = next {
        let ceph = v.ceph_version();
        if !n.kubernetes.contains(v.kubernetes) {
            blocked.push(format!(
                "Rook {} supports Kubernetes {}, and {} runs",
                n.version,
                n.kubernetes.describe(),
                minor_s(v.kubernetes)
            ));
        } else if let Err(e) = n.accepts_ceph(ceph) {
            blocked.push(format!("Rook {} refuses Ceph {}: {e}", n.version, fmt_version(ceph)));
        } else {
            rook_moves.push(Hop::Rook { from: v.rook.clone(), to: n.version.clone() });
        }
    }
    // Ceph: the target image, or the pinned build of a major between, the highest first.
    let (c, tc) = (v.ceph_version(), target.ceph_version());
    if c < tc {
        let mut candidates: Vec<String> = vec![target.ceph.clone()];
        for m in (c.0 + 1..tc.0).rev() {
            if let Some(img) = cat.ceph_image_of(m) {
                candidates.push(img.to_owned());
            }
        }
        for img in candidates {
            let to = parse_version(&img).unwrap_or((0, 0, 0));
            let why = cat.ceph_step(c.0, to.0).err().or_else(|| match cur_rook {
                Some(r) => r
                    .accepts_ceph(to)
                    .err()
                    .map(|e| format!("Rook {} refuses Ceph {}: {e}", r.version, fmt_version(to))),
                None => Some(format!("Rook {} is not in the catalog", v.rook)),
            });
            match why {
                None => ceph_moves.push(Hop::Ceph { from: v.ceph.clone(), to: img }),
                Some(w) => blocked.push(w),
            }
        }
    }
    // MicroK8s: the next minor, inside the running Rook's range.
    if v.kubernetes < target.kubernetes {
        let to = (v.kubernetes.0, v.kubernetes.1 + 1);
        match cur_rook {
            _ if cat.track_of(to).is_none() => {
                blocked.push(format!("the catalog knows no MicroK8s track {}", minor_s(to)))
            }
            Some(r) if !r.kubernetes.contains(to) => blocked.push(format!(
                "Rook {} supports Kubernetes {}, so MicroK8s cannot go to {}",
                r.version,
                r.kubernetes.describe(),
                minor_s(to)
            )),
            _ => k8s_moves.push(Hop::MicroK8s { from: v.kubernetes, to }),
        }
    }
    ([rook_moves, ceph_moves, k8s_moves].concat(), blocked)
}

/// The ladder from `now` to `target`, or why none exists.
pub fn plan(cat: &Catalog, now: &Versions, target: &Versions) -> Result<Vec<Hop>, Unreachable> {
    // Refusals that no ladder can get around: going down.
    let (nr, tr) = (parse_version(&now.rook), parse_version(&target.rook));
    let (nc, tc) = (now.ceph_version(), target.ceph_version());
    if now.kubernetes > target.kubernetes {
        return Err(unreachable(
            format!(
                "the cluster runs Kubernetes {}, the file declares {}: MicroK8s does not go back a minor",
                minor_s(now.kubernetes),
                minor_s(target.kubernetes)
            ),
            format!("declare channel {}/stable (or newer) in the file", minor_s(now.kubernetes)),
        ));
    }
    if nr > tr {
        return Err(unreachable(
            format!(
                "the operator runs Rook {}, the file declares {}: Rook upgrades are only supported forward",
                now.rook, target.rook
            ),
            format!("declare rook.version {} (or newer)", now.rook),
        ));
    }
    if nc > tc {
        return Err(unreachable(
            format!(
                "image spec version {} is lower than the running cluster version {}, downgrading is not supported",
                fmt_version(tc),
                fmt_version(nc)
            ),
            format!("declare rook.cephImage {} (or a newer pinned build)", now.ceph),
        ));
    }
    let mut memo = HashMap::new();
    if let Some((_, path)) = best(cat, now, target, None, &mut memo) {
        return Ok(path);
    }
    // No ladder: find how far one gets, and what blocks there.
    let mut seen: HashSet<Versions> = HashSet::new();
    let mut deepest: (usize, Versions, Option<Vec<String>>) = (0, now.clone(), None);
    furthest(cat, now, target, 0, &mut seen, &mut deepest);
    let (_, at, blocked) = deepest;
    let blocked = blocked.unwrap_or_default();
    let mut reason = format!("no ladder of supported hops reaches {}", target.describe());
    if at != *now {
        reason.push_str(&format!("; the furthest one can climb is {}", at.describe()));
    }
    if !blocked.is_empty() {
        reason.push_str(&format!(", where {}", blocked.join("; ")));
    }
    Err(unreachable(
        reason,
        "declare versions the ladder reaches: `homelab upgrade --plan` with a target file shows the hops; every Rook minor accepts only some Kubernetes minors and Ceph majors (docs/day2.md §2.3)",
    ))
}

/// (hops, switches between components).
type Cost = (usize, usize);
type Memo = HashMap<(Versions, Option<&'static str>), Option<(Cost, Vec<Hop>)>>;

/// The best ladder from `v` (after a hop of component `last`) to `target`.
fn best(
    cat: &Catalog,
    v: &Versions,
    target: &Versions,
    last: Option<&'static str>,
    memo: &mut Memo,
) -> Option<(Cost, Vec<Hop>)> {
    if v == target {
        return Some(((0, 0), vec![]));
    }
    let key = (v.clone(), last);
    if let Some(r) = memo.get(&key) {
        return r.clone();
    }
    let mut found: Option<(Cost, Vec<Hop>)> = None;
    let (hops, _) = moves(cat, v, target);
    for h in hops {
        let c = h.component();
        let Some(((n, sw), rest)) = best(cat, &h.apply(v), target, Some(c), memo) else { continue };
        let cost = (n + 1, sw + usize::from(last.is_some_and(|l| l != c)));
        if found.as_ref().is_none_or(|(fc, _)| cost < *fc) {
            let mut path = vec![h];
            path.extend(rest);
            found = Some((cost, path));
        }
    }
    memo.insert(key, found.clone());
    found
}

/// Walks every point reachable from `v` (no ladder reaches the target), keeping the first
/// of the furthest ones and what blocks each move there.
fn furthest(
    cat: &Catalog,
    v: &Versions,
    target: &Versions,
    depth: usize,
    seen: &mut HashSet<Versions>,
    deepest: &mut (usize, Versions, Option<Vec<String>>),
) {
    if !seen.insert(v.clone()) || depth > 64 {
        return;
    }
    let (hops, blocked) = moves(cat, v, target);
    if depth > deepest.0 || deepest.2.is_none() {
        *deepest = (depth, v.clone(), Some(blocked));
    }
    for h in hops {
        furthest(cat, &h.apply(v), target, depth + 1, seen, deepest);
    }
}

/// Stages: runs of consecutive hops of one component, lettered A, B, C, …
pub fn stages(hops: &[Hop]) -> Vec<String> {
    let mut out = Vec::new();
    let mut letter = b'A';
    for (i, h) in hops.iter().enumerate() {
        if i > 0 && hops[i - 1].component() != h.component() {
            letter = letter.saturating_add(1);
        }
        out.push(char::from(letter).to_string());
    }
    out
}

/// The hops up to and including `until` (a hop name or a stage letter).
pub fn cut(hops: &[Hop], until: Option<&str>) -> Result<usize, String> {
    let Some(u) = until else { return Ok(hops.len()) };
    let st = stages(hops);
    if let Some(i) = hops.iter().position(|h| h.name() == u) {
        return Ok(i + 1);
    }
    if let Some(i) = st.iter().rposition(|s| s.eq_ignore_ascii_case(u)) {
        return Ok(i + 1);
    }
    let names: Vec<String> = hops.iter().map(Hop::name).collect();
    Err(format!(
        "--until {u} names no hop or stage of this ladder (hops: {}; stages: {})",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        {
            let mut s = st.clone();
            s.dedup();
            s.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(k: u32, rook: &str, ceph: &str) -> Versions {
        Versions { kubernetes: (1, k), rook: rook.into(), ceph: format!("quay.io/ceph/ceph:{ceph}") }
    }

    #[test]
    fn the_seed_ladder_is_the_documented_one() {
        let cat = Catalog::embedded().unwrap();
        let hops = plan(&cat, &v(26, "v1.10.10", "v17.2.5"), &v(31, "v1.20.6", "v19.2.6")).unwrap();
        let names: Vec<String> = hops.iter().map(Hop::name).collect();
        assert_eq!(
            names,
            [
                "rook-v1.11.11",
                "rook-v1.12.11",
                "rook-v1.13.10",
                "rook-v1.14.12",
                "rook-v1.15.9",
                "ceph-19.2.6",
                "microk8s-1.27",
                "microk8s-1.28",
                "microk8s-1.29",
                "microk8s-1.30",
                "microk8s-1.31",
                "rook-v1.16.9",
                "rook-v1.17.9",
                "rook-v1.18.11",
                "rook-v1.19.10",
                "rook-v1.20.6",
            ]
        );
        assert_eq!(stages(&hops).join(""), "AAAAABCCCCCDDDDD");
        assert_eq!(cut(&hops, Some("C")), Ok(11));
        assert_eq!(cut(&hops, Some("rook-v1.15.9")), Ok(5));
        assert!(cut(&hops, Some("rook-v9")).unwrap_err().contains("names no hop"));
    }

    #[test]
    fn a_run_resumed_half_way_chooses_the_rest_of_the_same_ladder() {
        let cat = Catalog::embedded().unwrap();
        let (seed, goal) = (v(26, "v1.10.10", "v17.2.5"), v(31, "v1.20.6", "v19.2.3"));
        let whole = plan(&cat, &seed, &goal).unwrap();
        let mut at = seed;
        for i in 0..whole.len() {
            assert_eq!(plan(&cat, &at, &goal).unwrap(), whole[i..].to_vec(), "resumed after {i} hops");
            at = whole[i].apply(&at);
        }
    }

    #[test]
    fn ceph_20_comes_after_rook_reaches_it() {
        let cat = Catalog::embedded().unwrap();
        let hops = plan(&cat, &v(26, "v1.10.10", "v17.2.5"), &v(33, "v1.20.6", "v20.2.4")).unwrap();
        let names: Vec<String> = hops.iter().map(Hop::name).collect();
        let i19 = names.iter().position(|n| n == "ceph-19.2.6").unwrap();
        let i20 = names.iter().position(|n| n == "ceph-20.2.4").unwrap();
        let r120 = names.iter().position(|n| n == "rook-v1.20.6").unwrap();
        assert!(i19 < i20 && r120 < i20, "{names:?}");
        assert_eq!(names.last().map(String::as_str), Some("microk8s-1.33"));
        // Every hop is one MicroK8s minor, one Rook minor, and no Ceph step skips two majors.
        let mut cur = v(26, "v1.10.10", "v17.2.5");
        for h in &hops {
            let n = h.apply(&cur);
            match h {
                Hop::MicroK8s { from, to } => assert_eq!(to.1, from.1 + 1),
                Hop::Rook { .. } => assert_eq!(n.rook_minor().1, cur.rook_minor().1 + 1),
                Hop::Ceph { .. } => assert!(cat.ceph_step(cur.ceph_version().0, n.ceph_version().0).is_ok()),
            }
            cur = n;
        }
    }

    #[test]
    fn converged_is_an_empty_ladder_and_a_patch_is_one_hop() {
        let cat = Catalog::embedded().unwrap();
        let now = v(26, "v1.10.10", "v17.2.5");
        assert_eq!(plan(&cat, &now, &now).unwrap(), vec![]);
        let hops = plan(&cat, &now, &v(26, "v1.10.10", "v17.2.6")).unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0].name(), "ceph-17.2.6");
    }

    #[test]
    fn unreachable_targets_say_why() {
        let cat = Catalog::embedded().unwrap();
        let seed = v(26, "v1.10.10", "v17.2.5");
        // Rook 1.16+ dropped Quincy: keeping Ceph 17 cannot reach Rook 1.20.
        let e = plan(&cat, &seed, &v(31, "v1.20.6", "v17.2.5")).unwrap_err();
        assert!(e.reason.contains("Rook v1.16.9 refuses Ceph 17.2.5"), "{}", e.reason);
        assert!(e.reason.contains("minimum version \"18.2.0\""), "{}", e.reason);
        // Rook 1.15 stops at Kubernetes 1.31.
        let e = plan(&cat, &seed, &v(32, "v1.15.9", "v19.2.6")).unwrap_err();
        assert!(e.reason.contains("so MicroK8s cannot go to 1.32"), "{}", e.reason);
        // Ceph 20 on Rook 1.15: the ladder takes Ceph to 19, and there Rook refuses 20.
        let e = plan(&cat, &v(26, "v1.15.9", "v17.2.5"), &v(26, "v1.15.9", "v20.2.4")).unwrap_err();
        assert!(e.reason.contains("Ceph 19.2.6"), "{}", e.reason);
        assert!(e.reason.contains("allowUnsupported must be set to true"), "{}", e.reason);
        // Ceph 17 → 20 directly is never a hop: Tentacle upgrades from Reef or Squid only.
        let (hops, blocked) = moves(&cat, &v(31, "v1.20.6", "v17.2.5"), &v(31, "v1.20.6", "v20.2.4"));
        assert!(hops.iter().all(|h| h.name() != "ceph-20.2.4"), "{hops:?}");
        assert!(
            blocked.iter().any(|b| b.contains("Ceph 20 (tentacle) upgrades only from 18 (reef) or 19 (squid)")),
            "{blocked:?}"
        );
        // Going down.
        let e = plan(&cat, &v(31, "v1.20.6", "v19.2.6"), &v(31, "v1.20.6", "v19.2.3")).unwrap_err();
        assert!(e.reason.contains("downgrading is not supported"), "{}", e.reason);
        assert!(plan(&cat, &v(28, "v1.10.10", "v17.2.5"), &seed).unwrap_err().reason.contains("does not go back"));
    }
}
