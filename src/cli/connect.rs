//! `homelab connect kafka|database [FILE]`: print what an application needs to reach the
//! cluster's Kafka (a Kafka client configuration) or its PostgreSQL (libpq environment).

use super::{Global, ManifestArgs, load_cluster, real_world};
use crate::engine::context::{Ctx, RunOptions, Timings};
use crate::foundation::output::Ui;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Print what an application needs to connect: for `kafka`, a client configuration
/// (bootstrap address reachable from the LAN, the cluster CA written to a file, the user's
/// SASL or TLS settings); for `database`, libpq settings for the PostgreSQL cluster
/// (PGHOST, PGPORT, PGDATABASE, PGUSER, a pgpass file, DATABASE_URL). Passwords stay in 0600
/// files unless --show-secret is given.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(subcommand)]
    pub target: ConnectTarget,
}

#[derive(Debug, Subcommand)]
pub enum ConnectTarget {
    /// The Kafka: a `client.properties` for kafka-console-producer, librdkafka, Java clients.
    #[command(
        after_help = "Examples:\n  homelab connect kafka --user app > client.properties\n  kafka-console-producer.sh --bootstrap-server <address> --producer.config client.properties --topic events"
    )]
    Kafka(KafkaArgs),
    /// The PostgreSQL cluster: libpq environment lines (PGHOST, PGPORT, PGDATABASE, PGUSER,
    /// PGPASSFILE) and DATABASE_URL.
    #[command(after_help = "Examples:\n  eval \"$(homelab connect database)\" && psql")]
    Database(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub file: super::FileArg,
    /// Print the password (PGPASSWORD, and in DATABASE_URL) instead of a 0600 pgpass file.
    #[arg(long)]
    pub show_secret: bool,
    /// Where to write the pgpass file (default: `connect/` in the cluster's state directory).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KafkaArgs {
    #[command(flatten)]
    pub file: super::FileArg,
    /// The Kafka user (from `kafka.users`) to connect as; without it, a LAN listener that
    /// needs no user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Print the password inline instead of keeping it in a 0600 file.
    #[arg(long)]
    pub show_secret: bool,
    /// Where to write the CA certificate, key and password files (default: `connect/` in the
    /// cluster's state directory).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

pub async fn run(a: ConnectArgs, g: &Global, ui: Ui) -> anyhow::Result<ExitCode> {
    let (file, kafka, db) = match a.target {
        ConnectTarget::Kafka(k) => (k.file.path(), Some(k), None),
        ConnectTarget::Database(d) => (d.file.path(), None, Some(d)),
    };
    let path = file;
    let cluster = Arc::new(load_cluster(&path, g, &ui)?);
    let env = real_world(&cluster, &ManifestArgs::default(), true)?;
    let cx = Ctx::new(
        cluster,
        ui.clone(),
        RunOptions { command: "connect".into(), timings: Timings::from_env(), ..Default::default() },
        env,
    );
    if let Some(k) = kafka {
        let c = crate::ops::connect::kafka_of(&cx, k.user.as_deref(), k.show_secret, k.to.as_deref()).await?;
        ui.out(&if ui.is_json() {
            crate::foundation::json::event_line("connection", &c)
        } else {
            c.properties_text().trim_end().to_owned()
        });
    }
    if let Some(d) = db {
        let c = crate::ops::connect::database_of(&cx, d.show_secret, d.to.as_deref()).await?;
        ui.out(&if ui.is_json() {
            crate::foundation::json::event_line("connection", &c)
        } else {
            c.env_text().trim_end().to_owned()
        });
    }
    Ok(ExitCode::SUCCESS)
}
