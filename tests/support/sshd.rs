//! Test hosts behind a real OpenSSH server: each host is an `sshd` on its own loopback
//! address, in its own UTS and mount namespace (its own hostname and /etc/hosts), with a real
//! blank block device (a loop device over a sparse file) bound at /dev/vgroot/ceph, and the
//! stand-in `snap`/`microk8s` scripts of tests/support/fakebin on its PATH.
//!
//! Needs root, sshd, unshare and losetup; without them the tests print a notice and skip
//! (CI sets HOMELAB_REQUIRE_ALL, which turns the skip into a failure).

#![allow(dead_code)]

use homelab::config::model::HostKeyChecking;
use homelab::ssh::openssh_impl::SshOptions;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PORT: u16 = 2222;

pub struct TestHost {
    pub hostname: String,
    pub ip: String,
    pub state: PathBuf,
    pub loop_dev: String,
    sshd: std::sync::Mutex<Option<Child>>,
    config: PathBuf,
    host_key: PathBuf,
    image: PathBuf,
    /// An address this host added to `lo` (see `SshLab::start_relay_lan`), removed on drop.
    added_addr: bool,
}

pub struct SshLab {
    pub dir: tempfile::TempDir,
    pub cluster: PathBuf,
    pub hosts: Vec<TestHost>,
    pub client_key: PathBuf,
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether this machine can run the real-sshd tests; prints why not.
pub fn available() -> bool {
    let why = if rustix::process::geteuid().as_raw() != 0 {
        Some("not running as root (namespaces, loop devices and sshd need it)")
    } else if !Path::new("/usr/sbin/sshd").exists() {
        Some("/usr/sbin/sshd is missing (apt-get install openssh-server)")
    } else if Command::new("unshare").arg("--version").output().is_err()
        || Command::new("losetup").arg("--version").output().is_err()
    {
        Some("unshare/losetup are missing (util-linux)")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("ip is missing (apt-get install iproute2)")
    } else if Command::new("ssh").arg("-V").output().is_err() {
        Some("the ssh client is missing (apt-get install openssh-client)")
    } else {
        None
    };
    match why {
        None => true,
        Some(w) => {
            assert!(std::env::var_os("HOMELAB_REQUIRE_ALL").is_none(), "real-sshd tests cannot run: {w}");
            eprintln!("notice: skipping the real-sshd tests: {w}");
            false
        }
    }
}

fn fakebin() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/fakebin")
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback /24 no other test process uses.
fn subnet() -> (u32, u32) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    (20 + (pid % 200), 1 + ((pid / 200 + n * 7) % 250))
}

impl SshLab {
    pub fn start(names: &[&str]) -> SshLab {
        SshLab::start_with(names, None)
    }

    /// Hosts whose sshd hands every command to the simulated hosts behind `relay` (the
    /// URL of `sim::hosts_http`) through `homelab-testlab __ssh-relay`: the SSH is real, the
    /// MicroK8s, dqlite and Ceph behind it are the simulators'.
    /// `relay_bin` is the `homelab-testlab` binary.
    pub fn start_relay(names: &[&str], relay: &str, relay_bin: &Path) -> SshLab {
        SshLab::start_with(names, Some((relay, relay_bin)))
    }

    /// As `start_relay`, but the hosts in `lan` listen on an address outside 127.0.0.0/8 (in
    /// 198.18.0.0/15, the range set aside for network tests), added to `lo` for the test's
    /// life: an address homelab accepts for a pre-installed machine, which loopback is not.
    pub fn start_relay_lan(names: &[&str], lan: &[&str], relay: &str, relay_bin: &Path) -> SshLab {
        SshLab::start_on(names, lan, Some((relay, relay_bin)))
    }

    fn start_with(names: &[&str], relay: Option<(&str, &Path)>) -> SshLab {
        SshLab::start_on(names, &[], relay)
    }

    fn start_on(names: &[&str], lan: &[&str], relay: Option<(&str, &Path)>) -> SshLab {
        let dir = tempfile::Builder::new().prefix("hl-ssh").tempdir().unwrap();
        let cluster = dir.path().join("cluster");
        std::fs::create_dir_all(cluster.join("hosts")).unwrap();
        std::fs::create_dir_all(cluster.join("faults")).unwrap();
        let client_key = dir.path().join("id_ed25519");
        sh(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "homelab-test", "-f"])
            .arg(&client_key))
        .unwrap();
        std::fs::copy(client_key.with_extension("pub"), dir.path().join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::create_dir_all("/dev/vgroot").unwrap();
        std::fs::create_dir_all("/snap/bin").unwrap();
        let (a, b) = subnet();
        let mut lab = SshLab { dir, cluster, hosts: vec![], client_key };
        for (i, name) in names.iter().enumerate() {
            let on_lan = lan.contains(name);
            let ip =
                if on_lan { format!("198.{}.{b}.{}", 18 + a % 2, 10 + i) } else { format!("127.{a}.{b}.{}", 10 + i) };
            if on_lan {
                sh(Command::new("ip").args(["addr", "replace", &format!("{ip}/32"), "dev", "lo"])).unwrap();
            }
            let mut host = lab.make_host(name, &ip, relay);
            host.added_addr = on_lan;
            lab.hosts.push(host);
        }
        for h in &mut lab.hosts {
            h.start();
        }
        for h in &lab.hosts {
            h.wait_listening();
        }
        lab
    }

    fn make_host(&self, name: &str, ip: &str, relay: Option<(&str, &Path)>) -> TestHost {
        let state = self.cluster.join("hosts").join(ip);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("name"), name).unwrap();
        std::fs::write(
            state.join("hosts"),
            format!("127.0.0.1 localhost\n127.0.1.1 {name}\n\n::1 ip6-localhost ip6-loopback\n"),
        )
        .unwrap();
        std::fs::write(state.join("commands.log"), "").unwrap();
        let host_key = state.join("ssh_host_ed25519_key");
        sh(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&host_key)).unwrap();
        let image = self.dir.path().join(format!("{name}.img"));
        // Sparse: the size Ceph accepts (5 GiB at least), costing no disk space.
        sh(Command::new("truncate").args(["-s", "8G"]).arg(&image)).unwrap();
        let loop_dev = sh(Command::new("losetup").args(["-f", "--show"]).arg(&image)).unwrap();
        let config = state.join("sshd_config");
        let relay = match relay {
            Some((url, bin)) => {
                format!(" HL_RELAY={url} HL_NAME={name}\nForceCommand {} __ssh-relay", bin.display())
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "ListenAddress {ip}:{PORT}\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nMaxSessions 20\nLogLevel ERROR\nPidFile none\nSetEnv PATH=/snap/bin:/usr/sbin:/usr/bin:/sbin:/bin HL_STATE={st} HL_CLUSTER={cl} HL_IP={ip}{relay}\n",
                hk = host_key.display(),
                ak = self.dir.path().join("authorized_keys").display(),
                st = state.display(),
                cl = self.cluster.display(),
            ),
        )
        .unwrap();
        TestHost {
            hostname: name.into(),
            ip: ip.into(),
            state,
            loop_dev,
            sshd: Default::default(),
            config,
            host_key,
            image,
            added_addr: false,
        }
    }

    /// The `ssh:` line of a cluster file that reaches these hosts (root, accept-new).
    pub fn ssh_yaml(&self) -> String {
        format!(
            "ssh: {{user: root, port: {PORT}, identityFile: {}, knownHostsFile: {}, hostKeyChecking: accept-new}}",
            self.client_key.display(),
            self.dir.path().join("known_hosts").display()
        )
    }

    /// What homelab derives from that line, with `checking` and a control directory of its own.
    pub fn ssh_options(&self, checking: HostKeyChecking, control_dir: PathBuf) -> SshOptions {
        SshOptions {
            user: "root".into(),
            port: PORT,
            identity_file: Some(self.client_key.clone()),
            known_hosts_file: self.dir.path().join("known_hosts"),
            host_key_checking: checking,
            jump_host: None,
            control_dir,
            connect_timeout: Duration::from_secs(5),
            config_file: Some(PathBuf::from("/dev/null")),
        }
    }

    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts.iter().find(|h| h.hostname == name).unwrap()
    }

    pub fn host_mut(&mut self, name: &str) -> &mut TestHost {
        self.hosts.iter_mut().find(|h| h.hostname == name).unwrap()
    }

    /// A fault for the stand-in scripts (e.g. `invalid-token-once`).
    pub fn fault(&self, name: &str) {
        std::fs::write(self.cluster.join("faults").join(name), "").unwrap();
    }
}

impl TestHost {
    fn start(&self) {
        let script = format!(
            "set -e; hostname {name}; mount -t tmpfs tmpfs /snap/bin; cp {fb}/* /snap/bin/; chmod +x /snap/bin/*; \
             mount -t tmpfs tmpfs /dev/vgroot; touch /dev/vgroot/ceph; mount --bind {dev} /dev/vgroot/ceph; \
             mount --bind {hosts} /etc/hosts; exec /usr/sbin/sshd -D -e -f {cfg}",
            name = self.hostname,
            fb = fakebin().display(),
            dev = self.loop_dev,
            hosts = self.state.join("hosts").display(),
            cfg = self.config.display()
        );
        let log = std::fs::File::create(self.state.join("sshd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--uts", "--mount", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        *self.sshd.lock().unwrap() = Some(child);
    }

    fn wait_listening(&self) {
        let start = Instant::now();
        while TcpStream::connect((self.ip.as_str(), PORT)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd on {} did not start: {}",
                self.ip,
                std::fs::read_to_string(self.state.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts sshd with a new host key (a reinstalled machine, or an impostor).
    pub fn change_host_key(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.host_key);
        let _ = std::fs::remove_file(self.host_key.with_extension("pub"));
        sh(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&self.host_key)).unwrap();
        self.start();
        self.wait_listening();
    }

    /// Cuts every SSH connection to this host (SIGKILL to the listener's per-connection
    /// processes), as a pulled cable or a crashed switch port would; the listener stays up.
    pub fn cut_connections(&self) {
        if let Some(c) = self.sshd.lock().unwrap().as_ref() {
            let _ = Command::new("pkill").args(["-9", "-P", &c.id().to_string()]).output();
        }
    }

    /// The PC dies: every connection cut and its sshd gone for good (connections are refused).
    pub fn kill(&self) {
        self.cut_connections();
        self.stop();
    }

    /// Writes a filesystem signature onto the host's Ceph volume.
    pub fn format_ceph_volume(&self) {
        sh(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&self.loop_dev)).unwrap();
    }

    pub fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("commands.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.commands().iter().filter(|c| c.contains(needle)).count()
    }

    /// Whether the stand-in `microk8s join` on this host got through (it records membership
    /// after consuming the token, so a join killed in between leaves the node out).
    pub fn joined(&self) -> bool {
        self.state.join("joined").exists()
    }

    pub fn etc_hosts(&self) -> String {
        std::fs::read_to_string(self.state.join("hosts")).unwrap_or_default()
    }

    /// A reboot: every connection cut, sshd gone for `down`, then back with the same host key.
    pub fn reboot(&self, down: Duration) {
        self.cut_connections();
        self.stop();
        std::thread::sleep(down);
        self.start();
        self.wait_listening();
    }

    fn stop(&self) {
        if let Some(mut c) = self.sshd.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("losetup").arg("-d").arg(&self.loop_dev).output();
        let _ = std::fs::remove_file(&self.image);
        if self.added_addr {
            let _ = Command::new("ip").args(["addr", "del", &format!("{}/32", self.ip), "dev", "lo"]).output();
        }
    }
}
