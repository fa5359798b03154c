//! What `remove-node` reads before it decides: MAAS (power, status), SSH (does the PC
//! answer), the Kubernetes Nodes, the dqlite members as a surviving control plane sees them,
//! Ceph through the Rook toolbox on that control plane, Kafka and the Rook operator. Reads
//! only; every answer is parsed and validated by its client module.

use super::decide::{CephView, Observed};
use crate::engine::context::Ctx;
use crate::microk8s as mk;
use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use serde_json::Value;
use std::sync::Arc;

/// The cluster before the removal (the Ctx's) and after it (the file without the machine, or
/// with its replacement).
pub struct Files {
    pub path: std::path::PathBuf,
    pub before: crate::config::Cluster,
    pub after: crate::config::Cluster,
}

/// A control plane other than `host` that answers and runs MicroK8s — where `remove-node`
/// and the toolbox commands run — and the datastore members it lists.
pub async fn survivor(cx: &Arc<Ctx>, host: &str) -> Result<(String, mk::Datastore)> {
    let mut tried = Vec::new();
    for m in cx.cluster.control_planes().filter(|m| m.hostname != host) {
        match cx.remote(&m.hostname).await {
            Ok(r) => match r.run(&mk::datastore_cmd()).await {
                Ok(out) if mk::is_running(&out) => {
                    let ds = mk::parse_datastore(&out)
                        .with_context(|| format!("reading the datastore members on {}", m.hostname))?;
                    return Ok((m.hostname.clone(), ds));
                }
                Ok(out) => tried.push(format!("{}: {}", m.hostname, out.text())),
                Err(e) => tried.push(format!("{}: {e:#}", m.hostname)),
            },
            Err(e) => tried.push(format!("{}: {e:#}", m.hostname)),
        }
    }
    bail!(
        "no other control plane answers, so nothing can remove {host} safely ({})\n  hint: bring one back first; if the datastore lost its majority see microk8s.io/docs/restore-quorum",
        if tried.is_empty() { "there is none".to_owned() } else { tried.join("; ") }
    )
}

pub async fn observe(cx: &Arc<Ctx>, files: &Files, host: &str, survivor: &str, ds: mk::Datastore) -> Result<Observed> {
    let machine = cx.cluster.machine(host).ok_or_else(|| anyhow!("no machine {host}"))?.clone();
    let facts = cx.facts(host);
    let mut o = Observed {
        host: host.to_owned(),
        is_control_plane: machine.is_control_plane(),
        control_planes: cx.cluster.control_planes().count(),
        ip: facts.ip.clone(),
        maas_status: facts.status.map(|s| s.name().to_owned()),
        power: facts.power.clone(),
        in_file: true,
        host_entries: cx.cluster.kubernetes.minor().is_some_and(mk::needs_host_entries),
        ..Default::default()
    };
    // Does the PC answer? (A worker that still belongs to the cluster says so.)
    if facts.ip.is_some()
        && let Ok(r) = cx.remote(host).await
        && let Ok(out) = r.run(&mk::datastore_cmd().timeout(std::time::Duration::from_secs(30))).await
    {
        o.reachable = true;
        o.worker_joined = mk::is_worker_status(&out);
    }
    if !o.reachable {
        cx.forget_remote(host).await;
    }
    let sr = cx.remote(survivor).await?;
    o.voters = ds.voters;
    o.standby = ds.standby;
    // Kubernetes: the Nodes.
    let client = cx.kube().await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&Default::default()).await.context("listing the Kubernetes nodes")?;
    for n in &list.items {
        let name = n.metadata.name.clone().unwrap_or_default();
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if name == host {
            o.node_exists = true;
            o.node_ready = ready;
            let spec = n.spec.clone().unwrap_or_default();
            o.out_of_service =
                spec.taints.unwrap_or_default().iter().any(|t| t.key == "node.kubernetes.io/out-of-service");
        } else if !ready && files.after.machine(&name).is_some() {
            o.others_not_ready.push(name);
        }
    }
    // Ceph and Rook.
    if let Some(rook) = &cx.cluster.rook {
        let marks = rook_marks(cx, host).await?;
        if !marks.toolbox {
            bail!(
                "the Rook toolbox (deployment {}/{}) is missing, and homelab reads Ceph through it\n  hint: run `homelab up` once (it deploys the toolbox of the pinned Rook release), then this again",
                crate::ceph::NAMESPACE,
                crate::ceph::TOOLBOX
            );
        }
        o.operator_replicas = marks.operator_replicas;
        o.in_ceph_spec = marks.in_ceph_spec;
        let ceph = |args: &'static [&'static str]| {
            let sr = sr.clone();
            async move { sr.run(&crate::ceph::cmd(args, true)).await }
        };
        let (st, tree, df, pools, pgs) = tokio::try_join!(
            ceph(&["status"]),
            ceph(&["osd", "tree"]),
            ceph(&["osd", "df"]),
            ceph(&["osd", "pool", "ls", "detail"]),
            ceph(&["pg", "ls"])
        )?;
        o.ceph = Some(CephView {
            status: Some(crate::ceph::parse_status(&st)?),
            osds: crate::ceph::parse_osds(&tree, Some(&df))?,
            buckets: crate::ceph::parse_buckets(&tree)?,
            pools: crate::ceph::parse_pools(&pools)?,
            pgs: crate::ceph::parse_pgs(&pgs)?,
            failure_domains: rook.pools.iter().map(|p| (p.name.clone(), p.failure_domain.name().to_owned())).collect(),
        });
    }
    if let Some(k) = &cx.cluster.kafka {
        let a = crate::engine::phases::manifests::applier(cx, crate::foundation::phase_id::PhaseId::Kafka).await?;
        let v = a.get(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name).await?;
        o.kafka_ready = Some(v.and_then(|v| serde_json::to_value(v).ok()).is_some_and(|v| kafka_ready(&v)));
    }
    Ok(o)
}

/// What the Rook side shows of a removal of `host`, read from the API server alone.
pub struct RookMarks {
    /// Replicas of the Rook operator Deployment.
    pub operator_replicas: Option<i64>,
    /// The CephCluster still lists `host` under `storage.nodes`.
    pub in_ceph_spec: bool,
    /// The Rook toolbox Deployment exists (homelab reads Ceph through it).
    pub toolbox: bool,
}

pub async fn rook_marks(cx: &Arc<Ctx>, host: &str) -> Result<RookMarks> {
    let deps: Api<Deployment> = Api::namespaced(cx.kube().await?, crate::ceph::NAMESPACE);
    let a = crate::engine::phases::manifests::applier(cx, crate::foundation::phase_id::PhaseId::Storage).await?;
    let (operator, toolbox, c) = tokio::try_join!(
        async { deps.get_opt("rook-ceph-operator").await.map_err(anyhow::Error::from) },
        async { deps.get_opt(crate::ceph::TOOLBOX).await.map_err(anyhow::Error::from) },
        a.get("ceph.rook.io/v1", "CephCluster", Some(crate::ceph::NAMESPACE), crate::config::Rook::CLUSTER_NAME),
    )?;
    let c = c.and_then(|c| serde_json::to_value(c).ok());
    Ok(RookMarks {
        operator_replicas: operator.and_then(|d| d.spec.and_then(|s| s.replicas)).map(i64::from),
        in_ceph_spec: c
            .as_ref()
            .and_then(|c| c.pointer("/spec/storage/nodes").and_then(Value::as_array).cloned())
            .is_some_and(|ns| ns.iter().any(|n| n["name"] == host)),
        toolbox: toolbox.is_some(),
    })
}

/// `ceph osd tree` through the toolbox on `survivor`: every OSD with its host and up/in.
pub async fn osd_tree(cx: &Arc<Ctx>, survivor: &str) -> Result<Vec<crate::ceph::Osd>> {
    let out = cx.remote(survivor).await?.run(&crate::ceph::cmd(&["osd", "tree"], true)).await?;
    crate::ceph::parse_osds(&out, None)
}

fn kafka_ready(v: &Value) -> bool {
    crate::kube::wait::Expect::condition("Ready", "True").unmet(v).is_none()
}
