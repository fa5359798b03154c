//! The one type that owns what the user sees. Phases report [`Event`]s; the `Ui` draws them as
//! a live view on a terminal, as plain lines when output is piped, or as newline-delimited
//! JSON with `--output json`. Log lines (`-v`, `RUST_LOG`) go through the same `Ui` so the view
//! and logs never tangle, and every byte passes the secret filter first.
//!
//! The live view: one row per machine (and one for the cluster-level work) at the bottom of
//! the screen, updated in place — its phase, its current step or wait (a wait's latest word,
//! MAAS's `status_message` while deploying) and how long that has taken; finished actions
//! and phase lines scroll above it in a few words (the exact call of an action is a `-v` log
//! line). Rows are cut to the terminal's width, never wrapped.

use super::events::{Envelope, Event, PhaseTiming};
use super::secrets::redact;
use super::time::{fmt_secs, now_rfc3339};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// Progress bars on a terminal, plain lines otherwise.
    #[default]
    Text,
    /// Newline-delimited JSON events on stdout.
    Json,
}

enum Sink {
    Std,
    Capture(Arc<Mutex<Vec<u8>>>),
}

struct Inner {
    format: OutputFormat,
    color: bool,
    multi: Option<MultiProgress>,
    /// The live view's rows, by machine (and `cluster` for everything else).
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The run's machines, from `run_started`, in order.
    machines: Mutex<Vec<String>>,
    out: Sink,
    err: Sink,
    quiet: bool,
    /// The current run is a dry run (phase lines say "planned", not "done").
    dry_run_seen: std::sync::atomic::AtomicBool,
}

/// Cheap to clone; all clones draw to the same place.
#[derive(Clone)]
pub struct Ui {
    inner: Arc<Inner>,
}

impl Ui {
    /// Output to the real stdout/stderr; bars only when stderr is a terminal.
    pub fn new(format: OutputFormat, quiet: bool) -> Ui {
        let tty = std::io::stderr().is_terminal() && format == OutputFormat::Text && !quiet;
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)));
        Ui {
            inner: Arc::new(Inner {
                format,
                color,
                multi,
                bars: Mutex::new(HashMap::new()),
                machines: Mutex::default(),
                out: Sink::Std,
                err: Sink::Std,
                quiet,
                dry_run_seen: Default::default(),
            }),
        }
    }

    /// Output captured in memory (tests): returns the Ui and a handle to read stdout+stderr.
    pub fn capture(format: OutputFormat) -> (Ui, Captured) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let ui = Ui {
            inner: Arc::new(Inner {
                format,
                color: false,
                multi: None,
                bars: Mutex::new(HashMap::new()),
                machines: Mutex::default(),
                out: Sink::Capture(out.clone()),
                err: Sink::Capture(err.clone()),
                quiet: false,
                dry_run_seen: Default::default(),
            }),
        };
        (ui, Captured { out, err })
    }

    pub fn format(&self) -> OutputFormat {
        self.inner.format
    }
    pub fn is_json(&self) -> bool {
        self.inner.format == OutputFormat::Json
    }
    pub fn color(&self) -> bool {
        self.inner.color
    }

    fn write(&self, to_stdout: bool, text: &str) {
        let text = redact(text);
        let sink = if to_stdout { &self.inner.out } else { &self.inner.err };
        match sink {
            Sink::Std => {
                let write = || {
                    if to_stdout {
                        let mut o = std::io::stdout().lock();
                        let _ = o.write_all(text.as_bytes());
                        let _ = o.flush();
                    } else {
                        let _ = std::io::stderr().lock().write_all(text.as_bytes());
                    }
                };
                match &self.inner.multi {
                    Some(m) => m.suspend(write),
                    None => write(),
                }
            }
            Sink::Capture(buf) => {
                if let Ok(mut b) = buf.lock() {
                    b.extend_from_slice(text.as_bytes());
                }
            }
        }
    }

    /// A result line on stdout (tables, plans, summaries, JSON documents).
    pub fn out(&self, text: &str) {
        let mut s = text.to_owned();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        self.write(true, &s);
    }

    /// A whole view on stdout that replaces the last one: on a terminal it is drawn from the
    /// top of the screen and what the last one left below is cleared (`status --watch`);
    /// elsewhere it follows the last one.
    pub fn redraw(&self, text: &str) {
        let tty = matches!(self.inner.out, Sink::Std) && std::io::stdout().is_terminal();
        if tty {
            // Home, then each line with the rest of it cleared, then the rest of the screen;
            // a view taller than the screen is cut (drawn whole, it would scroll and the next
            // drawing would not replace it).
            // Each line is cut to the screen's width for the same reason.
            let (rows, cols) = console::Term::stdout().size();
            let cut = |l: &str| console::truncate_str(l, usize::from(cols.max(20)) - 1, "…").into_owned();
            let lines: Vec<String> = text.lines().map(cut).collect();
            let fit = usize::from(rows.max(3)) - 1;
            let shown = if lines.len() > fit { fit - 1 } else { lines.len() };
            let mut body: String = lines.iter().take(shown).map(|l| format!("{l}\x1b[K\n")).collect();
            if lines.len() > shown {
                body.push_str(&cut(&format!(
                    "… {} more lines: a taller window shows them, `homelab status` prints all\x1b[K\n",
                    lines.len() - shown
                )));
            }
            self.write(true, &format!("\x1b[H{body}\x1b[J"));
        } else {
            self.out(&format!("{text}\n"));
        }
    }

    /// A human line on stderr (progress when not a terminal, notices, errors).
    pub fn err(&self, text: &str) {
        if self.is_json() {
            return;
        }
        let mut s = text.to_owned();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        match &self.inner.multi {
            Some(m) => {
                let _ = m.println(redact(s.trim_end_matches('\n')));
            }
            None => self.write(false, &s),
        }
    }

    /// An error message, shown in every output mode (JSON mode puts it on stderr too, so a
    /// script that only reads stdout still gets a clean event stream).
    pub fn error(&self, text: &str) {
        let mut s = text.to_owned();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        self.clear_bars();
        self.write(false, &s);
    }

    /// Log lines from tracing.
    pub fn log(&self, text: &str) {
        self.write(false, text);
    }

    pub fn emit(&self, event: Event) {
        match self.inner.format {
            OutputFormat::Json => {
                let env = Envelope { ts: now_rfc3339(), event: &event };
                if let Ok(line) = serde_json::to_string(&env) {
                    self.out(&line);
                }
            }
            OutputFormat::Text => {
                if self.inner.quiet
                    && !matches!(event, Event::Failed { .. } | Event::Drift { .. } | Event::Warning { .. })
                {
                    return;
                }
                self.render_human(&event);
            }
        }
    }

    fn render_human(&self, event: &Event) {
        let tag = |p: &dyn std::fmt::Display| -> String {
            let s = format!("{:>10}", p.to_string());
            if self.inner.color { console::style(s).cyan().bold().to_string() } else { s }
        };
        match event {
            Event::RunStarted { command, cluster, dry_run, phases, machines } => {
                self.inner.dry_run_seen.store(*dry_run, std::sync::atomic::Ordering::Relaxed);
                if let Ok(mut m) = self.inner.machines.lock() {
                    m.clone_from(machines);
                }
                // The rows in the file's order, before the first event of any of them.
                if !*dry_run {
                    for m in machines {
                        self.row(m, "", "", true);
                    }
                }
                let names: Vec<&str> = phases.iter().map(|p| p.name()).collect();
                let dry = if *dry_run { " (dry run: nothing will be changed)" } else { "" };
                self.err(&format!("homelab {command} `{cluster}`: {}{dry}", names.join(" → ")));
            }
            Event::PhaseStarted { phase } => {
                self.err(&format!("{} ──", tag(phase)));
            }
            Event::HopStarted { hop, index, of, stage, action, budget_s } => {
                self.err(&format!(
                    "── hop {index}/{of} (stage {stage}) {hop}: {action} (budget {})",
                    crate::foundation::time::fmt_secs(*budget_s)
                ));
            }
            Event::HopFinished { hop, ok, changes, elapsed_s, .. } => {
                self.err(&format!(
                    "── {hop} {} in {} ({changes} change{})",
                    if *ok { "done" } else { "FAILED" },
                    crate::foundation::time::fmt_secs(*elapsed_s),
                    plural(*changes)
                ));
            }
            Event::Step { phase, target, action, .. } => {
                self.err(&format!("{} {target}: {action}", tag(phase)));
                self.row(target, phase.name(), action, true);
            }
            Event::Info { phase, target, message } => {
                self.err(&format!("{} {target}: {message}", tag(phase)));
                self.row(target, phase.name(), message, false);
            }
            Event::Planned { phase, target, action, .. } => {
                self.err(&format!("{} {target}: would {action}", tag(phase)));
            }
            Event::Drift { phase, target, message, hint } => {
                self.err(&format!("{} {target}: DRIFT: {message}\n{:>10}   hint: {hint}", tag(phase), ""));
            }
            Event::Warning { phase, target, message, hint } => {
                let p = phase.map(|p| p.to_string()).unwrap_or_default();
                let mut s = format!("{} {target}: warning: {message}", tag(&p));
                if let Some(h) = hint {
                    s.push_str(&format!("\n{:>10}   hint: {h}", ""));
                }
                self.err(&s);
            }
            Event::Failed { phase, target, message } => {
                self.row(target, phase.name(), "FAILED", true);
                let head =
                    if self.inner.color { console::style("FAILED").red().bold().to_string() } else { "FAILED".into() };
                self.err(&format!("{} {target}: {head}: {message}", tag(phase)));
            }
            Event::WaitStarted { phase, target, what, deadline_s } => {
                let msg = format!("waiting for {what} (deadline {})", fmt_secs(*deadline_s));
                if !self.row(target, phase.name(), &msg, true) {
                    self.err(&format!("{} {target}: {msg}", tag(phase)));
                }
            }
            Event::WaitProgress { phase, target, what, elapsed_s, deadline_s, message } => {
                let detail = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                let msg = format!("{what}{detail}");
                if !self.row(target, phase.name(), &msg, false) {
                    self.err(&format!(
                        "{} {target}: {msg} ({} of {})",
                        tag(phase),
                        fmt_secs(*elapsed_s),
                        fmt_secs(*deadline_s)
                    ));
                }
            }
            Event::WaitDone { phase, target, what, elapsed_s } => {
                let msg = format!("{what} after {}", fmt_secs(*elapsed_s));
                self.err(&format!("{} {target}: {msg}", tag(phase)));
                self.row(target, phase.name(), &msg, true);
            }
            Event::PhaseFinished { phase, ok, changes, elapsed_s }
                if self.inner.dry_run_seen.load(std::sync::atomic::Ordering::Relaxed) =>
            {
                let _ = (ok, elapsed_s);
                self.err(&format!("{} {changes} action{} planned", tag(phase), plural(*changes)));
            }
            Event::PhaseFinished { phase, ok, changes, elapsed_s } => {
                let state = if *ok { "done" } else { "FAILED" };
                self.err(&format!(
                    "{} {state}: {changes} change{} in {}",
                    tag(phase),
                    plural(*changes),
                    fmt_secs(*elapsed_s)
                ));
            }
            Event::RunFinished { dry_run: true, .. } => {
                self.clear_bars();
                self.out("dry run: nothing was changed");
            }
            Event::RunFinished { ok, changes, elapsed_s, phases, .. } => {
                self.clear_bars();
                self.out(&summary_table(phases, *changes, *elapsed_s));
                let verdict = if *ok {
                    if *changes == 0 {
                        "converged: no changes".to_owned()
                    } else {
                        format!("done: {changes} change{}", plural(*changes))
                    }
                } else {
                    "failed".to_owned()
                };
                self.out(&verdict);
            }
        }
    }

    /// Sets the live row of `target` (made on its first event) to `phase` and `msg`; `fresh`
    /// restarts its clock (a new step or wait). A target that is not one of the run's machines
    /// (an object, a pool, the kubeconfig) shows in the `cluster` row. False when there is no
    /// live view.
    fn row(&self, target: &str, phase: &str, msg: &str, fresh: bool) -> bool {
        let Some(m) = &self.inner.multi else { return false };
        let machine = self.inner.machines.lock().map(|ms| ms.iter().any(|x| x == target)).unwrap_or(false);
        let (key, msg) = if machine || target == "cluster" {
            (target.to_owned(), msg.to_owned())
        } else {
            ("cluster".to_owned(), format!("{target}: {msg}"))
        };
        let Ok(mut bars) = self.inner.bars.lock() else { return false };
        let pb = bars.entry(key.clone()).or_insert_with(|| {
            let pb = m.add(ProgressBar::new_spinner());
            pb.set_style(
                ProgressStyle::with_template("{prefix:<16.bold} {spinner:.cyan} {wide_msg} {elapsed:>4}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(redact(&key).into_owned());
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        if fresh {
            pb.reset_elapsed();
        }
        pb.set_message(redact(&format!("{phase:<10} {msg}")).into_owned());
        true
    }

    fn clear_bars(&self) {
        if let Ok(mut bars) = self.inner.bars.lock() {
            for (_, pb) in bars.drain() {
                pb.finish_and_clear();
                if let Some(m) = &self.inner.multi {
                    m.remove(&pb);
                }
            }
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The per-phase timing summary printed at the end of a run.
pub fn summary_table(phases: &[PhaseTiming], changes: u32, elapsed_s: f64) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["phase", "result", "changes", "time"]);
    for p in phases {
        t.add_row(vec![
            p.phase.to_string(),
            if p.ok { "ok".into() } else { "FAILED".into() },
            p.changes.to_string(),
            fmt_secs(p.elapsed_s),
        ]);
    }
    t.add_row(vec!["total".to_owned(), String::new(), changes.to_string(), fmt_secs(elapsed_s)]);
    for i in 2..4 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// What a captured Ui printed.
#[derive(Clone)]
pub struct Captured {
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Captured {
    pub fn stdout(&self) -> String {
        self.out.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
    pub fn stderr(&self) -> String {
        self.err.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stderr(), self.stdout())
    }
}

/// A `tracing` writer that prints through the Ui.
#[derive(Clone)]
pub struct LogWriter(pub Ui);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.log(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
