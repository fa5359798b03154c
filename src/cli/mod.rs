//! The command line: one file per command, each with its arguments and a thin call into the
//! library. This module holds what they share and the one place that turns errors into exit
//! codes.

pub mod add_node;
pub mod completions;
pub mod demo;
pub mod init;
pub mod kubeconfig;
pub mod schema;
pub mod status;
pub mod up;
pub mod validate;

use crate::addons::catalog::Catalog;
use crate::config::{Cluster, KeySource, validate_file};
use crate::engine::context::{Env, ManifestSource};
use crate::engine::ui::{LogWriter, OutputFormat, Ui};
use crate::error::{Failure, exit_code};
use crate::maas::{ApiKey, ClientOptions, MaasClient};
use crate::ssh::openssh_impl::{OpenSshConnector, SshOptions};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const EXAMPLES: &str = "\
Examples:
  homelab demo                          the whole flow on a simulated lab, no hardware needed
  homelab validate cluster.yaml         check a file; every problem at once, with line and column
  homelab up --dry-run                  show what `up` would change, per phase and machine
  homelab up                            converge everything cluster.yaml declares
  homelab add-node 52:54:00:00:00:04    grow the cluster by one PC
  homelab status -o json                every layer at once, as JSON";

/// Turn a few cheap PCs into a real cluster: MAAS installs Ubuntu, MicroK8s joins them,
/// Rook turns spare disk into Ceph block storage, Strimzi runs Kafka on it.
#[derive(Debug, Parser)]
#[command(name = "homelab", version, about, long_about = None, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Output: progress and tables (`text`), or newline-delimited JSON events (`json`).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More log detail (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors, warnings and the final result.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Extra release catalog (same format as manifests/catalog.yaml); its entries win.
    #[arg(long, global = true, value_name = "FILE", env = "HOMELAB_CATALOG")]
    pub catalog: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Up(up::UpArgs),
    AddNode(add_node::AddNodeArgs),
    Status(status::StatusArgs),
    Validate(validate::ValidateArgs),
    Schema(schema::SchemaArgs),
    Kubeconfig(kubeconfig::KubeconfigArgs),
    Init(init::InitArgs),
    Demo(demo::DemoArgs),
    Completions(completions::CompletionsArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    let ui = Ui::new(cli.global.output, cli.global.quiet);
    init_tracing(&cli.global, &ui);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(crate::error::EXIT_FAILED);
        }
    };
    let result = rt.block_on(run(cli, ui.clone()));
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&ui, &e);
            exit_code(&e)
        }
    }
}

pub async fn run(cli: Cli, ui: Ui) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Up(a) => up::run(a, &g, ui).await,
        Command::AddNode(a) => add_node::run(a, &g, ui).await,
        Command::Status(a) => status::run(a, &g, ui).await,
        Command::Validate(a) => validate::run(a, &g, ui),
        Command::Schema(a) => schema::run(a, ui),
        Command::Kubeconfig(a) => kubeconfig::run(a, &g, ui).await,
        Command::Init(a) => init::run(a, &g, ui).await,
        Command::Demo(a) => demo::run(a, &g, ui).await,
        Command::Completions(a) => completions::run(a),
    }
}

fn report_error(ui: &Ui, e: &anyhow::Error) {
    if let Some(Failure::Config(_)) = e.downcast_ref::<Failure>() {
        // The diagnostics are already printed.
        return;
    }
    let mut msg = format!("error: {e:#}");
    if !msg.contains("hint:") && exit_code(e) == ExitCode::from(crate::error::EXIT_FAILED) {
        msg.push_str("\n  hint: fix the cause and run the command again; homelab continues from the current state and redoes nothing that is done");
    }
    ui.error(&msg);
}

fn init_tracing(g: &Global, ui: &Ui) {
    use tracing_subscriber::EnvFilter;
    let default = match g.verbose {
        0 => "warn",
        1 => "homelab=info,warn",
        2 => "homelab=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter(ui.clone()))
        .with_ansi(ui.color())
        .with_target(g.verbose >= 2)
        .without_time()
        .try_init();
}

/// The catalog: embedded plus `--catalog`.
pub fn catalog(g: &Global) -> anyhow::Result<Catalog> {
    Catalog::with_overrides(g.catalog.as_deref()).map_err(|e| Failure::Usage(format!("{e:#}")).into())
}

/// Reads and validates a cluster file, printing every finding; invalid → exit 2.
pub fn load_cluster(path: &Path, g: &Global, ui: &Ui) -> anyhow::Result<Cluster> {
    let v = validate_file(path, &catalog(g)?);
    crate::engine::ui::accept_validated(v, &path.display().to_string(), ui)
}

/// The per-cluster state directory: kubeconfig, known_hosts, lock.
pub fn state_dir(cluster: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("HOMELAB_STATE_DIR") {
        return PathBuf::from(d).join(cluster);
    }
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("homelab")
        .join(cluster)
}

pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOMELAB_CACHE_DIR") {
        return PathBuf::from(d);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("homelab")
}

/// Reads the MAAS API key from `maas.apiKeyFile` or `$MAAS_API_KEY`.
pub fn maas_key(source: &KeySource) -> anyhow::Result<ApiKey> {
    let raw = match source {
        KeySource::File(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::Usage(format!(
                    "cannot read the MAAS API key file {}: {e}\n  hint: save your key (MAAS UI → user menu → API keys) in that file with mode 0600, or export MAAS_API_KEY",
                    p.display()
                ))
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(p)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!("the MAAS API key file {} is readable by other users; run `chmod 600 {}`", p.display(), p.display());
                }
            }
            text
        }
        KeySource::Env => std::env::var("MAAS_API_KEY").map_err(|_| {
            Failure::Usage("no MAAS API key: `maas.apiKeyFile` is not set and MAAS_API_KEY is empty\n  hint: save your key (MAAS UI → user menu → API keys) in a file with mode 0600 and set `maas.apiKeyFile`, or export MAAS_API_KEY".into())
        })?,
    };
    ApiKey::parse(raw.trim()).map_err(|e| {
        Failure::Usage(format!(
            "{e}\n  hint: copy the whole key from the MAAS UI (user menu → API keys); it looks like `AbC…:dEf…:GhI…`"
        ))
        .into()
    })
}

/// Options shared by commands that touch the cluster.
#[derive(Debug, Clone, Args, Default)]
pub struct WorldArgs {
    /// Download pinned manifests from this mirror (`<mirror>/<project>/<version>/<path>`)
    /// instead of raw.githubusercontent.com.
    #[arg(long, value_name = "URL", env = "HOMELAB_MANIFEST_MIRROR")]
    pub mirror: Option<String>,
    /// Read pinned manifests from this directory (same layout; air-gapped installs).
    #[arg(long, value_name = "DIR", env = "HOMELAB_MANIFEST_DIR")]
    pub manifests_dir: Option<PathBuf>,
}

/// Builds the real outside world for a cluster: MAAS client, SSH, manifest source.
pub fn real_env(cluster: &Cluster, world: &WorldArgs, needs_maas: bool) -> anyhow::Result<Env> {
    let mut env = real_env_ssh(cluster, world, needs_maas)?;
    // Test seam: the simulated hosts of a test harness, served over HTTP (crash tests and
    // benchmarks run the real binary against them). Never set in normal use.
    if let Some(url) = std::env::var_os("HOMELAB_SIM_HOSTS") {
        let url = url.to_string_lossy().into_owned();
        let hosts = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(crate::sim::hosts_http::HttpHosts::new(&url))
        })?;
        env.hosts = Arc::new(hosts);
    }
    Ok(env)
}

fn real_env_ssh(cluster: &Cluster, world: &WorldArgs, needs_maas: bool) -> anyhow::Result<Env> {
    let state_dir = state_dir(&cluster.name);
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the state directory {}: {e}", state_dir.display()))?;
    let maas = match (&cluster.maas, needs_maas) {
        (Some(m), true) => {
            let key = maas_key(&m.api_key)?;
            Some(Arc::new(MaasClient::new(&m.api_root(), key, ClientOptions::default())?))
        }
        _ => None,
    };
    let timings = crate::engine::context::Timings::from_env();
    let ssh = SshOptions {
        user: cluster.ssh.user.clone(),
        port: cluster.ssh.port,
        identity_file: Some(cluster.ssh.identity_file.clone()),
        known_hosts_file: cluster.ssh.known_hosts_file.clone().unwrap_or_else(|| state_dir.join("known_hosts")),
        host_key_checking: cluster.ssh.host_key_checking,
        jump_host: cluster.ssh.jump_host.clone(),
        control_dir: control_dir(),
        connect_timeout: timings.ssh_connect_timeout,
        config_file: std::env::var_os("HOMELAB_SSH_CONFIG").map(PathBuf::from),
    };
    Ok(Env {
        maas,
        hosts: Arc::new(OpenSshConnector::new(ssh)?),
        manifests: ManifestSource {
            cache_dir: cache_dir().join("manifests"),
            mirror: world.mirror.clone(),
            local_dir: world.manifests_dir.clone(),
        },
        state_dir,
    })
}

/// A short directory for SSH control sockets (Unix socket paths are limited to ~108 bytes).
fn control_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    base.join(format!("homelab-{}", rustix::process::getuid().as_raw()))
}

/// Parses `30m`, `90s`, `0s` for command-line options.
pub fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    crate::config::validate::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration (e.g. 30s, 10m, 1h)"))
}

/// `cluster.yaml` unless given.
pub fn default_file(f: Option<PathBuf>) -> PathBuf {
    f.unwrap_or_else(|| PathBuf::from("cluster.yaml"))
}
