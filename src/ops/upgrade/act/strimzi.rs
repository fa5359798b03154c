//! The Strimzi side of `upgrade`: what runs (the operator's release, the Kafka's version,
//! protocol and metadata settings, its node pools, the migration state, the broker pods'
//! images, which version the Strimzi CRDs store) and the hops that move it: an operator
//! release, a Kafka version (two rolls), the brokers into the node pool `kafka`, the
//! ZooKeeper → KRaft migration with its point of no return, and the `v1` conversion.
//! Every step observes first and acts only where the cluster is not there yet, so a run
//! stopped anywhere is finished by the next one. Facts: docs/day2.md §2.4 and §3.2,
//! restated in docs/upgrade.md.

use crate::catalog::{Catalog, StrimziRelease};
use crate::config::{Cluster, Kafka};
use crate::engine::context::Ctx;
use crate::engine::phases::manifests::{self as addons, Download};
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::kube::apply::Applier;
use crate::ops::upgrade::ladder::{Hop, KafkaAt, Metadata, Versions, major_minor};
use crate::ops::upgrade::observe::strimzi::{observe, stored_v1};
use crate::ops::upgrade::observed::strimzi::*;
use crate::render::strimzi as render;
use anyhow::{Context as _, Result, anyhow, bail};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const PHASE: PhaseId = PhaseId::Kafka;
fn kafka_of(cx: &Ctx) -> Result<&Kafka> {
    cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("the file declares no `kafka:`"))
}

fn spec(cx: &Ctx, target: &str, what: String, deadline: Duration, hint: &str) -> WaitSpec {
    WaitSpec {
        phase: PHASE,
        target: target.to_owned(),
        what,
        deadline: cx.opts.timings.deadline(deadline),
        backoff: cx.opts.timings.kube_poll,
        hint: hint.to_owned(),
    }
}

async fn view(cx: &Ctx, cat: &Catalog, a: &Applier) -> Result<StrimziView> {
    observe(cx, cat, a).await?.ok_or_else(|| anyhow!("the file declares no `kafka:`"))
}

/// Waits until the Kafka is reconciled by the running operator at its generation, every
/// broker on its image and Ready, and `done` holds. The operator's transient `NotReady`
/// (a slow roll's TimeoutException) is waited through; its refusals fail at once.
async fn wait_reconciled(
    cx: &Arc<Ctx>,
    cat: &Catalog,
    a: &Applier,
    what: String,
    deadline: Duration,
    done: impl Fn(&StrimziView) -> Option<String>,
) -> Result<StrimziView> {
    let k = kafka_of(cx)?;
    let s = spec(
        cx,
        &format!("{}/{}", k.namespace, k.name),
        what,
        deadline,
        &format!(
            "`kubectl -n {ns} get kafka {n} -o yaml` shows the conditions; `kubectl -n {ns} logs deploy/{OPERATOR}` the reconciliation (it retries every 2 minutes)",
            ns = k.namespace,
            n = k.name
        ),
    );
    wait_for(&cx.ui, &s, || async {
        let v = view(cx, cat, a).await?;
        if let Some(r) = v.refusal() {
            return Ok(Probe::Failed(anyhow!(
                "the Strimzi operator refuses: {r}\n  hint: nothing of the next step was started; run `homelab upgrade --plan` to see the ladder from what runs"
            )));
        }
        Ok(match v.unsettled(cat).or_else(|| done(&v)) {
            None => Probe::Ready(v),
            Some(m) => Probe::Pending(Some(m)),
        })
    })
    .await
}

async fn patch_kafka(cx: &Ctx, a: &Applier, api: &str, patch: &Value) -> Result<()> {
    let k = kafka_of(cx)?;
    a.merge_patch(api, "Kafka", Some(&k.namespace), &k.name, patch).await
}

/// The options of the Strimzi hops that the run passes down.
#[derive(Debug, Clone, Copy, Default)]
pub struct HopOptions {
    /// Go past the migration's point of no return (`strimzi.io/kraft=enabled`).
    pub continue_kraft: bool,
}

/// The migration reached `KRaftPostMigration` and the run was not told to go on: the run
/// stops here, on purpose.
#[derive(Debug, thiserror::Error)]
#[error(
    "the ZooKeeper → KRaft migration of {kafka} is at KRaftPostMigration: the brokers run on the KRaft controllers and ZooKeeper still has every piece of metadata. This is the last point of return.\n  to finish (no way back after this): homelab upgrade --yes --continue-kraft\n  to go back to ZooKeeper:           homelab upgrade --yes --rollback-kraft"
)]
pub struct PointOfNoReturn {
    pub kafka: String,
}

pub async fn run_hop(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, hop: &Hop, o: HopOptions) -> Result<()> {
    match hop {
        Hop::Strimzi { from, to } => Box::pin(operator_hop(cx, cat, from, to)).await,
        Hop::Kafka { from, to, kraft } => Box::pin(kafka_hop(cx, cat, now, from, to, *kraft)).await,
        Hop::NodePools => Box::pin(node_pools_hop(cx, cat)).await,
        Hop::Kraft => Box::pin(kraft_hop(cx, cat, o)).await,
        Hop::StrimziV1 { .. } => Box::pin(v1_hop(cx)).await,
        _ => bail!("{} is not a Strimzi hop", hop.name()),
    }
}

// ---- the operator ---------------------------------------------------------------------

async fn release_files(cx: &Ctx, rel: &StrimziRelease) -> Result<crate::render::rook::Files> {
    let d = Download::default();
    d.start(cx.world.manifests.clone(), "strimzi", rel.version.clone(), addons::wanted_files(&rel.files));
    d.files().await
}

fn key_of(o: &Value) -> (String, String, String, String) {
    (
        o["apiVersion"].as_str().unwrap_or_default().to_owned(),
        o["kind"].as_str().unwrap_or_default().to_owned(),
        o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
        o["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn operator_hop(cx: &Arc<Ctx>, cat: &Catalog, from: &str, to: &str) -> Result<()> {
    let k = kafka_of(cx)?;
    let ns = k.namespace.clone();
    let rel = cat.strimzi(to).cloned().ok_or_else(|| anyhow!("Strimzi {to} is not in the catalog"))?;
    let old = cat.strimzi(from).cloned();
    let a = addons::applier(cx, PHASE).await?;
    // Before 0.49: KafkaUser ACLs name `operations` (the `v1` API has no `operation`).
    if rel.semver() >= (0, 49, 0) && old.as_ref().is_some_and(|o| o.semver() < (0, 49, 0)) {
        fix_user_acls(cx, &a, &ns, &old.as_ref().map(|o| o.api_version.clone()).unwrap_or_default()).await?;
    }
    let files = release_files(cx, &rel).await?;
    let objs = render::install_objects(&rel, &files, &ns)?;
    addons::apply(cx, PHASE, &a, &ns, &format!("the Strimzi {to} install files"), &objs).await?;
    // Objects of the previous release that this one no longer ships (never a CRD: deleting
    // one deletes every resource of it).
    if let Some(old) = &old {
        let old_files = release_files(cx, old).await?;
        let keep: std::collections::HashSet<_> = objs.iter().map(key_of).map(|k| (k.1, k.2, k.3)).collect();
        for o in render::install_objects(old, &old_files, &ns)? {
            let (av, kind, ons, name) = key_of(&o);
            if kind == "CustomResourceDefinition"
                || kind == "Namespace"
                || keep.contains(&(kind.clone(), ons.clone(), name.clone()))
            {
                continue;
            }
            let ons = (!ons.is_empty()).then_some(ons);
            if a.get(&av, &kind, ons.as_deref(), &name).await?.is_some() {
                cx.act(PHASE, &ns, format!("delete {kind} {name} (Strimzi {from} shipped it, {to} does not)")).await?;
                a.delete(&av, &kind, ons.as_deref(), &name).await?;
            }
        }
    }
    let image = rel.operator_image();
    let s = spec(
        cx,
        &ns,
        format!("deployment {OPERATOR} rolled out with {image}"),
        cx.cluster.timeouts.operator,
        &format!("`kubectl -n {ns} describe deploy {OPERATOR}` and its pod's events"),
    );
    wait_for(&cx.ui, &s, || async {
        let v = view(cx, cat, &a).await?;
        Ok(if v.operator.as_deref() == Some(to) && v.operator_rolled {
            Probe::Ready(())
        } else {
            Probe::Pending(Some(format!("operator at {}", v.operator.as_deref().unwrap_or("nothing"))))
        })
    })
    .await?;
    wait_reconciled(
        cx,
        cat,
        &a,
        format!("Kafka {} reconciled by Strimzi {to}, every broker rolled onto its images", k.name),
        cx.cluster.timeouts.kafka,
        |_| None,
    )
    .await?;
    Ok(())
}

async fn fix_user_acls(cx: &Ctx, a: &Applier, ns: &str, api: &str) -> Result<()> {
    for u in a.list(api, "KafkaUser", Some(ns), None).await? {
        let mut u = serde_json::to_value(u)?;
        if render::acl_operations(&mut u) {
            let name = u["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            cx.act(PHASE, ns, format!("KafkaUser {name}: ACL `operation` → `operations` (Strimzi 0.49 needs it)"))
                .await?;
            let acls = u.pointer("/spec/authorization/acls").cloned().unwrap_or(Value::Null);
            a.merge_patch(api, "KafkaUser", Some(ns), &name, &json!({"spec": {"authorization": {"acls": acls}}}))
                .await?;
        }
    }
    Ok(())
}

// ---- Kafka versions -------------------------------------------------------------------

/// The metadata version the running release gives Kafka `v` (`3.9`, `4.3-IV0`).
fn metadata_of(cat: &Catalog, strimzi: &str, v: &str) -> Option<String> {
    cat.strimzi(strimzi).and_then(|r| r.kafka_version(v)).and_then(|k| k.metadata_version.clone())
}

async fn kafka_hop(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions, from: &str, to: &str, kraft: bool) -> Result<()> {
    let k = kafka_of(cx)?;
    let a = &addons::applier(cx, PHASE).await?;
    let strimzi = now.kafka.as_ref().map(|k| k.strimzi.clone()).unwrap_or_default();
    let target = format!("{}/{}", k.namespace, k.name);
    let v = view(cx, cat, a).await?;
    let api = v.api.clone();
    // 1. The version, with the protocol (or metadata) version pinned at what runs.
    if v.version() != Some(to) {
        let patch = if kraft {
            let pinned = v
                .kafka()
                .and_then(|k| s(k, "/spec/kafka/metadataVersion"))
                .map(str::to_owned)
                .or_else(|| metadata_of(cat, &strimzi, from))
                .unwrap_or_else(|| major_minor(from));
            cx.act(PHASE, &target, format!("Kafka {from} → {to} with metadataVersion pinned at {pinned}")).await?;
            json!({"spec": {"kafka": {"version": to, "metadataVersion": pinned}}})
        } else {
            let ibp = v.config(IBP).unwrap_or_else(|| major_minor(from));
            let mut cfg = json!({IBP: ibp});
            if let Some(l) = v.config(LMF) {
                cfg[LMF] = json!(l);
            }
            cx.act(PHASE, &target, format!("Kafka {from} → {to} with inter.broker.protocol.version pinned at {ibp}"))
                .await?;
            json!({"spec": {"kafka": {"version": to, "config": cfg}}})
        };
        patch_kafka(cx, a, &api, &patch).await?;
    }
    wait_reconciled(cx, cat, a, format!("every broker rolled onto Kafka {to}"), cx.cluster.timeouts.kafka, |_| None)
        .await?;
    // 2. The protocol (or metadata) version raised: a second roll.
    raise_protocol(cx, cat, a, &strimzi, to, kraft).await
}

/// Raises the protocol version (ZooKeeper: `inter.broker.protocol.version`, and
/// `log.message.format.version` when set) or the metadata version (KRaft) to Kafka `v`'s,
/// and waits for the roll. Nothing when it is there already (or, in ZooKeeper mode, unset:
/// Strimzi then uses the version's default).
async fn raise_protocol(cx: &Arc<Ctx>, cat: &Catalog, a: &Applier, strimzi: &str, v: &str, kraft: bool) -> Result<()> {
    let k = kafka_of(cx)?;
    let target = format!("{}/{}", k.namespace, k.name);
    let view = view(cx, cat, a).await?;
    let patch = if kraft {
        let want = metadata_of(cat, strimzi, v).unwrap_or_else(|| major_minor(v));
        let has = view.kafka().and_then(|k| s(k, "/spec/kafka/metadataVersion")).map(str::to_owned);
        if has.as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        cx.act(PHASE, &target, format!("raise metadataVersion to {want}")).await?;
        json!({"spec": {"kafka": {"metadataVersion": want}}})
    } else {
        let want = major_minor(v);
        let (ibp, lmf) = (view.config(IBP), view.config(LMF));
        let mut cfg = serde_json::Map::new();
        if ibp.as_deref().is_some_and(|x| x != want) {
            cfg.insert(IBP.into(), json!(want));
        }
        if lmf.as_deref().is_some_and(|x| x != want) {
            cfg.insert(LMF.into(), json!(want));
        }
        if cfg.is_empty() {
            return Ok(());
        }
        cx.act(PHASE, &target, format!("raise inter.broker.protocol.version to {want}")).await?;
        json!({"spec": {"kafka": {"config": cfg}}})
    };
    patch_kafka(cx, a, &view.api, &patch).await?;
    wait_reconciled(
        cx,
        cat,
        a,
        format!("every broker rolled onto the protocol of Kafka {v}"),
        cx.cluster.timeouts.kafka,
        |_| None,
    )
    .await
    .map(drop)
}

/// Finishes the Strimzi side of the point the cluster is at: a Kafka step a stopped run
/// left with its protocol version still pinned is raised (a second roll).
pub async fn finish_point(cx: &Arc<Ctx>, cat: &Catalog, now: &Versions) -> Result<()> {
    let Some(k) = &now.kafka else { return Ok(()) };
    let a = &addons::applier(cx, PHASE).await?;
    match k.metadata {
        Metadata::KRaft => raise_protocol(cx, cat, a, &k.strimzi, &k.version, true).await?,
        Metadata::ZooKeeper | Metadata::NodePools => raise_protocol(cx, cat, a, &k.strimzi, &k.version, false).await?,
        Metadata::Migrating => return Ok(()),
    }
    converge_declared(cx, now).await
}

/// At the point the file declares, the Kafka and its node pools applied as `up` renders
/// them (the hops' patches made them so already; this takes the fields back into
/// homelab's server-side apply, so that the next `up` has nothing to do).
pub async fn converge_declared(cx: &Arc<Ctx>, now: &Versions) -> Result<()> {
    let k = kafka_of(cx)?;
    let declared = KafkaAt {
        strimzi: k.release.version.clone(),
        version: k.version.clone(),
        metadata: match k.mode {
            crate::config::model::MetadataMode::Kraft => Metadata::KRaft,
            crate::config::model::MetadataMode::Zookeeper => Metadata::ZooKeeper,
        },
        v1: k.release.v1_api(),
    };
    if now.kafka.as_ref() != Some(&declared) {
        return Ok(());
    }
    let a = addons::applier(cx, PHASE).await?;
    let objs = render::render(k);
    addons::apply(
        cx,
        PHASE,
        &a,
        &format!("{}/{}", k.namespace, k.name),
        &format!("Kafka {} as the file declares it", k.name),
        &objs,
    )
    .await
    .map(drop)
}

// ---- node pools -----------------------------------------------------------------------

/// Server-side apply of one KafkaNodePool (field manager homelab), counted as `up` counts it.
async fn apply_pool(cx: &Ctx, a: &Applier, target: &str, what: &str, pool: Value) -> Result<()> {
    addons::apply(cx, PHASE, a, target, what, &[pool]).await.map(drop)
}

async fn node_pools_hop(cx: &Arc<Ctx>, cat: &Catalog) -> Result<()> {
    let k = kafka_of(cx)?;
    let a = &addons::applier(cx, PHASE).await?;
    let target = format!("{}/{}", k.namespace, k.name);
    let v = view(cx, cat, a).await?;
    let live = v.kafka().cloned().ok_or_else(|| {
        anyhow!("Kafka {target} is gone\n  hint: `homelab up` with the file the cluster was built from puts it back; then run `homelab upgrade` again")
    })?;
    if v.pool(render::MIGRATED_POOL).is_none() {
        let pool = render::migrated_pool(&live, &v.api)
            .ok_or_else(|| {
                anyhow!(
                    "Kafka {target} has no spec.kafka.replicas and storage to move into a node pool\n  hint: `kubectl -n {} get kafka {} -o yaml` shows its spec; a ZooKeeper-mode Kafka homelab built has both (nothing was changed)",
                    k.namespace,
                    k.name
                )
            })?;
        apply_pool(cx, a, &target, "KafkaNodePool kafka (the brokers' replicas and storage, broker role)", pool)
            .await?;
    }
    if s(&live, "/metadata/annotations/strimzi.io~1node-pools") != Some("enabled") {
        cx.act(PHASE, &target, format!("annotate {NODE_POOLS}=enabled")).await?;
        patch_kafka(cx, a, &v.api, &json!({"metadata": {"annotations": {NODE_POOLS: "enabled"}}})).await?;
    }
    let replicas = live.pointer("/spec/kafka/replicas").and_then(Value::as_u64).unwrap_or(0);
    wait_reconciled(
        cx,
        cat,
        a,
        "the brokers taken over by the node pool `kafka`".into(),
        cx.cluster.timeouts.kafka,
        |v| {
            let ids = v.pool(render::MIGRATED_POOL).and_then(|p| p.pointer("/status/nodeIds")).cloned();
            let want: Vec<u64> = (0..replicas).collect();
            (ids != Some(json!(want))).then(|| format!("the pool's nodeIds are not {want:?} yet"))
        },
    )
    .await
    .map(drop)
}

// ---- ZooKeeper → KRaft ----------------------------------------------------------------

/// The controllers' KafkaNodePool the file declares, in API version `api`.
fn controller_pool(k: &Kafka, api: &str) -> Result<Value> {
    let mut objs = render::render(k);
    let mut pool = objs
        .drain(..)
        .find(|o| o["kind"] == "KafkaNodePool" && o["metadata"]["name"] == "controller")
        .ok_or_else(|| {
            anyhow!(
                "the migration to KRaft needs dedicated controllers, and the file declares none\n  hint: add `controllers: {{replicas: 3, storage: {{size: 20Gi, class: rook-ceph-block}}}}` to kafka.cluster (Strimzi migrates only to dedicated controllers)"
            )
        })?;
    pool["apiVersion"] = json!(api);
    Ok(pool)
}

async fn wait_state(cx: &Arc<Ctx>, cat: &Catalog, a: &Applier, states: &[&str]) -> Result<StrimziView> {
    let want = states.join(" or ");
    let budget = cx.cluster.timeouts.kafka * 2;
    wait_reconciled(cx, cat, a, format!("status.kafkaMetadataState {want}"), budget, |v| {
        let st = v.state().unwrap_or("none");
        (!states.contains(&st)).then(|| format!("kafkaMetadataState {st}"))
    })
    .await
}

async fn kraft_hop(cx: &Arc<Ctx>, cat: &Catalog, o: HopOptions) -> Result<()> {
    let k = kafka_of(cx)?;
    let a = &addons::applier(cx, PHASE).await?;
    let target = format!("{}/{}", k.namespace, k.name);
    let mut v = view(cx, cat, a).await?;
    let api = v.api.clone();
    let ctl = controller_pool(k, &api)?;
    let state = v.state().unwrap_or("ZooKeeper").to_owned();
    if state == "ZooKeeper" && v.kraft_annotation() != Some("migration") {
        // The four version settings aligned (KRaftUtils refuses otherwise).
        let ver = v.version().unwrap_or_default().to_owned();
        let mm = major_minor(&ver);
        let md = metadata_of(cat, v.operator.as_deref().unwrap_or_default(), &ver).unwrap_or_else(|| mm.clone());
        let has_md = v.kafka().and_then(|k| s(k, "/spec/kafka/metadataVersion")).map(str::to_owned);
        if v.config(IBP).as_deref() != Some(mm.as_str())
            || v.config(LMF).as_deref() != Some(mm.as_str())
            || has_md.as_deref() != Some(md.as_str())
        {
            cx.act(
                PHASE,
                &target,
                format!("align the version settings for the migration: metadataVersion {md}, {IBP} and {LMF} {mm}"),
            )
            .await?;
            patch_kafka(
                cx,
                a,
                &api,
                &json!({"spec": {"kafka": {"metadataVersion": md, "config": {IBP: mm, LMF: mm}}}}),
            )
            .await?;
            wait_reconciled(
                cx,
                cat,
                a,
                "the brokers rolled with the aligned versions".into(),
                cx.cluster.timeouts.kafka,
                |_| None,
            )
            .await?;
        }
        apply_pool(cx, a, &target, "KafkaNodePool controller (the KRaft controllers)", ctl).await?;
        cx.act(PHASE, &target, format!("annotate {KRAFT}=migration (the migration starts)")).await?;
        patch_kafka(cx, a, &api, &json!({"metadata": {"annotations": {KRAFT: "migration"}}})).await?;
    }
    if !matches!(v.state(), Some("PreKRaft" | "KRaft")) || v.kraft_annotation() != Some("enabled") {
        v = wait_state(cx, cat, a, &["KRaftPostMigration", "PreKRaft", "KRaft"]).await?;
    }
    if v.state() == Some("KRaftPostMigration") && v.kraft_annotation() != Some("enabled") {
        if !o.continue_kraft {
            return Err(PointOfNoReturn { kafka: target }.into());
        }
        cx.act(PHASE, &target, format!("annotate {KRAFT}=enabled (past the point of no return)")).await?;
        patch_kafka(cx, a, &api, &json!({"metadata": {"annotations": {KRAFT: "enabled"}}})).await?;
    }
    v = wait_state(cx, cat, a, &["KRaft"]).await?;
    // ZooKeeper and the protocol settings leave the spec (one more roll).
    if v.has_zookeeper() || v.config(IBP).is_some() || v.config(LMF).is_some() {
        cx.act(PHASE, &target, format!("remove spec.zookeeper, {IBP} and {LMF}")).await?;
        patch_kafka(cx, a, &api, &json!({"spec": {"zookeeper": null, "kafka": {"config": {IBP: null, LMF: null}}}}))
            .await?;
    }
    wait_reconciled(cx, cat, a, "the Kafka on KRaft without ZooKeeper".into(), cx.cluster.timeouts.kafka, |v| {
        v.has_zookeeper().then(|| "spec.zookeeper is still there".to_owned())
    })
    .await
    .map(drop)
}

/// `upgrade --rollback-kraft`: from `KRaftDualWriting` or `KRaftPostMigration` back to
/// ZooKeeper (`rollback`, the controller pool and its claims deleted, `disabled`).
pub async fn rollback_kraft(cx: &Arc<Ctx>, cat: &Catalog) -> Result<()> {
    let k = kafka_of(cx)?;
    let a = &addons::applier(cx, PHASE).await?;
    let target = format!("{}/{}", k.namespace, k.name);
    let v = view(cx, cat, a).await?;
    let api = v.api.clone();
    let (state, ann) = (v.state().unwrap_or("none").to_owned(), v.kraft_annotation().map(str::to_owned));
    match (state.as_str(), ann.as_deref()) {
        ("ZooKeeper", Some("disabled") | None) => {
            cx.ui.out(&format!("{target} runs on ZooKeeper: nothing to roll back"));
            return Ok(());
        }
        (_, Some("enabled")) | ("PreKRaft" | "KRaft", _) => bail!(crate::foundation::error::Failure::Usage(format!(
            "refusing to roll back {target}: the migration is past the point of no return (strimzi.io/kraft=enabled, state {state}); Strimzi has no way back from here\n  hint: `homelab upgrade --yes --continue-kraft` finishes it (nothing was changed)"
        ))),
        ("KRaftMigration", _) => bail!(crate::foundation::error::Failure::Usage(format!(
            "refusing to roll back {target} in KRaftMigration: Strimzi rolls back only from KRaftDualWriting or KRaftPostMigration\n  hint: wait for the state to move (`kubectl -n {} get kafka {} -w`), then run it again (nothing was changed)",
            k.namespace, k.name
        ))),
        _ => {}
    }
    if state == "KRaftPostMigration" && ann.as_deref() != Some("rollback") {
        cx.act(PHASE, &target, format!("annotate {KRAFT}=rollback")).await?;
        patch_kafka(cx, a, &api, &json!({"metadata": {"annotations": {KRAFT: "rollback"}}})).await?;
    }
    let v = if state != "KRaftDualWriting" { wait_state(cx, cat, a, &["KRaftDualWriting"]).await? } else { v };
    if let Some(pool) = v.pool("controller") {
        let ids: Vec<u64> = pool
            .pointer("/status/nodeIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        cx.act(PHASE, &target, "delete KafkaNodePool controller").await?;
        a.delete(&api, "KafkaNodePool", Some(&k.namespace), "controller").await?;
        for id in ids {
            for pvc in [format!("data-0-{}-controller-{id}", k.name), format!("data-{}-controller-{id}", k.name)] {
                if a.get("v1", "PersistentVolumeClaim", Some(&k.namespace), &pvc).await?.is_some() {
                    cx.act(PHASE, &target, format!("delete PVC {pvc} (a controller's metadata)")).await?;
                    a.delete("v1", "PersistentVolumeClaim", Some(&k.namespace), &pvc).await?;
                }
            }
        }
    }
    cx.act(PHASE, &target, format!("annotate {KRAFT}=disabled")).await?;
    patch_kafka(cx, a, &api, &json!({"metadata": {"annotations": {KRAFT: "disabled"}}})).await?;
    wait_state(cx, cat, a, &["ZooKeeper"]).await?;
    cx.ui.out(&format!(
        "{target} is back on ZooKeeper. Before a new attempt, delete the /migration znode (`zookeeper-shell.sh localhost:12181 delete /migration` in a ZooKeeper pod)"
    ));
    Ok(())
}

// ---- the v1 API -----------------------------------------------------------------------

async fn v1_hop(cx: &Arc<Ctx>) -> Result<()> {
    let k = kafka_of(cx)?;
    let a = addons::applier(cx, PHASE).await?;
    let crds = a.list("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, None).await?;
    let crds: Vec<Value> = crds
        .into_iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter(|c| c.pointer("/spec/group").and_then(Value::as_str).is_some_and(|g| g.ends_with(".strimzi.io")))
        .collect();
    // 1. Each Strimzi CRD stores v1 (`v1-api-conversion.sh crd-upgrade`).
    for c in &crds {
        let name = c["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let Some(mut versions) = c.pointer("/spec/versions").and_then(Value::as_array).cloned() else { continue };
        if !versions.iter().any(|v| v["name"] == "v1") {
            // A kind the release no longer ships (KafkaMirrorMaker, gone in 0.46): harmless
            // while empty; resources of it would be lost at 1.0.
            let kind = c.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or_default();
            let served =
                versions.iter().find(|v| v["served"] == true).and_then(|v| v["name"].as_str()).unwrap_or("v1beta2");
            let group = c.pointer("/spec/group").and_then(Value::as_str).unwrap_or(GROUP);
            let left = a.list(&format!("{group}/{served}"), kind, None, None).await?;
            if !left.is_empty() {
                bail!(
                    "{} {kind} resources exist, and Strimzi {} has no {kind} (CRD {name} serves no v1)\n  hint: move them to what replaced it (KafkaMirrorMaker → KafkaMirrorMaker2), delete them, then run `homelab upgrade` again (nothing of this hop was changed)",
                    left.len(),
                    k.release.version
                );
            }
            continue;
        }
        if versions.iter().any(|v| v["name"] == "v1" && v["storage"] == true) {
            continue;
        }
        for v in versions.iter_mut() {
            v["storage"] = json!(v["name"] == "v1");
        }
        cx.act(PHASE, &name, "make v1 the storage version").await?;
        a.merge_patch(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            &name,
            &json!({"spec": {"versions": versions}}),
        )
        .await?;
    }
    // 2. Every object of every Strimzi kind read and written back in v1 form, so that it is
    // stored as v1 (objects of kinds homelab does not manage are rewritten unchanged).
    let client = cx.kube().await?;
    let mut rewritten = 0u32;
    let crds: Vec<Value> = crds
        .into_iter()
        .filter(|c| {
            c.pointer("/spec/versions").and_then(Value::as_array).is_some_and(|v| v.iter().any(|x| x["name"] == "v1"))
        })
        .collect();
    for c in &crds {
        let kind = c.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or_default().to_owned();
        let group = c.pointer("/spec/group").and_then(Value::as_str).unwrap_or(GROUP).to_owned();
        let (ar, _) = a.resolve(&kube::core::GroupVersionKind::gvk(&group, "v1", &kind)).await?;
        let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api.list(&ListParams::default()).await.with_context(|| format!("listing {kind} (v1)"))?;
        for o in list.items {
            let mut v = serde_json::to_value(&o)?;
            if MANAGED_KINDS.contains(&kind.as_str()) {
                render::to_v1_form(&mut v);
            }
            let name = o.metadata.name.clone().unwrap_or_default();
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let obj: kube::core::DynamicObject = serde_json::from_value(v)?;
            let napi: Api<kube::core::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            napi.replace(&name, &Default::default(), &obj)
                .await
                .with_context(|| format!("writing {kind} {ns}/{name} back as v1"))?;
            rewritten += 1;
        }
    }
    cx.changed(
        PHASE,
        &k.namespace,
        format!("rewrite {rewritten} Strimzi resources in v1 form, stored as v1"),
        rewritten,
    );
    // 3. storedVersions [v1], checked.
    let crd_api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for c in &crds {
        let name = c["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        if stored_v1(&a, &name).await? {
            continue;
        }
        cx.act(PHASE, &name, "set status.storedVersions to [v1]").await?;
        crd_api
            .patch_status(
                &name,
                &Default::default(),
                &kube::api::Patch::Merge(json!({"status": {"storedVersions": ["v1"]}})),
            )
            .await
            .with_context(|| format!("setting status.storedVersions of {name}"))?;
        if !stored_v1(&a, &name).await? {
            bail!(
                "CRD {name} still lists another stored version after the move to v1\n  hint: `kubectl get crd {name} -o jsonpath='{{.status.storedVersions}}'`; run `homelab upgrade` again"
            );
        }
    }
    Ok(())
}

/// The file's target for the Strimzi side, with what `--write` would change in it.
pub fn cluster_note(cluster: &Cluster) -> Option<String> {
    let k = cluster.kafka.as_ref()?;
    (k.mode == crate::config::model::MetadataMode::Kraft && k.controllers.is_some() && k.broker_pool != render::MIGRATED_POOL)
        .then(|| {
            "a Kafka migrated from ZooKeeper keeps its brokers in the node pool `kafka`: set `brokerPool: kafka` under kafka.cluster (or the migration's pool would be replaced by a new, empty `broker` pool)".to_owned()
        })
}
