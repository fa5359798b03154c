//! The choice among the ladders that reach the target (fewest hops, then the order the
//! module doc gives), the Strimzi track and the CloudNativePG hop placed on it, and why no
//! ladder reaches a target. Pure.

use super::moves::{moves, strimzi_moves};
use super::{Hop, KafkaAt, Metadata, Versions, minor_s, v3};
use crate::catalog::{Catalog, fmt_version, parse_version};
use std::collections::{HashMap, HashSet};

/// No ladder reaches the target: why, and what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub reason: String,
    pub hint: String,
}

fn unreachable(reason: impl Into<String>, hint: impl Into<String>) -> Unreachable {
    Unreachable { reason: reason.into(), hint: hint.into() }
}

/// The ladder from `now` to `target`, or why none exists.
pub fn plan(cat: &Catalog, now: &Versions, target: &Versions) -> Result<Vec<Hop>, Unreachable> {
    plan_after(cat, now, target, None)
}

/// The ladder from `now`, reached by a hop of infrastructure component `last` (`microk8s`,
/// `rook`, `ceph`; what `upgrade` keeps in the cluster): a run that resumes in the middle of
/// a stage carries the stage on, as the whole ladder had it.
pub fn plan_after(
    cat: &Catalog,
    now: &Versions,
    target: &Versions,
    last: Option<&str>,
) -> Result<Vec<Hop>, Unreachable> {
    let last: Option<&'static str> = ["microk8s", "rook", "ceph"].into_iter().find(|c| Some(*c) == last);
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
    if let (Some(k), Some(t)) = (&now.kafka, &target.kafka) {
        if v3(&k.strimzi) > v3(&t.strimzi) {
            return Err(unreachable(
                format!(
                    "the operator runs Strimzi {}, the file declares {}: homelab does not downgrade Strimzi",
                    k.strimzi, t.strimzi
                ),
                format!("declare kafka.strimziVersion {} (or newer)", k.strimzi),
            ));
        }
        if v3(&k.version) > v3(&t.version) {
            return Err(unreachable(
                format!(
                    "Kafka {} runs, the file declares {}: homelab does not downgrade Kafka (a raised metadata or protocol version cannot go back)",
                    k.version, t.version
                ),
                format!("declare kafka.cluster.version {} (or newer)", k.version),
            ));
        }
        if k.metadata == Metadata::KRaft && t.metadata != Metadata::KRaft {
            return Err(unreachable(
                "the Kafka runs on KRaft and the file declares ZooKeeper: a finished migration has no way back",
                "declare `metadata: kraft` with `controllers:`",
            ));
        }
    }
    // The infrastructure (MicroK8s, Rook, Ceph) first, then the Strimzi track placed on it.
    let (infra_now, infra_target) =
        (Versions { kafka: None, cnpg: None, ..now.clone() }, Versions { kafka: None, cnpg: None, ..target.clone() });
    let mut memo = HashMap::new();
    let Some(infra) =
        best(cat, &infra_now, &infra_target, last, &mut memo).map(|_| walk(&infra_now, &infra_target, last, &memo))
    else {
        return Err(no_ladder(cat, &infra_now, &infra_target, target));
    };
    let hops = match (&now.kafka, &target.kafka) {
        (Some(k), Some(t)) if k != t => merge_strimzi(cat, now, &infra, last, k, t)?,
        _ => infra,
    };
    place_cnpg(cat, now, target, hops, last)
}

/// Places the CloudNativePG hop at the first point of the ladder whose Kubernetes the
/// target release accepts, never between two MicroK8s rounds of one stage. The pinned
/// releases leave a gap (v1.22.5 documents Kubernetes up to 1.28, v1.30.0 from 1.30), so
/// the running release is carried over the rounds in between; the plan says so.
fn place_cnpg(
    cat: &Catalog,
    now: &Versions,
    target: &Versions,
    mut hops: Vec<Hop>,
    last: Option<&'static str>,
) -> Result<Vec<Hop>, Unreachable> {
    let (Some(from), Some(to)) = (&now.cnpg, &target.cnpg) else { return Ok(hops) };
    if from == to {
        return Ok(hops);
    }
    if v3(from) > v3(to) {
        return Err(unreachable(
            format!(
                "CloudNativePG {from} runs and the file's Kubernetes calls for {to}: homelab does not downgrade CloudNativePG"
            ),
            "declare the Kubernetes the cluster runs (or newer)",
        ));
    }
    let Some(min) = cat.cnpg(to).and_then(|r| crate::catalog::parse_minor(&r.kubernetes.min)) else {
        return Err(unreachable(
            format!("CloudNativePG {to} is not in the release catalog"),
            "add it with --catalog FILE",
        ));
    };
    let mut k = now.kubernetes;
    for i in 0..=hops.len() {
        let after_round = if i == 0 { last == Some("microk8s") } else { matches!(hops[i - 1], Hop::MicroK8s { .. }) };
        let splits = after_round && matches!(hops.get(i), Some(Hop::MicroK8s { .. }));
        if k >= min && !splits {
            hops.insert(i, Hop::CloudNativePg { from: from.clone(), to: to.clone() });
            return Ok(hops);
        }
        if let Some(Hop::MicroK8s { to, .. }) = hops.get(i) {
            k = *to;
        }
    }
    Err(unreachable(
        format!("CloudNativePG {to} needs Kubernetes {}.{} or later; the ladder ends on {}", min.0, min.1, minor_s(k)),
        "declare a newer MicroK8s channel",
    ))
}

fn no_ladder(cat: &Catalog, now: &Versions, target: &Versions, whole: &Versions) -> Unreachable {
    // No ladder: find how far one gets, and what blocks there.
    let mut seen: HashSet<Versions> = HashSet::new();
    let mut deepest: (usize, Versions, Option<Vec<String>>) = (0, now.clone(), None);
    furthest(cat, now, target, 0, &mut seen, &mut deepest);
    let (_, at, blocked) = deepest;
    let blocked = blocked.unwrap_or_default();
    let mut reason = format!("no ladder of supported hops reaches {}", whole.describe());
    if at != *now {
        reason.push_str(&format!("; the furthest one can climb is {}", at.describe()));
    }
    if !blocked.is_empty() {
        reason.push_str(&format!(", where {}", blocked.join("; ")));
    }
    unreachable(
        reason,
        "declare versions the ladder reaches: `homelab upgrade --plan` with a target file shows the hops; every Rook minor accepts only some Kubernetes minors and Ceph majors, every Strimzi release only some Kafka versions and a minimum Kubernetes (docs/day2.md §2.3, §2.4)",
    )
}

/// (Strimzi hops, the Kubernetes minors they run on).
type TrackCost = (usize, u64);
type TrackMemo = HashMap<(KafkaAt, usize), Option<(TrackCost, Option<Hop>)>>;

/// Places the Strimzi track on the infrastructure ladder: at each point of it (the
/// Kubernetes minor `k8s[i]`) the Strimzi moves that run there, or on to the next point.
/// Fewest hops, then each hop on the oldest Kubernetes it can run on; a state's best
/// suffix does not depend on how it was reached, so a resumed run takes the same track.
/// `open[i]`: Strimzi hops may run at point `i` (not between two MicroK8s rounds of one
/// stage: a stage is not split).
fn track(
    cat: &Catalog,
    k: &KafkaAt,
    i: usize,
    k8s: &[(u32, u32)],
    open: &[bool],
    t: &KafkaAt,
    memo: &mut TrackMemo,
) -> Option<TrackCost> {
    if k == t {
        return Some((0, 0));
    }
    let key = (k.clone(), i);
    if let Some(r) = memo.get(&key) {
        return r.as_ref().map(|(c, _)| *c);
    }
    memo.insert(key.clone(), None);
    // On to the next point first: at equal cost a Strimzi hop goes last among the hops on
    // its Kubernetes minor (after Rook and Ceph, right before the next MicroK8s round).
    let mut found: Option<(TrackCost, Option<Hop>)> =
        if i + 1 < k8s.len() { track(cat, k, i + 1, k8s, open, t, memo).map(|c| (c, None)) } else { None };
    let mut blocked = Vec::new();
    let moves = if open[i] { strimzi_moves(cat, k8s[i], k, t, &mut blocked) } else { vec![] };
    for h in moves {
        let next = h.apply_kafka(k);
        if let Some((n, late)) = track(cat, &next, i, k8s, open, t, memo) {
            let cost = (n + 1, late + u64::from(k8s[i].1));
            if found.as_ref().is_none_or(|(fc, _)| cost < *fc) {
                found = Some((cost, Some(h)));
            }
        }
    }
    memo.insert(key, found.clone());
    found.map(|(c, _)| c)
}

fn merge_strimzi(
    cat: &Catalog,
    now: &Versions,
    infra: &[Hop],
    last: Option<&'static str>,
    k: &KafkaAt,
    t: &KafkaAt,
) -> Result<Vec<Hop>, Unreachable> {
    let mut k8s = vec![now.kubernetes];
    let mut v = Versions { kafka: None, cnpg: None, ..now.clone() };
    for h in infra {
        v = h.apply(&v);
        k8s.push(v.kubernetes);
    }
    let is_round = |i: usize| -> bool {
        if i == 0 { last == Some("microk8s") } else { matches!(infra.get(i - 1), Some(Hop::MicroK8s { .. })) }
    };
    let open: Vec<bool> =
        (0..k8s.len()).map(|i| !(is_round(i) && matches!(infra.get(i), Some(Hop::MicroK8s { .. })))).collect();
    let mut memo = TrackMemo::new();
    if track(cat, k, 0, &k8s, &open, t, &mut memo).is_none() {
        // How far the track gets on the final Kubernetes, and what blocks there.
        let last = *k8s.last().unwrap_or(&now.kubernetes);
        let mut at = k.clone();
        let mut blocked = Vec::new();
        let mut seen = HashSet::new();
        while seen.insert(at.clone()) {
            blocked.clear();
            let moves = strimzi_moves(cat, last, &at, t, &mut blocked);
            let Some(h) = moves.into_iter().next() else { break };
            at = h.apply_kafka(&at);
        }
        let mut reason = format!(
            "no ladder of supported hops takes Strimzi {} with Kafka {} to Strimzi {} with Kafka {} on {}",
            k.strimzi,
            k.version,
            t.strimzi,
            t.version,
            t.metadata.words()
        );
        if at != *k {
            reason.push_str(&format!("; it gets as far as Strimzi {} with Kafka {}", at.strimzi, at.version));
        }
        if !blocked.is_empty() {
            reason.push_str(&format!(", where {}", blocked.join("; ")));
        }
        return Err(unreachable(
            reason,
            "declare versions the ladder reaches: every Strimzi release runs only some Kafka versions and needs a minimum Kubernetes (docs/day2.md §2.4)",
        ));
    }
    let mut out = Vec::new();
    let (mut cur, mut i) = (k.clone(), 0usize);
    loop {
        match memo.get(&(cur.clone(), i)) {
            Some(Some((_, Some(h)))) => {
                cur = h.apply_kafka(&cur);
                out.push(h.clone());
            }
            Some(Some((_, None))) if i < infra.len() => {
                out.push(infra[i].clone());
                i += 1;
            }
            _ => break,
        }
        if cur == *t {
            break;
        }
    }
    out.extend(infra[i..].iter().cloned());
    Ok(out)
}

/// (hops, switches between components).
type Cost = (usize, usize);
/// The best cost from a point (after a hop of a component) and the first hop of it.
type Memo = HashMap<(Versions, Option<&'static str>), Option<(Cost, Option<Hop>)>>;

/// The cost of the best ladder from `v` (after a hop of component `last`) to `target`.
fn best(cat: &Catalog, v: &Versions, target: &Versions, last: Option<&'static str>, memo: &mut Memo) -> Option<Cost> {
    if v == target {
        return Some((0, 0));
    }
    let key = (v.clone(), last);
    if let Some(r) = memo.get(&key) {
        return r.as_ref().map(|(c, _)| *c);
    }
    // Every hop raises a version, so no loop forms; the mark ends a defect's recursion.
    memo.insert(key.clone(), None);
    let mut found: Option<(Cost, Option<Hop>)> = None;
    let (hops, _) = moves(cat, v, target);
    for h in hops {
        let c = h.component();
        let Some((n, sw)) = best(cat, &h.apply(v), target, Some(c), memo) else { continue };
        let cost = (n + 1, sw + usize::from(last.is_some_and(|l| l != c)));
        if found.as_ref().is_none_or(|(fc, _)| cost < *fc) {
            found = Some((cost, Some(h)));
        }
    }
    memo.insert(key, found.clone());
    found.map(|(c, _)| c)
}

/// The ladder the memo of [`best`] describes from `now`.
fn walk(now: &Versions, target: &Versions, last: Option<&'static str>, memo: &Memo) -> Vec<Hop> {
    let mut out = Vec::new();
    let (mut v, mut last) = (now.clone(), last);
    while v != *target {
        let Some(Some((_, Some(h)))) = memo.get(&(v.clone(), last)) else { break };
        last = Some(h.component());
        v = h.apply(&v);
        out.push(h.clone());
    }
    out
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
