//! What `reset` reads before deciding, read-only: over the API, what homelab made that is
//! still there (the database Cluster, Kafka with its node pools, topics, users and bridge,
//! their volume claims, the pools and StorageClasses, the CephCluster and whether its cleanup
//! is confirmed, each operator's Deployment and CRDs); over SSH, whether each machine runs
//! MicroK8s; from MAAS, each deployed machine's status.

use super::decide::{CephClusterView, HostView, Observed, Project};
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::kube::apply::Applier;
use anyhow::Result;
use serde_json::Value;

/// The CRD groups of each operator bundle.
pub fn groups(p: Project) -> &'static [&'static str] {
    match p {
        Project::Rook => &["ceph.rook.io", "objectbucket.io", "csi.ceph.io"],
        Project::Strimzi => &["kafka.strimzi.io", "core.strimzi.io", "access.strimzi.io"],
        Project::Cnpg => &["postgresql.cnpg.io"],
    }
}

/// The operator Deployment of each bundle: namespace, name.
pub fn operator(cx: &Ctx, p: Project) -> Option<(String, String)> {
    match p {
        Project::Rook => {
            cx.cluster.rook.as_ref().map(|_| (Rook::NAMESPACE.to_owned(), "rook-ceph-operator".to_owned()))
        }
        Project::Strimzi => {
            cx.cluster.kafka.as_ref().map(|k| (k.namespace.clone(), "strimzi-cluster-operator".to_owned()))
        }
        Project::Cnpg => {
            cx.cluster.database.as_ref().map(|_| ("cnpg-system".to_owned(), "cnpg-controller-manager".to_owned()))
        }
    }
}

fn names(objs: &[kube::api::DynamicObject]) -> Vec<String> {
    objs.iter().filter_map(|o| o.metadata.name.clone()).collect()
}

/// Reads the cluster's side; `a` is None when the API does not answer.
pub async fn observe(cx: &Ctx, a: Option<&Applier>) -> Result<Observed> {
    let mut o = Observed { api: a.is_some(), ..Default::default() };
    if let Some(a) = a {
        // (`get` and `list` read a kind that is no longer served as none; other errors stop
        // the reset before it changes anything.)
        if let Some(d) = &cx.cluster.database {
            if a.get("postgresql.cnpg.io/v1", "Cluster", Some(&d.namespace), &d.name).await?.is_some() {
                o.database = Some((d.namespace.clone(), d.name.clone()));
            }
            o.app_namespaces.push(d.namespace.clone());
            let sel = format!("cnpg.io/cluster={}", d.name);
            for c in names(&a.list("v1", "PersistentVolumeClaim", Some(&d.namespace), Some(&sel)).await?) {
                o.claims.push((d.namespace.clone(), c));
            }
        }
        if let Some(k) = &cx.cluster.kafka {
            // Strimzi's kinds at the version the pinned release serves (v1 from Strimzi 1.0).
            let (av, ns) = (k.release.api_version.as_str(), Some(k.namespace.as_str()));
            let sel = format!("strimzi.io/cluster={}", k.name);
            if let Some(b) = &k.bridge
                && a.get(av, "KafkaBridge", ns, &b.name).await?.is_some()
            {
                o.kafka_apps.push(("KafkaBridge".into(), b.name.clone()));
            }
            for kind in ["KafkaUser", "KafkaTopic"] {
                for n in names(&a.list(av, kind, ns, Some(&sel)).await?) {
                    o.kafka_apps.push((kind.to_owned(), n));
                }
            }
            for n in names(&a.list(av, "KafkaNodePool", ns, Some(&sel)).await?) {
                o.kafka.push(("KafkaNodePool".into(), n));
            }
            if a.get(av, "Kafka", ns, &k.name).await?.is_some() {
                o.kafka.push(("Kafka".into(), k.name.clone()));
            }
            o.app_namespaces.insert(0, k.namespace.clone());
            for c in names(&a.list("v1", "PersistentVolumeClaim", ns, Some(&sel)).await?) {
                o.claims.push((k.namespace.clone(), c));
            }
        }
        if let Some(r) = &cx.cluster.rook {
            o.pools = names(&a.list("ceph.rook.io/v1", "CephBlockPool", Some(Rook::NAMESPACE), None).await?);
            for p in &r.pools {
                if let Some(sc) = &p.storage_class
                    && a.get("storage.k8s.io/v1", "StorageClass", None, &sc.name).await?.is_some()
                {
                    o.classes.push(sc.name.clone());
                }
            }
            if let Some(c) = a.get("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME).await? {
                let v = serde_json::to_value(&c)?;
                o.ceph_cluster = Some(CephClusterView {
                    confirmed: v.pointer("/spec/cleanupPolicy/confirmation").and_then(Value::as_str)
                        == Some(crate::render::rook::CLEANUP_CONFIRMATION),
                    deleting: v.pointer("/metadata/deletionTimestamp").is_some(),
                });
            }
        }
        let crds = a.list("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, None).await?;
        let crd_groups: Vec<String> = crds
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .filter_map(|c| c.pointer("/spec/group").and_then(Value::as_str).map(str::to_owned))
            .collect();
        for p in [Project::Rook, Project::Strimzi, Project::Cnpg] {
            let Some((ns, name)) = operator(cx, p) else { continue };
            let mut left = crd_groups.iter().filter(|g| groups(p).contains(&g.as_str())).count();
            if a.get("apps/v1", "Deployment", Some(&ns), &name).await?.is_some() {
                left += 1;
            }
            o.bundles.push((p, left));
        }
    }
    // Each machine: MicroK8s there or not (SSH), MAAS's status for those it deployed.
    let probes = cx.cluster.machines.iter().map(|m| async move {
        let cmd = crate::ssh::Cmd {
            argv: vec!["snap".into(), "list".into(), "microk8s".into()],
            sudo: false,
            stdin: None,
            timeout: std::time::Duration::from_secs(30),
            read_only: true,
        };
        let microk8s = match cx.remote(&m.hostname).await {
            Ok(r) => match r.run(&cmd).await {
                Ok(out) => Some(out.code == Some(0)),
                Err(_) => None,
            },
            Err(_) => None,
        };
        let f = cx.facts(&m.hostname);
        HostView {
            name: m.hostname.clone(),
            microk8s,
            releasable: m.mac.is_some() && !f.maas_controller,
            maas_status: f.status.map(|s| s.name().to_owned()),
        }
    });
    o.hosts = futures::future::join_all(probes).await;
    o.first = cx.cluster.control_planes().next().map(|m| m.hostname.clone());
    o.kubeconfig =
        cx.cluster.kubernetes.is_microk8s() && crate::engine::cluster_api::saved_path(&cx.world.state_dir).exists();
    Ok(o)
}
