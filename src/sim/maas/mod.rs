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

mod http;
mod ops;
mod state;
mod views;

use crate::maas::types::Status;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::*;
use ops::*;
use views::*;

pub use state::*;

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
            owner_data: Default::default(),
            dead: false,
            erase: None,
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

    /// The PC dies: MAAS reads its power as off (its BMC still answers) and it cannot boot.
    pub fn power_off(&self, hostname: &str) {
        let mut st = self.lock();
        if let Some(m) = st.machines.iter_mut().find(|m| m.hostname == hostname) {
            m.power = "off";
            m.dead = true;
        }
    }

    /// The erase the last release of `hostname` asked for.
    pub fn erase_of(&self, hostname: &str) -> Option<String> {
        self.lock().machines.iter().find(|m| m.hostname == hostname).and_then(|m| m.erase.clone())
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
