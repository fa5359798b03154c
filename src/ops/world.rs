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

/// A MAAS key is about 70 bytes; its file is read at most to this size.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Reads the MAAS API key from `maas.apiKeyFile` or `$MAAS_API_KEY`.
pub fn maas_key(source: &KeySource) -> anyhow::Result<ApiKey> {
    let raw = match source {
        // A key file that is not there, with $MAAS_API_KEY set: the variable stands in (what
        // `validate` warns about).
        KeySource::File(p)
            if crate::config::validate::maas_key_in_env()
                && matches!(std::fs::metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound) =>
        {
            std::env::var("MAAS_API_KEY").unwrap_or_default()
        }
        KeySource::File(p) => {
            // As OpenSSH refuses a private key others can read, a key file open to the group
            // or to everyone is refused before it is read.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(p)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    return Err(Failure::Usage(format!(
                        "the MAAS API key file {} is open to other users (mode {:o}); homelab does not use a key others can read\n  hint: run `chmod 600 {}`, and replace the key in MAAS (user menu → API keys) if others may have read it",
                        p.display(),
                        meta.permissions().mode() & 0o777,
                        p.display()
                    ))
                    .into());
                }
            }
            crate::foundation::limits::read_text(p, MAX_KEY_FILE_BYTES, &format!("the MAAS API key file {}", p.display())).map_err(|e| {
                Failure::Usage(format!(
                    "{e}\n  hint: save your key (MAAS UI → user menu → API keys) in that file with mode 0600, or export MAAS_API_KEY"
                ))
            })?
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
    if let Some(m) = &origin.mirror {
        crate::catalog::check_url(m, "--mirror")
            .map_err(|e| Failure::Usage(format!("{e}\n  hint: serve the mirror over https, or from this machine")))?;
    }
    let state_dir = paths::state_dir(&cluster.name);
    paths::private_dir(&state_dir)?;
    let maas = match (&cluster.maas, needs_maas) {
        (Some(m), true) => {
            let key = maas_key(&m.api_key)?;
            let ca = match &m.ca_file {
                Some(p) => Some(
                    crate::foundation::limits::read_file(p, 1 << 20, &format!("`maas.caFile` {}", p.display()))
                        .map_err(|e| {
                            Failure::Usage(format!(
                                "{e}\n  hint: give the PEM file of the CA that signed MAAS's certificate"
                            ))
                        })?,
                ),
                None => None,
            };
            Some(Arc::new(MaasClient::with_ca(&m.api_root(), key, ClientOptions::default(), ca.as_deref())?))
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

/// The SSH connector `init --ssh` reads pre-installed PCs with: `user` and `identity`, host
/// keys recorded (accept-new) in the state directory of cluster `name`, where `up` finds them.
pub fn init_connector(name: &str, user: &str, identity: &str) -> anyhow::Result<OpenSshConnector> {
    let state_dir = paths::state_dir(name);
    paths::private_dir(&state_dir)?;
    OpenSshConnector::new(SshOptions {
        user: user.to_owned(),
        port: 22,
        identity_file: Some(crate::config::validate::expand(identity)),
        known_hosts_file: state_dir.join("known_hosts"),
        host_key_checking: crate::ssh::HostKeyChecking::AcceptNew,
        jump_host: None,
        control_dir: paths::control_dir(),
        connect_timeout: Timings::from_env().ssh_connect_timeout,
        config_file: std::env::var_os("HOMELAB_SSH_CONFIG").map(PathBuf::from),
    })
}
