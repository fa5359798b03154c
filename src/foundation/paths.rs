//! Where homelab keeps things on the workstation: the per-cluster state directory (kubeconfig,
//! known_hosts, lock), the download cache, and the short directory for SSH control sockets.
//! `HOMELAB_STATE_DIR` and `HOMELAB_CACHE_DIR` move the first two (tests, CI, several users).
//! The state and socket directories are private (0700, owned by the user), their files 0600.

use std::path::{Path, PathBuf};

/// The per-cluster state directory: kubeconfig, known_hosts, lock.
pub fn state_dir(cluster: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("HOMELAB_STATE_DIR") {
        return PathBuf::from(d).join(cluster);
    }
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("homelab")
        .join(cluster)
}

/// Where run logs go ([`super::runlog`]): `logs` beside the per-cluster state directories
/// (`HOMELAB_STATE_DIR` moves it with them).
pub fn log_dir() -> PathBuf {
    state_dir("logs")
}

/// The download cache (pinned manifests live under `manifests/`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOMELAB_CACHE_DIR") {
        return PathBuf::from(d);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("homelab")
}

/// A short directory for SSH control sockets (Unix socket paths are limited to ~108 bytes).
pub fn control_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("homelab-{}", rustix::process::getuid().as_raw()))
}

/// Makes `dir` (and any missing parent) a directory only its owner can use: created 0700;
/// an existing one must belong to this user and not be writable by others (a directory in a
/// shared place such as `/tmp` that someone else made or can write into is refused, since
/// they could plant sockets or links in it). One that is merely readable by others (made by
/// an older homelab) is tightened to 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let meta = std::fs::symlink_metadata(dir).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
        let me = rustix::process::getuid().as_raw();
        if !meta.is_dir() {
            anyhow::bail!(
                "{} is not a directory{}\n  hint: homelab keeps private files there; remove it or point HOMELAB_STATE_DIR / XDG_RUNTIME_DIR elsewhere",
                dir.display(),
                if meta.file_type().is_symlink() { " (it is a symbolic link)" } else { "" }
            );
        }
        if meta.uid() != me {
            anyhow::bail!(
                "{} belongs to user {}, not to you (uid {me}); homelab keeps SSH sockets and credentials only in a directory of your own\n  hint: remove it (as its owner) or set XDG_RUNTIME_DIR / HOMELAB_STATE_DIR to a directory you own",
                dir.display(),
                meta.uid()
            );
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            anyhow::bail!(
                "{} can be written by other users (mode {mode:o}); homelab keeps SSH sockets and credentials only in a private directory\n  hint: run `chmod 700 {}` if nobody else put files there, else remove it",
                dir.display(),
                dir.display()
            );
        }
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", dir.display()))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok(())
}

/// Creates `file` empty with mode 0600 when it does not exist (so a tool that appends to it,
/// like ssh with known_hosts, keeps it private), and makes an existing one of ours 0600.
pub fn private_file(file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(file)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open {}: {e}\n  hint: it must be a file of yours (not a symbolic link) in a directory you can write",
                    file.display()
                )
            })?;
        let meta = f.metadata().map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", file.display()))?;
        }
    }
    let _ = file;
    Ok(())
}
