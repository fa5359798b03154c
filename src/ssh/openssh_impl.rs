//! [`Remote`] on the system OpenSSH client (the `openssh` crate, native multiplexing), so
//! `~/.ssh/config`, the agent, `ProxyJump` and known_hosts work as the user expects.
//!
//! One master connection per host, reused for every command; at most 8 commands in flight
//! per host (sshd's `MaxSessions` defaults to 10). Host keys: `accept-new` records a new key
//! and refuses a changed one; `strict` refuses unknown hosts.

use super::HostKeyChecking;
use super::{Cmd, Connector, HostAddr, Output, Remote};
use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

#[derive(Debug, Clone)]
pub struct SshOptions {
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub known_hosts_file: PathBuf,
    pub host_key_checking: HostKeyChecking,
    pub jump_host: Option<String>,
    /// Short private directory for control sockets (Unix socket paths are limited to ~108 bytes).
    pub control_dir: PathBuf,
    pub connect_timeout: Duration,
    /// An ssh_config file to use instead of `~/.ssh/config` (tests).
    pub config_file: Option<PathBuf>,
}

pub struct OpenSshConnector {
    opts: SshOptions,
    sessions: Mutex<HashMap<HostAddr, Arc<SshRemote>>>,
}

impl OpenSshConnector {
    pub fn new(opts: SshOptions) -> anyhow::Result<OpenSshConnector> {
        std::fs::create_dir_all(&opts.control_dir)
            .with_context(|| format!("cannot create {}", opts.control_dir.display()))?;
        if let Some(parent) = opts.known_hosts_file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(OpenSshConnector { opts, sessions: Mutex::new(HashMap::new()) })
    }
}

pub struct SshRemote {
    host: HostAddr,
    session: Session,
    user_is_root: bool,
    permits: Semaphore,
    trips: AtomicU64,
}

#[async_trait]
impl Connector for OpenSshConnector {
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>> {
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(host)
            && s.session.check().await.is_ok()
        {
            return Ok(s.clone());
        }
        let o = &self.opts;
        let mut b = SessionBuilder::default();
        b.user(o.user.clone())
            .port(o.port)
            .known_hosts_check(match o.host_key_checking {
                HostKeyChecking::Strict => KnownHosts::Strict,
                HostKeyChecking::AcceptNew => KnownHosts::Add,
            })
            .user_known_hosts_file(&o.known_hosts_file)
            .control_directory(&o.control_dir)
            .connect_timeout(o.connect_timeout.max(Duration::from_secs(1)))
            .server_alive_interval(Duration::from_secs(15));
        if let Some(k) = &o.identity_file {
            b.keyfile(k);
        }
        if let Some(j) = &o.jump_host {
            b.jump_hosts([j]);
        }
        if let Some(c) = &o.config_file {
            b.config_file(c);
        }
        let session = b.connect_mux(&host.ip).await.map_err(|e| {
            let detail = error_chain(&e);
            let host_key = detail.contains("IDENTIFICATION HAS CHANGED") || detail.contains("Host key verification failed");
            let hint = if host_key {
                if detail.contains("No ED25519 host key is known") || detail.contains("No RSA host key is known") || detail.contains("No ECDSA host key is known") || !detail.contains("CHANGED") {
                    let port = if o.port == 22 { String::new() } else { format!("-p {} ", o.port) };
                    format!("the host key of {} is not known and hostKeyChecking is strict; add it to {} first (e.g. `ssh-keyscan {port}{} >> {}` after checking its fingerprint), or set `ssh.hostKeyChecking: accept-new` for the first run", host.ip, o.known_hosts_file.display(), host.ip, o.known_hosts_file.display())
                } else {
                    format!(
                        "the host key of {} changed since homelab recorded it: if MAAS redeployed this machine, remove the old key with `ssh-keygen -R {} -f {}`; otherwise someone may be impersonating it",
                        host.ip,
                        known_hosts_name(&host.ip, o.port),
                        o.known_hosts_file.display()
                    )
                }
            } else if detail.contains("Permission denied") {
                format!("the machine refused the key: MAAS gives a deployed machine the keys registered before the deploy; check that {} matches `ssh.identityFile` and that the user is `{}`", o.identity_file.as_ref().map(|p| format!("{}.pub", p.display())).unwrap_or_else(|| "your key".into()), o.user)
            } else {
                format!("the machine may still be booting; check that it is on and reachable on port {}", o.port)
            };
            let msg = format!("cannot connect with SSH to {} ({}): {detail}\n  hint: {hint}", host.hostname, host.ip);
            if host_key { anyhow::Error::new(super::HostKeyRefused(msg)) } else { anyhow!(msg) }
        })?;
        let remote = Arc::new(SshRemote {
            host: host.clone(),
            session,
            user_is_root: o.user == "root",
            permits: Semaphore::new(8),
            trips: AtomicU64::new(0),
        });
        sessions.insert(host.clone(), remote.clone());
        Ok(remote)
    }
}

/// How known_hosts names a host: the bare address on port 22, else `[address]:port` (quoted
/// for the shell, as the hint is pasted into one).
fn known_hosts_name(ip: &str, port: u16) -> String {
    if port == 22 { ip.to_owned() } else { format!("'[{ip}]:{port}'") }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(t.trim());
        }
        cur = c.source();
    }
    s
}

#[async_trait]
impl Remote for SshRemote {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let _permit =
            self.permits.acquire().await.map_err(|_| anyhow!("connection to {} is closing", self.host.hostname))?;
        self.trips.fetch_add(1, Ordering::Relaxed);
        let (program, args): (&str, Vec<&str>) = if cmd.sudo && !self.user_is_root {
            ("sudo", std::iter::once("-n").chain(cmd.argv.iter().map(String::as_str)).collect())
        } else {
            let mut it = cmd.argv.iter().map(String::as_str);
            (it.next().unwrap_or("true"), it.collect())
        };
        let fut = async {
            let mut c = self.session.command(program);
            c.args(&args);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
            let mut child = c.spawn().await?;
            if let (Some(data), Some(mut stdin)) = (cmd.stdin.as_ref(), child.stdin().take()) {
                stdin.write_all(data).await.map_err(openssh::Error::ChildIo)?;
                stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
                drop(stdin);
            }
            child.wait_with_output().await
        };
        let out = match tokio::time::timeout(cmd.timeout, fut).await {
            Err(_) => {
                return Err(anyhow!(
                    "`{}` on {} did not finish within {:?}",
                    cmd.display(),
                    self.host.hostname,
                    cmd.timeout
                ));
            }
            Ok(Err(e)) => {
                return Err(anyhow!("`{}` on {} failed: {}", cmd.display(), self.host.hostname, error_chain(&e)));
            }
            Ok(Ok(o)) => o,
        };
        let code = out.status.code();
        if code == Some(255) && self.session.check().await.is_err() {
            return Err(anyhow!(
                "the SSH connection to {} broke while running `{}`",
                self.host.hostname,
                cmd.display()
            ));
        }
        Ok(Output {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}
