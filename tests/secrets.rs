//! Secrets never reach the output: the real binary runs against the simulated lab in every
//! output mode and log level, on success and on error paths, and none of the MAAS key parts,
//! join tokens or kubeconfig credentials appears in what it printed.

mod support;

use homelab::sim::lab::FullLabOptions;
use homelab::sim::maas::SIM_API_KEY;
use support::subproc::World;

fn secrets(w: &World) -> Vec<String> {
    let mut s: Vec<String> = SIM_API_KEY.split(':').map(str::to_owned).collect();
    s.push(SIM_API_KEY.to_owned());
    for h in ["kvm4", "kvm5"] {
        for c in w.lab.hosts.commands(h).iter().filter(|c| c.starts_with("microk8s join")) {
            let t = c.split('/').nth(1).unwrap().to_owned();
            s.push(t);
        }
    }
    let kc = std::fs::read_to_string(w.lab.lab.path("state-root/lab/kubeconfig")).unwrap();
    let token = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .trim_matches('\'')
        .trim_matches('"')
        .to_owned();
    s.push(token);
    s
}

fn run(w: &World, args: &[&str], up: &std::path::Path) -> (i32, String) {
    let out = w.homelab(args, up).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_output_mode_log_level_or_error_path() {
    let Some(upstream) = support::mirror::upstream() else { return };
    let w = World::start(FullLabOptions::default(), "seed-2023.yaml").await;
    let yaml = w.yaml.to_str().unwrap().to_owned();
    let mut outputs = Vec::new();
    let up_json = tokio::task::block_in_place(|| run(&w, &["up", &yaml, "-o", "json", "-vvv"], &upstream));
    assert_eq!(up_json.0, 0, "{}", up_json.1);
    outputs.push(("up -o json -vvv", up_json.1));
    for args in [
        vec!["up", &yaml],
        vec!["up", &yaml, "-vvv"],
        vec!["up", &yaml, "--dry-run", "-vv"],
        vec!["status", &yaml],
        vec!["status", &yaml, "-o", "json", "-vvv"],
    ] {
        let (code, out) = tokio::task::block_in_place(|| run(&w, &args, &upstream));
        assert!(code == 0, "{args:?}: {out}");
        outputs.push(("ok path", out));
    }
    // Error paths: a wrong MAAS secret (MAAS's 401 echoes the expected one), a key of the
    // wrong shape, and an unreachable MAAS.
    let key_file = w.lab.lab.path("maas.key");
    let parts: Vec<&str> = SIM_API_KEY.split(':').collect();
    std::fs::write(&key_file, format!("{}:{}:WrongWrongWrongWrongWrongWrong12", parts[0], parts[1])).unwrap();
    for args in
        [vec!["up", &yaml, "-vvv"], vec!["status", &yaml, "-o", "json"], vec!["up", &yaml, "-o", "json", "-vvv"]]
    {
        let (code, out) = tokio::task::block_in_place(|| run(&w, &args, &upstream));
        assert_ne!(code, 0);
        assert!(out.contains("MAAS refused the API key") || out.contains("Invalid signature"), "{out}");
        outputs.push(("wrong secret", out));
    }
    std::fs::write(&key_file, SIM_API_KEY.replace(':', ";")).unwrap();
    let (code, out) = tokio::task::block_in_place(|| run(&w, &["up", &yaml, "-vvv"], &upstream));
    assert_eq!(code, 2, "{out}");
    outputs.push(("bad shape", out));
    let all = secrets(&w);
    assert!(all.len() >= 7, "{all:?}");
    for (what, out) in &outputs {
        for s in &all {
            assert!(!out.contains(s.as_str()), "{what}: secret {s:?} leaked in:\n{out}");
        }
    }
}
