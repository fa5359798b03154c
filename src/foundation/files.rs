//! Writing files so that a crash never leaves half of one: the text goes to a temporary file
//! beside the target (created owner-only, mode 0600, by `tempfile`), then replaces the target
//! in one rename.

use std::io::Write;
use std::path::Path;

/// What the replaced file's permissions become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Readable by its owner only (kubeconfigs: they hold credentials).
    Private,
    /// Those of the file being replaced (a user's `cluster.yaml`); private for a new file.
    Keep,
}

/// Replaces `path` with `bytes` atomically, creating its directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if mode == Mode::Keep
        && let Ok(meta) = std::fs::metadata(path)
    {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
