//! The event stream: everything a run reports, as typed events. `--output json` prints them
//! as newline-delimited JSON (schema in `docs/events.md`); the terminal and plain renderers in
//! [`super::output`] draw the same events.

use serde::Serialize;

use super::phase_id::PhaseId;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A command started.
    RunStarted {
        command: String,
        cluster: String,
        dry_run: bool,
        phases: Vec<PhaseId>,
        /// The machines the run works on (their hostnames: the `target` of their events).
        machines: Vec<String>,
    },
    PhaseStarted {
        phase: PhaseId,
    },
    /// A mutating action starts (each one counts as a change): `action` in a few human words,
    /// `detail` the exact call it makes, where there is one (the terminal shows it with `-v`).
    Step {
        phase: PhaseId,
        target: String,
        action: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Read-only information about a target (state found, nothing to do, …).
    Info {
        phase: PhaseId,
        target: String,
        message: String,
    },
    /// A wait began: what for, on which target, with which deadline.
    WaitStarted {
        phase: PhaseId,
        target: String,
        what: String,
        deadline_s: f64,
    },
    /// Progress of a wait (e.g. MAAS's `status_message`).
    WaitProgress {
        phase: PhaseId,
        target: String,
        what: String,
        elapsed_s: f64,
        deadline_s: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    WaitDone {
        phase: PhaseId,
        target: String,
        what: String,
        elapsed_s: f64,
    },
    /// Dry run: an action a real run would take, in the words and with the call of its `step`.
    Planned {
        phase: PhaseId,
        target: String,
        action: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The real state differs from the file in a way homelab will not change on its own.
    Drift {
        phase: PhaseId,
        target: String,
        message: String,
        hint: String,
    },
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        phase: Option<PhaseId>,
        target: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// A target failed; the run goes on with the other targets where it can.
    Failed {
        phase: PhaseId,
        target: String,
        message: String,
    },
    /// `upgrade`: a hop of the ladder begins (`hop` is its name, e.g. `rook-v1.11.11`).
    HopStarted {
        hop: String,
        index: usize,
        of: usize,
        stage: String,
        action: String,
        budget_s: f64,
    },
    /// `upgrade`: a hop ended.
    HopFinished {
        hop: String,
        ok: bool,
        changes: u32,
        elapsed_s: f64,
        budget_s: f64,
    },
    PhaseFinished {
        phase: PhaseId,
        ok: bool,
        changes: u32,
        elapsed_s: f64,
    },
    RunFinished {
        ok: bool,
        dry_run: bool,
        changes: u32,
        elapsed_s: f64,
        phases: Vec<PhaseTiming>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhaseTiming {
    pub phase: PhaseId,
    pub ok: bool,
    pub changes: u32,
    pub elapsed_s: f64,
}

/// The JSON line: `{"ts": "...", "event": "...", ...}`.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub ts: String,
    #[serde(flatten)]
    pub event: &'a Event,
}
