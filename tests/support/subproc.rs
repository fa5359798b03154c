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
