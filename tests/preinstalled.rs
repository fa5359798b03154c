//! Machines MAAS does not deploy: PCs that already run Ubuntu, reached by SSH at their
//! `address` (examples/preinstalled-3.yaml, no MAAS at all). The simulated hosts have the
//! Ubuntu installer's LVM layout, answer `vgs`/`lvcreate` as lvm2 does, and can ask for a sudo
//! password, have the wrong hostname, a loopback-only resolv.conf or a clock that is off.

mod support;

use homelab::engine::context::RunOptions;
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::sim::hosts::Preinstalled;
use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions};
use support::actions;

const PCS: [(&str, &str); 3] = support::PREINSTALLED_PCS;

async fn lab() -> FullLab {
    support::preinstalled_lab().await
}

fn example(lab: &FullLab) -> String {
    support::preinstalled_example(lab)
}

/// The writes a run sent after `api`/`maas` requests had been made: API server writes (not
/// dry runs) and MAAS writes. The run locks are left out: every `up` still takes, renews and
/// gives back the cluster Lease and the MAAS claim, converged or not (the engine's behaviour,
/// issue 32).
fn writes_since(lab: &FullLab, api: usize, maas: usize) -> Vec<String> {
    let write = |r: &String| {
        ["POST", "PUT", "PATCH", "DELETE"].iter().any(|m| r.starts_with(m))
            && !r.contains("/leases/homelab-run")
            && !r.contains("op=set_owner_data")
    };
    let mut w: Vec<String> =
        lab.api.requests().into_iter().skip(api).filter(|r| write(r) && !r.ends_with("(dry run)")).collect();
    w.extend(lab.lab.maas.requests().into_iter().skip(maas).filter(write));
    w
}

async fn up(
    lab: &FullLab,
    yaml: &str,
    opts: RunOptions,
) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let upstream = support::shared("upstream").expect("../shared/upstream");
    let (ui, cap) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(yaml, ui, opts, support::lab_source(lab, &upstream)).unwrap();
    (homelab::engine::up(cx).await, cap)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_preinstalled_pcs_and_no_maas_make_a_cluster_and_a_second_up_changes_nothing() {
    if support::shared("upstream").is_none() {
        return;
    }
    let lab = lab().await;
    let yaml = example(&lab);
    let (plan, pcap) = up(&lab, &yaml, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    let plan = plan.unwrap_or_else(|e| panic!("{e:#}\n{}", pcap.all()));
    let (r, cap) = up(&lab, &yaml, RunOptions::fast()).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    // Five phases: no machines phase without a MAC.
    let phases: Vec<String> = r.phases.iter().map(|p| p.phase.to_string()).collect();
    assert_eq!(phases, ["hosts", "kubernetes", "storage", "kafka", "database"]);
    // The plan is what the run did (the machine-level steps; the cluster-level applies of a
    // dry run are counted by the server and compared in tests/plan.rs).
    let machine_level = |v: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        v.into_iter().filter(|(p, _, _)| p == "hosts").collect()
    };
    assert_eq!(machine_level(actions(&pcap, "planned")), machine_level(actions(&cap, "step")));
    assert!(plan.changes > 0);
    // The Ceph volumes: pc1 all free extents, pc2 exactly 200 GB, pc3 its blank disk.
    let gib = 1u64 << 30;
    let vg_free = (500 * gib - 3 * gib) / (4 << 20) * (4 << 20) - 100 * gib;
    assert_eq!(lab.hosts.lvs("pc1", "ubuntu-vg"), vec![("ubuntu-lv".into(), 100 * gib), ("ceph".into(), vg_free)]);
    assert_eq!(lab.hosts.lvs("pc2", "ubuntu-vg")[1], ("ceph".into(), 200_000_000_000u64.div_ceil(4 << 20) * (4 << 20)));
    assert_eq!(lab.hosts.lvs("pc3", "ubuntu-vg").len(), 1, "pc3 gives its disk, no volume is made");
    for (name, _) in PCS {
        assert_eq!(lab.hosts.count(name, "snap install microk8s"), 1, "{name}");
        assert!(lab.hosts.count(name, "lvcreate") <= 1, "{name}");
    }
    let nodes = lab.hosts.nodes();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n.ready), "{nodes:?}");
    // The CephCluster names each machine's volume.
    let cc = lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").expect("CephCluster");
    let devices: Vec<String> = cc["spec"]["storage"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}={}", n["name"].as_str().unwrap(), n["devices"][0]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(devices, ["pc1=/dev/ubuntu-vg/ceph", "pc2=/dev/ubuntu-vg/ceph", "pc3=/dev/sdb"]);
    // The second run changes nothing, and writes nothing anywhere (not even a lock).
    let (api0, maas0) = (lab.api.requests().len(), lab.lab.maas.requests().len());
    let (r2, cap2) = up(&lab, &yaml, RunOptions::fast()).await;
    let r2 = r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all()));
    assert_eq!(r2.changes, 0, "{:?}", actions(&cap2, "step"));
    assert_eq!(writes_since(&lab, api0, maas0), Vec::<String>::new());
    for (name, _) in PCS {
        assert!(lab.hosts.count(name, "lvcreate") <= 1, "{name}");
    }
}

/// Every refusal of the preflight at once, before anything changes on any machine.
#[tokio::test(flavor = "multi_thread")]
async fn every_preflight_refusal_is_reported_at_once_and_nothing_changes() {
    if support::shared("upstream").is_none() {
        return;
    }
    let lab =
        FullLab::start(FullLabOptions { lab: LabOptions { machines: 0, ..Default::default() }, ..Default::default() })
            .await
            .unwrap();
    // pc1: sudo wants a password, and its clock is 2 minutes ahead.
    let mut p1 = Preinstalled::new("pc1", "192.168.1.11", 500);
    p1.system.sudo_password = true;
    p1.system.clock_skew_s = 120;
    // pc2: it calls itself `PC-Two`, runs Debian, has no snapd, 1 GiB of memory, and its
    // disk is so small that the installer left no free extents for Ceph.
    let mut p2 = Preinstalled::new("PC-Two", "192.168.1.12", 40);
    p2.system.os = "debian 12".into();
    p2.system.snapd = false;
    p2.system.mem_kib = 1 << 20;
    // pc3: its /dev/sdb carries a filesystem, and its nameservers are loopback only.
    let mut p3 = Preinstalled::new("pc3", "192.168.1.13", 500);
    p3.system.disks.push(homelab::sim::hosts::system::Disk {
        path: "/dev/sdb".into(),
        bytes: 1 << 40,
        signature: "ext4".into(),
    });
    p3.system.resolv = vec!["127.0.0.53".into()];
    p3.system.resolv_systemd = vec![];
    for p in [p1, p2, p3] {
        lab.hosts.add_preinstalled(p);
    }
    let yaml = example(&lab);
    let (r, cap) = up(&lab, &yaml, RunOptions::fast()).await;
    let e = format!("{:#}", r.expect_err("the preflight refuses"));
    for needle in [
        "preflight of pc1",
        "passwordless sudo",
        "120 s ahead",
        "preflight of pc2",
        "calls itself `PC-Two`",
        "hostnamectl set-hostname pc2",
        "not Ubuntu",
        "snapd is not installed",
        "1.0 GiB of memory",
        "ubuntu-vg has",
        "preflight of pc3",
        "/dev/sdb is not blank",
        "nothing was changed on any machine",
    ] {
        assert!(e.contains(needle), "no `{needle}` in:\n{e}");
    }
    // pc3's DNS is a warning (MicroK8s falls back to public DNS), not a refusal: not listed.
    assert!(!e.contains("8.8.8.8"), "{e}");
    // Nothing changed: no volume, no snap, no API write.
    for name in ["pc1", "PC-Two", "pc3"] {
        let cmds = lab.hosts.commands(name);
        assert!(cmds.iter().all(|c| !c.contains("lvcreate") && !c.contains("snap install")), "{name}: {cmds:?}");
    }
    assert_eq!(lab.hosts.lvs("pc1", "ubuntu-vg").len(), 1);
    assert!(actions(&cap, "step").is_empty(), "{:?}", actions(&cap, "step"));
    assert!(lab.hosts.nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preinstalled_pc_that_refuses_the_key_fails_at_once_with_the_ssh_copy_id_hint() {
    let lab = lab().await;
    lab.hosts.faults(|f| {
        f.refuse_login.insert("pc2".into());
    });
    let yaml = example(&lab);
    let started = std::time::Instant::now();
    let (r, _) = up(&lab, &yaml, RunOptions::fast()).await;
    let e = format!("{:#}", r.expect_err("refused"));
    assert!(e.contains("pc2") && e.contains("ssh-copy-id -i") && e.contains("Permission denied"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "no retries until the deadline");
    assert!(lab.hosts.commands("pc1").iter().all(|c| !c.contains("snap install")));
}

/// The original write-up's garage: the MAAS host `maas` is itself node 1 (pre-installed,
/// its Ceph volume carved from the installer's volume group), `kvm4` and `kvm5` are deployed
/// by MAAS. MAAS lists `maas` as its region and rack controller, never as a machine.
#[tokio::test(flavor = "multi_thread")]
async fn the_maas_host_as_node_1_beside_two_maas_deploys() {
    if support::shared("upstream").is_none() {
        return;
    }
    // examples/seed-2023.yaml as it stands, on the default lab (the write-up's garage); this
    // MAAS host still runs systemd-timesyncd beside MAAS's chrony.
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let maas_ip = homelab::sim::lab::MAAS_HOST_IP;
    // It also has the outside network, whose default route the kubelet would pick.
    lab.hosts.system("maas", |s| {
        s.timesyncd = "active".into();
        s.other_addrs = vec!["192.168.1.5/24".into()];
    });
    let yaml = support::example(&lab, "seed-2023.yaml");
    assert!(yaml.contains("address: 10.0.0.1") && lab.lab.maas.status("maas").is_none());
    let (plan, pcap) = up(&lab, &yaml, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    plan.unwrap_or_else(|e| panic!("{e:#}\n{}", pcap.all()));
    let (r, cap) = up(&lab, &yaml, RunOptions::fast()).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let phases: Vec<String> = r.phases.iter().map(|p| p.phase.to_string()).collect();
    assert_eq!(phases, ["machines", "hosts", "kubernetes", "storage", "kafka", "database"]);
    let per_machine = |v: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        v.into_iter().filter(|(p, _, _)| p == "machines" || p == "hosts").collect()
    };
    assert_eq!(per_machine(actions(&pcap, "planned")), per_machine(actions(&cap, "step")));
    // MAAS deployed kvm4 and kvm5 and was never asked about its own host.
    assert_eq!(lab.lab.maas.status("kvm4"), Some(homelab::maas::Status::Deployed));
    let requests = lab.lab.maas.requests();
    assert!(
        requests.iter().all(|q| !q.contains("c0ntr1") && !q.contains(maas_ip) && !q.contains("hostname=maas")),
        "{requests:#?}"
    );
    assert!(requests.iter().any(|q| q.contains("regioncontrollers")), "the MAAS host was looked for");
    // The MAAS host joined as node 1, with its Ceph volume from free extents.
    assert_eq!(lab.hosts.lvs("maas", "ubuntu-vg").len(), 2);
    assert_eq!(lab.hosts.count("kvm4", "microk8s join"), 1);
    let text = cap.all();
    assert!(text.contains("systemd-timesyncd"), "the MAAS host's friction is a warning:\n{text}");
    // Its node's address is the declared one, pinned once, as planned.
    let pin = |v: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        v.into_iter().filter(|(_, _, w)| w.starts_with("pin the node's address")).collect()
    };
    assert_eq!(pin(actions(&pcap, "planned")), pin(actions(&cap, "step")));
    assert_eq!(pin(actions(&cap, "step")).len(), 1, "{text}");
    assert_eq!(lab.hosts.count("maas", "homelab:node-ip"), 1);
    let node = lab.hosts.nodes().into_iter().find(|n| n.name == "maas").unwrap();
    assert_eq!(node.ip, maas_ip, "the kubelet reports the declared address");
    let (api0, maas0) = (lab.api.requests().len(), lab.lab.maas.requests().len());
    let (r2, cap2) = up(&lab, &yaml, RunOptions::fast()).await;
    let r2 = r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all()));
    assert_eq!(r2.changes, 0, "{:?}", actions(&cap2, "step"));
    assert_eq!(writes_since(&lab, api0, maas0), Vec::<String>::new());
}

/// Day 2 on three pre-installed PCs and no MAAS: status names them, `add-node --address`
/// grows the cluster by a fourth (its Ceph volume carved, one line added to the file),
/// `remove-node --release` is refused for it, `remove-node` takes it out again, and
/// `upgrade --plan` reads the machines over SSH and plans the MicroK8s round.
#[tokio::test(flavor = "multi_thread")]
async fn day_2_on_preinstalled_pcs_status_add_remove_and_upgrade_plan() {
    use homelab::catalog::Catalog;
    use homelab::config::edit::NewStorage;
    use homelab::ops::add_node::{AddNodeRequest, add_node};
    use homelab::ops::remove_node::{RemoveRequest, remove_node};
    use homelab::ops::upgrade::{UpgradeRequest, upgrade};
    let Some(upstream) = support::shared("upstream") else { return };
    let lab = lab().await;
    lab.hosts.add_preinstalled(Preinstalled::new("pc4", "192.168.1.14", 300));
    let yaml = example(&lab).replace("channel: 1.33/stable", "channel: 1.32/stable");
    let file = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (r, cap) = up(&lab, &yaml, RunOptions::fast()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let cat = Catalog::embedded().unwrap();
    let world = support::lab_world(&lab, &upstream);

    // status: the machines layer says what MAAS does not manage.
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(&yaml, ui, RunOptions::fast(), support::lab_source(&lab, &upstream)).unwrap();
    let report = homelab::ops::status::gather(&cx).await;
    let text = homelab::ops::status::render(&report);
    assert!(text.contains("\nMachines\n") && text.contains("pre-installed (not managed by MAAS)"), "{text}");
    assert!(text.contains("192.168.1.12"), "{text}");

    // add-node --address: only pc4 and the token issuer are touched.
    let before: Vec<usize> = ["pc2", "pc3"].iter().map(|h| lab.hosts.commands(h).len()).collect();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let req = AddNodeRequest {
        address: Some("192.168.1.14".into()),
        hostname: Some("pc4".into()),
        role: homelab::config::model::Role::Worker,
        storage: Some(NewStorage::VolumeGroup { volume_group: "ubuntu-vg".into(), ceph: "rest".into() }),
        ..Default::default()
    };
    let rep = add_node(&file, &req, &cat, &ui, RunOptions::fast(), &world)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert!(rep.inserted);
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after.replace(
            "  - {hostname: pc4, address: \"192.168.1.14\", role: worker, storage: {volumeGroup: ubuntu-vg, ceph: rest}}\n",
            ""
        ),
        yaml,
        "one line inserted, nothing else changed"
    );
    assert_eq!(lab.hosts.lvs("pc4", "ubuntu-vg").len(), 2, "its Ceph volume was carved");
    assert!(lab.hosts.nodes().iter().any(|n| n.name == "pc4" && n.ready && n.worker));
    let now: Vec<usize> = ["pc2", "pc3"].iter().map(|h| lab.hosts.commands(h).len()).collect();
    assert_eq!(now, before, "add-node touched no other machine than pc4 and the token issuer");
    assert!(lab.lab.maas.requests().is_empty(), "no MAAS request at all");

    // remove-node --release is refused before anything is touched.
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let rq = RemoveRequest { host: "pc4".into(), release: true, ..Default::default() };
    let e = format!("{:#}", remove_node(&file, &rq, &cat, &ui, RunOptions::fast(), &world).await.unwrap_err());
    assert!(e.contains("pre-installed (not managed by MAAS)") && e.contains("without --release"), "{e}");
    assert!(lab.hosts.nodes().iter().any(|n| n.name == "pc4"));

    // remove-node takes it out: its OSD purged, its node gone, its line deleted.
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let rq = RemoveRequest { host: "pc4".into(), ..Default::default() };
    remove_node(&file, &rq, &cat, &ui, RunOptions::fast(), &world)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), yaml);
    assert!(lab.hosts.nodes().iter().all(|n| n.name != "pc4"));

    // upgrade --plan: the MicroK8s round from 1.32 to 1.33, planned from what runs.
    let target = yaml.replace("channel: 1.32/stable", "channel: 1.33/stable");
    std::fs::write(&file, &target).unwrap();
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let plan = upgrade(
        &file,
        &UpgradeRequest { plan_only: true, ..Default::default() },
        &cat,
        &ui,
        RunOptions::fast(),
        &world,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let hops: Vec<String> = plan.planned.iter().map(|h| h.name()).collect();
    assert_eq!(hops, ["microk8s-1.33"], "{}", cap.all());
}

/// `init --ssh`: a draft from PCs that run Ubuntu already, read over SSH without changing
/// anything; it validates, needs no MAAS, and lists them with their Ceph volumes.
#[tokio::test(flavor = "multi_thread")]
async fn init_drafts_a_valid_file_from_preinstalled_pcs_read_over_ssh() {
    use homelab::ops::init::{Sources, draft_from};
    let lab = lab().await;
    lab.hosts.system("pc2", |s| s.sudo_password = true);
    let cat = homelab::catalog::Catalog::embedded().unwrap();
    let (ui, _) = Ui::capture(OutputFormat::Text);
    let connector: &dyn homelab::ssh::Connector = &*lab.hosts;
    let src = Sources {
        maas: None,
        ssh: PCS.iter().map(|(_, ip)| ip.to_string()).collect(),
        connector: Some(connector),
        ssh_login: ("ubuntu", "~/.ssh/id_ed25519"),
    };
    let d = draft_from("garage", &src, "cluster.yaml", &cat, &ui).await.unwrap();
    assert_eq!(d.machines, 3);
    assert!(!d.text.contains("maas:"), "{}", d.text);
    assert!(d.text.contains("hostname: pc1, address: \"192.168.1.11\", role: control-plane, storage: {volumeGroup: ubuntu-vg, ceph: rest}"), "{}", d.text);
    // pc2's sudo wants a password: its volume group could not be read, so no volume is drafted.
    assert!(d.text.contains("hostname: pc2, address: \"192.168.1.12\", role: control-plane}"), "{}", d.text);
    for (name, _) in PCS {
        let cmds = lab.hosts.commands(name);
        assert!(!cmds.is_empty() && cmds.iter().all(|c| c.contains("homelab:facts")), "{name}: {cmds:?}");
    }
}

/// `replace-node OLD --address`: a pre-installed PC replaced by another, capacity first; one
/// entry of the file rewritten where it stands.
#[tokio::test(flavor = "multi_thread")]
async fn a_preinstalled_pc_replaced_by_another_preinstalled_pc() {
    use homelab::config::edit::NewStorage;
    use homelab::ops::replace_node::{ReplaceRequest, replace_node};
    let Some(upstream) = support::shared("upstream") else { return };
    let lab = lab().await;
    lab.hosts.add_preinstalled(Preinstalled::new("pc5", "192.168.1.15", 300));
    let yaml = example(&lab);
    let file = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (r, cap) = up(&lab, &yaml, RunOptions::fast()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let rq = ReplaceRequest {
        old: "pc3".into(),
        address: Some("192.168.1.15".into()),
        hostname: Some("pc5".into()),
        storage: Some(NewStorage::VolumeGroup { volume_group: "ubuntu-vg".into(), ceph: "rest".into() }),
        ..Default::default()
    };
    let cat = homelab::catalog::Catalog::embedded().unwrap();
    replace_node(&file, &rq, &cat, &ui, RunOptions::fast(), &support::lab_world(&lab, &upstream))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after,
        yaml.replace(
            "  - {hostname: pc3, address: 192.168.1.13, role: control-plane, storage: {device: /dev/sdb}}",
            "  - {hostname: pc5, address: \"192.168.1.15\", role: control-plane, storage: {volumeGroup: ubuntu-vg, ceph: rest}}"
        )
    );
    let nodes: Vec<String> = lab.hosts.nodes().iter().filter(|n| n.ready).map(|n| n.name.clone()).collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.contains(&"pc5".to_owned()) && !nodes.contains(&"pc3".to_owned()), "{nodes:?}");
    assert_eq!(lab.hosts.lvs("pc5", "ubuntu-vg").len(), 2);
    assert!(lab.lab.maas.requests().is_empty(), "no MAAS request at all");
}
