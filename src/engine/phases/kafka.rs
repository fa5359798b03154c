//! Phase `kafka` (Strimzi): the pinned install files in the declared namespace, a wait for
//! the operator, a check that every StorageClass the Kafka asks for exists, the
//! KafkaNodePools and the Kafka for the release, a wait for `Ready=True` at the current
//! generation, and the bootstrap addresses (including the node-port one); then the
//! applications' topics, users and bridge ([`super::kafka_apps`]).

use super::manifests::{self as addons, Download};
use crate::config::Kafka;
use crate::engine::context::Ctx;
use crate::engine::phase::Phase;
use crate::foundation::phase_id::PhaseId;
use crate::kube::apply::Applier;
use crate::kube::wait::{Expect, ObjectRef, wait_object};
use crate::render::strimzi;
use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use serde_json::Value;

const PHASE: PhaseId = PhaseId::Kafka;

pub const UPGRADE_HINT: &str = "`homelab upgrade` moves Strimzi one release that runs the running Kafka at a time, Kafka one supported version at a time and ZooKeeper to KRaft by Strimzi's migration (`homelab upgrade --plan` lists the hops)";

/// What runs and differs from the file in a way only `upgrade` may change: the operator's
/// release, the Kafka version, ZooKeeper under a file that declares KRaft.
async fn version_drift(a: &Applier, k: &Kafka) -> Result<(Option<String>, Option<Value>)> {
    let Some(d) = a.get("apps/v1", "Deployment", Some(&k.namespace), "strimzi-cluster-operator").await? else {
        return Ok((None, None));
    };
    let d = serde_json::to_value(d)?;
    let img = d.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str).unwrap_or_default();
    let running = img.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    if running != k.release.version {
        return Ok((Some(format!("the Strimzi operator runs {img}, the file says {}", k.release.version)), None));
    }
    let Some(live) = a.get(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name).await.ok().flatten() else {
        return Ok((None, None));
    };
    let live = serde_json::to_value(&live)?;
    let v = live.pointer("/spec/kafka/version").and_then(Value::as_str).unwrap_or_default();
    if !v.is_empty() && v != k.version {
        return Ok((Some(format!("Kafka {}/{} runs {v}, the file says {}", k.namespace, k.name, k.version)), None));
    }
    let zk = live.pointer("/spec/zookeeper").is_some()
        || live.pointer("/status/kafkaMetadataState").and_then(Value::as_str) == Some("ZooKeeper");
    if zk && k.mode == crate::config::model::MetadataMode::Kraft {
        return Ok((
            Some(format!(
                "Kafka {}/{} runs on ZooKeeper, the file declares KRaft (Strimzi {} {})",
                k.namespace,
                k.name,
                k.release.version,
                if k.release.zookeeper { "migrates it with `strimzi.io/kraft`" } else { "no longer runs ZooKeeper" }
            )),
            None,
        ));
    }
    Ok((None, Some(live)))
}

#[derive(Default)]
pub struct KafkaPhase {
    download: Download,
}

fn kafka(cx: &Ctx) -> Result<&Kafka> {
    cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("the cluster declares no `kafka:`"))
}

/// The StorageClasses the storage phase provides (it runs first): (name, default).
fn declared_classes(cx: &Ctx) -> Vec<(String, bool)> {
    cx.cluster
        .rook
        .iter()
        .flat_map(|r| r.pools.iter())
        .filter_map(|p| p.storage_class.as_ref().map(|c| (c.name.clone(), c.default)))
        .collect()
}

/// Fails when a StorageClass the Kafka needs is missing (before anything is applied); the
/// `declared` ones count as present.
async fn check_storage_classes(a: &Applier, k: &Kafka, declared: &[(String, bool)]) -> Result<()> {
    let classes = a.list("storage.k8s.io/v1", "StorageClass", None, None).await?;
    let classes: Vec<Value> = classes.iter().filter_map(|c| serde_json::to_value(c).ok()).collect();
    let mut names: Vec<&str> = classes.iter().filter_map(|c| c["metadata"]["name"].as_str()).collect();
    names.extend(declared.iter().map(|(n, _)| n.as_str()).filter(|n| !names.contains(n)).collect::<Vec<_>>());
    let has_default = declared.iter().any(|(_, d)| *d)
        || classes.iter().any(|c| {
            c.pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class").and_then(Value::as_str)
                == Some("true")
        });
    for want in strimzi::storage_classes(k) {
        match want {
            Some(c) if !names.contains(&c.as_str()) => bail!(
                "the cluster has no StorageClass `{c}` for Kafka's volumes (it has: {})\n  hint: set `kafka.cluster.storage.class` to one of them, or declare a Rook pool that provides `{c}`",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
            None if !has_default => bail!(
                "Kafka's volumes use the cluster's default StorageClass, but none is marked default (classes: {})\n  hint: set `kafka.cluster.storage.class`",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
            _ => {}
        }
    }
    Ok(())
}

#[async_trait]
impl Phase for KafkaPhase {
    fn id(&self) -> PhaseId {
        PHASE
    }

    async fn prepare(&self, cx: &Ctx) -> Result<()> {
        let k = kafka(cx)?;
        self.download.start(
            cx.world.manifests.clone(),
            "strimzi",
            k.release.version.clone(),
            addons::wanted_files(&k.release.files),
        );
        // Refused before anything of the run is applied: what Kafka cannot do to a running topic.
        if !k.topics.is_empty()
            && let Some(c) = addons::try_client(cx).await
        {
            let a = cx.applier(c, PHASE, Default::default());
            super::kafka_apps::check_live(&a, k).await?;
        }
        Ok(())
    }

    async fn finish(&self, cx: &Ctx) -> Result<()> {
        let k = kafka(cx)?;
        let files = self.download.files().await?;
        cx.ensure_lease().await?;
        let a = addons::applier(cx, PHASE).await?;
        let t = cx.opts.timings;
        // A version change is `homelab upgrade`'s: the operator one release that runs the
        // running Kafka at a time, Kafka one supported step at a time (two rolls), ZooKeeper →
        // KRaft only by the migration. `up` reports it and leaves the Kafka alone.
        let (drift, live) = version_drift(&a, k).await?;
        if let Some(drift) = drift {
            cx.drift(PHASE, &format!("{}/{}", k.namespace, k.name), drift, UPGRADE_HINT);
            return Ok(());
        }
        let install = strimzi::install_objects(&k.release, &files, &k.namespace)?;
        addons::apply(
            cx,
            PHASE,
            &a,
            &k.namespace,
            &format!("the Strimzi {} install files", k.release.version),
            &install,
        )
        .await?;
        let hint = format!(
            "`kubectl -n {} logs deployment/strimzi-cluster-operator`; \"forbidden\" errors mean its RoleBindings point at another namespace",
            k.namespace
        );
        addons::wait_operator(cx, PHASE, &a, &k.namespace, "strimzi-cluster-operator", &hint).await?;
        // A dry run has not created the classes the storage phase provides; a real run has.
        let declared = if cx.dry_run() { declared_classes(cx) } else { vec![] };
        check_storage_classes(&a, k, &declared).await?;
        let objs = strimzi::render(k);
        let pools = objs.iter().filter(|o| o["kind"] == "KafkaNodePool").count();
        let what = if pools > 0 {
            format!("Kafka {} with {pools} node pool{}", k.name, if pools == 1 { "" } else { "s" })
        } else {
            format!("Kafka {}", k.name)
        };
        // Turning on listener authentication or authorization changes the brokers' configuration.
        if let (Some(live), Some(want)) = (&live, objs.iter().find(|o| o["kind"] == "Kafka")) {
            let why = super::kafka_apps::broker_roll_reasons(live, want);
            if !why.is_empty() {
                cx.info(
                    PHASE,
                    &format!("{}/{}", k.namespace, k.name),
                    format!(
                        "{}: Strimzi rolls the brokers one at a time to apply it (each restarts once; clients reconnect)",
                        why.join("; ")
                    ),
                );
            }
        }
        addons::apply(cx, PHASE, &a, &k.namespace, &what, &objs).await?;
        if cx.dry_run() {
            return super::kafka_apps::converge(cx, &a, k).await;
        }
        let kafka = wait_object(
            &a,
            &cx.ui,
            PHASE,
            &ObjectRef::new(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name),
            "Ready",
            &Expect::condition("Ready", "True").with_generation(),
            t.deadline(cx.cluster.timeouts.kafka),
            t.kube_poll,
            &format!(
                "`kubectl -n {ns} get pods,pvc` — Pending PVCs mean the StorageClass cannot provision (is Ceph healthy?); `kubectl -n {ns} logs deployment/strimzi-cluster-operator` shows the reconciliation; Strimzi retries every 2 minutes, so a slow first start can still succeed: raise `timeouts.kafka`",
                ns = k.namespace
            ),
        )
        .await?;
        for (listener, addr) in strimzi::bootstrap_addresses(&kafka) {
            cx.info(PHASE, &format!("{}/{}", k.namespace, k.name), format!("bootstrap {listener}: {addr}"));
        }
        super::kafka_apps::converge(cx, &a, k).await
    }
}
