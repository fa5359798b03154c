//! Validation findings: what is wrong, where (file:line:column and field path), and a hint.

use super::tree::Pos;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Field path, e.g. `machines[2].mac`.
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Don't echo the source line (it may hold a secret).
    #[serde(skip)]
    pub hide_source: bool,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            hint: None,
            hide_source: false,
        }
    }
    pub fn warning(path: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(path, pos, message) }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn secret(mut self) -> Self {
        self.hide_source = true;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders one finding the way compilers do:
    ///
    /// ```text
    /// error: machines[2].mac: "52:54:00:zz" is not a MAC address
    ///   --> cluster.yaml:7:27
    ///    |
    ///  7 |   - {hostname: kvm5, mac: "52:54:00:zz"}
    ///    |                           ^
    ///    = hint: …
    /// ```
    pub fn render(&self, file: &str, source: Option<&str>) -> String {
        let mut s = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(s, "{sev}: {}: {}", self.path, self.message);
        if self.line > 0 {
            let _ = writeln!(s, "  --> {file}:{}:{}", self.line, self.column);
            let text = source.filter(|_| !self.hide_source).and_then(|src| src.lines().nth(self.line as usize - 1));
            if let Some(text) = text {
                let text: String = text.chars().take(160).collect();
                let gutter = self.line.to_string().len();
                let pad = " ".repeat(gutter);
                let caret = " ".repeat(self.column.saturating_sub(1) as usize);
                let _ = writeln!(s, "{pad} |");
                let _ = writeln!(s, "{} | {}", self.line, text.trim_end());
                let _ = writeln!(s, "{pad} | {caret}^");
            }
        } else {
            let _ = writeln!(s, "  --> {file}");
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(s, "  = hint: {h}");
        }
        s
    }
}

/// The findings of one validation run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// The report as one line of the JSON stream: `{"event": "validation", "ts", "file",
    /// "valid", "errors", "warnings", "diagnostics"}`.
    pub fn json_line(&self) -> String {
        serde_json::json!({
            "ts": crate::foundation::time::now_rfc3339(),
            "event": "validation",
            "file": self.file,
            "valid": !self.has_errors(),
            "errors": self.errors(),
            "warnings": self.warnings(),
            "diagnostics": self.diagnostics,
        })
        .to_string()
    }
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }
    /// Sorted by position, duplicates removed.
    pub fn finish(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (a.line, a.column, a.severity, &a.message).cmp(&(b.line, b.column, b.severity, &b.message))
        });
        self.diagnostics.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.message == b.message);
    }
    pub fn render(&self, source: Option<&str>) -> String {
        let mut s = String::new();
        for d in &self.diagnostics {
            s.push_str(&d.render(&self.file, source));
            s.push('\n');
        }
        let (e, w) = (self.errors(), self.warnings());
        if e > 0 {
            let _ = writeln!(
                s,
                "{}: {e} error{}{} — nothing was changed",
                self.file,
                if e == 1 { "" } else { "s" },
                if w > 0 { format!(", {w} warning{}", if w == 1 { "" } else { "s" }) } else { String::new() }
            );
        }
        s
    }
}
