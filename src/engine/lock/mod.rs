//! Two homelab runs must never change the same cluster at once, whichever workstation they
//! run on. Three locks, taken in this order, each before the changes it protects:
//!
//! * [`local`]: an advisory `flock` on `<state dir>/lock`. A second run on the same
//!   workstation waits up to `--lock-timeout` or exits, naming the holder (host, pid,
//!   command, since). The kernel releases the lock of a killed run.
//! * [`maas`]: a claim in the MAAS owner data of the declared control planes the MAAS user
//!   owns, which every workstation reaching that MAAS sees. Before deciding anything a run
//!   waits while another run's claim stands; it writes its own right before its first change
//!   (a converged run writes nothing to MAAS) and before it takes the Lease.
//! * [`lease`]: once the cluster's API answers, the Lease `kube-system/homelab-run`.
//!
//! The two shared locks follow one rule ([`claim_state`]): a claim is free when nobody holds
//! it, when this run does, when its holder is a dead process on this machine, or when it is
//! stale. Another machine's clock is trusted to [`CLOCK_SKEW_SECONDS`] and no duration above
//! [`MAX_HONOURED_SECONDS`] is honoured: a claim renewed recently, or "in the future", is
//! stale only once this run has itself watched it stay unchanged for its whole duration. Each
//! holder renews its claims only while they still name it, and a run that finds one taken
//! is told through its `lost` channel and stops.

pub mod lease;
pub mod local;
pub mod maas;

pub use lease::{LEASE_NAME, LEASE_NAMESPACE, LeaseGuard, acquire_lease, acquire_lease_as, lease_claim};
pub use local::{LocalLock, acquire_local};
pub use maas::{MAAS_KEY, MaasLockGuard, MaasLockTimes, acquire_maas, wait_while_held};

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Another workstation's run claimed the cluster between this run's look and its first
/// change. Nothing was changed; the run may start over once that run is done.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Preempted(pub String);

/// The run stopped before changing anything because another run held the cluster, which is
/// now done: the caller reads the file again and runs again.
#[derive(Debug, thiserror::Error)]
#[error("another run changed the cluster while this one waited; starting over")]
pub struct StartOver;

/// Whether `e` asks the caller to start the run over.
pub fn is_start_over(e: &anyhow::Error) -> bool {
    e.downcast_ref::<StartOver>().is_some()
}

/// How long a claim lasts without renewal.
pub const CLAIM_SECONDS: i64 = 60;
/// How often a holder renews its claims: a third of their duration.
pub const LEASE_RENEW: Duration = Duration::from_secs((CLAIM_SECONDS / 3) as u64);
/// The longest duration honoured, whatever a claim says.
pub const MAX_HONOURED_SECONDS: i64 = 300;
/// How far another workstation's clock may be off.
pub const CLOCK_SKEW_SECONDS: i64 = 30;

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: String,
}

impl Holder {
    pub fn me(command: &str) -> Holder {
        Holder {
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            command: command.to_owned(),
            since: crate::foundation::time::now_rfc3339(),
        }
    }
    pub fn identity(&self) -> String {
        format!("{}/{}", self.host, self.pid)
    }
    pub fn describe(&self) -> String {
        format!("`homelab {}` on {} (pid {}) since {}", self.command, self.host, self.pid, self.since)
    }
}

/// One lock record as read: a Lease, or the owner data of one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `host/pid` of the holder.
    pub id: String,
    pub renewed: Option<jiff::Timestamp>,
    pub seconds: i64,
    pub holder: Holder,
}

/// What this run may do with a claim it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// Nobody holds it, this run does, or its holder is gone: take it.
    Free,
    /// Another run holds it.
    Held(Holder),
}

/// Remembers when this run first saw a claim's current holder and renewal, on its own
/// monotonic clock, so expiry never depends on another machine's clock.
#[derive(Debug, Default)]
pub struct ClaimObserver {
    seen: Option<(String, Option<jiff::Timestamp>, Instant)>,
}

impl ClaimObserver {
    /// How long the claim has stayed exactly as it is now, as this run saw it.
    fn unchanged_for(&mut self, id: &str, renew: Option<jiff::Timestamp>, now: Instant) -> Duration {
        match &self.seen {
            Some((i, r, since)) if i == id && *r == renew => now.duration_since(*since),
            _ => {
                self.seen = Some((id.to_owned(), renew, now));
                Duration::ZERO
            }
        }
    }
}

/// Runs one renewal `round` every `every` until it reports the claim lost (`Ok(Some(why))`),
/// or until rounds have failed for as long as a claim lasts (so that it may have expired and
/// been taken); either way `lost` then says why and the loop ends.
pub(crate) async fn keep_renewing<F, Fut>(
    what: &str,
    every: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let mut last_ok = Instant::now();
    let lasts = Duration::from_secs(CLAIM_SECONDS as u64);
    loop {
        tokio::time::sleep(every).await;
        match round().await {
            Ok(None) => last_ok = Instant::now(),
            Ok(Some(why)) => {
                let _ = lost.send(Some(why));
                return;
            }
            Err(e) => {
                // Give up before the claim could expire under us and another run take it.
                if last_ok.elapsed() + every >= lasts {
                    let _ = lost.send(Some(format!(
                        "{what} could not be renewed for {}s ({e:#}), so another run may take it",
                        last_ok.elapsed().as_secs()
                    )));
                    return;
                }
                tracing::warn!("could not renew {what} (retrying): {e:#}");
            }
        }
    }
}

/// The pure decision on a claim read at wall time `now` and monotonic time `mono`.
pub fn claim_state(
    c: Option<&Claim>,
    me: &Holder,
    now: jiff::Timestamp,
    mono: Instant,
    obs: &mut ClaimObserver,
    alive: impl Fn(u32) -> bool,
) -> ClaimState {
    let Some(c) = c else { return ClaimState::Free };
    if c.id == me.identity() {
        return ClaimState::Free;
    }
    // A holder on this machine whose process is gone (killed) left it behind.
    if c.holder.host == me.host && !alive(c.holder.pid) {
        return ClaimState::Free;
    }
    let dur = c.seconds.clamp(1, MAX_HONOURED_SECONDS);
    // Stale by its own record, even if this clock is CLOCK_SKEW_SECONDS behind the holder's.
    if let Some(r) = c.renewed
        && now.duration_since(r).as_secs() > dur + CLOCK_SKEW_SECONDS
    {
        return ClaimState::Free;
    }
    // Recent, or in the future: held until this run has watched it stay unchanged for the
    // whole duration.
    if obs.unchanged_for(&c.id, c.renewed, mono) > Duration::from_secs(dur as u64) {
        return ClaimState::Free;
    }
    ClaimState::Held(c.holder.clone())
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(p) => {
            rustix::process::test_kill_process(p).is_ok() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}
