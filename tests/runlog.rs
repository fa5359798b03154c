//! Every run keeps a log (issue 35): the binary against the simulated lab writes one file per
//! run under the state directory, 0600, with the exact calls behind its actions (MAAS
//! requests, commands over SSH, applies) and not one secret the lab knows; a failed run's
//! last line names the file.

mod support;

use homelab::maas::Status;
use homelab::sim::lab::FullLabOptions;
use std::path::PathBuf;
use support::subproc::World;

fn logs(dir: &std::path::Path) -> Vec<PathBuf> {
    homelab::foundation::runlog::list(dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_run_keeps_a_private_log_of_its_calls_without_secrets_and_a_failure_names_it() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let state = w.lab.lab.path("state-root");
    let log_dir = state.join("logs");
    let run = |args: &[&str]| {
        let mut c = w.homelab(args, &upstream);
        c.arg("-f").arg(&w.yaml);
        tokio::task::block_in_place(|| c.output().unwrap())
    };
    let o = run(&["up"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("the run's log"), "a run that succeeds does not point at its log: {err}");
    let first = logs(&log_dir);
    assert_eq!(first.len(), 1, "{first:?}");
    let up_log = std::fs::read_to_string(&first[0]).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&first[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(first[0].file_name().unwrap().to_string_lossy().ends_with("-up.log"), "{first:?}");
    // The calls: MAAS requests, commands over SSH with their exit, the steps with their calls.
    for needle in [
        " start homelab ",
        "homelab::maas: POST machines/",
        "op=deploy",
        "homelab::ssh: maas: run `",
        "microk8s join",
        ": exit Some(0) in ",
        "\"event\":\"step\"",
        "\"detail\":",
        "\"event\":\"run_finished\"",
        " end ",
    ] {
        assert!(up_log.contains(needle), "the log lacks {needle:?}:\n{}", &up_log[..up_log.len().min(4000)]);
    }
    // The join tokens went by masked.
    let joins: Vec<&str> =
        up_log.lines().filter(|l| l.contains("homelab::ssh") && l.contains("microk8s join ")).collect();
    assert!(!joins.is_empty(), "the joins sent over SSH are logged");
    for l in joins {
        assert!(l.contains("[redacted]"), "{l}");
    }
    let secrets = support::subproc::lab_secrets(&w, &state);
    assert!(secrets.len() >= 6, "the lab knows secrets: {}", secrets.len());
    for s in &secrets {
        assert!(!up_log.contains(s.as_str()), "a secret of {} bytes is in the log: {s}", s.len());
    }
    // A failed run: its last line names its log, whose last lines say what failed.
    let (host, mac, _) = w.lab.lab.add_machine(3, Status::Ready);
    w.lab.lab.maas.faults(|f| {
        f.fail_deploy.insert(host.clone());
    });
    let o = run(&["add-node", &mac]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    let named = last.split(": ").last().unwrap_or_default();
    assert!(last.starts_with("the run's log") && named.ends_with("-add-node.log"), "{last}");
    let failed = std::fs::read_to_string(named).unwrap();
    let tail: Vec<&str> = failed.lines().rev().take(8).collect();
    assert!(tail.iter().any(|l| l.contains(" error error:") && l.contains(&host)), "{tail:?}");
    assert!(tail[0].ends_with(" end "), "{tail:?}");
    for s in &secrets {
        assert!(!failed.contains(s.as_str()), "a secret of {} bytes is in the failed run's log", s.len());
    }
    assert_eq!(logs(&log_dir).len(), 2);
    // A failed `up` (the Strimzi operator never Available again, a deadline of 1 s): the
    // same — its last line names its log, which holds the calls up to the error.
    w.lab.api.faults(|f| f.stuck_deployments.push("kafka/strimzi-cluster-operator".into()));
    let text = std::fs::read_to_string(&w.yaml).unwrap();
    std::fs::write(&w.yaml, text.replacen("kind: Cluster\n", "kind: Cluster\ntimeouts: {operator: 1s}\n", 1)).unwrap();
    let o = run(&["up"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    let named = last.split(": ").last().unwrap_or_default();
    assert!(last.starts_with("the run's log") && named.ends_with("-up.log"), "{last}");
    let failed = std::fs::read_to_string(named).unwrap();
    assert!(
        failed.contains("homelab::ssh: ") && failed.contains("homelab::maas: GET machines/"),
        "the calls are there"
    );
    let tail: Vec<&str> = failed.lines().rev().take(8).collect();
    assert!(tail.iter().any(|l| l.contains(" error error:") && l.contains("strimzi-cluster-operator")), "{tail:?}");
    for s in &secrets {
        assert!(!failed.contains(s.as_str()), "a secret of {} bytes is in the failed up's log", s.len());
    }
    assert_eq!(logs(&log_dir).len(), 3);
}
