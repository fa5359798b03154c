//! The hosts and kubernetes phases over real SSH: a real `sshd` per test host (own hostname,
//! /etc/hosts and blank loop-device Ceph volume, in its own namespaces) and the stand-in
//! `snap`/`microk8s` scripts that follow docs/microk8s.md. MAAS is the simulator, with the
//! machines already Deployed at the test hosts' addresses.

mod support;

use homelab::config::model::HostKeyChecking;
use homelab::engine::context::RunOptions;
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::maas::Status;
use homelab::sim::lab::{Lab, LabOptions};
use homelab::sim::maas::SimMachineSpec;
use homelab::ssh::openssh_impl::{OpenSshConnector, SshOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::sshd::{PORT, SshLab};

struct World {
    lab: Lab,
    ssh: SshLab,
    yaml: String,
}

async fn world(names: &[&str], roles: &[&str], channel: &str) -> World {
    let ssh = SshLab::start(names);
    let lab = Lab::start(LabOptions { machines: 0, ..Default::default() }).await.unwrap();
    let mut machines = String::new();
    for (i, h) in ssh.hosts.iter().enumerate() {
        let mac = format!("52:54:00:00:01:{:02x}", i + 1);
        lab.maas.add_machine(SimMachineSpec::new(&h.hostname, &mac, &h.ip).status(Status::Deployed));
        machines.push_str(&format!("  - {{hostname: {}, mac: \"{mac}\", role: {}}}\n", h.hostname, roles[i]));
    }
    let yaml = format!(
        "apiVersion: homelab/v1alpha1\nkind: Cluster\nmetadata: {{name: sshlab}}\nmaas: {{url: {}, apiKeyFile: {}}}\n{}\nmachines:\n{machines}kubernetes: {{distribution: microk8s, channel: {channel}, addons: [dns]}}\n",
        lab.maas.url,
        lab.path("maas.key").display(),
        ssh.ssh_yaml()
    );
    World { lab, ssh, yaml }
}

fn connector(w: &World, checking: HostKeyChecking) -> Arc<OpenSshConnector> {
    let opts = w.ssh.ssh_options(checking, std::env::temp_dir().join(format!("hlc{}", std::process::id())));
    Arc::new(OpenSshConnector::new(opts).unwrap())
}

fn opts() -> RunOptions {
    RunOptions {
        selection: Selection { only: vec![PhaseId::Hosts, PhaseId::Kubernetes], ..Default::default() },
        ..RunOptions::fast()
    }
}

async fn up(w: &World, checking: HostKeyChecking) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = w.lab.ctx(&w.yaml, connector(w, checking), ui, opts()).unwrap();
    (homelab::engine::up(cx).await, cap)
}

/// Runs `up` (accept-new) and, when the stand-in scripts on `host` touch `marker` in its
/// state directory, does `act` to that host (cut its connections, reboot it) while the run
/// goes on. Fails when the run outlives a minute.
async fn up_while(
    w: &World,
    host: &str,
    marker: &str,
    act: impl FnOnce(&support::sshd::TestHost),
) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let h = w.ssh.host(host);
    let marker = h.state.join(marker);
    let event = async {
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::task::block_in_place(|| act(h));
    };
    let both = async { tokio::join!(up(w, HostKeyChecking::AcceptNew), event) };
    match tokio::time::timeout(Duration::from_secs(60), both).await {
        Ok((run, ())) => run,
        Err(_) => {
            panic!("homelab hung; {} reached: {}; {host} ran {:?}", marker.display(), marker.exists(), h.commands())
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_real_hosts_install_join_and_converge() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas", "kvm4", "kvm5"], &["control-plane", "worker", "worker"], "1.33/stable").await;
    w.ssh.fault("invalid-token-once");
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert!(r.changes >= 5, "{}", cap.all());
    for h in ["maas", "kvm4", "kvm5"] {
        assert_eq!(w.ssh.host(h).count("snap install microk8s --classic --channel=1.33/stable"), 1, "{h}");
    }
    // kvm4's first token was refused and retried with a fresh one; both joined as workers.
    assert!(cap.all().contains("retrying with a fresh one"), "{}", cap.all());
    assert_eq!(w.ssh.host("kvm4").count("microk8s join"), 2);
    assert_eq!(w.ssh.host("kvm5").count("microk8s join"), 1);
    for h in ["kvm4", "kvm5"] {
        assert!(
            w.ssh.host(h).commands().iter().filter(|c| c.starts_with("microk8s join")).all(|c| c.ends_with("--worker")),
            "{h}"
        );
    }
    assert_eq!(w.ssh.host("maas").count("microk8s add-node"), 3);
    // The join tokens never reach the output.
    let all = cap.all();
    for c in w
        .ssh
        .host("kvm4")
        .commands()
        .iter()
        .chain(w.ssh.host("kvm5").commands().iter())
        .filter(|c| c.starts_with("microk8s join"))
    {
        let token = c.split('/').nth(1).unwrap();
        assert!(!all.contains(token), "join token {token} leaked:\n{all}");
    }
    // The kubeconfig points at the control plane homelab knows, under homelab-<name>.
    let kc = std::fs::read_to_string(w.lab.path("state/kubeconfig")).unwrap();
    assert!(kc.contains(&format!("server: https://{}:16443", w.ssh.host("maas").ip)), "{kc}");
    assert!(kc.contains("homelab-sshlab"));

    // A second run changes nothing and runs no install or join command.
    let before: Vec<usize> = w.ssh.hosts.iter().map(|h| h.commands().len()).collect();
    let t = Instant::now();
    let (r2, cap2) = up(&w, HostKeyChecking::Strict).await;
    let r2 = r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all()));
    let wall = t.elapsed();
    assert_eq!(r2.changes, 0, "{}", cap2.all());
    for (h, b) in w.ssh.hosts.iter().zip(before) {
        let new: Vec<String> = h.commands().into_iter().skip(b).collect();
        assert!(
            !new.iter()
                .any(|c| c.contains("install") || c.contains("join") || c.contains("add-node") || c.contains("enable")),
            "{}: {new:?}",
            h.hostname
        );
    }
    eprintln!("converged re-run over 3 real-sshd hosts: {:.2}s", wall.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_1_26_writes_real_etc_hosts_and_refuses_a_changed_host_key() {
    if !support::sshd::available() {
        return;
    }
    let mut w =
        world(&["maas", "kvm4", "kvm5"], &["control-plane", "control-plane", "control-plane"], "1.26/stable").await;
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let first = w.ssh.host("maas");
    for h in &w.ssh.hosts {
        let etc = h.etc_hosts();
        assert!(etc.contains("# homelab: begin"), "{}: {etc}", h.hostname);
        assert!(
            etc.contains(&format!("{} {}", first.ip, first.hostname))
                && etc.contains(&format!("{} {}", h.ip, h.hostname)),
            "{}: {etc}",
            h.hostname
        );
        assert!(etc.starts_with("127.0.0.1 localhost"), "the rest of /etc/hosts is kept: {etc}");
    }
    // The first control plane, which admits every join, resolves every machine.
    for other in &w.ssh.hosts {
        assert!(first.etc_hosts().contains(&format!("{} {}", other.ip, other.hostname)));
    }
    // The machine is reinstalled (new host key): homelab refuses it.
    w.ssh.host_mut("kvm5").change_host_key();
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("kvm5"), "{e}");
    assert!(e.contains("host key of") && e.contains("changed"), "{e}\n{}", cap.all());
    assert!(e.contains("ssh-keygen -R"), "{e}");
    // Issue 13 item 7: on a port other than 22 known_hosts stores `[ip]:port`, so the hint
    // must name that form or the command removes nothing.
    let ip = w.ssh.host("kvm5").ip.clone();
    assert!(e.contains(&format!("ssh-keygen -R '[{ip}]:{}'", support::sshd::PORT)), "{e}");
    // And the hint works: run it as given, and the next run records the new key and passes.
    let cmd = e.split("`ssh-keygen -R ").nth(1).and_then(|r| r.split('`').next()).unwrap();
    let out = std::process::Command::new("sh").arg("-c").arg(format!("ssh-keygen -R {cmd}")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    r.unwrap_or_else(|e| panic!("after the hinted ssh-keygen -R: {e:#}\n{}", cap.all()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_filesystem_signature_on_the_ceph_volume_is_refused() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas"], &["control-plane"], "1.33/stable").await;
    w.ssh.host("maas").format_ceph_volume();
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("carries a `ext4` signature") && e.contains("wipefs -a /dev/vgroot/ceph"), "{e}\n{}", cap.all());
    assert_eq!(w.ssh.host("maas").count("snap install"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_between_joins_converges_with_each_node_joined_once() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas", "kvm4", "kvm5"], &["control-plane", "control-plane", "control-plane"], "1.33/stable").await;
    {
        let run = up(&w, HostKeyChecking::AcceptNew);
        // Killed between the joins: kvm4 is in, kvm5 not yet. (Killing the instant kvm4's join
        // starts races the remote script: a join cut before it records membership has not
        // happened, and joining again is then right.)
        let watch = async {
            while !w.ssh.host("kvm4").joined() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! { _ = run => panic!("finished before the kill"), _ = watch => {} }
    }
    assert_eq!(w.ssh.host("kvm5").count("microk8s join"), 0, "the run was not stopped between the joins");
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(w.ssh.host("kvm4").count("microk8s join"), 1);
    assert_eq!(w.ssh.host("kvm5").count("microk8s join"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_link_cut_during_a_join_stops_with_a_hint_and_the_next_run_does_not_join_again() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas", "kvm4", "kvm5"], &["control-plane", "control-plane", "control-plane"], "1.33/stable").await;
    // kvm4's join goes through, then its answer is lost: the test cuts every SSH connection
    // to kvm4 while the command still runs.
    w.ssh.fault("hang-after-join-once");
    let (r, cap) = up_while(&w, "kvm4", "join-hanging", |h| h.cut_connections()).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("the connection to kvm4 broke while running `sudo microk8s join"), "{e}\n{}", cap.all());
    assert!(e.contains("run `homelab up` again"), "{e}");
    let token = w
        .ssh
        .host("kvm4")
        .commands()
        .iter()
        .find(|c| c.starts_with("microk8s join"))
        .and_then(|c| c.split('/').nth(1).map(str::to_owned))
        .unwrap();
    assert!(!e.contains(&token) && !cap.all().contains(&token), "the join token leaked: {e}");
    // The next run reconnects, sees kvm4 is already a member and joins only kvm5.
    assert_eq!(w.ssh.host("kvm5").count("microk8s join"), 0, "the run was not stopped between the joins");
    let (r, cap) = up(&w, HostKeyChecking::AcceptNew).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(w.ssh.host("kvm4").count("microk8s join"), 1);
    assert_eq!(w.ssh.host("kvm5").count("microk8s join"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_host_that_reboots_while_observed_costs_a_wait_not_a_failure() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas", "kvm4"], &["control-plane", "worker"], "1.33/stable").await;
    // kvm4 reboots while homelab reads its facts: every connection is cut and sshd is gone
    // for 1.5 s, then back with the same host key.
    w.ssh.fault("reboot-once-kvm4");
    let t = Instant::now();
    let (r, cap) = up_while(&w, "kvm4", "rebooting", |h| h.reboot(Duration::from_millis(1500))).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert!(t.elapsed() >= Duration::from_millis(1500), "the run did not wait for the reboot");
    // The observation was asked again after the reboot; the changes were made once.
    assert_eq!(w.ssh.host("kvm4").count("cloud-init status"), 2, "{:?}", w.ssh.host("kvm4").commands());
    assert_eq!(w.ssh.host("kvm4").count("snap install microk8s"), 1);
    assert_eq!(w.ssh.host("kvm4").count("microk8s join"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_checking_refuses_an_unknown_host_key_at_once() {
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas"], &["control-plane"], "1.33/stable").await;
    let t = Instant::now();
    let (r, cap) = tokio::time::timeout(Duration::from_secs(60), up(&w, HostKeyChecking::Strict))
        .await
        .expect("strict checking of an unknown key hung");
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("maas") && e.contains("host key"), "{e}\n{}", cap.all());
    assert!(e.contains(&format!("hint: the host key of {} is not known", w.ssh.host("maas").ip)), "{e}");
    assert!(e.contains(&format!("ssh-keyscan -p {PORT} {}", w.ssh.host("maas").ip)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(w.ssh.host("maas").count("snap install"), 0);
}

/// Issue 13 item 10: `ssh -J` gave the jump host neither homelab's known_hosts file nor its
/// host-key policy. Through the jump, both keys land in homelab's file (accept-new), and with
/// `strict` an unknown jump host is refused, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn item_10_a_jump_host_gets_homelabs_known_hosts_and_policy() {
    use homelab::ssh::{Cmd, Connector, HostAddr};
    if !support::sshd::available() {
        return;
    }
    let ssh = SshLab::start(&["bastion", "pc1"]);
    let (bastion, pc1) = (ssh.host("bastion"), ssh.host("pc1"));
    let opts = |kh: std::path::PathBuf, checking| SshOptions {
        user: "root".into(),
        port: PORT,
        identity_file: Some(ssh.client_key.clone()),
        known_hosts_file: kh,
        host_key_checking: checking,
        jump_host: Some(format!("root@{}:{PORT}", bastion.ip)),
        control_dir: std::env::temp_dir().join(format!("hlj{}", std::process::id())),
        connect_timeout: Duration::from_secs(5),
        config_file: Some(std::path::PathBuf::from("/dev/null")),
    };
    let target = HostAddr { hostname: "pc1".into(), ip: pc1.ip.clone() };
    let kh = ssh.dir.path().join("jump_known_hosts");
    let c = OpenSshConnector::new(opts(kh.clone(), HostKeyChecking::AcceptNew)).unwrap();
    let remote = c.connect(&target).await.unwrap_or_else(|e| panic!("{e:#}"));
    let out = remote.run(&Cmd::new(["cat", "/etc/hostname"]).read_only()).await.unwrap();
    assert!(out.ok(), "{out:?}");
    for h in [bastion, pc1] {
        let found = std::process::Command::new("ssh-keygen")
            .args(["-F", &format!("[{}]:{PORT}", h.ip), "-f"])
            .arg(&kh)
            .output()
            .unwrap();
        assert!(found.status.success(), "{}'s key is not in homelab's known_hosts", h.hostname);
    }
    // Strict: the target's key is known, the jump host's is not: refused.
    let strict_kh = ssh.dir.path().join("strict_known_hosts");
    let scan = std::process::Command::new("ssh-keyscan").args(["-p", &PORT.to_string(), &pc1.ip]).output().unwrap();
    std::fs::write(&strict_kh, &scan.stdout).unwrap();
    let c = OpenSshConnector::new(opts(strict_kh, HostKeyChecking::Strict)).unwrap();
    let t = Instant::now();
    let e = match c.connect(&target).await {
        Ok(_) => panic!("an unknown jump host was accepted under strict checking"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("pc1") && e.contains("through the jump host") && e.contains("Host key verification failed"),
        "{e}"
    );
    assert!(e.contains("hostKeyChecking: strict"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}

/// Issue 13 item 2, the SSH part: a command that floods its output is cut off at the cap
/// instead of filling the workstation's memory.
#[tokio::test(flavor = "multi_thread")]
async fn item_2_a_command_flooding_its_output_is_cut_off_at_the_cap() {
    use homelab::ssh::{Cmd, Connector, HostAddr};
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas"], &["control-plane"], "1.33/stable").await;
    let c = connector(&w, HostKeyChecking::AcceptNew);
    let h = w.ssh.host("maas");
    let remote = c.connect(&HostAddr { hostname: "maas".into(), ip: h.ip.clone() }).await.unwrap();
    let e = remote
        .run(&Cmd::new(["head", "-c", "100000000", "/dev/zero"]).read_only().timeout(Duration::from_secs(60)))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrote more than 16 MiB to its output"), "{e}");
    let ok = remote.run(&Cmd::new(["head", "-c", "1000", "/dev/zero"]).read_only()).await.unwrap();
    assert_eq!(ok.stdout.len(), 0, "NUL bytes are control characters and are dropped");
}

/// A command the remote shell cannot find (exit 127, what a login as root meets when a PC has
/// no MicroK8s yet) is an answer with its code and words, not a broken connection: no retry
/// until the deadline, through the resilient connection homelab uses.
#[tokio::test(flavor = "multi_thread")]
async fn a_command_not_found_is_exit_127_not_a_lost_connection() {
    use homelab::ssh::{Cmd, Connector, HostAddr};
    if !support::sshd::available() {
        return;
    }
    let w = world(&["maas"], &["control-plane"], "1.33/stable").await;
    let c: Arc<dyn Connector> = connector(&w, HostKeyChecking::AcceptNew);
    let h = w.ssh.host("maas");
    let addr = HostAddr { hostname: "maas".into(), ip: h.ip.clone() };
    let first = c.connect(&addr).await.unwrap();
    let backoff = homelab::foundation::wait::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let remote = homelab::ssh::resilient::Resilient::new(c, addr, first, Duration::from_secs(60), backoff);
    let started = Instant::now();
    let out = homelab::ssh::Remote::run(&remote, &Cmd::new(["no-such-tool", "--version"]).read_only()).await.unwrap();
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("no-such-tool"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "retried as a lost connection: {:?}", started.elapsed());
}
