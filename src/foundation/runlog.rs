//! The run log: every command that reaches a cluster writes one file of what it did, whatever
//! the verbosity — each event with the exact call behind its action (the MAAS request, the
//! command sent over SSH, the object applied), the debug lines of homelab's own code, and
//! the error that ended it. A failed run names the file on its last line, so a bug report
//! can carry it; `homelab diagnose` packs the newest ones.
//!
//! Files live in [`crate::foundation::paths::log_dir`] (0700), one per run, mode 0600, named
//! `<UTC time>-<pid>-<command>.log` so they sort by age; the newest [`KEEP`] are kept. Every
//! line passes the secret filter before it is written, as terminal output does.

use super::secrets::redact;
use super::time::now_rfc3339;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Run logs kept: the newest ones, older ones are deleted when a run starts.
pub const KEEP: usize = 20;

/// A log file longer than this stops growing (a last line says so): a run that loops on a
/// wait for hours must not fill the disk.
pub const MAX_BYTES: u64 = 32 << 20;

pub struct RunLog {
    path: PathBuf,
    file: Mutex<Option<(std::fs::File, u64)>>,
}

impl RunLog {
    /// Opens a new log for `command` in `dir` (created private) and deletes the oldest logs
    /// beyond [`KEEP`].
    pub fn create_in(dir: &Path, command: &str) -> anyhow::Result<RunLog> {
        super::paths::private_dir(dir)?;
        let t = jiff::Timestamp::now();
        let stamp = format!("{}{:03}Z", t.strftime("%Y%m%dT%H%M%S."), t.subsec_millisecond());
        let name = format!("{stamp}-{}-{command}.log", std::process::id());
        let path = dir.join(name);
        let mut o = std::fs::OpenOptions::new();
        o.create_new(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let file = o.open(&path).map_err(|e| anyhow::anyhow!("cannot create the run log {}: {e}", path.display()))?;
        rotate(dir, KEEP);
        Ok(RunLog { path, file: Mutex::new(Some((file, 0))) })
    }

    /// Opens a new log in the default place.
    pub fn create(command: &str) -> anyhow::Result<RunLog> {
        Self::create_in(&super::paths::log_dir(), command)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` as it is (redacted); a line end is added when missing.
    pub fn write_raw(&self, text: &str) {
        let text = redact(text);
        let Ok(mut g) = self.file.lock() else { return };
        let Some((f, written)) = g.as_mut() else { return };
        let mut s = text.into_owned();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        if *written + s.len() as u64 > MAX_BYTES {
            let _ = writeln!(f, "{} log: cut at {MAX_BYTES} bytes; what follows is not kept", now_rfc3339());
            *g = None;
            return;
        }
        if f.write_all(s.as_bytes()).is_ok() {
            *written += s.len() as u64;
        }
    }

    /// One line: the time, a kind (`event`, `error`, …) and the text.
    pub fn line(&self, kind: &str, text: &str) {
        self.write_raw(&format!("{} {kind} {text}", now_rfc3339()));
    }
}

/// The log files in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log") && p.is_file())
        .collect();
    v.sort();
    v
}

fn rotate(dir: &Path, keep: usize) {
    let logs = list(dir);
    if logs.len() > keep {
        for p in &logs[..logs.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The tracing writer of the run log (see [`crate::cli`]'s tracing setup).
#[derive(Clone)]
pub struct LogFileWriter(pub std::sync::Arc<RunLog>);

impl Write for LogFileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_raw(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFileWriter {
    type Writer = LogFileWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_private_redacted_and_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        for i in 0..KEEP + 3 {
            let l = RunLog::create_in(&logs, &format!("up{i:02}")).unwrap();
            l.line("event", "x");
        }
        let left = list(&logs);
        assert_eq!(left.len(), KEEP);
        crate::foundation::secrets::register("sekrit-value-123");
        let l = RunLog::create_in(&logs, "status").unwrap();
        l.line("event", "token sekrit-value-123 here");
        let text = std::fs::read_to_string(l.path()).unwrap();
        assert!(text.contains("token [redacted] here") && !text.contains("sekrit"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(l.path()).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }
}
