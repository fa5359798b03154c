//! One SSH connection to a simulated machine: the faults a test injects on the way (a dropped
//! command, a lost answer, a reboot), the SSH costs, and the helpers the command answers
//! share. What the machine does with a command is in `shell` and `microk8s`.

use super::SimHostsConfig;
use super::state::{Host, World};
use crate::ssh::{Cmd, Output, Remote};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) struct SimRemote {
    pub(super) world: Arc<Mutex<World>>,
    /// The boot this connection was opened in.
    pub(super) boot: u64,
    pub(super) ip: String,
    pub(super) cfg: SimHostsConfig,
    pub(super) trips: AtomicU64,
}

pub(super) fn out(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Output {
    Output { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
}

/// How long a join takes until the node is Ready: workers "a few seconds", control planes
/// the whole dqlite join (docs/microk8s.md, Timing).
/// MicroK8s runs on the host: installed (or refreshed) long enough ago, and not broken.
pub(super) fn host_running(h: &Host, cfg: &SimHostsConfig) -> bool {
    h.snap.as_ref().is_some_and(|(_, at)| at.elapsed() >= cfg.install_time) && !h.broken
}

pub(super) fn join_settle(cfg: &SimHostsConfig, worker: bool) -> Duration {
    if worker { cfg.join_time / 4 } else { cfg.join_time }
}

pub(super) fn minor_of(channel: &str) -> (u32, u32) {
    crate::catalog::parse_minor(channel).unwrap_or((1, 33))
}

pub(super) fn hex(n: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51afd7ed558ccd);
            x ^= x >> 29;
            char::from_digit((x % 16) as u32, 16).unwrap_or('0')
        })
        .collect()
}

impl SimRemote {
    fn exec(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let label = if cmd.argv.first().map(String::as_str) == Some("sh") { cmd.display() } else { cmd.argv.join(" ") };
        let hostname = {
            let h = w.hosts.get_mut(&self.ip).ok_or_else(|| anyhow::anyhow!("host {} vanished", self.ip))?;
            h.commands.push(label);
            h.hostname.clone()
        };
        if w.boots.get(&self.ip).copied().unwrap_or(0) != self.boot {
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        let label = w.hosts.get(&self.ip).and_then(|h| h.commands.last().cloned()).unwrap_or_default();
        if w.faults.drop_before.get(&hostname).is_some_and(|n| label.contains(n.as_str())) {
            w.faults.drop_before.remove(&hostname);
            anyhow::bail!("client_loop: send disconnect: Broken pipe (to {hostname})");
        }
        let lose_answer = w.faults.drop_after.get(&hostname).is_some_and(|n| label.contains(n.as_str()));
        if lose_answer {
            w.faults.drop_after.remove(&hostname);
            drop(w);
            let _ = self.exec_inner(cmd);
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        if let Some(down) = w.faults.reboot_next.remove(&hostname) {
            *w.boots.entry(self.ip.clone()).or_insert(0) += 1;
            w.down_until.insert(self.ip.clone(), Instant::now() + down);
            anyhow::bail!("Connection to {} closed by remote host.", self.ip);
        }
        // `sudo -n` on a machine whose sudo wants a password: refused before the command runs.
        if cmd.sudo && w.hosts.get(&self.ip).is_some_and(|h| h.sys.sudo_password) {
            return Ok(Output {
                code: Some(1),
                stdout: String::new(),
                stderr: "sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n".into(),
            });
        }
        drop(w);
        self.exec_inner(cmd)
    }
}

#[async_trait]
impl Remote for SimRemote {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        // Joins and waits sleep: keep them off the async workers.
        let me = SimRemote {
            world: self.world.clone(),
            boot: self.boot,
            ip: self.ip.clone(),
            cfg: self.cfg.clone(),
            trips: AtomicU64::new(0),
        };
        let cmd = cmd.clone();
        if !self.cfg.ssh.command.is_zero() {
            tokio::time::sleep(self.cfg.ssh.command).await;
        }
        tokio::task::spawn_blocking(move || me.exec(&cmd)).await?
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}
