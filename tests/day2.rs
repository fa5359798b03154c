//! Day 2: `replace-node` and `remove-node` against the simulated lab (MAAS, hosts with
//! MicroK8s's remove-node/leave/dqlite behaviour, the API server with evictions and PodGC,
//! Rook over a simulated Ceph with PGs and recovery, Strimzi with broker pods, PDBs and
//! Multi-Attach) and the real upstream files.

mod support;

use homelab::catalog::Catalog;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::remove_node::{RemoveRequest, remove_node};
use homelab::ops::replace_node::{ReplaceRequest, replace_node};
use homelab::sim::hosts::DqRole;
use homelab::sim::lab::{FullLab, FullLabOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// A lab with the seed cluster (edited by `edit`) converged, and its file.
async fn converged(upstream: &Path, edit: impl Fn(String) -> String) -> (FullLab, String, PathBuf) {
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = edit(support::example(&lab, "seed-2023.yaml"));
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    up(&lab, &yaml, upstream).await;
    (lab, yaml, file)
}

async fn up(lab: &FullLab, yaml: &str, up: &Path) -> homelab::engine::runner::RunReport {
    up_out(lab, yaml, up).await.0
}

async fn up_out(lab: &FullLab, yaml: &str, up: &Path) -> (homelab::engine::runner::RunReport, String) {
    support::up_lab(lab, yaml, up).await
}

fn world<'a>(
    lab: &'a FullLab,
    upstream: &'a Path,
) -> impl Fn(&homelab::config::Cluster) -> anyhow::Result<homelab::engine::context::World> + 'a {
    support::lab_world(lab, upstream)
}

async fn remove(
    lab: &FullLab,
    file: &Path,
    req: RemoveRequest,
    upstream: &Path,
    opts: RunOptions,
) -> (anyhow::Result<homelab::ops::remove_node::RemoveReport>, String) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let r = remove_node(file, &req, &cat, &ui, opts, &world(lab, upstream)).await;
    (r, cap.all())
}

fn req(host: &str) -> RemoveRequest {
    RemoveRequest { host: host.into(), dead: false, release: false, erase: None, yes: false, replace_with: None }
}

fn kafka_ready(lab: &FullLab) -> bool {
    support::kafka_ready(lab)
}

fn writes(lab: &FullLab) -> Vec<String> {
    let mut w: Vec<String> = lab
        .api
        .requests()
        .into_iter()
        .filter(|r| ["POST", "PUT", "PATCH", "DELETE"].iter().any(|m| r.starts_with(m)) && !r.ends_with("(dry run)"))
        .collect();
    w.extend(lab.lab.maas.requests().into_iter().filter(|r| r.starts_with("POST") || r.starts_with("PUT")));
    w
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_a_live_pc_3_4_3_keeps_ceph_readable_and_three_voters() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, yaml, file) = converged(&upstream, |y| y).await;
    assert!(lab.rook.ceph().clean(), "seed cluster is clean");
    let old_osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    let (new_name, mac, _) = lab.lab.add_machine(3, Status::Ready);
    let (stop, watch) = support::watch_readable(&lab);
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let rq = ReplaceRequest {
        old: "kvm5".into(),
        mac: mac.clone(),
        hostname: None,
        dead: false,
        release: true,
        erase: Some("quick".into()),
        ..Default::default()
    };
    let r = replace_node(&file, &rq, &cat, &ui, RunOptions::fast(), &world(&lab, &upstream)).await;
    stop.store(true, Ordering::Relaxed);
    let out = cap.all();
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    let unreadable = watch.await.unwrap();
    assert!(unreadable.is_empty(), "Ceph stopped serving some PGs: {:?}", &unreadable[..unreadable.len().min(5)]);
    assert_eq!(r.new_hostname, new_name);
    // 3 nodes again, the new one in, the old one gone.
    let names: Vec<String> = lab.hosts.nodes().iter().map(|n| n.name.clone()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&new_name) && !names.contains(&"kvm5".to_owned()), "{names:?}");
    // Three voters, the new PC among them.
    let voters: Vec<String> =
        lab.hosts.dqlite("maas").into_iter().filter(|(_, r)| *r == DqRole::Voter).map(|(h, _)| h).collect();
    assert_eq!(voters.len(), 3, "{voters:?}");
    assert!(voters.contains(&new_name), "{voters:?}");
    // Ceph: clean, the old OSD purged once, the new one in.
    assert!(lab.rook.ceph().clean(), "{:?}", lab.rook.ceph().pgs().iter().map(|p| p.state.clone()).collect::<Vec<_>>());
    assert_eq!(lab.rook.purges_of(old_osd), 1);
    assert!(lab.rook.ceph().osds.values().any(|o| o.host == new_name));
    assert!(kafka_ready(&lab), "{out}");
    assert!(
        matches!(lab.lab.maas.status("kvm5"), Some(Status::DiskErasing) | Some(Status::Ready)),
        "{:?}",
        lab.lab.maas.status("kvm5")
    );
    assert_eq!(lab.lab.maas.erase_of("kvm5").as_deref(), Some("quick"));
    // One line of the file changed.
    let after = std::fs::read_to_string(&file).unwrap();
    let changed: Vec<(&str, &str)> = yaml.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(yaml.lines().count(), after.lines().count());
    assert!(changed[0].1.contains(&new_name) && changed[0].1.contains(&mac), "{changed:?}");
    assert!(out.contains("time per step"), "{out}");
    // The next up changes nothing.
    let (r, out) = up_out(&lab, &after, &upstream).await;
    assert_eq!(r.changes, 0, "the next up changed something:\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_a_dead_pc_ends_with_two_machines_ceph_clean_and_kafka_moved() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, yaml, file) = converged(&upstream, |y| y).await;
    assert!(kafka_ready(&lab));
    let old_osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    // kvm5 dies: its sshd is gone, MAAS reads its power as off.
    lab.hosts.power_off("kvm5");
    lab.lab.maas.power_off("kvm5");
    let rq = RemoveRequest { dead: true, release: true, yes: true, ..req("kvm5") };
    let (r, out) = remove(&lab, &file, rq, &upstream, RunOptions::fast()).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(r.dead);
    assert!(out.contains("taint node kvm5 node.kubernetes.io/out-of-service"), "{out}");
    assert!(out.contains("microk8s remove-node kvm5 --force on maas"), "{out}");
    let mut names: Vec<String> = lab.hosts.nodes().iter().map(|n| n.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["kvm4", "maas"]);
    {
        let ceph = lab.rook.ceph();
        assert!(ceph.clean(), "{:?}", ceph.pgs().iter().map(|p| p.state.clone()).collect::<Vec<_>>());
        assert_eq!(ceph.pools.get(".mgr").map(|p| p.size), Some(2));
        assert_eq!(ceph.pools.get("replicapool").map(|p| p.size), Some(2));
        assert!(!ceph.osds.contains_key(&old_osd));
    }
    assert_eq!(lab.rook.purges_of(old_osd), 1);
    // Brokers and ZooKeeper rescheduled on the survivors and Ready.
    assert!(kafka_ready(&lab), "{out}");
    let pods = lab.api.objects("", "pods", Some("kafka"));
    assert!(!pods.is_empty());
    assert!(pods.iter().all(|p| p["spec"]["nodeName"] != "kvm5"), "{pods:?}");
    // Released without erase (a dead PC cannot boot to erase).
    assert_eq!(lab.lab.maas.erase_of("kvm5"), None);
    assert!(matches!(lab.lab.maas.status("kvm5"), Some(Status::Releasing) | Some(Status::Ready)));
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(!after.contains("kvm5"));
    assert_eq!(after.lines().count(), yaml.lines().count() - 1);
    let (r, out) = up_out(&lab, &after, &upstream).await;
    assert_eq!(r.changes, 0, "the next up changed something:\n{out}");
    // A rerun of the removal finds nothing to do.
    let (r, out) =
        remove(&lab, &file, RemoveRequest { dead: true, yes: true, ..req("kvm5") }, &upstream, RunOptions::fast())
            .await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(r.steps.is_empty() && out.contains("nothing to do") && out.contains("MAAS still knows kvm5"), "{out}");
    // A typo is not a finished removal: no such machine anywhere is a usage error (exit 2)
    // with the nearest name, and nothing is touched.
    let (r, out) =
        remove(&lab, &file, RemoveRequest { dead: true, yes: true, ..req("kvm44") }, &upstream, RunOptions::fast())
            .await;
    let e = r.expect_err("a typo must fail");
    assert!(
        matches!(
            e.downcast_ref::<homelab::foundation::error::Failure>(),
            Some(homelab::foundation::error::Failure::Usage(_))
        ),
        "{e:#}"
    );
    let msg = format!("{e:#}");
    assert!(msg.contains("no machine named kvm44") && msg.contains("did you mean kvm4?"), "{msg}\n{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after, "the file is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_change_nothing_and_say_what_is_safe() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, yaml, file) = converged(&upstream, |y| y).await;
    let mutating = |lab: &FullLab| {
        ["kvm4", "kvm5", "maas"]
            .iter()
            .flat_map(|h| lab.hosts.commands(h))
            .filter(|c| ["leave", "remove-node", "osd out", "osd purge", "snap "].iter().any(|w| c.contains(w)))
            .count()
    };
    let check = |lab: &FullLab,
                 r: anyhow::Result<homelab::ops::remove_node::RemoveReport>,
                 out: &str,
                 want: &str,
                 safe: &str,
                 cmds: usize| {
        let e = format!("{:#}", r.expect_err("must refuse"));
        assert!(e.contains(want) && e.contains(safe) && e.contains("nothing was changed"), "{e}\n{out}");
        assert_eq!(writes(lab), Vec::<String>::new(), "a refusal wrote something");
        assert_eq!(mutating(lab), cmds, "a refusal ran a mutating command");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
    };
    let cmds = mutating(&lab);
    lab.api.clear_log();
    lab.lab.maas.clear_log();
    // 1. Below three control planes without --yes.
    let (r, out) = remove(&lab, &file, req("kvm5"), &upstream, RunOptions::fast()).await;
    check(&lab, r, &out, "no datastore HA", "replace-node", cmds);
    // 2. --dead for a PC that answers.
    let (r, out) =
        remove(&lab, &file, RemoveRequest { dead: true, yes: true, ..req("kvm5") }, &upstream, RunOptions::fast())
            .await;
    check(&lab, r, &out, "answers SSH", "without --dead", cmds);
    // 3. Ceph unhealthy for another reason: an OSD of kvm4 is down.
    let kvm4 = lab.rook.ceph().osds.values().find(|o| o.host == "kvm4").map(|o| o.id).unwrap();
    lab.rook.ceph().set_running(kvm4, false);
    lab.api.state().objects.retain(|k, _| !(k.1 == "deployments" && k.3 == format!("rook-ceph-osd-{kvm4}")));
    let (r, out) = remove(&lab, &file, RemoveRequest { yes: true, ..req("kvm5") }, &upstream, RunOptions::fast()).await;
    check(&lab, r, &out, "other OSDs down", "bring those OSDs back", cmds);
    // 4. A pool whose replicas could no longer be placed (3 copies across hosts, 2 hosts left).
    let (lab, _, file) = converged(&upstream, |y| y.replace("replicas: 2", "replicas: 3")).await;
    lab.api.clear_log();
    lab.lab.maas.clear_log();
    let cmds = mutating(&lab);
    let (r, out) = remove(&lab, &file, RemoveRequest { yes: true, ..req("kvm5") }, &upstream, RunOptions::fast()).await;
    let e = format!("{:#}", r.expect_err("must refuse"));
    assert!(
        e.contains("would not be valid") && e.contains("replace-node") && e.contains("nothing was changed"),
        "{e}\n{out}"
    );
    assert!(out.contains("3 replicas but only 2 machines carry a Ceph volume"), "{out}");
    assert_eq!(writes(&lab), Vec::<String>::new());
    assert_eq!(mutating(&lab), cmds);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_lists_the_steps_and_changes_nothing() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, yaml, file) = converged(&upstream, |y| y).await;
    lab.api.clear_log();
    lab.lab.maas.clear_log();
    let mut o = RunOptions::fast();
    o.dry_run = true;
    let (r, out) = remove(&lab, &file, RemoveRequest { yes: true, release: true, ..req("kvm5") }, &upstream, o).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    for w in [
        "ceph osd out osd.",
        "safe-to-destroy",
        "stop the Rook operator",
        "osd-purge Job",
        "drain kvm5",
        "microk8s leave on kvm5",
        "microk8s remove-node kvm5 on maas",
        "release kvm5 in MAAS",
        "apply the CephCluster without this host and the .mgr pool",
        "delete kvm5's entry",
    ] {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
    assert_eq!(writes(&lab), Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
}
