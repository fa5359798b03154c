//! The binary itself: init against the simulated MAAS, kubeconfig writing and merging,
//! completions, help, and exit codes.

use homelab::maas::Status;
use homelab::sim::lab::DEMO_PUBLIC_KEY;
use homelab::sim::maas::{SIM_API_KEY, SimMaas, SimMaasConfig, SimMachineSpec};
use std::process::Command;

fn homelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_homelab"))
}

#[tokio::test(flavor = "multi_thread")]
async fn init_drafts_a_valid_file_from_ready_machines() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    for (i, name) in ["Gaming-PC", "old_laptop", "nas"].iter().enumerate() {
        sim.add_machine(SimMachineSpec::new(name, &format!("52:54:00:00:03:0{i}"), &format!("10.0.3.{}", i + 2)));
    }
    sim.add_machine(
        SimMachineSpec::new("busy", "52:54:00:00:03:09", "10.0.3.9").status(Status::Deployed).keys(&[DEMO_PUBLIC_KEY]),
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("maas.key");
    std::fs::write(&key, SIM_API_KEY).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let to = dir.path().join("cluster.yaml");
    let out = homelab()
        .args(["init", "--maas-url", &sim.url, "--api-key-file", key.to_str().unwrap(), "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&to).unwrap();
    assert!(
        text.contains("hostname: gaming-pc") && text.contains("hostname: old-laptop") && !text.contains("busy"),
        "{text}"
    );
    assert_eq!(text.matches("role: control-plane").count(), 3);
    let v = homelab().args(["validate", to.to_str().unwrap()]).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stderr));
    // It never overwrites without --force.
    let again = homelab()
        .args(["init", "--maas-url", &sim.url, "--api-key-file", key.to_str().unwrap(), "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    // A bad key is a clear configuration error, and its value is not printed.
    std::fs::write(&key, "not:a-valid key").unwrap();
    let bad = homelab()
        .args([
            "init",
            "--maas-url",
            &sim.url,
            "--api-key-file",
            key.to_str().unwrap(),
            "--to",
            dir.path().join("x.yaml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("wrong shape") && !err.contains("a-valid"), "{err}");
}

/// The README's `homelab init … > cluster.yaml`: the shell creates (empties) the file before
/// homelab runs; the draft goes to the redirected standard output, so the file holds it, and
/// nothing is left empty. An empty file given with `--to` is filled too; one with content
/// still needs `--force`.
#[tokio::test(flavor = "multi_thread")]
async fn init_redirected_to_the_file_fills_it() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    for (i, name) in ["pc1", "pc2", "pc3"].iter().enumerate() {
        sim.add_machine(SimMachineSpec::new(name, &format!("52:54:00:00:04:0{i}"), &format!("10.0.4.{}", i + 2)));
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("maas.key");
    std::fs::write(&key, SIM_API_KEY).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let file = dir.path().join("cluster.yaml");
    let redirect = std::fs::File::create(&file).unwrap();
    let out = homelab()
        .current_dir(dir.path())
        .args(["init", "--maas-url", &sim.url, "--api-key-file", key.to_str().unwrap()])
        .stdout(redirect)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# yaml-language-server") || text.contains("apiVersion: homelab/v1alpha1"), "{text}");
    assert_eq!(text.matches("role: control-plane").count(), 3, "{text}");
    assert!(err.contains("drafted 3 machines on standard output"), "{err}");
    let v = homelab().args(["validate", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stderr));
    // `--to` an empty file fills it; a file with content is kept unless --force.
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let args = |to: &std::path::Path| {
        vec![
            "init".to_owned(),
            "--maas-url".into(),
            sim.url.clone(),
            "--api-key-file".into(),
            key.display().to_string(),
            "--to".into(),
            to.display().to_string(),
        ]
    };
    let filled = homelab().args(args(&empty)).output().unwrap();
    assert_eq!(filled.status.code(), Some(0), "{}", String::from_utf8_lossy(&filled.stderr));
    assert!(std::fs::read_to_string(&empty).unwrap().contains("role: control-plane"));
    let kept = homelab().args(args(&file)).output().unwrap();
    assert_eq!(kept.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "a file with content is not overwritten");
}

#[test]
fn kubeconfig_writes_0600_and_merges_without_losing_other_contexts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("garage")).unwrap();
    let ours = "apiVersion: v1\nkind: Config\ncurrent-context: homelab-garage\nclusters:\n- name: homelab-garage\n  cluster: {server: 'https://10.0.0.11:16443'}\nusers:\n- name: homelab-garage\n  user: {token: secrettoken123}\ncontexts:\n- name: homelab-garage\n  context: {cluster: homelab-garage, user: homelab-garage}\n";
    std::fs::write(state.join("garage/kubeconfig"), ours).unwrap();
    let cfg = format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"));
    let out_file = dir.path().join("garage.kubeconfig");
    let o = homelab()
        .env("HOMELAB_STATE_DIR", &state)
        .args(["kubeconfig", &cfg, "--to", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("secrettoken123"));
    let mine = dir.path().join("config");
    std::fs::write(&mine, "apiVersion: v1\nkind: Config\ncurrent-context: kind-kind\nclusters:\n- name: kind-kind\n  cluster: {server: 'https://127.0.0.1:6443'}\nusers:\n- name: kind-kind\n  user: {token: t}\ncontexts:\n- name: kind-kind\n  context: {cluster: kind-kind, user: kind-kind}\n").unwrap();
    let o = homelab()
        .env("HOMELAB_STATE_DIR", &state)
        .args(["kubeconfig", &cfg, "--merge", "--to", mine.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = std::fs::read_to_string(&mine).unwrap();
    assert!(
        merged.contains("kind-kind")
            && merged.contains("homelab-garage")
            && merged.contains("current-context: kind-kind"),
        "{merged}"
    );
    assert_eq!(std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(mine.with_extension("homelab-backup").exists());
}

#[test]
fn up_help_names_every_phase_in_order() {
    let h = homelab().args(["up", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    let names: Vec<&str> = homelab::engine::phase::PhaseId::ALL.iter().map(|p| p.name()).collect();
    let chain = names.join(" → ");
    // The first paragraph, joined back into one line (help wraps it).
    let first: String = text.split("\n\n").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(first.contains(&chain), "`up --help` must list the phases as `{chain}`:\n{text}");
}

#[test]
fn help_completions_and_schema() {
    let h = homelab().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    for cmd in
        ["up", "add-node", "status", "validate", "schema", "kubeconfig", "init", "demo", "completions", "Examples:"]
    {
        assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
    }
    let c = homelab().args(["completions", "bash"]).output().unwrap();
    assert_eq!(c.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&c.stdout).contains("_homelab"));
    let s = homelab().arg("schema").output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(schema["title"], "homelab cluster.yaml");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/cluster.schema.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    assert_eq!(schema, committed);
}

/// The existing-cluster example on a workstation without a kubeconfig: the read-only commands
/// name the missing file once, with a hint that fits (not `homelab kubeconfig`, not "continues
/// from the current state"), promise no tables, and total no sizes nothing reported (issue
/// 36, item 6).
#[test]
fn read_only_commands_without_a_kubeconfig_say_which_file_and_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cfg = format!("{}/examples/existing-kind.yaml", env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let o = homelab()
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .env("HOMELAB_STATE_DIR", dir.path().join("state"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["connect", "kafka", &cfg]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot read the kubeconfig") && err.contains(".kube/config"), "{err}");
    assert!(err.contains("hint: set `kubernetes.kubeconfig`"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(!err.contains("continues from the current state") && !err.contains("does not answer"), "{err}");
    let (_, out, err) = run(&["status", &cfg]);
    let all = format!("{out}{err}");
    assert_eq!(all.matches("No such file or directory").count(), 1, "{all}");
    assert!(all.contains("set `kubernetes.kubeconfig`"), "{all}");
    assert!(!all.contains("homelab kubeconfig") && !all.contains("tables below"), "{all}");
    assert!(!all.contains("0 cores") && all.contains("cores and memory unknown"), "{all}");
}

/// One convention for the cluster file and for durations (issue 36, item 10): `-f FILE` on
/// every command, and the file as the positional argument where the command's other
/// positionals are fixed; every duration option takes `5s`, `1m` or bare seconds.
#[test]
fn the_file_and_durations_are_given_the_same_way_everywhere() {
    let seed = format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"));
    for args in [
        vec!["validate", seed.as_str()],
        vec!["validate", "-f", seed.as_str()],
        vec!["validate", "--file", seed.as_str()],
    ] {
        let o = homelab().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // Each command reads the file it was given, in either form (a missing one names itself).
    let missing = "/nonexistent/garage.yaml";
    let cases: Vec<Vec<&str>> = vec![
        vec!["up", missing, "--lock-timeout", "10"],
        vec!["up", "-f", missing, "--lock-timeout", "1m"],
        vec!["status", missing, "--watch", "--interval", "5s"],
        vec!["status", "-f", missing, "--watch", "--interval", "0.5"],
        vec!["kubeconfig", "-f", missing],
        vec!["connect", "kafka", "-f", missing],
        vec!["connect", "database", missing],
        vec!["upgrade", missing, "--plan"],
        vec!["upgrade", "-f", missing, "--plan"],
        vec!["remove-node", "kvm5", missing, "--dry-run"],
        vec!["remove-node", "kvm5", "-f", missing, "--dry-run", "--lock-timeout", "10"],
        vec!["add-node", "52:54:00:00:00:09", "-f", missing],
        vec!["replace-node", "kvm5", "52:54:00:00:00:09", "-f", missing, "--dry-run"],
    ];
    for args in cases {
        let o = homelab().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(missing), "{args:?} did not read the file it was given:\n{err}");
        assert!(!err.contains("not a duration") && !err.contains("unexpected argument"), "{args:?}:\n{err}");
    }
    let o = homelab().args(["status", "-f", missing, "--watch", "--interval", "soon"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a duration (e.g. 30s, 10m, 1h, or seconds: 10)"));
    let o = homelab().args(["validate", seed.as_str(), "-f", seed.as_str()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "two files at once is a usage error");
}

/// Every command and every flag `--help` lists is in the README, and every flag the README's
/// "Using it" names exists (issue 36, item 11).
#[test]
fn every_command_and_flag_of_the_help_is_in_the_readme_and_the_reverse() {
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let help = |args: &[&str]| {
        let o = homelab().args(args).arg("--help").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let commands = |text: &str| -> Vec<String> {
        text.split("Commands:")
            .nth(1)
            .map(|rest| {
                rest.lines()
                    .skip(1)
                    .take_while(|l| !l.trim().is_empty())
                    .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|c| *c != "help")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let flags = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                let t = l.trim_start();
                let t = if t.len() > 4 && t.starts_with('-') && t.as_bytes()[2] == b',' { &t[4..] } else { t };
                let f: String =
                    t.strip_prefix("--")?.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                (l.starts_with("  ") && !f.is_empty()).then(|| format!("--{f}"))
            })
            .collect()
    };
    let mut all = std::collections::BTreeSet::new();
    let top = help(&[]);
    all.extend(flags(&top));
    for c in commands(&top) {
        assert!(readme.contains(&format!("`{c}")), "command `{c}` is not in the README");
        let h = help(&[&c]);
        all.extend(flags(&h));
        for sub in commands(&h) {
            assert!(readme.contains(&format!("`{c} {sub}")), "`{c} {sub}` is not in the README");
            all.extend(flags(&help(&[&c, &sub])));
        }
    }
    assert!(all.len() > 40, "{all:?}");
    for f in &all {
        let documented = readme
            .match_indices(f.as_str())
            .any(|(i, _)| !readme[i + f.len()..].starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '-'));
        assert!(documented, "{f} is in --help but not in the README");
    }
    let using = readme.split("## Using it").nth(1).and_then(|r| r.split("\n## ").next()).unwrap();
    for (i, _) in using.match_indices("--") {
        let f: String = using[i + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if f.is_empty() || !f.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue;
        }
        assert!(all.contains(&format!("--{f}")), "the README names --{f}, which no --help lists");
    }
}

/// One JSON contract (issue 36, item 12; docs/events.md): every line on stdout is one
/// compact object with `event` and `ts` — the validation result and the status report too —
/// and a status problem carries its hint apart from its message.
#[test]
fn every_json_line_is_an_event_with_its_fields_apart() {
    let dir = tempfile::tempdir().unwrap();
    let seed = format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"));
    let lines = |args: &[&str]| -> (Option<i32>, Vec<serde_json::Value>) {
        let o = homelab()
            .env("HOME", dir.path())
            .env_remove("MAAS_API_KEY")
            .env_remove("KUBECONFIG")
            .env_remove("SSH_AUTH_SOCK")
            .env("HOMELAB_STATE_DIR", dir.path().join("state"))
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let docs = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("{args:?}: not one JSON object per line ({e}): {l}"))
            })
            .collect::<Vec<_>>();
        for d in &docs {
            assert!(d["event"].is_string() && d["ts"].is_string(), "{args:?}: a line without event/ts: {d}");
        }
        (o.status.code(), docs)
    };
    let (code, docs) = lines(&["validate", "-o", "json", &seed]);
    assert_eq!((code, docs.len()), (Some(0), 1));
    assert_eq!(docs[0]["event"], "validation");
    assert_eq!(docs[0]["valid"], true);
    // The file's two (plain-http MAAS, Rook's tested range) and, in an empty HOME, the MAAS
    // key file and the SSH key that are not there.
    assert_eq!(docs[0]["warnings"], 4);
    let bad = format!("{}/tests/corpus/invalid/bad-role.yaml", env!("CARGO_MANIFEST_DIR"));
    let (code, docs) = lines(&["validate", "-o", "json", &bad]);
    assert_eq!(code, Some(2));
    assert_eq!(
        (docs[0]["valid"].clone(), docs[0]["diagnostics"][0]["path"].clone()),
        (serde_json::json!(false), serde_json::json!("machines[0].role"))
    );
    // `up` tells a script the file's warnings too, before it runs (here it stops at the key).
    let (code, docs) = lines(&["up", "-o", "json", &seed]);
    assert_eq!(code, Some(2), "no MAAS key here: {docs:?}");
    assert_eq!(docs.first().map(|d| d["event"].clone()), Some(serde_json::json!("validation")), "{docs:?}");
    let existing = format!("{}/examples/existing-kind.yaml", env!("CARGO_MANIFEST_DIR"));
    let (code, docs) = lines(&["status", "-o", "json", &existing]);
    assert_eq!(code, Some(1));
    let status = docs.iter().find(|d| d["event"] == "status").expect("a status event");
    let p = &status["problems"][0];
    assert!(p["message"].as_str().unwrap().starts_with("Kubernetes API unreachable"), "{p}");
    assert!(!p["message"].as_str().unwrap().contains(" — "), "{p}");
    assert!(p["hint"].as_str().unwrap().contains("kubernetes.kubeconfig"), "{p}");
}

/// A request MAAS does not serve is tried again, and the terminal says so — why, when, and
/// which try — instead of a silent wait (issue 36, item 5).
#[tokio::test(flavor = "multi_thread")]
async fn a_maas_retry_is_shown_on_the_terminal() {
    let sim = SimMaas::start(SimMaasConfig::default()).await.unwrap();
    sim.faults(|f| f.unavailable = 1);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("maas.key");
    std::fs::write(&key, SIM_API_KEY).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let to = dir.path().join("cluster.yaml");
    let url = sim.url.clone();
    let o = tokio::task::spawn_blocking(move || {
        homelab()
            .env_remove("RUST_LOG")
            .args(["init", "--maas-url", &url, "--api-key-file", key.to_str().unwrap(), "--to", to.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("MAAS is unavailable for GET users/?op=whoami (503)"), "{err}");
    assert!(err.contains("— trying GET users/?op=whoami again in 1.0s (try 2 of 6)"), "{err}");
}

/// A MAAS key file that is not there (issue 36, item 8): `validate` warns at `apiKeyFile`,
/// saying whether `$MAAS_API_KEY` stands in; a command that needs MAAS then uses the variable
/// (it goes on to ask MAAS) and, without it, refuses naming the file.
#[test]
fn a_missing_maas_key_file_is_named_before_a_run_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(format!("{}/examples/seed-2023.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(seed.contains("apiKeyFile: ~/.config/homelab/maas.key"));
    // Nothing listens on port 9 of loopback: a MAAS that refuses at once.
    let cfg = dir.path().join("cluster.yaml");
    let text = seed
        .replace("apiKeyFile: ~/.config/homelab/maas.key", "apiKeyFile: missing.key")
        .replace("url: http://10.0.0.1:5240/MAAS", "url: http://127.0.0.1:9/MAAS");
    std::fs::write(&cfg, text).unwrap();
    let run = |key: Option<&str>, args: &[&str]| {
        let mut c = homelab();
        c.env("HOME", dir.path()).env("HOMELAB_STATE_DIR", dir.path().join("state")).env_remove("SSH_AUTH_SOCK");
        match key {
            Some(k) => c.env("MAAS_API_KEY", k),
            None => c.env_remove("MAAS_API_KEY"),
        };
        let o = c.args(args).arg(&cfg).output().unwrap();
        (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (code, out) = run(None, &["validate"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("missing.key does not exist and MAAS_API_KEY is not set"), "{out}");
    assert!(out.contains("maas.apiKeyFile") && out.contains("export MAAS_API_KEY"), "{out}");
    // The SSH key is missing too and no agent runs: said once, as a warning.
    assert!(out.contains("no SSH agent is running"), "{out}");
    let key = "AAAAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBB:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";
    let (_, out) = run(Some(key), &["validate"]);
    assert!(out.contains("runs use $MAAS_API_KEY instead"), "{out}");
    let (code, out) = run(None, &["kubeconfig"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("missing.key"), "{out}");
    let (code, out) = run(Some(key), &["kubeconfig"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        !out.contains("missing.key: No such file") && out.contains("127.0.0.1:9"),
        "the key came from the variable, MAAS was asked: {out}"
    );
}

/// `diagnose` with nothing to reach (issue 35): the archive is still written, with its
/// manifest saying why each item failed, and the command exits 1 naming what to check.
#[test]
fn diagnose_with_no_system_answering_writes_the_manifest_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: not-a-real-token-123}\ncontexts:\n- name: kind-kind\n  context: {cluster: c, user: u}\ncurrent-context: kind-kind\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(format!("{}/examples/existing-kind.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("kubeconfig: ~/.kube/config", &format!("kubeconfig: {}", kc.display()));
    let cfg = dir.path().join("cluster.yaml");
    std::fs::write(&cfg, text).unwrap();
    let to = dir.path().join("bundle.tar.gz");
    let o = homelab()
        .env("HOME", dir.path())
        .env("HOMELAB_STATE_DIR", dir.path().join("state"))
        .args(["diagnose", "--timeout", "5s", "--to"])
        .arg(&to)
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no system answered") && err.contains("the kubeconfig's server"), "{err}");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&to).unwrap());
    let mut names = Vec::new();
    let mut manifest = String::new();
    for e in tar::Archive::new(gz).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p.ends_with("manifest.json") {
            use std::io::Read as _;
            e.read_to_string(&mut manifest).unwrap();
        }
        names.push(p);
    }
    assert!(names.contains(&"kind-diagnose/manifest.json".to_owned()), "{names:?}");
    assert!(manifest.contains("\"kubernetes/\"") && manifest.contains("does not answer"), "{manifest}");
    assert!(!manifest.contains("not-a-real-token-123"));
}
