//! The `microk8s` command on a simulated machine, per version as docs/microk8s.md describes
//! it: status, add-node tokens with their TTL, join (the cluster agent's checks in order),
//! leave, remove-node, config, kubectl, dbctl, enable/disable, the ≤ 1.27 hostname rule.

use super::SimHostsConfig;
use super::remote::{SimRemote, hex, host_running, join_settle, minor_of, out};
use super::state::{DqRole, cluster_of};
use crate::ssh::{Cmd, Output};
use base64::Engine as _;
use std::time::{Duration, Instant};

impl SimRemote {
    pub(super) fn microk8s(&self, args: &[&str], cmd: &Cmd, cfg: &SimHostsConfig) -> anyhow::Result<Output> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let me = w.hosts.get(&self.ip).cloned().ok_or_else(|| anyhow::anyhow!("host vanished"))?;
        let (ch, installed_at) = me.snap.clone().unwrap_or_else(|| (String::new(), Instant::now()));
        let minor = minor_of(&ch);
        let running = installed_at.elapsed() >= cfg.install_time && !me.broken;
        let is_worker = me.worker && me.joined.is_some() && !me.left;
        let cp_ip = cluster_of(&me);
        let worker_msg = |what: &str| {
            format!("This MicroK8s deployment is acting as a node in a cluster.\nPlease use the {what}.\n")
        };
        Ok(match args {
            ["status", rest @ ..] => {
                if is_worker {
                    return Ok(out(0, worker_msg("control plane node"), ""));
                }
                if !running {
                    let wait = rest.contains(&"--wait-ready") && !me.broken;
                    if wait {
                        let left = cfg.install_time.saturating_sub(installed_at.elapsed());
                        drop(w);
                        std::thread::sleep(left.min(cmd.timeout));
                        return self.microk8s(args, cmd, cfg);
                    }
                    let code = if minor >= (1, 28) { 1 } else { 0 };
                    return Ok(out(
                        code,
                        "microk8s is not running. Use microk8s inspect for a deeper inspection.\n",
                        "",
                    ));
                }
                let addons = w.addons.get(&cp_ip).cloned().unwrap_or_default();
                if rest.contains(&"short") {
                    let mut s = "microk8s is running\naddons:\n".to_owned();
                    for a in &addons {
                        s.push_str(&format!("core/{a}: enabled\n"));
                    }
                    for a in ["cert-manager", "ingress", "rook-ceph", "hostpath-storage"]
                        .iter()
                        .filter(|a| !addons.contains(**a))
                    {
                        s.push_str(&format!("core/{a}: disabled\n"));
                    }
                    out(0, s, "")
                } else {
                    let mut m = w.members(&cp_ip);
                    if m.is_empty() {
                        m.push((self.ip.clone(), DqRole::Voter));
                    }
                    let list = |role: DqRole| {
                        let l: Vec<String> =
                            m.iter().filter(|(_, r)| *r == role).map(|(ip, _)| format!("{ip}:19001")).collect();
                        if l.is_empty() { "none".to_owned() } else { l.join(" ") }
                    };
                    let voters = m.iter().filter(|(_, r)| *r == DqRole::Voter).count();
                    out(
                        0,
                        format!(
                            "microk8s is running\nhigh-availability: {}\n  datastore master nodes: {}\n  datastore standby nodes: {}\n",
                            if voters > 2 { "yes" } else { "no" },
                            list(DqRole::Voter),
                            list(DqRole::Standby)
                        ),
                        "",
                    )
                }
            }
            ["enable", addon] => {
                if is_worker {
                    return Ok(out(1, worker_msg("master node"), ""));
                }
                let known = [
                    "dns",
                    "ingress",
                    "cert-manager",
                    "helm",
                    "helm3",
                    "ha-cluster",
                    "hostpath-storage",
                    "metrics-server",
                    "rbac",
                    "registry",
                    "dashboard",
                    "metallb",
                    "observability",
                    "rook-ceph",
                ];
                if !known.contains(addon) {
                    return Ok(out(
                        1,
                        "",
                        format!(
                            "Infer repository core for addon {addon}\nAddon {addon} was not found in any repository\n"
                        ),
                    ));
                }
                let set = w.addons.entry(cp_ip).or_default();
                if !set.insert((*addon).to_owned()) {
                    return Ok(out(
                        0,
                        format!("Addon core/{addon} is already enabled\n"),
                        "Infer repository core for addon {addon}\n",
                    ));
                }
                out(
                    0,
                    format!("Enabling {addon}\nApplying manifest\n{addon} is enabled\n"),
                    format!("Infer repository core for addon {addon}\n"),
                )
            }
            ["dbctl", "backup", "-o", path] => {
                if !running {
                    return Ok(out(1, "", "microk8s is not running. Use microk8s inspect for a deeper inspection.\n"));
                }
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.files.insert((*path).to_owned());
                }
                out(0, format!("Backup of the datastore written to {path}\n"), "")
            }
            ["kubectl", "get", "nodes", "-o", "json"] => {
                if is_worker {
                    return Ok(out(
                        0,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s kubectl on the master.\n",
                        "",
                    ));
                }
                if !running {
                    return Ok(out(
                        1,
                        "",
                        "The connection to the server 127.0.0.1:16443 was refused - did you specify the right host or port?\n",
                    ));
                }
                let items: Vec<serde_json::Value> = w
                    .hosts
                    .values()
                    .filter(|h| !h.removed && (cluster_of(h) == cp_ip || (h.left && h.joined.as_ref().is_some_and(|(c, _)| *c == cp_ip))))
                    .map(|h| {
                        let ready = !h.left && !h.off && host_running(h, cfg) && h.joined.as_ref().map(|(_, t)| t.elapsed() >= join_settle(cfg, h.worker)).unwrap_or(true);
                        let minor = minor_of(&h.snap.as_ref().map(|(c, _)| c.clone()).unwrap_or_default());
                        let mut labels = serde_json::Map::new();
                        labels.insert("kubernetes.io/hostname".into(), h.hostname.to_lowercase().into());
                        labels.insert(if h.worker { "node.kubernetes.io/microk8s-worker".into() } else { "node.kubernetes.io/microk8s-controlplane".into() }, "microk8s-node".into());
                        serde_json::json!({
                            "metadata": {"name": h.hostname.to_lowercase(), "labels": labels},
                            "status": {
                                "addresses": [{"type": "InternalIP", "address": h.node_address()}, {"type": "Hostname", "address": h.hostname}],
                                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                                "nodeInfo": {"kubeletVersion": format!("v{}.{}.3", minor.0, minor.1)},
                            }
                        })
                    })
                    .collect();
                out(0, serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(), "")
            }
            ["add-node", rest @ ..] => {
                if is_worker {
                    return Ok(out(
                        1,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s add-node on the master.\n",
                        "",
                    ));
                }
                let ttl = rest
                    .iter()
                    .position(|a| *a == "--token-ttl")
                    .and_then(|i| rest.get(i + 1))
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                w.secret_counter += 1;
                let seed = w.secret_counter
                    ^ (self.ip.len() as u64) << 8
                    ^ std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as u64)
                        .unwrap_or(7);
                let token = hex(32, seed);
                let check = hex(12, seed ^ 0xabc);
                let expiry = if ttl > 0 {
                    Instant::now() + Duration::from_secs(ttl)
                } else {
                    Instant::now() + Duration::from_secs(3600)
                };
                w.tokens.insert(token.clone(), (self.ip.clone(), expiry));
                let default_ip = self.ip.clone();
                if rest.contains(&"token-check") {
                    out(0, format!("{token}/{check}\n"), "")
                } else {
                    out(
                        0,
                        format!(
                            "From the node you wish to join to this cluster, run the following:\nmicrok8s join {default_ip}:25000/{token}/{check}\n"
                        ),
                        "",
                    )
                }
            }
            ["join", conn, rest @ ..] => {
                let worker = rest.contains(&"--worker");
                let parts: Vec<&str> = conn.split('/').collect();
                let host_port = parts.first().copied().unwrap_or("");
                let target_ip = host_port.split(':').next().unwrap_or("");
                if minor >= (1, 29) && target_ip.parse::<std::net::IpAddr>().is_err() {
                    return Ok(out(1, "Invalid connection: Invalid master IP\n", ""));
                }
                let token = parts.get(1).copied().unwrap_or("");
                let Some(cp) = w.hosts.get(target_ip).cloned() else {
                    return Ok(out(
                        1,
                        "",
                        "Traceback (most recent call last):\n  ...\nConnectionRefusedError: [Errno 111] Connection refused\n",
                    ));
                };
                let contacting = format!("Contacting cluster at {target_ip}\n");
                // Server-side order: consume token → HA → same IP → hostname → dqlite.
                if w.faults.invalid_token_once {
                    w.faults.invalid_token_once = false;
                    w.tokens.remove(token);
                    return Ok(out(6, format!("{contacting}Connection failed. Invalid token (500).\n"), ""));
                }
                match w.tokens.get(token) {
                    Some((issuer, exp)) if issuer == target_ip && *exp > Instant::now() => {}
                    _ => return Ok(out(6, format!("{contacting}Connection failed. Invalid token (500).\n"), "")),
                }
                if target_ip == self.ip {
                    return Ok(out(
                        6,
                        format!(
                            "{contacting}Connection failed. The joining node has the same IP ({}) as the node we contact (503).\n",
                            self.ip
                        ),
                        "",
                    ));
                }
                let cp_minor = cp.snap.as_ref().map(|(c, _)| minor_of(c)).unwrap_or(minor);
                if cp_minor <= (1, 27) {
                    let resolves = cp.etc_hosts.lines().filter(|l| !l.trim_start().starts_with('#')).any(|l| {
                        let mut it = l.split_whitespace();
                        it.next() == Some(self.ip.as_str()) && it.any(|n| n.eq_ignore_ascii_case(&me.hostname))
                    });
                    if !resolves {
                        return Ok(out(
                            6,
                            format!(
                                "{contacting}Connection failed. The hostname ({}) of the joining node does not resolve to the IP \"{}\". Refusing join (400).\n",
                                me.hostname, self.ip
                            ),
                            "",
                        ));
                    }
                }
                if me.joined.is_some() && !me.worker {
                    let text = if cp_minor >= (1, 29) {
                        format!(
                            "Connection failed. Failed to retrieve dqlite cluster nodes: the joining node ({}) is already known to dqlite (500).\n",
                            self.ip
                        )
                    } else {
                        format!("Connection failed. The joining node ({}) is already known to dqlite (504).\n", self.ip)
                    };
                    return Ok(out(6, format!("{contacting}{text}"), ""));
                }
                let cluster = cluster_of(&cp);
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    h.joined = Some((cluster.clone(), Instant::now()));
                    h.worker = worker;
                    h.left = false;
                    h.removed = false;
                }
                if w.dqlite.get(&cluster).is_none_or(|m| m.is_empty()) {
                    w.add_member(&cluster, &cluster);
                }
                if !worker {
                    w.add_member(&cluster, &self.ip);
                }
                drop(w);
                std::thread::sleep(join_settle(cfg, worker).min(cmd.timeout));
                let done = if minor >= (1, 29) { "Successfully joined the cluster.\n" } else { "" };
                if worker {
                    out(
                        0,
                        format!(
                            "{contacting}\nThe node has joined the cluster and will appear in the nodes list in a few seconds.\n\nThis worker node gets automatically configured with the API server endpoints.\n{done}"
                        ),
                        "",
                    )
                } else {
                    out(
                        0,
                        format!("{contacting}Waiting for this node to finish joining the cluster. .. .. ..\n{done}"),
                        "",
                    )
                }
            }
            ["kubectl", "-n", ns, "exec", target, "--", rest @ ..] => {
                let Some(hook) = w.exec.clone() else {
                    return Ok(out(1, "", "error: unable to upgrade connection: container not found\n"));
                };
                drop(w);
                hook(ns, target, rest)
            }
            ["leave"] => {
                let members = w.members(&cp_ip);
                let me_voter = members.iter().any(|(ip, r)| *ip == self.ip && *r == DqRole::Voter);
                let voters = members.iter().filter(|(_, r)| *r == DqRole::Voter).count();
                let others =
                    w.hosts.values().filter(|h| h.ip != self.ip && !h.removed && cluster_of(h) == cp_ip).count();
                if !me.worker && me_voter && voters == 1 && others > 0 {
                    return Ok(out(
                        3,
                        "This node currently holds the only copy of the Kubernetes database so it cannot leave the cluster.\nTo remove this node you can either first remove all other nodes with 'microk8s remove-node' or\nform a highly available cluster by adding at least three nodes.\n",
                        "",
                    ));
                }
                w.remove_member(&cp_ip, &self.ip);
                if let Some(h) = w.hosts.get_mut(&self.ip) {
                    // The Node object stays in the cluster it left (NotReady) until remove-node.
                    if h.joined.is_none() {
                        h.joined = Some((h.ip.clone(), Instant::now()));
                    }
                    h.left = true;
                }
                drop(w);
                std::thread::sleep(cfg.join_time.min(cmd.timeout));
                out(0, "Generating new cluster certificates.\nWaiting for node to start. \n", "")
            }
            ["remove-node", rest @ ..] => {
                if is_worker {
                    return Ok(out(
                        1,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use microk8s leave.\n",
                        "",
                    ));
                }
                let (node, force) = match rest {
                    [] => return Ok(out(1, "Please provide the node you want to remove.\n", "")),
                    [n] => (*n, false),
                    [n, "--force"] => (*n, true),
                    _ => return Ok(out(1, "Please provide the node and the optional --force flag.\n", "")),
                };
                let target = w
                    .hosts
                    .values()
                    .find(|h| {
                        (h.hostname.eq_ignore_ascii_case(node) || h.ip == node)
                            && h.joined.as_ref().is_some_and(|(c, _)| *c == cp_ip)
                            || (h.ip == cp_ip && (h.hostname.eq_ignore_ascii_case(node) || h.ip == node))
                    })
                    .cloned();
                let members = w.members(&cp_ip);
                match target {
                    Some(t) if !t.removed => {
                        let in_dqlite = members.iter().any(|(ip, _)| *ip == t.ip);
                        if in_dqlite && !force {
                            return Ok(out(
                                1,
                                format!(
                                    "Removal failed. Node {node} is registered with dqlite. Please, run first 'microk8s leave' on the departing node. \nIf the node is not available anymore and will never attempt to join the cluster in the future use the '--force' flag \nto unregister the node while removing it.\n"
                                ),
                                "",
                            ));
                        }
                        if in_dqlite {
                            w.remove_member(&cp_ip, &t.ip);
                        }
                        if let Some(h) = w.hosts.get_mut(&t.ip) {
                            h.removed = true;
                        }
                        out(0, "", "")
                    }
                    t => {
                        let mut s = format!("Node {node} does not exist in Kubernetes.\n");
                        if force {
                            s.push_str(&format!("Attempting to remove {node} from dqlite.\n"));
                            if let Some(t) = t
                                && w.remove_member(&cp_ip, &t.ip)
                            {
                                s.push_str("Removing node entry found in dqlite.\n");
                            }
                        }
                        out(1, s, "")
                    }
                }
            }
            ["config"] => {
                if is_worker {
                    return Ok(out(
                        0,
                        "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s config on the master.\n",
                        "",
                    ));
                }
                let token = format!("simadmintoken{}", hex(24, self.ip.len() as u64 * 977));
                out(
                    0,
                    format!(
                        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://{}:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    token: {token}\n\n",
                        base64::engine::general_purpose::STANDARD
                            .encode(self.cfg.api_ca_pem.as_deref().unwrap_or("simulated CA")),
                        self.ip
                    ),
                    "",
                )
            }
            _ => out(1, "", format!("microk8s: unknown command {}\n", args.join(" "))),
        })
    }
}
