//! What `upgrade` reads, before planning and before every hop: per machine its snap (channel,
//! held) over SSH and its Node (Ready, kubelet version, cordoned) from the API; the datastore
//! voters from a control plane; the Rook operator's image and rollout, the CephCluster's
//! declared and running Ceph, the version labels of every Ceph daemon; Ceph's health and OSD
//! counts through the Rook toolbox; Kafka's readiness; the CloudNativePG operator's image. Reads only, concurrently where nothing
//! orders them.

pub mod strimzi;

use super::observed::{Daemon, NodeView, Observed, rolled};
use crate::catalog::Catalog;
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::microk8s as mk;
use anyhow::{Context as _, Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::sync::Arc;

/// The machines in the order a MicroK8s round takes them: control planes in file order,
/// then workers.
pub fn round_order(cx: &Ctx) -> Vec<crate::config::Machine> {
    let mut m: Vec<crate::config::Machine> = cx.cluster.control_planes().cloned().collect();
    m.extend(cx.cluster.machines.iter().filter(|m| !m.is_control_plane()).cloned());
    m
}

/// `snap list microk8s` on one machine: its tracking channel and whether it is held.
pub async fn snap_of(cx: &Ctx, host: &str) -> Result<(String, bool)> {
    let r = cx.remote(host).await?;
    let out = r.run(&mk::snap_list_cmd()).await.with_context(|| format!("reading the MicroK8s snap on {host}"))?;
    mk::parse_snap_list(&out).with_context(|| format!("`snap list microk8s` on {host}"))
}

/// A control plane that answers `microk8s status`, and the voters it lists.
pub async fn datastore(cx: &Ctx) -> Result<(String, mk::Datastore)> {
    let mut tried = Vec::new();
    for m in cx.cluster.control_planes() {
        match cx.remote(&m.hostname).await {
            Ok(r) => match r.run(&mk::datastore_cmd()).await {
                Ok(out) if mk::is_running(&out) => return Ok((m.hostname.clone(), mk::parse_datastore(&out)?)),
                Ok(out) => tried.push(format!("{}: {}", m.hostname, out.text().trim())),
                Err(e) => tried.push(format!("{}: {e:#}", m.hostname)),
            },
            Err(e) => tried.push(format!("{}: {e:#}", m.hostname)),
        }
    }
    Err(anyhow!(
        "no control plane answers with a running MicroK8s ({})\n  hint: `homelab status` shows which machines answer; bring one back before upgrading",
        tried.join("; ")
    ))
}

fn minor_of_kubelet(v: &str) -> Option<(u32, u32)> {
    crate::catalog::parse_minor(v)
}

/// The annotation a MicroK8s round puts on the node it drains (value: the round's target
/// minor, `1.27`) and takes off when it uncordons it: a node cordoned by someone else is
/// left alone, one homelab cordoned is finished by the next run.
pub const DRAINED_FOR: &str = "homelab.dev/upgrade-round";

/// One Node as the API server reports it.
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub kubelet: Option<(u32, u32)>,
    pub cordoned: bool,
    /// The MicroK8s round that drained it ([`DRAINED_FOR`]).
    pub round: Option<(u32, u32)>,
}

pub async fn nodes(cx: &Ctx) -> Result<Vec<NodeRow>> {
    let api: Api<Node> = Api::all(cx.kube().await?);
    let list = api.list(&ListParams::default()).await.context("listing the Kubernetes nodes")?;
    Ok(list
        .items
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let st = n.status.clone().unwrap_or_default();
            let ready = st.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
            let kubelet = st.node_info.as_ref().and_then(|i| minor_of_kubelet(&i.kubelet_version));
            let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
            let round = n
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DRAINED_FOR))
                .and_then(|v| crate::catalog::parse_minor(v));
            NodeRow { name, ready, kubelet, cordoned, round }
        })
        .collect())
}

/// Everything the gates and the planner read.
pub async fn observe(cx: &Arc<Ctx>, cat: &Catalog) -> Result<Observed> {
    Box::pin(observe_with(cx, cat, true)).await
}

/// What the waits inside a hop read: the same without each machine's snap (one SSH command
/// per machine fewer on every poll; nodes then carry no tracking channel).
pub async fn observe_health(cx: &Arc<Ctx>, cat: &Catalog) -> Result<Observed> {
    Box::pin(observe_with(cx, cat, false)).await
}

async fn observe_with(cx: &Arc<Ctx>, cat: &Catalog, with_snaps: bool) -> Result<Observed> {
    let order = round_order(cx);
    let client = cx.kube().await?;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), Rook::NAMESPACE);
    let a = crate::engine::phases::manifests::applier(cx, crate::foundation::phase_id::PhaseId::Storage).await?;
    let snaps =
        futures::future::join_all(order.iter().map(|m| async move {
            if with_snaps { snap_of(cx, &m.hostname).await } else { Ok((String::new(), false)) }
        }));
    // (The same applier and its discovery serve the Strimzi reads.)
    let strimzi = Box::pin(strimzi::observe(cx, cat, &a));
    let cnpg = async {
        if cx.cluster.database.is_none() {
            return Ok(None);
        }
        crate::engine::phases::database::running_operator(&a).await
    };
    let (snaps, nodes, ds, operator, cluster, daemons, strimzi, cnpg) = tokio::join!(
        snaps,
        nodes(cx),
        datastore(cx),
        async { deps.get_opt("rook-ceph-operator").await.map_err(anyhow::Error::from) },
        a.get("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME),
        async {
            deps.list(&ListParams::default().labels(&format!("rook_cluster={}", Rook::NAMESPACE)))
                .await
                .map_err(anyhow::Error::from)
        },
        strimzi,
        cnpg,
    );
    let (nodes, (ds_host, ds), operator, cluster, daemons, strimzi, cnpg_image) =
        (nodes?, ds?, operator?, cluster?, daemons?, strimzi?, cnpg?);
    let mut o = Observed {
        voters: ds.voters.len(),
        voters_wanted: cx.cluster.control_planes().count().min(3),
        cnpg_image,
        ..Default::default()
    };
    for (m, snap) in order.iter().zip(snaps) {
        // A machine that does not answer is a gate's business (it is not Ready), not an error.
        let (tracking, held, reachable) = match snap {
            Ok((t, h)) => (t, h, true),
            Err(e) => {
                tracing::debug!("{}: {e:#}", m.hostname);
                (String::new(), false, false)
            }
        };
        let n = nodes.iter().find(|n| n.name == m.hostname.to_lowercase());
        o.nodes.push(NodeView {
            host: m.hostname.clone(),
            control_plane: m.is_control_plane(),
            tracking,
            held,
            ready: n.is_some_and(|n| n.ready),
            kubelet: n.and_then(|n| n.kubelet),
            unschedulable: n.is_some_and(|n| n.cordoned),
            drained_for: n.and_then(|n| n.round),
            reachable,
        });
    }
    if let Some(op) = &operator {
        o.operator_image = serde_json::to_value(op).ok().as_ref().and_then(crate::render::rook::operator_image_of);
        o.operator_rolled = rolled(op);
    }
    if let Some(c) = cluster.and_then(|c| serde_json::to_value(c).ok()) {
        let s = |p: &str| c.pointer(p).and_then(Value::as_str).map(str::to_owned);
        o.ceph_spec_image = s("/spec/cephVersion/image");
        o.ceph_running = s("/status/version/version");
        o.ceph_message = s("/status/message").unwrap_or_default();
        o.ceph_failed = s("/status/phase").as_deref() == Some("Failure");
        let generation = c.pointer("/metadata/generation").and_then(Value::as_i64);
        o.ceph_ready = s("/status/phase").as_deref() == Some("Ready")
            && c.pointer("/status/observedGeneration").and_then(Value::as_i64) == generation;
    }
    for d in &daemons.items {
        let l = d.metadata.labels.clone().unwrap_or_default();
        o.daemons.push(Daemon {
            name: d.metadata.name.clone().unwrap_or_default(),
            rook_version: l.get("rook-version").cloned(),
            ceph_version: l.get("ceph-version").cloned(),
            ready: rolled(d),
        });
    }
    o.daemons.sort_by(|a, b| a.name.cmp(&b.name));
    // Without a toolbox the command fails and the health stays unknown (a gate says so).
    if let Ok(out) = cx.remote(&ds_host).await?.run(&crate::ceph::cmd(&["status"], true)).await
        && let Ok(st) = crate::ceph::parse_status(&out)
    {
        o.health = Some(st.health.clone());
        o.checks = st.checks.keys().cloned().collect();
        o.osds = st.osds;
        o.osds_up = st.osds_up;
        o.osds_in = st.osds_in;
    }
    if let Some(v) = &strimzi {
        o.kafka_ready =
            v.kafka.as_ref().map(|k| crate::kube::wait::Expect::condition("Ready", "True").unmet(k).is_none());
        o.brokers_not_ready = v.brokers_not_ready();
    }
    o.strimzi = strimzi;
    Ok(o)
}
