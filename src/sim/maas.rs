//! A simulated MAAS region API (2.0), in-process on 127.0.0.1, used by the tests and
//! `homelab demo`.
//!
//! It follows `docs/maas-api.md` to the letter where homelab depends on it: OAuth PLAINTEXT
//! with nonce and timestamp checks, anonymous-request quirks (400 "Unrecognised signature"),
//! trailing-slash rules (404 "Unknown API endpoint"), form bodies (JSON refused), status codes
//! and transitions (deploy auto-allocates a Ready machine, Failed deployment must be released
//! first, storage changes only while Ready), MAAS's own error texts, SI size arithmetic of the
//! `lvm` layout, asynchronous commissioning/deployment with `status_message` stages and
//! events, SSH keys that reach a machine only if registered before its deploy, and fault
//! injection (503 bursts with `Retry-After`, 409s, a failed deployment, slow and dropped
//! answers).
//!
//! Time is evaluated lazily: a machine's status is computed from when its operation started,
//! so there are no background tasks and a paused test sees a consistent state.

use crate::maas::types::Status;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MIB: u64 = 1 << 20;
const EXTENT: u64 = 4 * MIB;
const EFI: u64 = 512 * MIB;
const GPT_OVERHEAD: u64 = 5 * MIB;

#[derive(Debug, Clone)]
pub struct SimMaasConfig {
    pub commission_time: Duration,
    pub deploy_time: Duration,
    pub release_time: Duration,
    /// The valid API key (`consumer:token:secret`).
    pub api_key: String,
    pub username: String,
    /// Refuse JSON request bodies with a 400, so a client that sends JSON is caught.
    pub reject_json: bool,
    /// Ubuntu series with imported images.
    pub series: Vec<String>,
}

impl Default for SimMaasConfig {
    fn default() -> Self {
        SimMaasConfig {
            commission_time: Duration::from_millis(300),
            deploy_time: Duration::from_millis(600),
            release_time: Duration::from_millis(100),
            api_key: SIM_API_KEY.to_owned(),
            username: "admin".into(),
            reject_json: true,
            series: vec!["focal".into(), "jammy".into(), "noble".into()],
        }
    }
}

/// The key the simulator accepts by default (MAAS's shape: 18:18:32 characters).
pub const SIM_API_KEY: &str = "HLsimConsumerKey01:HLsimTokenKey00001:HLsimTokenSecret0000000000000001";

/// A machine to create in the simulator.
#[derive(Debug, Clone)]
pub struct SimMachineSpec {
    pub hostname: String,
    pub mac: String,
    pub status: Status,
    pub ip: String,
    pub cpu_count: u32,
    pub memory_mib: u64,
    pub disk_bytes: u64,
    /// Keys a machine that starts out Deployed received when it was deployed.
    pub deployed_keys: Vec<String>,
}

impl SimMachineSpec {
    pub fn new(hostname: &str, mac: &str, ip: &str) -> SimMachineSpec {
        SimMachineSpec {
            hostname: hostname.into(),
            mac: mac.to_ascii_lowercase(),
            status: Status::Ready,
            ip: ip.into(),
            cpu_count: 4,
            memory_mib: 16384,
            disk_bytes: 512_110_190_592,
            deployed_keys: Vec::new(),
        }
    }
    pub fn keys(mut self, keys: &[&str]) -> Self {
        self.deployed_keys = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }
    pub fn status(mut self, s: Status) -> Self {
        self.status = s;
        self
    }
}

#[derive(Debug, Clone)]
struct Lv {
    id: i64,
    name: String,
    size: u64,
    fstype: Option<String>,
    mount: Option<String>,
}

#[derive(Debug, Clone)]
struct Vg {
    id: i64,
    name: String,
    size: u64,
    lvs: Vec<Lv>,
}

impl Vg {
    fn free(&self) -> u64 {
        self.size - self.lvs.iter().map(|l| l.size).sum::<u64>()
    }
}

#[derive(Debug, Clone)]
enum Storage {
    /// MAAS's default after commissioning: one ext4 partition mounted at /.
    Flat,
    Lvm {
        vg: Vg,
    },
    Blank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Commission,
    Deploy { fail: bool },
    Release,
}

#[derive(Debug, Clone)]
struct Running {
    op: Op,
    started: Instant,
    duration: Duration,
    /// Stage messages already recorded as events.
    stages_logged: usize,
}

#[derive(Debug, Clone)]
struct SimEvent {
    id: i64,
    level: &'static str,
    kind: String,
    description: String,
    created: String,
}

#[derive(Debug, Clone)]
struct SimMachine {
    id: u64,
    system_id: String,
    hostname: String,
    mac: String,
    ip: String,
    status: Status,
    status_message: Option<String>,
    power: &'static str,
    owner: Option<String>,
    cpu_count: u32,
    memory_mib: u64,
    disk_bytes: u64,
    storage: Storage,
    distro_series: Option<String>,
    running: Option<Running>,
    events: Vec<SimEvent>,
    user_data: Option<String>,
    /// Keys the deployed OS received (the owner's keys at deploy time).
    deployed_keys: Vec<String>,
    ip_assigned: bool,
}

const DEPLOY_STAGES: [&str; 8] = [
    "Deploying",
    "Performing PXE boot",
    "Loading ephemeral",
    "Configuring storage",
    "Installing OS",
    "Configuring OS",
    "Rebooting",
    "Image Deployed",
];
const COMMISSION_STAGES: [&str; 4] =
    ["Commissioning", "Performing PXE boot", "Loading ephemeral", "Gathering information"];

/// Fault injection, set by tests.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next n requests get 503 with `Retry-After: 1`.
    pub unavailable: u32,
    /// The next POST with this `op` gets a 409 with this text.
    pub conflict: Option<(String, String)>,
    /// Hostnames whose next deployment fails.
    pub fail_deploy: HashSet<String>,
    /// Hostnames whose next commissioning fails.
    pub fail_commission: HashSet<String>,
    /// Delay before every answer.
    pub slow: Option<Duration>,
    /// The next n answers are cut off after the headers (the connection drops).
    pub drop: u32,
    /// Drop the answer of the next POST with this op *after* acting on it.
    pub drop_after_acting: Option<String>,
}

#[derive(Default)]
struct State {
    machines: Vec<SimMachine>,
    ssh_keys: Vec<(i64, String)>,
    next_key_id: i64,
    next_event_id: i64,
    next_obj_id: i64,
    nonces: HashSet<String>,
    faults: Faults,
    /// Every request: "METHOD path?op" (for assertions and benchmarks).
    log: Vec<String>,
}

pub struct SimMaas {
    pub url: String,
    /// Called after each request was acted on, before its answer leaves (crash tests).
    pub tap: super::tap::Tap,
    cfg: SimMaasConfig,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimMaas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimMaas {
    /// Starts the server on 127.0.0.1 (random port).
    pub async fn start(cfg: SimMaasConfig) -> anyhow::Result<SimMaas> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state =
            Arc::new(Mutex::new(State { next_key_id: 1, next_event_id: 1000, next_obj_id: 10, ..Default::default() }));
        let app_state = (state.clone(), Arc::new(cfg.clone()));
        let tap = super::tap::Tap::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(app_state)
            .layer(axum::middleware::from_fn_with_state(tap.clone(), super::tap::layer));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SimMaas { url: format!("http://{addr}/MAAS"), tap, cfg, state, task })
    }

    pub fn api_root(&self) -> String {
        format!("{}/api/2.0/", self.url)
    }
    pub fn config(&self) -> &SimMaasConfig {
        &self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_machine(&self, spec: SimMachineSpec) -> String {
        let mut st = self.lock();
        let id = st.machines.len() as u64 + 1;
        let system_id = system_id_for(id);
        let storage = match spec.status {
            Status::New => Storage::Blank,
            _ => Storage::Flat,
        };
        st.machines.push(SimMachine {
            id,
            system_id: system_id.clone(),
            hostname: spec.hostname,
            mac: spec.mac,
            ip: spec.ip,
            status: spec.status,
            status_message: None,
            power: "off",
            owner: None,
            cpu_count: spec.cpu_count,
            memory_mib: spec.memory_mib,
            disk_bytes: spec.disk_bytes,
            storage,
            distro_series: None,
            running: None,
            events: Vec::new(),
            user_data: None,
            deployed_keys: spec.deployed_keys.clone(),
            ip_assigned: matches!(spec.status, Status::Deployed | Status::Deploying),
        });
        // Transitional states are in the middle of their operation.
        let cfg = self.cfg.clone();
        if let Some(m) = st.machines.last_mut() {
            let op = match spec.status {
                Status::Commissioning | Status::Testing => Some((Op::Commission, cfg.commission_time)),
                Status::Deploying => Some((Op::Deploy { fail: false }, cfg.deploy_time)),
                Status::Releasing | Status::DiskErasing => Some((Op::Release, cfg.release_time)),
                _ => None,
            };
            if let Some((op, duration)) = op {
                m.running = Some(Running { op, started: Instant::now(), duration, stages_logged: 0 });
                if matches!(op, Op::Deploy { .. }) {
                    m.owner = Some(cfg.username.clone());
                    m.distro_series = Some("jammy".into());
                    m.storage = Storage::Lvm { vg: default_vg(m.disk_bytes) };
                }
            }
            if matches!(spec.status, Status::Deployed | Status::Allocated) {
                m.owner = Some(cfg.username.clone());
                m.storage = Storage::Lvm { vg: default_vg(m.disk_bytes) };
                if spec.status == Status::Deployed {
                    m.distro_series = Some("jammy".into());
                }
            }
        }
        system_id
    }

    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.lock().faults);
    }

    /// A cheap handle other simulators use to see which machines are deployed.
    pub fn view(&self) -> SimMaasView {
        SimMaasView { state: self.state.clone(), cfg: Arc::new(self.cfg.clone()) }
    }

    /// Status of a machine by hostname (advancing its clock first).
    pub fn status(&self, hostname: &str) -> Option<Status> {
        let mut st = self.lock();
        advance_all(&mut st, &self.cfg);
        st.machines.iter().find(|m| m.hostname == hostname).map(|m| m.status)
    }

    /// The SSH public keys the deployed OS of `hostname` received.
    pub fn deployed_keys(&self, hostname: &str) -> Vec<String> {
        let mut st = self.lock();
        advance_all(&mut st, &self.cfg);
        st.machines.iter().find(|m| m.hostname == hostname).map(|m| m.deployed_keys.clone()).unwrap_or_default()
    }

    /// IP address of a machine (assigned at deploy start).
    pub fn ip(&self, hostname: &str) -> Option<String> {
        self.lock().machines.iter().find(|m| m.hostname == hostname).map(|m| m.ip.clone())
    }

    pub fn user_data(&self, hostname: &str) -> Option<String> {
        self.lock().machines.iter().find(|m| m.hostname == hostname).and_then(|m| m.user_data.clone())
    }

    /// The block devices of the deployed layout: `(name, size, formatted)`.
    pub fn logical_volumes(&self, hostname: &str) -> Vec<(String, u64, bool)> {
        let st = self.lock();
        let Some(m) = st.machines.iter().find(|m| m.hostname == hostname) else { return vec![] };
        match &m.storage {
            Storage::Lvm { vg } => vg.lvs.iter().map(|l| (l.name.clone(), l.size, l.fstype.is_some())).collect(),
            _ => vec![],
        }
    }

    /// Every request so far, as `METHOD path?op=x`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }
    /// How many requests contained `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lock().log.iter().filter(|l| l.contains(needle)).count()
    }
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }
}

/// The seed layout (100 GB root, the rest for Ceph) on a disk, as homelab would have made it.
fn default_vg(disk: u64) -> Vg {
    let part = (disk.saturating_sub(EFI + GPT_OVERHEAD)) / EXTENT * EXTENT;
    let size = (part / EXTENT).saturating_sub(1) * EXTENT;
    let root = 100_000_000_000 / EXTENT * EXTENT;
    Vg {
        id: 1,
        name: "vgroot".into(),
        size,
        lvs: vec![
            Lv { id: 2, name: "lvroot".into(), size: root, fstype: Some("ext4".into()), mount: Some("/".into()) },
            Lv { id: 3, name: "ceph".into(), size: (size - root) / EXTENT * EXTENT, fstype: None, mount: None },
        ],
    }
}

/// What the simulated hosts see of MAAS: which machines are deployed, with which keys.
#[derive(Clone)]
pub struct SimMaasView {
    state: Arc<Mutex<State>>,
    cfg: Arc<SimMaasConfig>,
}

impl SimMaasView {
    /// `(hostname, keys)` of the machine deployed at `ip`, if any.
    pub fn deployed(&self, ip: &str) -> Option<(String, Vec<String>)> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        advance_all(&mut st, &self.cfg);
        st.machines
            .iter()
            .find(|m| m.ip == ip && m.status == Status::Deployed)
            .map(|m| (m.hostname.clone(), m.deployed_keys.clone()))
    }
}

fn system_id_for(n: u64) -> String {
    // MAAS ids are 6 lower-case alphanumerics.
    const ALPHA: &[u8] = b"abcdefghjkmnpqrstuvwxy3456789";
    let mut x = n.wrapping_mul(2_654_435_761) ^ 0x5bd1e995;
    (0..6)
        .map(|_| {
            let c = ALPHA[(x % ALPHA.len() as u64) as usize] as char;
            x /= ALPHA.len() as u64;
            c
        })
        .collect()
}

fn now_maas() -> String {
    // MAAS formats event times like "Fri, 07 Dec. 2018 20:11:08".
    jiff::Zoned::now().strftime("%a, %d %b. %Y %H:%M:%S").to_string()
}

fn push_event(st_next: &mut i64, m: &mut SimMachine, level: &'static str, kind: &str, description: &str) {
    *st_next += 1;
    m.events.push(SimEvent {
        id: *st_next,
        level,
        kind: kind.into(),
        description: description.into(),
        created: now_maas(),
    });
}

/// Brings every machine's running operation up to now.
fn advance_all(st: &mut State, cfg: &SimMaasConfig) {
    let mut next = st.next_event_id;
    for m in st.machines.iter_mut() {
        advance(m, cfg, &mut next);
    }
    st.next_event_id = next;
}

fn advance(m: &mut SimMachine, cfg: &SimMaasConfig, next_event: &mut i64) {
    let Some(run) = m.running.clone() else { return };
    let elapsed = run.started.elapsed();
    let frac = if run.duration.is_zero() { 1.0 } else { elapsed.as_secs_f64() / run.duration.as_secs_f64() };
    match run.op {
        Op::Deploy { fail } => {
            let stages = if fail { &DEPLOY_STAGES[..5] } else { &DEPLOY_STAGES[..] };
            let reached = ((frac * stages.len() as f64).floor() as usize + 1).min(stages.len());
            for (i, stage) in stages.iter().enumerate().take(reached).skip(run.stages_logged) {
                let desc = if *stage == "Image Deployed" {
                    format!("deployed ubuntu/{}/amd64/generic", m.distro_series.clone().unwrap_or_default())
                } else {
                    String::new()
                };
                push_event(next_event, m, "INFO", stage, &desc);
                m.status_message =
                    Some(if desc.is_empty() { (*stage).to_owned() } else { format!("{stage} - {desc}") });
                if let Some(r) = m.running.as_mut() {
                    r.stages_logged = i + 1;
                }
            }
            if fail && frac >= 0.6 {
                push_event(
                    next_event,
                    m,
                    "ERROR",
                    "Node installation failure",
                    "Installation failed; curtin: storage configuration error",
                );
                push_event(
                    next_event,
                    m,
                    "INFO",
                    "Marking node failed",
                    "Installation failed (refer to the installation log for more information).",
                );
                m.status = Status::FailedDeployment;
                m.status_message = Some(
                    "Marking node failed - Installation failed (refer to the installation log for more information)."
                        .into(),
                );
                m.running = None;
            } else if !fail && frac >= 1.0 {
                m.status = Status::Deployed;
                push_event(next_event, m, "INFO", "Deployed", "");
                m.status_message = Some("Deployed".into());
                m.running = None;
            }
        }
        Op::Commission => {
            let fail = m.status == Status::Commissioning && m.status_message.as_deref() == Some("__fail__");
            let reached = ((frac * COMMISSION_STAGES.len() as f64).floor() as usize + 1).min(COMMISSION_STAGES.len());
            for (i, stage) in COMMISSION_STAGES.iter().enumerate().take(reached).skip(run.stages_logged) {
                push_event(next_event, m, "INFO", stage, "");
                m.status_message = Some((*stage).to_owned());
                if let Some(r) = m.running.as_mut() {
                    r.stages_logged = i + 1;
                }
            }
            if frac >= 1.0 {
                if fail {
                    m.status = Status::FailedCommissioning;
                    push_event(
                        next_event,
                        m,
                        "ERROR",
                        "Failed commissioning",
                        "Script 50-maas-01-commissioning failed",
                    );
                    m.status_message = Some("Failed commissioning - Script 50-maas-01-commissioning failed".into());
                } else {
                    m.status = Status::Ready;
                    // Commissioning re-applies the default layout (flat), wiping a custom one.
                    m.storage = Storage::Flat;
                    push_event(next_event, m, "INFO", "Ready", "");
                    m.status_message = Some("Ready".into());
                }
                m.power = "off";
                m.running = None;
            }
        }
        Op::Release => {
            if frac >= 1.0 {
                m.status = Status::Ready;
                m.owner = None;
                m.distro_series = None;
                m.power = "off";
                m.ip_assigned = false;
                m.deployed_keys.clear();
                push_event(next_event, m, "INFO", "Released", "");
                m.status_message = Some("Released".into());
                m.running = None;
                let _ = cfg;
            }
        }
    }
}

type AppState = (Arc<Mutex<State>>, Arc<SimMaasConfig>);

fn text(status: StatusCode, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-MAAS-API-Hash", "simulated")
        .body(Body::from(body.to_owned()))
        .unwrap_or_default()
}

fn json_resp(status: StatusCode, v: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("X-MAAS-API-Hash", "simulated")
        .body(Body::from(v.to_string()))
        .unwrap_or_default()
}

fn field_error(field: &str, msg: &str) -> Response {
    json_resp(StatusCode::BAD_REQUEST, &json!({ field: [msg] }))
}

fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("simulated connection drop"))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

enum Auth {
    Ok,
    Anonymous,
    Bad(Response),
}

fn check_auth(headers: &HeaderMap, st: &mut State, cfg: &SimMaasConfig) -> Auth {
    let Some(h) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Auth::Anonymous };
    let Some(rest) = h.strip_prefix("OAuth ") else { return Auth::Anonymous };
    let mut p: HashMap<String, String> = HashMap::new();
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            let v = v.trim().trim_matches('"');
            p.insert(k.trim().to_owned(), v.replace("%26", "&"));
        }
    }
    let needed = [
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
    ];
    if needed.iter().any(|k| !p.contains_key(*k)) {
        // Incomplete OAuth parameters make the request anonymous, not rejected.
        return Auth::Anonymous;
    }
    let unauthorized = |msg: String| {
        Auth::Bad(
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .header(header::WWW_AUTHENTICATE, "OAuth realm=\"OAuth\"")
                .body(Body::from(msg))
                .unwrap_or_default(),
        )
    };
    if p.get("oauth_version").is_some_and(|v| v != "1.0") {
        return unauthorized("Authorization Error: 'OAuth version must be 1.0'".into());
    }
    let parts: Vec<&str> = cfg.api_key.split(':').collect();
    let (ck, tk, ts) = (
        parts.first().copied().unwrap_or(""),
        parts.get(1).copied().unwrap_or(""),
        parts.get(2).copied().unwrap_or(""),
    );
    if p["oauth_consumer_key"] != ck {
        return unauthorized("Authorization Error: Invalid API key.".into());
    }
    if p["oauth_token"] != tk {
        return unauthorized(format!("Authorization Error: 'Invalid access token: {}'", p["oauth_token"]));
    }
    let Ok(stamp) = p["oauth_timestamp"].parse::<u64>() else {
        return Auth::Bad(text(
            StatusCode::BAD_REQUEST,
            "'Bad Request: the following problems were found among the auth params: oauth_timestamp has an unexpected type'",
        ));
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now.saturating_sub(stamp) > 300 {
        return unauthorized(format!(
            "Authorization Error: 'Expired timestamp: given {stamp} and now {now} has a greater difference than threshold 300'"
        ));
    }
    if !st.nonces.insert(p["oauth_nonce"].clone()) {
        return unauthorized(format!("Authorization Error: 'Nonce already used: {}'", p["oauth_nonce"]));
    }
    if p["oauth_signature_method"] != "PLAINTEXT" {
        return unauthorized("Authorization Error: 'Signature method not supported'".into());
    }
    if p["oauth_signature"] != format!("&{ts}") {
        return unauthorized(format!(
            "Authorization Error: 'Invalid signature. Expected signature base string: &{ts}'"
        ));
    }
    Auth::Ok
}

fn parse_query(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(form_urlencoded).unwrap_or_default()
}

fn form_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode_pct(k), decode_pct(v))
        })
        .collect()
}

fn decode_pct(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
}

async fn handle(
    axum::extract::State((state, cfg)): axum::extract::State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (delay, drop_now) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let drop_now = st.faults.drop > 0;
        if drop_now {
            st.faults.drop -= 1;
        }
        (st.faults.slow, drop_now)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if drop_now {
        return dropped();
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let query = parse_query(&uri);
    let op = get(&query, "op").map(str::to_owned);
    let filter = query.first().filter(|_| op.is_none()).map(|(k, _)| format!("?{k}=…")).unwrap_or_default();
    st.log.push(format!(
        "{method} {}{}{filter}",
        uri.path(),
        op.as_deref().map(|o| format!("?op={o}")).unwrap_or_default()
    ));
    if st.faults.unavailable > 0 {
        st.faults.unavailable -= 1;
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unable to connect to any rack controller; no connections available.",
        );
        r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return r;
    }
    let path = uri.path().to_owned();
    let Some(rel) = path.strip_prefix("/MAAS/api/2.0/") else {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: {path}."));
    };
    let rel = rel.to_owned();
    // URL routing happens before authentication: an unknown endpoint is a 404 for everyone.
    let segs: Vec<&str> = rel.split('/').collect();
    let single_partition = segs.len() == 6 && segs[0] == "nodes" && segs[4] == "partition";
    if !(rel.ends_with('/') || single_partition) {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: {path}."));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if (method == Method::POST || method == Method::PUT) && is_json && cfg.reject_json {
        return text(
            StatusCode::BAD_REQUEST,
            "homelab simulator: MAAS handlers read form data (request.POST); this JSON body would be ignored by a real MAAS. Send application/x-www-form-urlencoded or multipart/form-data.",
        );
    }
    let form = if method == Method::POST || method == Method::PUT {
        form_urlencoded(&String::from_utf8_lossy(&body))
    } else {
        Vec::new()
    };
    // Anonymous endpoints first.
    if rel == "version/" && method == Method::GET {
        return json_resp(
            StatusCode::OK,
            &json!({"capabilities": ["networks-management", "static-ipaddresses", "ipv6-deployment-ubuntu", "devices-management", "storage-deployment-ubuntu", "network-deployment-ubuntu", "bridging-interface-ubuntu", "bridging-automatic-ubuntu", "authenticate-api"], "version": "3.6.5-16459-g.simulated", "subversion": ""}),
        );
    }
    let auth = check_auth(&headers, &mut st, &cfg);
    match auth {
        Auth::Bad(r) => return r,
        Auth::Anonymous => {
            return match (method.as_str(), rel.as_str()) {
                ("GET", "machines/") | ("POST", "machines/") => text(
                    StatusCode::BAD_REQUEST,
                    &format!("Unrecognised signature: method={method} op={}", op.as_deref().unwrap_or("None")),
                ),
                _ => text(StatusCode::UNAUTHORIZED, "Forbidden"),
            };
        }
        Auth::Ok => {}
    }
    advance_all(&mut st, &cfg);
    if method == Method::POST
        && let Some((fop, msg)) = st.faults.conflict.clone()
        && op.as_deref() == Some(fop.as_str())
    {
        st.faults.conflict = None;
        return text(StatusCode::CONFLICT, &msg);
    }
    let drop_after = method == Method::POST
        && st.faults.drop_after_acting.is_some()
        && st.faults.drop_after_acting.as_deref() == op.as_deref();
    let resp = route(&mut st, &cfg, &method, &rel, &query, &form, op.as_deref());
    if drop_after && resp.status().is_success() {
        st.faults.drop_after_acting = None;
        return dropped();
    }
    resp
}

fn unrecognised(method: &Method, op: Option<&str>) -> Response {
    text(StatusCode::BAD_REQUEST, &format!("Unrecognised signature: method={method} op={}", op.unwrap_or("None")))
}

fn route(
    st: &mut State,
    cfg: &SimMaasConfig,
    method: &Method,
    rel: &str,
    query: &[(String, String)],
    form: &[(String, String)],
    op: Option<&str>,
) -> Response {
    let segs: Vec<&str> = rel.split('/').collect();
    // Every endpoint except a single partition ends with a slash.
    let single_partition = segs.len() == 6 && segs[0] == "nodes" && segs[4] == "partition";
    if !(rel.ends_with('/') || single_partition) {
        return text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: /MAAS/api/2.0/{rel}."));
    }
    let segs: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["users"]) if op == Some("whoami") => json_resp(
            StatusCode::OK,
            &json!({"username": cfg.username, "email": format!("{}@example.com", cfg.username), "is_local": true, "is_superuser": true, "resource_uri": "/MAAS/api/2.0/users/"}),
        ),
        ("GET", ["users"]) => unrecognised(method, op),
        ("GET", ["machines"]) => list_machines(st, query),
        ("GET", ["machines", id]) => with_machine(st, id, |m, _| json_resp(StatusCode::OK, &machine_json(m))),
        ("POST", ["machines", id]) => machine_op(st, cfg, id, op, form),
        ("PUT", ["machines", id]) => with_machine(st, id, |m, _| {
            if let Some(h) = get(form, "hostname") {
                let ok = !h.is_empty()
                    && h.len() <= 63
                    && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !h.starts_with('-');
                if !ok {
                    return field_error(
                        "hostname",
                        &format!(
                            "Node name must start with a letter or number and contain only letters, numbers and hyphens: '{h}'"
                        ),
                    );
                }
                m.hostname = h.to_owned();
            }
            json_resp(StatusCode::OK, &machine_json(m))
        }),
        ("GET", ["nodes", id, "blockdevices"]) => {
            with_machine(st, id, |m, _| json_resp(StatusCode::OK, &Value::Array(block_devices(m))))
        }
        ("GET", ["nodes", id, "volume-groups"]) => {
            with_machine(st, id, |m, _| json_resp(StatusCode::OK, &Value::Array(volume_groups(m))))
        }
        ("GET", ["nodes", id, "volume-group", vg]) => with_machine(st, id, |m, _| {
            match volume_groups(m).into_iter().find(|v| v["id"].as_i64().map(|i| i.to_string()).as_deref() == Some(*vg))
            {
                Some(v) => json_resp(StatusCode::OK, &v),
                None => text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query."),
            }
        }),
        ("POST", ["nodes", id, "volume-group", vg]) if op == Some("create_logical_volume") => {
            create_lv(st, id, vg, form)
        }
        ("POST", ["nodes", _, "volume-group", _]) => unrecognised(method, op),
        ("GET", ["account", "prefs", "sshkeys"]) => {
            json_resp(StatusCode::OK, &Value::Array(st.ssh_keys.iter().map(|(id, k)| key_json(*id, k)).collect()))
        }
        ("POST", ["account", "prefs", "sshkeys"]) if op.is_none() => add_key(st, form),
        ("GET", ["events"]) if op == Some("query") => events(st, query),
        ("GET", ["events"]) => unrecognised(method, op),
        ("DELETE", ["machines"]) => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, POST")
            .body(Body::empty())
            .unwrap_or_default(),
        _ => text(StatusCode::NOT_FOUND, &format!("Unknown API endpoint: /MAAS/api/2.0/{rel}.")),
    }
}

fn with_machine(st: &mut State, id: &str, f: impl FnOnce(&mut SimMachine, &mut i64) -> Response) -> Response {
    let mut next = st.next_event_id;
    let r = match st.machines.iter_mut().find(|m| m.system_id == id) {
        Some(m) => f(m, &mut next),
        None => text(StatusCode::NOT_FOUND, "No Machine matches the given query."),
    };
    st.next_event_id = next;
    r
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn list_machines(st: &State, query: &[(String, String)]) -> Response {
    const ALLOWED: [&str; 6] = ["id", "hostname", "mac_address", "status", "op", "domain"];
    for (k, _) in query {
        if !ALLOWED.contains(&k.as_str()) {
            return field_error(k, "No such constraint.");
        }
    }
    let macs: Vec<String> = query.iter().filter(|(k, _)| k == "mac_address").map(|(_, v)| v.clone()).collect();
    for m in &macs {
        if !is_mac(m) {
            return field_error("mac_address", &format!("'{m}' is not a valid MAC address."));
        }
    }
    let ids: Vec<&str> = query.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.as_str()).collect();
    let hosts: Vec<&str> = query.iter().filter(|(k, _)| k == "hostname").map(|(_, v)| v.as_str()).collect();
    let statuses: Vec<&str> = query.iter().filter(|(k, _)| k == "status").map(|(_, v)| v.as_str()).collect();
    for s in &statuses {
        if !(0..=22).any(|c| Status::from_code(c).filter_label() == *s) {
            return field_error("status", &format!("Select a valid choice. {s} is not one of the available choices."));
        }
    }
    let list: Vec<Value> = st
        .machines
        .iter()
        .filter(|m| macs.is_empty() || macs.contains(&m.mac))
        .filter(|m| ids.is_empty() || ids.contains(&m.system_id.as_str()))
        .filter(|m| hosts.is_empty() || hosts.contains(&m.hostname.as_str()))
        .filter(|m| statuses.is_empty() || statuses.contains(&m.status.filter_label().as_str()))
        .map(machine_json)
        .collect();
    json_resp(StatusCode::OK, &Value::Array(list))
}

fn machine_op(st: &mut State, cfg: &SimMaasConfig, id: &str, op: Option<&str>, form: &[(String, String)]) -> Response {
    let user = cfg.username.clone();
    let keys: Vec<String> = st.ssh_keys.iter().map(|(_, k)| k.clone()).collect();
    let fail_deploy = st.faults.fail_deploy.clone();
    let fail_commission = st.faults.fail_commission.clone();
    let mut next_obj = st.next_obj_id;
    let mut consumed: Option<(&'static str, String)> = None;
    let r = with_machine(st, id, |m, next_event| match op {
        Some("commission") => {
            if !matches!(m.status, Status::New | Status::Ready | Status::Broken | Status::FailedCommissioning) {
                return field_error("__all__", "Commission is not available because of the current state of the node.");
            }
            m.status = Status::Commissioning;
            m.power = "on";
            m.running = Some(Running {
                op: Op::Commission,
                started: Instant::now(),
                duration: cfg.commission_time,
                stages_logged: 0,
            });
            if fail_commission.contains(&m.hostname) {
                m.status_message = Some("__fail__".into());
                consumed = Some(("commission", m.hostname.clone()));
            } else {
                m.status_message = Some("Commissioning".into());
            }
            push_event(next_event, m, "INFO", "Commissioning", "");
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("set_storage_layout") => {
            if m.status != Status::Ready {
                return text(StatusCode::CONFLICT, "Cannot change the storage layout on a machine that is not Ready.");
            }
            let layout = get(form, "storage_layout").unwrap_or("");
            let valid = ["bcache", "blank", "custom", "flat", "lvm", "vmfs6", "vmfs7"];
            if !valid.contains(&layout) {
                return field_error(
                    "storage_layout",
                    &format!(
                        "'{layout}' is not a valid storage_layout.  It should be one of: 'bcache', 'blank', 'custom', 'flat', 'lvm', 'vmfs6', 'vmfs7'."
                    ),
                );
            }
            match layout {
                "lvm" => {
                    let part = (m.disk_bytes.saturating_sub(EFI + GPT_OVERHEAD)) / EXTENT * EXTENT;
                    let max_lv = m.disk_bytes.saturating_sub(EFI);
                    let vg_size = (part / EXTENT).saturating_sub(1) * EXTENT;
                    let lv_size = match get(form, "lv_size") {
                        None => vg_size,
                        Some(s) => match parse_si(s) {
                            Some(b) if b > max_lv => {
                                return field_error(
                                    "lv_size",
                                    &format!("Size is too large. Maximum size is {max_lv}."),
                                );
                            }
                            Some(b) if b < 3 * (1 << 30) => {
                                return field_error("lv_size", "Size is too small. Minimum size is 3221225472.");
                            }
                            Some(b) => (b / EXTENT * EXTENT).min(vg_size),
                            None => return field_error("lv_size", "Enter a whole number."),
                        },
                    };
                    let vg_name = get(form, "vg_name").unwrap_or("vgroot").to_owned();
                    let lv_name = get(form, "lv_name").unwrap_or("lvroot").to_owned();
                    next_obj += 1;
                    let vg_id = next_obj;
                    next_obj += 1;
                    m.storage = Storage::Lvm {
                        vg: Vg {
                            id: vg_id,
                            name: vg_name,
                            size: vg_size,
                            lvs: vec![Lv {
                                id: next_obj,
                                name: lv_name,
                                size: lv_size,
                                fstype: Some("ext4".into()),
                                mount: Some("/".into()),
                            }],
                        },
                    };
                }
                "flat" => m.storage = Storage::Flat,
                "blank" => m.storage = Storage::Blank,
                other => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!("Failed to configure storage layout '{other}': not simulated"),
                    );
                }
            }
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("deploy") => {
            if m.status == Status::Ready {
                if m.owner.as_deref().is_some_and(|o| o != user) {
                    return text(StatusCode::CONFLICT, "Can't allocate a machine belonging to another user.");
                }
            } else if m.status != Status::Allocated {
                return text(
                    StatusCode::CONFLICT,
                    &format!("Can't deploy a machine that is in the '{}' state", m.status.name()),
                );
            }
            let series = get(form, "distro_series").unwrap_or("jammy");
            let series = series.strip_prefix("ubuntu/").unwrap_or(series);
            let series = match series {
                "22.04" => "jammy",
                "24.04" => "noble",
                "20.04" => "focal",
                s => s,
            };
            if !cfg.series.iter().any(|s| s == series) {
                let choices: Vec<String> = std::iter::once("''".to_owned())
                    .chain(cfg.series.iter().map(|s| format!("'ubuntu/{s}'")))
                    .collect();
                return field_error(
                    "distro_series",
                    &format!("'{series}' is not a valid distro_series.  It should be one of: {}.", choices.join(", ")),
                );
            }
            let root_mounted = match &m.storage {
                Storage::Flat => true,
                Storage::Lvm { vg } => vg.lvs.iter().any(|l| l.mount.as_deref() == Some("/")),
                Storage::Blank => false,
            };
            if !root_mounted {
                return field_error("storage", "Mount the root '/' filesystem to be able to deploy this node.");
            }
            m.owner = Some(user.clone());
            m.status = Status::Deploying;
            m.power = "on";
            m.distro_series = Some(series.to_owned());
            m.user_data = get(form, "user_data").map(str::to_owned);
            m.ip_assigned = true;
            m.deployed_keys = keys.clone();
            let fail = fail_deploy.contains(&m.hostname);
            if fail {
                consumed = Some(("deploy", m.hostname.clone()));
            }
            m.running = Some(Running {
                op: Op::Deploy { fail },
                started: Instant::now(),
                duration: cfg.deploy_time,
                stages_logged: 0,
            });
            advance(m, cfg, next_event);
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("release") => {
            match m.status {
                Status::Ready | Status::Releasing => return json_resp(StatusCode::OK, &machine_json(m)),
                Status::Allocated
                | Status::Reserved
                | Status::Broken
                | Status::Deploying
                | Status::Deployed
                | Status::FailedDeployment
                | Status::FailedDiskErasing
                | Status::FailedReleasing => {}
                s => {
                    return text(
                        StatusCode::CONFLICT,
                        &format!("Machine cannot be released in its current state ('{}').", s.name()),
                    );
                }
            }
            m.status = Status::Releasing;
            m.running = Some(Running {
                op: Op::Release,
                started: Instant::now(),
                duration: cfg.release_time,
                stages_logged: 0,
            });
            push_event(next_event, m, "INFO", "Releasing", "");
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("abort") => {
            let back = match m.status {
                Status::Commissioning => Status::New,
                Status::Deploying => Status::Allocated,
                s => {
                    return text(
                        StatusCode::CONFLICT,
                        &format!("Cannot abort in current state: node {} is in state {}.", m.system_id, s.name()),
                    );
                }
            };
            m.status = back;
            m.running = None;
            json_resp(StatusCode::OK, &machine_json(m))
        }
        other => unrecognised(&Method::POST, other),
    });
    st.next_obj_id = next_obj;
    if let Some((what, host)) = consumed {
        match what {
            "deploy" => st.faults.fail_deploy.remove(&host),
            _ => st.faults.fail_commission.remove(&host),
        };
    }
    r
}

fn parse_si(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1_000u64),
        'M' => (&s[..s.len() - 1], 1_000_000),
        'G' => (&s[..s.len() - 1], 1_000_000_000),
        'T' => (&s[..s.len() - 1], 1_000_000_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn create_lv(st: &mut State, id: &str, vg_id: &str, form: &[(String, String)]) -> Response {
    let mut next_obj = st.next_obj_id;
    let r = with_machine(st, id, |m, _| {
        if m.status != Status::Ready {
            return text(StatusCode::CONFLICT, "Cannot create logical volume because the machine is not Ready.");
        }
        let Storage::Lvm { vg } = &mut m.storage else {
            return text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query.");
        };
        if vg.id.to_string() != vg_id {
            return text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query.");
        }
        let Some(name) = get(form, "name").filter(|n| !n.is_empty()) else {
            return field_error("name", "This field is required.");
        };
        if vg.lvs.iter().any(|l| l.name == name) {
            return field_error("__all__", "Virtual block device with this Name and Filesystem group already exists.");
        }
        let free = vg.free();
        let size = match get(form, "size") {
            None => free / EXTENT * EXTENT,
            Some(s) => match parse_si(s) {
                Some(b) if b / EXTENT * EXTENT > free => {
                    return field_error("size", &format!("Size is too large. Maximum size is {free}."));
                }
                Some(b) => b / EXTENT * EXTENT,
                None => return field_error("size", "Enter a whole number."),
            },
        };
        if size < EXTENT {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Volume group ({}) cannot hold any more logical volumes, because it doesn't have enough free space.",
                    vg.name
                ),
            );
        }
        next_obj += 1;
        vg.lvs.push(Lv { id: next_obj, name: name.to_owned(), size, fstype: None, mount: None });
        let lv = vg.lvs.last().cloned();
        let vgname = vg.name.clone();
        match lv {
            Some(lv) => json_resp(StatusCode::OK, &lv_json(&m.system_id, &vgname, &lv)),
            None => text(StatusCode::INTERNAL_SERVER_ERROR, "lost the logical volume"),
        }
    });
    st.next_obj_id = next_obj;
    r
}

fn valid_ssh_key(k: &str) -> bool {
    let mut it = k.split_whitespace();
    let (Some(t), Some(b)) = (it.next(), it.next()) else { return false };
    ["ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]
        .contains(&t)
        && b.len() > 16
        && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
}

fn add_key(st: &mut State, form: &[(String, String)]) -> Response {
    let Some(key) = get(form, "key") else { return field_error("key", "This field is required.") };
    let key = key.trim().to_owned();
    if !valid_ssh_key(&key) {
        return field_error("key", "Invalid SSH public key: the key is not in a format MAAS understands.");
    }
    let norm = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    if st.ssh_keys.iter().any(|(_, k)| norm(k) == norm(&key)) {
        return field_error("__all__", "This key has already been added for this user.");
    }
    let id = st.next_key_id;
    st.next_key_id += 1;
    st.ssh_keys.push((id, key.clone()));
    json_resp(StatusCode::CREATED, &key_json(id, &key))
}

fn key_json(id: i64, key: &str) -> Value {
    json!({"id": id, "key": key, "keysource": null, "resource_uri": format!("/MAAS/api/2.0/account/prefs/sshkeys/{id}/")})
}

fn events(st: &State, query: &[(String, String)]) -> Response {
    let limit: usize = match get(query, "limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 1000 => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("Requested number of events {n} is greater than limit: 1000"),
                );
            }
            Ok(n) => n,
            Err(_) => return field_error("limit", "Enter a whole number."),
        },
    };
    let levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
    let min = get(query, "level").and_then(|l| levels.iter().position(|x| *x == l)).unwrap_or(1);
    let ids: Vec<&str> = query.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.as_str()).collect();
    let mut evs: Vec<Value> = st
        .machines
        .iter()
        .filter(|m| ids.is_empty() || ids.contains(&m.system_id.as_str()))
        .flat_map(|m| {
            m.events.iter().filter(|e| levels.iter().position(|x| *x == e.level).unwrap_or(1) >= min).map(move |e| {
                (e.id, json!({"username": "admin", "node": m.system_id, "hostname": m.hostname, "id": e.id, "level": e.level, "created": e.created, "type": e.kind, "description": e.description}))
            })
        })
        .collect::<BTreeMap<i64, Value>>()
        .into_values()
        .rev()
        .collect();
    evs.truncate(limit);
    let newest = evs.first().and_then(|e| e["id"].as_i64()).unwrap_or(0);
    json_resp(
        StatusCode::OK,
        &json!({"count": evs.len(), "events": evs, "next_uri": format!("/MAAS/api/2.0/events/?op=query&after={newest}"), "prev_uri": "/MAAS/api/2.0/events/?op=query&before=0"}),
    )
}

fn lv_json(system_id: &str, vg: &str, lv: &Lv) -> Value {
    let name = format!("{vg}-{}", lv.name);
    json!({
        "id": lv.id, "system_id": system_id, "name": name, "uuid": format!("{:08x}-sim", lv.id), "type": "virtual",
        "path": format!("/dev/disk/by-dname/{name}"), "model": null, "serial": null, "id_path": null,
        "size": lv.size, "block_size": 4096, "available_size": if lv.fstype.is_some() { 0 } else { lv.size }, "used_size": if lv.fstype.is_some() { lv.size } else { 0 },
        "used_for": match (&lv.fstype, &lv.mount) { (Some(f), Some(mp)) => format!("{f} formatted filesystem mounted at {mp}"), _ => "Unused".into() },
        "tags": [], "filesystem": lv.fstype.as_ref().map(|f| json!({"fstype": f, "label": "root", "uuid": "sim", "mount_point": lv.mount, "mount_options": null})),
        "partition_table_type": null, "partitions": [], "firmware_version": null, "storage_pool": null, "numa_node": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{system_id}/blockdevices/{}/", lv.id),
    })
}

fn block_devices(m: &SimMachine) -> Vec<Value> {
    let disk_id = m.id as i64 * 100;
    let (partitions, used_for, ptable) = match &m.storage {
        Storage::Blank => (vec![], "Unused".to_owned(), Value::Null),
        Storage::Flat => {
            let root = (m.disk_bytes - EFI - GPT_OVERHEAD) / EXTENT * EXTENT;
            (
                vec![part_json(m, disk_id, 1, EFI, "fat32", "/boot/efi"), part_json(m, disk_id, 2, root, "ext4", "/")],
                "GPT partitioned with 2 partitions".to_owned(),
                json!("GPT"),
            )
        }
        Storage::Lvm { vg } => {
            let pv = (m.disk_bytes - EFI - GPT_OVERHEAD) / EXTENT * EXTENT;
            let mut p = part_json(m, disk_id, 2, pv, "lvm-pv", "");
            p["used_for"] = json!(format!("LVM volume for {}", vg.name));
            (
                vec![part_json(m, disk_id, 1, EFI, "fat32", "/boot/efi"), p],
                "GPT partitioned with 2 partitions".to_owned(),
                json!("GPT"),
            )
        }
    };
    let mut out = vec![json!({
        "id": disk_id, "system_id": m.system_id, "name": "sda", "uuid": null, "type": "physical",
        "path": "/dev/disk/by-dname/sda", "model": "SIM DISK", "serial": format!("SIM{}", m.id), "id_path": "/dev/disk/by-id/ata-SIM",
        "size": m.disk_bytes, "block_size": 512, "available_size": 0, "used_size": m.disk_bytes, "used_for": used_for, "tags": ["ssd"],
        "filesystem": null, "partition_table_type": ptable, "partitions": partitions, "firmware_version": "1.0", "storage_pool": null, "numa_node": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{disk_id}/", m.system_id),
    })];
    if let Storage::Lvm { vg } = &m.storage {
        out.extend(vg.lvs.iter().map(|lv| lv_json(&m.system_id, &vg.name, lv)));
    }
    out
}

fn part_json(m: &SimMachine, disk_id: i64, n: i64, size: u64, fstype: &str, mount: &str) -> Value {
    let id = disk_id + n;
    json!({
        "id": id, "uuid": format!("part-{id}"), "system_id": m.system_id, "device_id": disk_id, "path": format!("/dev/disk/by-dname/sda-part{n}"),
        "type": "partition", "size": size, "bootable": n == 1,
        "filesystem": if fstype.is_empty() { Value::Null } else { json!({"fstype": fstype, "label": null, "uuid": "sim", "mount_point": if mount.is_empty() { Value::Null } else { json!(mount) }, "mount_options": null}) },
        "used_for": if mount.is_empty() { fstype.to_string() } else { format!("{fstype} formatted filesystem mounted at {mount}") }, "tags": [],
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{disk_id}/partition/{id}", m.system_id),
    })
}

fn volume_groups(m: &SimMachine) -> Vec<Value> {
    let Storage::Lvm { vg } = &m.storage else { return vec![] };
    let human = |b: u64| format!("{:.1} GB", b as f64 / 1e9);
    vec![json!({
        "id": vg.id, "uuid": format!("vg-{}", vg.id), "name": vg.name, "system_id": m.system_id,
        "devices": [{"id": m.id as i64 * 100 + 2, "type": "partition"}],
        "size": vg.size, "human_size": human(vg.size),
        "available_size": vg.free(), "human_available_size": human(vg.free()),
        "used_size": vg.size - vg.free(), "human_used_size": human(vg.size - vg.free()),
        "logical_volumes": vg.lvs.iter().map(|lv| lv_json(&m.system_id, &vg.name, lv)).collect::<Vec<_>>(),
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/volume-group/{}/", m.system_id, vg.id),
    })]
}

fn machine_json(m: &SimMachine) -> Value {
    let iface_id = m.id as i64 * 10;
    let ip = if m.ip_assigned { Some(m.ip.clone()) } else { None };
    let links = json!([{ "id": iface_id + 1, "mode": "auto", "ip_address": ip, "subnet": {"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "dns_servers": []} }]);
    let iface = json!({
        "id": iface_id, "name": "eth0", "type": "physical", "mac_address": m.mac, "enabled": true,
        "links": links, "vlan": {"vid": 0, "name": "untagged", "fabric": "fabric-0"}, "params": "", "parents": [], "children": [], "tags": [],
        "effective_mtu": 1500, "link_connected": true, "link_speed": 1000, "interface_speed": 1000,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/interfaces/{iface_id}/", m.system_id),
    });
    let bds = block_devices(m);
    let vgs: Vec<Value> = volume_groups(m)
        .iter()
        .map(|v| json!({"system_id": m.system_id, "id": v["id"], "__incomplete__": true}))
        .collect();
    json!({
        "system_id": m.system_id, "hostname": m.hostname, "fqdn": format!("{}.maas", m.hostname),
        "domain": {"name": "maas", "id": 0, "authoritative": true},
        "description": "", "status": m.status.code(), "status_name": m.status.name(),
        "status_message": m.status_message.as_deref().filter(|s| *s != "__fail__"), "status_action": "",
        "error_description": "", "power_state": m.power, "power_type": "ipmi",
        "ip_addresses": ip.iter().collect::<Vec<_>>(),
        "boot_interface": iface, "interface_set": [iface],
        "architecture": "amd64/generic", "cpu_count": m.cpu_count, "cpu_speed": 3400, "memory": m.memory_mib,
        "storage": m.disk_bytes as f64 / 1e6,
        "osystem": if m.distro_series.is_some() { "ubuntu" } else { "" }, "distro_series": m.distro_series.clone().unwrap_or_default(),
        "hwe_kernel": null, "min_hwe_kernel": "",
        "owner": m.owner, "locked": false, "netboot": m.status != Status::Deployed,
        "boot_disk": bds.first(), "blockdevice_set": bds, "physicalblockdevice_set": bds.iter().take(1).collect::<Vec<_>>(),
        "virtualblockdevice_set": bds.iter().skip(1).collect::<Vec<_>>(),
        "volume_groups": vgs, "raids": [], "bcaches": [], "cache_sets": [], "special_filesystems": [],
        "tag_names": [], "zone": {"name": "default", "id": 1}, "pool": {"name": "default", "id": 0},
        "node_type": 0, "node_type_name": "Machine", "bios_boot_method": "uefi",
        "hardware_info": {"system_vendor": "Simulated", "system_product": "homelab-sim PC", "cpu_model": "Sim CPU"},
        "owner_data": {}, "swap_size": null, "ephemeral_deploy": false,
        "resource_uri": format!("/MAAS/api/2.0/machines/{}/", m.system_id),
    })
}
