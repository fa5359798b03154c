//! Two homelab runs must never change the same cluster at once.
//!
//! * A local lock per cluster (an advisory `flock` on `<state dir>/lock`): a second run on
//!   the same machine waits up to `--lock-timeout` or exits, naming the holder (host, pid,
//!   command, since). The kernel releases the lock of a killed run, so a stale lock is
//!   taken over safely by construction.
//! * Once the cluster exists, a Lease `homelab-run` in `kube-system` does the same across
//!   machines: its holder renews it, each renewal a compare-and-swap on the Lease's
//!   resourceVersion made only while the Lease still names this run. A run that finds the
//!   Lease taken by another, or cannot renew it before it would expire, is told through
//!   the `lost` channel it was given and stops. A holder that stopped renewing (a killed run) is taken
//!   over. Another workstation's clock is not trusted further than [`CLOCK_SKEW_SECONDS`]:
//!   a Lease whose `renewTime` is recent or in the future counts as held until this run has
//!   itself watched it stay unchanged for its duration, and no duration above
//!   [`MAX_HONOURED_SECONDS`] is honoured.

use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// The local lock; released when dropped (or when the process dies).
pub struct LocalLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the local lock of a cluster, waiting up to `timeout` for another run to finish.
pub async fn acquire_local(state_dir: &Path, command: &str, timeout: Duration, ui: &Ui) -> Result<LocalLock> {
    crate::foundation::paths::private_dir(state_dir)?;
    let path = state_dir.join("lock");
    let mut open = std::fs::OpenOptions::new();
    open.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        // Never through a symbolic link: the file is truncated and rewritten below.
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let mut file = open.open(&path).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            anyhow!(
                "the lock file {} is a symbolic link; homelab does not follow a symbolic link there\n  hint: remove it (`rm {}`); homelab creates the file itself",
                path.display(),
                path.display()
            )
        } else {
            anyhow!(
                "cannot open the lock file {}: {e}\n  hint: the state directory must be yours and writable; set HOMELAB_STATE_DIR to use another one",
                path.display()
            )
        }
    })?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => {
                let me = Holder::me(command);
                file.set_len(0)?;
                file.rewind()?;
                file.write_all(serde_json::to_string(&me)?.as_bytes())?;
                file.flush()?;
                return Ok(LocalLock { _file: file, path });
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = std::fs::File::open(&path).and_then(|f| f.take(4096).read_to_string(&mut text));
                let holder = serde_json::from_str::<Holder>(&text)
                    .map(|h| h.describe())
                    .unwrap_or_else(|_| "another homelab run".into());
                if start.elapsed() >= timeout {
                    bail!(
                        "the cluster is locked by {holder}\n  hint: let it finish, or stop it (Ctrl-C is safe; the next run continues); `--lock-timeout 10m` waits for it"
                    );
                }
                if !told {
                    ui.err(&format!(
                        "waiting for the lock held by {holder} (up to {})",
                        fmt_secs(timeout.as_secs_f64())
                    ));
                    told = true;
                }
                tokio::time::sleep(
                    Duration::from_millis(200)
                        .min(timeout.saturating_sub(start.elapsed()))
                        .max(Duration::from_millis(10)),
                )
                .await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(anyhow!("cannot lock {}: {e}", path.display())),
        }
    }
}

pub const LEASE_NAME: &str = "homelab-run";
pub const LEASE_NAMESPACE: &str = "kube-system";
const LEASE_SECONDS: i32 = 60;
/// How often the holder renews the Lease: a third of its duration.
pub const LEASE_RENEW: Duration = Duration::from_secs((LEASE_SECONDS / 3) as u64);
/// The longest `leaseDurationSeconds` honoured, whatever a Lease says.
pub const MAX_HONOURED_SECONDS: i64 = 300;
/// How far another workstation's clock may be off.
pub const CLOCK_SKEW_SECONDS: i64 = 30;

/// What this run may do with a Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Nobody holds it, this run does, or its holder is gone: take it.
    Free,
    /// Another run holds it.
    Held(Holder),
}

/// Remembers when this run first saw a Lease's current holder and renewal, on its own
/// monotonic clock, so expiry never depends on another machine's clock.
#[derive(Debug, Default)]
pub struct LeaseObserver {
    seen: Option<(String, Option<jiff::Timestamp>, Instant)>,
}

impl LeaseObserver {
    /// How long the Lease has stayed exactly as it is now, as this run saw it.
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

/// The pure decision on a Lease read at wall time `now` and monotonic time `mono`.
pub fn lease_state(
    l: &Lease,
    me: &Holder,
    now: jiff::Timestamp,
    mono: Instant,
    obs: &mut LeaseObserver,
    alive: impl Fn(u32) -> bool,
) -> LeaseState {
    let Some((id, renew, dur, h)) = lease_holder(l) else { return LeaseState::Free };
    if id == me.identity() {
        return LeaseState::Free;
    }
    // A holder on this machine whose process is gone (killed) left it behind.
    if h.host == me.host && !alive(h.pid) {
        return LeaseState::Free;
    }
    let dur = i64::from(dur).clamp(1, MAX_HONOURED_SECONDS);
    // Stale by its own record, even if this clock is CLOCK_SKEW_SECONDS behind the holder's.
    if let Some(r) = renew
        && now.duration_since(r).as_secs() > dur + CLOCK_SKEW_SECONDS
    {
        return LeaseState::Free;
    }
    // Recent, or in the future: held until this run has watched it stay unchanged for the
    // whole duration.
    if obs.unchanged_for(&id, renew, mono) > Duration::from_secs(dur as u64) {
        return LeaseState::Free;
    }
    LeaseState::Held(h)
}

fn pid_alive(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(p) => {
            rustix::process::test_kill_process(p).is_ok() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}

/// The cluster Lease while this run holds it; renewed in the background.
pub struct LeaseGuard {
    api: Api<Lease>,
    me: Holder,
    renew: tokio::task::JoinHandle<()>,
}

fn lease_holder(l: &Lease) -> Option<(String, Option<jiff::Timestamp>, i32, Holder)> {
    let spec = l.spec.as_ref()?;
    let id = spec.holder_identity.clone().filter(|s| !s.is_empty())?;
    let renew = spec.renew_time.as_ref().map(|t| t.0);
    let dur = spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS);
    let ann = l.metadata.annotations.clone().unwrap_or_default();
    let h = Holder {
        host: id.split('/').next().unwrap_or("?").to_owned(),
        pid: id.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0),
        command: ann.get("homelab.dev/command").cloned().unwrap_or_else(|| "?".into()),
        since: ann.get("homelab.dev/since").cloned().unwrap_or_else(|| "?".into()),
    };
    Some((id, renew, dur, h))
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
    let mut obs = LeaseObserver::default();
    let held: Lease;
    loop {
        let current = api.get_opt(LEASE_NAME).await.context("reading the homelab Lease in kube-system")?;
        let state = match &current {
            None => LeaseState::Free,
            Some(l) => lease_state(l, &me, jiff::Timestamp::now(), Instant::now(), &mut obs, pid_alive),
        };
        let taken = match (&current, &state) {
            (None, _) => api.create(&PostParams::default(), &lease_object(&me, None)).await.map(Some),
            (Some(l), LeaseState::Free) => api
                .replace(LEASE_NAME, &PostParams::default(), &lease_object(&me, l.metadata.resource_version.clone()))
                .await
                .map(Some),
            (Some(_), LeaseState::Held(_)) => Ok(None),
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
            LeaseState::Held(h) => h.describe(),
            LeaseState::Free => "another homelab run".into(),
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

/// Renews the Lease every `every` while this run holds it. Stops, and says why through
/// `lost`, when another run holds it or when renewals failed for as long as the Lease lasts.
async fn renew_loop(
    api: Api<Lease>,
    me: Holder,
    mut held: Lease,
    every: Duration,
    lost: tokio::sync::watch::Sender<Option<String>>,
) {
    let mut last_ok = Instant::now();
    let lasts = Duration::from_secs(LEASE_SECONDS as u64);
    loop {
        tokio::time::sleep(every).await;
        match renew_once(&api, &me, &held).await {
            Ok(Renewal::Renewed(written)) => {
                held = *written;
                last_ok = Instant::now();
            }
            Ok(Renewal::Lost(why)) => {
                let _ = lost.send(Some(why));
                return;
            }
            Err(e) => {
                // Give up before the Lease could expire under us and another run take it.
                if last_ok.elapsed() + every >= lasts {
                    let _ = lost.send(Some(format!(
                        "the cluster lease could not be renewed for {}s ({e:#}), so another run may take it",
                        last_ok.elapsed().as_secs()
                    )));
                    return;
                }
                tracing::warn!("could not renew the homelab Lease (retrying): {e:#}");
            }
        }
    }
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
        match lease_holder(&current) {
            // Still this run's (a write that changed nothing else): renew on top of it.
            Some((id, ..)) if id == me.identity() => base = current,
            Some((_, _, _, h)) => return Ok(Renewal::Lost(format!("{} holds the cluster lease now", h.describe()))),
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
            && lease_holder(&l).is_some_and(|h| h.0 == self.me.identity())
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
