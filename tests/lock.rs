//! The cluster lock across workstations (issue 13, item 3): the Lease is renewed only while
//! this run holds it, a run that lost it stops, and no Lease record — a renewal time in the
//! future, a duration of years, another machine's clock — blocks other runs forever.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::RunOptions;
use homelab::engine::lock::{self, Holder, LEASE_NAME, LEASE_NAMESPACE, LeaseObserver, LeaseState, lease_state};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::sim::apiserver::{SimApiConfig, SimApiServer};
use homelab::sim::lab::{FullLab, FullLabOptions};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::{Duration, Instant};

fn holder(host: &str, pid: u32) -> Holder {
    Holder { host: host.into(), pid, command: "up".into(), since: "2026-12-02T00:00:00Z".into() }
}

fn lease(h: &Holder, renew: Option<jiff::Timestamp>, seconds: i32, rv: Option<String>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            resource_version: rv,
            annotations: Some(
                [
                    ("homelab.dev/command".to_owned(), h.command.clone()),
                    ("homelab.dev/since".to_owned(), h.since.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(h.identity()),
            lease_duration_seconds: Some(seconds),
            renew_time: renew.map(MicroTime),
            ..Default::default()
        }),
    }
}

#[test]
fn item_3_no_lease_record_blocks_other_runs_forever_and_clocks_are_not_trusted() {
    let me = holder("ws-a", 1);
    let other = holder("ws-b", 2);
    let now = jiff::Timestamp::now();
    let t0 = Instant::now();
    let alive = |_| true;
    let secs = |s: i64| jiff::SignedDuration::from_secs(s);
    // Long stale by its own record: free at once.
    let mut obs = LeaseObserver::default();
    assert_eq!(
        lease_state(&lease(&other, Some(now - secs(600)), 60, None), &me, now, t0, &mut obs, alive),
        LeaseState::Free
    );
    // Recent: held.
    let mut obs = LeaseObserver::default();
    let fresh = lease(&other, Some(now - secs(5)), 60, None);
    assert!(matches!(lease_state(&fresh, &me, now, t0, &mut obs, alive), LeaseState::Held(h) if h == other));
    // Renewed 80 s ago by a clock that may run 30 s ahead of ours: not yet provably stale,
    // so held until this run has watched it unchanged for its duration.
    let mut obs = LeaseObserver::default();
    let skewed = lease(&other, Some(now - secs(80)), 60, None);
    assert!(matches!(lease_state(&skewed, &me, now, t0, &mut obs, alive), LeaseState::Held(_)));
    assert!(matches!(
        lease_state(&skewed, &me, now, t0 + Duration::from_secs(59), &mut obs, alive),
        LeaseState::Held(_)
    ));
    assert_eq!(lease_state(&skewed, &me, now, t0 + Duration::from_secs(61), &mut obs, alive), LeaseState::Free);
    // A renewal time a year in the future and a duration of 30 years: honoured for at most
    // MAX_HONOURED_SECONDS of unchanged record, then free.
    let mut obs = LeaseObserver::default();
    let forever = lease(&other, Some(now + secs(365 * 86400)), i32::MAX, None);
    assert!(matches!(lease_state(&forever, &me, now, t0, &mut obs, alive), LeaseState::Held(_)));
    let cap = Duration::from_secs(lock::MAX_HONOURED_SECONDS as u64);
    assert!(matches!(
        lease_state(&forever, &me, now, t0 + cap - Duration::from_secs(1), &mut obs, alive),
        LeaseState::Held(_)
    ));
    assert_eq!(lease_state(&forever, &me, now, t0 + cap + Duration::from_secs(1), &mut obs, alive), LeaseState::Free);
    // A renewal restarts the watch: a live holder is never taken over.
    let mut obs = LeaseObserver::default();
    let _ = lease_state(&lease(&other, Some(now), 60, None), &me, now, t0, &mut obs, alive);
    let renewed = lease(&other, Some(now + secs(20)), 60, None);
    assert!(matches!(
        lease_state(&renewed, &me, now, t0 + Duration::from_secs(61), &mut obs, alive),
        LeaseState::Held(_)
    ));
    // A holder on this machine whose process is gone is free at once.
    let mut obs = LeaseObserver::default();
    let mine_dead = lease(&holder("ws-a", 99), Some(now), 60, None);
    assert_eq!(lease_state(&mine_dead, &me, now, t0, &mut obs, |_| false), LeaseState::Free);
}

async fn client(api: &SimApiServer) -> kube::Client {
    homelab::kube::client::from_text(&api.kubeconfig("sim"), None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn item_3_a_run_whose_lease_was_taken_over_stops_renewing_and_says_who_holds_it() {
    let api = SimApiServer::start(SimApiConfig::default()).await.unwrap();
    let c = client(&api).await;
    let (ui, _cap) = Ui::capture(OutputFormat::Text);
    let (lost_tx, mut lost) = tokio::sync::watch::channel(None);
    let a = holder("ws-a", std::process::id());
    let guard = lock::acquire_lease_as(c.clone(), a.clone(), Duration::ZERO, Duration::from_millis(50), lost_tx, &ui)
        .await
        .unwrap();
    // A second run cannot take it while it is renewed.
    let (ui2, _cap2) = Ui::capture(OutputFormat::Text);
    let b = holder("ws-b", 4242);
    let e = match lock::acquire_lease_as(
        c.clone(),
        b.clone(),
        Duration::from_millis(300),
        Duration::from_millis(50),
        tokio::sync::watch::channel(None).0,
        &ui2,
    )
    .await
    {
        Ok(_) => panic!("two holders"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("locked by `homelab up` on ws-a"), "{e}");
    // Another workstation takes it over (as after a long stall of the first run).
    let leases: Api<Lease> = Api::namespaced(c.clone(), LEASE_NAMESPACE);
    let cur = leases.get(LEASE_NAME).await.unwrap();
    leases
        .replace(
            LEASE_NAME,
            &PostParams::default(),
            &lease(&b, Some(jiff::Timestamp::now()), 60, cur.metadata.resource_version),
        )
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), lost.wait_for(Option::is_some))
        .await
        .expect("the first run never noticed it lost the lease")
        .unwrap()
        .clone()
        .unwrap();
    assert!(
        reason.contains("`homelab up` on ws-b (pid 4242) since 2026-12-02T00:00:00Z")
            && reason.contains("holds the cluster lease now"),
        "{reason}"
    );
    // And it never made itself the holder again: still ws-b, after many renewal periods.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let now = leases.get(LEASE_NAME).await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("ws-b/4242"));
    // Releasing a lease it no longer holds leaves the new holder alone.
    guard.release().await;
    let now = leases.get(LEASE_NAME).await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("ws-b/4242"));
}

/// The whole run stops, exit 1 with the holder named, when another run takes the Lease
/// while it works; nothing after that point is changed.
#[tokio::test(flavor = "multi_thread")]
async fn item_3_up_stops_cleanly_when_another_run_takes_the_lease() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let yaml = support::example(&lab, "seed-2023.yaml");
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let src = ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(upstream) };
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), src).unwrap();
    let c = client(&lab.api).await;
    let thief = async {
        let leases: Api<Lease> = Api::namespaced(c, LEASE_NAMESPACE);
        let start = Instant::now();
        loop {
            if let Ok(Some(l)) = leases.get_opt(LEASE_NAME).await
                && l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()).is_some_and(|h| !h.is_empty())
            {
                let b = holder("ws-b", 4242);
                let l2 = lease(&b, Some(jiff::Timestamp::now()), 60, l.metadata.resource_version.clone());
                if leases.replace(LEASE_NAME, &PostParams::default(), &l2).await.is_ok() {
                    return Some(Instant::now());
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (r, stolen) = tokio::join!(homelab::engine::up(cx), thief);
    let stolen = stolen.expect("the run never took the lease");
    let e = format!("{:#}", r.expect_err("the run went on without the lease"));
    assert!(
        e.contains("stopped: `homelab up` on ws-b (pid 4242) since 2026-12-02T00:00:00Z holds the cluster lease now"),
        "{e}\n{}",
        cap.all()
    );
    assert!(e.contains("hint: let the other run finish"), "{e}");
    let waited = stolen.elapsed();
    assert!(waited < Duration::from_secs(5), "it took {waited:?} to stop");
    let l = lab.api.object("coordination.k8s.io", "leases", LEASE_NAMESPACE, LEASE_NAME).unwrap();
    assert_eq!(l["spec"]["holderIdentity"], "ws-b/4242");
}
