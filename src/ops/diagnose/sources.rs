//! What `homelab diagnose` reads, one item per file of the bundle, each on its own: the
//! status report, MAAS's view of each machine, per host the snap list, `microk8s status` and
//! the service journals' tails, the Kubernetes objects homelab makes with their conditions,
//! Nodes and events, the operators' log tails, Ceph through the toolbox, and the last run
//! logs. Every source is optional: an item that fails is an entry with its error. Secret
//! objects are never read here (the redaction reads Secrets apart, for their values only).

use super::Item;
use crate::engine::context::Ctx;
use crate::kube::apply::Applier;
use anyhow::{Context as _, Result, anyhow};
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

/// Lines of a journal or an operator log kept.
pub const LOG_LINES: u32 = 500;

/// The commands each host answers (file, argv, needs root); the journals' tails are
/// [`LOG_LINES`] long.
pub fn host_commands() -> Vec<(&'static str, Vec<String>, bool)> {
    let journal =
        |unit: &str| ["journalctl", "-u", unit, "--no-pager", "-n", &LOG_LINES.to_string()].map(str::to_owned).to_vec();
    vec![
        ("snap-list.txt", ["snap", "list"].map(str::to_owned).to_vec(), false),
        ("microk8s-status.txt", ["microk8s", "status"].map(str::to_owned).to_vec(), true),
        ("journal-kubelite.txt", journal("snap.microk8s.daemon-kubelite"), true),
        ("journal-k8s-dqlite.txt", journal("snap.microk8s.daemon-k8s-dqlite"), true),
    ]
}

/// The kinds every namespace of homelab's is listed for (apiVersion, kind, file name).
const WORKLOADS: &[(&str, &str, &str)] = &[
    ("apps/v1", "Deployment", "deployments.json"),
    ("v1", "Pod", "pods.json"),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims.json"),
];

/// The objects homelab makes, each kind in the namespace it lives in: (namespace,
/// apiVersion, kind, file name). Strimzi's at the version its pinned release serves.
pub fn objects(cx: &Ctx) -> Vec<(String, String, &'static str, &'static str)> {
    let mut v = Vec::new();
    if cx.cluster.rook.is_some() {
        let ns = crate::config::Rook::NAMESPACE.to_owned();
        v.push((ns.clone(), "ceph.rook.io/v1".to_owned(), "CephCluster", "cephclusters.json"));
        v.push((ns, "ceph.rook.io/v1".to_owned(), "CephBlockPool", "cephblockpools.json"));
    }
    if let Some(k) = &cx.cluster.kafka {
        for (kind, file) in [
            ("Kafka", "kafkas.json"),
            ("KafkaNodePool", "kafkanodepools.json"),
            ("KafkaTopic", "kafkatopics.json"),
            ("KafkaUser", "kafkausers.json"),
            ("KafkaBridge", "kafkabridges.json"),
        ] {
            v.push((k.namespace.clone(), k.release.api_version.clone(), kind, file));
        }
    }
    if let Some(d) = &cx.cluster.database {
        v.push((d.namespace.clone(), "postgresql.cnpg.io/v1".to_owned(), "Cluster", "postgresql-clusters.json"));
    }
    for ns in namespaces(cx) {
        for (av, kind, file) in WORKLOADS {
            v.push((ns.clone(), (*av).to_owned(), kind, file));
        }
    }
    v
}

/// The operators whose log tails are read: namespace, Deployment.
pub fn operators(cx: &Ctx) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if cx.cluster.rook.is_some() {
        v.push((crate::config::Rook::NAMESPACE.to_owned(), "rook-ceph-operator".to_owned()));
    }
    if let Some(k) = &cx.cluster.kafka {
        v.push((k.namespace.clone(), "strimzi-cluster-operator".to_owned()));
    }
    if cx.cluster.database.is_some() {
        v.push(("cnpg-system".to_owned(), "cnpg-controller-manager".to_owned()));
    }
    v
}

/// The namespaces homelab runs things in.
pub fn namespaces(cx: &Ctx) -> Vec<String> {
    let mut v: Vec<String> = operators(cx).into_iter().map(|(ns, _)| ns).collect();
    if let Some(d) = &cx.cluster.database {
        v.push(d.namespace.clone());
    }
    v.sort();
    v.dedup();
    v
}

fn pretty(v: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(v)?)
}

/// An object as the bundle keeps it: without managedFields and the last-applied annotation
/// (noise, and the annotation repeats the whole object).
fn trimmed(o: &kube::api::DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    v
}

/// Every item of the bundle but the run logs, as futures to run with a bound each.
pub fn items(
    cx: &Arc<Ctx>,
    machines: Option<Vec<crate::maas::Machine>>,
    kube: Option<(Arc<Applier>, kube::Client)>,
    kube_error: Option<String>,
) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut add = |path: String, source: String, fut: BoxFuture<'static, Result<String>>| {
        items.push(Item { path, source, fut });
    };
    {
        let cx = cx.clone();
        add(
            "status.json".into(),
            "homelab status -o json".into(),
            Box::pin(async move { Ok(crate::ops::status::report::json_line(&crate::ops::status::gather(&cx).await)) }),
        );
    }
    // MAAS: each machine it deploys (as the addresses were read), and its newest events.
    if let (Some(maas), Some(machines)) = (cx.world.maas.clone(), machines.filter(|m| !m.is_empty())) {
        let text = pretty(&machines);
        add(
            "maas/machines.json".into(),
            format!("GET machines/?mac_address=… ({} machines)", machines.len()),
            Box::pin(async move { text }),
        );
        add(
            "maas/events.json".into(),
            "GET events/?op=query&id=<each machine> (newest 20)".into(),
            Box::pin(async move {
                let mut out = serde_json::Map::new();
                for m in machines {
                    let page = maas.events(&m.system_id, "DEBUG", 20).await?;
                    out.insert(m.hostname.clone(), serde_json::to_value(page.events)?);
                }
                pretty(&out)
            }),
        );
    }
    // Each host over SSH.
    for m in cx.cluster.machines.iter() {
        for (file, argv, sudo) in host_commands() {
            let cx = cx.clone();
            let host = m.hostname.clone();
            let cmd = crate::ssh::Cmd {
                argv,
                sudo,
                stdin: None,
                timeout: std::time::Duration::from_secs(30),
                read_only: true,
            };
            add(
                format!("hosts/{host}/{file}"),
                format!("ssh {host} {}", cmd.display()),
                Box::pin(async move {
                    let r = cx.remote(&host).await?;
                    let out = r.run(&cmd).await?;
                    let mut text = out.stdout;
                    if !out.stderr.trim().is_empty() {
                        text.push_str("\n--- stderr ---\n");
                        text.push_str(&out.stderr);
                    }
                    match out.code {
                        Some(0) => Ok(text),
                        code => Err(anyhow!("exit {code:?}: {}", text.trim())),
                    }
                }),
            );
        }
    }
    // Kubernetes: what homelab makes, Nodes, events, the operators' log tails.
    match kube {
        None => {
            let why = kube_error.unwrap_or_else(|| "the Kubernetes API is not reachable".into());
            add("kubernetes/".into(), "the Kubernetes API".into(), Box::pin(async move { Err(anyhow!(why)) }));
        }
        Some((a, client)) => {
            let mut lists: Vec<(String, &str, String, Option<String>)> = vec![
                ("v1".into(), "Node", "kubernetes/nodes.json".into(), None),
                ("v1".into(), "Event", "kubernetes/events.json".into(), None),
            ];
            for (ns, av, kind, file) in objects(cx) {
                lists.push((av, kind, format!("kubernetes/{ns}/{file}"), Some(ns)));
            }
            for (av, kind, path, ns) in lists {
                let a = a.clone();
                add(
                    path,
                    format!("GET {kind} ({av}){}", ns.as_deref().map(|n| format!(" in {n}")).unwrap_or_default()),
                    Box::pin(async move {
                        let objs = a.list(&av, kind, ns.as_deref(), None).await?;
                        pretty(&objs.iter().map(trimmed).collect::<Vec<_>>())
                    }),
                );
            }
            for (ns, deploy) in operators(cx) {
                let a = a.clone();
                let client = client.clone();
                add(
                    format!("logs/{ns}/{deploy}.txt"),
                    format!("the log of Deployment {ns}/{deploy}'s pod (last {LOG_LINES} lines)"),
                    Box::pin(async move { operator_log(&a, client, &ns, &deploy).await }),
                );
            }
        }
    }
    // Ceph, through the toolbox on the first control plane that answers (looked for once).
    if cx.cluster.rook.is_some() && cx.cluster.kubernetes.is_microk8s() {
        let via: Arc<tokio::sync::OnceCell<std::result::Result<String, String>>> = Arc::default();
        for (file, args) in [
            ("ceph/status.json", &["status"][..]),
            ("ceph/health-detail.json", &["health", "detail"][..]),
            ("ceph/osd-tree.json", &["osd", "tree"][..]),
            ("ceph/crash-ls.json", &["crash", "ls"][..]),
        ] {
            let (cx, via) = (cx.clone(), via.clone());
            let cmd = crate::ceph::cmd(args, true);
            add(
                file.into(),
                cmd.display(),
                Box::pin(async move {
                    let via = via
                        .get_or_init(|| async {
                            crate::engine::phases::storage::toolbox_host(&cx).await.map_err(|e| format!("{e:#}"))
                        })
                        .await
                        .clone()
                        .map_err(|e| anyhow!(e))?;
                    let out = cx.remote(&via).await?.run(&cmd).await?;
                    match out.code {
                        Some(0) => Ok(out.stdout),
                        code => Err(anyhow!("exit {code:?} on {via}: {}", out.stderr.trim())),
                    }
                }),
            );
        }
    }
    items
}

/// The tail of the log of a Deployment's pod (the first one its selector finds).
async fn operator_log(a: &Applier, client: kube::Client, ns: &str, deploy: &str) -> Result<String> {
    let d = a
        .get("apps/v1", "Deployment", Some(ns), deploy)
        .await?
        .ok_or_else(|| anyhow!("Deployment {ns}/{deploy} does not exist"))?;
    let d = serde_json::to_value(&d)?;
    let sel: Vec<String> = d
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect())
        .unwrap_or_default();
    let pods = a.list("v1", "Pod", Some(ns), Some(&sel.join(","))).await?;
    let pod = pods
        .first()
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| anyhow!("no pod of Deployment {ns}/{deploy} ({})", sel.join(",")))?;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, ns);
    let params = kube::api::LogParams {
        tail_lines: Some(i64::from(LOG_LINES)),
        limit_bytes: Some(super::MAX_ITEM_BYTES as i64),
        ..Default::default()
    };
    api.logs(&pod, &params).await.with_context(|| format!("reading the log of pod {ns}/{pod}"))
}
