//! Secrets never reach output, logs or events: every value homelab learns that is a secret
//! (the MAAS key and its parts, join tokens, kubeconfig credentials) is registered here, and
//! every line the [`super::output::Ui`] or the tracing writer prints passes through [`redact`].

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

pub const MASK: &str = "[redacted]";

/// Registers a secret. Values shorter than 6 characters are ignored (masking them would
/// shred ordinary text, and no real secret is that short).
pub fn register(secret: &str) {
    let s = secret.trim();
    if s.len() < 6 {
        return;
    }
    if let Ok(mut v) = SECRETS.write()
        && !v.iter().any(|x| x == s)
    {
        v.push(s.to_owned());
        // Longest first, so a secret that contains another is masked whole.
        v.sort_by_key(|x| std::cmp::Reverse(x.len()));
    }
}

/// Every registered secret (for a redaction that runs over text this process did not print,
/// `homelab diagnose`).
pub fn registered() -> Vec<String> {
    SECRETS.read().map(|v| v.clone()).unwrap_or_default()
}

/// Masks every registered secret in `text`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(v) = SECRETS.read() else { return Cow::Borrowed(text) };
    if v.is_empty() || !v.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for s in v.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// A string that is a secret: registered on creation, shown as `[redacted]` by Debug and
/// Display, and only readable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        register(&s);
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked() {
        register("s3cr3t-token-value");
        register("abc"); // too short, ignored
        assert_eq!(redact("join s3cr3t-token-value now abc"), "join [redacted] now abc");
        let s = Secret::new("another-secret-1234");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(redact("x another-secret-1234 y"), "x [redacted] y");
    }
}
