//! `homelab status`: every layer at once — MAAS machines, Kubernetes nodes, Ceph (health,
//! OSDs per node, capacity), pools and StorageClasses, PVCs, Kafka (Ready, brokers,
//! bootstrap addresses) — gathered in parallel, read-only, from MAAS and the Kubernetes API
//! (no SSH). What is wrong comes first; the command exits non-zero when anything is.

use super::context::Ctx;
use crate::addons::{rook, strimzi};
use crate::config::Rook;
use crate::config::size::{human_iec, human_si};
use crate::kube::apply::Applier;
use crate::maas::Status;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Default)]
pub struct MachineRow {
    pub hostname: String,
    pub mac: String,
    pub status: String,
    pub power: String,
    pub ip: String,
    pub cores: u32,
    pub memory_mib: u64,
    pub disk_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub version: String,
    pub role: String,
    pub cores: u32,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CephRow {
    pub phase: String,
    pub health: String,
    pub osds: u32,
    pub osds_by_node: BTreeMap<String, u32>,
    pub raw_bytes: u64,
    pub used_bytes: u64,
    pub usable_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PoolRow {
    pub name: String,
    pub phase: String,
    pub replicas: u64,
    pub failure_domain: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ClassRow {
    pub name: String,
    pub provisioner: String,
    pub default: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PvcRow {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub capacity: String,
    pub class: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct KafkaRow {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    pub message: String,
    pub version: String,
    pub brokers: u64,
    pub bootstrap: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    pub machines: usize,
    pub cores: u64,
    pub memory_bytes: u64,
    pub ceph_raw_bytes: u64,
    pub ceph_usable_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StatusReport {
    pub cluster: String,
    pub healthy: bool,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub machines: Vec<MachineRow>,
    pub nodes: Vec<NodeRow>,
    pub ceph: Option<CephRow>,
    pub pools: Vec<PoolRow>,
    pub storage_classes: Vec<ClassRow>,
    pub pvcs: Vec<PvcRow>,
    pub kafka: Option<KafkaRow>,
    pub totals: Totals,
}

fn quantity(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| {
            let s = s.trim();
            if let Some(k) = s.strip_suffix("Ki") {
                return k.parse::<u64>().ok().map(|x| x * 1024);
            }
            crate::config::size::parse_quantity(s)
        })
        .unwrap_or(0)
}

async fn maas_part(cx: &Ctx) -> (Vec<MachineRow>, Vec<String>) {
    let Ok(maas) = cx.maas() else { return (vec![], vec![]) };
    let macs: Vec<String> = cx.cluster.machines.iter().filter_map(|m| m.mac.clone()).collect();
    let found = match maas.whoami().await {
        Err(e) => return (vec![], vec![format!("MAAS: {e}")]),
        Ok(_) => match maas.machines_by_mac(&macs).await {
            Ok(f) => f,
            Err(e) => return (vec![], vec![format!("MAAS: {e}")]),
        },
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for m in &cx.cluster.machines {
        let mac = m.mac.clone().unwrap_or_default();
        match found.iter().find(|f| f.macs().contains(&mac)) {
            Some(f) => {
                if f.status() != Status::Deployed {
                    problems.push(format!(
                        "machine {} is {} in MAAS, not Deployed{}",
                        m.hostname,
                        f.status().name(),
                        f.status_message.as_deref().map(|s| format!(" ({s})")).unwrap_or_default()
                    ));
                }
                rows.push(MachineRow {
                    hostname: m.hostname.clone(),
                    mac,
                    status: f.status().name().to_owned(),
                    power: f.power_state.clone().unwrap_or_default(),
                    ip: f.ip().unwrap_or_default(),
                    cores: f.cpu_count.unwrap_or(0),
                    memory_mib: f.memory.unwrap_or(0),
                    disk_bytes: f.boot_disk.as_ref().map(|d| d.size).unwrap_or(0),
                });
            }
            None => {
                problems.push(format!("machine {} (MAC {mac}) is unknown to MAAS", m.hostname));
                rows.push(MachineRow {
                    hostname: m.hostname.clone(),
                    mac,
                    status: "unknown to MAAS".into(),
                    ..Default::default()
                });
            }
        }
    }
    (rows, problems)
}

fn to_values(objs: Vec<kube::api::DynamicObject>) -> Vec<Value> {
    objs.into_iter().filter_map(|o| serde_json::to_value(o).ok()).collect()
}

async fn kube_part(cx: &Ctx, r: &mut StatusReport) {
    let client = match super::phases::addons::try_client(cx).await {
        Some(c) => c,
        None => {
            let why = match cx.kube().await {
                Err(e) => format!("{e:#}"),
                Ok(_) => "the API server does not answer".to_owned(),
            };
            r.problems.push(format!(
                "Kubernetes API unreachable: {} — check that the first control plane is up and that `homelab kubeconfig` points at an address this machine reaches",
                why.lines().next().unwrap_or("")
            ));
            return;
        }
    };
    let a = Applier::new(client, cx.ui.clone(), super::phase::PhaseId::Kubernetes, Default::default());
    let (nodes, classes, pvcs) = tokio::join!(
        a.list("v1", "Node", None, None),
        a.list("storage.k8s.io/v1", "StorageClass", None, None),
        a.list("v1", "PersistentVolumeClaim", None, None)
    );
    for n in to_values(nodes.unwrap_or_default()) {
        let labels = n.pointer("/metadata/labels").cloned().unwrap_or_default();
        let role = if labels.get("node.kubernetes.io/microk8s-worker").is_some() {
            "worker"
        } else if labels.get("node.kubernetes.io/microk8s-controlplane").is_some()
            || labels.get("node-role.kubernetes.io/control-plane").is_some()
        {
            "control-plane"
        } else {
            "node"
        };
        let ready = n
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        r.nodes.push(NodeRow {
            name: n["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            ready,
            version: n.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("").to_owned(),
            role: role.to_owned(),
            cores: n.pointer("/status/capacity/cpu").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0),
            memory_bytes: quantity(n.pointer("/status/capacity/memory").unwrap_or(&Value::Null)),
        });
    }
    for n in &r.nodes {
        if !n.ready {
            r.problems.push(format!("node {} is NotReady", n.name));
        }
    }
    if cx.cluster.kubernetes.is_microk8s() {
        for m in &cx.cluster.machines {
            if !r.nodes.iter().any(|n| n.name == m.hostname) {
                r.problems.push(format!("machine {} is not a Kubernetes node", m.hostname));
            }
        }
    }
    for c in to_values(classes.unwrap_or_default()) {
        r.storage_classes.push(ClassRow {
            name: c["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            provisioner: c["provisioner"].as_str().unwrap_or("").to_owned(),
            default: c
                .pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
                .and_then(Value::as_str)
                == Some("true"),
        });
    }
    for p in to_values(pvcs.unwrap_or_default()) {
        let row = PvcRow {
            namespace: p["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
            name: p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            phase: p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending").to_owned(),
            capacity: p
                .pointer("/status/capacity/storage")
                .or(p.pointer("/spec/resources/requests/storage"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            class: p.pointer("/spec/storageClassName").and_then(Value::as_str).unwrap_or("(default)").to_owned(),
        };
        if row.phase != "Bound" {
            r.problems.push(format!("PVC {}/{} is {}", row.namespace, row.name, row.phase));
        }
        r.pvcs.push(row);
    }
    if let Some(rook) = &cx.cluster.rook {
        let (cluster, pods, pools) = tokio::join!(
            a.get("ceph.rook.io/v1", "CephCluster", Some(Rook::NAMESPACE), Rook::CLUSTER_NAME),
            a.list("v1", "Pod", Some(Rook::NAMESPACE), Some(rook::OSD_SELECTOR)),
            a.list("ceph.rook.io/v1", "CephBlockPool", Some(Rook::NAMESPACE), None)
        );
        let mut ceph = CephRow::default();
        match cluster.ok().flatten().and_then(|c| serde_json::to_value(c).ok()) {
            None => r.problems.push("no CephCluster rook-ceph/rook-ceph".into()),
            Some(c) => {
                ceph.phase = c.pointer("/status/phase").and_then(Value::as_str).unwrap_or("").to_owned();
                ceph.health = c.pointer("/status/ceph/health").and_then(Value::as_str).unwrap_or("unknown").to_owned();
                ceph.raw_bytes = c.pointer("/status/ceph/capacity/bytesTotal").and_then(Value::as_u64).unwrap_or(0);
                ceph.used_bytes = c.pointer("/status/ceph/capacity/bytesUsed").and_then(Value::as_u64).unwrap_or(0);
                match ceph.health.as_str() {
                    "HEALTH_OK" => {}
                    "HEALTH_WARN" => r.warnings.push(format!(
                        "Ceph is HEALTH_WARN{}",
                        c.pointer("/status/ceph/details")
                            .and_then(Value::as_object)
                            .map(|d| format!(": {}", d.keys().cloned().collect::<Vec<_>>().join(", ")))
                            .unwrap_or_default()
                    )),
                    h => r.problems.push(format!("Ceph is {h} (phase {})", ceph.phase)),
                }
            }
        }
        for p in to_values(pods.unwrap_or_default()) {
            if let Some(host) = rook::running_osd_host(&p) {
                *ceph.osds_by_node.entry(host.to_owned()).or_default() += 1;
                ceph.osds += 1;
            }
        }
        for m in cx.cluster.ceph_machines() {
            if !ceph.osds_by_node.contains_key(&m.hostname) {
                r.problems.push(format!("no running OSD on {}", m.hostname));
            }
        }
        for p in to_values(pools.unwrap_or_default()) {
            let row = PoolRow {
                name: p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                phase: p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("").to_owned(),
                replicas: p.pointer("/spec/replicated/size").and_then(Value::as_u64).unwrap_or(0),
                failure_domain: p.pointer("/spec/failureDomain").and_then(Value::as_str).unwrap_or("").to_owned(),
            };
            if row.phase != "Ready" {
                r.problems.push(format!(
                    "pool {} is {}",
                    row.name,
                    if row.phase.is_empty() { "not Ready" } else { &row.phase }
                ));
            }
            r.pools.push(row);
        }
        let replicas = rook
            .pools
            .iter()
            .find(|p| p.storage_class.as_ref().is_some_and(|s| s.default))
            .or(rook.pools.first())
            .map(|p| p.replicas)
            .unwrap_or(1)
            .max(1);
        ceph.usable_bytes = ceph.raw_bytes / u64::from(replicas);
        for p in &rook.pools {
            if let Some(sc) = &p.storage_class
                && !r.storage_classes.iter().any(|c| c.name == sc.name)
            {
                r.problems.push(format!("StorageClass {} is missing", sc.name));
            }
        }
        r.ceph = Some(ceph);
    }
    if let Some(k) = &cx.cluster.kafka {
        let selector = format!("strimzi.io/cluster={}", k.name);
        let (live, pools) = tokio::join!(
            a.get(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name),
            a.list(&k.release.api_version, "KafkaNodePool", Some(&k.namespace), Some(&selector))
        );
        let live = live.ok().flatten().and_then(|o| serde_json::to_value(o).ok());
        let pools = to_values(pools.unwrap_or_default());
        match live {
            None => r.problems.push(format!("no Kafka {}/{}", k.namespace, k.name)),
            Some(v) => {
                let conds = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
                let ready = conds.iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
                let message = conds
                    .iter()
                    .find(|c| c["type"] != "Ready")
                    .and_then(|c| c["message"].as_str())
                    .unwrap_or("")
                    .to_owned();
                let brokers = if pools.is_empty() {
                    v.pointer("/spec/kafka/replicas").and_then(Value::as_u64).unwrap_or(0)
                } else {
                    pools
                        .iter()
                        .filter(|p| {
                            p.pointer("/spec/roles")
                                .and_then(Value::as_array)
                                .is_some_and(|r| r.iter().any(|x| x == "broker"))
                        })
                        .filter_map(|p| p.pointer("/spec/replicas").and_then(Value::as_u64))
                        .sum()
                };
                if !ready {
                    r.problems.push(format!(
                        "Kafka {}/{} is not Ready{}",
                        k.namespace,
                        k.name,
                        if message.is_empty() { String::new() } else { format!(": {message}") }
                    ));
                }
                r.kafka = Some(KafkaRow {
                    namespace: k.namespace.clone(),
                    name: k.name.clone(),
                    ready,
                    message,
                    version: v.pointer("/spec/kafka/version").and_then(Value::as_str).unwrap_or("").to_owned(),
                    brokers,
                    bootstrap: strimzi::bootstrap_addresses(&v),
                });
            }
        }
    }
}

/// Gathers the status of every layer (MAAS and Kubernetes in parallel).
pub async fn gather(cx: &Ctx) -> StatusReport {
    let mut r = StatusReport { cluster: cx.cluster.name.clone(), ..Default::default() };
    let (maas, ()) = tokio::join!(maas_part(cx), kube_part(cx, &mut r));
    r.machines = maas.0;
    let mut problems = maas.1;
    problems.append(&mut r.problems);
    r.problems = problems;
    r.totals.machines = cx.cluster.machines.len().max(r.nodes.len());
    if r.machines.iter().any(|m| m.cores > 0) {
        r.totals.cores = r.machines.iter().map(|m| u64::from(m.cores)).sum();
        r.totals.memory_bytes = r.machines.iter().map(|m| m.memory_mib << 20).sum();
    } else {
        r.totals.cores = r.nodes.iter().map(|n| u64::from(n.cores)).sum();
        r.totals.memory_bytes = r.nodes.iter().map(|n| n.memory_bytes).sum();
    }
    if let Some(c) = &r.ceph {
        r.totals.ceph_raw_bytes = c.raw_bytes;
        r.totals.ceph_usable_bytes = c.usable_bytes;
    }
    r.healthy = r.problems.is_empty();
    r
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// The report as text: what is wrong first, then one table per layer, then the totals.
pub fn render(r: &StatusReport) -> String {
    let mut s = String::new();
    if r.healthy {
        s.push_str(&format!("cluster `{}`: healthy\n", r.cluster));
    } else {
        s.push_str(&format!(
            "cluster `{}`: {} problem{}\n",
            r.cluster,
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        ));
        for p in &r.problems {
            s.push_str(&format!("  ✗ {p}\n"));
        }
        s.push_str("  next: `homelab up --dry-run` lists what homelab would change, `homelab up` converges it; the tables below show each layer\n");
    }
    for w in &r.warnings {
        s.push_str(&format!("  ! {w}\n"));
    }
    if !r.machines.is_empty() {
        s.push_str("\nMAAS machines\n");
        s.push_str(&table(
            &["machine", "status", "power", "ip", "cores", "memory", "disk"],
            r.machines
                .iter()
                .map(|m| {
                    vec![
                        m.hostname.clone(),
                        m.status.clone(),
                        m.power.clone(),
                        m.ip.clone(),
                        m.cores.to_string(),
                        human_iec(m.memory_mib << 20),
                        human_si(m.disk_bytes),
                    ]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if !r.nodes.is_empty() {
        s.push_str("\nKubernetes nodes\n");
        s.push_str(&table(
            &["node", "ready", "role", "version"],
            r.nodes
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        if n.ready { "Ready".into() } else { "NotReady".into() },
                        n.role.clone(),
                        n.version.clone(),
                    ]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if let Some(c) = &r.ceph {
        s.push_str(&format!(
            "\nCeph: {} ({}), {} OSD{}, {} raw, {} used, ~{} usable\n",
            c.health,
            c.phase,
            c.osds,
            if c.osds == 1 { "" } else { "s" },
            human_si(c.raw_bytes),
            human_si(c.used_bytes),
            human_si(c.usable_bytes)
        ));
        s.push_str(&table(
            &["node", "OSDs"],
            c.osds_by_node.iter().map(|(n, k)| vec![n.clone(), k.to_string()]).collect(),
        ));
        s.push('\n');
    }
    if !r.pools.is_empty() {
        s.push_str("\nPools\n");
        s.push_str(&table(
            &["pool", "phase", "replicas", "failure domain"],
            r.pools
                .iter()
                .map(|p| vec![p.name.clone(), p.phase.clone(), p.replicas.to_string(), p.failure_domain.clone()])
                .collect(),
        ));
        s.push('\n');
    }
    if !r.storage_classes.is_empty() {
        s.push_str("\nStorageClasses\n");
        s.push_str(&table(
            &["class", "provisioner", "default"],
            r.storage_classes
                .iter()
                .map(|c| {
                    vec![c.name.clone(), c.provisioner.clone(), if c.default { "yes".into() } else { String::new() }]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if !r.pvcs.is_empty() {
        s.push_str("\nPersistentVolumeClaims\n");
        s.push_str(&table(
            &["namespace", "claim", "phase", "capacity", "class"],
            r.pvcs
                .iter()
                .map(|p| {
                    vec![p.namespace.clone(), p.name.clone(), p.phase.clone(), p.capacity.clone(), p.class.clone()]
                })
                .collect(),
        ));
        s.push('\n');
    }
    if let Some(k) = &r.kafka {
        s.push_str(&format!(
            "\nKafka {}/{}: {} — Kafka {}, {} broker{}\n",
            k.namespace,
            k.name,
            if k.ready { "Ready" } else { "NOT Ready" },
            k.version,
            k.brokers,
            if k.brokers == 1 { "" } else { "s" }
        ));
        for (l, a) in &k.bootstrap {
            s.push_str(&format!("  bootstrap {l}: {a}\n"));
        }
    }
    let t = &r.totals;
    s.push_str(&format!(
        "\nTotals: {} machine{}, {} cores, {} memory, Ceph {} raw / ~{} usable\n",
        t.machines,
        if t.machines == 1 { "" } else { "s" },
        t.cores,
        human_iec(t.memory_bytes),
        human_si(t.ceph_raw_bytes),
        human_si(t.ceph_usable_bytes)
    ));
    s
}
