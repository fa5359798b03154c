//! The hops that can be taken from one point of the ladder, and why each other move is
//! blocked: infrastructure (MicroK8s, Rook, Ceph) and the Strimzi moves. Pure.

use super::{Hop, KafkaAt, Metadata, Versions, minor_s, v3};
use crate::catalog::{Catalog, RookRelease, StrimziRelease, fmt_version, parse_version};

/// The hops that can be taken from `v` towards `target`, in order of preference, and why
/// each other move is blocked.
pub(super) fn moves(cat: &Catalog, v: &Versions, target: &Versions) -> (Vec<Hop>, Vec<String>) {
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

/// Why release `r` cannot take over from what runs (`None`: it can).
fn operator_refuses(r: &StrimziRelease, k8s: (u32, u32), k: &KafkaAt) -> Option<String> {
    if !r.supports(&k.version) {
        return Some(format!(
            "Strimzi {} does not run Kafka {} (it runs {})",
            r.version,
            k.version,
            r.kafka_versions().join(", ")
        ));
    }
    if !r.kubernetes.contains(k8s) {
        return Some(format!(
            "Strimzi {} needs Kubernetes {}, and {} runs",
            r.version,
            r.kubernetes.describe(),
            minor_s(k8s)
        ));
    }
    if !r.zookeeper && k.metadata != Metadata::KRaft {
        return Some(format!(
            "Strimzi {} has no ZooKeeper: the Kafka must be on KRaft first (the migration runs on Strimzi 0.40–0.45)",
            r.version
        ));
    }
    if r.v1_api() && !k.v1 {
        return Some(format!(
            "Strimzi {} serves only the v1 API: the Strimzi resources must be stored as v1 first (converted on 0.49–0.51)",
            r.version
        ));
    }
    None
}

/// The Strimzi moves from `k` towards `t`: operator hops (the newest first), Kafka steps
/// (the highest first), node pools, the KRaft migration, the `v1` conversion.
pub(super) fn strimzi_moves(
    cat: &Catalog,
    k8s: (u32, u32),
    k: &KafkaAt,
    t: &KafkaAt,
    blocked: &mut Vec<String>,
) -> Vec<Hop> {
    let mut out = Vec::new();
    let Some(cur) = cat.strimzi(&k.strimzi) else {
        blocked.push(format!("Strimzi {} is not in the catalog", k.strimzi));
        return out;
    };
    let (cv, tv) = (cur.semver(), v3(&t.strimzi));
    let later: Vec<&StrimziRelease> =
        cat.strimzi_ladder().into_iter().filter(|r| r.semver() > cv && r.semver() <= tv).collect();
    if k.metadata == Metadata::Migrating {
        // A started migration is finished (or rolled back) before anything else moves.
        return vec![Hop::Kraft];
    }
    let mut first_refusal = None;
    for r in later.iter().rev() {
        // Storage already moved to v1 stays there: no release that stores v1beta2 again.
        if k.v1 && !r.v1_api() {
            continue;
        }
        match operator_refuses(r, k8s, k) {
            None => out.push(Hop::Strimzi { from: k.strimzi.clone(), to: r.version.clone() }),
            Some(why) => first_refusal = Some(why),
        }
    }
    if !out.iter().any(|h| matches!(h, Hop::Strimzi { .. }))
        && let Some(why) = first_refusal
    {
        blocked.push(why);
    }
    // Kafka: the target version, or the highest one the running operator and a later
    // release both run (so that release can take over).
    let (kv, tk) = (v3(&k.version), v3(&t.version));
    if kv < tk {
        let runs = |r: &StrimziRelease, x: &str| r.supports(x) && v3(x) > kv && v3(x) <= tk;
        let mut cands: Vec<String> = Vec::new();
        if cur.supports(&t.version) {
            cands.push(t.version.clone());
        }
        for r in &later {
            if let Some(x) =
                cur.kafka_versions().into_iter().filter(|x| runs(cur, x) && r.supports(x)).max_by_key(|x| v3(x))
            {
                cands.push(x.to_owned());
            }
        }
        cands.sort_by_key(|x| std::cmp::Reverse(v3(x)));
        cands.dedup();
        if cands.is_empty() && out.is_empty() {
            blocked.push(format!(
                "Strimzi {} runs Kafka {}: none of them is newer than {} and run by a later release",
                cur.version,
                cur.kafka_versions().join(", "),
                k.version
            ));
        }
        // Kafka steps come first: the running operator's newest Kafka before the next one.
        let steps: Vec<Hop> = cands
            .into_iter()
            .map(|to| Hop::Kafka { from: k.version.clone(), to, kraft: k.metadata == Metadata::KRaft })
            .collect();
        out.splice(0..0, steps);
    }
    // The v1 conversion on a release that serves both APIs, before its operator hops.
    if t.v1 && !k.v1 && cur.serves_v1_and_v1beta2() {
        let at = out.iter().position(|h| matches!(h, Hop::Strimzi { .. })).unwrap_or(out.len());
        out.insert(at, Hop::StrimziV1 { at: cur.version.clone() });
    }
    if t.metadata == Metadata::KRaft {
        match k.metadata {
            Metadata::ZooKeeper if cur.node_pools && cur.zookeeper => out.push(Hop::NodePools),
            Metadata::NodePools if cur.migration && kv >= (3, 7, 0) => out.push(Hop::Kraft),
            Metadata::NodePools => blocked.push(format!(
                "the ZooKeeper → KRaft migration needs Strimzi 0.40–0.45 with Kafka 3.7.0 or newer, and Strimzi {} runs Kafka {}",
                cur.version, k.version
            )),
            _ => {}
        }
    }
    out
}
