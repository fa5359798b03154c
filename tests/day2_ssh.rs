//! The seed garage and day 2 over real SSH: `up` (the MAAS host pre-installed as node 1, two
//! PCs deployed by MAAS), `replace-node` and `remove-node --dead` run through the real
//! OpenSSH client against a real `sshd` per machine on loopback (host keys learnt with
//! accept-new, one multiplexed master per host, shell quoting, exit codes, a killed sshd).
//! Each sshd hands its commands to the simulated hosts (`homelab-testlab __ssh-relay`), so
//! MicroK8s's join/leave/remove-node, dqlite's voters and the Rook toolbox's Ceph answers are
//! the same simulators `tests/day2.rs` uses, behind real SSH. MAAS, the API server and the
//! operators are the simulators, reached over HTTP as always.

mod support;

use homelab::catalog::Catalog;
use homelab::catalog::bundle::ManifestSource;
use homelab::config::model::HostKeyChecking;
use homelab::engine::context::{RunOptions, World};
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::maas::Status;
use homelab::ops::remove_node::{RemoveRequest, remove_node};
use homelab::ops::replace_node::{ReplaceRequest, replace_node};
use homelab::sim::hosts::DqRole;
use homelab::sim::lab::{FullLab, FullLabOptions, LabOptions, machine_identity};
use homelab::sim::maas::SimMachineSpec;
use homelab::ssh::openssh_impl::OpenSshConnector;
use homelab::ssh::{Connector, HostAddr, Remote};
use std::path::PathBuf;
use std::sync::Arc;
use support::sshd::{PORT, SshLab};

/// Real SSH to the machines; the API server is the lab's (it stands for `https://<ip>:16443`).
struct RealSsh {
    ssh: OpenSshConnector,
    api: String,
}

#[async_trait::async_trait]
impl Connector for RealSsh {
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>> {
        self.ssh.connect(host).await
    }
    fn api_server_override(&self, _node_ip: &str) -> Option<String> {
        Some(self.api.clone())
    }
}

struct W {
    lab: FullLab,
    ssh: SshLab,
    file: PathBuf,
    upstream: PathBuf,
    connector: Arc<RealSsh>,
    _relay: tokio::task::JoinHandle<()>,
}

/// The seed's garage on real sshd hosts: `maas`, the MAAS host, installed by hand (a
/// pre-installed host MAAS never lists), `kvm4` and `kvm5` Ready in MAAS, and a fourth sshd
/// host (kvm6) whose PC waits in MAAS as Ready. Nothing is deployed yet.
async fn garage() -> Option<W> {
    if !support::sshd::available() {
        return None;
    }
    let upstream = support::mirror::upstream()?;
    let lab =
        FullLab::start(FullLabOptions { lab: LabOptions { machines: 0, ..Default::default() }, ..Default::default() })
            .await
            .unwrap();
    let (relay_url, relay) = homelab::sim::hosts_http::serve(lab.hosts.clone()).await.unwrap();
    let ssh = SshLab::start_relay_lan(
        &["maas", "kvm4", "kvm5", "kvm6"],
        &["maas"],
        &relay_url,
        &support::subproc::testlab_bin(),
    );
    // The simulated hosts let in the key the real sshd checks (the MAAS host has it already;
    // the others once MAAS put it there).
    let public = std::fs::read_to_string(ssh.client_key.with_extension("pub")).unwrap();
    lab.hosts.set_login_key(public.trim());
    let mut yaml = support::example(&lab, "seed-2023.yaml");
    for (i, h) in ssh.hosts.iter().enumerate() {
        let (name, mac, _) = machine_identity(i, true);
        assert_eq!(name, h.hostname);
        if homelab::sim::lab::is_maas_host(i, true) {
            let mut p = homelab::sim::hosts::Preinstalled::new(&name, &h.ip, 500);
            p.system.timesyncd = "inactive".into();
            lab.hosts.add_preinstalled(p);
            yaml =
                yaml.replace(&format!("address: {}", homelab::sim::lab::MAAS_HOST_IP), &format!("address: {}", h.ip));
        } else {
            lab.lab.maas.add_machine(SimMachineSpec::new(&name, &mac, &h.ip).status(Status::Ready));
        }
    }
    let ssh_line = yaml.lines().find(|l| l.starts_with("ssh:")).unwrap().to_owned();
    let yaml = yaml.replace(&ssh_line, &ssh.ssh_yaml());
    let file = lab.lab.path("cluster.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let opts =
        ssh.ssh_options(HostKeyChecking::AcceptNew, std::env::temp_dir().join(format!("hld2{}", std::process::id())));
    let connector = Arc::new(RealSsh { ssh: OpenSshConnector::new(opts).unwrap(), api: lab.api.url.clone() });
    Some(W { lab, ssh, file, upstream, connector, _relay: relay })
}

/// The garage, converged by one `up`.
async fn converged() -> Option<W> {
    let w = garage().await?;
    let r = up(&w).await;
    assert!(r.0.changes > 10, "{}", r.1);
    Some(w)
}

fn env(w: &W) -> anyhow::Result<World> {
    let mut env = w.lab.lab.env(w.connector.clone(), &w.lab.lab.path("state"))?;
    env.manifests =
        ManifestSource { cache_dir: w.lab.lab.path("cache"), mirror: None, local_dir: Some(w.upstream.clone()) };
    Ok(env)
}

async fn up(w: &W) -> (homelab::engine::runner::RunReport, String) {
    let (r, cap) = up_with(w, RunOptions::fast()).await;
    (r, cap.all())
}

async fn up_with(
    w: &W,
    opts: RunOptions,
) -> (homelab::engine::runner::RunReport, homelab::foundation::output::Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let text = std::fs::read_to_string(&w.file).unwrap();
    let v = homelab::config::validate_bytes(text.as_bytes(), "cluster.yaml", &cat);
    let rendered = v.render();
    let mut cluster = v.cluster.unwrap_or_else(|| panic!("{rendered}"));
    cluster.anchor(&w.file);
    let cx = Arc::new(homelab::engine::context::Ctx::new(Arc::new(cluster), ui, opts, env(w).unwrap()));
    let r = homelab::engine::up(cx).await.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    (r, cap)
}

fn kafka_ready(lab: &FullLab) -> bool {
    lab.api
        .object("kafka.strimzi.io", "kafkas", "kafka", "my-cluster")
        .is_some_and(|k| k["status"]["conditions"][0]["type"] == "Ready")
}

fn make_env(w: &W) -> impl Fn(&homelab::config::Cluster) -> anyhow::Result<World> + '_ {
    move |_| env(w)
}

fn lines_changed(before: &str, after: &str) -> Vec<(String, String)> {
    before.lines().zip(after.lines()).filter(|(a, b)| a != b).map(|(a, b)| (a.to_owned(), b.to_owned())).collect()
}

fn known_hosts(w: &W) -> String {
    std::fs::read_to_string(w.ssh.dir.path().join("known_hosts")).unwrap_or_default()
}

/// The write-up's topology over real SSH: the MAAS host joins as node 1 with its Ceph volume
/// carved from the installer's free extents, MAAS deploys kvm4 and kvm5; the dry run lists
/// what the run then does, in the same words; MAAS is never asked about its own host; a
/// second `up` changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_seed_garage_over_real_ssh_maas_host_as_node_1() {
    let Some(w) = garage().await else { return };
    let lab = &w.lab;
    let (_, plan) = up_with(&w, RunOptions { dry_run: true, ..RunOptions::fast() }).await;
    assert_eq!(lab.lab.maas.status("kvm4"), Some(Status::Ready), "the dry run deployed nothing");
    assert!(lab.hosts.lvs("maas", "ubuntu-vg").len() == 1, "the dry run carved nothing");
    let (r, run) = up_with(&w, RunOptions::fast()).await;
    let phases: Vec<String> = r.phases.iter().map(|p| p.phase.to_string()).collect();
    assert_eq!(phases, ["machines", "hosts", "kubernetes", "storage", "kafka", "database"]);
    let per_machine = |v: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        v.into_iter().filter(|(p, _, _)| p == "machines" || p == "hosts").collect()
    };
    assert_eq!(per_machine(support::actions(&plan, "planned")), per_machine(support::actions(&run, "step")));
    assert_eq!(lab.hosts.lvs("maas", "ubuntu-vg").len(), 2, "the Ceph volume beside ubuntu-lv");
    assert_eq!(lab.hosts.count("maas", "lvcreate"), 1, "{:?}", lab.hosts.commands("maas"));
    assert_eq!(lab.hosts.count("maas", "microk8s join"), 0, "node 1 joins nobody");
    for h in ["kvm4", "kvm5"] {
        assert_eq!(lab.lab.maas.status(h), Some(Status::Deployed));
        assert_eq!(w.ssh.host(h).count("microk8s join"), 1, "{h}");
    }
    let maas_ip = &w.ssh.host("maas").ip;
    let requests = lab.lab.maas.requests();
    assert!(
        requests.iter().all(|q| !q.contains(maas_ip.as_str()) && !q.contains("hostname=maas")),
        "MAAS was asked about its own host: {requests:#?}"
    );
    let mut names: Vec<String> = lab.hosts.nodes().iter().map(|n| n.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["kvm4", "kvm5", "maas"]);
    assert!(kafka_ready(lab), "{}", run.all());
    let (r, out) = up(&w).await;
    assert_eq!(r.changes, 0, "the second up changed something:\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_a_live_pc_over_real_ssh_3_4_3() {
    let Some(w) = converged().await else { return };
    let lab = &w.lab;
    let before = std::fs::read_to_string(&w.file).unwrap();
    let old_osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    let kvm6 = w.ssh.host("kvm6");
    assert!(!known_hosts(&w).contains(&kvm6.ip), "kvm6 is new to this workstation");
    let (stop, watch) = support::watch_readable(lab);
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let rq = ReplaceRequest {
        old: "kvm5".into(),
        mac: machine_identity(3, true).1,
        hostname: None,
        dead: false,
        release: true,
        erase: Some("quick".into()),
        ..Default::default()
    };
    let r = replace_node(&w.file, &rq, &Catalog::embedded().unwrap(), &ui, RunOptions::fast(), &make_env(&w)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = cap.all();
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    let unreadable = watch.await.unwrap();
    assert!(unreadable.is_empty(), "Ceph stopped serving some PGs: {:?}", &unreadable[..unreadable.len().min(5)]);
    assert_eq!(r.new_hostname, "kvm6");
    // The commands went through the real sshd of each PC, once each where it matters.
    assert_eq!(w.ssh.host("kvm5").count("microk8s leave"), 1, "{:?}", w.ssh.host("kvm5").commands());
    assert_eq!(w.ssh.host("maas").count("microk8s remove-node kvm5"), 1, "{:?}", w.ssh.host("maas").commands());
    assert_eq!(kvm6.count("microk8s join"), 1, "{:?}", kvm6.commands());
    assert!(w.ssh.host("maas").count("rook-ceph-tools -- ceph osd out") >= 1);
    assert!(known_hosts(&w).contains(&format!("[{}]:{PORT}", kvm6.ip)), "{}", known_hosts(&w));
    // 3 nodes, 3 voters with kvm6 among them, Ceph clean without osd.N of kvm5, Kafka Ready.
    let mut names: Vec<String> = lab.hosts.nodes().iter().map(|n| n.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["kvm4", "kvm6", "maas"]);
    let voters: Vec<String> =
        lab.hosts.dqlite("maas").into_iter().filter(|(_, r)| *r == DqRole::Voter).map(|(h, _)| h).collect();
    assert_eq!(voters.len(), 3, "{voters:?}");
    assert!(voters.contains(&"kvm6".to_owned()), "{voters:?}");
    assert!(lab.rook.ceph().clean());
    assert_eq!(lab.rook.purges_of(old_osd), 1);
    assert!(kafka_ready(lab), "{out}");
    assert_eq!(lab.lab.maas.erase_of("kvm5").as_deref(), Some("quick"));
    let after = std::fs::read_to_string(&w.file).unwrap();
    let changed = lines_changed(&before, &after);
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.contains("kvm6"), "{changed:?}");
    let (r, out) = up(&w).await;
    assert_eq!(r.changes, 0, "the next up changed something:\n{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_a_pc_whose_sshd_is_dead_over_real_ssh() {
    let Some(w) = converged().await else { return };
    let lab = &w.lab;
    let before = std::fs::read_to_string(&w.file).unwrap();
    let old_osd = lab.rook.ceph().osds.values().find(|o| o.host == "kvm5").map(|o| o.id).unwrap();
    // kvm5 dies: its sshd and every connection to it are gone; MAAS reads its power as off.
    w.ssh.host("kvm5").kill();
    lab.hosts.power_off("kvm5");
    lab.lab.maas.power_off("kvm5");
    let rq =
        RemoveRequest { host: "kvm5".into(), dead: true, release: true, erase: None, yes: true, replace_with: None };
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let r = remove_node(&w.file, &rq, &Catalog::embedded().unwrap(), &ui, RunOptions::fast(), &make_env(&w)).await;
    let out = cap.all();
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    assert!(r.dead);
    assert_eq!(w.ssh.host("maas").count("microk8s remove-node kvm5 --force"), 1, "{out}");
    let mut names: Vec<String> = lab.hosts.nodes().iter().map(|n| n.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["kvm4", "maas"]);
    {
        let ceph = lab.rook.ceph();
        assert!(ceph.clean());
        assert_eq!(ceph.pools.get(".mgr").map(|p| p.size), Some(2));
    }
    assert_eq!(lab.rook.purges_of(old_osd), 1);
    assert!(kafka_ready(lab), "{out}");
    let after = std::fs::read_to_string(&w.file).unwrap();
    assert!(!after.contains("kvm5"));
    assert_eq!(after.lines().count(), before.lines().count() - 1);
    let (r, out) = up(&w).await;
    assert_eq!(r.changes, 0, "the next up changed something:\n{out}");
}

/// `homelab upgrade` of the seed over real sshd: every MicroK8s round's hold, backup, refresh
/// and readiness wait goes through the real OpenSSH client.
#[tokio::test(flavor = "multi_thread")]
async fn upgrade_the_seed_over_real_ssh_to_microk8s_131_rook_120_ceph_19() {
    use homelab::ops::upgrade::{UpgradeRequest, upgrade};
    let Some(w) = converged().await else { return };
    let lab = &w.lab;
    let seed = std::fs::read_to_string(&w.file).unwrap();
    std::fs::write(&w.file, support::upgrade_target(&seed, "1.31/stable", "v1.20.6", "v19.2.3")).unwrap();
    let (stop, watch) = support::watch_readable(lab);
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cat = Catalog::embedded().unwrap();
    let req = UpgradeRequest { yes: true, ..Default::default() };
    let r = upgrade(&w.file, &req, &cat, &ui, RunOptions::fast(), &make_env(&w)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = cap.all();
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{out}"));
    let unreadable = watch.await.unwrap();
    assert!(unreadable.is_empty(), "Ceph stopped serving some PGs: {:?}", &unreadable[..unreadable.len().min(5)]);
    let done: Vec<String> = r.done.iter().map(|h| h.hop.clone()).collect();
    let planned: Vec<String> = r.planned.iter().map(|h| h.name()).collect();
    assert_eq!(done, planned);
    assert_eq!(done.len(), 17, "{done:?}");
    assert!(done.contains(&"cloudnative-pg-v1.30.0".to_owned()), "{done:?}");
    for h in ["maas", "kvm4", "kvm5"] {
        assert_eq!(lab.hosts.count(h, "snap refresh microk8s --channel"), 5, "{h}");
        assert_eq!(lab.hosts.count(h, "snap refresh --hold=forever microk8s"), 1, "{h}");
    }
    assert!(lab.hosts.nodes().iter().all(|n| n.ready && n.version.starts_with("v1.31")), "{:?}", lab.hosts.nodes());
    let c = lab.api.object("ceph.rook.io", "cephclusters", "rook-ceph", "rook-ceph").unwrap();
    assert_eq!(c["status"]["version"]["version"], "19.2.3-0");
    assert!(kafka_ready(lab), "{out}");
    let (r, out) = up(&w).await;
    assert_eq!(r.changes, 0, "the up after the upgrade changed something:\n{out}");
}
