//! The README's "Using it", command after command in its order, run by the binary against the
//! simulated lab (the test-only binary, which reaches the simulated hosts). What `init`
//! drafts is checked and kept aside: the README's later commands use a user `app` and a
//! database, which a draft from MAAS does not declare, so the rest runs on the seed example
//! pointed at the same lab — the file a user would have after editing the draft.

mod support;

use homelab::maas::Status;
use homelab::sim::lab::FullLabOptions;
use std::process::Output;
use support::subproc::World;

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readmes_using_it_runs_in_its_order_against_the_simulated_lab() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let dir = w.yaml.parent().unwrap().to_path_buf();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str]| -> Output {
        let mut c = w.homelab(args, &upstream);
        c.current_dir(&dir).env("HOME", &home);
        tokio::task::block_in_place(|| c.output().unwrap())
    };
    let ok = |args: &[&str]| -> String {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "`homelab {}` failed:\n{}", args.join(" "), text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // homelab init --maas-url … --api-key-file … > cluster.yaml (the draft, checked, kept aside)
    let key = w.lab.lab.path("maas.key");
    let draft = ok(&["init", "--maas-url", &w.lab.lab.maas.url, "--api-key-file", key.to_str().unwrap()]);
    std::fs::write(dir.join("draft.yaml"), &draft).unwrap();
    ok(&["validate", "draft.yaml"]);
    // homelab validate
    ok(&["validate"]);
    // homelab up --dry-run
    let plan = ok(&["up", "--dry-run"]);
    assert!(plan.contains("dry run: nothing was changed"), "{plan}");
    // homelab up
    let up = ok(&["up"]);
    assert!(up.contains("done:"), "{up}");
    // homelab status
    let status = ok(&["status"]);
    assert!(status.contains("cluster `lab`: healthy"), "{status}");
    // homelab status --watch (stopped after its first readings)
    {
        let mut c = w.homelab(&["status", "--watch", "--interval", "0.3"], &upstream);
        c.current_dir(&dir).env("HOME", &home).stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let _ = child.kill();
        let o = tokio::task::block_in_place(|| child.wait_with_output().unwrap());
        assert!(String::from_utf8_lossy(&o.stdout).contains("homelab status —"), "{}", text(&o));
    }
    // homelab connect kafka --user app > client.properties
    let props = ok(&["connect", "kafka", "--user", "app"]);
    assert!(props.contains("bootstrap.servers="), "{props}");
    // eval "$(homelab connect database)" && psql
    let env = ok(&["connect", "database"]);
    assert!(env.contains("PGHOST=") && env.contains("PGPASSFILE="), "{env}");
    // homelab add-node 52:54:00:00:00:04
    let (added, mac, _) = w.lab.lab.add_machine(3, Status::Ready);
    ok(&["add-node", &mac]);
    // homelab replace-node pc3 52:54:00:00:00:09
    let (replacement, mac9, _) = w.lab.lab.add_machine(4, Status::Ready);
    ok(&["replace-node", "kvm5", &mac9]);
    let file = std::fs::read_to_string(&w.yaml).unwrap();
    assert!(file.contains(&added) && file.contains(&replacement) && !file.contains("kvm5"), "{file}");
    // homelab remove-node pc3 --dead --yes (the PC added above died)
    w.lab.hosts.power_off(&added);
    w.lab.lab.maas.power_off(&added);
    ok(&["remove-node", &added, "--dead", "--yes"]);
    assert!(!std::fs::read_to_string(&w.yaml).unwrap().contains(&added));
    // homelab kubeconfig --merge --use
    ok(&["kubeconfig", "--merge", "--use"]);
    let kc = std::fs::read_to_string(home.join(".kube/config")).unwrap();
    assert!(kc.contains("current-context: homelab-lab"), "{kc}");
    // homelab diagnose
    let said = ok(&["diagnose"]);
    assert!(said.contains("wrote homelab-diagnose-lab-") && said.contains(".tar.gz"), "{said}");
    let bundle = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("homelab-diagnose-lab-"))
        .expect("the bundle in the working directory");
    assert!(bundle.metadata().unwrap().len() > 1000);
    // homelab reset --dry-run
    let o = run(&["reset", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("would reset `lab`") && text(&o).contains("snap remove microk8s --purge"),
        "{}",
        text(&o)
    );
    assert!(kafka_ready_still(&w), "a dry run changes nothing");
}

fn kafka_ready_still(w: &World) -> bool {
    support::kafka_ready(&w.lab)
}
