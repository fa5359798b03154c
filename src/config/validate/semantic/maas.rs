//! The `maas` section of cluster.yaml: its semantic rules and its resolved form.

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn maas(&mut self, k: Option<&Kubernetes>) -> Option<Maas> {
        let microk8s = self.is_microk8s(k);
        match (&self.file.maas, microk8s) {
            (None, true) => {
                // MAAS deploys the machines with a MAC; a cluster of pre-installed machines
                // alone needs none.
                if let Some(i) = self.file.machines.iter().position(|m| m.mac.is_some()) {
                    self.err_key(
                        &format!("/machines/{i}/mac"),
                        "MAAS deploys this machine (it has a `mac`), but the file has no `maas:` section",
                        "add `maas: {url: http://<maas-host>:5240/MAAS, apiKeyFile: ~/.config/homelab/maas.key}`, or give a PC that runs Ubuntu already an `address` instead of its `mac`",
                    );
                }
                None
            }
            (Some(_), false) if k.is_some() => {
                self.err_key(
                    "/maas",
                    "`maas:` is only used with `distribution: microk8s`",
                    "an existing cluster has no MAAS phase; remove the section",
                );
                None
            }
            (Some(m), _) => {
                let url = m.url.trim_end_matches('/').to_owned();
                if url.ends_with("/api/2.0") {
                    self.err(
                        "/maas/url",
                        "the URL includes the API path",
                        "give the MAAS base URL, e.g. http://10.0.0.1:5240/MAAS; homelab adds /api/2.0/",
                    );
                }
                if let Some(f) = &m.api_key_file
                    && looks_like_maas_key(f)
                {
                    // Already refused as a secret by check_secrets.
                    return None;
                }
                if url.starts_with("http://") && !crate::catalog::is_loopback_url(&url) {
                    self.warn(
                        "/maas/url",
                        "MAAS is reached over plain http: every request carries the API key's secret in clear text (MAAS signs requests with OAuth PLAINTEXT)",
                        "enable TLS on MAAS (`maas config-tls enable`, port 5443) and use `url: https://…`; set `caFile` if its certificate is self-signed",
                    );
                }
                if m.ca_file.is_some() && !url.starts_with("https://") {
                    self.warn(
                        "/maas/caFile",
                        "`caFile` is only used with an https MAAS URL",
                        "use `url: https://…` or remove `caFile`",
                    );
                }
                let distro = m.distro_series.clone().unwrap_or_else(|| "jammy".into());
                let distro = distro.strip_prefix("ubuntu/").unwrap_or(&distro).to_owned();
                Some(Maas {
                    url,
                    api_key: m.api_key_file.as_deref().map(|p| KeySource::File(expand(p))).unwrap_or(KeySource::Env),
                    distro_series: distro,
                    ca_file: m.ca_file.as_deref().map(expand),
                })
            }
            (None, false) => None,
        }
    }

    pub(in crate::config::validate) fn ssh(&mut self) -> Ssh {
        let s = self.file.ssh.clone().unwrap_or_default();
        Ssh {
            user: s.user.unwrap_or_else(|| "ubuntu".into()),
            port: s.port.unwrap_or(22),
            identity_file: expand(s.identity_file.as_deref().unwrap_or("~/.ssh/id_ed25519")),
            host_key_checking: s.host_key_checking.unwrap_or_default(),
            known_hosts_file: s.known_hosts_file.as_deref().map(expand),
            jump_host: s.jump_host,
        }
    }
}
