//! The one redaction pass of `homelab diagnose`, over every byte that goes into the bundle:
//! first every secret value homelab knows (registered ones, and each value of the Secrets
//! of the namespaces homelab runs, read for this and never written), then the shapes that
//! hold secrets whatever their value (hosts-lifecycle.md §C7): `sasl.jaas.config` lines
//! (Strimzi's own report leaves them), keys named like a password, token, secret or `*.key`,
//! kubeconfig `*-data` credentials, `Authorization:` headers and OAuth signatures, the
//! password of a URI, and PEM private keys. Pure: text in, text and a count out.

use regex::Regex;
use std::sync::LazyLock;

pub const MASK: &str = "[redacted]";

/// Values shorter than this are not masked by value (they would shred ordinary text); the
/// shapes still catch them.
const MIN_KNOWN: usize = 6;

static JAAS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)(sasl\.jaas\.config["']?\s*[:=]\s*)[^\n]*"#).expect("a valid pattern"));
static PEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)")
        .expect("a valid pattern")
});
/// `key: value`, `key=value`, `"key": "value"` where the key names a secret.
static KEYED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(["']?)([a-z0-9_.\-]*(?:password|passwd|passphrase|secret|token|apikey|api_key|api-key|client-key-data|client-certificate-data|private[_-]?key|\.key))(["']?\s*[:=]\s*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;}\]]+)"#,
    )
    .expect("a valid pattern")
});
static AUTH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(authorization\s*[:=]\s*)[^\n]*").expect("a valid pattern"));
static OAUTH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)(oauth_signature=)("[^"]*"|[^\s,&]+)"#).expect("a valid pattern"));
static URI_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/\s@]+:)([^@\s/]+)(@)").expect("a valid pattern"));

/// Keys that name a secret without holding one (`secretName: app-user`, `tokenFile`).
fn names_only(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["name", "ref", "file", "path", "namespace", "keyref", "selector", "type", "secrets", "kind"]
        .iter()
        .any(|s| k.ends_with(s))
}

pub struct Redactor {
    /// Longest first, so a value that contains another is masked whole.
    known: Vec<String>,
}

impl Redactor {
    pub fn new(known: impl IntoIterator<Item = String>) -> Redactor {
        let mut known: Vec<String> =
            known.into_iter().map(|s| s.trim().to_owned()).filter(|s| s.len() >= MIN_KNOWN).collect();
        known.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        known.dedup();
        Redactor { known }
    }

    /// How many values it masks by value.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    /// `text` with every secret masked, and how many places were masked.
    pub fn scrub(&self, text: &str) -> (String, usize) {
        let mut n = 0;
        let mut out = text.to_owned();
        for k in &self.known {
            let c = out.matches(k.as_str()).count();
            if c > 0 {
                n += c;
                out = out.replace(k.as_str(), MASK);
            }
        }
        let mut count = |re: &Regex, out: &mut String, with: &dyn Fn(&regex::Captures) -> String| {
            let mut hits = 0;
            let next = re
                .replace_all(out, |c: &regex::Captures| {
                    let r = with(c);
                    if r != c[0] {
                        hits += 1;
                    }
                    r
                })
                .into_owned();
            *out = next;
            n += hits;
        };
        count(&PEM, &mut out, &|_| MASK.to_owned());
        count(&JAAS, &mut out, &|c| format!("{}{MASK}", &c[1]));
        count(&AUTH, &mut out, &|c| format!("{}{MASK}", &c[1]));
        count(&OAUTH, &mut out, &|c| format!("{}{MASK}", &c[1]));
        count(&URI_PASSWORD, &mut out, &|c| format!("{}{MASK}{}", &c[1], &c[3]));
        count(&KEYED, &mut out, &|c| {
            let value = &c[4];
            let quoted = value.starts_with('"') || value.starts_with('\'');
            let empty = value.trim_matches(['"', '\'']).is_empty();
            if names_only(&c[2]) || empty || value.contains(MASK) || value.starts_with('{') || value.starts_with('[') {
                c[0].to_owned()
            } else if quoted {
                let q = &value[..1];
                format!("{}{}{}{q}{MASK}{q}", &c[1], &c[2], &c[3])
            } else {
                format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
            }
        });
        (out, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_of_secret_is_masked_and_ordinary_text_is_kept() {
        let r = Redactor::new(["s3cr3t-value-of-db".to_owned(), "abc".to_owned()]);
        let cases = [
            ("password: s3cr3t-value-of-db", "password: [redacted]"),
            ("the db said s3cr3t-value-of-db twice s3cr3t-value-of-db", "the db said [redacted] twice [redacted]"),
            (
                r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password="hunter2hunter";"#,
                "sasl.jaas.config=[redacted]",
            ),
            (r#"{"password":"x y z","user":"app"}"#, r#"{"password":"[redacted]","user":"app"}"#),
            ("    client-key-data: LS0tLS1CRUdJTi", "    client-key-data: [redacted]"),
            ("token=eyJhbGciOi.abc.def", "token=[redacted]"),
            ("ca.key: QUJDREVG", "ca.key: [redacted]"),
            ("Authorization: OAuth oauth_consumer_key=\"k\"", "Authorization: [redacted]"),
            ("postgresql://app:pa55word@shared-pg-rw:5432/app", "postgresql://app:[redacted]@shared-pg-rw:5432/app"),
            ("secretName: app-user-secret", "secretName: app-user-secret"),
            ("passwordSecret: {name: x}", "passwordSecret: {name: x}"),
            ("a short abc stays", "a short abc stays"),
            ("Ceph HEALTH_OK, 3 osds: 3 up", "Ceph HEALTH_OK, 3 osds: 3 up"),
        ];
        for (input, want) in cases {
            assert_eq!(r.scrub(input).0, want, "{input}");
        }
        let pem = "x\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n-----END OPENSSH PRIVATE KEY-----\ny";
        assert_eq!(r.scrub(pem).0, "x\n[redacted]\ny");
        assert_eq!(r.scrub("password: s3cr3t-value-of-db").1, 1);
    }
}
