//! `homelab demo` runs end to end (as CI runs it) and its output shows the phase summaries;
//! the dry-run plan of the seed example is pinned, in text and as JSON events.

mod support;

use homelab::catalog::bundle::ManifestSource;
use homelab::engine::context::RunOptions;
use homelab::foundation::output::{OutputFormat, Ui};
use homelab::sim::lab::{FullLab, FullLabOptions};
use std::process::Command;

fn demo(args: &[&str], manifests: Option<&std::path::Path>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_homelab"));
    c.arg("demo")
        .args(args)
        .env_remove("HOMELAB_MANIFEST_DIR")
        .env("HOMELAB_CACHE_DIR", std::env::temp_dir().join(format!("hl-demo-cache-{}", std::process::id())));
    if let Some(m) = manifests {
        c.env("HOMELAB_MANIFEST_DIR", m);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_with_stand_ins_and_shows_the_summaries() {
    let (code, out, err) = demo(&["--quick", "--offline"], None);
    assert_eq!(code, 0, "{err}\n{out}");
    for want in [
        "phase       result  changes   time",
        " machines    ok",
        " kafka       ok",
        "converged: no changes",
        "time per step",
        "cluster `lab`: healthy",
        "Totals: 4 machines",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    for want in ["━━ homelab up ━━", "━━ homelab add-node", "stand-ins", "demo finished in"] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The file's warnings come before the run, as `homelab up` prints them (issue 36, item 9).
    let warned = err.find("warning: rook.version: Rook v1.10.10 was tested up to Kubernetes 1.25");
    assert!(warned.is_some_and(|w| err.find("━━ homelab up ━━").is_some_and(|u| w < u)), "{err}");
}

#[test]
fn demo_runs_with_the_real_pinned_files() {
    let Some(up) = support::mirror::upstream() else { return };
    let (code, out, err) = demo(&["--quick"], Some(&up));
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(err.contains("the pinned Rook and Strimzi files from"), "{err}");
    assert!(err.contains("apply the Rook v1.10.10 operator bundle: 70 created"), "{err}");
    assert!(out.contains("Kafka kafka/my-cluster: Ready — Kafka 3.3.2, 3 brokers"), "{out}");
}

#[test]
fn demo_json_is_a_stream_of_events() {
    let (code, out, _) = demo(&["--quick", "--offline", "-o", "json"], None);
    assert_eq!(code, 0);
    let docs: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    // Every line is an event, the status report among them (issue 36, item 12).
    assert!(docs.iter().all(|d| d["event"].is_string() && d["ts"].is_string()), "{out}");
    let events = docs.clone();
    assert!(docs.iter().any(|d| d["event"] == "status" && d["healthy"] == true), "the status event");
    assert!(events.iter().any(|e| e["event"] == "run_started"));
    let finished: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "run_finished").collect();
    assert_eq!(finished.len(), 3, "up, add-node, up");
    assert_eq!(finished[2]["changes"], 0);
    assert!(events.iter().all(|e| e["ts"].is_string()));
}

fn normalize(s: &str) -> String {
    s.lines().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_dry_run_plan_is_pinned_in_text_and_json() {
    let Some(up) = support::mirror::upstream() else { return };
    let lab = FullLab::start(FullLabOptions::default()).await.unwrap();
    let text = std::fs::read_to_string(format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = text.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    let yaml = lab.lab.cluster_yaml(&body);
    let src = ManifestSource { cache_dir: lab.lab.path("cache"), mirror: None, local_dir: Some(up) };
    let (ui, cap) = Ui::capture(OutputFormat::Text);
    let cx = lab.ctx(&yaml, ui, RunOptions { dry_run: true, ..RunOptions::fast() }, src.clone()).unwrap();
    let r = homelab::engine::up(cx).await.unwrap();
    assert!(lab.lab.maas.requests().iter().all(|r| !r.starts_with("POST")), "a dry run changes nothing");
    let order: Vec<&str> =
        r.planned.iter().map(|(p, _)| p.name()).collect::<Vec<_>>().into_iter().fold(vec![], |mut v, p| {
            if v.last() != Some(&p) {
                v.push(p);
            }
            v
        });
    assert_eq!(order, ["machines", "hosts", "kubernetes", "storage", "kafka", "database"]);
    insta::assert_snapshot!("seed-dry-run-text", normalize(&cap.stdout()));
    let (ui, cap) = Ui::capture(OutputFormat::Json);
    let cx = lab.ctx(&yaml, ui, RunOptions { dry_run: true, ..RunOptions::fast() }, src).unwrap();
    homelab::engine::up(cx).await.unwrap();
    let events: Vec<serde_json::Value> = cap
        .stdout()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ts"] = "[ts]".into();
            if v.get("elapsed_s").is_some() {
                v["elapsed_s"] = "[elapsed]".into();
            }
            if let Some(ps) = v.get_mut("phases").and_then(|p| p.as_array_mut()) {
                for p in ps.iter_mut().filter(|p| p.is_object()) {
                    p["elapsed_s"] = "[elapsed]".into();
                }
            }
            v
        })
        .filter(|v| v["event"] != "warning")
        .collect();
    insta::assert_json_snapshot!("seed-dry-run-json", events);
}

/// Ctrl-C in the middle of the demo: exit 130 with a word, and nothing left in the temporary
/// directory (the lab's MAAS key and SSH key lived there).
#[test]
fn ctrl_c_on_the_demo_leaves_no_temporary_files() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_homelab"))
        .args(["demo", "--quick", "--offline"])
        .env_remove("HOMELAB_MANIFEST_DIR")
        .env("TMPDIR", tmp.path())
        .env("HOMELAB_CACHE_DIR", std::env::temp_dir().join(format!("hl-demo-cache-{}", std::process::id())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    // Well inside the run: the kubernetes phase has started.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("kubernetes ") {
            break;
        }
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!left.is_empty(), "the demo keeps its lab in TMPDIR while it runs:\n{seen}");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    for line in lines.map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted (Ctrl-C)"), "{seen}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `demo --dir DIR` never overwrites a cluster.yaml the user has there (exit 2, file as it was).
#[test]
fn demo_dir_keeps_an_existing_cluster_file() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("cluster.yaml");
    std::fs::write(&mine, "# my garage\n").unwrap();
    let (code, out, err) = demo(&["--quick", "--offline", "--dir", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}\n{out}");
    assert!(err.contains("does not overwrite it") && err.contains("--dir"), "{err}");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "# my garage\n");
}
