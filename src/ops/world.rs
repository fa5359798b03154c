//! The real outside world of a cluster: the MAAS client (with the API key read from its file
//! or `$MAAS_API_KEY`), SSH through the system's OpenSSH with homelab's known_hosts and host-key
//! policy, the pinned-manifest source, and the per-cluster state directory. There is no switch
//! to a simulator here: tests and `homelab demo` build their world in `sim`.

use crate::catalog::bundle::ManifestSource;
use crate::config::{Cluster, KeySource};
use crate::engine::context::{Timings, World};
use crate::foundation::error::Failure;
use crate::foundation::paths;
use crate::maas::{ApiKey, ClientOptions, MaasClient};
use crate::ssh::openssh_impl::{OpenSshConnector, SshOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Where pinned manifests come from besides the default download (a mirror, a directory).
#[derive(Debug, Clone, Default)]
pub struct ManifestOrigin {
    pub mirror: Option<String>,
    pub local_dir: Option<PathBuf>,
}

/// Reads the MAAS API key from `maas.apiKeyFile` or `$MAAS_API_KEY`.
pub fn maas_key(source: &KeySource) -> anyhow::Result<ApiKey> {
    let raw = match source {
        KeySource::File(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::Usage(format!(
                    "cannot read the MAAS API key file {}: {e}\n  hint: save your key (MAAS UI → user menu → API keys) in that file with mode 0600, or export MAAS_API_KEY",
                    p.display()
                ))
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(p)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!("the MAAS API key file {} is readable by other users; run `chmod 600 {}`", p.display(), p.display());
                }
            }
            text
        }
        KeySource::Env => std::env::var("MAAS_API_KEY").map_err(|_| {
            Failure::Usage("no MAAS API key: `maas.apiKeyFile` is not set and MAAS_API_KEY is empty\n  hint: save your key (MAAS UI → user menu → API keys) in a file with mode 0600 and set `maas.apiKeyFile`, or export MAAS_API_KEY".into())
        })?,
    };
    ApiKey::parse(raw.trim()).map_err(|e| {
        Failure::Usage(format!(
            "{e}\n  hint: copy the whole key from the MAAS UI (user menu → API keys); it looks like `AbC…:dEf…:GhI…`"
        ))
        .into()
    })
}

/// Builds the real outside world for a cluster: MAAS client (when `needs_maas`), SSH and the
/// manifest source, creating the state directory.
pub fn real(cluster: &Cluster, origin: &ManifestOrigin, needs_maas: bool) -> anyhow::Result<World> {
    let state_dir = paths::state_dir(&cluster.name);
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the state directory {}: {e}", state_dir.display()))?;
    let maas = match (&cluster.maas, needs_maas) {
        (Some(m), true) => {
            let key = maas_key(&m.api_key)?;
            Some(Arc::new(MaasClient::new(&m.api_root(), key, ClientOptions::default())?))
        }
        _ => None,
    };
    let timings = Timings::from_env();
    let ssh = SshOptions {
        user: cluster.ssh.user.clone(),
        port: cluster.ssh.port,
        identity_file: Some(cluster.ssh.identity_file.clone()),
        known_hosts_file: cluster.ssh.known_hosts_file.clone().unwrap_or_else(|| state_dir.join("known_hosts")),
        host_key_checking: cluster.ssh.host_key_checking,
        jump_host: cluster.ssh.jump_host.clone(),
        control_dir: paths::control_dir(),
        connect_timeout: timings.ssh_connect_timeout,
        config_file: std::env::var_os("HOMELAB_SSH_CONFIG").map(PathBuf::from),
    };
    Ok(World {
        maas,
        hosts: Arc::new(OpenSshConnector::new(ssh)?),
        manifests: ManifestSource {
            cache_dir: paths::cache_dir().join("manifests"),
            mirror: origin.mirror.clone(),
            local_dir: origin.local_dir.clone(),
        },
        state_dir,
    })
}
