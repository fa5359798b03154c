//! The cluster lock across workstations (issue 13, item 3): the Lease is renewed only while
//! this run holds it, a run that lost it stops, and no Lease record — a renewal time in the
//! future, a duration of years, another machine's clock — blocks other runs forever.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::RunOptions;
use homelab::engine::lock::{
    self, ClaimObserver as LeaseObserver, ClaimState as LeaseState, Holder, LEASE_NAME, LEASE_NAMESPACE, claim_state,
    lease_claim,
};
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
    let st = |l: &Lease, mono: Instant, obs: &mut LeaseObserver| {
        claim_state(lease_claim(l).as_ref(), &me, now, mono, obs, alive)
    };
    // Long stale by its own record: free at once.
    let mut obs = LeaseObserver::default();
    assert_eq!(st(&lease(&other, Some(now - secs(600)), 60, None), t0, &mut obs), LeaseState::Free);
    // Recent: held.
    let mut obs = LeaseObserver::default();
    let fresh = lease(&other, Some(now - secs(5)), 60, None);
    assert!(matches!(st(&fresh, t0, &mut obs), LeaseState::Held(h) if h == other));
    // Renewed 80 s ago by a clock that may run 30 s ahead of ours: not yet provably stale,
    // so held until this run has watched it unchanged for its duration.
    let mut obs = LeaseObserver::default();
    let skewed = lease(&other, Some(now - secs(80)), 60, None);
    assert!(matches!(st(&skewed, t0, &mut obs), LeaseState::Held(_)));
    assert!(matches!(st(&skewed, t0 + Duration::from_secs(59), &mut obs), LeaseState::Held(_)));
    assert_eq!(st(&skewed, t0 + Duration::from_secs(61), &mut obs), LeaseState::Free);
    // A renewal time a year in the future and a duration of 30 years: honoured for at most
    // MAX_HONOURED_SECONDS of unchanged record, then free.
    let mut obs = LeaseObserver::default();
    let forever = lease(&other, Some(now + secs(365 * 86400)), i32::MAX, None);
    assert!(matches!(st(&forever, t0, &mut obs), LeaseState::Held(_)));
    let cap = Duration::from_secs(lock::MAX_HONOURED_SECONDS as u64);
    assert!(matches!(st(&forever, t0 + cap - Duration::from_secs(1), &mut obs), LeaseState::Held(_)));
    assert_eq!(st(&forever, t0 + cap + Duration::from_secs(1), &mut obs), LeaseState::Free);
    // A renewal restarts the watch: a live holder is never taken over.
    let mut obs = LeaseObserver::default();
    let _ = st(&lease(&other, Some(now), 60, None), t0, &mut obs);
    let renewed = lease(&other, Some(now + secs(20)), 60, None);
    assert!(matches!(st(&renewed, t0 + Duration::from_secs(61), &mut obs), LeaseState::Held(_)));
    // A holder on this machine whose process is gone is free at once.
    let mut obs = LeaseObserver::default();
    let mine_dead = lease(&holder("ws-a", 99), Some(now), 60, None);
    assert_eq!(claim_state(lease_claim(&mine_dead).as_ref(), &me, now, t0, &mut obs, |_| false), LeaseState::Free);
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

/// The POSTs MAAS received for machines (not the lock's own owner-data writes), as the
/// system ids they went to, in order.
fn machine_posts(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|l| l.starts_with("POST") && !l.contains("op=set_owner_data"))
        .filter_map(|l| l.split("/machines/").nth(1).or_else(|| l.split("/nodes/").nth(1)))
        .filter_map(|rest| rest.split('/').next().map(str::to_owned))
        .filter(|id| !id.is_empty() && !id.starts_with('?'))
        .collect()
}

/// Whether `ids` is made of contiguous runs, one per distinct id (no interleaving).
fn in_blocks(ids: &[String]) -> bool {
    let mut seen: Vec<&String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 && &ids[i - 1] == id {
            continue;
        }
        if seen.contains(&id) {
            return false;
        }
        seen.push(id);
    }
    true
}

/// Two workstations (two processes, two state directories, so neither sees the other's local
/// lock or kubeconfig) grow the same cluster at the same time, and a third runs `up` on it:
/// exactly one changes the cluster at any moment, the others wait for it, and the file gets
/// both new machines.
#[tokio::test(flavor = "multi_thread")]
async fn item_3_two_workstations_take_turns_checked_in_the_maas_and_host_logs() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = support::subproc::World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let run = |args: Vec<String>, state: &str| {
        let mut c = w.homelab(&args.iter().map(String::as_str).collect::<Vec<_>>(), &upstream);
        c.env("HOMELAB_STATE_DIR", w.lab.lab.path(state));
        c
    };
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let first = run(vec!["up".into(), yaml.clone()], "ws-a").output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let (h4, mac4, _) = w.lab.lab.add_machine(3, homelab::maas::Status::New);
    let (h5, mac5, _) = w.lab.lab.add_machine(4, homelab::maas::Status::New);
    w.lab.lab.maas.clear_log();
    let grow = |mac: &str, state: &str| {
        let mut c = run(
            vec![
                "add-node".into(),
                mac.into(),
                "-f".into(),
                yaml.clone(),
                "--role".into(),
                "worker".into(),
                "--lock-timeout".into(),
                "5m".into(),
            ],
            state,
        );
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let a = grow(&mac4, "ws-a");
    let b = grow(&mac5, "ws-b");
    let (a, b) = tokio::task::spawn_blocking(move || (a.wait_with_output().unwrap(), b.wait_with_output().unwrap()))
        .await
        .unwrap();
    let (ea, eb) = (String::from_utf8_lossy(&a.stderr).to_string(), String::from_utf8_lossy(&b.stderr).to_string());
    assert_eq!(a.status.code(), Some(0), "A:\n{ea}\nB:\n{eb}");
    assert_eq!(b.status.code(), Some(0), "B:\n{eb}\nA:\n{ea}");
    // One of them found the other's claim and waited for it.
    let waited =
        [&ea, &eb].iter().filter(|e| e.contains("waiting for the cluster lock held by `homelab add-node`")).count();
    assert_eq!(waited, 1, "A:\n{ea}\nB:\n{eb}");
    // MAAS saw the two machines' commission, layout and deploy one after the other, never mixed.
    let posts = machine_posts(&w.lab.lab.maas.requests());
    let distinct: std::collections::BTreeSet<&String> = posts.iter().collect();
    assert_eq!(distinct.len(), 2, "{posts:?}");
    assert!(in_blocks(&posts), "the two runs' MAAS changes interleaved: {posts:?}");
    // Each new machine joined once, and the file lists both (neither edit lost the other).
    assert_eq!(w.lab.hosts.count(&h4, "microk8s join"), 1);
    assert_eq!(w.lab.hosts.count(&h5, "microk8s join"), 1);
    let text = std::fs::read_to_string(&w.yaml).unwrap();
    assert!(text.contains(&mac4) && text.contains(&mac5), "{text}");
    // Every claim was given back.
    let claims = w.lab.lab.maas.requests().iter().filter(|l| l.contains("op=set_owner_data")).count();
    assert!(claims > 0, "the runs took no claim in MAAS");
    let again = run(vec!["up".into(), yaml.clone(), "--lock-timeout".into(), "0s".into()], "ws-c").output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stderr));
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("converged: no changes"), "{out}");
}

/// While one workstation's run holds the claim, another's `up` with no patience is refused
/// at once, naming the holder, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn item_3_a_second_workstation_is_refused_while_the_first_holds_the_maas_claim() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let mut o = FullLabOptions::default();
    o.lab.maas.deploy_time = Duration::from_millis(1500);
    let w = support::subproc::World::start(o, "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let mut first = w.homelab(&["up", &yaml], &upstream);
    first.env("HOMELAB_STATE_DIR", w.lab.lab.path("ws-a"));
    assert_eq!(first.output().unwrap().status.code(), Some(0));
    let (_, mac4, _) = w.lab.lab.add_machine(3, homelab::maas::Status::New);
    w.lab.lab.maas.clear_log();
    let mut a = w.homelab(&["add-node", &mac4, "-f", &yaml, "--role", "worker"], &upstream);
    a.env("HOMELAB_STATE_DIR", w.lab.lab.path("ws-a")).stderr(std::process::Stdio::piped());
    let a = a.spawn().unwrap();
    // Wait until A's claim is in MAAS.
    let start = Instant::now();
    while w.lab.lab.maas.count("op=set_owner_data") == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "A never took the claim");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = machine_posts(&w.lab.lab.maas.requests()).len();
    let mut b = w.homelab(&["up", &yaml], &upstream);
    b.env("HOMELAB_STATE_DIR", w.lab.lab.path("ws-b"));
    let b = tokio::task::spawn_blocking(move || b.output().unwrap()).await.unwrap();
    let eb = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(1), "{eb}");
    assert!(eb.contains("the cluster is locked by `homelab add-node` on") && eb.contains("MAAS owner data"), "{eb}");
    assert!(eb.contains("--lock-timeout"), "{eb}");
    let a = tokio::task::spawn_blocking(move || a.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    // B sent no machine change while A ran: all of them are A's new machine.
    let posts = machine_posts(&w.lab.lab.maas.requests());
    let distinct: std::collections::BTreeSet<&String> = posts.iter().collect();
    assert!(posts.len() >= before && distinct.len() == 1, "{posts:?}");
}
