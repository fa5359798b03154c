//! The plan: the actions a real run would take, as a dry run records them, and their text.

use crate::foundation::phase_id::PhaseId;

/// An action a real run would take (dry run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub target: String,
    /// In the words of the run's `step`.
    pub action: String,
    /// The exact call, as the run's `step` carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Planned {
    pub fn new(target: impl Into<String>, action: impl Into<String>) -> Planned {
        Planned { target: target.into(), action: action.into(), detail: None }
    }

    pub fn with_detail(self, detail: Option<String>) -> Planned {
        Planned { detail, ..self }
    }

    /// The words and, for review, the exact call.
    pub fn text(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} ({d})", self.action),
            None => self.action.clone(),
        }
    }
}

/// The plan as text: per phase, per target, the actions in order.
pub fn render_plan(planned: &[(PhaseId, Planned)]) -> String {
    if planned.is_empty() {
        return "plan: no changes — the cluster matches the file".to_owned();
    }
    let mut s =
        format!("plan: {} action{} a real run would take\n", planned.len(), if planned.len() == 1 { "" } else { "s" });
    let mut current: Option<(PhaseId, &str)> = None;
    for (phase, p) in planned {
        if current.map(|c| c.0) != Some(*phase) {
            s.push_str(&format!("\n{phase}\n"));
            current = None;
        }
        if current.map(|c| c.1) != Some(p.target.as_str()) {
            s.push_str(&format!("  {}\n", p.target));
            current = Some((*phase, p.target.as_str()));
        }
        s.push_str(&format!("    - {}\n", p.text()));
    }
    s.trim_end().to_owned()
}
