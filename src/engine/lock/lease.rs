//! The Lease `kube-system/homelab-run`, once the cluster's API answers. Its holder renews it
//! with a replace conditional on the resourceVersion it last wrote, so a run that was taken
//! over can never make itself holder again; a run that finds it taken, or cannot renew it
//! before it would expire, is told through `lost` and stops.

use super::{CLAIM_SECONDS, Claim, ClaimObserver, ClaimState, Holder, LEASE_RENEW, claim_state, pid_alive};
use crate::foundation::output::Ui;
use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const LEASE_NAME: &str = "homelab-run";
pub const LEASE_NAMESPACE: &str = "kube-system";
const LEASE_SECONDS: i32 = CLAIM_SECONDS as i32;

/// The cluster Lease while this run holds it; renewed in the background.
pub struct LeaseGuard {
    api: Api<Lease>,
    me: Holder,
    renew: tokio::task::JoinHandle<()>,
}

/// The claim a Lease records (none when nobody holds it).
pub fn lease_claim(l: &Lease) -> Option<Claim> {
    let spec = l.spec.as_ref()?;
    let id = spec.holder_identity.clone().filter(|s| !s.is_empty())?;
    let ann = l.metadata.annotations.clone().unwrap_or_default();
    let holder = Holder {
        host: id.split('/').next().unwrap_or("?").to_owned(),
        pid: id.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0),
        command: ann.get("homelab.dev/command").cloned().unwrap_or_else(|| "?".into()),
        since: ann.get("homelab.dev/since").cloned().unwrap_or_else(|| "?".into()),
    };
    Some(Claim {
        renewed: spec.renew_time.as_ref().map(|t| t.0),
        seconds: i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS)),
        id,
        holder,
    })
}

fn lease_object(me: &Holder, rv: Option<String>) -> Lease {
    let now = MicroTime(jiff::Timestamp::now());
    let mut ann = BTreeMap::new();
    ann.insert("homelab.dev/command".to_owned(), me.command.clone());
    ann.insert("homelab.dev/since".to_owned(), me.since.clone());
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some(LEASE_NAMESPACE.into()),
            resource_version: rv,
            annotations: Some(ann),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.identity()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..Default::default()
        }),
    }
}

/// Takes the cluster Lease, waiting up to `timeout` for another holder.
/// When this run loses the Lease, `lost` becomes `Some(reason)`.
pub async fn acquire_lease(
    client: kube::Client,
    command: &str,
    timeout: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
    ui: &Ui,
) -> Result<LeaseGuard> {
    acquire_lease_as(client, Holder::me(command), timeout, LEASE_RENEW, lost, ui).await
}

/// [`acquire_lease`] for a given holder, renewing every `every` (tests use short periods).
pub async fn acquire_lease_as(
    client: kube::Client,
    me: Holder,
    timeout: Duration,
    every: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
    ui: &Ui,
) -> Result<LeaseGuard> {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let start = Instant::now();
    let mut told = false;
    let mut obs = ClaimObserver::default();
    let held: Lease;
    loop {
        let current = api.get_opt(LEASE_NAME).await.context("reading the homelab Lease in kube-system")?;
        let state = match &current {
            None => ClaimState::Free,
            Some(l) => {
                claim_state(lease_claim(l).as_ref(), &me, jiff::Timestamp::now(), Instant::now(), &mut obs, pid_alive)
            }
        };
        let taken = match (&current, &state) {
            (None, _) => api.create(&PostParams::default(), &lease_object(&me, None)).await.map(Some),
            (Some(l), ClaimState::Free) => api
                .replace(LEASE_NAME, &PostParams::default(), &lease_object(&me, l.metadata.resource_version.clone()))
                .await
                .map(Some),
            (Some(_), ClaimState::Held(_)) => Ok(None),
        };
        match taken {
            Ok(Some(written)) => {
                held = written;
                break;
            }
            Ok(None) => {}
            // Someone else took or renewed it between our read and write: look again.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(anyhow!(e).context("taking the homelab Lease")),
        }
        let holder = match &state {
            ClaimState::Held(h) => h.describe(),
            ClaimState::Free => "another homelab run".into(),
        };
        if start.elapsed() >= timeout {
            bail!(
                "the cluster is locked by {holder} (Lease kube-system/{LEASE_NAME})\n  hint: let it finish or stop it; a stopped run's lease expires after {LEASE_SECONDS}s. `--lock-timeout 10m` waits for it"
            );
        }
        if !told {
            ui.err(&format!("waiting for the cluster lease held by {holder}"));
            told = true;
        }
        tokio::time::sleep(
            Duration::from_millis(500).min(timeout.saturating_sub(start.elapsed())).max(Duration::from_millis(10)),
        )
        .await;
    }
    let renew = tokio::spawn(renew_loop(api.clone(), me.clone(), held, every, lost));
    Ok(LeaseGuard { api, me, renew })
}

/// Renews the Lease every `every` while this run holds it (see [`super::keep_renewing`]).
async fn renew_loop(
    api: Api<Lease>,
    me: Holder,
    held: Lease,
    every: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
) {
    let held = std::sync::Arc::new(tokio::sync::Mutex::new(held));
    super::keep_renewing("the cluster lease", every, lost, || {
        let (api, me, held) = (api.clone(), me.clone(), held.clone());
        async move {
            let mut held = held.lock().await;
            Ok(match renew_once(&api, &me, &held).await? {
                Renewal::Renewed(written) => {
                    *held = *written;
                    None
                }
                Renewal::Lost(why) => Some(why),
            })
        }
    })
    .await
}

/// The outcome of one renewal.
enum Renewal {
    /// The Lease as written.
    Renewed(Box<Lease>),
    /// This run no longer holds it; why, in words.
    Lost(String),
}

/// One renewal: a replace conditional on the resourceVersion of the Lease this run last
/// wrote (one request). Only when that fails as a conflict is the Lease read, to see who
/// holds it now.
async fn renew_once(api: &Api<Lease>, me: &Holder, held: &Lease) -> Result<Renewal> {
    let mut base = held.clone();
    for _ in 0..3 {
        let mut obj = lease_object(me, base.metadata.resource_version.clone());
        if let (Some(spec), Some(old)) = (obj.spec.as_mut(), base.spec.as_ref()) {
            spec.acquire_time = old.acquire_time.clone();
        }
        match api.replace(LEASE_NAME, &PostParams::default(), &obj).await {
            Ok(written) => return Ok(Renewal::Renewed(Box::new(written))),
            // Changed since this run wrote it: see who holds it.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => return Err(anyhow!(e).context("renewing the homelab Lease")),
        }
        let Some(current) = api.get_opt(LEASE_NAME).await.context("reading the homelab Lease")? else {
            return Ok(Renewal::Lost("the cluster lease was deleted by someone else".into()));
        };
        match lease_claim(&current) {
            // Still this run's (a write that changed nothing else): renew on top of it.
            Some(c) if c.id == me.identity() => base = current,
            Some(c) => return Ok(Renewal::Lost(format!("{} holds the cluster lease now", c.holder.describe()))),
            None => return Ok(Renewal::Lost("the cluster lease was released by someone else".into())),
        }
    }
    bail!("the homelab Lease kept changing under this run")
}

impl LeaseGuard {
    /// Gives the Lease up (best effort; an unreleased lease expires on its own).
    pub async fn release(self) {
        self.renew.abort();
        if let Ok(Some(l)) = self.api.get_opt(LEASE_NAME).await
            && lease_claim(&l).is_some_and(|c| c.id == self.me.identity())
        {
            let mut obj = lease_object(&self.me, l.metadata.resource_version.clone());
            if let Some(spec) = obj.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = self.api.replace(LEASE_NAME, &PostParams::default(), &obj).await;
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
    }
}
