//! Remote execution on the machines: a small trait ([`Remote`], [`Connector`]) with two
//! implementations — the system OpenSSH client through the `openssh` crate ([`openssh_impl`]),
//! and the simulated hosts of `homelab demo` and the engine tests (`crate::sim::hosts`).

pub mod openssh_impl;
pub mod resilient;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// Record the key of a host seen for the first time; refuse a changed key.
    #[default]
    AcceptNew,
    /// Refuse hosts whose key is not already known.
    Strict,
}

/// One command: an argument vector (never a shell string built from user data), run with
/// `sudo -n` when `sudo` is set, with optional stdin and a deadline.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub sudo: bool,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Only observes: safe to send again on a fresh connection if the link broke.
    pub read_only: bool,
}

impl Cmd {
    pub fn new<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            sudo: false,
            stdin: None,
            timeout: Duration::from_secs(120),
            read_only: false,
        }
    }
    /// Marks an observation, which [`resilient::Resilient`] may re-send after a broken link.
    pub fn read_only(mut self) -> Cmd {
        self.read_only = true;
        self
    }
    pub fn sudo(mut self) -> Cmd {
        self.sudo = true;
        self
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }
    /// A `sh -c` script (our own text, never user input).
    pub fn script(script: &str) -> Cmd {
        Cmd::new(["sh", "-c", script])
    }
    /// The command as a user would type it, with every registered secret (join tokens)
    /// masked: for messages, never includes stdin.
    pub fn display(&self) -> String {
        crate::foundation::secrets::redact(&self.display_raw()).into_owned()
    }

    fn display_raw(&self) -> String {
        let mut s = if self.sudo { "sudo ".to_owned() } else { String::new() };
        if self.argv.first().map(String::as_str) == Some("sh") && self.argv.get(1).map(String::as_str) == Some("-c") {
            let first =
                self.argv.get(2).and_then(|s| s.lines().find(|l| l.starts_with("# homelab:"))).unwrap_or("# script");
            s.push_str(&format!("sh -c '{}…'", first));
            return s;
        }
        s.push_str(&self.argv.join(" "));
        s
    }
}

/// A connection refused because of the machine's host key (unknown under strict checking, or
/// changed since it was recorded). It will not fix itself, so nothing retries it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostKeyRefused(pub String);

/// Whether `e` (or anything it wraps) is a [`HostKeyRefused`].
pub fn is_host_key_refusal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<HostKeyRefused>())
}

#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit code; `None` when the process died of a signal or the connection broke.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// stdout and stderr together, trimmed (MicroK8s prints some errors on stdout).
    pub fn text(&self) -> String {
        let mut s = self.stdout.trim().to_owned();
        let e = self.stderr.trim();
        if !e.is_empty() {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(e);
        }
        s
    }
}

/// A connection to one machine.
#[async_trait]
pub trait Remote: Send + Sync {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output>;
    /// Commands sent so far (for benchmarks: SSH round trips per host).
    fn round_trips(&self) -> u64;
    async fn close(&self) {}
}

/// Where a machine is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HostAddr {
    pub hostname: String,
    pub ip: String,
}

/// Opens connections.
#[async_trait]
pub trait Connector: Send + Sync {
    /// One attempt to connect; callers retry with backoff while a machine boots.
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>>;
    /// For simulated hosts: the URL that stands for `https://<node-ip>:16443`.
    fn api_server_override(&self, _node_ip: &str) -> Option<String> {
        None
    }
    /// Forgets the recorded host key of `ip` (a machine MAAS will deploy again gets a new
    /// one). Nothing to forget by default.
    async fn forget_host_key(&self, _ip: &str) -> anyhow::Result<()> {
        Ok(())
    }
}
