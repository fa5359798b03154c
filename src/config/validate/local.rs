//! Step 8 of validating a file on disk: the files the cluster names exist on this workstation.
//!
//! Only [`super::validate_file`] runs it; [`super::validate_bytes`] stays a pure function of
//! the text. Each finding is a warning, not an error: a file is often checked on another
//! machine than the one that runs it (a CI lint, a laptop). Commands that need the file
//! refuse to start without it; `validate` says so first. A missing MAAS key file with
//! `$MAAS_API_KEY` set says the variable stands in (as the run does); a missing SSH identity
//! counts only when no SSH agent runs.

use super::*;

/// Whether `$MAAS_API_KEY` holds something (the run's fallback for a missing key file).
pub fn maas_key_in_env() -> bool {
    std::env::var("MAAS_API_KEY").is_ok_and(|v| !v.trim().is_empty())
}

/// Checks the workstation files of `cluster` (already anchored to the file's directory),
/// reporting each at the place `located` gives for its key.
pub(in crate::config::validate) fn check(cluster: &Cluster, located: &Located, report: &mut Report) {
    let missing = |p: &Path| matches!(std::fs::metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if let Some(m) = &cluster.maas {
        if let KeySource::File(p) = &m.api_key
            && missing(p)
        {
            let at = located.pos("/maas/apiKeyFile").value;
            let message = format!("the MAAS API key file {} does not exist", p.display());
            let (message, hint) = if maas_key_in_env() {
                (
                    format!("{message}; runs use $MAAS_API_KEY instead"),
                    "save the key in that file with mode 0600, or drop `apiKeyFile` to rely on MAAS_API_KEY alone",
                )
            } else {
                (
                    format!(
                        "{message} and MAAS_API_KEY is not set: `up` and every command that asks MAAS will refuse to start"
                    ),
                    "save your key (MAAS UI → user menu → API keys) in that file with mode 0600, fix the path, or export MAAS_API_KEY",
                )
            };
            report.push(Diagnostic::warning("maas.apiKeyFile", at, message).hint(hint));
        }
        if let Some(p) = &m.ca_file
            && missing(p)
        {
            // Read before the first MAAS request; missing, nothing can be asked.
            report.push(
                Diagnostic::warning(
                    "maas.caFile",
                    located.pos("/maas/caFile").value,
                    format!("the CA certificate file {} does not exist", p.display()),
                )
                .hint("copy MAAS's CA certificate (PEM) to this machine and fix the path, or remove `caFile` if MAAS's certificate is publicly trusted"),
            );
        }
    }
    let needs_ssh = !cluster.machines.is_empty();
    if needs_ssh && missing(&cluster.ssh.identity_file) && std::env::var_os("SSH_AUTH_SOCK").is_none() {
        let set = located.value.pointer("/ssh/identityFile").is_some();
        let at = if set { located.pos("/ssh/identityFile").value } else { located.key_pos("/ssh") };
        report.push(
            Diagnostic::warning(
                "ssh.identityFile",
                at,
                format!(
                    "the SSH key {} does not exist and no SSH agent is running; homelab cannot log in to the machines",
                    cluster.ssh.identity_file.display()
                ),
            )
            .hint("create one with `ssh-keygen -t ed25519`, add its public key in MAAS (user menu → SSH keys) and on pre-installed machines, or set `ssh.identityFile`"),
        );
    }
}
