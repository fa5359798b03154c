//! The command line: one file per command, each with its arguments and a thin call into the
//! library. This module holds what they share and the one place that turns errors into exit
//! codes.

pub mod add_node;
pub mod completions;
pub mod connect;
pub mod demo;
pub mod diagnose;
pub mod init;
pub mod kubeconfig;
pub mod remove_node;
pub mod replace_node;
pub mod reset;
pub mod schema;
pub mod status;
pub mod up;
pub mod upgrade;
pub mod validate;

use crate::catalog::Catalog;
use crate::config::{Cluster, validate_file};
use crate::engine::context::World;
use crate::foundation::error::{Failure, exit_code};
use crate::foundation::output::{LogWriter, OutputFormat, Ui};
use crate::ops::world::ManifestOrigin;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    RemoveNode(remove_node::RemoveNodeArgs),
    ReplaceNode(replace_node::ReplaceNodeArgs),
    Upgrade(upgrade::UpgradeArgs),
    Reset(reset::ResetArgs),
    Status(status::StatusArgs),
    Diagnose(diagnose::DiagnoseArgs),
    Validate(validate::ValidateArgs),
    Schema(schema::SchemaArgs),
    Kubeconfig(kubeconfig::KubeconfigArgs),
    Connect(connect::ConnectArgs),
    Init(init::InitArgs),
    Demo(demo::DemoArgs),
    Completions(completions::CompletionsArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    run_main()
}

/// The command line with another way to build the outside world (a test-only binary that
/// serves its hosts from a simulator). The release binary calls [`main`].
pub fn main_with(make: Box<WorldMaker>) -> ExitCode {
    let _ = WORLD_MAKER.set(make);
    run_main()
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::AddNode(_) => "add-node",
            Command::RemoveNode(_) => "remove-node",
            Command::ReplaceNode(_) => "replace-node",
            Command::Upgrade(_) => "upgrade",
            Command::Reset(_) => "reset",
            Command::Status(_) => "status",
            Command::Diagnose(_) => "diagnose",
            Command::Validate(_) => "validate",
            Command::Schema(_) => "schema",
            Command::Kubeconfig(_) => "kubeconfig",
            Command::Connect(_) => "connect",
            Command::Init(_) => "init",
            Command::Demo(_) => "demo",
            Command::Completions(_) => "completions",
        }
    }
}

/// The run log of a command that reads or changes something (all but `schema` and
/// `completions`, which only print); none when it cannot be created (said on the terminal).
fn open_run_log(command: &Command, ui: &Ui) -> Option<std::sync::Arc<crate::foundation::runlog::RunLog>> {
    if matches!(command, Command::Schema(_) | Command::Completions(_)) {
        return None;
    }
    match crate::foundation::runlog::RunLog::create(command.name()) {
        Ok(log) => {
            let log = std::sync::Arc::new(log);
            let args: Vec<String> = std::env::args().collect();
            log.line("start", &format!("homelab {} ({})", env!("CARGO_PKG_VERSION"), args.join(" ")));
            ui.attach_log(log.clone());
            Some(log)
        }
        Err(e) => {
            ui.err(&format!("note: this run keeps no log: {e:#}"));
            None
        }
    }
}

fn run_main() -> ExitCode {
    crate::foundation::tls::install_crypto_provider();
    let cli = Cli::parse();
    let ui = Ui::new(cli.global.output, cli.global.quiet);
    let run_log = open_run_log(&cli.command, &ui);
    init_tracing(&cli.global, &ui, run_log.clone());
    let code = run_parsed(cli, ui.clone());
    if let Some(l) = &run_log {
        l.line("end", "");
    }
    code
}

fn run_parsed(cli: Cli, ui: Ui) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(crate::foundation::error::EXIT_FAILED);
        }
    };
    let result = rt.block_on(run(cli, ui.clone()));
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&ui, &e);
            // The last line names the file that says what led here.
            if let Some(p) = ui.log_path() {
                ui.error(&format!("the run's log (every call it made, no secret): {}", p.display()));
            }
            exit_code(&e)
        }
    }
}

pub async fn run(cli: Cli, ui: Ui) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Up(a) => up::run(a, &g, ui).await,
        Command::AddNode(a) => add_node::run(a, &g, ui).await,
        Command::RemoveNode(a) => remove_node::run(a, &g, ui).await,
        Command::ReplaceNode(a) => replace_node::run(a, &g, ui).await,
        Command::Upgrade(a) => upgrade::run(a, &g, ui).await,
        Command::Reset(a) => reset::run(a, &g, ui).await,
        Command::Status(a) => status::run(a, &g, ui).await,
        Command::Diagnose(a) => diagnose::run(a, &g, ui).await,
        Command::Validate(a) => validate::run(a, &g, ui),
        Command::Schema(a) => schema::run(a, ui),
        Command::Kubeconfig(a) => kubeconfig::run(a, &g, ui).await,
        Command::Connect(a) => connect::run(a, &g, ui).await,
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
    if !msg.contains("hint:") && exit_code(e) == ExitCode::from(crate::foundation::error::EXIT_FAILED) {
        msg.push_str("\n  hint: fix the cause and run the command again; homelab continues from the current state and redoes nothing that is done");
    }
    ui.error(&msg);
}

fn init_tracing(g: &Global, ui: &Ui, run_log: Option<std::sync::Arc<crate::foundation::runlog::RunLog>>) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = match g.verbose {
        0 => "warn",
        1 => "homelab=info,warn",
        2 => "homelab=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(LogWriter(ui.clone()))
        .with_ansi(ui.color())
        .with_target(g.verbose >= 2)
        .without_time()
        .with_filter(filter);
    // The run log has homelab's debug lines whatever the verbosity (other crates' warnings).
    let file = run_log.map(|l| {
        tracing_subscriber::fmt::layer()
            .with_writer(crate::foundation::runlog::LogFileWriter(l))
            .with_ansi(false)
            .with_target(true)
            .with_filter(EnvFilter::new("homelab=debug,warn"))
    });
    let _ = tracing_subscriber::registry().with(terminal).with(file).try_init();
}

/// The catalog: embedded plus `--catalog`.
pub fn catalog(g: &Global) -> anyhow::Result<Catalog> {
    let cat = Catalog::with_overrides(g.catalog.as_deref()).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    // Said once per run however often the catalog is loaded.
    static TOLD: std::sync::Once = std::sync::Once::new();
    TOLD.call_once(|| {
        for n in &cat.notes {
            tracing::warn!(
                "{n} (from --catalog); its files are verified against the checksums you gave, not homelab's"
            );
        }
    });
    Ok(cat)
}

/// Reads and validates a cluster file, printing every finding; invalid → exit 2.
pub fn load_cluster(path: &Path, g: &Global, ui: &Ui) -> anyhow::Result<Cluster> {
    let v = validate_file(path, &catalog(g)?);
    crate::config::accept::accept_validated(v, &path.display().to_string(), ui)
}

/// Where pinned manifests come from (commands that install them).
#[derive(Debug, Clone, Args, Default)]
pub struct ManifestArgs {
    /// Download pinned manifests from this mirror (`<mirror>/<project>/<version>/<path>`)
    /// instead of raw.githubusercontent.com.
    #[arg(long, value_name = "URL", env = "HOMELAB_MANIFEST_MIRROR")]
    pub mirror: Option<String>,
    /// Read pinned manifests from this directory (same layout; air-gapped installs).
    #[arg(long, value_name = "DIR", env = "HOMELAB_MANIFEST_DIR")]
    pub manifests_dir: Option<PathBuf>,
}

/// The cluster file of a command that reads one, given either way: `homelab CMD FILE` or
/// `homelab CMD -f FILE` (every command takes `-f`; see [`ChangeArgs`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FileArg {
    /// The cluster file (default ./cluster.yaml; also -f FILE).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The cluster file (the same as the FILE argument).
    #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with = "file")]
    pub file_opt: Option<PathBuf>,
}

impl FileArg {
    pub fn path(&self) -> PathBuf {
        default_file(self.file_opt.clone().or_else(|| self.file.clone()))
    }
}

/// What every command that changes a cluster named in its file takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    /// The cluster file (default ./cluster.yaml).
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Wait this long for another homelab run on this cluster to finish.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg, default_value = "0s")]
    pub lock_timeout: std::time::Duration,
    #[command(flatten)]
    pub manifests: ManifestArgs,
}

impl ChangeArgs {
    /// The file, and the options of a run that stops on Ctrl-C.
    pub fn run_options(&self, dry_run: bool) -> (PathBuf, crate::engine::context::RunOptions) {
        let opts = crate::engine::context::RunOptions {
            timings: crate::engine::context::Timings::from_env(),
            lock_timeout: self.lock_timeout,
            dry_run,
            stop_on_ctrl_c: true,
            ..Default::default()
        };
        (default_file(self.file.clone()), opts)
    }
}

/// Builds the outside world of a cluster for a command (MAAS client when asked, hosts, manifests).
pub type WorldMaker = dyn Fn(&Cluster, &ManifestOrigin, bool) -> anyhow::Result<World> + Send + Sync;

static WORLD_MAKER: std::sync::OnceLock<Box<WorldMaker>> = std::sync::OnceLock::new();

/// The outside world of `cluster`: the real one ([`crate::ops::world::real`]) unless the
/// program embedding this command line chose another with [`main_with`] (the test-only
/// binary does, to reach simulated hosts). No environment variable can change it.
pub fn real_world(cluster: &Cluster, m: &ManifestArgs, needs_maas: bool) -> anyhow::Result<World> {
    let origin = ManifestOrigin { mirror: m.mirror.clone(), local_dir: m.manifests_dir.clone() };
    match WORLD_MAKER.get() {
        Some(make) => make(cluster, &origin, needs_maas),
        None => crate::ops::world::real(cluster, &origin, needs_maas),
    }
}

/// Parses `30m`, `90s`, `1m30s`, `500ms` for command-line options; a bare number is
/// seconds (`10`, `0.5`), the same for every option that takes a duration.
pub fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.trim().parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("`{s}` is not a duration (e.g. 30s, 10m, 1h, or seconds: 10)"));
    }
    crate::config::validate::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration (e.g. 30s, 10m, 1h, or seconds: 10)"))
}

/// `cluster.yaml` unless given.
pub fn default_file(f: Option<PathBuf>) -> PathBuf {
    f.unwrap_or_else(|| PathBuf::from("cluster.yaml"))
}

/// A new PC that runs Ubuntu already (`add-node`, `replace-node`): where it is, and the Ceph
/// volume it gives.
#[derive(Debug, Clone, clap::Args)]
pub struct PreinstalledArgs {
    /// The new PC runs Ubuntu already: its IP address or DNS name (needs `--hostname`); MAAS is
    /// not asked about it.
    #[arg(long, value_name = "ADDR", requires = "hostname")]
    pub address: Option<String>,
    /// A blank device of that PC for Ceph (a disk, partition or logical volume).
    #[arg(long, value_name = "DEV", requires = "address", conflicts_with = "volume_group")]
    pub ceph_device: Option<String>,
    /// The volume group of that PC to carve Ceph's logical volume from (free extents only).
    #[arg(long, value_name = "VG", requires = "address")]
    pub volume_group: Option<String>,
    /// The size of that logical volume: `rest` (all free extents) or a size such as 200G.
    #[arg(long, value_name = "SIZE", default_value = "rest", requires = "volume_group")]
    pub ceph_size: String,
}

impl PreinstalledArgs {
    /// The Ceph volume the arguments name.
    pub fn storage(&self) -> Option<crate::config::edit::NewStorage> {
        use crate::config::edit::NewStorage;
        match (&self.ceph_device, &self.volume_group) {
            (Some(d), _) => Some(NewStorage::Device(d.clone())),
            (None, Some(vg)) => {
                Some(NewStorage::VolumeGroup { volume_group: vg.clone(), ceph: self.ceph_size.clone() })
            }
            (None, None) => None,
        }
    }
}
