//! The MAAS client against the simulated MAAS, the real fixtures, and the `machines` phase.

mod support;
use homelab::engine::context::RunOptions;
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::maas::types::{BlockDevice, EventsPage, Machine, SshKey, Status, Version, VolumeGroup};
use homelab::maas::{ApiKey, ClientOptions, MaasClient, MaasError};
use homelab::sim::lab::{Lab, LabOptions, NoHosts};
use homelab::sim::maas::{SIM_API_KEY, SimMaas, SimMaasConfig, SimMachineSpec};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn shared() -> Option<PathBuf> {
    support::shared("fixtures/maas")
}

fn client(sim: &SimMaas, key: &str) -> MaasClient {
    homelab::foundation::tls::install_crypto_provider();
    let opts = ClientOptions {
        backoff_first: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(100),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    MaasClient::new(&sim.api_root(), ApiKey::parse(key).unwrap(), opts).unwrap()
}

#[test]
fn real_fixtures_parse_into_the_client_types() {
    let Some(dir) = shared() else { return };
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    for f in [
        "gomaasclient-machine.json",
        "gomaasapi-machine-deployed.json",
        "maas-3.6.5-example-machines-deploy.json",
        "maas-3.6.5-example-machines-commission.json",
        "maas-3.6.5-example-machines-allocate.json",
        "maas-3.6.5-example-machines-lock.json",
        "maas-3.6.5-example-machines-release.json",
        "maas-3.6.5-example-machines-create.json",
    ] {
        let m: Machine = serde_json::from_str(&read(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!m.system_id.is_empty(), "{f}");
        let _ = m.status();
    }
    let ms: Vec<Machine> = serde_json::from_str(&read("gomaasclient-machines.json")).unwrap();
    assert!(!ms.is_empty());
    let ms: Vec<Machine> = serde_json::from_str(&read("gomaasapi-machines-ready.json")).unwrap();
    assert!(ms.iter().all(|m| m.status() == Status::Ready));
    let deployed: Machine = serde_json::from_str(&read("gomaasapi-machine-deployed.json")).unwrap();
    assert_eq!(deployed.status(), Status::Deployed);
    assert!(deployed.ip().is_some());
    let _: Vec<BlockDevice> = serde_json::from_str(&read("gomaasclient-block_devices.json")).unwrap();
    let _: BlockDevice = serde_json::from_str(&read("gomaasclient-block_device.json")).unwrap();
    let _: Vec<BlockDevice> = serde_json::from_str(&read("gomaasapi-blockdevices.json")).unwrap();
    let vg: VolumeGroup = serde_json::from_str(&read("gomaasclient-volume_group.json")).unwrap();
    assert!(vg.size > 0);
    let _: Vec<VolumeGroup> = serde_json::from_str(&read("gomaasclient-volume_groups.json")).unwrap();
    let v: Version = serde_json::from_str(&read("gomaasapi-version.json")).unwrap();
    assert!(!v.version.is_empty());
    let events: serde_json::Value = serde_json::from_str(&read("maas-3.6.5-examples-events.json")).unwrap();
    let page: EventsPage = serde_json::from_value(events["events-query"].clone()).unwrap();
    assert!(page.events[0].text().contains("Rack import warning"));
    let account: serde_json::Value = serde_json::from_str(&read("maas-3.6.5-examples-account.json")).unwrap();
    let keys: Vec<SshKey> = serde_json::from_value(account["ssh-keys-list"].clone()).unwrap();
    assert!(!keys.is_empty());
    // Every machine-shaped example in MAAS's own examples file parses too.
    let all: serde_json::Value = serde_json::from_str(&read("maas-3.6.5-examples-machines.json")).unwrap();
    let mut n = 0;
    for (k, v) in all.as_object().unwrap() {
        if v.get("system_id").is_some() {
            let _: Machine = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{k}: {e}"));
            n += 1;
        }
    }
    assert!(n >= 10, "{n}");
}

#[tokio::test]
async fn simulator_answers_parse_like_the_fixtures() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    sim.add_machine(SimMachineSpec::new("node2", "52:54:00:00:00:02", "10.0.0.12"));
    let c = client(&sim, SIM_API_KEY);
    let v = c.version().await.unwrap();
    assert!(v.version.starts_with("3.6"));
    assert_eq!(c.whoami().await.unwrap().username, "admin");
    let ms = c.machines_by_mac(&["52:54:00:00:00:02".into()]).await.unwrap();
    assert_eq!(ms.len(), 1);
    let m = &ms[0];
    assert_eq!(m.status(), Status::Ready);
    assert_eq!(m.status_name.as_deref(), Some("Ready"));
    assert!(m.macs().contains(&"52:54:00:00:00:02".to_string()));
    // The same JSON, untyped, has the fields the real fixtures have.
    let Some(dir) = shared() else { return };
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("maas-3.6.5-example-machines-commission.json")).unwrap(),
    )
    .unwrap();
    let raw: serde_json::Value = serde_json::to_value(m).unwrap();
    for k in [
        "system_id",
        "hostname",
        "status",
        "status_name",
        "status_message",
        "power_state",
        "ip_addresses",
        "boot_interface",
        "interface_set",
        "blockdevice_set",
        "cpu_count",
        "memory",
        "storage",
        "owner",
    ] {
        assert!(fixture.get(k).is_some(), "fixture lacks {k}");
        assert!(raw.get(k).is_some(), "simulator lacks {k}");
    }
}

#[tokio::test]
async fn keys_are_checked_first_and_never_echoed() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    let bad_consumer = "Xxxxxxxxxxxxxxxxxx:HLsimTokenKey00001:HLsimTokenSecret0000000000000001";
    let e = client(&sim, bad_consumer).whoami().await.unwrap_err();
    assert!(matches!(e, MaasError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("Invalid API key"), "{e}");
    let bad_secret = "HLsimConsumerKey01:HLsimTokenKey00001:WrongSecretWrongSecretWrongSecret1";
    let e = client(&sim, bad_secret).whoami().await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("Invalid signature"), "{text}");
    assert!(!text.contains("HLsimTokenSecret"), "the expected signature leaked: {text}");
    let bad_token = "HLsimConsumerKey01:Yyyyyyyyyyyyyyyyyy:HLsimTokenSecret0000000000000001";
    assert!(client(&sim, bad_token).whoami().await.unwrap_err().to_string().contains("Invalid access token"));
    // Without credentials MAAS answers some calls with 400, not 401 (the anonymous handler).
    let raw = reqwest::Client::builder().build().unwrap();
    let r = raw.get(format!("{}machines/", sim.api_root())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.text().await.unwrap(), "Unrecognised signature: method=GET op=None");
    let r = raw.get(format!("{}users/?op=whoami", sim.api_root())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Trailing slash rule.
    let r = raw.get(format!("{}version", sim.api_root())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.text().await.unwrap(), "Unknown API endpoint: /MAAS/api/2.0/version.");
    // A reused nonce is refused.
    let key = ApiKey::parse(SIM_API_KEY).unwrap();
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let h = key.header("fixednonce", ts);
    let r1 = raw.get(format!("{}users/?op=whoami", sim.api_root())).header("Authorization", &h).send().await.unwrap();
    assert_eq!(r1.status().as_u16(), 200);
    let r2 = raw.get(format!("{}users/?op=whoami", sim.api_root())).header("Authorization", &h).send().await.unwrap();
    assert_eq!(r2.status().as_u16(), 401);
    assert!(r2.text().await.unwrap().contains("Nonce already used"));
    // A stale timestamp is refused.
    let r3 = raw
        .get(format!("{}users/?op=whoami", sim.api_root()))
        .header("Authorization", key.header("n2", ts - 3600))
        .send()
        .await
        .unwrap();
    assert!(r3.text().await.unwrap().contains("Expired timestamp"));
    // JSON bodies are refused so a client that sends them is caught.
    let r4 = raw
        .post(format!("{}machines/abc/?op=deploy", sim.api_root()))
        .header("Authorization", key.header("n3", ts))
        .json(&serde_json::json!({"distro_series": "jammy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r4.status().as_u16(), 400);
}

#[tokio::test]
async fn every_error_class_keeps_maas_text() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    let id = sim.add_machine(SimMachineSpec::new("node2", "52:54:00:00:00:02", "10.0.0.12"));
    let c = client(&sim, SIM_API_KEY);
    let e = c.machine("nope99").await.unwrap_err();
    assert!(
        matches!(e, MaasError::NotFound { .. }) && e.to_string().contains("No Machine matches the given query."),
        "{e}"
    );
    let e = c.deploy(&id, "bionic", None).await.unwrap_err();
    assert!(
        matches!(e, MaasError::BadRequest { .. }) && e.to_string().contains("'bionic' is not a valid distro_series"),
        "{e}"
    );
    let e = c.set_lvm_layout(&id, 900_000_000_000, "vgroot").await.unwrap_err();
    assert!(e.to_string().contains("lv_size: Size is too large. Maximum size is 511573319680."), "{e}");
    c.deploy(&id, "jammy", None).await.unwrap();
    let e = c.deploy(&id, "jammy", None).await.unwrap_err();
    assert!(
        matches!(e, MaasError::Conflict { .. })
            && e.to_string().contains("Can't deploy a machine that is in the 'Deploying' state"),
        "{e}"
    );
    let e = c.set_lvm_layout(&id, 100_000_000_000, "vgroot").await.unwrap_err();
    assert!(e.to_string().contains("Cannot change the storage layout on a machine that is not Ready."), "{e}");
    let e = c.commission(&id).await.unwrap_err();
    assert!(e.to_string().contains("Commission is not available because of the current state of the node."), "{e}");
    assert!(c.add_ssh_key("not a key").await.unwrap_err().to_string().contains("Invalid SSH public key"));
    c.add_ssh_key(homelab::sim::lab::DEMO_PUBLIC_KEY).await.unwrap();
    assert!(
        c.add_ssh_key(homelab::sim::lab::DEMO_PUBLIC_KEY).await.unwrap_err().to_string().contains("already been added")
    );
}

#[tokio::test]
async fn injected_faults_are_survived_or_reported() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    sim.add_machine(SimMachineSpec::new("node2", "52:54:00:00:00:02", "10.0.0.12"));
    let c = client(&sim, SIM_API_KEY);
    // A burst of 503s (with Retry-After) is retried.
    sim.faults(|f| f.unavailable = 3);
    let before = c.request_count();
    assert_eq!(c.whoami().await.unwrap().username, "admin");
    assert_eq!(c.request_count() - before, 4);
    // More 503s than retries: a typed error that says what to do.
    sim.faults(|f| f.unavailable = 50);
    let e = c.whoami().await.unwrap_err();
    assert!(matches!(e, MaasError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains("retried"), "{e}");
    sim.faults(|f| f.unavailable = 0);
    // A dropped answer to a GET is retried.
    sim.faults(|f| f.drop = 1);
    assert_eq!(c.machines_by_mac(&["52:54:00:00:00:02".into()]).await.unwrap().len(), 1);
    // An injected 409.
    let id = c.machines_by_mac(&["52:54:00:00:00:02".into()]).await.unwrap()[0].system_id.clone();
    sim.faults(|f| f.conflict = Some(("deploy".into(), "Machine is locked".into())));
    let e = c.deploy(&id, "jammy", None).await.unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains("Machine is locked"), "{e}");
    // A slow MAAS hits the request timeout with a clear error.
    sim.faults(|f| f.slow = Some(Duration::from_secs(5)));
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(300),
        retries: 1,
        backoff_first: Duration::from_millis(10),
        ..Default::default()
    };
    let slow = MaasClient::new(&sim.api_root(), ApiKey::parse(SIM_API_KEY).unwrap(), opts).unwrap();
    let e = slow.whoami().await.unwrap_err();
    assert!(matches!(e, MaasError::Transport { .. }), "{e}");
    assert!(e.to_string().contains("cannot reach MAAS"), "{e}");
}

#[tokio::test]
async fn lvm_layout_follows_maas_si_arithmetic() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    let id = sim.add_machine(SimMachineSpec::new("node2", "52:54:00:00:00:02", "10.0.0.12"));
    let c = client(&sim, SIM_API_KEY);
    c.set_lvm_layout(&id, 100_000_000_000, "vgroot").await.unwrap();
    let vgs = c.volume_groups(&id).await.unwrap();
    assert_eq!(vgs[0].size, 511_562_481_664, "docs/maas-api.md: VG of a 512 110 190 592-byte disk");
    let lv = c.create_logical_volume(&id, vgs[0].id, "ceph", None).await.unwrap();
    assert_eq!(lv.size, 411_566_080_000, "docs/maas-api.md: the ceph LV gets the rest");
    assert_eq!(lv.name, "vgroot-ceph");
    assert!(lv.filesystem.is_none());
    let e = c.create_logical_volume(&id, vgs[0].id, "more", None).await.unwrap_err();
    assert!(e.to_string().contains("cannot hold any more logical volumes"), "{e}");
}

// ---- the machines phase ----

fn opts() -> RunOptions {
    RunOptions { selection: Selection { only: vec![PhaseId::Machines], ..Default::default() }, ..RunOptions::fast() }
}

async fn run_machines(
    lab: &Lab,
    n: usize,
    o: RunOptions,
) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let yaml = lab.cluster_yaml(&format!(
        "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable}}\n",
        lab.machines_yaml(n, if n >= 3 { 3 } else { 1 })
    ));
    let cx = lab.ctx(&yaml, Arc::new(NoHosts), ui, o).unwrap();
    (homelab::engine::up(cx).await, cap)
}

#[tokio::test]
async fn three_machines_from_new_and_from_ready_deploy_with_the_seed_layout() {
    for start in [Status::New, Status::Ready] {
        let lab = Lab::start(LabOptions { status: start, seed_names: false, ..Default::default() }).await.unwrap();
        let (r, cap) = run_machines(&lab, 3, opts()).await;
        let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
        for h in ["node1", "node2", "node3"] {
            assert_eq!(lab.maas.status(h), Some(Status::Deployed), "{h}");
            let lvs = lab.maas.logical_volumes(h);
            assert!(lvs.iter().any(|(n, s, f)| n == "lvroot" && *s == 99_996_401_664 && *f), "{lvs:?}");
            assert!(lvs.iter().any(|(n, s, f)| n == "ceph" && *s == 411_566_080_000 && !*f), "{lvs:?}");
            assert_eq!(
                lab.maas.deployed_keys(h),
                vec![homelab::sim::lab::DEMO_PUBLIC_KEY.to_string()],
                "the key reached {h} before its deploy"
            );
        }
        // commission (New only), layout, LV, deploy per machine + the key registration
        let expected = if start == Status::New { 3 * 4 + 1 } else { 3 * 3 + 1 };
        assert_eq!(r.changes, expected, "{}", cap.all());
        assert_eq!(lab.maas.count("op=deploy"), 3);
        // The second run changes nothing and deploys nothing.
        lab.maas.clear_log();
        let (r2, cap2) = run_machines(&lab, 3, opts()).await;
        let r2 = r2.unwrap();
        assert_eq!(r2.changes, 0, "{}", cap2.all());
        assert_eq!(lab.maas.count("POST"), 0, "{:?}", lab.maas.requests());
        assert!(cap2.stdout().contains("converged: no changes"), "{}", cap2.stdout());
    }
}

#[tokio::test]
async fn every_starting_status() {
    use Status::*;
    let lab = Lab::start(LabOptions { machines: 0, seed_names: false, ..Default::default() }).await.unwrap();
    let cases = [
        (New, true),
        (Commissioning, true),
        (Ready, true),
        (Deploying, true),
        (Deployed, true),
        (Allocated, true),
        (FailedDeployment, false),
        (FailedCommissioning, false),
        (Broken, false),
        (Missing, false),
        (Retired, false),
        (Releasing, true),
        (Testing, true),
        (RescueMode, false),
    ];
    for (i, (status, ok)) in cases.iter().enumerate() {
        let (name, mac, ip) = homelab::sim::lab::machine_identity(i, false);
        let _ = ip;
        lab.maas.add_machine(SimMachineSpec::new(&name, &mac, &format!("10.9.0.{}", i + 2)).status(*status));
        // Commissioning/Deploying/Releasing/Testing need a running operation in MAAS; the
        // simulator models the steady states, so drive them through the real transitions.
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let yaml = lab.cluster_yaml(&format!("machines:\n  - {{hostname: {name}, mac: \"{mac}\"}}\nkubernetes: {{distribution: microk8s, channel: 1.26/stable}}\n"));
        let cx = lab.ctx(&yaml, Arc::new(NoHosts), ui, opts()).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(20), homelab::engine::up(cx)).await.expect("no hang");
        match (ok, &r) {
            (true, Ok(_)) => assert_eq!(lab.maas.status(&name), Some(Deployed), "{status:?}\n{}", cap.all()),
            (false, Err(e)) => {
                let msg = format!("{e:#}");
                assert!(msg.contains("hint:"), "{status:?}: no hint in {msg}");
                assert_eq!(lab.maas.status(&name), Some(*status), "{status:?} must not be touched");
            }
            (want, got) => panic!("{status:?}: wanted ok={want}, got {got:?}\n{}", cap.all()),
        }
    }
}

#[tokio::test]
async fn a_failed_deployment_reports_maas_event_text_and_redeploys_only_when_asked() {
    let lab = Lab::start(LabOptions { machines: 1, seed_names: false, ..Default::default() }).await.unwrap();
    lab.maas.faults(|f| {
        f.fail_deploy.insert("node1".into());
    });
    let (r, cap) = run_machines(&lab, 1, opts()).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("Node installation failure"), "{e}");
    assert!(e.contains("--redeploy-failed"), "{e}");
    assert!(cap.stderr().contains("FAILED"), "{}", cap.stderr());
    assert_eq!(lab.maas.status("node1"), Some(Status::FailedDeployment));
    // Without the flag, a re-run stops again and does not release.
    let (r, _) = run_machines(&lab, 1, opts()).await;
    assert!(r.is_err());
    assert_eq!(lab.maas.count("op=release"), 0);
    // With it, the machine is released and deployed again.
    let mut o = opts();
    o.redeploy_failed = true;
    let (r, cap) = run_machines(&lab, 1, o).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(lab.maas.status("node1"), Some(Status::Deployed));
    assert_eq!(lab.maas.count("op=release"), 1);
}

#[tokio::test]
async fn an_interrupted_deploy_resumes_without_a_second_deploy_call() {
    let mut lo = LabOptions { seed_names: false, ..Default::default() };
    lo.maas.deploy_time = Duration::from_millis(800);
    let lab = Lab::start(lo).await.unwrap();
    // Kill the run (drop its future) while the machines are Deploying.
    let run = run_machines(&lab, 3, opts());
    let _ = tokio::time::timeout(Duration::from_millis(400), run).await;
    assert!(["node1", "node2", "node3"].iter().any(|h| lab.maas.status(h) == Some(Status::Deploying)));
    let deploys = lab.maas.count("op=deploy");
    let (r, cap) = run_machines(&lab, 3, opts()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(lab.maas.count("op=deploy"), 3, "deployed once each (first run sent {deploys})");
    for h in ["node1", "node2", "node3"] {
        assert_eq!(lab.maas.status(h), Some(Status::Deployed));
    }
}

#[tokio::test]
async fn a_deploy_answer_lost_after_maas_acted_is_not_repeated() {
    let lab = Lab::start(LabOptions { machines: 1, seed_names: false, ..Default::default() }).await.unwrap();
    lab.maas.faults(|f| f.drop_after_acting = Some("deploy".into()));
    let (r, cap) = run_machines(&lab, 1, opts()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(lab.maas.count("op=deploy"), 1, "{:?}", lab.maas.requests());
    assert_eq!(lab.maas.status("node1"), Some(Status::Deployed));
}

#[tokio::test]
async fn unknown_macs_say_how_to_enlist_and_dry_run_lists_exact_calls() {
    let lab = Lab::start(LabOptions { machines: 2, status: Status::New, seed_names: false, ..Default::default() })
        .await
        .unwrap();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let yaml = lab.cluster_yaml(&format!(
        "machines:\n{}  - {{hostname: ghost, mac: \"52:54:00:99:99:99\", role: worker}}\nkubernetes: {{distribution: microk8s, channel: 1.26/stable}}\n",
        lab.machines_yaml(1, 1)
    ));
    let cx = lab.ctx(&yaml, Arc::new(NoHosts), ui, opts()).unwrap();
    let e = format!("{:#}", homelab::engine::up(cx).await.unwrap_err());
    assert!(e.contains("MAAS does not know a machine with MAC 52:54:00:99:99:99"), "{e}\n{}", cap.all());
    assert!(e.contains("PXE"), "{e}");

    let lab = Lab::start(LabOptions { machines: 2, status: Status::New, seed_names: false, ..Default::default() })
        .await
        .unwrap();
    let mut o = opts();
    o.dry_run = true;
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let yaml = lab.cluster_yaml(&format!(
        "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.26/stable}}\n",
        lab.machines_yaml(2, 1)
    ));
    lab.maas.clear_log();
    let cx = lab.ctx(&yaml, Arc::new(NoHosts), ui, o).unwrap();
    let r = homelab::engine::up(cx).await.unwrap();
    assert_eq!(lab.maas.count("POST"), 0, "a dry run changes nothing: {:?}", lab.maas.requests());
    let plan = cap.stdout();
    assert!(plan.contains("POST machines/") && plan.contains("?op=commission"), "{plan}");
    assert!(plan.contains("op=set_storage_layout storage_layout=lvm lv_size=100000000000"), "{plan}");
    assert!(plan.contains("op=deploy distro_series=jammy"), "{plan}");
    assert!(plan.contains("POST account/prefs/sshkeys/"), "{plan}");
    // 1 key + 2 × (commission, layout, LV, deploy)
    assert_eq!(r.planned.len(), 9, "{plan}");
}

/// A MAAS that never answered (nothing listens at the URL) fails at once with the cause first,
/// not after 15 s of silent retries; once MAAS has answered, a lost answer is still retried.
#[tokio::test]
async fn an_unreachable_maas_fails_fast_with_the_cause_first() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let root = format!("http://127.0.0.1:{port}/MAAS/api/2.0/");
    let c = MaasClient::new(&root, ApiKey::parse(SIM_API_KEY).unwrap(), ClientOptions::default()).unwrap();
    let started = std::time::Instant::now();
    let e = c.whoami().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(c.request_count(), 1, "not retried");
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default().to_lowercase();
    assert!(first.contains("cannot reach maas") && first.contains("connection refused"), "{text}");
    assert!(first.find("connection refused") < first.find("(for"), "the cause comes first: {text}");
    // Answered once, then an answer lost on the way: retried.
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    let opts = ClientOptions { backoff_first: Duration::from_millis(50), ..Default::default() };
    let c = MaasClient::new(&sim.api_root(), ApiKey::parse(SIM_API_KEY).unwrap(), opts).unwrap();
    c.whoami().await.unwrap();
    sim.faults(|f| f.drop = 1);
    assert_eq!(c.whoami().await.unwrap().username, "admin");
}
