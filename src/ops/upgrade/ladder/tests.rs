//! The ladder's unit tests: the seed's ladder, resumption, refusals, stages.

use super::moves::{moves, strimzi_moves};
use super::*;
use crate::catalog::Catalog;

fn v(k: u32, rook: &str, ceph: &str) -> Versions {
    Versions { kubernetes: (1, k), rook: rook.into(), ceph: format!("quay.io/ceph/ceph:{ceph}"), ..Default::default() }
}

fn with_kafka(mut v: Versions, strimzi: &str, kafka: &str, metadata: Metadata, v1: bool) -> Versions {
    v.kafka = Some(KafkaAt { strimzi: strimzi.into(), version: kafka.into(), metadata, v1 });
    v
}

fn seed() -> Versions {
    with_kafka(v(26, "v1.10.10", "v17.2.5"), "0.33.1", "3.3.2", Metadata::ZooKeeper, false)
}

fn current() -> Versions {
    with_kafka(v(33, "v1.20.6", "v20.2.4"), "1.2.0", "4.3.1", Metadata::KRaft, true)
}

#[test]
fn the_strimzi_ladder_is_the_documented_one_interleaved() {
    let cat = Catalog::embedded().unwrap();
    let hops = plan(&cat, &seed(), &current()).unwrap();
    let names: Vec<String> = hops.iter().map(Hop::name).collect();
    let strimzi: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("strimzi") || n.starts_with("kafka") || *n == "kraft")
        .collect();
    assert_eq!(
        strimzi,
        [
            "strimzi-0.35.1",
            "kafka-3.4.0",
            "strimzi-0.37.0",
            "kafka-3.5.1",
            "strimzi-0.39.0",
            "kafka-3.6.1",
            "strimzi-0.42.0",
            "kafka-3.7.1",
            "strimzi-0.44.0",
            "kafka-3.8.0",
            "strimzi-0.45.2",
            "kafka-3.9.1",
            "kafka-node-pool",
            "kraft",
            "strimzi-0.47.0",
            "kafka-4.0.0",
            "strimzi-0.50.1",
            "kafka-4.1.1",
            "strimzi-v1-api",
            "strimzi-1.0.1",
            "kafka-4.2.0",
            "strimzi-1.2.0",
            "kafka-4.3.1",
        ]
    );
    // The first Strimzi stage runs on the seed's Kubernetes, after Rook 1.15 and Ceph 19,
    // before the first MicroK8s round; 0.50.1 (Kubernetes ≥ 1.27) after the rounds.
    let at = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(at("ceph-19.2.6") < at("strimzi-0.35.1"), "{names:?}");
    assert!(at("strimzi-0.47.0") < at("microk8s-1.27"), "{names:?}");
    assert!(at("microk8s-1.31") < at("strimzi-0.50.1"), "{names:?}");
    assert!(at("rook-v1.20.6") < at("strimzi-0.50.1"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("microk8s-1.33"));
    // Each operator hop runs the Kafka that runs; no release is skipped that the Kafka needed.
    let mut cur = seed();
    for h in &hops {
        if let Hop::Strimzi { to, .. } = h {
            let k = cur.kafka.as_ref().unwrap();
            assert!(cat.strimzi(to).unwrap().supports(&k.version), "{to} with {}", k.version);
        }
        cur = h.apply(&cur);
    }
    assert_eq!(cur, current());
}

#[test]
fn a_resumed_strimzi_ladder_is_the_rest_of_the_same_one() {
    let cat = Catalog::embedded().unwrap();
    let whole = plan(&cat, &seed(), &current()).unwrap();
    let mut at = seed();
    let mut last = None;
    for i in 0..whole.len() {
        assert_eq!(plan_after(&cat, &at, &current(), last).unwrap(), whole[i..].to_vec(), "resumed after {i} hops");
        at = whole[i].apply(&at);
        if whole[i].component() != "strimzi" {
            last = Some(whole[i].component());
        }
    }
    // A migration stopped half way is finished first.
    let mut m = seed();
    m.kafka =
        Some(KafkaAt { strimzi: "0.45.2".into(), version: "3.9.1".into(), metadata: Metadata::Migrating, v1: false });
    let hops = strimzi_moves(&cat, (1, 26), m.kafka.as_ref().unwrap(), current().kafka.as_ref().unwrap(), &mut vec![]);
    assert_eq!(hops, [Hop::Kraft]);
}

#[test]
fn strimzi_targets_no_ladder_reaches_say_why() {
    let cat = Catalog::embedded().unwrap();
    // A ZooKeeper target on a release without ZooKeeper is refused by validation; here a
    // KRaft file with the Kubernetes too old for 1.2 (it needs 1.30).
    let t = with_kafka(v(26, "v1.10.10", "v17.2.5"), "1.2.0", "4.3.1", Metadata::KRaft, true);
    let e = plan(&cat, &seed(), &t).unwrap_err();
    assert!(e.reason.contains("needs Kubernetes"), "{}", e.reason);
    // Going down.
    let mut down = seed();
    down.kafka.as_mut().unwrap().version = "3.2.3".into();
    assert!(plan(&cat, &seed(), &down).unwrap_err().reason.contains("does not downgrade Kafka"));
    let mut zk = current();
    zk.kafka.as_mut().unwrap().metadata = Metadata::ZooKeeper;
    assert!(plan(&cat, &current(), &zk).unwrap_err().reason.contains("no way back"));
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
        let last = i.checked_sub(1).map(|p| whole[p].component());
        assert_eq!(plan_after(&cat, &at, &goal, last).unwrap(), whole[i..].to_vec(), "resumed after {i} hops");
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
            _ => {}
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
