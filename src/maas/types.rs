//! MAAS API 2.0 objects, as MAAS 3.x returns them (field names from `DISPLAYED_MACHINE_FIELDS`).
//! Parsing is lenient: unknown fields are ignored and nothing newer than MAAS 3.2 is required.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Node status codes (stable across MAAS 3.2–3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    New,
    Commissioning,
    FailedCommissioning,
    Missing,
    Ready,
    Reserved,
    Deployed,
    Retired,
    Broken,
    Deploying,
    Allocated,
    FailedDeployment,
    Releasing,
    FailedReleasing,
    DiskErasing,
    FailedDiskErasing,
    RescueMode,
    EnteringRescueMode,
    FailedEnteringRescueMode,
    ExitingRescueMode,
    FailedExitingRescueMode,
    Testing,
    FailedTesting,
    Unknown(i64),
}

impl Status {
    pub fn from_code(c: i64) -> Status {
        use Status::*;
        match c {
            0 => New,
            1 => Commissioning,
            2 => FailedCommissioning,
            3 => Missing,
            4 => Ready,
            5 => Reserved,
            6 => Deployed,
            7 => Retired,
            8 => Broken,
            9 => Deploying,
            10 => Allocated,
            11 => FailedDeployment,
            12 => Releasing,
            13 => FailedReleasing,
            14 => DiskErasing,
            15 => FailedDiskErasing,
            16 => RescueMode,
            17 => EnteringRescueMode,
            18 => FailedEnteringRescueMode,
            19 => ExitingRescueMode,
            20 => FailedExitingRescueMode,
            21 => Testing,
            22 => FailedTesting,
            n => Unknown(n),
        }
    }

    pub fn code(self) -> i64 {
        use Status::*;
        match self {
            New => 0,
            Commissioning => 1,
            FailedCommissioning => 2,
            Missing => 3,
            Ready => 4,
            Reserved => 5,
            Deployed => 6,
            Retired => 7,
            Broken => 8,
            Deploying => 9,
            Allocated => 10,
            FailedDeployment => 11,
            Releasing => 12,
            FailedReleasing => 13,
            DiskErasing => 14,
            FailedDiskErasing => 15,
            RescueMode => 16,
            EnteringRescueMode => 17,
            FailedEnteringRescueMode => 18,
            ExitingRescueMode => 19,
            FailedExitingRescueMode => 20,
            Testing => 21,
            FailedTesting => 22,
            Unknown(n) => n,
        }
    }

    /// MAAS's `status_name` display string.
    pub fn name(self) -> &'static str {
        use Status::*;
        match self {
            New => "New",
            Commissioning => "Commissioning",
            FailedCommissioning => "Failed commissioning",
            Missing => "Missing",
            Ready => "Ready",
            Reserved => "Reserved",
            Deployed => "Deployed",
            Retired => "Retired",
            Broken => "Broken",
            Deploying => "Deploying",
            Allocated => "Allocated",
            FailedDeployment => "Failed deployment",
            Releasing => "Releasing",
            FailedReleasing => "Releasing failed",
            DiskErasing => "Disk erasing",
            FailedDiskErasing => "Failed disk erasing",
            RescueMode => "Rescue mode",
            EnteringRescueMode => "Entering rescue mode",
            FailedEnteringRescueMode => "Failed to enter rescue mode",
            ExitingRescueMode => "Exiting rescue mode",
            FailedExitingRescueMode => "Failed to exit rescue mode",
            Testing => "Testing",
            FailedTesting => "Failed testing",
            Unknown(_) => "Unknown",
        }
    }

    /// The lower-case constant MAAS's `status=` filter takes.
    pub fn filter_label(self) -> String {
        self.name().to_ascii_lowercase().replace(' ', "_").replace("releasing_failed", "failed_releasing")
    }

    pub fn is_failed(self) -> bool {
        use Status::*;
        matches!(
            self,
            FailedCommissioning
                | FailedDeployment
                | FailedReleasing
                | FailedDiskErasing
                | FailedEnteringRescueMode
                | FailedExitingRescueMode
                | FailedTesting
                | Broken
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Link {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Interface {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Filesystem {
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub mount_point: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct Partition {
    pub id: i64,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    #[serde(default)]
    pub used_for: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct BlockDevice {
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub available_size: Option<u64>,
    #[serde(default)]
    pub used_for: Option<String>,
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    #[serde(default)]
    pub partitions: Vec<Partition>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct VolumeGroup {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub available_size: u64,
    #[serde(default)]
    pub used_size: u64,
    #[serde(default)]
    pub logical_volumes: Vec<BlockDevice>,
    #[serde(default)]
    pub devices: Vec<Value>,
}

impl VolumeGroup {
    /// The logical volume named `name` (MAAS names the block device `<vg>-<lv>`).
    pub fn logical_volume(&self, name: &str) -> Option<&BlockDevice> {
        let full = format!("{}-{name}", self.name);
        self.logical_volumes.iter().find(|lv| lv.name == name || lv.name == full)
    }
}

fn unknown_status() -> i64 {
    -1
}

/// Remote text that reaches a terminal: control characters removed.
fn printable_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| crate::foundation::text::printable(&s).into_owned()))
}

fn printable_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    Ok(crate::foundation::text::printable(&s).into_owned())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Machine {
    pub system_id: String,
    #[serde(deserialize_with = "printable_string")]
    pub hostname: String,
    #[serde(default, deserialize_with = "printable_opt")]
    pub fqdn: Option<String>,
    /// Some MAAS listings omit it (real gomaasclient fixture); -1 then.
    #[serde(default = "unknown_status")]
    pub status: i64,
    #[serde(default)]
    pub status_name: Option<String>,
    #[serde(default, deserialize_with = "printable_opt")]
    pub status_message: Option<String>,
    #[serde(default)]
    pub power_state: Option<String>,
    #[serde(default)]
    pub power_type: Option<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub osystem: Option<String>,
    #[serde(default)]
    pub distro_series: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub cpu_count: Option<u32>,
    /// MiB.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Total physical disk, MB (bytes/10⁶).
    #[serde(default)]
    pub storage: Option<f64>,
    #[serde(default, deserialize_with = "printable_opt")]
    pub error_description: Option<String>,
    #[serde(default)]
    pub locked: Option<bool>,
    #[serde(default)]
    pub boot_interface: Option<Interface>,
    #[serde(default)]
    pub interface_set: Vec<Interface>,
    #[serde(default)]
    pub boot_disk: Option<BlockDevice>,
    #[serde(default)]
    pub blockdevice_set: Vec<BlockDevice>,
    #[serde(default)]
    pub tag_names: Vec<String>,
    #[serde(default)]
    pub owner_data: Option<Value>,
}

impl Machine {
    pub fn status(&self) -> Status {
        Status::from_code(self.status)
    }
    /// Every MAC of the machine, lower-case.
    pub fn macs(&self) -> Vec<String> {
        self.boot_interface
            .iter()
            .chain(self.interface_set.iter())
            .filter_map(|i| i.mac_address.as_deref())
            .map(str::to_ascii_lowercase)
            .collect()
    }
    /// The address to SSH to: the boot interface's static/auto address, else the first IPv4
    /// one, else the first. Only entries that parse as an IP address count: this string
    /// becomes an SSH destination and a line of `/etc/hosts`, so anything else MAAS (or
    /// something pretending to be MAAS) sends is ignored.
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        let parse = |s: &str| s.trim().parse::<std::net::IpAddr>().ok();
        let boot = self
            .boot_interface
            .iter()
            .flat_map(|i| i.links.iter())
            .find_map(|l| l.ip_address.as_deref().and_then(parse));
        let all: Vec<std::net::IpAddr> = self.ip_addresses.iter().filter_map(|s| parse(s)).collect();
        boot.or_else(|| all.iter().find(|ip| ip.is_ipv4()).copied()).or_else(|| all.first().copied())
    }
    /// [`Machine::ip_addr`] in its canonical text form.
    pub fn ip(&self) -> Option<String> {
        self.ip_addr().map(|ip| ip.to_string())
    }
    /// Whether the boot disk carries a logical volume named `lv` (from `blockdevice_set`).
    pub fn has_block_device(&self, name: &str) -> bool {
        self.blockdevice_set.iter().any(|b| b.name == name)
    }
}

/// A region or rack controller as MAAS lists it (only what homelab reads).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Controller {
    pub system_id: String,
    pub hostname: String,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// 3 rack, 4 region and rack, 2 region (MAAS's `NODE_TYPE`).
    #[serde(default)]
    pub node_type: Option<u8>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Whoami {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub is_local: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Version {
    pub version: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub subversion: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SshKey {
    pub id: i64,
    pub key: String,
    #[serde(default)]
    pub keysource: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MaasEvent {
    pub id: i64,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "printable_opt")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "printable_opt")]
    pub description: Option<String>,
}

impl MaasEvent {
    pub fn text(&self) -> String {
        match (self.kind.as_deref(), self.description.as_deref()) {
            (Some(t), Some(d)) if !d.is_empty() => format!("{t} - {d}"),
            (Some(t), _) => t.to_owned(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EventsPage {
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub events: Vec<MaasEvent>,
    #[serde(default)]
    pub next_uri: Option<String>,
    #[serde(default)]
    pub prev_uri: Option<String>,
}
