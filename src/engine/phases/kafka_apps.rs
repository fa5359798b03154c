//! The applications' part of the kafka phase: KafkaTopics, KafkaUsers, the KafkaBridge and
//! its NodePort, after the Kafka is Ready.
//!
//! Before anything is applied, what the file asks is compared with the topics that run:
//! fewer partitions, a changed replica count and a renamed topic are refused (Kafka cannot
//! do them; the Topic Operator would only report NotSupported). Each object is then applied
//! and waited for (`Ready=True` at its generation; a user's Secret; the bridge's URL).
//! What homelab created and the file no longer declares is reported and kept; only
//! `up --prune` deletes it, and only objects carrying homelab's label — deleting a KafkaTopic
//! deletes the topic's data in Kafka, which is why the plan names each one.

use super::manifests as addons;
use crate::config::Kafka;
use crate::engine::context::Ctx;
use crate::foundation::error::Failure;
use crate::foundation::phase_id::PhaseId;
use crate::kube::apply::Applier;
use crate::kube::wait::{Check, Expect, ObjectRef, wait_object};
use crate::render::kafka_apps as render;
use anyhow::{Result, bail};
use serde_json::Value;
use std::collections::HashSet;

const PHASE: PhaseId = PhaseId::Kafka;

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The refusals that need the running topics; `Ok` when the file's topics can be applied.
pub async fn check_live(a: &Applier, k: &Kafka) -> Result<()> {
    if k.topics.is_empty() {
        return Ok(());
    }
    let live = a.list(&k.release.api_version, "KafkaTopic", Some(&k.namespace), None).await?;
    let mut refusals = Vec::new();
    for t in &k.topics {
        let Some(o) = live.iter().find(|o| o.metadata.name.as_deref() == Some(t.name.as_str())) else { continue };
        let o = serde_json::to_value(o)?;
        let want_name = t.topic_name.clone().unwrap_or_else(|| t.name.clone());
        let has_name = s(&o, "/status/topicName").or(s(&o, "/spec/topicName")).unwrap_or(&t.name).to_owned();
        if has_name != want_name {
            refusals.push(format!(
                "topic {}: Kafka calls it `{has_name}`, the file says `{want_name}`; a topic cannot be renamed (make a new topic and move the data)",
                t.name
            ));
        }
        let partitions = o.pointer("/spec/partitions").and_then(Value::as_u64);
        if let (Some(has), Some(want)) = (partitions, t.partitions)
            && u64::from(want) < has
        {
            refusals.push(format!(
                "topic {}: it has {has} partitions, the file says {want}; Kafka cannot take partitions away (keep {has} or more)",
                t.name
            ));
        }
        let replicas = o.pointer("/spec/replicas").and_then(Value::as_u64);
        if let (Some(has), Some(want)) = (replicas, t.replicas)
            && u64::from(want) != has
        {
            refusals.push(format!(
                "topic {}: it has {has} replicas, the file says {want}; Strimzi changes a topic's replicas only with Cruise Control (keep {has})",
                t.name
            ));
        }
    }
    if !refusals.is_empty() {
        bail!(Failure::Usage(format!(
            "refusing to apply the Kafka topics:\n  {}\n  (nothing was applied)",
            refusals.join("\n  ")
        )));
    }
    Ok(())
}

/// What of the rendered Kafka `want` changes the brokers' configuration of the running
/// `live` one for the applications (listener authentication, authorization): Strimzi rolls
/// the brokers to apply it, so the plan says so. Pure.
pub fn broker_roll_reasons(live: &Value, want: &Value) -> Vec<String> {
    let auth = |v: &Value| v.pointer("/authentication/type").and_then(Value::as_str).unwrap_or("none").to_owned();
    let listeners =
        |v: &Value| v.pointer("/spec/kafka/listeners").and_then(Value::as_array).cloned().unwrap_or_default();
    let have = listeners(live);
    let mut out = Vec::new();
    for l in listeners(want) {
        let name = l["name"].as_str().unwrap_or_default();
        let Some(old) = have.iter().find(|h| h["name"] == name) else { continue };
        let (from, to) = (auth(old), auth(&l));
        if from != to {
            out.push(format!("authentication on listener {name} {from} → {to}"));
        }
    }
    let authz =
        |v: &Value| v.pointer("/spec/kafka/authorization/type").and_then(Value::as_str).unwrap_or("none").to_owned();
    let (from, to) = (authz(live), authz(want));
    if from != to {
        out.push(format!("authorization {from} → {to}"));
    }
    out
}

/// One object of a kind homelab made for applications, found in the cluster.
struct Found {
    kind: &'static str,
    api: String,
    name: String,
    words: String,
}

/// What homelab created (its label) in the Kafka's namespace that the file no longer has.
async fn leftovers(a: &Applier, k: &Kafka, wanted: &HashSet<(String, String)>) -> Result<Vec<Found>> {
    let sel = crate::render::managed_selector();
    let mut out = Vec::new();
    for (kind, api) in [
        ("KafkaTopic", k.release.api_version.as_str()),
        ("KafkaUser", k.release.api_version.as_str()),
        ("KafkaBridge", k.release.api_version.as_str()),
        ("Service", "v1"),
    ] {
        for o in a.list(api, kind, Some(&k.namespace), Some(&sel)).await? {
            let name = o.metadata.name.clone().unwrap_or_default();
            if wanted.contains(&(kind.to_owned(), name.clone())) {
                continue;
            }
            let v = serde_json::to_value(&o)?;
            if !crate::render::made_by_homelab(&v) {
                continue;
            }
            let words = match kind {
                "KafkaTopic" => format!(
                    "KafkaTopic {name}: deleting it deletes topic `{}` and all its messages ({} partitions × {} replicas; its size on disk is not known to homelab)",
                    s(&v, "/status/topicName").unwrap_or(&name),
                    v.pointer("/spec/partitions").map(Value::to_string).unwrap_or_else(|| "?".into()),
                    v.pointer("/spec/replicas").map(Value::to_string).unwrap_or_else(|| "?".into()),
                ),
                "KafkaUser" => format!("KafkaUser {name}: deleting it deletes its credentials (Secret {name})"),
                _ => format!("{kind} {name}"),
            };
            out.push(Found { kind, api: api.to_owned(), name, words });
        }
    }
    Ok(out)
}

fn ready() -> Expect {
    Expect::condition("Ready", "True").with_generation()
}

/// Applies the topics, users and bridge, waits for them, and reports (or with `--prune`
/// deletes) what homelab created that the file no longer declares.
/// (What Kafka cannot do to a running topic was refused in the phase's `prepare`, before
/// anything of the run was applied.)
pub async fn converge(cx: &Ctx, a: &Applier, k: &Kafka) -> Result<()> {
    let t = cx.opts.timings;
    let target = format!("{}/{}", k.namespace, k.name);
    let objs = render::render(k);
    let wanted: HashSet<(String, String)> = objs
        .iter()
        .map(|o| (o["kind"].as_str().unwrap_or("").to_owned(), o["metadata"]["name"].as_str().unwrap_or("").to_owned()))
        .collect();
    let (first, bridge): (Vec<Value>, Vec<Value>) =
        objs.into_iter().partition(|o| o["kind"] == "KafkaTopic" || o["kind"] == "KafkaUser");
    if !first.is_empty() {
        let what = format!(
            "{} topic{} and {} user{}",
            k.topics.len(),
            if k.topics.len() == 1 { "" } else { "s" },
            k.users.len(),
            if k.users.len() == 1 { "" } else { "s" }
        );
        addons::apply(cx, PHASE, a, &target, &what, &first).await?;
    }
    let deadline = t.deadline(cx.cluster.timeouts.kafka);
    if !cx.dry_run() {
        let ns = Some(k.namespace.as_str());
        let api = k.release.api_version.as_str();
        let hint = format!(
            "`kubectl -n {} get kafkatopics,kafkausers` and the entity operator's log (`kubectl -n {} logs deployment/{}-entity-operator`)",
            k.namespace, k.namespace, k.name
        );
        let topics = k.topics.iter().map(|tp| {
            let r = ObjectRef::new(api, "KafkaTopic", ns, &tp.name);
            let hint = hint.clone();
            async move { wait_object(a, &cx.ui, PHASE, &r, "Ready", &ready(), deadline, t.kube_poll, &hint).await }
        });
        let users =
            k.users.iter().map(|u| {
                let r = ObjectRef::new(api, "KafkaUser", ns, &u.spec.name);
                let hint = hint.clone();
                let e = ready().field("/status/secret", Check::Exists);
                async move {
                    wait_object(a, &cx.ui, PHASE, &r, "Ready with its Secret", &e, deadline, t.kube_poll, &hint).await
                }
            });
        // Topics and users are reconciled independently: wait for all of them at once.
        let (_, users) =
            futures::future::try_join(futures::future::try_join_all(topics), futures::future::try_join_all(users))
                .await?;
        for u in users {
            let name = s(&u, "/metadata/name").unwrap_or_default().to_owned();
            let secret = s(&u, "/status/secret").unwrap_or_default();
            cx.info(
                PHASE,
                &format!("{}/{name}", k.namespace),
                format!("credentials in Secret {}/{secret}", k.namespace),
            );
        }
    }
    if let Some(b) = &k.bridge {
        addons::apply(cx, PHASE, a, &target, &format!("KafkaBridge {}", b.name), &bridge).await?;
        if !cx.dry_run() {
            let r = ObjectRef::new(&k.release.api_version, "KafkaBridge", Some(&k.namespace), &b.name);
            let hint = format!(
                "`kubectl -n {ns} describe deployment {}-bridge`; its log shows whether it reaches the Kafka",
                b.name,
                ns = k.namespace
            );
            let e = ready().field("/status/url", Check::Exists);
            let o = wait_object(a, &cx.ui, PHASE, &r, "Ready", &e, deadline, t.kube_poll, &hint).await?;
            let url = match b.node_port {
                Some(p) => format!("http://{}:{p}", addons::lan_address(a).await.unwrap_or_else(|| "<node>".into())),
                None => s(&o, "/status/url").unwrap_or_default().to_owned(),
            };
            cx.info(PHASE, &format!("{}/{}", k.namespace, b.name), format!("HTTP bridge: {url}"));
        }
    }
    // What the file no longer declares.
    for f in leftovers(a, k, &wanted).await? {
        let t = format!("{}/{}", k.namespace, f.name);
        if cx.opts.prune {
            cx.act(PHASE, &t, format!("delete {} (--prune)", f.words)).await?;
            if !cx.dry_run() {
                a.delete(&f.api, f.kind, Some(&k.namespace), &f.name).await?;
            }
        } else {
            cx.drift(
                PHASE,
                &t,
                format!("{} {} is no longer in the file; kept", f.kind, f.name),
                format!("`homelab up --prune` would delete {}", f.words),
            );
        }
    }
    Ok(())
}
