//! The `kafka` section of cluster.yaml: its semantic rules and its resolved form.

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn kafka(&mut self, rook: Option<&Rook>, k: Option<&Kubernetes>) -> Option<Kafka> {
        let kf = self.file.kafka.as_ref()?;
        let c = &kf.cluster;
        let Some(release) = self.catalog.strimzi(&kf.strimzi_version).cloned() else {
            let versions = self.catalog.strimzi_versions().join(", ");
            self.err(
                "/kafka/strimziVersion",
                format!("Strimzi {} is not in the release catalog", kf.strimzi_version),
                format!("pinned releases: {versions} (add others with --catalog FILE)"),
            );
            return None;
        };
        if let Some(minor) = k.and_then(Kubernetes::minor)
            && !release.kubernetes.contains(minor)
        {
            self.err(
                "/kafka/strimziVersion",
                format!(
                    "Strimzi {} needs Kubernetes {}, but the channel gives {}.{}",
                    release.version,
                    release.kubernetes.describe(),
                    minor.0,
                    minor.1
                ),
                strimzi_hint(self.catalog, minor),
            );
        }
        let version = c.version.clone().unwrap_or_else(|| release.default_kafka.clone());
        let kv = release.kafka_version(&version).cloned();
        if kv.is_none() {
            let p = if c.version.is_some() { "/kafka/cluster/version" } else { "/kafka/strimziVersion" };
            self.err(
                p,
                format!("Strimzi {} does not support Kafka {version}", release.version),
                format!("Strimzi {} runs Kafka {}", release.version, release.kafka_versions().join(", ")),
            );
        }
        let mode = c.metadata.unwrap_or(if release.kraft { MetadataMode::Kraft } else { MetadataMode::Zookeeper });
        match mode {
            MetadataMode::Zookeeper if !release.zookeeper => {
                self.err(
                    if c.metadata.is_some() { "/kafka/cluster/metadata" } else { "/kafka/strimziVersion" },
                    format!("Strimzi {} has no ZooKeeper support (removed in 0.46)", release.version),
                    "use `metadata: kraft` with KafkaNodePools; an existing ZooKeeper cluster must first be migrated to KRaft on Strimzi 0.45 (see docs: ZooKeeper→KRaft migration)",
                );
            }
            MetadataMode::Kraft if !release.kraft => {
                self.err(
                    "/kafka/cluster/metadata",
                    format!("Strimzi {} cannot run KRaft clusters with node pools (KafkaNodePools arrived in 0.36, KRaft GA in 0.42)", release.version),
                    "use `metadata: zookeeper` with this release, or a newer Strimzi (0.45.2, 1.2.0)",
                );
            }
            _ => {}
        }
        if mode == MetadataMode::Zookeeper {
            if c.zookeeper.is_none() {
                self.err_key(
                    "/kafka/cluster",
                    "`metadata: zookeeper` needs a `zookeeper:` ensemble",
                    "add `zookeeper: {replicas: 3, storage: {size: 100Gi, class: rook-ceph-block}}`",
                );
            }
            if c.controllers.is_some() {
                self.err_key(
                    "/kafka/cluster/controllers",
                    "`controllers` are KRaft controllers; this cluster uses ZooKeeper",
                    "remove it, or switch to `metadata: kraft`",
                );
            }
        } else {
            if c.zookeeper.is_some() {
                let hint = if release.v1_api() {
                    format!(
                        "the Strimzi {} `v1` API has no spec.zookeeper; remove it (KRaft controllers go in `controllers:`)",
                        release.version
                    )
                } else {
                    "remove it, or set `metadata: zookeeper`".to_owned()
                };
                self.err_key("/kafka/cluster/zookeeper", "a `zookeeper:` ensemble with KRaft metadata", hint);
            }
            if let Some(cfg) = &c.config {
                for key in ["inter.broker.protocol.version", "log.message.format.version"] {
                    if cfg.contains_key(key) {
                        self.err_key(
                            &format!("/kafka/cluster/config/{key}"),
                            format!("`{key}` is a ZooKeeper-mode setting"),
                            "KRaft clusters use `metadataVersion` (homelab sets it from the catalog); remove it",
                        );
                    }
                }
            }
        }
        if let Some(z) = &c.zookeeper
            && z.replicas % 2 == 0
        {
            self.warn(
                "/kafka/cluster/zookeeper/replicas",
                format!("{} ZooKeeper nodes: an even ensemble tolerates no more failures than one fewer", z.replicas),
                "use 3 or 5",
            );
        }
        if let Some(p) = &c.broker_pool {
            if mode != MetadataMode::Kraft || c.controllers.is_none() {
                self.err_key(
                    "/kafka/cluster/brokerPool",
                    "`brokerPool` names the brokers' node pool beside dedicated `controllers`",
                    "remove it, or declare `metadata: kraft` with `controllers:`",
                );
            } else if p == "controller" {
                self.err(
                    "/kafka/cluster/brokerPool",
                    "the brokers' pool cannot be named `controller`: that is the controllers' pool",
                    "use `broker`, or `kafka` for a cluster migrated from ZooKeeper",
                );
            }
        }
        if let Some(ctl) = &c.controllers
            && ctl.replicas % 2 == 0
        {
            self.err(
                "/kafka/cluster/controllers/replicas",
                format!("{} KRaft controllers: the quorum needs an odd number", ctl.replicas),
                "use 1, 3 or 5",
            );
        }
        // Replication settings must fit the number of brokers.
        let cfg = c.config.clone().unwrap_or_default();
        let num = |key: &str| cfg.get(key).and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
        for key in [
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
        ] {
            if let Some(n) = num(key)
                && n > u64::from(c.replicas)
            {
                self.err(
                    &format!("/kafka/cluster/config/{}", escape(key)),
                    format!(
                        "{key} is {n} but there are only {} broker{}",
                        c.replicas,
                        if c.replicas == 1 { "" } else { "s" }
                    ),
                    format!("use at most {} (the number of brokers), or add brokers", c.replicas),
                );
            }
        }
        if let (Some(isr), Some(rf)) = (num("min.insync.replicas"), num("default.replication.factor"))
            && isr > rf
        {
            self.err(
                "/kafka/cluster/config/min.insync.replicas",
                format!("min.insync.replicas {isr} is above default.replication.factor {rf}"),
                "producers with acks=all could never write; use a value ≤ the replication factor",
            );
        }
        // Storage classes must be provided by a pool (or, on an existing cluster, by the cluster).
        let classes = PoolClasses::of(rook, k);
        let claim = |this: &mut Self, ptr: &str, s: &model::KafkaStorage| -> VolumeClaim {
            this.volume_rules(ptr, &s.size, s.class.as_ref(), &classes, "use e.g. 100Gi");
            VolumeClaim {
                size: s.size.clone(),
                class: s.class.clone().or(classes.default.clone()),
                delete_claim: s.delete_claim,
            }
        };
        let storage = claim(self, "/kafka/cluster/storage", &c.storage);
        let zookeeper = c.zookeeper.as_ref().map(|z| Ensemble {
            replicas: z.replicas,
            storage: claim(self, "/kafka/cluster/zookeeper/storage", &z.storage),
        });
        let controllers = c.controllers.as_ref().map(|z| Ensemble {
            replicas: z.replicas,
            storage: claim(self, "/kafka/cluster/controllers/storage", &z.storage),
        });
        let listeners = c.listeners.clone().unwrap_or_else(default_listeners);
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut ports: HashMap<u32, usize> = HashMap::new();
        for (i, l) in listeners.iter().enumerate() {
            if names.insert(&l.name, i).is_some() {
                self.err(
                    &format!("/kafka/cluster/listeners/{i}/name"),
                    format!("listener name `{}` is used twice", l.name),
                    "listener names must be unique",
                );
            }
            if ports.insert(l.port, i).is_some() {
                self.err(
                    &format!("/kafka/cluster/listeners/{i}/port"),
                    format!("port {} is used by two listeners", l.port),
                    "each listener needs its own port",
                );
            }
        }
        let entity_operator = c.entity_operator.clone().unwrap_or_else(|| {
            let mut m = serde_json::Map::new();
            m.insert("topicOperator".into(), Value::Object(Default::default()));
            m.insert("userOperator".into(), Value::Object(Default::default()));
            m
        });
        let mut listeners = listeners;
        let mut entity_operator = entity_operator;
        let apps = self.kafka_apps(kf, c.replicas, &mut listeners, &mut entity_operator, &cfg);
        Some(Kafka {
            topics: kf.topics.clone(),
            users: apps.users,
            bridge: apps.bridge,
            authorization: apps.authorization,
            namespace: kf.namespace.clone().unwrap_or_else(|| "kafka".into()),
            name: c.name.clone(),
            metadata_version: kv.and_then(|k| k.metadata_version),
            version,
            replicas: c.replicas,
            mode,
            storage,
            listeners,
            config: cfg,
            zookeeper,
            broker_pool: c.broker_pool.clone().unwrap_or_else(|| "broker".into()),
            controllers,
            entity_operator,
            release,
        })
    }
}
