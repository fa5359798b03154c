//! The crash harness shared by the crash tests: it names each change the simulators carry
//! out (MAAS and API server writes, mutating SSH commands) and SIGKILLs a `homelab` process
//! right after a chosen one, before its answer leaves.

use super::subproc::World;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A call that changes something: a MAAS or API server write, or a mutating SSH command.
pub fn is_change(what: &str) -> bool {
    if let Some(rest) = what.strip_prefix("SSH ") {
        return rest.split(' ').nth(1) == Some("rw");
    }
    ["POST ", "PUT ", "PATCH ", "DELETE "].iter().any(|m| what.starts_with(m))
}

/// The system and kind of a change, for the report: "MAAS op=deploy", "API PATCH", "SSH microk8s join".
pub fn kind_of(what: &str) -> String {
    if let Some(rest) = what.strip_prefix("SSH ") {
        let cmd: Vec<&str> = rest.split(' ').skip(2).filter(|w| *w != "sudo").take(2).collect();
        return format!("SSH {}", cmd.join(" "));
    }
    if what.contains("/MAAS/") {
        let method = what.split(' ').next().unwrap_or("");
        if let Some(op) = what.split("op=").nth(1) {
            return format!("MAAS {method} op={}", op.split('&').next().unwrap_or(op));
        }
        let path = what.split("/api/2.0/").nth(1).unwrap_or("").split('?').next().unwrap_or("");
        let shape: Vec<&str> =
            path.split('/').map(|seg| if seg.chars().any(|c| c.is_ascii_digit()) { "…" } else { seg }).collect();
        return format!("MAAS {method} {}", shape.join("/"));
    }
    format!("API {}", what.split(' ').next().unwrap_or(""))
}

pub fn taps(w: &World) -> [&homelab::sim::tap::Tap; 3] {
    [&w.lab.lab.maas.tap, &w.lab.api.tap, &w.lab.hosts.tap]
}

/// Names one change so that it can be found again in another run: the host and command
/// (without its arguments, which hold fresh tokens), or the method and path (with MAAS's op).
pub fn key_of(what: &str) -> String {
    if let Some(rest) = what.strip_prefix("SSH ") {
        let host = rest.split(' ').next().unwrap_or("");
        return format!("{} on {host}", kind_of(what));
    }
    let mut parts = what.splitn(2, ' ');
    let method = parts.next().unwrap_or("");
    let uri = parts.next().unwrap_or("");
    // Numeric ids (volume groups, partitions) are handed out in request order, which varies.
    let path: Vec<&str> = uri
        .split('?')
        .next()
        .unwrap_or("")
        .split('/')
        .map(|seg| if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) { "…" } else { seg })
        .collect();
    let path = path.join("/");
    match uri.split("op=").nth(1) {
        Some(op) => format!("{method} {path}?op={}", op.split('&').next().unwrap_or(op)),
        None => format!("{method} {path}"),
    }
}

/// Runs `homelab ARGS` and SIGKILLs it from inside the simulators right after they carried out the
/// `nth` change named `target` (see [`key_of`]), before the answer leaves; returns that
/// change, or None when this run never made it.
pub async fn run_and_kill_at_change(
    w: &World,
    up: &std::path::Path,
    args: &[&str],
    target: &str,
    nth: usize,
) -> Option<String> {
    let target = target.to_owned();
    let seen = Arc::new(AtomicUsize::new(0));
    run_and_kill_when(w, up, args, move |what| key_of(what) == target && seen.fetch_add(1, Ordering::SeqCst) + 1 == nth)
        .await
}

/// Each change of a reference run as (key, its occurrence, kind), so that it is found again
/// in another run (machines progress concurrently, so the global order differs).
pub fn name_changes(changes: &[String]) -> Vec<(String, usize, String)> {
    let mut occurrences: std::collections::BTreeMap<String, usize> = Default::default();
    changes
        .iter()
        .map(|c| {
            let key = key_of(c);
            let nth = occurrences.entry(key.clone()).or_default();
            *nth += 1;
            (key, *nth, kind_of(c))
        })
        .collect()
}

/// The kill points a sweep tries: all of them with `HOMELAB_CRASH_ALL`, else the MAAS and
/// SSH changes (lock renewals aside) and every `api_every`th API write, thinned to about
/// `at_most`, keeping always those `keep` names.
pub fn sample_points(
    named: &[(String, usize, String)],
    api_every: usize,
    at_most: usize,
    keep: impl Fn(&(String, usize, String)) -> bool,
) -> Vec<&(String, usize, String)> {
    let all = std::env::var_os("HOMELAB_CRASH_ALL").is_some();
    let mut points: Vec<&(String, usize, String)> = named
        .iter()
        .enumerate()
        .filter(|(i, p)| all || (!p.2.starts_with("API") && !p.0.contains("op=set_owner_data")) || i % api_every == 0)
        .map(|(_, p)| p)
        .collect();
    if !all && points.len() > at_most {
        let every = points.len().div_ceil(at_most);
        points = points.into_iter().enumerate().filter(|(i, p)| i % every == 0 || keep(p)).map(|(_, p)| p).collect();
    }
    points
}

/// Records every change the simulators of `w` carry out, from now until the taps are cleared.
pub fn record_changes(w: &World) -> Arc<Mutex<Vec<String>>> {
    let changes: Arc<Mutex<Vec<String>>> = Arc::default();
    for tap in taps(w) {
        let c = changes.clone();
        tap.set(move |what| {
            if is_change(what) {
                c.lock().unwrap().push(what.to_owned());
            }
        });
    }
    changes
}

/// Runs `homelab ARGS` and SIGKILLs it right after the first change the simulators carry
/// out in this run for which `pred` holds; returns that change, or None when the run ended
/// without one.
pub async fn run_and_kill_when(
    w: &World,
    up: &std::path::Path,
    args: &[&str],
    pred: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Option<String> {
    run_and_kill_on_call(w, up, args, move |what| is_change(what) && pred(what)).await
}

/// Like [`run_and_kill_when`], but `pred` sees every call, reads included: to kill a run
/// while it waits (a GET of a resource in some state) rather than right after a change.
pub async fn run_and_kill_on_call(
    w: &World,
    up: &std::path::Path,
    args: &[&str],
    pred: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Option<String> {
    let pid = Arc::new(AtomicI32::new(0));
    let hit: Arc<Mutex<Option<String>>> = Arc::default();
    let hook = {
        let (pid, hit) = (pid.clone(), hit.clone());
        Arc::new(move |what: &str| {
            if hit.lock().unwrap().is_some() || !pred(what) {
                return;
            }
            *hit.lock().unwrap() = Some(what.to_owned());
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                if let Some(p) = rustix::process::Pid::from_raw(pid.load(Ordering::SeqCst)) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    for tap in taps(w) {
        let h = hook.clone();
        tap.set(move |what| h(what));
    }
    let mut c = w.homelab(args, up);
    let log = w.lab.lab.path(&format!("killed-run-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    c.stdout(file.try_clone().unwrap()).stderr(file);
    let status = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        pid.store(child.id() as i32, Ordering::SeqCst);
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            // A run that neither reaches its kill point nor ends is a hang: stop it and say so.
            if start.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .await
    .unwrap();
    for tap in taps(w) {
        tap.clear();
    }
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let Some(status) = status else { panic!("the run hung for 300 s; it printed:\n{out}") };
    let hit = hit.lock().unwrap().clone();
    assert!(hit.is_none() || status.code().is_none(), "the run was not killed at {hit:?}: {status}\n{out}");
    assert!(hit.is_some() || status.success(), "the run failed before its kill point:\n{out}");
    hit
}

/// Runs `homelab ARGS` to its end, or for at most `limit`: a rerun that hangs is a failure
/// that shows what it printed so far. Returns the exit code (-2: killed at the limit) and
/// everything it printed.
pub async fn run_to_end(w: &World, up: &std::path::Path, args: &[&str], limit: Duration) -> (i32, String) {
    let mut c = w.homelab(args, up);
    let log = w.lab.lab.path(&format!("run-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    c.stdout(file.try_clone().unwrap()).stderr(file);
    let code = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return -2;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let out = if code == -2 { format!("(still running after {}s, killed)\n{out}", limit.as_secs()) } else { out };
    (code, out)
}
