//! Every wait in homelab goes through [`wait_for`]: it has a deadline, backs off between
//! probes, reports progress as events, and when time runs out its error names what it waited
//! for, on which target, the last thing it saw, and what to try next.

use super::events::Event;
use super::output::Ui;
use super::phase_id::PhaseId;
use super::time::fmt_secs;
use std::future::Future;
use std::time::{Duration, Instant};

/// What one probe found.
pub enum Probe<T> {
    /// Done, with the value the caller wanted.
    Ready(T),
    /// Not yet; optionally with a progress message (shown to the user).
    Pending(Option<String>),
    /// It will never get there (e.g. MAAS says "Failed deployment"): stop waiting now.
    Failed(anyhow::Error),
}

/// How often to probe: starts at `first`, grows by half each time, never above `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max }
    }
    pub fn next(&self, current: Duration) -> Duration {
        (current + current / 2).min(self.max).max(self.first)
    }
}

#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub phase: PhaseId,
    pub target: String,
    /// What we wait for, e.g. "MAAS status Deployed".
    pub what: String,
    pub deadline: Duration,
    pub backoff: Backoff,
    /// What to try when the deadline passes.
    pub hint: String,
}

/// A wait that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {elapsed} waiting for {what} on {target}{last}\n  hint: {hint}")]
pub struct WaitTimeout {
    pub what: String,
    pub target: String,
    pub elapsed: String,
    pub last: String,
    pub hint: String,
}

/// Probes until `probe` says Ready or Failed, or the deadline passes.
pub async fn wait_for<T, F, Fut>(ui: &Ui, spec: &WaitSpec, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Probe<T>>>,
{
    let start = Instant::now();
    let deadline_s = spec.deadline.as_secs_f64();
    let mut announced = false;
    let mut interval = spec.backoff.first;
    let mut last_msg: Option<String> = None;
    let mut last_err: Option<String>;
    loop {
        let probe_result = match tokio::time::timeout(
            spec.deadline.saturating_sub(start.elapsed()).max(Duration::from_millis(1)),
            probe(),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Ok(Probe::Pending(last_msg.clone())),
        };
        match probe_result {
            Ok(Probe::Ready(v)) => {
                if announced {
                    ui.emit(Event::WaitDone {
                        phase: spec.phase,
                        target: spec.target.clone(),
                        what: spec.what.clone(),
                        elapsed_s: start.elapsed().as_secs_f64(),
                    });
                }
                return Ok(v);
            }
            Ok(Probe::Failed(e)) => {
                return Err(e);
            }
            Ok(Probe::Pending(msg)) => {
                last_err = None;
                if !announced {
                    announced = true;
                    ui.emit(Event::WaitStarted {
                        phase: spec.phase,
                        target: spec.target.clone(),
                        what: spec.what.clone(),
                        deadline_s,
                    });
                }
                if msg.is_some() && msg != last_msg {
                    ui.emit(Event::WaitProgress {
                        phase: spec.phase,
                        target: spec.target.clone(),
                        what: spec.what.clone(),
                        elapsed_s: start.elapsed().as_secs_f64(),
                        deadline_s,
                        message: msg.clone(),
                    });
                    last_msg = msg;
                }
            }
            // A probe that errors (connection refused while a machine boots, a 503) is
            // retried until the deadline; its last error is reported if time runs out.
            Err(e) => {
                tracing::debug!(target: "homelab::wait", "{} on {}: probe error: {e:#}", spec.what, spec.target);
                last_err = Some(format!("{e:#}"));
                if !announced {
                    announced = true;
                    ui.emit(Event::WaitStarted {
                        phase: spec.phase,
                        target: spec.target.clone(),
                        what: spec.what.clone(),
                        deadline_s,
                    });
                }
            }
        }
        let elapsed = start.elapsed();
        if elapsed >= spec.deadline {
            let last = match (&last_err, &last_msg) {
                (Some(e), _) => format!(" (last error: {e})"),
                (None, Some(m)) => format!(" (last seen: {m})"),
                (None, None) => String::new(),
            };
            return Err(WaitTimeout {
                what: spec.what.clone(),
                target: spec.target.clone(),
                elapsed: fmt_secs(elapsed.as_secs_f64()),
                last,
                hint: spec.hint.clone(),
            }
            .into());
        }
        let sleep = interval.min(spec.deadline - elapsed);
        tokio::time::sleep(sleep).await;
        interval = spec.backoff.next(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::output::{OutputFormat, Ui};

    fn spec(deadline_ms: u64) -> WaitSpec {
        WaitSpec {
            phase: PhaseId::Machines,
            target: "kvm4".into(),
            what: "MAAS status Deployed".into(),
            deadline: Duration::from_millis(deadline_ms),
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
            hint: "check the machine's console in MAAS".into(),
        }
    }

    #[tokio::test]
    async fn ready_after_some_probes() {
        let (ui, cap) = Ui::capture(OutputFormat::Text);
        let mut n = 0;
        let v = wait_for(&ui, &spec(2000), || {
            n += 1;
            let n = n;
            async move { Ok(if n < 4 { Probe::Pending(Some(format!("step {n}"))) } else { Probe::Ready(n) }) }
        })
        .await
        .unwrap();
        assert_eq!(v, 4);
        let out = cap.all();
        assert!(out.contains("waiting for MAAS status Deployed"), "{out}");
        assert!(out.contains("step 3"), "{out}");
    }

    #[tokio::test]
    async fn deadline_names_what_where_and_hint() {
        let (ui, _) = Ui::capture(OutputFormat::Text);
        let e = wait_for::<(), _, _>(&ui, &spec(60), || async { Ok(Probe::Pending(Some("Installing OS".into()))) })
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("waiting for MAAS status Deployed on kvm4"), "{e}");
        assert!(e.contains("last seen: Installing OS"), "{e}");
        assert!(e.contains("hint: check the machine's console"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_probe_still_meets_the_deadline() {
        let (ui, _) = Ui::capture(OutputFormat::Text);
        let t = Instant::now();
        let r = wait_for::<(), _, _>(&ui, &spec(80), || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Probe::Ready(()))
        })
        .await;
        assert!(r.is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
