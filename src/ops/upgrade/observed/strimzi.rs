//! What runs on the Strimzi side, as `upgrade` observed it: the operator's release, the
//! Kafka (its version, protocol and metadata settings, the migration state), its node pools,
//! the broker pods' images, and which version the Strimzi CRDs store; with the pure readings
//! the ladder, the gates and the hops take from it. No I/O.

use crate::catalog::Catalog;
use crate::ops::upgrade::ladder::{KafkaAt, Metadata};
use serde_json::Value;

pub const OPERATOR: &str = "strimzi-cluster-operator";
pub const GROUP: &str = "kafka.strimzi.io";
pub const KRAFT: &str = "strimzi.io/kraft";
pub const NODE_POOLS: &str = "strimzi.io/node-pools";
/// The Strimzi kinds homelab writes (and converts to `v1`).
pub const MANAGED_KINDS: &[&str] = &["Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"];

/// One broker pod: its image (`quay.io/strimzi/kafka:0.33.1-kafka-3.3.2`) and readiness.
#[derive(Debug, Clone, Default)]
pub struct BrokerPod {
    pub name: String,
    pub image: String,
    pub ready: bool,
}

/// What runs on the Strimzi side.
#[derive(Debug, Clone, Default)]
pub struct StrimziView {
    /// The operator's release (the tag of its image), none when it is not installed.
    pub operator: Option<String>,
    pub operator_rolled: bool,
    /// The API version the Kafka was read with.
    pub api: String,
    pub kafka: Option<Value>,
    pub pools: Vec<Value>,
    pub brokers: Vec<BrokerPod>,
    /// Every Strimzi CRD stores `v1`.
    pub crds_v1: bool,
}

/// The string at JSON pointer `p`.
pub fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The JSON pointer of a Kafka broker setting.
pub fn cfg_key(k: &str) -> String {
    format!("/spec/kafka/config/{}", k.replace('~', "~0").replace('/', "~1"))
}

pub const IBP: &str = "inter.broker.protocol.version";
pub const LMF: &str = "log.message.format.version";

impl StrimziView {
    pub fn kafka(&self) -> Option<&Value> {
        self.kafka.as_ref()
    }
    /// `status.kafkaMetadataState` (0.40 to 1.0).
    pub fn state(&self) -> Option<&str> {
        self.kafka().and_then(|k| s(k, "/status/kafkaMetadataState"))
    }
    /// The `strimzi.io/kraft` annotation.
    pub fn kraft_annotation(&self) -> Option<&str> {
        self.kafka().and_then(|k| s(k, "/metadata/annotations/strimzi.io~1kraft"))
    }
    pub fn version(&self) -> Option<&str> {
        self.kafka().and_then(|k| s(k, "/spec/kafka/version"))
    }
    pub fn config(&self, key: &str) -> Option<String> {
        let v = self.kafka()?.pointer(&cfg_key(key))?;
        Some(v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
    }
    pub fn has_zookeeper(&self) -> bool {
        self.kafka().is_some_and(|k| k.pointer("/spec/zookeeper").is_some())
    }
    pub fn pool(&self, name: &str) -> Option<&Value> {
        self.pools.iter().find(|p| p["metadata"]["name"] == name)
    }
    pub fn ready_condition(&self) -> Option<(bool, String)> {
        let k = self.kafka()?;
        let conds = k.pointer("/status/conditions").and_then(Value::as_array)?;
        let ready = conds.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        let msg = conds
            .iter()
            .find(|c| c["type"] == "NotReady")
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Some((ready, msg))
    }

    /// The Strimzi point of the ladder.
    pub fn at(&self, cat: &Catalog) -> Result<KafkaAt, String> {
        let op = self.operator.clone().ok_or("the Strimzi operator is not installed")?;
        let rel = cat
            .strimzi(&op)
            .ok_or_else(|| format!("the Strimzi operator runs {op}, a release the catalog does not pin"))?;
        let version = self.version().ok_or("the Kafka has no spec.kafka.version")?.to_owned();
        // From 1.1 the status has no metadata state: without ZooKeeper in the spec it is KRaft.
        let state = self.state().or((!self.has_zookeeper()).then_some("KRaft"));
        let ann = self.kraft_annotation();
        let migrating = matches!(ann, Some("migration" | "enabled" | "rollback"))
            && !(ann == Some("enabled") && state == Some("KRaft") && !self.has_zookeeper())
            || matches!(state, Some("KRaftMigration" | "KRaftDualWriting" | "KRaftPostMigration" | "PreKRaft"))
            || (state == Some("KRaft") && self.has_zookeeper());
        let metadata = if migrating {
            Metadata::Migrating
        } else if !self.has_zookeeper() {
            Metadata::KRaft
        } else if self.kafka().and_then(|k| s(k, "/metadata/annotations/strimzi.io~1node-pools")) == Some("enabled")
            && self.pool(crate::render::strimzi::MIGRATED_POOL).is_some()
        {
            Metadata::NodePools
        } else {
            Metadata::ZooKeeper
        };
        Ok(KafkaAt { strimzi: rel.version.clone(), version, metadata, v1: self.crds_v1 })
    }

    /// What is still rolling on the Strimzi side from a hop already made (`None`: the
    /// operator rolled out, the Kafka reconciled at its generation by it, every broker on
    /// its image). Readiness is a gate's business, not this.
    pub fn rolling(&self, cat: &Catalog) -> Option<String> {
        let op = self.operator.as_deref()?;
        if !self.operator_rolled {
            return Some("the Strimzi operator Deployment is rolling out".into());
        }
        let k = self.kafka()?;
        let generation = k.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        let observed = k.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
        if observed < generation {
            let (_, msg) = self.ready_condition().unwrap_or((false, String::new()));
            return Some(if msg.is_empty() {
                format!("the Kafka is reconciling (generation {generation}, observed {observed})")
            } else {
                format!("the Kafka is reconciling generation {generation}: {msg}")
            });
        }
        let v = self.version().unwrap_or_default();
        let since_037 = cat.strimzi(op).is_some_and(|r| r.semver() >= (0, 37, 0));
        if since_037 && s(k, "/status/operatorLastSuccessfulVersion") != Some(op) {
            return Some(format!("the Kafka is not reconciled by Strimzi {op} yet"));
        }
        if since_037 && s(k, "/status/kafkaVersion") != Some(v) {
            return Some(format!("status.kafkaVersion is not {v} yet"));
        }
        let behind: Vec<&str> = self
            .brokers
            .iter()
            .filter(|b| !b.image.ends_with(&format!(":{op}-kafka-{v}")))
            .map(|b| b.name.as_str())
            .collect();
        if !behind.is_empty() {
            return Some(format!("brokers not yet on Strimzi {op} with Kafka {v}: {}", behind.join(", ")));
        }
        None
    }

    /// The brokers the Kafka should have: its broker pools' replicas with node pools, else
    /// `spec.kafka.replicas`.
    pub fn brokers_wanted(&self) -> usize {
        let k = self.kafka();
        let pools_on = k.and_then(|k| s(k, "/metadata/annotations/strimzi.io~1node-pools")) == Some("enabled")
            || self.api.ends_with("/v1");
        let from_pools: u64 = self
            .pools
            .iter()
            .filter(|p| {
                p.pointer("/spec/roles").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x == "broker"))
            })
            .filter_map(|p| p.pointer("/spec/replicas").and_then(Value::as_u64))
            .sum();
        if pools_on && from_pools > 0 {
            from_pools as usize
        } else {
            k.and_then(|k| k.pointer("/spec/kafka/replicas")).and_then(Value::as_u64).unwrap_or(0) as usize
        }
    }

    /// A hop's wait: nothing rolling, the Kafka Ready, every broker there and Ready.
    pub fn unsettled(&self, cat: &Catalog) -> Option<String> {
        if let Some(r) = self.rolling(cat) {
            return Some(r);
        }
        let (ready, msg) = self.ready_condition().unwrap_or((false, String::new()));
        if !ready {
            return Some(format!("the Kafka is NotReady: {msg}"));
        }
        let want = self.brokers_wanted();
        if self.brokers.len() < want {
            return Some(format!("{} of {want} broker pods exist", self.brokers.len()));
        }
        self.brokers_not_ready()
    }

    pub fn brokers_not_ready(&self) -> Option<String> {
        let nr: Vec<&str> = self.brokers.iter().filter(|b| !b.ready).map(|b| b.name.as_str()).collect();
        (!nr.is_empty()).then(|| format!("broker pods not Ready: {}", nr.join(", ")))
    }

    /// The operator's refusal that no wait lifts (an unsupported version, the migration's
    /// prerequisites), from the Kafka's NotReady condition.
    pub fn refusal(&self) -> Option<String> {
        let (_, msg) = self.ready_condition()?;
        (msg.starts_with("Unsupported Kafka.spec.kafka.version") || msg.starts_with("Migration cannot be performed"))
            .then_some(msg)
    }
}
