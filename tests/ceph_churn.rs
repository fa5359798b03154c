//! Day 2 on a Ceph that behaves as real Ceph did in issue 37: a new OSD boots some time after
//! its pod starts, its PGs peer and are then recovered onto it (degraded) for a time sized by
//! the data, the CephCluster's `status.ceph` lags on Rook's checker interval, an OSD marked
//! down while its daemon runs boots again, and Rook's purge Job skips an OSD that is up and
//! still exits 0. `replace-node` must wait out the churn it causes wherever it falls, and a
//! purge that did not happen must never reach the cluster file.

mod support;

use homelab::catalog::Catalog;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::remove_node::{RemoveRequest, remove_node};
use homelab::ops::replace_node::{ReplaceRequest, replace_node};
use homelab::sim::lab::{FullLab, FullLabOptions};
use homelab::sim::operators::RookTimings;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn converged(upstream: &Path) -> (FullLab, PathBuf) {
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = support::example(&lab, "seed-2023.yaml");
    let file: PathBuf = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    support::up_lab(&lab, &yaml, upstream).await;
    // Its OSDs booted last: Ceph finishes peering and placing the pools' PGs on them.
    for _ in 0..500 {
        if lab.rook.ceph().clean() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        lab.rook.ceph().tick(std::time::Instant::now());
    }
    let c = lab.rook.ceph();
    let states: Vec<String> =
        c.pgs().iter().map(|p| format!("{} {} {:?} {:?}", p.pgid, p.state, p.up, p.acting)).collect();
    assert!(c.clean(), "the seed cluster is clean: {:?} {:?}", &states[..6.min(states.len())], c.osds);
    drop(c);
    (lab, file)
}

/// Nothing of `host` is left in Ceph: no OSD on it, no host bucket.
fn gone_from_ceph(lab: &FullLab, host: &str) -> bool {
    let c = lab.rook.ceph();
    !c.osds.values().any(|o| o.host == host) && !c.buckets.contains(host)
}

/// One `replace-node kvm5 NEW` with the new OSD booting `boot` after its pod starts, its PGs
/// peering for `peering`, and the CephCluster's health refreshed only every `health`.
async fn replace_with_churn(upstream: PathBuf, boot: Duration, peering: Duration, health: Duration) {
    let (lab, file) = converged(&upstream).await;
    let step = lab.rook.step;
    lab.rook.set_timings(RookTimings { osd_boot: boot, osd_stop_grace: step * 2, health_interval: health });
    lab.rook.ceph().cfg.peering = peering;
    let old_osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    let (new_name, mac, _) = lab.lab.add_machine(3, Status::Ready);
    let (stop, watch) = support::watch_readable(&lab);
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let rq = ReplaceRequest { old: "kvm5".into(), mac, ..Default::default() };
    let cat = Catalog::embedded().unwrap();
    let r = replace_node(&file, &rq, &cat, &ui, RunOptions::fast(), &support::lab_world(&lab, &upstream)).await;
    stop.store(true, Ordering::Relaxed);
    let out = cap.all();
    let case = format!("boot {boot:?}, peering {peering:?}, health every {health:?}");
    r.unwrap_or_else(|e| panic!("{case}: replace-node failed in one run: {e:#}\n{out}"));
    assert!(!out.contains("refusing"), "{case}: a refusal on the way:\n{out}");
    let unreadable = watch.await.unwrap();
    assert!(unreadable.is_empty(), "{case}: Ceph stopped serving: {:?}", &unreadable[..unreadable.len().min(5)]);
    assert_eq!(lab.rook.purges_of(old_osd), 1, "{case}");
    assert!(gone_from_ceph(&lab, "kvm5"), "{case}: kvm5 left in Ceph");
    let c = lab.rook.ceph();
    assert!(c.osds.values().any(|o| o.host == new_name && o.up && o.inn), "{case}: the new OSD is not up and in");
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_node_waits_out_the_new_osds_churn_wherever_it_falls() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let ms = Duration::from_millis;
    // The boot lands before the CephCluster turns Ready, around the add's storage wait, and
    // after it (where the removal's first look at Ceph used to be); peering short and long;
    // the CephCluster's health fresh and a second stale.
    let cases = [
        (ms(0), ms(60), ms(200)),
        (ms(100), ms(300), ms(1000)),
        (ms(400), ms(150), ms(1000)),
        (ms(900), ms(400), ms(1000)),
        (ms(1500), ms(300), ms(200)),
    ];
    futures::future::join_all(cases.iter().map(|(b, p, h)| replace_with_churn(upstream.clone(), *b, *p, *h))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purge_job_that_skips_an_up_osd_fails_the_step_and_the_file_keeps_the_pc_until_a_rerun_purges_it() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, file) = converged(&upstream).await;
    let osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    let step = lab.rook.step;
    lab.rook.set_timings(RookTimings { osd_boot: Duration::ZERO, osd_stop_grace: step, health_interval: step * 4 });
    // When the purge Job is applied, the OSD's Deployment is back at 1 replica (its daemon
    // runs again, as one marked down while it ran does): the Job finds it up, logs so, exits 0.
    let api = lab.api.shared();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fired.clone();
    let dep = format!("rook-ceph-osd-{osd}");
    lab.api.tap.set(move |what| {
        if what.contains(&format!("/jobs/rook-ceph-purge-osd-{osd}"))
            && !what.starts_with("GET")
            && !f.swap(true, Ordering::SeqCst)
        {
            let mut st = api.lock().unwrap();
            if let Some(mut d) = st.get("apps", "deployments", "rook-ceph", &dep).cloned() {
                d["spec"]["replicas"] = serde_json::json!(1);
                st.put("apps", "deployments", "rook-ceph", d);
            }
        }
    });
    let req = RemoveRequest { host: "kvm5".into(), yes: true, ..Default::default() };
    let cat = Catalog::embedded().unwrap();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let r = remove_node(&file, &req, &cat, &ui, RunOptions::fast(), &support::lab_world(&lab, &upstream)).await;
    let out = cap.all();
    let e = match r {
        Ok(_) => panic!("the removal reported success while Ceph still has osd.{osd}:\n{out}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(fired.load(Ordering::SeqCst), "the purge Job was never applied:\n{out}");
    assert!(
        lab.rook
            .purge_log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == &format!("osd.{osd} is healthy. It cannot be removed unless it is 'down'")),
        "the Job did not skip the OSD"
    );
    assert!(e.contains(&format!("still has osd.{osd}")), "{e}");
    assert!(e.contains(&format!("kubectl -n rook-ceph logs job/rook-ceph-purge-osd-{osd}")), "{e}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("kvm5"), "the file lost kvm5 while Ceph has its OSD");
    assert!(!gone_from_ceph(&lab, "kvm5"));
    // The rerun finds the OSD in Ceph itself, stops it, runs the Job again and finishes.
    lab.api.tap.clear();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let r = remove_node(&file, &req, &cat, &ui, RunOptions::fast(), &support::lab_world(&lab, &upstream)).await;
    let out = cap.all();
    r.unwrap_or_else(|e| panic!("the rerun failed: {e:#}\n{out}"));
    assert_eq!(lab.rook.purges_of(osd), 1, "{out}");
    assert!(gone_from_ceph(&lab, "kvm5"), "{out}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("kvm5"));
    assert!(lab.rook.ceph().clean());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_bucket_left_behind_is_found_in_ceph_and_removed_by_the_rerun() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let (lab, file) = converged(&upstream).await;
    let osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    // Someone purged osd.N by hand (`ceph osd purge` after stopping the operator and the
    // OSD), which leaves the host bucket.
    {
        let mut st = lab.api.state();
        let mut op = st.get("apps", "deployments", "rook-ceph", "rook-ceph-operator").cloned().unwrap();
        op["spec"]["replicas"] = serde_json::json!(0);
        st.put("apps", "deployments", "rook-ceph", op);
        st.objects.retain(|k, _| {
            !(k.1 == "deployments" && k.3 == format!("rook-ceph-osd-{osd}")
                || k.1 == "pods" && k.3 == format!("rook-ceph-osd-{osd}-kvm5"))
        });
    }
    {
        let mut c = lab.rook.ceph();
        c.set_running(osd, false);
        c.osds.get_mut(&osd).unwrap().inn = false;
    }
    let tick = || lab.rook.ceph().tick(std::time::Instant::now());
    for _ in 0..200 {
        tick();
        if lab.rook.ceph().clean() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, _, err) = lab.rook.ceph().command(&["osd", "purge", &osd.to_string(), "--yes-i-really-mean-it"]);
    assert_eq!(code, 0, "{err}");
    assert!(lab.rook.ceph().buckets.contains("kvm5"));
    let req = RemoveRequest { host: "kvm5".into(), yes: true, ..Default::default() };
    let cat = Catalog::embedded().unwrap();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let r = remove_node(&file, &req, &cat, &ui, RunOptions::fast(), &support::lab_world(&lab, &upstream)).await;
    let out = cap.all();
    r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(out.contains("ceph osd crush rm kvm5"), "{out}");
    assert!(gone_from_ceph(&lab, "kvm5"), "{out}");
    assert!(lab.rook.ceph().log.iter().any(|l| l.starts_with("osd crush rm kvm5")), "{:?}", lab.rook.ceph().log);
}
