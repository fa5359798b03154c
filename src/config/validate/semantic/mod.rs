//! Steps 6 and 7 of validation: the rules no schema can say (roles and quorum, sizes that fit,
//! versions the pinned releases support together), one file per section of cluster.yaml, and
//! the resolution into the [`Cluster`] the engine runs on.

mod database;
mod kafka;
mod kafka_apps;
mod kubernetes;
mod maas;
mod machines;
mod preinstalled;
mod rook;
mod timeouts;

use super::*;

// ---------------------------------------------------------------------------------------------
// Semantic rules

pub(in crate::config::validate) struct Semantic<'a> {
    pub(in crate::config::validate) file: &'a ClusterFile,
    pub(in crate::config::validate) loc: &'a Located,
    pub(in crate::config::validate) catalog: &'a Catalog,
    pub(in crate::config::validate) report: &'a mut Report,
}

impl Semantic<'_> {
    pub(in crate::config::validate) fn err(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::error(display_path(ptr), self.loc.pos(ptr).value, msg).hint(hint));
    }
    pub(in crate::config::validate) fn err_key(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::error(display_path(ptr), self.loc.key_pos(ptr), msg).hint(hint));
    }
    pub(in crate::config::validate) fn warn(&mut self, ptr: &str, msg: impl Into<String>, hint: impl Into<String>) {
        self.report.push(Diagnostic::warning(display_path(ptr), self.loc.pos(ptr).value, msg).hint(hint));
    }

    /// Whether the file asks for MicroK8s: its resolved section, else its `distribution`
    /// alone when the section has errors (a typo in the channel must not make the machines
    /// look like an existing cluster's and add errors that are not there).
    pub(in crate::config::validate) fn is_microk8s(&self, k: Option<&Kubernetes>) -> bool {
        k.map_or(matches!(self.file.kubernetes.distribution, Distribution::Microk8s), Kubernetes::is_microk8s)
    }

    pub(in crate::config::validate) fn run(self) -> Option<Cluster> {
        let mut this = self;
        this.run_inner()
    }

    pub(in crate::config::validate) fn run_inner(&mut self) -> Option<Cluster> {
        let f = self.file;
        let errors_before = self.report.errors();
        let kubernetes = self.kubernetes();
        let maas = self.maas(kubernetes.as_ref());
        let ssh = self.ssh();
        let machines = self.machines(kubernetes.as_ref());
        let rook = self.rook(&machines, kubernetes.as_ref());
        let kafka = self.kafka(rook.as_ref(), kubernetes.as_ref());
        let database = self.database(rook.as_ref(), kubernetes.as_ref());
        let timeouts = self.timeouts();
        self.across(&machines, kafka.as_ref(), database.as_ref(), kubernetes.as_ref());
        if self.report.errors() > errors_before {
            return None;
        }
        let cluster = Cluster {
            name: f.metadata.name.clone(),
            source: None,
            maas,
            ssh,
            machines,
            kubernetes: kubernetes?,
            rook,
            kafka,
            database,
            timeouts,
        };
        self.capacity(&cluster);
        Some(cluster)
    }

    /// The volumes on Ceph against what the machines can give it: the explicit Ceph sizes
    /// when every machine has one, else at most one large disk per machine. A warning: thin
    /// volumes may be sized for disks still to come.
    fn capacity(&mut self, c: &Cluster) {
        use crate::config::claims::{MAX_DISK_BYTES, over_capacity};
        let claims = c.ceph_claims();
        let Some(biggest) = claims.iter().max_by_key(|c| c.raw()) else { return };
        let machines = c.ceph_machines().count() as u64;
        let (capacity, bound) = match c.declared_ceph_bytes() {
            Some(b) => (b, false),
            None if c.kubernetes.is_microk8s() && machines > 0 => (machines.saturating_mul(MAX_DISK_BYTES), true),
            None => return,
        };
        if let Some((msg, hint)) = over_capacity(&claims, capacity) {
            let msg = if bound {
                msg.replace(
                    "but Ceph has",
                    &format!(
                        "but {machines} machine{} with one Ceph disk each hold at most",
                        if machines == 1 { "" } else { "s" }
                    ),
                )
            } else {
                msg.replace("but Ceph has", "but the Ceph volumes this file sizes hold")
            };
            self.warn(&biggest.at.clone(), msg, hint);
        }
    }
}

impl Semantic<'_> {
    /// Rules across sections: one node port per service; brokers spread over the machines.
    fn across(&mut self, machines: &[Machine], kafka: Option<&Kafka>, db: Option<&Database>, k: Option<&Kubernetes>) {
        if let (Some(b), Some(d)) =
            (kafka.and_then(|k| k.bridge.as_ref()).and_then(|b| b.node_port), db.and_then(|d| d.node_port))
            && b == d
        {
            self.err(
                "/database/expose/nodePort",
                format!("node port {d} is also the bridge's (kafka.bridge.expose.nodePort): Kubernetes gives a node port to one Service only, so the second apply is refused"),
                "give each its own port in 30000–32767",
            );
        }
        // On MicroK8s the file's machines are the nodes the brokers run on.
        if let Some(kf) = kafka
            && self.is_microk8s(k)
            && !machines.is_empty()
            && kf.replicas as usize > machines.len()
        {
            let n = machines.len();
            self.warn(
                "/kafka/cluster/replicas",
                format!(
                    "{} brokers on {n} machine{}: some PC runs two, so losing it takes two brokers (and their partition copies) at once",
                    kf.replicas,
                    if n == 1 { "" } else { "s" }
                ),
                format!("use at most {n} brokers, or add machines first"),
            );
        }
    }
}

/// The StorageClasses the Rook pools provide, the one marked default, and whether the
/// cluster is MicroK8s (an existing cluster has classes of its own homelab cannot see).
pub(in crate::config::validate) struct PoolClasses {
    pub names: Vec<String>,
    pub default: Option<String>,
    pub microk8s: bool,
}

impl PoolClasses {
    pub(in crate::config::validate) fn of(rook: Option<&Rook>, k: Option<&Kubernetes>) -> PoolClasses {
        let classes = || rook.into_iter().flat_map(|r| r.pools.iter().filter_map(|p| p.storage_class.as_ref()));
        PoolClasses {
            names: classes().map(|s| s.name.clone()).collect(),
            default: classes().find(|s| s.default).map(|s| s.name.clone()),
            microk8s: k.is_some_and(Kubernetes::is_microk8s),
        }
    }
}

impl Semantic<'_> {
    /// A volume's size is a quantity and its StorageClass one a pool provides (or, with
    /// none given, a pool is marked default).
    pub(in crate::config::validate) fn volume_rules(
        &mut self,
        ptr: &str,
        size: &str,
        class: Option<&String>,
        c: &PoolClasses,
        size_hint: &str,
    ) {
        if parse_quantity(size).is_none() {
            self.err(&format!("{ptr}/size"), format!("`{size}` is not a Kubernetes quantity"), size_hint);
        }
        if let Some(class) = class
            && c.microk8s
            && !c.names.contains(class)
        {
            let hint = if c.names.is_empty() {
                "declare a Rook pool with that storageClass under `rook.pools`".to_owned()
            } else {
                format!("classes the Rook pools provide: {}", c.names.join(", "))
            };
            let hint = match did_you_mean(class, c.names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? ({hint})"),
                None => hint,
            };
            self.err(&format!("{ptr}/class"), format!("no pool provides StorageClass `{class}`"), hint);
        }
        if class.is_none() && c.microk8s && c.default.is_none() {
            self.err_key(
                &format!("{ptr}/size"),
                "no StorageClass given and no Rook pool is marked default",
                "set `class: rook-ceph-block` or mark a pool's storageClass `default: true`",
            );
        }
    }
}

pub(in crate::config::validate) fn default_listeners() -> Vec<model::Listener> {
    vec![
        model::Listener {
            name: "plain".into(),
            port: 9092,
            kind: model::ListenerType::Internal,
            tls: false,
            extra: Default::default(),
        },
        model::Listener {
            name: "tls".into(),
            port: 9093,
            kind: model::ListenerType::Internal,
            tls: true,
            extra: Default::default(),
        },
    ]
}

pub(in crate::config::validate) fn rook_hint(cat: &Catalog, minor: (u32, u32)) -> String {
    let fits: Vec<&str> =
        cat.rook.iter().filter(|r| r.kubernetes.contains(minor)).map(|r| r.version.as_str()).collect();
    if fits.is_empty() {
        "no pinned Rook release supports this Kubernetes; change the MicroK8s channel".into()
    } else {
        format!("for Kubernetes {}.{} use Rook {} or change the MicroK8s channel", minor.0, minor.1, fits.join(" or "))
    }
}

pub(in crate::config::validate) fn strimzi_hint(cat: &Catalog, minor: (u32, u32)) -> String {
    let fits: Vec<&str> =
        cat.strimzi.iter().filter(|r| r.kubernetes.contains(minor)).map(|r| r.version.as_str()).collect();
    if fits.is_empty() {
        "no pinned Strimzi release supports this Kubernetes; change the MicroK8s channel".into()
    } else {
        format!("for Kubernetes {}.{} use Strimzi {} or a newer MicroK8s channel", minor.0, minor.1, fits.join(" or "))
    }
}
