//! The MicroK8s and host command contract (`docs/microk8s.md`): the exact commands homelab
//! runs over SSH, and parsers for what they print, per MicroK8s version.

pub mod facts;
pub mod lvm;

pub use facts::{FACTS_SCRIPT, HostFacts, VgFacts, facts_cmd, parse_facts};

use crate::foundation::secrets::register;
use crate::ssh::{Cmd, Output};
use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use std::time::Duration;

/// MicroK8s releases up to 1.27 refuse a join when the control plane cannot resolve the
/// joining node's hostname to its IP; `/etc/hosts` entries fix it.
pub fn needs_host_entries(minor: (u32, u32)) -> bool {
    minor <= (1, 27)
}

/// The managed block homelab keeps in `/etc/hosts`.
pub const HOSTS_BEGIN: &str = "# homelab: begin (managed by homelab; entries for the cluster's machines)";
pub const HOSTS_END: &str = "# homelab: end";

/// `/etc/hosts` with homelab's block set to `entries` (ip, name), everything else unchanged.
pub fn hosts_with_block(current: &str, entries: &[(String, String)]) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in current.lines() {
        if line.trim() == HOSTS_BEGIN {
            inside = true;
            continue;
        }
        if line.trim() == HOSTS_END {
            inside = false;
            continue;
        }
        if !inside {
            out.push(line.to_owned());
        }
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    if !entries.is_empty() {
        out.push(HOSTS_BEGIN.to_owned());
        for (ip, name) in entries {
            out.push(format!("{ip} {name}"));
        }
        out.push(HOSTS_END.to_owned());
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

pub fn write_hosts_cmd(content: &str) -> Cmd {
    Cmd::new(["tee", "/etc/hosts"]).sudo().stdin(content.as_bytes().to_vec())
}

pub fn cloud_init_wait_cmd(timeout: Duration) -> Cmd {
    Cmd::new(["cloud-init", "status", "--wait"]).timeout(timeout).read_only()
}

pub fn seed_wait_cmd(timeout: Duration) -> Cmd {
    Cmd::new(["snap", "wait", "system", "seed.loaded"]).sudo().timeout(timeout).read_only()
}

pub fn install_cmd(channel: &str, timeout: Duration) -> Cmd {
    Cmd::new(["snap", "install", "microk8s", "--classic", &format!("--channel={channel}")]).sudo().timeout(timeout)
}

pub fn refresh_cmd(channel: &str, timeout: Duration) -> Cmd {
    Cmd::new(["snap", "refresh", "microk8s", &format!("--channel={channel}")]).sudo().timeout(timeout)
}

/// `snap list microk8s`: the installed revision, its tracking channel and notes.
pub fn snap_list_cmd() -> Cmd {
    Cmd::new(["snap", "list", "microk8s"]).read_only()
}

/// The tracking channel and whether the snap is held (`held` in its Notes, snapd ≥ 2.58).
/// Not installed: an empty channel.
pub fn parse_snap_list(out: &Output) -> Result<(String, bool)> {
    if !out.ok() {
        if out.text().contains("no matching snaps installed") {
            return Ok((String::new(), false));
        }
        bail!("`snap list microk8s` failed: {}", out.text().trim());
    }
    let line = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("microk8s"))
        .ok_or_else(|| anyhow!("`snap list microk8s` lists no microk8s: {}", out.stdout.trim()))?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    let tracking = cols.get(3).copied().unwrap_or_default();
    if tracking.len() > 64 || !tracking.chars().all(|c| c.is_ascii_alphanumeric() || "./-_".contains(c)) {
        bail!("`snap list microk8s` gives an odd tracking channel `{tracking}`");
    }
    let held = cols.get(5).is_some_and(|n| n.split(',').any(|x| x == "held"));
    Ok((tracking.to_owned(), held))
}

/// Holds the snap: no auto-refresh (auto-refreshes have broken HA clusters; docs/day2.md §2.2).
pub fn hold_cmd() -> Cmd {
    Cmd::new(["snap", "refresh", "--hold=forever", "microk8s"]).sudo()
}

/// Where a round's datastore backup goes on the control plane.
pub fn backup_path(before: (u32, u32)) -> String {
    format!("/var/snap/microk8s/common/homelab-datastore-{}.{}.tar.gz", before.0, before.1)
}

/// Backs the datastore up (`microk8s dbctl backup`) before a round.
pub fn backup_cmd(path: &str, timeout: Duration) -> Cmd {
    Cmd::new(["microk8s", "dbctl", "backup", "-o", path]).sudo().timeout(timeout)
}

/// Whether a backup file is there (and not empty).
pub fn backup_exists_cmd(path: &str) -> Cmd {
    Cmd::new(["test", "-s", path]).sudo().read_only()
}

pub fn status_wait_cmd(timeout: Duration) -> Cmd {
    let secs = timeout.as_secs().max(1);
    Cmd::new(["microk8s", "status", "--wait-ready", "--timeout", &secs.to_string()])
        .sudo()
        .timeout(timeout + Duration::from_secs(30))
        .read_only()
}

pub fn addon_status_cmd() -> Cmd {
    Cmd::new(["microk8s", "status", "--format", "short"]).sudo().read_only()
}

pub fn enable_cmd(addon: &str, timeout: Duration) -> Cmd {
    Cmd::new(["microk8s", "enable", addon]).sudo().timeout(timeout)
}

pub fn nodes_cmd() -> Cmd {
    Cmd::new(["microk8s", "kubectl", "get", "nodes", "-o", "json"]).sudo().read_only()
}

/// The kubelet's arguments under MicroK8s, one per line.
pub const KUBELET_ARGS: &str = "/var/snap/microk8s/current/args/kubelet";

/// Reads the kubelet's arguments (to see its `--node-ip`).
pub fn kubelet_args_cmd() -> Cmd {
    Cmd::new(["cat", KUBELET_ARGS]).sudo().read_only()
}

/// The `--node-ip` the kubelet's arguments set, if any.
pub fn node_ip_of(args: &str) -> Option<&str> {
    args.lines().find_map(|l| l.trim().strip_prefix("--node-ip="))
}

/// Makes the kubelet report `addr` as the node's address (any other `--node-ip` replaced),
/// then restarts kubelite so the node registers with it: a maintainer's fix for a node on
/// several networks (canonical/microk8s#4477, docs/hosts.md).
pub fn pin_node_ip_cmd(addr: &str, timeout: Duration) -> Cmd {
    Cmd::new([
        "sh",
        "-c",
        "# homelab:node-ip\nset -e\nsed -i '/^--node-ip=/d' \"$1\"\necho \"--node-ip=$2\" >> \"$1\"\nsnap restart microk8s.daemon-kubelite",
        "homelab-node-ip",
        KUBELET_ARGS,
        addr,
    ])
    .sudo()
    .timeout(timeout)
}

/// A fresh token for one join, valid `ttl` (so a join that fails late can be retried).
pub fn add_node_cmd(ttl: Duration) -> Cmd {
    Cmd::new(["microk8s", "add-node", "--token-ttl", &ttl.as_secs().max(60).to_string(), "--format", "token-check"])
        .sudo()
}

pub fn join_cmd(url: &str, worker: bool, timeout: Duration) -> Cmd {
    let mut argv = vec!["microk8s".to_owned(), "join".to_owned(), url.to_owned()];
    if worker {
        argv.push("--worker".to_owned());
    }
    Cmd { argv, sudo: true, stdin: None, timeout, read_only: false }
}

pub fn config_cmd() -> Cmd {
    Cmd::new(["microk8s", "config"]).sudo().read_only()
}

/// `microk8s is running` on the first line (the exit code is 0 even when not running on
/// MicroK8s ≤ 1.27).
pub fn is_running(out: &Output) -> bool {
    out.stdout.lines().next().is_some_and(|l| l.trim() == "microk8s is running")
}

/// A worker answers `status` with this text (and exit 0).
pub fn is_worker_status(out: &Output) -> bool {
    out.text().contains("acting as a node in a cluster")
}

/// Whether `addon` is enabled, from `microk8s status --format short` (`core/dns: enabled`).
pub fn addon_enabled(short_status: &str, addon: &str) -> bool {
    short_status.lines().any(|l| {
        let l = l.trim();
        let (name, state) = match l.rsplit_once(':') {
            Some(x) => x,
            None => return false,
        };
        let name = name.rsplit('/').next().unwrap_or(name).trim();
        name == addon && state.trim() == "enabled"
    })
}

/// A node as `kubectl get nodes -o json` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: Option<String>,
    pub ready: bool,
    pub version: String,
    pub worker: bool,
}

/// `kubectl get nodes -o json` prints a `kind: List` of Nodes (not a `NodeList`).
#[derive(Deserialize)]
struct NodeList {
    items: Vec<k8s_openapi::api::core::v1::Node>,
}

pub fn parse_nodes(out: &Output) -> Result<Vec<NodeInfo>> {
    if !out.ok() {
        bail!("`microk8s kubectl get nodes` failed (exit {:?}): {}", out.code, out.text());
    }
    let list: NodeList = serde_json::from_str(&out.stdout).map_err(|e| {
        anyhow!(
            "`microk8s kubectl get nodes -o json` printed something that is not a node list ({e}): {:?}",
            out.stdout.chars().take(160).collect::<String>()
        )
    })?;
    Ok(list
        .items
        .into_iter()
        .map(|n| {
            let st = n.status.unwrap_or_default();
            NodeInfo {
                name: n.metadata.name.unwrap_or_default(),
                internal_ip: st
                    .addresses
                    .unwrap_or_default()
                    .into_iter()
                    .find(|a| a.type_ == "InternalIP")
                    .map(|a| a.address),
                ready: st.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True"),
                version: st.node_info.map(|i| i.kubelet_version).unwrap_or_default(),
                worker: n.metadata.labels.is_some_and(|l| l.contains_key("node.kubernetes.io/microk8s-worker")),
            }
        })
        .collect())
}

/// The `<token>/<check>` of `add-node --format token-check`, registered as a secret at once.
pub fn parse_token(out: &Output) -> Result<String> {
    let line = out.stdout.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if !out.ok() || !line.contains('/') {
        bail!("`microk8s add-node` did not print a token (exit {:?}): {}", out.code, out.text());
    }
    register(line);
    if let Some((t, _)) = line.split_once('/') {
        register(t);
    }
    Ok(line.to_owned())
}

/// Why a join failed, from its exit code and text (`docs/microk8s.md` §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinFailure {
    /// Token unknown, used up or expired: get a fresh one and retry.
    InvalidToken,
    /// The control plane cannot resolve the joining node's hostname (≤ 1.27).
    HostnameResolution,
    /// The node is already a dqlite member (a reinstalled node, or a repeated join).
    AlreadyKnown,
    /// The cluster agent's certificate does not match the fingerprint.
    CertMismatch,
    /// Port 25000 unreachable.
    Unreachable,
    SameIp,
    Other(String),
}

pub fn classify_join(out: &Output) -> Option<JoinFailure> {
    if out.ok() {
        return None;
    }
    let t = out.text();
    Some(if t.contains("Invalid token") {
        JoinFailure::InvalidToken
    } else if t.contains("does not resolve to the IP") || t.contains("should resolve to") {
        JoinFailure::HostnameResolution
    } else if t.contains("already known to dqlite") {
        JoinFailure::AlreadyKnown
    } else if out.code == Some(4) || t.contains("Could not verify the identity") {
        JoinFailure::CertMismatch
    } else if t.contains("same IP") {
        JoinFailure::SameIp
    } else if t.contains("Connection refused") || t.contains("TimeoutError") || t.contains("timed out") {
        JoinFailure::Unreachable
    } else {
        JoinFailure::Other(t.lines().last().unwrap_or("").to_owned())
    })
}

/// Rewrites the kubeconfig MicroK8s printed: server at `server` (the address homelab knows),
/// names `homelab-<cluster>` for cluster, user and context. Credentials are registered as
/// secrets.
pub fn rewrite_kubeconfig(text: &str, server: &str, name: &str) -> Result<String> {
    if !text.trim_start().starts_with("apiVersion:") {
        bail!(
            "`microk8s config` did not print a kubeconfig (is this a worker node?): {:?}",
            text.lines().next().unwrap_or("")
        );
    }
    let mut v: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| anyhow!("the kubeconfig from MicroK8s is not valid YAML: {e}"))?;
    for u in v.get("users").and_then(|u| u.as_array()).into_iter().flatten() {
        for k in ["token", "client-key-data", "client-certificate-data", "password"] {
            if let Some(s) = u.get("user").and_then(|x| x.get(k)).and_then(|x| x.as_str()) {
                register(s);
            }
        }
    }
    let shape = |e: String| {
        anyhow!(
            "the kubeconfig from MicroK8s has an unexpected shape ({e})\n  hint: run `sudo microk8s config` on the control plane and check its output"
        )
    };
    use crate::foundation::json::set;
    for (list, fields) in [
        ("clusters", vec![(vec!["name"], name), (vec!["cluster", "server"], server)]),
        ("users", vec![(vec!["name"], name)]),
        ("contexts", vec![(vec!["name"], name), (vec!["context", "cluster"], name), (vec!["context", "user"], name)]),
    ] {
        let items = v.get_mut(list).and_then(|a| a.as_array_mut()).ok_or_else(|| shape(format!("no `{list}` list")))?;
        if items.is_empty() {
            return Err(shape(format!("`{list}` is empty")));
        }
        for item in items {
            for (path, value) in &fields {
                set(item, path, (*value).into()).map_err(|e| shape(format!("{list}: {e}")))?;
            }
        }
    }
    set(&mut v, &["current-context"], name.into()).map_err(shape)?;
    serde_saphyr::to_string(&v).map_err(|e| anyhow!("cannot write the kubeconfig: {e}"))
}

/// The `server:` of the first cluster of a kubeconfig.
pub fn kubeconfig_server(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    v["clusters"][0]["cluster"]["server"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output { code: Some(code), stdout: stdout.into(), stderr: stderr.into() }
    }

    #[test]
    fn snap_list_gives_channel_and_hold() {
        let o = out(
            0,
            "Name      Version   Rev   Tracking     Publisher   Notes\nmicrok8s  v1.26.3  7000  1.26/stable  canonical✓  classic,held\n",
            "",
        );
        assert_eq!(parse_snap_list(&o).unwrap(), ("1.26/stable".into(), true));
        let o = out(
            0,
            "Name      Version   Rev   Tracking     Publisher   Notes\nmicrok8s  v1.27.3  7000  1.27/stable  canonical✓  classic\n",
            "",
        );
        assert_eq!(parse_snap_list(&o).unwrap(), ("1.27/stable".into(), false));
        assert_eq!(
            parse_snap_list(&out(1, "", "error: no matching snaps installed\n")).unwrap(),
            (String::new(), false)
        );
        assert!(parse_snap_list(&out(0, "microk8s v1 1 $(rm) x y\n", "")).is_err());
    }

    #[test]
    fn status_and_addons() {
        assert!(is_running(&out(0, "microk8s is running\nhigh-availability: no\n", "")));
        // ≤ 1.27 exits 0 when not running: the first line decides.
        assert!(!is_running(&out(0, "microk8s is not running. Use microk8s inspect for a deeper inspection.\n", "")));
        assert!(is_worker_status(&out(
            0,
            "This MicroK8s deployment is acting as a node in a cluster.\nPlease use the control plane node.\n",
            ""
        )));
        let short =
            "microk8s is running\naddons:\ncore/dns: enabled\ncore/ha-cluster: enabled\ncore/rook-ceph: disabled\n";
        assert!(addon_enabled(short, "dns"));
        assert!(!addon_enabled(short, "rook-ceph"));
        assert!(!addon_enabled(short, "ingress"));
    }

    #[test]
    fn join_failures_from_the_docs() {
        assert_eq!(
            classify_join(&out(6, "Connection failed. Invalid token (500).\n", "")),
            Some(JoinFailure::InvalidToken)
        );
        assert_eq!(
            classify_join(&out(
                6,
                "Connection failed. The joining node (10.0.0.12) is already known to dqlite (504).\n",
                ""
            )),
            Some(JoinFailure::AlreadyKnown)
        );
        assert_eq!(
            classify_join(&out(
                6,
                "Connection failed. Failed to retrieve dqlite cluster nodes: the joining node (10.0.0.12) is already known to dqlite (500).\n",
                ""
            )),
            Some(JoinFailure::AlreadyKnown)
        );
        assert_eq!(
            classify_join(&out(
                6,
                "Connection failed. The hostname (kvm4) of the joining node does not resolve to the IP \"10.0.0.12\". Refusing join (400).\n",
                ""
            )),
            Some(JoinFailure::HostnameResolution)
        );
        assert_eq!(
            classify_join(&out(
                4,
                "Joining cluster failed. Could not verify the identity of 10.0.0.11. Use '--skip-verify' to skip server certificate check.\n",
                ""
            )),
            Some(JoinFailure::CertMismatch)
        );
        assert_eq!(
            classify_join(&out(1, "", "Traceback ...\nConnectionRefusedError: [Errno 111] Connection refused\n")),
            Some(JoinFailure::Unreachable)
        );
        assert_eq!(classify_join(&out(0, "Successfully joined the cluster.\n", "")), None);
    }

    #[test]
    fn hosts_block_is_idempotent_and_keeps_other_lines() {
        let cur = "127.0.0.1 localhost\n::1 ip6-localhost\n";
        let e = vec![("10.0.0.11".to_string(), "maas".to_string()), ("10.0.0.12".to_string(), "kvm4".to_string())];
        let once = hosts_with_block(cur, &e);
        assert!(once.starts_with(cur.trim_end()));
        assert_eq!(hosts_with_block(&once, &e), once);
        let changed = hosts_with_block(&once, &e[..1]);
        assert!(!changed.contains("kvm4") && changed.contains("127.0.0.1 localhost"));
    }

    #[test]
    fn kubeconfig_is_renamed_and_repointed() {
        let kc = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EK\n    server: https://192.168.1.5:16443\n  name: microk8s-cluster\ncontexts:\n- context:\n    cluster: microk8s-cluster\n    user: admin\n  name: microk8s\ncurrent-context: microk8s\nkind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    token: SeCrEtAdMiNtOkEn123\n";
        let out = rewrite_kubeconfig(kc, "https://10.0.0.11:16443", "homelab-garage").unwrap();
        assert_eq!(kubeconfig_server(&out).as_deref(), Some("https://10.0.0.11:16443"));
        assert!(out.contains("current-context: homelab-garage"), "{out}");
        assert_eq!(crate::foundation::secrets::redact("x SeCrEtAdMiNtOkEn123"), "x [redacted]");
        assert!(rewrite_kubeconfig("This MicroK8s deployment is acting as a node in a cluster.", "s", "n").is_err());
    }

    #[test]
    fn facts_parse() {
        let o = out(
            0,
            "hostname=kvm4\ncloud_init=done\nhosts_b64=MTI3LjAuMC4xIGxvY2FsaG9zdAo=\nceph_dev=present\nceph_sig=\nlvm2=yes\nrbd=yes\nclock=yes\nsnap_tracking=1.26/stable\nresolve_maas=10.0.0.11\nresolve_kvm5=\n",
            "",
        );
        let f = parse_facts(&o).unwrap();
        assert_eq!(f.hostname, "kvm4");
        assert_eq!(f.etc_hosts, "127.0.0.1 localhost\n");
        assert_eq!(f.ceph_present, Some(true));
        assert_eq!(f.ceph_signature, "");
        assert_eq!(f.snap_tracking, "1.26/stable");
        assert_eq!(f.resolves["maas"], "10.0.0.11");
        assert_eq!(f.resolves["kvm5"], "");
        assert!(parse_facts(&out(0, "garbage", "")).is_err());
    }
}

/// `microk8s status` (plain): the datastore members it prints.
pub fn datastore_cmd() -> Cmd {
    Cmd::new(["microk8s", "status"]).sudo().read_only()
}

/// The dqlite members `microk8s status` lists (IPs), and whether it reports HA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datastore {
    pub ha: bool,
    pub voters: Vec<String>,
    pub standby: Vec<String>,
}

impl Datastore {
    pub fn has(&self, ip: &str) -> bool {
        self.voters.iter().chain(&self.standby).any(|v| v == ip)
    }
}

pub fn parse_datastore(out: &Output) -> Result<Datastore> {
    if !is_running(out) {
        bail!("`microk8s status` did not say it is running: {}", out.text());
    }
    let ips = |line: &str| -> Vec<String> {
        line.split_whitespace()
            .filter(|w| *w != "none")
            .filter_map(|w| w.rsplit_once(':').map(|(ip, _)| ip).or(Some(w)))
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_owned)
            .collect()
    };
    let mut d = Datastore::default();
    for l in out.stdout.lines() {
        let l = l.trim();
        if let Some(v) = l.strip_prefix("high-availability:") {
            d.ha = v.trim() == "yes";
        } else if let Some(v) = l.strip_prefix("datastore master nodes:") {
            d.voters = ips(v);
        } else if let Some(v) = l.strip_prefix("datastore standby nodes:") {
            d.standby = ips(v);
        }
    }
    Ok(d)
}

pub fn leave_cmd(timeout: Duration) -> Cmd {
    Cmd::new(["microk8s", "leave"]).sudo().timeout(timeout)
}

pub fn remove_node_cmd(node: &str, force: bool) -> Cmd {
    let mut argv = vec!["microk8s".to_owned(), "remove-node".to_owned(), node.to_owned()];
    if force {
        argv.push("--force".to_owned());
    }
    Cmd { argv, sudo: true, stdin: None, timeout: Duration::from_secs(120), read_only: false }
}

/// What `microk8s remove-node` answered (docs/day2.md §1.7, the table of outputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    Removed,
    /// "does not exist in Kubernetes" (exit 1, also after `--force` removed the dqlite entry).
    NotInKubernetes,
    /// Still a dqlite member: `leave` first, or `--force` for a dead node.
    StillInDqlite,
    /// Asked on a worker.
    OnWorker,
    Failed(String),
}

pub fn classify_remove(out: &Output) -> RemoveOutcome {
    let t = out.text();
    if out.ok() {
        RemoveOutcome::Removed
    } else if t.contains("does not exist in Kubernetes") {
        RemoveOutcome::NotInKubernetes
    } else if t.contains("is registered with dqlite") {
        RemoveOutcome::StillInDqlite
    } else if t.contains("Please use microk8s leave") {
        RemoveOutcome::OnWorker
    } else {
        RemoveOutcome::Failed(t)
    }
}

/// `microk8s leave` refused: the node holds the only copy of the datastore (exit 3).
pub fn leave_refused_only_copy(out: &Output) -> bool {
    out.code == Some(3) || out.text().contains("only copy of the Kubernetes database")
}
