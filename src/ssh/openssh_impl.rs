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
use std::path::{Path, PathBuf};
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

/// The most homelab keeps of one command's output and error output.
const MAX_STDOUT: u64 = 16 << 20;
const MAX_STDERR: u64 = 1 << 20;

pub struct OpenSshConnector {
    opts: SshOptions,
    sessions: Mutex<HashMap<HostAddr, Arc<SshRemote>>>,
    /// The jump host and the log its ssh writes (connections are opened one at a time).
    jump: Option<(String, PathBuf)>,
}

impl OpenSshConnector {
    pub fn new(opts: SshOptions) -> anyhow::Result<OpenSshConnector> {
        // The control sockets give anyone who can reach them a shell on every machine.
        crate::foundation::paths::private_dir(&opts.control_dir)?;
        if let Some(parent) = opts.known_hosts_file.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        crate::foundation::paths::private_file(&opts.known_hosts_file)?;
        let mut opts = opts;
        let mut jump_log = None;
        if let Some(jump) = opts.jump_host.take() {
            let (config, log) = write_jump_config(&opts, &jump)?;
            opts.config_file = Some(config);
            jump_log = Some((jump, log));
        }
        Ok(OpenSshConnector { opts, sessions: Mutex::new(HashMap::new()), jump: jump_log })
    }
}

/// `ssh -J` starts a second ssh for the jump host that gets none of the options of the first:
/// it would check the jump host's key against `~/.ssh/known_hosts` with ssh's default policy.
/// Instead the connection goes through a `ProxyCommand` that passes homelab's known_hosts file,
/// host-key policy, batch mode and identity to the jump as well, written to an ssh_config in the
/// private control directory that then includes the user's own configuration.
fn write_jump_config(o: &SshOptions, jump: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let valid = !jump.is_empty()
        && !jump.starts_with('-')
        && jump.chars().all(|c| c.is_ascii_alphanumeric() || "@._-:[]".contains(c));
    if !valid {
        anyhow::bail!(
            "`ssh.jumpHost` {jump:?} is not `[user@]host[:port]`\n  hint: write it as for `ssh -J`, e.g. `admin@bastion.lan:22`"
        );
    }
    // `user@host:port` is not an ssh destination; `ssh://user@host:port` is.
    let has_port = match jump.rsplit_once(']') {
        Some((_, rest)) => rest.starts_with(':'),
        None => jump.contains(':'),
    };
    let dest = if has_port { format!("ssh://{jump}") } else { jump.to_owned() };
    let policy = match o.host_key_checking {
        HostKeyChecking::Strict => "yes",
        HostKeyChecking::AcceptNew => "accept-new",
    };
    let base = o.config_file.clone().or_else(|| dirs::home_dir().map(|h| h.join(".ssh/config")));
    let mut args: Vec<String> = vec!["ssh".into()];
    if let Some(b) = &base
        && b.exists()
    {
        args.extend(["-F".into(), b.display().to_string()]);
    }
    args.extend([
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("StrictHostKeyChecking={policy}"),
        "-o".into(),
        format!("UserKnownHostsFile={}", o.known_hosts_file.display()),
        "-o".into(),
        format!("ConnectTimeout={}", o.connect_timeout.as_secs().max(1)),
    ]);
    if let Some(k) = &o.identity_file {
        args.extend(["-i".into(), k.display().to_string()]);
    }
    let stem = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (jump, &o.known_hosts_file, policy, &base).hash(&mut h);
        format!("jump-{:016x}", h.finish())
    };
    let log = o.control_dir.join(format!("{stem}.log"));
    // Its errors (a refused host key) go to a log homelab reads when the connection fails.
    args.extend(["-E".into(), log.display().to_string()]);
    args.extend(["-W".into(), "[%h]:%p".into(), dest]);
    // The shell runs the command: quote every word; `%` is ssh's token sign, except in `-W`.
    let command: Vec<String> =
        args.iter().map(|a| if a == "[%h]:%p" { a.clone() } else { sh_quote(&a.replace('%', "%%")) }).collect();
    let mut text = format!(
        "# Written by homelab for the jump host {jump}: do not edit (it is rewritten on every run).\nHost *\n  ProxyCommand {}\n",
        command.join(" ")
    );
    if let Some(b) = &base
        && b.exists()
        && b != Path::new("/dev/null")
    {
        text.push_str(&format!("  Include \"{}\"\n", b.display()));
    }
    let path = o.control_dir.join(format!("{stem}.conf"));
    crate::foundation::files::write_atomic(&path, text.as_bytes(), crate::foundation::files::Mode::Private)
        .with_context(|| format!("cannot write the jump-host ssh configuration {}", path.display()))?;
    Ok((path, log))
}

/// One word for `sh`: single-quoted unless it is plainly safe.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-[]".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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
    /// `ssh-keygen -R` on homelab's known_hosts (it finds hashed names too).
    async fn forget_host_key(&self, ip: &str) -> anyhow::Result<()> {
        let name = if self.opts.port == 22 { ip.to_owned() } else { format!("[{ip}]:{}", self.opts.port) };
        if !self.opts.known_hosts_file.exists() {
            return Ok(());
        }
        let out = tokio::process::Command::new("ssh-keygen")
            .arg("-R")
            .arg(&name)
            .arg("-f")
            .arg(&self.opts.known_hosts_file)
            .output()
            .await
            .map_err(|e| anyhow::anyhow!("cannot run ssh-keygen to forget the host key of {ip}: {e}"))?;
        if !out.status.success() {
            anyhow::bail!(
                "ssh-keygen -R {name} failed: {}\n  hint: remove {ip}'s line from {} by hand",
                String::from_utf8_lossy(&out.stderr).trim(),
                self.opts.known_hosts_file.display()
            );
        }
        Ok(())
    }

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
        if let Some(c) = &o.config_file {
            b.config_file(c);
        }
        if let Some((_, log)) = &self.jump {
            let _ = std::fs::write(log, "");
        }
        let session = b.connect_mux(&host.ip).await.map_err(|e| {
            let detail = error_chain(&e);
            // A failure of the jump host shows in its own log, not in the connection's error.
            if let Some((jump, log)) = &self.jump {
                let text = crate::foundation::limits::read_text(log, 64 << 10, "the jump host's ssh log").unwrap_or_default();
                let text = crate::foundation::text::one_line(&text);
                if !text.is_empty() {
                    let host_key = text.contains("Host key verification failed") || text.contains("IDENTIFICATION HAS CHANGED");
                    let hint = if host_key {
                        format!("homelab checks the jump host's key like the machines' (`{}`, {}): add the jump host's key there after checking its fingerprint (`ssh-keyscan` it), or set `ssh.hostKeyChecking: accept-new` for the first run", match o.host_key_checking { HostKeyChecking::Strict => "hostKeyChecking: strict", HostKeyChecking::AcceptNew => "hostKeyChecking: accept-new" }, o.known_hosts_file.display())
                    } else {
                        format!("check that the jump host {jump} is reachable and accepts {}", o.identity_file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "your key".into()))
                    };
                    let msg = format!("cannot connect with SSH to {} ({}) through the jump host {jump}: {text}\n  hint: {hint}", host.hostname, host.ip);
                    return if host_key { anyhow::Error::new(super::HostKeyRefused(msg)) } else { anyhow!(msg) };
                }
            }
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
            // Read both streams as they come, keeping at most the limit of each.
            let mut out = child.stdout().take();
            let mut err = child.stderr().take();
            let read_out = async {
                match out.as_mut() {
                    Some(o) => crate::foundation::limits::read_stream(o, MAX_STDOUT).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let read_err = async {
                match err.as_mut() {
                    Some(e) => crate::foundation::limits::read_stream(e, MAX_STDERR).await,
                    None => Ok((Vec::new(), false)),
                }
            };
            let (o, e) = tokio::join!(read_out, read_err);
            let (o, e) = (o.map_err(openssh::Error::ChildIo)?, e.map_err(openssh::Error::ChildIo)?);
            // openssh reports exit 127 (the shell found no such command: a login as root runs
            // `microk8s` without sudo, whose own answer would be exit 1) as an error; it is an
            // answer, not a broken connection, and must not be retried as one.
            let code = match child.wait().await {
                Ok(status) => status.code(),
                Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
                Err(e) => return Err(e),
            };
            Ok::<_, openssh::Error>((code, o, e))
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
        let (code, (stdout, stdout_over), (stderr, stderr_over)) = out;
        if stdout_over || stderr_over {
            return Err(anyhow!(
                "`{}` on {} wrote more than {} MiB to its {}, the most homelab reads; it ignored the output\n  hint: this command's output is normally small: check the machine (a broken or replaced tool on its PATH?)",
                cmd.display(),
                self.host.hostname,
                if stdout_over { MAX_STDOUT } else { MAX_STDERR } >> 20,
                if stdout_over { "output" } else { "error output" }
            ));
        }
        if code == Some(255) && self.session.check().await.is_err() {
            return Err(anyhow!(
                "the SSH connection to {} broke while running `{}`",
                self.host.hostname,
                cmd.display()
            ));
        }
        Ok(Output {
            code,
            // Both reach the user in messages and errors: terminal-safe.
            stdout: crate::foundation::text::printable(&String::from_utf8_lossy(&stdout)).into_owned(),
            stderr: crate::foundation::text::printable(&String::from_utf8_lossy(&stderr)).into_owned(),
        })
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}
