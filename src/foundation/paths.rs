//! Where homelab keeps things on the workstation: the per-cluster state directory (kubeconfig,
//! known_hosts, lock), the download cache, and the short directory for SSH control sockets.
//! `HOMELAB_STATE_DIR` and `HOMELAB_CACHE_DIR` move the first two (tests, CI, several users).

use std::path::PathBuf;

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
