//! The pure half of `reset`: from what was observed, the steps still to do, in the order the
//! projects document (hosts-lifecycle §B9): the applications while their operators run (so
//! finalizers come off), their volumes, the pools and StorageClasses, Rook's cleanup policy
//! then the CephCluster (its cleanup Jobs sanitize the OSD volumes), the operators, MicroK8s
//! on each machine (joined ones first, the first control plane last), then — only when asked
//! — MAAS releases of the machines MAAS deployed. A step that is done is not listed, so a
//! rerun after an interruption lists only what is left. No I/O here.

/// The layers `--only` selects, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Layer {
    /// The database, Kafka with its topics, users and bridge, and their volumes.
    Apps,
    /// Ceph: pools, StorageClasses, the CephCluster (its data sanitized) and Rook.
    Storage,
    /// The Strimzi and CloudNativePG operators.
    Operators,
    /// MicroK8s on every machine.
    Kubernetes,
    /// MAAS releases (with `--release` only).
    Machines,
}

/// The operator bundles homelab installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Project {
    Rook,
    Strimzi,
    Cnpg,
}

impl Project {
    pub fn name(self) -> &'static str {
        match self {
            Project::Rook => "Rook",
            Project::Strimzi => "Strimzi",
            Project::Cnpg => "CloudNativePG",
        }
    }
}

/// What `reset` read.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The API answered (None: the cluster is gone or unreachable; its steps are skipped
    /// only when MicroK8s is gone too).
    pub api: bool,
    /// The database Cluster (namespace, name) while it exists.
    pub database: Option<(String, String)>,
    /// Kafka's applications still there: (kind, name).
    pub kafka_apps: Vec<(String, String)>,
    /// The Kafka and its node pools still there: (kind, name).
    pub kafka: Vec<(String, String)>,
    /// The namespace of Kafka and of the database.
    pub app_namespaces: Vec<String>,
    /// Volume claims left in those namespaces: (namespace, name).
    pub claims: Vec<(String, String)>,
    /// CephBlockPools and the StorageClasses homelab made for them.
    pub pools: Vec<String>,
    pub classes: Vec<String>,
    /// The CephCluster: exists, confirmed for cleanup.
    pub ceph_cluster: Option<CephClusterView>,
    /// Objects of each operator bundle still in the cluster.
    pub bundles: Vec<(Project, usize)>,
    /// Per machine, in the file's order.
    pub hosts: Vec<HostView>,
    /// The first control plane (removed last).
    pub first: Option<String>,
    /// The saved kubeconfig exists (MicroK8s clusters).
    pub kubeconfig: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CephClusterView {
    pub confirmed: bool,
    pub deleting: bool,
}

#[derive(Debug, Clone, Default)]
pub struct HostView {
    pub name: String,
    /// MicroK8s installed (None: the machine did not answer).
    pub microk8s: Option<bool>,
    /// MAAS deployed it (has a MAC) and it is not the MAAS host: it may be released.
    pub releasable: bool,
    /// MAAS's status name, for a machine MAAS deployed.
    pub maas_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    DeleteDatabase { ns: String, name: String },
    DeleteKafkaApps { items: Vec<(String, String)> },
    DeleteKafka { items: Vec<(String, String)> },
    DeleteClaims { ns: String, names: Vec<String> },
    DeletePools { pools: Vec<String>, classes: Vec<String> },
    ConfirmCleanup,
    DeleteCephCluster,
    RemoveBundle { project: Project },
    RemoveMicrok8s { host: String },
    ForgetKubeconfig,
    Release { host: String, erase: Option<String> },
}

impl Step {
    /// The target the step is reported under.
    pub fn target(&self) -> String {
        match self {
            Step::DeleteDatabase { ns, name } => format!("{ns}/{name}"),
            Step::DeleteKafkaApps { .. } | Step::DeleteKafka { .. } => "kafka".into(),
            Step::DeleteClaims { ns, .. } => ns.clone(),
            Step::DeletePools { .. } | Step::ConfirmCleanup | Step::DeleteCephCluster => "rook-ceph".into(),
            Step::RemoveBundle { project } => project.name().to_lowercase(),
            Step::RemoveMicrok8s { host } | Step::Release { host, .. } => host.clone(),
            Step::ForgetKubeconfig => "workstation".into(),
        }
    }

    pub fn words(&self) -> String {
        let list = |v: &[(String, String)]| v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ");
        match self {
            Step::DeleteDatabase { ns, name } => {
                format!("delete the PostgreSQL Cluster {ns}/{name} and wait until it and its volumes are gone")
            }
            Step::DeleteKafkaApps { items } => format!("delete {} and wait until they are gone", list(items)),
            Step::DeleteKafka { items } => format!("delete {} and wait until they and their pods are gone", list(items)),
            Step::DeleteClaims { ns, names } => {
                format!("delete the volume claims {} in {ns} and wait until they are gone", names.join(", "))
            }
            Step::DeletePools { pools, classes } => {
                let mut w = format!("delete CephBlockPool {}", pools.join(", "));
                if !classes.is_empty() {
                    w.push_str(&format!(" and StorageClass {}", classes.join(", ")));
                }
                w.push_str(", and wait until they are gone");
                w
            }
            Step::ConfirmCleanup => "set the CephCluster's cleanupPolicy (confirmation yes-really-destroy-data, sanitizeDisks quick) so Rook wipes the OSD volumes".into(),
            Step::DeleteCephCluster => "delete the CephCluster and wait for Rook's cleanup Job on every node and for the cluster to be gone".into(),
            Step::RemoveBundle { project } => format!("delete the {} operator and its CRDs (the objects of its pinned release)", project.name()),
            Step::RemoveMicrok8s { host } => format!("remove MicroK8s from {host} (snap remove microk8s --purge)"),
            Step::ForgetKubeconfig => "delete the saved kubeconfig of the cluster that is gone".into(),
            Step::Release { host, erase } => match erase {
                Some(e) => format!("release {host} in MAAS with {e} erase (MAAS erases it, then lists it Ready)"),
                None => format!("release {host} in MAAS (its disks are not erased)"),
            },
        }
    }

    /// Budget on real hardware, seconds.
    pub fn budget(&self) -> u64 {
        match self {
            Step::DeleteDatabase { .. } | Step::DeleteKafka { .. } => 300,
            Step::DeleteKafkaApps { .. } | Step::DeleteClaims { .. } | Step::DeletePools { .. } => 120,
            Step::ConfirmCleanup | Step::ForgetKubeconfig => 5,
            Step::DeleteCephCluster => 900,
            Step::RemoveBundle { .. } => 120,
            Step::RemoveMicrok8s { .. } => 180,
            Step::Release { erase: Some(e), .. } if e != "quick" => 7200,
            Step::Release { .. } => 600,
        }
    }
}

/// What `reset` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Empty: every layer (machines only with `release`).
    pub only: Vec<Layer>,
    pub release: bool,
    pub erase: Option<String>,
}

impl Ask {
    pub fn wants(&self, l: Layer) -> bool {
        if l == Layer::Machines && !self.release {
            return false;
        }
        self.only.is_empty() || self.only.contains(&l)
    }
}

/// A reset that would leave what it keeps broken: refused before anything changes.
pub fn refusal(o: &Observed, ask: &Ask) -> Option<(String, String)> {
    let later_kept = |l: Layer| !ask.wants(l);
    // Ceph goes while the applications' volumes live on it.
    if ask.wants(Layer::Storage)
        && later_kept(Layer::Apps)
        && (!o.claims.is_empty() || o.database.is_some() || !o.kafka.is_empty())
    {
        return Some((
            "the applications' volumes live on Ceph, and --only leaves them while taking Ceph down".into(),
            "add `apps` to --only (`--only apps,storage`), or reset everything".into(),
        ));
    }
    // MicroK8s goes while Ceph's OSD volumes hold data nobody will wipe.
    if ask.wants(Layer::Kubernetes) && later_kept(Layer::Storage) && o.ceph_cluster.is_some() {
        return Some((
            "MicroK8s would go while the CephCluster still runs: its OSD volumes would keep Ceph's data and the next `up` could not reuse them".into(),
            "add `storage` to --only, or reset everything".into(),
        ));
    }
    None
}

/// The steps still to do, in order.
pub fn steps(o: &Observed, ask: &Ask) -> Vec<Step> {
    let mut v = Vec::new();
    if o.api {
        if ask.wants(Layer::Apps) {
            if let Some((ns, name)) = &o.database {
                v.push(Step::DeleteDatabase { ns: ns.clone(), name: name.clone() });
            }
            if !o.kafka_apps.is_empty() {
                v.push(Step::DeleteKafkaApps { items: o.kafka_apps.clone() });
            }
            if !o.kafka.is_empty() {
                v.push(Step::DeleteKafka { items: o.kafka.clone() });
            }
            for ns in &o.app_namespaces {
                let names: Vec<String> = o.claims.iter().filter(|(n, _)| n == ns).map(|(_, c)| c.clone()).collect();
                if !names.is_empty() {
                    v.push(Step::DeleteClaims { ns: ns.clone(), names });
                }
            }
        }
        if ask.wants(Layer::Storage) {
            if !o.pools.is_empty() || !o.classes.is_empty() {
                v.push(Step::DeletePools { pools: o.pools.clone(), classes: o.classes.clone() });
            }
            if let Some(c) = &o.ceph_cluster {
                if !c.confirmed && !c.deleting {
                    v.push(Step::ConfirmCleanup);
                }
                v.push(Step::DeleteCephCluster);
            }
        }
        for (project, left) in &o.bundles {
            let layer = if *project == Project::Rook { Layer::Storage } else { Layer::Operators };
            if *left > 0 && ask.wants(layer) {
                v.push(Step::RemoveBundle { project: *project });
            }
        }
    }
    if ask.wants(Layer::Kubernetes) {
        let first = o.first.as_deref();
        // A machine that does not answer keeps its MicroK8s (said before the plan).
        let mut hosts: Vec<&HostView> = o.hosts.iter().filter(|h| h.microk8s == Some(true)).collect();
        // Joined machines first, the first control plane last.
        hosts.sort_by_key(|h| Some(h.name.as_str()) == first);
        for h in hosts {
            v.push(Step::RemoveMicrok8s { host: h.name.clone() });
        }
        if o.kubeconfig {
            v.push(Step::ForgetKubeconfig);
        }
    }
    if ask.wants(Layer::Machines) {
        for h in o.hosts.iter().filter(|h| h.releasable) {
            if matches!(h.maas_status.as_deref(), Some("Deployed" | "Deploying" | "Failed deployment" | "Allocated")) {
                v.push(Step::Release { host: h.name.clone(), erase: ask.erase.clone() });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Observed {
        Observed {
            api: true,
            database: Some(("databases".into(), "shared-pg".into())),
            kafka_apps: vec![("KafkaTopic".into(), "events".into())],
            kafka: vec![("Kafka".into(), "my-cluster".into())],
            app_namespaces: vec!["kafka".into(), "databases".into()],
            claims: vec![("kafka".into(), "data-my-cluster-kafka-0".into())],
            pools: vec!["replicapool".into()],
            classes: vec!["rook-ceph-block".into()],
            ceph_cluster: Some(CephClusterView::default()),
            bundles: vec![(Project::Rook, 40), (Project::Strimzi, 20), (Project::Cnpg, 15)],
            hosts: ["maas", "kvm4", "kvm5"]
                .iter()
                .map(|h| HostView {
                    name: (*h).into(),
                    microk8s: Some(true),
                    releasable: *h != "maas",
                    maas_status: (*h != "maas").then(|| "Deployed".into()),
                })
                .collect(),
            first: Some("maas".into()),
            kubeconfig: true,
        }
    }

    #[test]
    fn the_documented_order_and_nothing_done_twice() {
        let all = Ask::default();
        let s = steps(&seed(), &all);
        let kinds: Vec<String> =
            s.iter().map(|s| format!("{:?}", s).split([' ', '{']).next().unwrap().to_owned()).collect();
        assert_eq!(
            kinds,
            [
                "DeleteDatabase",
                "DeleteKafkaApps",
                "DeleteKafka",
                "DeleteClaims",
                "DeletePools",
                "ConfirmCleanup",
                "DeleteCephCluster",
                "RemoveBundle",
                "RemoveBundle",
                "RemoveBundle",
                "RemoveMicrok8s",
                "RemoveMicrok8s",
                "RemoveMicrok8s",
                "ForgetKubeconfig"
            ]
        );
        // The first control plane goes last; no release without --release, never the MAAS host.
        assert_eq!(s[12], Step::RemoveMicrok8s { host: "maas".into() });
        let rel = steps(&seed(), &Ask { release: true, erase: Some("quick".into()), ..Default::default() });
        let released: Vec<&Step> = rel.iter().filter(|s| matches!(s, Step::Release { .. })).collect();
        assert_eq!(released.len(), 2);
        assert!(released.iter().all(|s| !matches!(s, Step::Release { host, .. } if host == "maas")));
        // A confirmed, deleting cluster is not confirmed again.
        let mut o = seed();
        o.ceph_cluster = Some(CephClusterView { confirmed: true, deleting: true });
        assert!(!steps(&o, &all).contains(&Step::ConfirmCleanup));
        // Everything gone: nothing to do.
        let gone = Observed {
            hosts: seed().hosts.into_iter().map(|h| HostView { microk8s: Some(false), ..h }).collect(),
            ..Default::default()
        };
        assert!(steps(&gone, &all).is_empty());
    }

    #[test]
    fn taking_ceph_down_under_the_apps_volumes_is_refused() {
        let ask = Ask { only: vec![Layer::Storage], ..Default::default() };
        assert!(refusal(&seed(), &ask).is_some());
        assert!(refusal(&seed(), &Ask { only: vec![Layer::Apps, Layer::Storage], ..Default::default() }).is_none());
        assert!(refusal(&seed(), &Ask { only: vec![Layer::Kubernetes], ..Default::default() }).is_some());
        assert!(refusal(&seed(), &Ask::default()).is_none());
    }
}
