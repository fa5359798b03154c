//! Two homelab runs must never change the same cluster at once.
//!
//! * A local lock per cluster (an advisory `flock` on `<state dir>/lock`): a second run on
//!   the same machine waits up to `--lock-timeout` or exits, naming the holder (host, pid,
//!   command, since). The kernel releases the lock of a killed run, so a stale lock is
//!   taken over safely by construction.
//! * Once the cluster exists, a Lease `homelab-run` in `kube-system` does the same across
//!   machines: its holder renews it; a holder that stopped renewing for its lease duration
//!   (a killed run) is taken over.

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
    std::fs::create_dir_all(state_dir).with_context(|| format!("cannot create {}", state_dir.display()))?;
    let path = state_dir.join("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
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
                let _ = std::fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut text));
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
pub async fn acquire_lease(client: kube::Client, command: &str, timeout: Duration, ui: &Ui) -> Result<LeaseGuard> {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let me = Holder::me(command);
    let start = Instant::now();
    let mut told = false;
    loop {
        let current = api.get_opt(LEASE_NAME).await.context("reading the homelab Lease in kube-system")?;
        let taken = match &current {
            None => api.create(&PostParams::default(), &lease_object(&me, None)).await.map(|_| true),
            Some(l) => {
                let free = match lease_holder(l) {
                    None => true,
                    Some((id, _, _, _)) if id == me.identity() => true,
                    // A holder on this machine whose process is gone (killed) left it behind.
                    Some((_, _, _, h)) if h.host == me.host && !pid_alive(h.pid) => true,
                    Some((_, renew, dur, _)) => {
                        renew.is_none_or(|r| jiff::Timestamp::now().duration_since(r).as_secs() > i64::from(dur))
                    }
                };
                if free {
                    api.replace(
                        LEASE_NAME,
                        &PostParams::default(),
                        &lease_object(&me, l.metadata.resource_version.clone()),
                    )
                    .await
                    .map(|_| true)
                } else {
                    Ok(false)
                }
            }
        };
        match taken {
            Ok(true) => break,
            Ok(false) => {}
            // Someone else took or renewed it between our read and write: look again.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(anyhow!(e).context("taking the homelab Lease")),
        }
        let holder = current
            .as_ref()
            .and_then(lease_holder)
            .map(|h| h.3.describe())
            .unwrap_or_else(|| "another homelab run".into());
        if start.elapsed() >= timeout {
            bail!(
                "the cluster is locked by {holder} (Lease kube-system/{LEASE_NAME})\n  hint: let it finish or stop it; a stopped run's lease expires after {LEASE_SECONDS}s. `--lock-timeout 10m` waits for it"
            );
        }
        if !told {
            ui.err(&format!("waiting for the cluster lease held by {holder}"));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let renew_api = api.clone();
    let renew_me = me.clone();
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs((LEASE_SECONDS / 3) as u64)).await;
            if let Ok(Some(l)) = renew_api.get_opt(LEASE_NAME).await {
                let mut obj = lease_object(&renew_me, l.metadata.resource_version.clone());
                if let (Some(spec), Some(old)) = (obj.spec.as_mut(), l.spec.as_ref()) {
                    spec.acquire_time = old.acquire_time.clone();
                }
                if let Err(e) = renew_api.replace(LEASE_NAME, &PostParams::default(), &obj).await {
                    tracing::warn!("could not renew the homelab Lease: {e}");
                }
            }
        }
    });
    Ok(LeaseGuard { api, me, renew })
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
