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
use super::phase_id::PhaseId;
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
    /// Phases whose header line is out: a phase's first line comes under its header, even
    /// when it is a preparation that runs before the phase's machines start.
    announced: Mutex<Vec<PhaseId>>,
    /// The run's log file, when the command keeps one: every event and error goes there too.
    run_log: std::sync::OnceLock<Arc<super::runlog::RunLog>>,
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
                announced: Mutex::default(),
                run_log: Default::default(),
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
                announced: Mutex::default(),
                run_log: Default::default(),
            }),
        };
        (ui, Captured { out, err })
    }

    /// Sends every event and error of this run to `log` as well (once per Ui).
    pub fn attach_log(&self, log: Arc<super::runlog::RunLog>) {
        let _ = self.inner.run_log.set(log);
    }

    /// The run log's file, when there is one.
    pub fn log_path(&self) -> Option<std::path::PathBuf> {
        self.inner.run_log.get().map(|l| l.path().to_path_buf())
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
        // Text for a person on a terminal is wrapped at words; piped or JSON, it is as written.
        let tty = self.inner.format == OutputFormat::Text
            && matches!(self.inner.out, Sink::Std)
            && std::io::stdout().is_terminal();
        let mut s = if tty {
            wrap(text, (console::Term::stdout().size().1 as usize).saturating_sub(1))
        } else {
            text.to_owned()
        };
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
                // Lines printed above the live rows are wrapped at word boundaries: the
                // terminal would break them mid-word.
                // One column spare: a line that fills the width exactly makes some terminals wrap.
                let width = (console::Term::stderr().size().1 as usize).saturating_sub(1);
                let _ = m.println(wrap(&redact(s.trim_end_matches('\n')), width));
            }
            None => self.write(false, &s),
        }
    }

    /// An error message, shown in every output mode (JSON mode puts it on stderr too, so a
    /// script that only reads stdout still gets a clean event stream).
    pub fn error(&self, text: &str) {
        if let Some(l) = self.inner.run_log.get() {
            l.line("error", text);
        }
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
        if let Some(l) = self.inner.run_log.get()
            && let Ok(json) = serde_json::to_string(&event)
        {
            l.line("event", &json);
        }
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
                self.announce(*phase, &tag(phase));
                // The machines' pipelines are over once a cluster-level phase starts: their
                // rows stop spinning on their last words.
                if matches!(phase, PhaseId::Storage | PhaseId::Kafka | PhaseId::Database) {
                    self.idle_machine_rows();
                }
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
                self.announce(*phase, &tag(phase));
                self.err(&format!("{} {target}: {action}", tag(phase)));
                self.row(target, phase.name(), action, true);
            }
            Event::Info { phase, target, message } => {
                self.announce(*phase, &tag(phase));
                self.err(&format!("{} {target}: {message}", tag(phase)));
                self.row(target, phase.name(), message, false);
            }
            Event::Planned { phase, target, action, .. } => {
                self.announce(*phase, &tag(phase));
                self.err(&format!("{} {target}: would {action}", tag(phase)));
            }
            Event::Drift { phase, target, message, hint } => {
                self.err(&format!("{} {target}: DRIFT: {message}\n{:>10}   hint: {hint}", tag(phase), ""));
            }
            Event::Warning { phase, target, message, hint } => {
                if let Some(p) = phase {
                    self.announce(*p, &tag(p));
                }
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
                self.announce(*phase, &tag(phase));
                let msg = format!("waiting for {what} (deadline {})", fmt_secs(*deadline_s));
                if !self.row(target, phase.name(), &msg, true) {
                    self.err(&format!("{} {target}: {msg}", tag(phase)));
                }
            }
            Event::WaitProgress { phase, target, what, elapsed_s, deadline_s, message } => {
                // Still waiting, never read as done ("MAAS status Deployed: Deploying" did):
                // the line says what is awaited and what is seen now; the row, narrow, puts
                // what is seen first ("Installing OS — waiting for MAAS status Deployed").
                let detail = message.as_deref().map(|m| format!(" — now {m}")).unwrap_or_default();
                let msg = format!("waiting for {what}{detail}");
                let row = match message.as_deref() {
                    Some(m) => format!("{m} — waiting for {what}"),
                    None => msg.clone(),
                };
                if !self.row(target, phase.name(), &row, false) {
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

    /// Prints the header of `phase` unless it is out already.
    fn announce(&self, phase: PhaseId, tag: &str) {
        let Ok(mut a) = self.inner.announced.lock() else { return };
        if !a.contains(&phase) {
            a.push(phase);
            drop(a);
            self.err(&format!("{tag} ──"));
        }
    }

    /// The machines' rows, done with their work: no spinner, no clock, their last words kept.
    fn idle_machine_rows(&self) {
        let machines = self.inner.machines.lock().map(|m| m.clone()).unwrap_or_default();
        let Ok(bars) = self.inner.bars.lock() else { return };
        for m in machines {
            if let Some(pb) = bars.get(&m) {
                pb.disable_steady_tick();
                pb.set_style(
                    ProgressStyle::with_template("{prefix:<16.bold} ✓ {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.tick();
            }
        }
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

/// `text` with each line wrapped at word boundaries to `width` columns (ANSI styles and wide
/// characters measured as the terminal shows them); continuation lines keep the line's
/// indentation. A width too small to be a terminal leaves the text as it is.
fn wrap(text: &str, width: usize) -> String {
    if width < 20 {
        return text.to_owned();
    }
    let mut out = Vec::new();
    for line in text.lines() {
        if console::measure_text_width(line) <= width {
            out.push(line.to_owned());
            continue;
        }
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut cur = String::new();
        for word in line.split(' ').skip_while(|w| w.is_empty()) {
            let next = if cur.is_empty() { format!("{indent}{word}") } else { format!("{cur} {word}") };
            if console::measure_text_width(&next) > width && !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
                cur = format!("{indent}  {word}");
            } else {
                cur = next;
            }
        }
        out.push(cur);
    }
    out.join("\n")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_words_not_inside_them() {
        let line = "   storage rook-ceph: waiting for Ceph Ready with one OSD on each of 3 machines (deadline 30m00s)";
        let w = wrap(line, 40);
        for l in w.lines() {
            assert!(console::measure_text_width(l) <= 40, "{l:?} in\n{w}");
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.split_whitespace().collect::<Vec<_>>(), words, "no word is cut:\n{w}");
        assert!(w.lines().skip(1).all(|l| l.starts_with("     ")), "continuations indented:\n{w}");
        assert_eq!(wrap("short", 80), "short");
    }

    #[test]
    fn a_phase_header_comes_before_its_first_line_once_and_waits_read_as_waits() {
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        ui.emit(Event::Step {
            phase: PhaseId::Machines,
            target: "MAAS".into(),
            action: "register the SSH key".into(),
            detail: None,
        });
        ui.emit(Event::PhaseStarted { phase: PhaseId::Machines });
        ui.emit(Event::WaitProgress {
            phase: PhaseId::Machines,
            target: "kvm4".into(),
            what: "MAAS status Deployed".into(),
            elapsed_s: 5.0,
            deadline_s: 1800.0,
            message: Some("Deploying".into()),
        });
        let err = cap.stderr();
        let header = err.find("machines ──").expect(&err);
        assert!(header < err.find("register the SSH key").expect(&err), "{err}");
        assert_eq!(err.matches("machines ──").count(), 1, "{err}");
        assert!(err.contains("waiting for MAAS status Deployed — now Deploying"), "{err}");
    }
}
