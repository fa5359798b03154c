//! `homelab-testlab`: the real `homelab` command line, with one difference: the machines it
//! reaches over "SSH" are the simulated hosts of a test harness, served over HTTP at the URL
//! in `HOMELAB_TESTLAB_HOSTS`. MAAS and the API server are simulated behind real URLs already.
//! The crash tests SIGKILL it and the scale benchmark measures its memory. It is a cargo
//! example target, so it is built by `cargo test` and never installed with the release binary,
//! whose world cannot be redirected.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    homelab::cli::main_with(Box::new(|cluster, origin, needs_maas| {
        let mut world = homelab::ops::world::real(cluster, origin, needs_maas)?;
        let url = std::env::var("HOMELAB_TESTLAB_HOSTS")
            .map_err(|_| anyhow::anyhow!("homelab-testlab needs HOMELAB_TESTLAB_HOSTS (the simulated hosts' URL)"))?;
        let hosts = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(homelab::sim::hosts_http::HttpHosts::new(&url))
        })?;
        world.hosts = Arc::new(hosts);
        Ok(world)
    }))
}
