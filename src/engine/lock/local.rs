//! The local lock: an advisory `flock` on `<state dir>/lock`, opened 0600 and never through a
//! symbolic link. A second run on this workstation waits up to `--lock-timeout` or exits,
//! naming the holder. The kernel releases the lock of a killed run, so a stale lock is taken
//! over safely by construction.

use super::Holder;
use crate::foundation::output::Ui;
use crate::foundation::time::fmt_secs;
use anyhow::{Result, anyhow, bail};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
