//! The simulated hosts served over HTTP, so that a separate `homelab` process can use them:
//! the crash-anywhere tests SIGKILL a real `homelab up` process, and the scale benchmark
//! measures its memory. Only the test-only binary `homelab-testlab` (tests/bin/testlab.rs)
//! uses them; the release binary has no way to.

use super::hosts::SimHosts;
use crate::ssh::{Cmd, Connector, HostAddr, Output, Remote};
use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct WireCmd {
    argv: Vec<String>,
    sudo: bool,
    stdin: Option<Vec<u8>>,
    timeout_ms: u64,
    #[serde(default)]
    read_only: bool,
}

#[derive(Serialize, Deserialize)]
struct RunReq {
    host: HostAddr,
    cmd: WireCmd,
}

#[derive(Serialize, Deserialize)]
struct RunResp {
    ok: bool,
    error: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

struct ServerState {
    hosts: Arc<SimHosts>,
    remotes: Mutex<HashMap<HostAddr, Arc<dyn Remote>>>,
}

fn fail(e: impl std::fmt::Display) -> Json<RunResp> {
    Json(RunResp { ok: false, error: e.to_string(), code: None, stdout: String::new(), stderr: String::new() })
}

async fn connect(State(s): State<Arc<ServerState>>, Json(h): Json<HostAddr>) -> Json<RunResp> {
    match s.hosts.connect(&h).await {
        Ok(r) => {
            s.remotes.lock().await.insert(h, r);
            Json(RunResp { ok: true, error: String::new(), code: None, stdout: String::new(), stderr: String::new() })
        }
        Err(e) => fail(format!("{e:#}")),
    }
}

async fn run(State(s): State<Arc<ServerState>>, Json(req): Json<RunReq>) -> Json<RunResp> {
    let r = s.remotes.lock().await.get(&req.host).cloned();
    let Some(r) = r else { return fail(format!("not connected to {}", req.host.hostname)) };
    let cmd = Cmd {
        argv: req.cmd.argv,
        sudo: req.cmd.sudo,
        stdin: req.cmd.stdin,
        timeout: Duration::from_millis(req.cmd.timeout_ms),
        read_only: req.cmd.read_only,
    };
    let result = r.run(&cmd).await;
    s.hosts.tap.call(&format!(
        "SSH {} {} {}",
        req.host.hostname,
        if cmd.read_only { "ro" } else { "rw" },
        cmd.display()
    ));
    match result {
        Ok(o) => Json(RunResp { ok: true, error: String::new(), code: o.code, stdout: o.stdout, stderr: o.stderr }),
        Err(e) => fail(format!("{e:#}")),
    }
}

async fn api_server(State(s): State<Arc<ServerState>>) -> Json<Option<String>> {
    Json(s.hosts.api_server_override(""))
}

/// Serves `hosts` on 127.0.0.1; returns the URL.
pub async fn serve(hosts: Arc<SimHosts>) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let state = Arc::new(ServerState { hosts, remotes: Mutex::new(HashMap::new()) });
    let app = axum::Router::new()
        .route("/connect", axum::routing::post(connect))
        .route("/run", axum::routing::post(run))
        .route("/api-server", axum::routing::get(api_server))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, task))
}

/// The client side: a [`Connector`] that reaches simulated hosts over HTTP.
pub struct HttpHosts {
    url: String,
    http: reqwest::Client,
    api: Option<String>,
}

impl HttpHosts {
    pub async fn new(url: &str) -> anyhow::Result<HttpHosts> {
        crate::foundation::tls::install_crypto_provider();
        let http = reqwest::Client::builder().build()?;
        let api: Option<String> = http.get(format!("{url}/api-server")).send().await?.json().await?;
        Ok(HttpHosts { url: url.trim_end_matches('/').to_owned(), http, api })
    }
}

struct HttpRemote {
    url: String,
    http: reqwest::Client,
    host: HostAddr,
    trips: AtomicU64,
}

#[async_trait]
impl Connector for HttpHosts {
    async fn connect(&self, host: &HostAddr) -> anyhow::Result<Arc<dyn Remote>> {
        let r: RunResp = self.http.post(format!("{}/connect", self.url)).json(host).send().await?.json().await?;
        if !r.ok {
            anyhow::bail!("{}", r.error);
        }
        Ok(Arc::new(HttpRemote {
            url: self.url.clone(),
            http: self.http.clone(),
            host: host.clone(),
            trips: AtomicU64::new(0),
        }))
    }

    fn api_server_override(&self, _node_ip: &str) -> Option<String> {
        self.api.clone()
    }
}

#[async_trait]
impl Remote for HttpRemote {
    async fn run(&self, cmd: &Cmd) -> anyhow::Result<Output> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        let req = RunReq {
            host: self.host.clone(),
            cmd: WireCmd {
                argv: cmd.argv.clone(),
                sudo: cmd.sudo,
                stdin: cmd.stdin.clone(),
                timeout_ms: cmd.timeout.as_millis() as u64,
                read_only: cmd.read_only,
            },
        };
        let r: RunResp = self.http.post(format!("{}/run", self.url)).json(&req).send().await?.json().await?;
        if !r.ok {
            anyhow::bail!("{}", r.error);
        }
        Ok(Output { code: r.code, stdout: r.stdout, stderr: r.stderr })
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}
