//! What the file asks of Ceph: every volume claim that lands on a StorageClass of a declared
//! Rook pool (Kafka brokers, controllers, ZooKeeper, the database's data and WAL), and the
//! raw bytes it needs with the pool's copies. Pure: the storage phase compares it with the
//! CephCluster's reported capacity, and `validate` with the explicit Ceph sizes of the file.
//!
//! Ceph block volumes are thin: a claim larger than the cluster is created without a word
//! and fails only when it fills. This is where homelab says so first.

use super::resolved::{CephVolume, Cluster, Layout, VolumeClaim};
use super::size::{human_iec, parse_quantity};

/// One kind of claim: `count` volumes of `bytes` each, on a pool that keeps `copies` copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Says what they are, e.g. "3 Kafka broker volumes of 100 GiB".
    pub what: String,
    pub count: u64,
    pub bytes: u64,
    pub copies: u64,
    /// Where the file sets the size (a JSON pointer), for diagnostics.
    pub at: String,
}

impl Claim {
    /// Raw bytes on the OSDs when every volume is full.
    pub fn raw(&self) -> u64 {
        self.count.saturating_mul(self.bytes).saturating_mul(self.copies)
    }
}

impl Cluster {
    /// The claims on a Ceph pool's StorageClass (a claim without a class goes to the default
    /// class, which is Ceph's when a pool's class is marked default).
    pub fn ceph_claims(&self) -> Vec<Claim> {
        let Some(rook) = &self.rook else { return vec![] };
        let copies_of = |class: Option<&str>| -> Option<u64> {
            rook.pools
                .iter()
                .find(|p| {
                    p.storage_class.as_ref().is_some_and(|sc| match class {
                        Some(c) => sc.name == c,
                        None => sc.default,
                    })
                })
                .map(|p| u64::from(p.replicas.max(1)))
        };
        let mut out = Vec::new();
        let mut push = |what: &str, at: &str, count: u32, size: &str, class: Option<&str>| {
            if let (Some(copies), Some(bytes)) = (copies_of(class), parse_quantity(size))
                && count > 0
            {
                out.push(Claim {
                    what: format!("{count} {what} volume{} of {}", if count == 1 { "" } else { "s" }, human_iec(bytes)),
                    count: u64::from(count),
                    bytes,
                    copies,
                    at: at.to_owned(),
                });
            }
        };
        if let Some(k) = &self.kafka {
            let mut claim =
                |what: &str, at: &str, n: u32, v: &VolumeClaim| push(what, at, n, &v.size, v.class.as_deref());
            claim("Kafka broker", "/kafka/cluster/storage/size", k.replicas, &k.storage);
            if let Some(c) = &k.controllers {
                claim("Kafka controller", "/kafka/cluster/controllers/storage/size", c.replicas, &c.storage);
            }
            if let Some(z) = &k.zookeeper {
                claim("ZooKeeper", "/kafka/cluster/zookeeper/storage/size", z.replicas, &z.storage);
            }
        }
        if let Some(d) = &self.database {
            push("PostgreSQL data", "/database/storage/size", d.instances, &d.storage.0, Some(d.storage.1.as_str()));
            if let Some((size, class)) = &d.wal {
                push("PostgreSQL WAL", "/database/walStorage/size", d.instances, size, Some(class.as_str()));
            }
        }
        out
    }

    /// The Ceph capacity the file itself fixes: the sum of explicit Ceph volume sizes, when
    /// every machine with a Ceph volume gives one (`None` when any takes `rest` or a disk).
    pub fn declared_ceph_bytes(&self) -> Option<u64> {
        let mut total = 0u64;
        let mut any = false;
        for m in self.ceph_machines() {
            any = true;
            let bytes = match (&m.carve, &m.layout) {
                (Some(c), _) => match c.size {
                    CephVolume::Bytes(b) => b,
                    _ => return None,
                },
                (None, Layout::Lvm { ceph: CephVolume::Bytes(b), .. }) if m.device.is_none() => *b,
                _ => return None,
            };
            total = total.saturating_add(bytes);
        }
        any.then_some(total)
    }
}

/// More than any one disk a PC holds (the largest sold in 2026 hold about 36 TB): a Ceph
/// volume or a root volume larger than this cannot be on one disk.
pub const MAX_DISK_BYTES: u64 = 64_000_000_000_000;

/// Says, when the claims need more raw space than Ceph has (`capacity`: raw bytes over all
/// OSDs), what they are and what they need. `None` when they fit.
pub fn over_capacity(claims: &[Claim], capacity: u64) -> Option<(String, String)> {
    let need: u64 = claims.iter().map(Claim::raw).fold(0, u64::saturating_add);
    if capacity == 0 || need <= capacity {
        return None;
    }
    let parts: Vec<String> = claims
        .iter()
        .map(|c| format!("{} × {} cop{}", c.what, c.copies, if c.copies == 1 { "y" } else { "ies" }))
        .collect();
    Some((
        format!(
            "the volumes on Ceph need {} when full ({}), but Ceph has {} in all: block volumes are thin, so they are made, and writes fail when Ceph fills",
            human_iec(need),
            parts.join(", "),
            human_iec(capacity)
        ),
        "lower the `storage.size` of Kafka or the database, use fewer copies, or give Ceph more disk (add a machine with `homelab add-node`)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(count: u64, bytes: u64, copies: u64) -> Claim {
        Claim { what: format!("{count} x"), count, bytes, copies, at: String::new() }
    }

    #[test]
    fn claims_that_fit_say_nothing_and_those_that_do_not_say_what_they_need() {
        let gib = 1u64 << 30;
        assert_eq!(over_capacity(&[claim(3, 100 * gib, 2)], 600 * gib), None);
        let (msg, hint) = over_capacity(&[claim(3, 100 * gib, 2), claim(3, 10 * gib, 2)], 600 * gib).unwrap();
        assert!(msg.contains("660 GiB") && msg.contains("600 GiB"), "{msg}");
        assert!(hint.contains("storage.size"));
        // Nothing known: nothing said.
        assert_eq!(over_capacity(&[claim(3, 900 * gib * 1024, 2)], 0), None);
        // Absurd sizes do not overflow.
        assert!(over_capacity(&[claim(u64::MAX, u64::MAX, 3)], 1).is_some());
    }
}
