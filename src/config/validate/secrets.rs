//! Step 3 of validation: no secret is written inline in the file (the MAAS key lives in its
//! own file or `$MAAS_API_KEY`); a value that looks like one is refused with its place.

use super::*;

// ---------------------------------------------------------------------------------------------
// Inline secrets

/// Field names that would hold a secret inline.
pub(in crate::config::validate) const SECRET_KEYS: &[&str] = &[
    "apikey",
    "api_key",
    "key",
    "password",
    "passwd",
    "passphrase",
    "token",
    "secret",
    "privatekey",
    "private_key",
    "clientkey",
    "clientkeydata",
    "client-key-data",
    "bearertoken",
    "sshkey",
];

/// Looks like a MAAS API key: three colon-separated alphanumeric parts.
pub fn looks_like_maas_key(s: &str) -> bool {
    let parts: Vec<&str> = s.trim().split(':').collect();
    parts.len() == 3 && parts.iter().all(|p| p.len() >= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(in crate::config::validate) fn looks_like_secret_value(s: &str) -> Option<&'static str> {
    if looks_like_maas_key(s) {
        return Some("a MAAS API key");
    }
    if s.contains("-----BEGIN") && s.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if s.starts_with("eyJ") && s.matches('.').count() == 2 && s.len() > 40 {
        return Some("a bearer token");
    }
    None
}

pub(in crate::config::validate) fn check_secrets(loc: &Located, report: &mut Report) -> Vec<String> {
    let mut found = Vec::new();
    walk(&loc.value, String::new(), &mut |path, key, v| {
        let in_sections = ["/maas", "/ssh", "/kubernetes", "/metadata"].iter().any(|s| path.starts_with(s));
        let key_l = key.to_ascii_lowercase();
        let kafka_password =
            path.starts_with("/kafka") && (key_l.ends_with(".password") || key_l.ends_with("password"));
        if (in_sections && SECRET_KEYS.contains(&key_l.as_str())) || kafka_password {
            found.push(path.to_owned());
            let hint = if path.starts_with("/maas") {
                "put the key in a file with mode 0600 and set `maas.apiKeyFile`, or export MAAS_API_KEY"
            } else if path.starts_with("/kafka") {
                "keep passwords in a Kubernetes Secret and reference it from the Strimzi configuration"
            } else {
                "keep secrets in files (identityFile, kubeconfig) or the SSH agent, never in cluster.yaml"
            };
            report.push(
                Diagnostic::error(display_path(path), loc.key_pos(path), format!("inline secret `{key}` is refused"))
                    .hint(hint)
                    .secret(),
            );
            return;
        }
        if let Value::String(s) = v
            && let Some(what) = looks_like_secret_value(s)
        {
            found.push(path.to_owned());
            report.push(
                Diagnostic::error(
                    display_path(path),
                    loc.pos(path).value,
                    format!("this value looks like {what}; inline secrets are refused"),
                )
                .hint("reference a file instead (maas.apiKeyFile, ssh.identityFile) or use MAAS_API_KEY")
                .secret(),
            );
        }
    });
    found
}

pub(in crate::config::validate) fn walk(v: &Value, path: String, f: &mut dyn FnMut(&str, &str, &Value)) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{path}/{}", escape(k));
                f(&p, k, child);
                walk(child, p, f);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{path}/{i}");
                f(&p, "", child);
                walk(child, p, f);
            }
        }
        _ => {}
    }
}
