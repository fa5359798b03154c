//! Gathering the status report, read-only and in parallel: MAAS for the machines it deploys
//! (a pre-installed machine is listed as such, with its address), the Kubernetes API for nodes, Ceph, pools, StorageClasses, PVCs and Kafka (no SSH).

use super::report::*;
use crate::config::Rook;
use crate::engine::context::Ctx;
use crate::maas::Status;
use crate::render::{rook, strimzi};
use serde_json::Value;

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
    let macs: Vec<String> = cx.cluster.machines.iter().filter_map(|m| m.mac.clone()).collect();
    let preinstalled = || -> Vec<MachineRow> {
        cx.cluster
            .machines
            .iter()
            .filter(|m| m.is_preinstalled())
            .map(|m| MachineRow {
                hostname: m.hostname.clone(),
                status: PREINSTALLED.into(),
                ip: m.address.clone().unwrap_or_default(),
                ..Default::default()
            })
            .collect()
    };
    let maas = match cx.maas() {
        Ok(maas) if !macs.is_empty() => maas,
        _ => return (preinstalled(), vec![]),
    };
    let found = match maas.whoami().await {
        Err(e) => return (preinstalled(), vec![format!("MAAS: {e}")]),
        Ok(_) => match maas.machines_by_mac(&macs).await {
            Ok(f) => f,
            Err(e) => return (preinstalled(), vec![format!("MAAS: {e}")]),
        },
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for m in &cx.cluster.machines {
        if m.is_preinstalled() {
            rows.extend(preinstalled().into_iter().filter(|r| r.hostname == m.hostname));
            continue;
        }
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
    let client = match crate::engine::phases::manifests::reach(cx).await {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let (why, hint) = text.split_once("\n  hint: ").unwrap_or((text.as_str(), ""));
            r.problems.push(format!("Kubernetes API unreachable: {why} — {hint}"));
            return;
        }
    };
    let a = cx.applier(client, crate::foundation::phase_id::PhaseId::Kubernetes, Default::default());
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
                if let Some(d) = c.pointer("/status/ceph/details").and_then(Value::as_object) {
                    ceph.details = d
                        .iter()
                        .map(|(k, v)| {
                            let msg = v["message"].as_str().unwrap_or("");
                            crate::foundation::text::printable(&format!("{k}: {msg}")).into_owned()
                        })
                        .collect();
                }
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
    // One read of the nodes for every NodePort the report shows.
    let exposed = cx.cluster.kafka.as_ref().is_some_and(|k| k.bridge.as_ref().is_some_and(|b| b.node_port.is_some()))
        || cx.cluster.database.as_ref().is_some_and(|d| d.node_port.is_some());
    let node = if exposed { crate::engine::phases::manifests::lan_address(&a).await } else { None };
    if let Some(k) = &cx.cluster.kafka {
        super::apps::gather(&a, k, node.as_deref(), r).await;
    }
    if let Some(d) = &cx.cluster.database {
        super::apps::database(&a, d, node.as_deref(), r).await;
    }
}

/// Gathers the status of every layer (MAAS and Kubernetes in parallel).
pub async fn gather(cx: &Ctx) -> StatusReport {
    let mut r = StatusReport { cluster: cx.cluster.name.clone(), ..Default::default() };
    let (maas, ()) = tokio::join!(maas_part(cx), kube_part(cx, &mut r));
    r.machines = maas.0;
    // MAAS knows nothing of a pre-installed machine: its size is its Node's capacity.
    for m in r.machines.iter_mut().filter(|m| m.status == PREINSTALLED && m.cores == 0) {
        if let Some(n) = r.nodes.iter().find(|n| n.name == m.hostname) {
            m.cores = n.cores;
            m.memory_mib = n.memory_bytes >> 20;
        }
    }
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
    r.advice = super::advice::advise(&r, &cx.cluster);
    r
}
