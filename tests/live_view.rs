//! The live view in a real pseudo-terminal: `homelab demo` runs inside tmux (a 120×30 screen),
//! the screen is read every 50 ms while it runs, and what a person would see is asserted: one
//! row per machine with its phase, current step and elapsed time, MAAS's `status_message`
//! while a machine deploys, finished actions above in a few words without the raw API call,
//! nothing wrapped, and at the end the summary with the live rows gone. Then the same with
//! `-v`, where the exact call appears as a log line. `homelab status --watch` refreshes the
//! status view in place.
//!
//! Needs tmux (`.ci/run` installs it); without it the test prints a notice and passes, unless
//! `HOMELAB_REQUIRE_ALL` is set.

mod support;

use homelab::sim::lab::FullLabOptions;
use std::process::Command;
use std::time::{Duration, Instant};
use support::subproc::World;

/// The smallest terminal people use: 80×24 (issue 36, item 13).
const WIDTH: usize = 80;
const HEIGHT: usize = 24;

fn tmux_available() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("HOMELAB_REQUIRE_ALL").is_none(), "the pty tests need tmux");
        eprintln!("notice: skipping the live-view tests: tmux is not installed (apt-get install tmux)");
    }
    ok
}

/// A tmux server of this test's own (its socket in a temporary directory).
struct Screen {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Screen {
    fn start(cmd: &str) -> Screen {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let s = Screen { socket, _dir: dir };
        let ok = s
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &WIDTH.to_string(),
                "-y",
                &HEIGHT.to_string(),
                &format!("{cmd}; echo EXIT=$?; sleep 600"),
            ])
            .status
            .success();
        assert!(ok, "tmux did not start");
        s
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().unwrap()
    }

    /// The visible screen, line by line as drawn (a line wider than the screen wraps onto the
    /// next, so a row that ends with its elapsed time was not wrapped).
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Screens read every 50 ms until the command ends (its `EXIT=` line), or the deadline.
    fn watch(&self, deadline: Duration) -> Vec<String> {
        let t = Instant::now();
        let mut shots = Vec::new();
        loop {
            let s = self.screen();
            let done = s.contains("EXIT=");
            shots.push(s);
            if done {
                return shots;
            }
            assert!(t.elapsed() < deadline, "the command did not end within {deadline:?}:\n{}", shots.last().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn demo_cmd(extra: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_homelab");
    let up = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    let manifests = if up.is_dir() { format!("HOMELAB_MANIFEST_DIR={}", up.display()) } else { "true".to_owned() };
    let offline = if up.is_dir() { "" } else { " --offline" };
    format!("env {manifests} {bin} demo{offline}{extra}")
}

/// The seed lab after `up` through the test-only binary.
async fn converged_seed(up: &std::path::Path) -> World {
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let (code, log) =
        support::crash::run_to_end(&w, up, &["up", w.yaml.to_str().unwrap()], Duration::from_secs(300)).await;
    assert_eq!(code, 0, "{log}");
    w
}

/// The test-only binary with `args` against the lab, in the environment of `World::homelab`,
/// spelled for the shell tmux starts.
fn shell_cmd(w: &World, up: &std::path::Path, args: &str) -> String {
    let c = w.homelab(&[], up);
    let env: Vec<String> =
        c.get_envs().filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?))).collect();
    format!("env -u RUST_LOG -u MAAS_API_KEY {} {} {args}", env.join(" "), support::subproc::testlab_bin().display())
}

/// A running row of the live view: `<machine> <spinner> <phase> <what> <elapsed>` (a row
/// whose work is done shows `✓` and no clock).
fn row_of<'a>(screen: &'a str, machine: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(machine) && l.trim_end().ends_with('s') && l.len() > 40 && !l.contains('✓')
    })
}

#[test]
fn the_terminal_shows_one_live_row_per_machine_and_short_words_above() {
    if !tmux_available() {
        return;
    }
    let s = Screen::start(&demo_cmd(""));
    let shots = s.watch(Duration::from_secs(300));
    let last = shots.last().unwrap();
    assert!(last.contains("EXIT=0"), "the demo failed:\n{last}");

    // One row per machine, updated in place: the same row shows different phases over time.
    for m in ["maas", "kvm4", "kvm5"] {
        let rows: Vec<&str> = shots.iter().filter_map(|s| row_of(s, m)).collect();
        assert!(!rows.is_empty(), "no live row for {m}:\n{}", shots[shots.len() / 3]);
        let phases: std::collections::BTreeSet<&str> =
            rows.iter().filter_map(|r| r.split_whitespace().nth(2)).collect();
        assert!(phases.len() >= 2, "{m}'s row never moved on: {phases:?}");
        for r in &rows {
            let elapsed = r.split_whitespace().last().unwrap_or_default();
            assert!(
                elapsed.trim_end_matches('s').trim_end_matches('m').chars().all(|c| c.is_ascii_digit()),
                "a row without its elapsed time: {r:?}"
            );
            assert!(r.chars().count() <= WIDTH, "a row wider than the screen: {r:?}");
            assert!(r.starts_with(m), "a row not at the start of its line: {r:?}");
        }
        // At most one row per machine on any screen.
        for shot in &shots {
            let n = shot.lines().filter(|l| l.split_whitespace().next() == Some(m) && l.ends_with('s')).count();
            assert!(n <= 1, "{m} has {n} rows:\n{shot}");
        }
    }
    // While deploying, a machine's row carries MAAS's status_message.
    assert!(
        shots.iter().any(|s| s.lines().any(|l| l.contains(" machines ") && l.contains("Installing OS"))),
        "no row showed MAAS's status_message while deploying"
    );
    // Finished actions scroll above in a few words; the exact API call is not on the screen.
    let all = shots.join("\n");
    assert!(all.contains("machines kvm4: deploy Ubuntu jammy"), "{last}");
    assert!(all.contains("kubernetes kvm4: install MicroK8s"), "{last}");
    assert!(!all.contains("POST machines/") && !all.contains("snap install microk8s"), "a raw call on the screen");
    // Once the cluster-level phases run, the machines' rows stop: no spinner, no clock.
    let first_run_kafka: Vec<&String> =
        shots.iter().filter(|s| s.contains("kafka ──") && !s.contains("homelab add-node")).collect();
    assert!(!first_run_kafka.is_empty(), "never saw the kafka phase of the first run");
    for shot in first_run_kafka {
        for m in ["maas", "kvm4", "kvm5"] {
            assert!(row_of(shot, m).is_none(), "{m}'s row still runs its clock in the kafka phase:\n{shot}");
        }
    }
    // Lines above the rows are wrapped at words: none fills the width and runs on into the
    // next line (which a terminal's own wrap does, mid-word).
    for shot in &shots {
        let lines: Vec<&str> = shot.lines().collect();
        for w in lines.windows(2) {
            let row = ["maas", "kvm4", "kvm5", "kvm6", "cluster"].iter().any(|m| w[0].starts_with(m));
            assert!(
                row || w[0].chars().count() < WIDTH || w[1].starts_with(' ') || w[1].is_empty(),
                "a line broken by the terminal:\n{}\n{}",
                w[0],
                w[1]
            );
        }
    }
    // At the end the rows are gone and the summary is there.
    assert!(last.contains("converged") || last.contains("Totals:"), "{last}");
    assert!(row_of(last, "kvm4").is_none(), "a live row stayed after the run:\n{last}");
}

#[test]
fn with_v_the_exact_call_is_a_log_line() {
    if !tmux_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("out.txt");
    let s = Screen::start(&format!(
        "{} -v > {log} 2>&1; grep -c 'POST machines/' {log}",
        demo_cmd(" --quick"),
        log = log.display()
    ));
    let shots = s.watch(Duration::from_secs(300));
    let last = shots.last().unwrap();
    let n: usize = last.lines().rev().find_map(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!(n > 0, "no MAAS call in the -v log:\n{last}");
}

/// `status --watch` on a terminal: the view is drawn from the top of the screen and redrawn
/// there (one copy of it on the screen at any time), and a machine that dies shows up in the
/// view within a reading or two.
#[tokio::test(flavor = "multi_thread")]
async fn status_watch_refreshes_in_place() {
    if !tmux_available() {
        return;
    }
    let Some(up) = support::shared("upstream") else { return };
    let w = converged_seed(&up).await;
    let cmd = shell_cmd(&w, &up, &format!("status {} --watch --interval 0.3", w.yaml.display()));
    let s = Screen::start(&cmd);
    let read = |want: &dyn Fn(&str) -> bool, what: &str| {
        let t = Instant::now();
        loop {
            let shot = s.screen();
            if want(&shot) {
                return shot;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "{what} never showed:\n{shot}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = tokio::task::block_in_place(|| {
        read(&|s| s.contains("homelab status —") && s.contains("kvm4"), "the status view")
    });
    assert!(
        first.lines().next().unwrap_or_default().starts_with("homelab status —"),
        "not drawn from the top:\n{first}"
    );
    // Another reading replaces the first in place: a new time in the same first line.
    let head = first.lines().next().unwrap_or_default().to_owned();
    let second = tokio::task::block_in_place(|| {
        read(&|s| s.lines().next().is_some_and(|l| l.starts_with("homelab status —") && l != head), "a second reading")
    });
    assert_eq!(second.matches("homelab status —").count(), 1, "the view scrolled instead of being redrawn:\n{second}");
    // A machine dies; the view says so without anything being typed.
    w.lab.hosts.power_off("kvm5");
    let third = tokio::task::block_in_place(|| read(&|s| s.contains("NotReady"), "kvm5's node NotReady"));
    assert_eq!(third.matches("homelab status —").count(), 1, "{third}");
    assert!(!third.contains("EXIT="), "status --watch stopped by itself:\n{third}");
}

/// `reset` on a terminal shows its steps and asks for the cluster's name: a wrong name
/// changes nothing (exit 2), the right one takes the cluster down (issue 35).
#[tokio::test(flavor = "multi_thread")]
async fn reset_on_a_terminal_asks_for_the_clusters_name() {
    if !tmux_available() {
        return;
    }
    let Some(up) = support::shared("upstream") else { return };
    let w = converged_seed(&up).await;
    let cmd = shell_cmd(&w, &up, &format!("reset {}", w.yaml.display()));
    let answer = |name: &str| -> String {
        let s = Screen::start(&cmd);
        let t = Instant::now();
        loop {
            let shot = s.screen();
            if shot.contains("Type the cluster's name") {
                assert!(shot.contains("remove MicroK8s from") || shot.contains("total"), "the steps first:\n{shot}");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "no prompt:\n{shot}");
            std::thread::sleep(Duration::from_millis(100));
        }
        s.tmux(&["send-keys", "-t", "t", name, "Enter"]);
        s.watch(Duration::from_secs(180)).pop().unwrap_or_default()
    };
    let last = tokio::task::block_in_place(|| answer("garage"));
    assert!(last.contains("not confirmed") && last.contains("EXIT=2"), "{last}");
    assert!(support::kafka_ready(&w.lab) && w.lab.hosts.nodes().len() == 3, "a wrong name changed something");
    let last = tokio::task::block_in_place(|| answer("lab"));
    assert!(last.contains("EXIT=0"), "{last}");
    assert!(w.lab.hosts.nodes().is_empty(), "the right name took MicroK8s down:\n{last}");
}
