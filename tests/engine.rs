//! The machines, hosts and kubernetes phases end to end against the simulated MAAS and the
//! simulated hosts (MicroK8s behaviour per version).

use homelab::engine::context::RunOptions;
use homelab::engine::phase::{PhaseId, Selection};
use homelab::foundation::output::{Captured, OutputFormat, Ui};
use homelab::sim::hosts::{SimHosts, SimHostsConfig};
use homelab::sim::lab::{Lab, LabOptions};
use std::sync::Arc;

fn first3() -> RunOptions {
    RunOptions {
        selection: Selection {
            only: vec![PhaseId::Machines, PhaseId::Hosts, PhaseId::Kubernetes],
            ..Default::default()
        },
        ..RunOptions::fast()
    }
}

async fn up(
    lab: &Lab,
    hosts: &Arc<SimHosts>,
    yaml: &str,
    opts: RunOptions,
) -> (anyhow::Result<homelab::engine::runner::RunReport>, Captured) {
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(yaml, hosts.clone(), ui, opts).unwrap();
    (homelab::engine::up(cx).await, cap)
}

fn body(lab: &Lab, n: usize, cps: usize, channel: &str) -> String {
    lab.cluster_yaml(&format!(
        "machines:\n{}kubernetes: {{distribution: microk8s, channel: {channel}, addons: [dns]}}\n",
        lab.machines_yaml(n, cps)
    ))
}

#[tokio::test]
async fn seed_1_26_three_control_planes_join_once_and_converge() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig::default());
    let yaml = body(&lab, 3, 3, "1.26/stable");
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    let r = r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    let nodes = hosts.nodes();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(nodes.iter().all(|n| n.ready && !n.worker));
    // 1.26: the first control plane must resolve every joining node; the others resolve it.
    assert!(hosts.etc_hosts("maas").contains("kvm4") && hosts.etc_hosts("maas").contains("kvm5"));
    for h in ["maas", "kvm4", "kvm5"] {
        let etc = hosts.etc_hosts(h);
        assert!(
            etc.contains("# homelab: begin") && etc.contains(&format!(" {h}\n")) && etc.contains(" maas\n"),
            "{h}: {etc}"
        );
        assert_eq!(hosts.count(h, "snap install microk8s --classic --channel=1.26/stable"), 1);
    }
    assert_eq!(hosts.count("kvm4", "microk8s join"), 1);
    assert_eq!(hosts.count("kvm5", "microk8s join"), 1);
    // dns is off by default on 1.26, so homelab enabled it.
    assert_eq!(hosts.count("maas", "microk8s enable dns"), 1);
    // The kubeconfig was saved 0600 under the cluster's context.
    let kc = lab.path("state/kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains("current-context: homelab-lab"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777, 0o600);
    // No join token in the output: the join is announced without it (the same words as the
    // plan), and the token that went to the host appears nowhere.
    let all = cap.all();
    assert!(all.contains("kvm4: join the cluster through maas as a control plane"), "{all}");
    for c in hosts.commands("kvm4").iter().filter(|c| c.contains("microk8s join")) {
        let token = c.split('/').nth(1).unwrap();
        assert!(!all.contains(token), "token leaked: {token}");
    }
    assert!(r.changes > 0);
    // The second run changes nothing, installs nothing, joins nothing.
    let (r2, cap2) = up(&lab, &hosts, &yaml, first3()).await;
    let r2 = r2.unwrap_or_else(|e| panic!("{e:#}\n{}", cap2.all()));
    assert_eq!(r2.changes, 0, "{}", cap2.all());
    for h in ["maas", "kvm4", "kvm5"] {
        assert_eq!(hosts.count(h, "snap install"), 1, "{h}");
        assert_eq!(hosts.count(h, "microk8s join"), if h == "maas" { 0 } else { 1 }, "{h}");
    }
}

#[tokio::test]
async fn current_1_33_with_a_worker_and_an_invalid_token_retry() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig::default());
    hosts.faults(|f| f.invalid_token_once = true);
    let yaml = body(&lab, 3, 1, "1.33/stable");
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert!(cap.all().contains("retrying with a fresh one"), "{}", cap.all());
    let nodes = hosts.nodes();
    assert_eq!(nodes.iter().filter(|n| n.worker).count(), 2, "{nodes:?}");
    // 1.28+ needs no /etc/hosts entries; dns is on by default from 1.27.
    assert!(!hosts.etc_hosts("kvm4").contains("# homelab: begin"));
    assert_eq!(hosts.count("maas", "microk8s enable dns"), 0);
    // Two tokens for the first worker (one refused), one for the second.
    assert_eq!(hosts.count("maas", "microk8s add-node"), 3);
}

#[tokio::test]
async fn preflight_reports_every_problem_of_every_host() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig::default());
    hosts.faults(|f| {
        f.ceph_signature.insert("kvm4".into(), "ext4".into());
        f.no_lvm2.insert("kvm4".into());
        f.ceph_missing.insert("kvm5".into());
    });
    let yaml = lab.cluster_yaml(&format!(
        "machines:\n{}kubernetes: {{distribution: microk8s, channel: 1.33/stable}}\nrook: {{version: v1.20.6, pools: [{{name: replicapool, replicas: 2, storageClass: {{name: rook-ceph-block, default: true}}}}]}}\n",
        lab.machines_yaml(3, 3)
    ));
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    let e = format!("{:#}", r.unwrap_err());
    let out = cap.all();
    assert!(e.contains("2 machines failed"), "{e}");
    assert!(
        out.contains("not blank (it carries a `ext4` signature)") && out.contains("wipefs -a /dev/vgroot/ceph"),
        "{out}"
    );
    assert!(out.contains("lvm2 is not installed"), "{out}");
    assert!(out.contains("/dev/vgroot/ceph does not exist"), "{out}");
    // Nothing was installed on the failed hosts.
    assert_eq!(hosts.count("kvm4", "snap install"), 0);
}

#[tokio::test]
async fn a_run_killed_between_joins_converges_with_each_node_joined_once() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig { join_time: std::time::Duration::from_millis(300), ..Default::default() });
    let yaml = body(&lab, 3, 3, "1.33/stable");
    let run = up(&lab, &hosts, &yaml, first3());
    // Stop the run once the first join has happened.
    let h2 = hosts.clone();
    let killer = async move {
        loop {
            if h2.count("kvm4", "microk8s join") == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::select! { _ = run => panic!("the run finished before the kill"), _ = killer => {} }
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(hosts.count("kvm4", "microk8s join"), 1);
    assert_eq!(hosts.count("kvm5", "microk8s join"), 1);
    assert_eq!(hosts.nodes().len(), 3);
}

#[tokio::test]
async fn a_machine_that_reboots_mid_run_costs_a_wait_not_a_failure() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig::default());
    // kvm5 reboots as the first command reaches it (the facts script): the link breaks and
    // SSH is refused for 400 ms. Observations are re-sent on a fresh connection.
    hosts.faults(|f| {
        f.reboot_next.insert("kvm5".into(), std::time::Duration::from_millis(400));
    });
    let yaml = body(&lab, 3, 3, "1.33/stable");
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert!(hosts.count("kvm5", "homelab:facts") >= 2, "{:?}", hosts.commands("kvm5"));
    assert_eq!(hosts.count("kvm5", "microk8s join"), 1);
    assert_eq!(hosts.nodes().iter().filter(|n| n.ready).count(), 3);
}

#[tokio::test]
async fn a_link_that_drops_during_a_change_stops_with_a_hint_and_the_next_run_converges() {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let hosts = lab.hosts(SimHostsConfig::default());
    let yaml = body(&lab, 3, 3, "1.33/stable");
    // 1. The install never reaches kvm5.
    hosts.faults(|f| {
        f.drop_before.insert("kvm5".into(), "snap install".into());
    });
    let started = std::time::Instant::now();
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    let e = format!("{:#}", r.expect_err("a broken link during a change must stop the run"));
    let all = format!("{e}\n{}", cap.all());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "it must not hang");
    assert!(all.contains("the connection to kvm5 broke while running `sudo snap install"), "{all}");
    assert!(all.contains("cannot tell whether it finished") && all.contains("run `homelab up` again"), "{all}");
    // Mutating commands are never re-sent blind within the run.
    assert_eq!(hosts.count("kvm5", "snap install"), 1);
    // 2. The join runs on kvm4 but its answer is lost: homelab cannot know it happened.
    hosts.faults(|f| {
        f.drop_after.insert("kvm4".into(), "microk8s join".into());
    });
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    let e = format!("{:#}", r.expect_err("a lost answer to a join must stop the run"));
    let all = format!("{e}\n{}", cap.all());
    assert!(all.contains("the connection to kvm4 broke while running `sudo microk8s join"), "{all}");
    // The message names the command but not its token.
    for c in hosts.commands("kvm4").iter().filter(|c| c.contains("microk8s join")) {
        let token = c.split('/').nth(1).unwrap();
        assert!(!all.contains(token), "token leaked: {all}");
    }
    // 3. The next run converges: kvm4's membership is seen, it is not joined twice.
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all()));
    assert_eq!(hosts.count("kvm4", "microk8s join"), 1);
    assert_eq!(hosts.count("kvm5", "microk8s join"), 1);
    assert_eq!(hosts.count("kvm5", "snap install"), 2);
    assert_eq!(hosts.nodes().iter().filter(|n| n.ready).count(), 3);
    let (r, cap) = up(&lab, &hosts, &yaml, first3()).await;
    assert_eq!(r.unwrap_or_else(|e| panic!("{e:#}\n{}", cap.all())).changes, 0, "{}", cap.all());
}
