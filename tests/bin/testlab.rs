//! `homelab-testlab`: the real `homelab` command line, with one difference: the machines it
//! reaches over "SSH" are the simulated hosts of a test harness, served over HTTP at the URL
//! in `HOMELAB_TESTLAB_HOSTS`. MAAS and the API server are simulated behind real URLs already.
//! The crash tests SIGKILL it and the scale benchmark measures its memory. It is a cargo
//! example target, so it is built by `cargo test` and never installed with the release binary,
//! whose world cannot be redirected.
//!
//! `homelab-testlab __ssh-relay` is the other end: the forced command of a real `sshd` in the
//! real-sshd day-2 tests. It takes the command the SSH client sent (`SSH_ORIGINAL_COMMAND`,
//! split as the remote shell would), its stdin, runs it on the simulated host at `HL_IP`
//! (the harness's URL in `HL_RELAY`) and answers with its output and exit code, so the real
//! OpenSSH client path (host keys, multiplexing, quoting, exit codes, a dead sshd) meets the
//! simulators' MicroK8s, dqlite and Ceph.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__ssh-relay") {
        return relay();
    }
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

fn relay() -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    match rt.map_err(anyhow::Error::from).and_then(|rt| rt.block_on(relay_once())) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("homelab-testlab relay: {e:#}");
            ExitCode::from(255)
        }
    }
}

async fn relay_once() -> anyhow::Result<u8> {
    use std::io::{Read, Write};
    let env = |k: &str| std::env::var(k).map_err(|_| anyhow::anyhow!("{k} is not set"));
    let (url, ip, name) = (env("HL_RELAY")?, env("HL_IP")?, env("HL_NAME")?);
    let line = env("SSH_ORIGINAL_COMMAND")?;
    let argv = shlex::split(&line).ok_or_else(|| anyhow::anyhow!("cannot split {line:?} as a shell would"))?;
    if let Ok(state) = std::env::var("HL_STATE") {
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(format!("{state}/commands.log"))?;
        writeln!(log, "{}", argv.join(" "))?;
    }
    let mut stdin = Vec::new();
    std::io::stdin().read_to_end(&mut stdin)?;
    let host = serde_json::json!({"hostname": name, "ip": ip});
    homelab::foundation::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let r: serde_json::Value = http.post(format!("{url}/connect")).json(&host).send().await?.json().await?;
    if r["ok"] != true {
        eprintln!("{}", r["error"].as_str().unwrap_or("connect failed"));
        return Ok(255);
    }
    // Root's commands, and `sudo -n …`, run with root's rights on the simulated host (homelab
    // sends no `sudo` when it logs in as root).
    let (argv, sudo) = match argv.as_slice() {
        [s, n, rest @ ..] if s == "sudo" && n == "-n" => (rest.to_vec(), true),
        _ => (argv.clone(), std::env::var("USER").is_ok_and(|u| u == "root")),
    };
    let cmd = serde_json::json!({
        "argv": argv,
        "sudo": sudo,
        "stdin": if stdin.is_empty() { None } else { Some(stdin) },
        "timeout_ms": 3_600_000u64,
        "read_only": false,
    });
    let r: serde_json::Value = http
        .post(format!("{url}/run"))
        .json(&serde_json::json!({"host": host, "cmd": cmd}))
        .send()
        .await?
        .json()
        .await?;
    if r["ok"] != true {
        eprintln!("{}", r["error"].as_str().unwrap_or("run failed"));
        return Ok(255);
    }
    print!("{}", r["stdout"].as_str().unwrap_or(""));
    eprint!("{}", r["stderr"].as_str().unwrap_or(""));
    std::io::stdout().flush()?;
    Ok(r["code"].as_i64().and_then(|c| u8::try_from(c).ok()).unwrap_or(255))
}
