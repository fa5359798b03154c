//! The lock every workstation sees before the cluster's API exists: a claim under the
//! owner-data key [`MAAS_KEY`] of the declared control planes the MAAS user owns (MAAS lets
//! only a machine's owner set its owner data, and clears it when the machine is released;
//! docs/maas-api.md, "Owner data").
//!
//! MAAS offers no compare-and-swap, so a claim is taken in three steps: read every claim,
//! write this run's claim on every machine when all are free, wait a moment
//! ([`Timings::lock_settle`]) and read them again. A run that then finds any other holder's
//! claim takes its own back and fails; two runs racing this way
//! cannot both see only their own claims unless one of them paused between its read and its
//! write for longer than the settle time, and even then the next renewal, which reads before
//! it writes, stops the one that was overwritten.
//!
//! [`Timings::lock_settle`]: crate::engine::context::Timings::lock_settle

use super::{CLAIM_SECONDS, Claim, ClaimObserver, ClaimState, Holder, claim_state, pid_alive};
use crate::foundation::output::Ui;
use crate::maas::{MaasClient, Machine};
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The owner-data key of the claim.
pub const MAAS_KEY: &str = "homelab-run";

/// The claim as stored: one JSON string in the owner data.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    holder: Holder,
    /// Unix seconds of the last renewal.
    renewed: i64,
    seconds: i64,
}

fn claim_of(m: &Machine) -> Option<Claim> {
    let text = m.owner_data.as_ref()?.get(MAAS_KEY)?.as_str()?;
    // Bounded by MAAS's answer size; a value homelab cannot read is no claim.
    let r: Record = serde_json::from_str(text).ok()?;
    Some(Claim {
        id: r.holder.identity(),
        renewed: jiff::Timestamp::from_second(r.renewed).ok(),
        seconds: r.seconds,
        holder: r.holder,
    })
}

fn record(me: &Holder) -> String {
    let r = Record { holder: me.clone(), renewed: jiff::Timestamp::now().as_second(), seconds: CLAIM_SECONDS };
    serde_json::to_string(&r).unwrap_or_default()
}

/// The machines the claim lives on: the given ones this MAAS user owns.
fn owned<'a>(machines: &'a [Machine], user: &'a str) -> impl Iterator<Item = &'a Machine> {
    machines.iter().filter(move |m| m.owner.as_deref() == Some(user))
}

/// Writes `value` under the key on every owned machine at once. A machine MAAS no longer
/// counts as the user's (released meanwhile: 409) carries no claim and is skipped.
async fn write_all(maas: &MaasClient, machines: &[Machine], user: &str, value: &str) -> Result<()> {
    let writes = owned(machines, user).map(|m| maas.set_owner_data(&m.system_id, MAAS_KEY, value));
    for r in futures::future::join_all(writes).await {
        match r {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(anyhow::Error::new(e).context("writing the homelab lock into MAAS owner data")),
        }
    }
    Ok(())
}

/// The first claim on `machines` that is not this run's, with the machine's name.
fn other_claim<'a>(machines: &'a [Machine], user: &'a str, me: &Holder) -> Option<(Claim, &'a str)> {
    owned(machines, user).find_map(|m| claim_of(m).filter(|c| c.id != me.identity()).map(|c| (c, m.hostname.as_str())))
}

/// The first live claim of another run on the owned `machines`, with the machine's name.
fn first_held(
    machines: &[Machine],
    user: &str,
    me: &Holder,
    obs: &mut HashMap<String, ClaimObserver>,
) -> Option<(Holder, String)> {
    let now = jiff::Timestamp::now();
    owned(machines, user).find_map(|m| {
        let o = obs.entry(m.system_id.clone()).or_default();
        match claim_state(claim_of(m).as_ref(), me, now, Instant::now(), o, pid_alive) {
            ClaimState::Held(h) => Some((h, m.hostname.clone())),
            ClaimState::Free => None,
        }
    })
}

fn locked(holder: &str, host: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the cluster is locked by {holder} (MAAS owner data `{MAAS_KEY}` of {host})\n  hint: let it finish or stop it; a stopped run's claim expires after {CLAIM_SECONDS}s. `--lock-timeout 10m` waits for it"
    )
}

/// Timing of the MAAS lock.
#[derive(Debug, Clone, Copy)]
pub struct MaasLockTimes {
    /// Renewal period.
    pub every: Duration,
    /// Pause between writing the claims and reading them back.
    pub settle: Duration,
}

/// The MAAS-side lock while this run holds it; renewed in the background.
pub struct MaasLockGuard {
    maas: Arc<MaasClient>,
    ids: Vec<String>,
    user: String,
    me: Holder,
    renew: tokio::task::JoinHandle<()>,
}

/// Takes the claim on the machines among `machines` (as listed by MAAS) that `user` owns,
/// in one attempt: it fails, naming the holder, when another run's live claim stands there or
/// when another run wrote its own in the same moment (this run's is then taken back).
/// Machines the user comes to own later (a first install deploys them) are claimed by the
/// renewals. When this run loses the claim, `lost` becomes `Some(reason)`.
pub async fn acquire_maas(
    maas: Arc<MaasClient>,
    user: &str,
    machines: Vec<Machine>,
    me: Holder,
    times: MaasLockTimes,
    lost: tokio::sync::watch::Sender<Option<String>>,
) -> Result<MaasLockGuard> {
    let ids: Vec<String> = machines.iter().map(|m| m.system_id.clone()).collect();
    if let Some((h, host)) = first_held(&machines, user, &me, &mut HashMap::new()) {
        return Err(locked(&h.describe(), &host));
    }
    // Nothing owned yet: nothing to claim now.
    if owned(&machines, user).next().is_some() {
        write_all(&maas, &machines, user, &record(&me)).await?;
        tokio::time::sleep(times.settle).await;
        let current = maas.machines_by_id(&ids).await.context("reading the homelab lock back from MAAS")?;
        if let Some((c, host)) = other_claim(&current, user, &me) {
            // Someone wrote after us: give ours back.
            clear_mine(&maas, &current, user, &me).await;
            return Err(locked(&c.holder.describe(), host));
        }
    }
    let renew = tokio::spawn(renew_loop(maas.clone(), ids.clone(), user.to_owned(), me.clone(), times.every, lost));
    Ok(MaasLockGuard { maas, ids, user: user.to_owned(), me, renew })
}

/// Before a run decides anything: waits (reading only) while another run's live claim stands
/// on any of `machines`, up to `timeout`. Returns whether it waited, in which case what the
/// run read before is stale and must be read again.
pub async fn wait_while_held(
    maas: &MaasClient,
    user: &str,
    machines: Vec<Machine>,
    me: &Holder,
    timeout: Duration,
    ui: &Ui,
) -> Result<bool> {
    let ids: Vec<String> = machines.iter().map(|m| m.system_id.clone()).collect();
    let start = Instant::now();
    let mut current = machines;
    let mut obs: HashMap<String, ClaimObserver> = HashMap::new();
    let mut waited = false;
    loop {
        let held = first_held(&current, user, me, &mut obs);
        let Some((h, host)) = held else { return Ok(waited) };
        if start.elapsed() >= timeout {
            return Err(locked(&h.describe(), &host));
        }
        if !waited {
            ui.err(&format!("waiting for the cluster lock held by {} (MAAS owner data of {host})", h.describe()));
            waited = true;
        }
        tokio::time::sleep(
            Duration::from_millis(500).min(timeout.saturating_sub(start.elapsed())).max(Duration::from_millis(10)),
        )
        .await;
        current = maas.machines_by_id(&ids).await.context("reading the homelab lock in MAAS")?;
    }
}

/// Removes this run's claim wherever it still stands (best effort).
async fn clear_mine(maas: &MaasClient, machines: &[Machine], user: &str, me: &Holder) {
    let mine = owned(machines, user).filter(|m| claim_of(m).is_some_and(|c| c.id == me.identity()));
    let _ = futures::future::join_all(mine.map(|m| maas.set_owner_data(&m.system_id, MAAS_KEY, ""))).await;
}

/// Every `every`: read the claims (one request per 50 machines), report the claim lost if
/// any is not this run's, else write the renewal (see [`super::keep_renewing`]).
async fn renew_loop(
    maas: Arc<MaasClient>,
    ids: Vec<String>,
    user: String,
    me: Holder,
    every: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
) {
    super::keep_renewing("the cluster lock in MAAS", every, lost, || {
        let (maas, ids, user, me) = (maas.clone(), ids.clone(), user.clone(), me.clone());
        async move {
            let current = maas.machines_by_id(&ids).await?;
            if let Some((c, host)) = other_claim(&current, &user, &me) {
                return Ok(Some(format!(
                    "{} holds the cluster lock now (MAAS owner data of {host})",
                    c.holder.describe()
                )));
            }
            write_all(&maas, &current, &user, &record(&me)).await?;
            Ok(None)
        }
    })
    .await
}

impl MaasLockGuard {
    /// Gives the claim back where it is still this run's (best effort; it expires anyway).
    pub async fn release(self) {
        self.renew.abort();
        if let Ok(current) = self.maas.machines_by_id(&self.ids).await {
            clear_mine(&self.maas, &current, &self.user, &self.me).await;
        }
    }
}

impl Drop for MaasLockGuard {
    fn drop(&mut self) {
        self.renew.abort();
    }
}
