//! A simulated lab: the MAAS simulator with N PCs (with seed names, PC 0 is the MAAS host
//! itself, pre-installed), simulated hosts and a simulated API
//! server, plus a `cluster.yaml` for them. Used by `homelab demo`, the engine tests and the
//! benchmarks.

pub use super::hosts::DEMO_PUBLIC_KEY;
use super::maas::{SIM_API_KEY, SimMaas, SimMaasConfig, SimMachineSpec};
use crate::catalog::bundle::ManifestSource;
use crate::engine::context::{Ctx, RunOptions, World};
use crate::foundation::output::Ui;
use crate::maas::{ApiKey, ClientOptions, MaasClient, Status};
use crate::ssh::{Connector, HostAddr, Remote};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub machines: usize,
    /// Status every machine starts in.
    pub status: Status,
    pub maas: SimMaasConfig,
    /// The write-up's names and topology: PC 0 is `maas`, the MAAS server itself (installed
    /// by hand, a pre-installed host at [`MAAS_HOST_IP`], never a MAAS machine), then `kvm4`,
    /// `kvm5`, … deployed by MAAS. Without it every PC is a MAAS machine `node1`, `node2`, ….
    pub seed_names: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions { machines: 3, status: Status::Ready, maas: SimMaasConfig::default(), seed_names: true }
    }
}

/// The MAAS host's address in a seed-named lab (the URL's host in the write-up).
pub const MAAS_HOST_IP: &str = "10.0.0.1";

/// Whether lab PC `i` is the MAAS host itself (seed names, PC 0).
pub fn is_maas_host(i: usize, seed_names: bool) -> bool {
    seed_names && i == 0
}

/// Hostname, MAC and IP of lab machine `i` (0-based).
pub fn machine_identity(i: usize, seed_names: bool) -> (String, String, String) {
    let name = match (seed_names, i) {
        (true, 0) => "maas".to_owned(),
        (true, 1) => "kvm4".to_owned(),
        (true, 2) => "kvm5".to_owned(),
        (true, n) => format!("kvm{}", n + 3),
        (false, n) => format!("node{}", n + 1),
    };
    let n = i + 1;
    let mac = format!("52:54:00:00:{:02x}:{:02x}", n / 256, n % 256);
    let ip = format!("10.10.{}.{}", n / 250, n % 250 + 2);
    (name, mac, ip)
}

pub struct Lab {
    pub maas: SimMaas,
    pub dir: tempfile::TempDir,
    pub opts: LabOptions,
}

impl Lab {
    pub async fn start(opts: LabOptions) -> anyhow::Result<Lab> {
        let maas = SimMaas::start(opts.maas.clone()).await?;
        for i in (0..opts.machines).filter(|&i| !is_maas_host(i, opts.seed_names)) {
            let (name, mac, ip) = machine_identity(i, opts.seed_names);
            maas.add_machine(SimMachineSpec::new(&name, &mac, &ip).status(opts.status).keys(&[DEMO_PUBLIC_KEY]));
        }
        let dir = tempfile::Builder::new().prefix("homelab-lab").tempdir()?;
        // Private, as homelab requires of a real key file.
        crate::foundation::files::write_atomic(
            &dir.path().join("maas.key"),
            SIM_API_KEY.as_bytes(),
            crate::foundation::files::Mode::Private,
        )?;
        std::fs::write(dir.path().join("id_ed25519.pub"), format!("{DEMO_PUBLIC_KEY}\n"))?;
        std::fs::write(
            dir.path().join("id_ed25519"),
            "simulated private key: the simulated hosts accept the key MAAS put on them\n",
        )?;
        Ok(Lab { maas, dir, opts })
    }

    /// Adds a machine to MAAS (e.g. the PC `add-node` will grow the cluster with).
    pub fn add_machine(&self, i: usize, status: Status) -> (String, String, String) {
        let (name, mac, ip) = machine_identity(i, self.opts.seed_names);
        self.maas.add_machine(SimMachineSpec::new(&name, &mac, &ip).status(status));
        (name, mac, ip)
    }

    /// Simulated hosts that come up when MAAS deploys them, and the MAAS host when the lab
    /// has one: Ubuntu 22.04 on a 500 GiB disk with the installer's LVM layout, set up as
    /// MAAS's install guide asks (chrony, not systemd-timesyncd; DNS through MAAS's own bind).
    pub fn hosts(&self, cfg: super::hosts::SimHostsConfig) -> Arc<super::hosts::SimHosts> {
        let hosts = super::hosts::SimHosts::new(Some(self.maas.view()), cfg);
        if self.opts.machines > 0 && is_maas_host(0, self.opts.seed_names) {
            let mut p = super::hosts::Preinstalled::new("maas", MAAS_HOST_IP, 500);
            p.system.timesyncd = "inactive".into();
            hosts.add_preinstalled(p);
        }
        hosts
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The machines section for the first `n` lab machines.
    pub fn machines_yaml(&self, n: usize, control_planes: usize) -> String {
        (0..n)
            .map(|i| {
                let (name, mac, _) = machine_identity(i, self.opts.seed_names);
                let role = if i < control_planes { "control-plane" } else { "worker" };
                if is_maas_host(i, self.opts.seed_names) {
                    format!(
                        "  - {{hostname: {name}, address: {MAAS_HOST_IP}, role: {role}, storage: {{volumeGroup: ubuntu-vg, ceph: rest}}}}\n"
                    )
                } else {
                    format!("  - {{hostname: {name}, mac: \"{mac}\", role: {role}}}\n")
                }
            })
            .collect()
    }

    /// A seed-like cluster.yaml for this lab (only the MAAS part is lab-specific).
    pub fn cluster_yaml(&self, body: &str) -> String {
        format!(
            "# yaml-language-server: $schema=https://homelab.dev/schema/cluster.schema.json\n\
             # A cluster on homelab's simulated lab (MAAS simulator at {url}).\n\
             apiVersion: homelab/v1alpha1\n\
             kind: Cluster\n\
             metadata: {{name: lab}}\n\
             maas:\n  url: {url}\n  apiKeyFile: {key}\n  distroSeries: jammy\n\
             ssh: {{user: ubuntu, identityFile: {id}, hostKeyChecking: accept-new}}\n\
             storage: {{layout: lvm, rootSize: 100G, ceph: rest}}\n\
             {body}",
            url = self.maas.url,
            key = self.path("maas.key").display(),
            id = self.path("id_ed25519").display(),
        )
    }

    pub fn maas_client(&self) -> anyhow::Result<Arc<MaasClient>> {
        let opts = ClientOptions {
            backoff_first: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(200),
            ..Default::default()
        };
        Ok(Arc::new(MaasClient::new(
            &self.maas.api_root(),
            ApiKey::parse(SIM_API_KEY).map_err(anyhow::Error::msg)?,
            opts,
        )?))
    }

    pub fn env(&self, hosts: Arc<dyn Connector>, state: &Path) -> anyhow::Result<World> {
        Ok(World {
            maas: Some(self.maas_client()?),
            hosts,
            manifests: ManifestSource { cache_dir: state.join("cache"), mirror: None, local_dir: None },
            state_dir: state.to_path_buf(),
        })
    }

    /// A run context for a cluster file of this lab.
    pub fn ctx(&self, yaml: &str, hosts: Arc<dyn Connector>, ui: Ui, opts: RunOptions) -> anyhow::Result<Arc<Ctx>> {
        let cat = crate::catalog::Catalog::embedded()?;
        let v = crate::config::validate_bytes(yaml.as_bytes(), "lab.yaml", &cat);
        let rendered = v.render();
        let cluster = v.cluster.ok_or_else(|| anyhow::anyhow!("lab config invalid:\n{rendered}"))?;
        let state = self.path("state");
        std::fs::create_dir_all(&state)?;
        let mut env = self.env(hosts, &state)?;
        if cluster.maas.is_none() {
            // A cluster of pre-installed machines alone talks to no MAAS.
            env.maas = None;
        }
        Ok(Arc::new(Ctx::new(Arc::new(cluster), ui, opts, env)))
    }
}

/// A connector for runs that must not touch any host.
pub struct NoHosts;

#[async_trait]
impl Connector for NoHosts {
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>> {
        anyhow::bail!("no host connections in this run ({})", host.hostname)
    }
}

/// Timing of a full simulated lab (MAAS, hosts, API server, operators).
#[derive(Debug, Clone)]
pub struct FullLabOptions {
    pub lab: LabOptions,
    pub hosts: super::hosts::SimHostsConfig,
    pub api: super::apiserver::SimApiConfig,
    /// Per-step delay of the simulated Rook and Strimzi operators.
    pub operator_step: Duration,
    /// The simulated Ceph behind Rook (data per pool, recovery rate).
    pub ceph: super::ceph::CephConfig,
}

impl Default for FullLabOptions {
    fn default() -> Self {
        FullLabOptions {
            lab: LabOptions::default(),
            hosts: super::hosts::SimHostsConfig::default(),
            api: super::apiserver::SimApiConfig::default(),
            operator_step: Duration::from_millis(50),
            ceph: Default::default(),
        }
    }
}

/// MAAS, hosts and the Kubernetes API wired together: deployed machines become SSH-able
/// hosts, joined nodes appear as Nodes, and the simulated operators act on the API server.
pub struct FullLab {
    pub lab: Lab,
    pub hosts: Arc<super::hosts::SimHosts>,
    pub api: super::apiserver::SimApiServer,
    pub rook: Arc<super::operators::RookOperator>,
    pub strimzi: Arc<super::strimzi::StrimziOperator>,
    pub strimzi_apps: Arc<super::strimzi_apps::StrimziAppsOperator>,
    pub cnpg: Arc<super::cnpg::CnpgOperator>,
}

impl FullLab {
    pub async fn start(opts: FullLabOptions) -> anyhow::Result<FullLab> {
        let lab = Lab::start(opts.lab.clone()).await?;
        let api = super::apiserver::SimApiServer::start(opts.api.clone()).await?;
        let hosts = lab.hosts(super::hosts::SimHostsConfig {
            api_server: Some(api.url.clone()),
            api_ca_pem: api.ca_pem.clone(),
            ..opts.hosts.clone()
        });
        let h = hosts.clone();
        api.set_nodes(Arc::new(move || h.nodes()));
        let rook = Arc::new(super::operators::RookOperator::with_ceph(opts.operator_step, opts.ceph.clone()));
        let strimzi = Arc::new(super::strimzi::StrimziOperator::new(opts.operator_step));
        api.add_operator(rook.clone());
        let strimzi_apps = Arc::new(super::strimzi_apps::StrimziAppsOperator::new(opts.operator_step));
        api.add_operator(strimzi.clone());
        api.add_operator(strimzi_apps.clone());
        let cnpg = Arc::new(super::cnpg::CnpgOperator::new(opts.operator_step));
        api.add_operator(cnpg.clone());
        hosts.set_exec(toolbox(api.shared(), rook.clone()));
        Ok(FullLab { lab, hosts, api, rook, strimzi, strimzi_apps, cnpg })
    }

    /// A run context; manifests come from `manifests` (a directory with the mirror layout).
    pub fn ctx(&self, yaml: &str, ui: Ui, opts: RunOptions, manifests: ManifestSource) -> anyhow::Result<Arc<Ctx>> {
        let cat = crate::catalog::Catalog::embedded()?;
        self.ctx_with_catalog(yaml, ui, opts, manifests, &cat)
    }

    pub fn ctx_with_catalog(
        &self,
        yaml: &str,
        ui: Ui,
        opts: RunOptions,
        manifests: ManifestSource,
        cat: &crate::catalog::Catalog,
    ) -> anyhow::Result<Arc<Ctx>> {
        let v = crate::config::validate_bytes(yaml.as_bytes(), "lab.yaml", cat);
        let rendered = v.render();
        let cluster = v.cluster.ok_or_else(|| anyhow::anyhow!("lab config invalid:\n{rendered}"))?;
        let state = self.lab.path("state");
        std::fs::create_dir_all(&state)?;
        let mut env = self.lab.env(self.hosts.clone(), &state)?;
        env.manifests = manifests;
        if cluster.maas.is_none() {
            env.maas = None;
        }
        Ok(Arc::new(Ctx::new(Arc::new(cluster), ui, opts, env)))
    }
}

/// `microk8s kubectl -n rook-ceph exec deploy/rook-ceph-tools -- ceph …`: the Rook toolbox,
/// answering from the simulated Ceph once its Deployment runs (kubectl's errors otherwise).
pub fn toolbox(
    api: Arc<std::sync::Mutex<super::apiserver::ApiState>>,
    rook: Arc<super::operators::RookOperator>,
) -> super::hosts::ExecHook {
    Arc::new(move |ns: &str, target: &str, argv: &[&str]| {
        let out = |code: i32, stdout: String, stderr: String| crate::ssh::Output { code: Some(code), stdout, stderr };
        let mut st = api.lock().unwrap_or_else(|e| e.into_inner());
        super::apiserver::reconcile(&mut st);
        let dep = target.strip_prefix("deploy/").or_else(|| target.strip_prefix("deployment/")).unwrap_or(target);
        if st.get("apps", "deployments", ns, dep).is_none() {
            return out(
                1,
                String::new(),
                format!("Error from server (NotFound): deployments.apps \"{dep}\" not found\n"),
            );
        }
        if !super::operators::deployment_running(&st, ns, dep) {
            return out(
                1,
                String::new(),
                format!("error: unable to upgrade connection: pod does not exist ({dep} has no running pod)\n"),
            );
        }
        drop(st);
        match argv {
            ["ceph", rest @ ..] => {
                let (code, o, e) = rook.ceph().command(rest);
                out(code, o, e)
            }
            [cmd, ..] => out(
                126,
                String::new(),
                format!("OCI runtime exec failed: exec: \"{cmd}\": executable file not found in $PATH\n"),
            ),
            [] => out(1, String::new(), "error: you must specify at least one command for the container\n".into()),
        }
    })
}
