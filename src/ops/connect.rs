//! `connect kafka`: what an application outside the cluster needs to reach the Kafka, as a
//! Kafka client configuration (`client.properties`): the bootstrap address of a listener
//! reachable from the LAN (from the Kafka's status), the cluster CA written to a file
//! (0600) when the listener is TLS, and the user's SASL or TLS settings read from the
//! Secret the User Operator wrote. The password is never printed unless asked: by default
//! it goes to a 0600 file that the configuration names through Kafka's
//! `FileConfigProvider`, so the printed configuration works as it is.

use crate::config::Kafka;
use crate::config::model::{Listener, ListenerType, UserAuthentication};
use crate::engine::context::Ctx;
use crate::foundation::error::usage;
use crate::foundation::files::{Mode, write_atomic};
use crate::foundation::phase_id::PhaseId;
use crate::kube::apply::Applier;
use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Credentials and certificates larger than this are refused (a Secret holds at most 1 MiB).
const MAX_SECRET_VALUE: usize = 1 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct KafkaConnection {
    pub listener: String,
    pub bootstrap: String,
    pub user: Option<String>,
    /// `key=value` lines of a Kafka client configuration, in order.
    pub properties: Vec<(String, String)>,
    /// Files written (mode 0600): the CA, a key, the password.
    pub files: Vec<PathBuf>,
    /// What the user should know (addresses resolved by name, …).
    pub notes: Vec<String>,
}

impl KafkaConnection {
    /// The configuration as a `client.properties` text (comments first).
    pub fn properties_text(&self) -> String {
        lines(&self.notes, &self.properties, escape)
    }
}

/// `# note` lines, then `key=value` lines with each value written by `value`.
fn lines(notes: &[String], pairs: &[(String, String)], value: impl Fn(&str) -> String) -> String {
    let mut s = String::new();
    for n in notes {
        s.push_str(&format!("# {n}\n"));
    }
    for (k, v) in pairs {
        s.push_str(&format!("{k}={}\n", value(v)));
    }
    s
}

/// Java properties escaping of a value (backslashes; the rest of our values is plain).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
}

fn is_lan(l: &Listener) -> bool {
    matches!(l.kind, ListenerType::Nodeport | ListenerType::Loadbalancer | ListenerType::Ingress | ListenerType::Route)
}

fn has_auth(l: &Listener) -> bool {
    l.extra.get("authentication").is_some_and(|a| !a.is_null())
}

/// Decoded value `key` of Secret `ns/name`.
async fn secret_value(a: &Applier, ns: &str, name: &str, key: &str) -> Result<String> {
    let o = a
        .get("v1", "Secret", Some(ns), name)
        .await?
        .ok_or_else(|| anyhow!("Secret {ns}/{name} does not exist yet — run `homelab up` and wait for it to finish"))?;
    let v = serde_json::to_value(o)?;
    let enc = v
        .pointer(&format!("/data/{}", key.replace('~', "~0").replace('/', "~1")))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("Secret {ns}/{name} has no key `{key}` (its operator writes it)\n  hint: `homelab status` shows whether the user or database is Ready; `homelab up` finishes it"))?;
    if enc.len() > MAX_SECRET_VALUE * 4 / 3 + 4 {
        return Err(anyhow!(
            "Secret {ns}/{name} key `{key}` is larger than 1 MiB; refusing to read it\n  hint: read it with `kubectl -n {ns} get secret {name} -o yaml` if it is meant to be"
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(enc)
        .with_context(|| format!("Secret {ns}/{name} key `{key}` is not base64"))?;
    String::from_utf8(bytes).with_context(|| format!("Secret {ns}/{name} key `{key}` is not text"))
}

/// A reader of the cluster's objects, and the directory for the files `connect` writes
/// (default: `connect/` in the cluster's state directory).
async fn reader(cx: &Ctx, phase: PhaseId, dir: Option<&Path>) -> Result<(Applier, PathBuf)> {
    // Reads only: the error says why the API cannot be read, with its own hint.
    let client = crate::engine::phases::manifests::reach(cx)
        .await
        .context("connect reads the cluster's Secrets and statuses through its Kubernetes API")?;
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| cx.world.state_dir.join("connect"));
    Ok((cx.applier(client, phase, Default::default()), dir))
}

/// The client configuration of the cluster's Kafka for `user`; files go to `dir`
/// (default: `connect/` in the cluster's state directory).
pub async fn kafka_of(cx: &Ctx, user: Option<&str>, show_secret: bool, dir: Option<&Path>) -> Result<KafkaConnection> {
    let k = cx
        .cluster
        .kafka
        .as_ref()
        .ok_or_else(|| usage("the cluster file declares no `kafka`; there is nothing to connect to"))?;
    let (a, dir) = reader(cx, PhaseId::Kafka, dir).await?;
    kafka(&a, k, user, show_secret, &dir).await
}

/// The Kafka's client configuration for `user` (or without one, on a LAN listener without
/// authentication); files go to `dir`.
pub async fn kafka(
    a: &Applier,
    k: &Kafka,
    user: Option<&str>,
    show_secret: bool,
    dir: &Path,
) -> Result<KafkaConnection> {
    let u = match user {
        Some(n) => Some(k.users.iter().find(|u| u.spec.name == n).ok_or_else(|| {
            let known: Vec<&str> = k.users.iter().map(|u| u.spec.name.as_str()).collect();
            usage(format!(
                "the file declares no Kafka user `{n}`{}",
                if known.is_empty() {
                    " (it declares none: add one under `kafka.users`)".to_owned()
                } else {
                    format!("; it declares {}", known.join(", "))
                }
            ))
        })?),
        None => None,
    };
    let listener = match u {
        Some(u) => k.listener(&u.listener).ok_or_else(|| anyhow!("listener {} is not in the file", u.listener))?,
        None => k.listeners.iter().find(|l| is_lan(l) && !has_auth(l)).ok_or_else(|| {
            let users: Vec<&str> = k.users.iter().map(|u| u.spec.name.as_str()).collect();
            usage(format!(
                "no listener reachable from the LAN accepts clients without a user{}",
                if users.is_empty() {
                    "; add a `nodeport` listener, or a user under `kafka.users`".to_owned()
                } else {
                    format!("; name one: `homelab connect kafka --user {}`", users[0])
                }
            ))
        })?,
    };
    let live = a
        .get(&k.release.api_version, "Kafka", Some(&k.namespace), &k.name)
        .await?
        .ok_or_else(|| anyhow!("Kafka {}/{} does not exist — run `homelab up`", k.namespace, k.name))?;
    let live = serde_json::to_value(live)?;
    let bootstrap = live
        .pointer("/status/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l["name"] == listener.name.as_str())
        .and_then(|l| l["bootstrapServers"].as_str())
        .filter(|b| b.len() < 4096)
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow!(
                "Kafka {}/{} reports no address for listener {} yet — wait for it to be Ready (`homelab status`)",
                k.namespace,
                k.name,
                listener.name
            )
        })?;
    let mut c = KafkaConnection {
        listener: listener.name.clone(),
        bootstrap: bootstrap.clone(),
        user: u.map(|u| u.spec.name.clone()),
        properties: vec![("bootstrap.servers".into(), bootstrap.clone())],
        files: vec![],
        notes: vec![],
    };
    if !is_lan(listener) {
        c.notes.push(format!(
            "listener {} is internal: this address answers only inside the cluster (a Pod); use a `nodeport` listener for the LAN",
            listener.name
        ));
    } else if matches!(listener.kind, ListenerType::Nodeport)
        && bootstrap.split(':').next().is_some_and(|h| h.parse::<std::net::IpAddr>().is_err())
    {
        c.notes.push(
            "the brokers are addressed by node name: the client must resolve the PCs' hostnames (or set `preferredNodePortAddressType: InternalIP` in the listener's configuration)".into(),
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |c: &mut KafkaConnection, name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        write_atomic(&p, text.as_bytes(), Mode::Private).with_context(|| format!("writing {}", p.display()))?;
        c.files.push(p.clone());
        Ok(p)
    };
    if listener.tls {
        let ca = secret_value(a, &k.namespace, &format!("{}-cluster-ca-cert", k.name), "ca.crt").await?;
        if !ca.contains("BEGIN CERTIFICATE") {
            return Err(anyhow!(
                "the cluster CA in Secret {}/{}-cluster-ca-cert is not a PEM certificate",
                k.namespace,
                k.name
            ));
        }
        let p = write(&mut c, &format!("{}-cluster-ca.crt", k.name), &ca)?;
        c.properties.push(("ssl.truststore.type".into(), "PEM".into()));
        c.properties.push(("ssl.truststore.location".into(), p.display().to_string()));
    }
    match u.map(|u| (u, u.spec.authentication)) {
        None => c.properties.push(("security.protocol".into(), if listener.tls { "SSL" } else { "PLAINTEXT" }.into())),
        Some((u, UserAuthentication::ScramSha512)) => {
            let name = &u.spec.name;
            let password = secret_value(a, &k.namespace, name, "password").await?;
            if password.contains(['"', '\n', '\\']) {
                return Err(anyhow!(
                    "the password in Secret {}/{name} has characters homelab does not quote; read it with kubectl",
                    k.namespace
                ));
            }
            c.properties
                .push(("security.protocol".into(), if listener.tls { "SASL_SSL" } else { "SASL_PLAINTEXT" }.into()));
            c.properties.push(("sasl.mechanism".into(), "SCRAM-SHA-512".into()));
            let jaas = |pw: &str| {
                format!(
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{name}\" password=\"{pw}\";"
                )
            };
            if show_secret {
                c.properties.push(("sasl.jaas.config".into(), jaas(&password)));
            } else {
                let p = write(
                    &mut c,
                    &format!("{name}.password.properties"),
                    &format!("password={}\n", escape(&password)),
                )?;
                c.properties.insert(1, ("config.providers".into(), "file".into()));
                c.properties.insert(
                    2,
                    (
                        "config.providers.file.class".into(),
                        "org.apache.kafka.common.config.provider.FileConfigProvider".into(),
                    ),
                );
                c.properties.push(("sasl.jaas.config".into(), jaas(&format!("${{file:{}:password}}", p.display()))));
                c.notes.push(format!(
                    "the password is in {} (mode 0600), read by the client's FileConfigProvider; `--show-secret` prints it inline",
                    p.display()
                ));
            }
        }
        Some((u, UserAuthentication::Tls)) => {
            let name = &u.spec.name;
            let cert = secret_value(a, &k.namespace, name, "user.crt").await?;
            let key = secret_value(a, &k.namespace, name, "user.key").await?;
            let p = write(&mut c, &format!("{name}.pem"), &format!("{key}{cert}"))?;
            c.properties.push(("security.protocol".into(), "SSL".into()));
            c.properties.push(("ssl.keystore.type".into(), "PEM".into()));
            c.properties.push(("ssl.keystore.location".into(), p.display().to_string()));
            c.notes.push(format!("the client key and certificate are in {} (mode 0600)", p.display()));
        }
    }
    Ok(c)
}

/// What a PostgreSQL client needs, as libpq environment lines (`PGHOST=…`).
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseConnection {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    /// `postgresql://user@host:port/db`, with the password only under --show-secret.
    pub uri: String,
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
    /// `NAME=value` lines, in order.
    pub env: Vec<(String, String)>,
}

impl DatabaseConnection {
    /// The settings as shell lines (`eval "$(homelab connect database)"`): exported, each
    /// value single-quoted so that no character of it is read by the shell.
    pub fn env_text(&self) -> String {
        let pairs: Vec<(String, String)> = self.env.iter().map(|(k, v)| (format!("export {k}"), v.clone())).collect();
        lines(&self.notes, &pairs, |v| format!("'{}'", v.replace('\'', "'\\''")))
    }
}

/// The connection of the cluster's database: the address reachable from the LAN (the
/// homelab NodePort) or the in-cluster one, the user and database from the `-app` Secret,
/// the password in a 0600 `pgpass` file unless `show_secret`.
pub async fn database_of(cx: &Ctx, show_secret: bool, dir: Option<&Path>) -> Result<DatabaseConnection> {
    let d = cx
        .cluster
        .database
        .as_ref()
        .ok_or_else(|| usage("the cluster file declares no `database`; there is nothing to connect to"))?;
    let (a, dir) = reader(cx, PhaseId::Database, dir).await?;
    let secret = d.app_secret();
    let user = secret_value(&a, &d.namespace, &secret, "username").await?;
    let database = secret_value(&a, &d.namespace, &secret, "dbname").await?;
    let password = secret_value(&a, &d.namespace, &secret, "password").await?;
    let plain = |v: &str, what: &str| -> Result<()> {
        if v.is_empty() || v.len() > 256 || v.contains(['\n', ':', '\\', '@', '/']) {
            return Err(anyhow!(
                "the {what} in Secret {}/{secret} is not one homelab can pass on safely; read it with kubectl",
                d.namespace
            ));
        }
        Ok(())
    };
    plain(&user, "user name")?;
    plain(&database, "database name")?;
    if password.is_empty() || password.len() > 1024 || password.contains(['\n', '\r']) {
        return Err(anyhow!(
            "the password in Secret {}/{secret} is empty or has line breaks; read it with kubectl",
            d.namespace
        ));
    }
    let mut notes = Vec::new();
    let (host, port) = match d.node_port {
        Some(p) => (
            crate::engine::phases::manifests::lan_address(&a)
                .await
                .ok_or_else(|| anyhow!("no Kubernetes node reports an address, so the NodePort has none\n  hint: `homelab status` shows the nodes; once one is Ready, run this again"))?,
            p,
        ),
        None => {
            notes.push(format!(
                "{}-rw.{} answers only inside the cluster; set `database.expose: {{nodePort: 30432}}` to reach it from the LAN",
                d.name, d.namespace
            ));
            (format!("{}-rw.{}", d.name, d.namespace), 5432)
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut c = DatabaseConnection {
        uri: crate::engine::phases::database::uri(&user, &host, port, &database),
        host: host.clone(),
        port,
        database: database.clone(),
        user: user.clone(),
        files: vec![],
        notes,
        env: vec![
            ("PGHOST".into(), host.clone()),
            ("PGPORT".into(), port.to_string()),
            ("PGDATABASE".into(), database.clone()),
            ("PGUSER".into(), user.clone()),
        ],
    };
    if show_secret {
        // The password percent-encoded in the URI (it may hold any character).
        let enc: String = password
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        c.uri = format!("postgresql://{user}:{enc}@{host}:{port}/{database}");
        c.env.push(("PGPASSWORD".into(), password));
    } else {
        let esc = password.replace('\\', "\\\\").replace(':', "\\:");
        let p = dir.join(format!("{}.pgpass", d.name));
        write_atomic(&p, format!("{host}:{port}:{database}:{user}:{esc}\n").as_bytes(), Mode::Private)
            .with_context(|| format!("writing {}", p.display()))?;
        c.env.push(("PGPASSFILE".into(), p.display().to_string()));
        c.notes.push(format!(
            "the password is in {} (mode 0600), which libpq reads; `--show-secret` prints it",
            p.display()
        ));
        c.files.push(p);
    }
    c.env.push(("DATABASE_URL".into(), c.uri.clone()));
    Ok(c)
}
