//! A connection that survives a dropped link or a rebooting machine.
//!
//! `Remote::run` returns `Err` only when the transport failed (a non-zero exit is an `Ok`
//! with its code), so on `Err` the connection is thrown away and the next command opens a
//! new one. Commands marked [`Cmd::read_only`] (observations: the facts script, status,
//! node lists, `microk8s config`) are retried on a fresh connection with backoff until the
//! deadline, so a machine that reboots under us costs a wait, not a failed run. A mutating
//! command is never re-sent blind: homelab cannot know whether it ran, so the error says
//! so and the next `up` observes before it acts.

use super::{Cmd, Connector, HostAddr, Output, Remote};
use crate::foundation::wait::Backoff;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Resilient {
    connector: Arc<dyn Connector>,
    addr: HostAddr,
    current: tokio::sync::Mutex<Option<Arc<dyn Remote>>>,
    /// Round trips of connections already thrown away.
    past_trips: AtomicU64,
    deadline: Duration,
    backoff: Backoff,
}

impl Resilient {
    /// Wraps an open connection; `deadline` bounds the reconnect-and-retry of read-only commands.
    pub fn new(
        connector: Arc<dyn Connector>,
        addr: HostAddr,
        first: Arc<dyn Remote>,
        deadline: Duration,
        backoff: Backoff,
    ) -> Resilient {
        Resilient {
            connector,
            addr,
            current: tokio::sync::Mutex::new(Some(first)),
            past_trips: AtomicU64::new(0),
            deadline,
            backoff,
        }
    }

    async fn connection(&self) -> anyhow::Result<Arc<dyn Remote>> {
        let mut cur = self.current.lock().await;
        if let Some(r) = cur.as_ref() {
            return Ok(r.clone());
        }
        let r = self.connector.connect(&self.addr).await?;
        *cur = Some(r.clone());
        Ok(r)
    }

    async fn discard(&self, broken: &Arc<dyn Remote>) {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            self.past_trips.fetch_add(broken.round_trips(), Ordering::Relaxed);
            *cur = None;
            drop(cur);
            broken.close().await;
        }
    }
}

#[async_trait]
impl Remote for Resilient {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        let end = tokio::time::Instant::now() + self.deadline;
        let mut pause = self.backoff.first;
        let host = &self.addr.hostname;
        // The exact command, for the run log (its stdin, which may carry a secret, never).
        tracing::debug!(target: "homelab::ssh", "{host}: run `{}`", cmd.display());
        let started = std::time::Instant::now();
        loop {
            let e = match self.connection().await {
                Ok(r) => match r.run(cmd).await {
                    Ok(out) => {
                        tracing::debug!(target: "homelab::ssh", "{host}: exit {:?} in {} ms", out.code, started.elapsed().as_millis());
                        return Ok(out);
                    }
                    Err(e) => {
                        self.discard(&r).await;
                        e
                    }
                },
                Err(e) => e,
            };
            if !cmd.read_only {
                return Err(anyhow::anyhow!(
                    "the connection to {host} broke while running `{}`; homelab cannot tell whether it finished ({})\n  hint: run `homelab up` again — it checks each machine before acting, so nothing is done twice",
                    cmd.display(),
                    crate::foundation::secrets::redact(&format!("{e:#}"))
                ));
            }
            if super::is_host_key_refusal(&e) {
                return Err(e);
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Err(anyhow::anyhow!(
                    "{host} did not answer `{}` again within {}s after the connection broke ({})\n  hint: check that {host} is powered on and booted (its console in MAAS) and reachable on port 22, then run `homelab up` again",
                    cmd.display(),
                    self.deadline.as_secs(),
                    crate::foundation::secrets::redact(&format!("{e:#}"))
                ));
            }
            tracing::debug!(host = %host, error = %format!("{e:#}"), "connection lost; retrying a read-only command");
            tokio::time::sleep(pause.min(end - now)).await;
            pause = self.backoff.next(pause);
        }
    }

    fn round_trips(&self) -> u64 {
        let live = self.current.try_lock().ok().and_then(|c| c.as_ref().map(|r| r.round_trips())).unwrap_or(0);
        self.past_trips.load(Ordering::Relaxed) + live
    }

    async fn close(&self) {
        if let Some(r) = self.current.lock().await.take() {
            r.close().await;
        }
    }
}
