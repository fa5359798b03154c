//! What applications use on the Kafka — `kafka.topics`, `kafka.users`, `kafka.bridge`: the
//! rules the file alone can decide (names unique, replicas within the brokers, TLS names at
//! most 64 characters, each user on a listener that can authenticate it, the bridge's user
//! declared), and what they turn on in the Kafka CR (listener authentication, simple
//! authorization, the topic and user operators). The rules that need the running cluster
//! (fewer partitions, changed replicas, a renamed topic) are the kafka phase's.

use super::*;
use crate::config::model::{KafkaSpec, Listener, UserAuthentication};
use serde_json::{Map, json};

pub(in crate::config::validate) struct Apps {
    pub users: Vec<KafkaUser>,
    pub bridge: Option<Bridge>,
    pub authorization: bool,
}

/// Strimzi's limit on the name of a user with TLS client authentication (`KafkaUserModel`).
pub const TLS_USER_MAX: usize = 64;

/// Kafka's topic-level configs (Kafka 3.x documentation, "Topic-Level Configs").
const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

fn auth_type(l: &Listener) -> Option<String> {
    l.extra.get("authentication").and_then(|a| a.get("type")).and_then(Value::as_str).map(str::to_owned)
}

impl Semantic<'_> {
    pub(in crate::config::validate) fn kafka_apps(
        &mut self,
        kf: &KafkaSpec,
        brokers: u32,
        listeners: &mut [Listener],
        entity_operator: &mut Map<String, Value>,
        cfg: &Map<String, Value>,
    ) -> Apps {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let default_rf =
            cfg.get("default.replication.factor").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        for (i, t) in kf.topics.iter().enumerate() {
            let kname = t.topic_name.clone().unwrap_or_else(|| t.name.clone());
            if let Some(j) = seen.insert(kname.clone(), i) {
                self.err(
                    &format!("/kafka/topics/{i}/name"),
                    format!("topic `{kname}` is declared twice (also kafka.topics[{j}])"),
                    "each topic once",
                );
            }
            let rf = t.replicas.map(u64::from).or(default_rf);
            if let Some(r) = rf
                && r > u64::from(brokers)
            {
                self.err(
                    &format!("/kafka/topics/{i}/replicas"),
                    format!(
                        "topic `{kname}` asks for {r} replicas but there are only {brokers} broker{} (Kafka refuses: replication factor larger than available brokers)",
                        if brokers == 1 { "" } else { "s" }
                    ),
                    format!("use at most {brokers}, or add brokers first"),
                );
            }
        }
        // A misspelt topic config is set as written and Kafka refuses the KafkaTopic later.
        for (i, t) in kf.topics.iter().enumerate() {
            for key in t.config.iter().flat_map(|c| c.keys()) {
                if !TOPIC_CONFIGS.contains(&key.as_str()) {
                    let hint = match did_you_mean(key, TOPIC_CONFIGS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? (Kafka's topic-level configs)"),
                        None => "see Kafka's topic-level configs (kafka.apache.org/documentation/#topicconfigs)".into(),
                    };
                    self.warn(
                        &format!("/kafka/topics/{i}/config/{}", escape(key)),
                        format!("`{key}` is not a Kafka topic config: the topic operator would pass it on and Kafka refuse the topic"),
                        hint,
                    );
                }
            }
        }
        if !kf.topics.is_empty() && !entity_operator.contains_key("topicOperator") {
            entity_operator.insert("topicOperator".into(), json!({}));
        }
        // Users: one listener each, whose authentication fits.
        let mut users = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut wanted: HashMap<String, (UserAuthentication, usize)> = HashMap::new();
        for (i, u) in kf.users.iter().enumerate() {
            if let Some(j) = names.insert(&u.name, i) {
                self.err(
                    &format!("/kafka/users/{i}/name"),
                    format!("user `{}` is declared twice (also kafka.users[{j}])", u.name),
                    "each user once",
                );
            }
            if u.authentication == UserAuthentication::Tls && u.name.len() > TLS_USER_MAX {
                self.err(
                    &format!("/kafka/users/{i}/name"),
                    format!(
                        "user `{}` has {} characters; a user with TLS client authentication may have at most {TLS_USER_MAX} (its certificate's CN)",
                        u.name,
                        u.name.len()
                    ),
                    "use a shorter name, or `authentication: scram-sha-512`",
                );
            }
            let fits = |l: &Listener| u.authentication != UserAuthentication::Tls || l.tls;
            let listener = match &u.listener {
                Some(n) => match listeners.iter().find(|l| &l.name == n) {
                    Some(l) if !fits(l) => {
                        self.err(
                            &format!("/kafka/users/{i}/listener"),
                            format!(
                                "listener `{n}` has no TLS; TLS client authentication needs a `tls: true` listener"
                            ),
                            "name a TLS listener, or use `authentication: scram-sha-512`",
                        );
                        None
                    }
                    Some(l) => Some(l.name.clone()),
                    None => {
                        let all: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
                        self.err(
                            &format!("/kafka/users/{i}/listener"),
                            format!("the Kafka has no listener `{n}`"),
                            format!("listeners: {}", all.join(", ")),
                        );
                        None
                    }
                },
                None => {
                    // The first listener that fits and does not authenticate otherwise.
                    let pick = listeners.iter().find(|l| {
                        fits(l)
                            && auth_type(l).is_none_or(|t| t == u.authentication.as_str())
                            && wanted.get(&l.name).is_none_or(|w| w.0 == u.authentication)
                    });
                    match pick {
                        Some(l) => Some(l.name.clone()),
                        None => {
                            self.err_key(
                                &format!("/kafka/users/{i}"),
                                format!(
                                    "no listener can authenticate user `{}` with {}",
                                    u.name,
                                    u.authentication.as_str()
                                ),
                                "add a listener (a `tls: true` one for TLS users) and name it with `listener:`",
                            );
                            None
                        }
                    }
                }
            };
            let Some(listener) = listener else { continue };
            let lst = listeners.iter().find(|l| l.name == listener);
            let other = lst.and_then(auth_type).filter(|t| t != u.authentication.as_str());
            let clash = wanted.get(&listener).filter(|w| w.0 != u.authentication).map(|w| w.1);
            if let Some(t) = other {
                self.err(
                    &format!("/kafka/users/{i}/listener"),
                    format!(
                        "listener `{listener}` authenticates with `{t}`, user `{}` with {}",
                        u.name,
                        u.authentication.as_str()
                    ),
                    "one authentication per listener: put this user on another listener",
                );
            } else if let Some(j) = clash {
                self.err(
                    &format!("/kafka/users/{i}/listener"),
                    format!(
                        "listener `{listener}` would authenticate kafka.users[{j}] and user `{}` differently",
                        u.name
                    ),
                    "one authentication per listener: put one of them on another listener",
                );
            }
            wanted.entry(listener.clone()).or_insert((u.authentication, i));
            users.push(KafkaUser { spec: u.clone(), listener });
        }
        for l in listeners.iter_mut() {
            if let Some((a, _)) = wanted.get(&l.name)
                && auth_type(l).is_none()
            {
                l.extra.insert("authentication".into(), json!({"type": a.as_str()}));
            }
        }
        if !kf.users.is_empty() && !entity_operator.contains_key("userOperator") {
            entity_operator.insert("userOperator".into(), json!({}));
        }
        let authorization = kf.users.iter().any(|u| !u.acls.is_empty());
        for (i, u) in kf.users.iter().enumerate() {
            for (j, a) in u.acls.iter().enumerate() {
                if a.resource.kind != model::AclResourceType::Cluster && a.resource.name.is_none() {
                    self.err_key(
                        &format!("/kafka/users/{i}/acls/{j}/resource"),
                        "an ACL on a topic, group or transactional id needs its `name`",
                        "add `name: <topic>` (with `patternType: prefix` for every name starting with it, or `*` for all)",
                    );
                }
                // A literal topic the file does not declare: a typo, or a topic made elsewhere.
                let topics: Vec<String> =
                    kf.topics.iter().map(|t| t.topic_name.clone().unwrap_or_else(|| t.name.clone())).collect();
                if a.resource.kind == model::AclResourceType::Topic
                    && a.resource.pattern_type.is_none_or(|p| p == model::PatternType::Literal)
                    && let Some(n) = &a.resource.name
                    && n != "*"
                    && !topics.contains(n)
                    && !kf.topics.is_empty()
                {
                    let hint = match did_you_mean(n, topics.iter().map(String::as_str)) {
                        Some(t) => format!("did you mean `{t}`? Or declare `{n}` under kafka.topics"),
                        None => format!(
                            "declare `{n}` under kafka.topics, or keep this if another tool makes it (the file's topics: {})",
                            topics.join(", ")
                        ),
                    };
                    self.warn(
                        &format!("/kafka/users/{i}/acls/{j}/resource/name"),
                        format!("user `{}` is granted topic `{n}`, which kafka.topics does not declare", u.name),
                        hint,
                    );
                }
            }
        }
        // The bridge: connects where its user authenticates, or to a listener without authentication.
        let bridge = kf.bridge.as_ref().and_then(|b| {
            let user = match &b.user {
                Some(n) => match users.iter().find(|u| &u.spec.name == n) {
                    Some(u) => Some(u.clone()),
                    None => {
                        self.err(
                            "/kafka/bridge/user",
                            format!("the bridge's user `{n}` is not in kafka.users"),
                            "declare it under kafka.users (with the ACLs the bridge's clients need)",
                        );
                        return None;
                    }
                },
                None => None,
            };
            let l = match &user {
                Some(u) => listeners.iter().find(|l| l.name == u.listener),
                None => listeners.iter().find(|l| auth_type(l).is_none() && l.kind != model::ListenerType::Nodeport),
            };
            let Some(l) = l else {
                self.err_key(
                    "/kafka/bridge",
                    "the bridge has no user and every internal listener authenticates",
                    "give the bridge a `user:` from kafka.users",
                );
                return None;
            };
            Some(Bridge {
                name: b.name.clone().unwrap_or_else(|| "bridge".into()),
                replicas: b.replicas.unwrap_or(1),
                port: b.port.unwrap_or(8080),
                user: user.map(|u| (u.spec.name.clone(), u.spec.authentication)),
                listener: (l.name.clone(), l.port, l.tls),
                node_port: b.expose.as_ref().map(|e| e.node_port),
            })
        });
        Apps { users, bridge, authorization }
    }
}
