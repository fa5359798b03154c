//! Phase `kafka` (Strimzi): the pinned install files in the declared namespace, a wait for
//! the operator, a check that every StorageClass the Kafka asks for exists, the
//! KafkaNodePools and the Kafka for the release, a wait for `Ready=True` at the current
//! generation, and the bootstrap addresses (including the node-port one).

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
        Ok(())
    }

    async fn finish(&self, cx: &Ctx) -> Result<()> {
        let k = kafka(cx)?;
        let files = self.download.files().await?;
        cx.ensure_lease().await?;
        let a = addons::applier(cx, PHASE).await?;
        let t = cx.opts.timings;
        // An existing ZooKeeper cluster cannot be taken over by a Strimzi without ZooKeeper.
        if !k.release.zookeeper
            && let Some(live) = a.get(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name).await.ok().flatten()
        {
            let live = serde_json::to_value(&live)?;
            if live.pointer("/spec/zookeeper").is_some()
                || live.pointer("/status/kafkaMetadataState").and_then(Value::as_str) == Some("ZooKeeper")
            {
                bail!(
                    "Kafka {}/{} runs on ZooKeeper, which Strimzi {} no longer supports\n  hint: migrate it to KRaft first on Strimzi 0.45 (node pools, then `strimzi.io/kraft=migration`, see docs/rook-strimzi.md §6), or move to a fresh KRaft cluster",
                    k.namespace,
                    k.name,
                    k.release.version
                );
            }
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
        addons::apply(cx, PHASE, &a, &k.namespace, &what, &objs).await?;
        if cx.dry_run() {
            return Ok(());
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
        Ok(())
    }
}
