//! Running the real `homelab` binary against a simulated lab: MAAS and the API server are
//! HTTP already; the simulated hosts are served over HTTP to the test-only binary
//! `homelab-testlab` (tests/bin/testlab.rs), which `cargo test` builds as an example.

#![allow(dead_code)]

use homelab::sim::lab::{FullLab, FullLabOptions};
use std::path::PathBuf;
use std::process::Command;

pub struct World {
    pub lab: FullLab,
    pub hosts_url: String,
    pub yaml: PathBuf,
    _task: tokio::task::JoinHandle<()>,
}

impl World {
    pub async fn start(opts: FullLabOptions, example: &str) -> World {
        let lab = FullLab::start(opts).await.unwrap();
        let (hosts_url, task) = homelab::sim::hosts_http::serve(lab.hosts.clone()).await.unwrap();
        let text = std::fs::read_to_string(format!("{}/examples/{example}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let body: String = text.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
        let yaml = lab.lab.path("cluster.yaml");
        std::fs::write(&yaml, lab.lab.cluster_yaml(&body)).unwrap();
        World { lab, hosts_url, yaml, _task: task }
    }

    /// A lab already set up (pre-installed hosts added), with the cluster file `yaml`.
    pub async fn with_file(lab: FullLab, yaml: &str) -> World {
        let (hosts_url, task) = homelab::sim::hosts_http::serve(lab.hosts.clone()).await.unwrap();
        let path = lab.lab.path("cluster.yaml");
        std::fs::write(&path, yaml).unwrap();
        World { lab, hosts_url, yaml: path, _task: task }
    }

    /// `homelab <args…>` wired to this lab.
    pub fn homelab(&self, args: &[&str], upstream: &std::path::Path) -> Command {
        let mut c = Command::new(testlab_bin());
        c.args(args)
            .env("HOMELAB_TESTLAB_HOSTS", &self.hosts_url)
            .env("HOMELAB_TIMINGS", "fast")
            .env("HOMELAB_STATE_DIR", self.lab.lab.path("state-root"))
            .env("HOMELAB_CACHE_DIR", self.lab.lab.path("cache"))
            .env("HOMELAB_MANIFEST_DIR", upstream)
            .env_remove("RUST_LOG")
            .env_remove("MAAS_API_KEY");
        c
    }
}

/// The test-only binary, built by `cargo test` next to the test executables.
pub fn testlab_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test>-<hash> → target/<profile>/examples/homelab-testlab
    let bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("examples/homelab-testlab")).unwrap_or_default();
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds it; with a filter such as `--test crash` build it first with `cargo build --example homelab-testlab`",
        bin.display()
    );
    bin
}

/// Every secret value the lab holds: the MAAS key and its parts, the credentials of the
/// kubeconfig homelab wrote, and each secret value (passwords, keys, tokens, URIs with
/// passwords, JAAS lines) of every Secret in the API server.
pub fn lab_secrets(w: &World, state: &std::path::Path) -> Vec<String> {
    let mut s = Vec::new();
    let key = std::fs::read_to_string(w.lab.lab.path("maas.key")).unwrap();
    s.push(key.trim().to_owned());
    s.extend(key.trim().split(':').map(str::to_owned));
    for e in std::fs::read_dir(state).unwrap().flatten() {
        let kc = e.path().join("kubeconfig");
        if let Ok(text) = std::fs::read_to_string(&kc) {
            for l in text.lines() {
                for k in ["token:", "client-key-data:", "password:"] {
                    if let Some(v) = l.trim().strip_prefix(k) {
                        s.push(v.trim().trim_matches('"').to_owned());
                    }
                }
            }
        }
    }
    for secret in w.lab.api.objects("", "secrets", None) {
        if let Some(data) = secret["data"].as_object() {
            // The values that are secret by their key (a Secret also holds host names,
            // user names and public certificates).
            let secret_key = |k: &str| {
                let k = k.to_ascii_lowercase();
                ["password", "key", "token", "jaas", "uri", "pgpass", "keyring", "secret"].iter().any(|w| k.contains(w))
                    && !k.ends_with(".crt")
            };
            for (k, v) in data {
                if !secret_key(k) {
                    continue;
                }
                if let Some(b) = v.as_str().and_then(|b| {
                    {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.decode(b)
                    }
                    .ok()
                }) && let Ok(t) = String::from_utf8(b)
                {
                    s.extend(t.lines().map(|l| l.trim().to_owned()));
                }
            }
        }
    }
    s.retain(|v| v.len() >= 8);
    s.sort();
    s.dedup();
    s
}
