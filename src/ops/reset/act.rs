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

/// The kind is no longer served (its CRD is gone, and its objects with it).
fn unserved(e: &anyhow::Error) -> bool {
    let t = format!("{e:#}");
    t.contains("does not serve") || t.contains("404")
}

fn deadline(cx: &Ctx, s: &Step) -> Duration {
    cx.opts.timings.deadline(Duration::from_secs(s.budget() * 2))
}

/// Waits until every (apiVersion, kind, namespace, name) is gone.
async fn gone(
    cx: &Ctx,
    a: &Applier,
    s: &Step,
    what: &str,
    objs: Vec<(String, String, Option<String>, String)>,
    hint: &str,
) -> Result<()> {
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
        for (av, kind, ns, name) in &objs {
            match a.get(av, kind, ns.as_deref(), name).await {
                Ok(Some(o)) => {
                    let v = serde_json::to_value(&o).unwrap_or_default();
                    // What holds it, in its controller's words (a blocked CephCluster says why).
                    let why = v
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|c| c.iter().find(|c| c["type"] == "DeletionIsBlocked"))
                        .and_then(|c| c["message"].as_str())
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default();
                    left.push(format!("{kind} {name}{why}"));
                }
                Ok(None) => {}
                // A kind no longer served: its objects went with its CRD.
                Err(e) if unserved(&e) => {}
                Err(e) => return Err(e),
            }
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
    let api = || a.ok_or_else(|| anyhow!("the Kubernetes API does not answer"));
    match s {
        Step::DeleteDatabase { ns, name } => {
            let a = api()?;
            a.delete("postgresql.cnpg.io/v1", "Cluster", Some(ns), name).await?;
            let mut objs =
                vec![("postgresql.cnpg.io/v1".to_owned(), "Cluster".to_owned(), Some(ns.clone()), name.clone())];
            let sel = format!("cnpg.io/cluster={name}");
            for c in a.list("v1", "PersistentVolumeClaim", Some(ns), Some(&sel)).await? {
                objs.push((
                    "v1".into(),
                    "PersistentVolumeClaim".into(),
                    Some(ns.clone()),
                    c.metadata.name.unwrap_or_default(),
                ));
            }
            gone(cx, a, s, &format!("PostgreSQL Cluster {name} and its volumes gone"), objs, &format!("`kubectl -n {ns} get cluster,pvc` and the CloudNativePG operator's log (`homelab diagnose` collects it)")).await
        }
        Step::DeleteKafkaApps { items } | Step::DeleteKafka { items } => {
            let a = api()?;
            let ns = cx.cluster.kafka.as_ref().map(|k| k.namespace.clone()).unwrap_or_else(|| "kafka".into());
            let mut objs = Vec::new();
            for (kind, name) in items {
                a.delete("kafka.strimzi.io/v1beta2", kind, Some(&ns), name).await?;
                objs.push(("kafka.strimzi.io/v1beta2".to_owned(), kind.clone(), Some(ns.clone()), name.clone()));
            }
            gone(cx, a, s, "Strimzi's resources gone", objs, &format!("`kubectl -n {ns} get kafka,kafkanodepool,kafkatopic,kafkauser,kafkabridge`; a topic or user waits for the entity operator to take its finalizer off")).await
        }
        Step::DeleteClaims { ns, names } => {
            let a = api()?;
            let mut objs = Vec::new();
            for n in names {
                a.delete("v1", "PersistentVolumeClaim", Some(ns), n).await?;
                objs.push(("v1".to_owned(), "PersistentVolumeClaim".to_owned(), Some(ns.clone()), n.clone()));
            }
            gone(
                cx,
                a,
                s,
                "the volume claims gone",
                objs,
                &format!("`kubectl -n {ns} get pvc`: a claim a pod still mounts stays until the pod is gone"),
            )
            .await
        }
        Step::DeletePools { pools, classes } => {
            let a = api()?;
            let mut objs = Vec::new();
            for p in pools {
                a.delete("ceph.rook.io/v1", "CephBlockPool", Some(Rook::NAMESPACE), p).await?;
                objs.push((
                    "ceph.rook.io/v1".to_owned(),
                    "CephBlockPool".to_owned(),
                    Some(Rook::NAMESPACE.to_owned()),
                    p.clone(),
                ));
            }
            for c in classes {
                a.delete("storage.k8s.io/v1", "StorageClass", None, c).await?;
                objs.push(("storage.k8s.io/v1".to_owned(), "StorageClass".to_owned(), None, c.clone()));
            }
            gone(
                cx,
                a,
                s,
                "the pools and StorageClasses gone",
                objs,
                "`kubectl -n rook-ceph get cephblockpool`: a pool with images waits for its volumes to be deleted",
            )
            .await
        }
        Step::ConfirmCleanup => {
            let client = cx.kube().await?;
            let ar = kube::discovery::ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("ceph.rook.io", "v1", "CephCluster"),
                "cephclusters",
            );
            let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(client, Rook::NAMESPACE, &ar);
            api.patch(
                Rook::CLUSTER_NAME,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(crate::render::rook::cleanup_patch()),
            )
            .await
            .context("setting the CephCluster's cleanupPolicy")?;
            Ok(())
        }
        Step::DeleteCephCluster => {
            let a = api()?;
            a.delete("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME).await?;
            let objs = vec![(
                "ceph.rook.io/v1".to_owned(),
                "CephCluster".to_owned(),
                Some(Rook::NAMESPACE.to_owned()),
                Rook::CLUSTER_NAME.to_owned(),
            )];
            gone(cx, a, s, "the CephCluster gone after Rook's cleanup Job ran on every node", objs, "`kubectl -n rook-ceph get jobs -l app=rook-ceph-cleanup` and the operator's log; the operator must run for the cluster to go").await
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
                Err(e) => Err(anyhow!("cannot delete {}: {e}", p.display())),
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
    let download = Download::default();
    let mut objs: Vec<Value> = match project {
        Project::Rook => {
            let r = cx.cluster.rook.as_ref().ok_or_else(|| anyhow!("the cluster declares no `rook:`"))?;
            download.start(
                cx.world.manifests.clone(),
                "rook",
                r.release.version.clone(),
                addons::wanted_files(&r.release.files),
            );
            let files = download.files().await?;
            let (bundle, install_only) = crate::render::rook::bundle_objects(&r.release, &files, microk8s)?;
            let mut v = crate::render::rook::toolbox_objects(&r.release, &files, &r.ceph_image)?;
            v.extend(bundle);
            v.extend(install_only);
            v
        }
        Project::Strimzi => {
            let k = cx.cluster.kafka.as_ref().ok_or_else(|| anyhow!("the cluster declares no `kafka:`"))?;
            download.start(
                cx.world.manifests.clone(),
                "strimzi",
                k.release.version.clone(),
                addons::wanted_files(&k.release.files),
            );
            crate::render::strimzi::install_objects(&k.release, &download.files().await?, &k.namespace)?
        }
        Project::Cnpg => {
            let d = cx.cluster.database.as_ref().ok_or_else(|| anyhow!("the cluster declares no `database:`"))?;
            download.start(
                cx.world.manifests.clone(),
                "cloudnative-pg",
                d.release.version.clone(),
                addons::wanted_files(&d.release.files),
            );
            let mut v = crate::render::cnpg::install_objects(&d.release, &download.files().await?)?;
            v.push(crate::render::cnpg::namespace(d));
            v
        }
    };
    // Everything else first, the CRDs and Namespaces last (their contents go with them).
    objs.sort_by_key(|o| matches!(o["kind"].as_str(), Some("CustomResourceDefinition" | "Namespace")));
    for o in &objs {
        let (av, kind) = (o["apiVersion"].as_str().unwrap_or_default(), o["kind"].as_str().unwrap_or_default());
        let name = o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let ns = o.pointer("/metadata/namespace").and_then(Value::as_str);
        match a.delete(av, kind, ns, name).await {
            Ok(()) => {}
            // A custom resource whose CRD went in an earlier run is gone with it.
            Err(e) if unserved(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let mut waits = Vec::new();
    if let Some((ns, name)) = observe::operator(cx, project) {
        waits.push(("apps/v1".to_owned(), "Deployment".to_owned(), Some(ns.clone()), name));
        waits.push(("v1".to_owned(), "Namespace".to_owned(), None, ns));
    }
    gone(
        cx,
        a,
        s,
        &format!("the {} operator and its namespace gone", project.name()),
        waits,
        "`kubectl get ns` — a namespace stays Terminating while an object in it keeps a finalizer",
    )
    .await
}
