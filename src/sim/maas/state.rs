//! The simulated MAAS's state: machines with their storage, running operations and events, the
//! faults to inject, and how a machine's status advances with time (evaluated lazily on every
//! request, so a paused test sees a consistent state).

use super::*;

pub const MIB: u64 = 1 << 20;
pub(in crate::sim::maas) const EXTENT: u64 = 4 * MIB;
pub(in crate::sim::maas) const EFI: u64 = 512 * MIB;
pub(in crate::sim::maas) const GPT_OVERHEAD: u64 = 5 * MIB;

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
    /// The MAAS host itself: listed under `regioncontrollers/` and `rackcontrollers/`
    /// (node type 4, region and rack), never under `machines/`.
    pub controller_hostname: String,
    pub controller_ips: Vec<String>,
    /// The `dns_trusted_acl` setting (empty by default, as on a fresh MAAS).
    pub dns_trusted_acl: String,
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
            controller_hostname: "maas".into(),
            controller_ips: vec!["10.0.0.1".into()],
            dns_trusted_acl: String::new(),
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
pub(in crate::sim::maas) struct Lv {
    pub(in crate::sim::maas) id: i64,
    pub(in crate::sim::maas) name: String,
    pub(in crate::sim::maas) size: u64,
    pub(in crate::sim::maas) fstype: Option<String>,
    pub(in crate::sim::maas) mount: Option<String>,
}

#[derive(Debug, Clone)]
pub(in crate::sim::maas) struct Vg {
    pub(in crate::sim::maas) id: i64,
    pub(in crate::sim::maas) name: String,
    pub(in crate::sim::maas) size: u64,
    pub(in crate::sim::maas) lvs: Vec<Lv>,
}

impl Vg {
    pub(in crate::sim::maas) fn free(&self) -> u64 {
        self.size - self.lvs.iter().map(|l| l.size).sum::<u64>()
    }
}

#[derive(Debug, Clone)]
pub(in crate::sim::maas) enum Storage {
    /// MAAS's default after commissioning: one ext4 partition mounted at /.
    Flat,
    Lvm {
        vg: Vg,
    },
    Blank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sim::maas) enum Op {
    Commission,
    Deploy { fail: bool },
    Release,
}

#[derive(Debug, Clone)]
pub(in crate::sim::maas) struct Running {
    pub(in crate::sim::maas) op: Op,
    pub(in crate::sim::maas) started: Instant,
    pub(in crate::sim::maas) duration: Duration,
    /// Stage messages already recorded as events.
    pub(in crate::sim::maas) stages_logged: usize,
}

#[derive(Debug, Clone)]
pub(in crate::sim::maas) struct SimEvent {
    pub(in crate::sim::maas) id: i64,
    pub(in crate::sim::maas) level: &'static str,
    pub(in crate::sim::maas) kind: String,
    pub(in crate::sim::maas) description: String,
    pub(in crate::sim::maas) created: String,
}

#[derive(Debug, Clone)]
pub(in crate::sim::maas) struct SimMachine {
    pub(in crate::sim::maas) id: u64,
    pub(in crate::sim::maas) system_id: String,
    pub(in crate::sim::maas) hostname: String,
    pub(in crate::sim::maas) mac: String,
    pub(in crate::sim::maas) ip: String,
    pub(in crate::sim::maas) status: Status,
    pub(in crate::sim::maas) status_message: Option<String>,
    pub(in crate::sim::maas) power: &'static str,
    pub(in crate::sim::maas) owner: Option<String>,
    /// `op=set_owner_data` key/values; gone when the machine is released.
    pub(in crate::sim::maas) owner_data: std::collections::BTreeMap<String, String>,
    /// The PC died: it cannot boot (an erase never completes).
    pub(in crate::sim::maas) dead: bool,
    /// The erase a release asked for (`quick`, `secure`, `full`), for the tests.
    pub(in crate::sim::maas) erase: Option<String>,
    pub(in crate::sim::maas) cpu_count: u32,
    pub(in crate::sim::maas) memory_mib: u64,
    pub(in crate::sim::maas) disk_bytes: u64,
    pub(in crate::sim::maas) storage: Storage,
    pub(in crate::sim::maas) distro_series: Option<String>,
    pub(in crate::sim::maas) running: Option<Running>,
    pub(in crate::sim::maas) events: Vec<SimEvent>,
    pub(in crate::sim::maas) user_data: Option<String>,
    /// Keys the deployed OS received (the owner's keys at deploy time).
    pub(in crate::sim::maas) deployed_keys: Vec<String>,
    pub(in crate::sim::maas) ip_assigned: bool,
}

pub(in crate::sim::maas) const DEPLOY_STAGES: [&str; 8] = [
    "Deploying",
    "Performing PXE boot",
    "Loading ephemeral",
    "Configuring storage",
    "Installing OS",
    "Configuring OS",
    "Rebooting",
    "Image Deployed",
];
pub(in crate::sim::maas) const COMMISSION_STAGES: [&str; 4] =
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
pub(in crate::sim::maas) struct State {
    pub(in crate::sim::maas) machines: Vec<SimMachine>,
    pub(in crate::sim::maas) ssh_keys: Vec<(i64, String)>,
    pub(in crate::sim::maas) next_key_id: i64,
    pub(in crate::sim::maas) next_event_id: i64,
    pub(in crate::sim::maas) next_obj_id: i64,
    pub(in crate::sim::maas) nonces: HashSet<String>,
    pub(in crate::sim::maas) faults: Faults,
    /// Every request: "METHOD path?op" (for assertions and benchmarks).
    pub(in crate::sim::maas) log: Vec<String>,
}

/// The seed layout (100 GB root, the rest for Ceph) on a disk, as homelab would have made it.
pub(in crate::sim::maas) fn default_vg(disk: u64) -> Vg {
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

pub(in crate::sim::maas) fn system_id_for(n: u64) -> String {
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

pub(in crate::sim::maas) fn now_maas() -> String {
    // MAAS formats event times like "Fri, 07 Dec. 2018 20:11:08".
    jiff::Zoned::now().strftime("%a, %d %b. %Y %H:%M:%S").to_string()
}

pub(in crate::sim::maas) fn push_event(
    st_next: &mut i64,
    m: &mut SimMachine,
    level: &'static str,
    kind: &str,
    description: &str,
) {
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
pub(in crate::sim::maas) fn advance_all(st: &mut State, cfg: &SimMaasConfig) {
    let mut next = st.next_event_id;
    for m in st.machines.iter_mut() {
        advance(m, cfg, &mut next);
    }
    st.next_event_id = next;
}

pub(in crate::sim::maas) fn advance(m: &mut SimMachine, cfg: &SimMaasConfig, next_event: &mut i64) {
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
            if frac >= 1.0 && m.status == Status::DiskErasing && m.dead {
                m.status = Status::FailedDiskErasing;
                push_event(next_event, m, "ERROR", "Failed to erase disks", "the machine did not boot");
                m.status_message = Some("Failed disk erasing".into());
                m.running = None;
            } else if frac >= 1.0 {
                m.status = Status::Ready;
                m.owner = None;
                m.owner_data.clear();
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

pub(in crate::sim::maas) type AppState = (Arc<Mutex<State>>, Arc<SimMaasConfig>);
