//! Carrying out one `reset` step and waiting until the systems show it done, with a
//! deadline that says what it waited for. Each step is safe to run again: deletes of what
//! is gone are no-ops, and the next run observes before it acts.

use super::decide::{Project, Step};
use super::observe;
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::engine::phases::manifests::{self as addons, Download};
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Probe, WaitSpec, wait_for};
use crate::kube::apply::Applier;
use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;
use std::time::Duration;

pub fn phase_of(s: &Step) -> PhaseId {
    match s {
        Step::DeleteDatabase { .. } | Step::RemoveBundle { project: Project::Cnpg } => PhaseId::Database,
        Step::DeleteKafkaApps { .. }
        | Step::DeleteKafka { .. }
        | Step::DeleteClaims { .. }
        | Step::RemoveBundle { project: Project::Strimzi } => PhaseId::Kafka,
        Step::DeletePools { .. } | Step::ConfirmCleanup | Step::DeleteCephCluster | Step::RemoveBundle { .. } => {
            PhaseId::Storage
        }
        Step::RemoveMicrok8s { .. } | Step::ForgetKubeconfig => PhaseId::Kubernetes,
        Step::Release { .. } => PhaseId::Machines,
    }
}

fn deadline(cx: &Ctx, s: &Step) -> Duration {
    cx.opts.timings.deadline(Duration::from_secs(s.budget() * 2))
}

/// An object a step deletes or waits for.
struct Obj {
    api_version: String,
    kind: String,
    ns: Option<String>,
    name: String,
}

impl Obj {
    fn new(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Obj {
        Obj { api_version: api_version.into(), kind: kind.into(), ns: ns.map(str::to_owned), name: name.into() }
    }
}

/// Deletes `delete` (gone already, or a kind no longer served, counts as done), then waits
/// until it and `also` (what goes with it: owned claims) are gone, naming what holds them.
async fn delete_and_wait(
    cx: &Ctx,
    a: &Applier,
    s: &Step,
    what: &str,
    delete: Vec<Obj>,
    also: Vec<Obj>,
    hint: &str,
) -> Result<()> {
    for o in &delete {
        a.delete(&o.api_version, &o.kind, o.ns.as_deref(), &o.name).await?;
    }
    let objs: Vec<Obj> = delete.into_iter().chain(also).collect();
    let spec = WaitSpec {
        phase: phase_of(s),
        target: s.target(),
        what: what.to_owned(),
        deadline: deadline(cx, s),
        backoff: cx.opts.timings.kube_poll,
        hint: hint.to_owned(),
    };
    wait_for(&cx.ui, &spec, || async {
        let mut left = Vec::new();
        for o in &objs {
            // (`get` reads a kind that is no longer served as gone.)
            let Some(obj) = a.get(&o.api_version, &o.kind, o.ns.as_deref(), &o.name).await? else { continue };
            let v = serde_json::to_value(&obj).unwrap_or_default();
            // What holds it, in its controller's words (a blocked CephCluster says why).
            let why = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "DeletionIsBlocked"))
                .and_then(|c| c["message"].as_str())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            left.push(format!("{} {}{why}", o.kind, o.name));
        }
        Ok(if left.is_empty() {
            Probe::Ready(())
        } else {
            Probe::Pending(Some(format!("still there: {}", left.join(", "))))
        })
    })
    .await
}

/// Runs one step (the caller has reported it).
pub async fn run_step(cx: &Ctx, a: Option<&Applier>, s: &Step) -> Result<()> {
    let api = || {
        a.ok_or_else(|| {
            anyhow!("the Kubernetes API does not answer\n  hint: `homelab status` says what is down; run `homelab reset` again once the API answers")
        })
    };
    match s {
        Step::DeleteDatabase { ns, name } => {
            let a = api()?;
            // Its claims are owned by the Cluster: they go with it.
            let claims =
                a.list("v1", "PersistentVolumeClaim", Some(ns), Some(&format!("cnpg.io/cluster={name}"))).await?;
            let also = claims
                .iter()
                .filter_map(|c| c.metadata.name.as_deref())
                .map(|c| Obj::new("v1", "PersistentVolumeClaim", Some(ns), c))
                .collect();
            let hint = format!(
                "`kubectl -n {ns} get cluster,pvc` and the CloudNativePG operator's log (`homelab diagnose` collects it)"
            );
            delete_and_wait(
                cx,
                a,
                s,
                &format!("PostgreSQL Cluster {name} and its volumes gone"),
                vec![Obj::new("postgresql.cnpg.io/v1", "Cluster", Some(ns), name)],
                also,
                &hint,
            )
            .await
        }
        Step::DeleteKafkaApps { items } | Step::DeleteKafka { items } => {
            let a = api()?;
            let k = cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("the cluster declares no `kafka:`"))?;
            let objs = items
                .iter()
                .map(|(kind, name)| Obj::new(&k.release.api_version, kind, Some(&k.namespace), name))
                .collect();
            let hint = format!(
                "`kubectl -n {} get kafka,kafkanodepool,kafkatopic,kafkauser,kafkabridge`; a topic or user waits for the entity operator to take its finalizer off",
                k.namespace
            );
            delete_and_wait(cx, a, s, "Strimzi's resources gone", objs, vec![], &hint).await
        }
        Step::DeleteClaims { ns, names } => {
            let objs = names.iter().map(|n| Obj::new("v1", "PersistentVolumeClaim", Some(ns), n)).collect();
            let hint = format!("`kubectl -n {ns} get pvc`: a claim a pod still mounts stays until the pod is gone");
            delete_and_wait(cx, api()?, s, "the volume claims gone", objs, vec![], &hint).await
        }
        Step::DeletePools { pools, classes } => {
            let objs = pools
                .iter()
                .map(|p| Obj::new("ceph.rook.io/v1", "CephBlockPool", Some(Rook::NAMESPACE), p))
                .chain(classes.iter().map(|c| Obj::new("storage.k8s.io/v1", "StorageClass", None, c)))
                .collect();
            let hint =
                "`kubectl -n rook-ceph get cephblockpool`: a pool with images waits for its volumes to be deleted";
            delete_and_wait(cx, api()?, s, "the pools and StorageClasses gone", objs, vec![], hint).await
        }
        Step::ConfirmCleanup => api()?
            .merge_patch(
                "ceph.rook.io/v1",
                "CephCluster",
                Some(Rook::NAMESPACE),
                Rook::CLUSTER_NAME,
                &crate::render::rook::cleanup_patch(),
            )
            .await
            .context("setting the CephCluster's cleanupPolicy"),
        Step::DeleteCephCluster => {
            let objs = vec![Obj::new("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME)];
            let hint = "`kubectl -n rook-ceph get jobs -l app=rook-ceph-cleanup` and the operator's log; the operator must run for the cluster to go";
            delete_and_wait(
                cx,
                api()?,
                s,
                "the CephCluster gone after Rook's cleanup Job ran on every node",
                objs,
                vec![],
                hint,
            )
            .await
        }
        Step::RemoveBundle { project } => remove_bundle(cx, api()?, s, *project).await,
        Step::RemoveMicrok8s { host } => {
            let r = cx.remote(host).await?;
            let cmd = crate::ssh::Cmd {
                argv: vec!["snap".into(), "remove".into(), "microk8s".into(), "--purge".into()],
                sudo: true,
                stdin: None,
                timeout: deadline(cx, s),
                read_only: false,
            };
            let out = r.run(&cmd).await?;
            if out.code != Some(0) {
                bail!(
                    "`snap remove microk8s --purge` failed on {host} (exit {:?}): {}\n  hint: run it on {host} by hand (`sudo snap remove microk8s --purge`), then `homelab reset` again; a reboot clears what its remove hook leaves (Calico's interfaces)",
                    out.code,
                    out.stderr.trim()
                );
            }
            Ok(())
        }
        Step::ForgetKubeconfig => {
            let p = crate::engine::cluster_api::saved_path(&cx.world.state_dir);
            match std::fs::remove_file(&p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(anyhow!(
                    "cannot delete {}: {e}\n  hint: delete it by hand; it names a cluster that is gone",
                    p.display()
                )),
            }
        }
        Step::Release { host, erase } => {
            let maas = cx.maas()?;
            let id = cx.facts(host).system_id.ok_or_else(|| {
                anyhow!("MAAS does not know {host} by its MAC any more, so homelab cannot release it\n  hint: release or delete it in the MAAS UI if it is still listed there")
            })?;
            let ip = cx.facts(host).ip;
            maas.release_erasing(&id, "homelab reset", erase.as_deref())
                .await
                .context("releasing the machine in MAAS")?;
            // Deployed again, it gets a new host key: the old one must not stop the next `up`.
            cx.forget_remote(host).await;
            if let Some(ip) = ip {
                cx.world.hosts.forget_host_key(&ip).await?;
            }
            Ok(())
        }
    }
}

/// Deletes the objects of a project's pinned release (its operator, RBAC, webhooks, CRDs
/// last) and the namespace homelab made for it, then waits for the operator to be gone.
async fn remove_bundle(cx: &Ctx, a: &Applier, s: &Step, project: Project) -> Result<()> {
    let microk8s = cx.cluster.kubernetes.is_microk8s();
    let mut objs: Vec<Value> = match project {
        Project::Rook => {
            let r = cx.cluster.rook.as_ref().ok_or_else(|| anyhow!("the cluster declares no `rook:`"))?;
            let files = pinned(cx, "rook", &r.release.version, &r.release.files).await?;
            let (bundle, install_only) = crate::render::rook::bundle_objects(&r.release, &files, microk8s)?;
            let mut v = crate::render::rook::toolbox_objects(&r.release, &files, &r.ceph_image)?;
            v.extend(bundle);
            v.extend(install_only);
            v
        }
        Project::Strimzi => {
            let k = cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("the cluster declares no `kafka:`"))?;
            let files = pinned(cx, "strimzi", &k.release.version, &k.release.files).await?;
            crate::render::strimzi::install_objects(&k.release, &files, &k.namespace)?
        }
        Project::Cnpg => {
            let d = cx.cluster.database.as_ref().ok_or_else(|| anyhow!("the cluster declares no `database:`"))?;
            let files = pinned(cx, "cloudnative-pg", &d.release.version, &d.release.files).await?;
            let mut v = crate::render::cnpg::install_objects(&d.release, &files)?;
            v.push(crate::render::cnpg::namespace(d));
            v
        }
    };
    // Everything else first, the CRDs and Namespaces last (their contents go with them).
    objs.sort_by_key(|o| matches!(o["kind"].as_str(), Some("CustomResourceDefinition" | "Namespace")));
    for o in &objs {
        let (av, kind) = (o["apiVersion"].as_str().unwrap_or_default(), o["kind"].as_str().unwrap_or_default());
        let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        a.delete(av, kind, o.pointer("/metadata/namespace").and_then(Value::as_str), name).await?;
    }
    let waits = match observe::operator(cx, project) {
        Some((ns, name)) => {
            vec![Obj::new("apps/v1", "Deployment", Some(&ns), &name), Obj::new("v1", "Namespace", None, &ns)]
        }
        None => vec![],
    };
    delete_and_wait(
        cx,
        a,
        s,
        &format!("the {} operator and its namespace gone", project.name()),
        vec![],
        waits,
        "`kubectl get ns` — a namespace stays Terminating while an object in it keeps a finalizer",
    )
    .await
}

/// The verified files of a pinned release, through the same download (and cache) as `up`.
async fn pinned(
    cx: &Ctx,
    project: &'static str,
    version: &str,
    files: &[crate::catalog::PinnedFile],
) -> Result<addons::Files> {
    let download = Download::default();
    download.start(cx.world.manifests.clone(), project, version.to_owned(), addons::wanted_files(files));
    download.files().await
}
