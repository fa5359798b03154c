//! A MAAS REST API 2.0 client on reqwest (rustls).
//!
//! * OAuth 1.0 PLAINTEXT, with a fresh nonce and timestamp on every request (MAAS refuses a
//!   reused nonce and clocks more than 300 s apart).
//! * Form bodies, never JSON (many MAAS handlers read `request.POST` and would silently ignore
//!   JSON parameters); `op=` in the query string, as the MAAS CLI sends it.
//! * Every path ends with a slash (MAAS answers 404 "Unknown API endpoint" otherwise).
//! * Idempotent GETs are retried on connection errors and 5xx; POSTs only when MAAS cannot
//!   have acted (connection refused, 503 from an unreachable rack controller). `Retry-After`
//!   is honoured. A MAAS that never answered this client (a wrong URL, a host that is down)
//!   is not retried: the error comes at once, its cause first, instead of after 15 s of
//!   silent backoff; once MAAS has answered, a refused connection is a restart and retried.
//!   Everything else comes back as a typed [`MaasError`] that keeps MAAS's text.

use super::types::*;
use crate::foundation::secrets::{Secret, register};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `consumer_key:token_key:token_secret`; all three parts are registered as secrets.
#[derive(Clone)]
pub struct ApiKey {
    consumer: Secret,
    token: Secret,
    secret: Secret,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl ApiKey {
    /// Parses a key, refusing anything that is not three colon-separated alphanumeric parts.
    pub fn parse(raw: &str) -> Result<ApiKey, String> {
        let raw = raw.trim();
        register(raw);
        let parts: Vec<&str> = raw.split(':').collect();
        let shape_ok =
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !shape_ok {
            return Err(format!(
                "the MAAS API key has the wrong shape: expected three parts `consumer:token:secret` of letters and digits, found {} part{}",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" }
            ));
        }
        Ok(ApiKey { consumer: Secret::new(parts[0]), token: Secret::new(parts[1]), secret: Secret::new(parts[2]) })
    }

    /// The `Authorization` header MAAS expects (PLAINTEXT: signature = `&` + token secret).
    pub fn header(&self, nonce: &str, timestamp: u64) -> String {
        format!(
            "OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{timestamp}\"",
            self.consumer.expose(),
            self.token.expose(),
            self.secret.expose()
        )
    }
}

/// An error from MAAS, classified, with MAAS's own text.
#[derive(Debug, thiserror::Error)]
pub enum MaasError {
    #[error(
        "MAAS refused the API key ({status}): {text}\n  hint: create a key in the MAAS UI (user menu → API keys) or with `maas apikey --username <you>`, store it in the file `maas.apiKeyFile` names (mode 0600) or in MAAS_API_KEY; also check this machine's clock (MAAS allows 5 minutes of skew)"
    )]
    Unauthorized { status: u16, text: String },
    #[error(
        "MAAS denied {what} (403){text}\n  hint: the key's user must own the machine or be a MAAS administrator, and the machine must not be locked"
    )]
    Forbidden { what: String, text: String },
    #[error("MAAS has no {what} (404): {text}")]
    NotFound { what: String, text: String },
    #[error("MAAS refused {what} because of the machine's state (409): {text}")]
    Conflict { what: String, text: String },
    #[error("MAAS rejected {what} (400): {text}")]
    BadRequest { what: String, text: String },
    #[error(
        "MAAS is unavailable for {what} ({status}): {text}\n  hint: MAAS or its rack controller is busy or unreachable; homelab retried {attempts} times — check `maas status` on the MAAS host and run again"
    )]
    Unavailable { what: String, status: u16, text: String, attempts: u32 },
    #[error("MAAS failed {what} ({status}): {text}")]
    Server { what: String, status: u16, text: String },
    #[error(
        "cannot reach MAAS at {url}: {} (for {what})\n  hint: check `maas.url` (e.g. http://10.0.0.1:5240/MAAS), that MAAS runs (`sudo maas status` on its host) and that this machine can reach it",
        cause(source)
    )]
    Transport {
        url: String,
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("MAAS sent an answer homelab cannot read for {what}: {detail}")]
    Decode { what: String, detail: String },
    #[error(
        "MAAS answered {what} with more than {limit} bytes, the most homelab reads from one answer; it stopped reading\n  hint: `maas.url` may point at something that is not MAAS, or a proxy in between is broken; check the URL in a browser"
    )]
    TooLarge { what: String, limit: u64 },
}

/// What went wrong under a transport error: its innermost cause ("Connection refused (os
/// error 111)", "failed to lookup address information", a certificate problem), not reqwest's
/// "error sending request for url"; the whole chain still follows in `{:#}`.
fn cause(e: &reqwest::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    while let Some(c) = inner.source() {
        inner = c;
    }
    inner.to_string()
}

/// The most homelab reads of one MAAS answer: a list of 1,000 machines is about 15 MB.
pub const MAX_ANSWER_BYTES: u64 = 32 << 20;

impl MaasError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, MaasError::Conflict { .. })
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, MaasError::NotFound { .. })
    }
    /// The error may be temporary: a later observe-and-act round can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MaasError::Unavailable { .. } | MaasError::Server { .. } | MaasError::Transport { .. })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries of one request (idempotent GETs; POSTs only where MAAS cannot have acted).
    pub retries: u32,
    pub backoff_first: Duration,
    /// Upper bound for a server-sent `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retries: 5,
            backoff_first: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

pub struct MaasClient {
    http: reqwest::Client,
    /// `<url>/api/2.0/`
    root: String,
    key: ApiKey,
    opts: ClientOptions,
    requests: AtomicU64,
    /// MAAS has answered this client at least once (any HTTP status).
    answered: std::sync::atomic::AtomicBool,
    /// At most this many requests in flight (MAAS is one region controller).
    inflight: tokio::sync::Semaphore,
}

type Params = Vec<(String, String)>;

pub fn params<const N: usize>(kv: [(&str, &str); N]) -> Params {
    kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl MaasClient {
    pub fn new(api_root: &str, key: ApiKey, opts: ClientOptions) -> anyhow::Result<MaasClient> {
        Self::with_ca(api_root, key, opts, None)
    }

    /// A client that also trusts the CA certificates in `ca_pem` (an https MAAS with a
    /// self-signed certificate, `maas.caFile`).
    pub fn with_ca(
        api_root: &str,
        key: ApiKey,
        opts: ClientOptions,
        ca_pem: Option<&[u8]>,
    ) -> anyhow::Result<MaasClient> {
        crate::foundation::tls::install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .user_agent(concat!("homelab/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                anyhow::anyhow!("`maas.caFile` holds no PEM certificate homelab can read: {e}\n  hint: it must be the CA certificate (-----BEGIN CERTIFICATE-----) that signed MAAS's certificate")
            })?;
            if certs.is_empty() {
                anyhow::bail!(
                    "`maas.caFile` holds no certificate\n  hint: it must be the CA certificate (-----BEGIN CERTIFICATE-----) that signed MAAS's certificate"
                );
            }
            b = b.tls_certs_merge(certs);
        }
        let http = b.build()?;
        let mut root = api_root.to_owned();
        if !root.ends_with('/') {
            root.push('/');
        }
        Ok(MaasClient {
            http,
            root,
            key,
            opts,
            requests: AtomicU64::new(0),
            answered: std::sync::atomic::AtomicBool::new(false),
            inflight: tokio::sync::Semaphore::new(16),
        })
    }

    /// Requests sent so far (for benchmarks).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn nonce() -> String {
        let mut b = [0u8; 16];
        let rng = ring::rand::SystemRandom::new();
        if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
            // Fall back to time + counter; uniqueness is what MAAS checks.
            static N: AtomicU64 = AtomicU64::new(0);
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
            return format!("{t:x}{:x}", N.fetch_add(1, Ordering::Relaxed));
        }
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn timestamp() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    /// Says on the terminal (a warning, shown at every verbosity) that a request is tried
    /// again, why, when and how often: a retry never waits in silence.
    fn say_retry(&self, what: &str, err: &MaasError, wait: Duration, attempt: u32) {
        let why = err.to_string();
        let why = why.lines().next().unwrap_or_default();
        tracing::warn!(
            target: "homelab::maas",
            "{why} — trying {what} again in {} (try {} of {})",
            crate::foundation::time::fmt_secs(wait.as_secs_f64()),
            attempt + 1,
            self.opts.retries + 1
        );
    }

    /// Sends one request with retries; returns the body of a 2xx answer.
    async fn send(&self, post: bool, path: &str, query: &Params, form: &Params) -> Result<bytes::Bytes, MaasError> {
        self.send_method(if post { reqwest::Method::POST } else { reqwest::Method::GET }, path, query, form).await
    }

    async fn send_method(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &Params,
        form: &Params,
    ) -> Result<bytes::Bytes, MaasError> {
        let post = method != reqwest::Method::GET;
        let url = format!("{}{}", self.root, path);
        let what = describe_method(method.as_str(), path, query);
        let mut attempt = 0u32;
        let mut delay = self.opts.backoff_first;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url);
            req = req.query(query).header("Authorization", self.key.header(&Self::nonce(), Self::timestamp()));
            if post {
                req = req.form(form);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "homelab::maas", "{what} (attempt {attempt})");
            let permit = self.inflight.acquire().await.ok();
            let resp = req.send().await;
            drop(permit);
            let (retry, err) = match resp {
                Err(e) => {
                    // A refused connection never reached MAAS, so even a POST can be retried —
                    // once MAAS has answered before (it restarts); never-answered is not
                    // something a retry fixes.
                    let safe = self.answered.load(Ordering::Relaxed)
                        && (e.is_connect() || (!post && (e.is_timeout() || e.is_request())));
                    (
                        safe.then_some(None),
                        MaasError::Transport { url: self.root.clone(), what: what.clone(), source: e },
                    )
                }
                Ok(resp) => {
                    self.answered.store(true, Ordering::Relaxed);
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = match crate::foundation::limits::read_body(resp, MAX_ANSWER_BYTES, &what).await {
                        Ok(b) => bytes::Bytes::from(b),
                        Err(crate::foundation::limits::BodyError::TooLarge { what, limit }) => {
                            // Not retried: the next answer would be as large.
                            return Err(MaasError::TooLarge { what, limit });
                        }
                        Err(crate::foundation::limits::BodyError::Transport(e)) => {
                            // The connection dropped mid-answer: MAAS may have acted.
                            let err = MaasError::Transport { url: self.root.clone(), what: what.clone(), source: e };
                            if !post && attempt <= self.opts.retries {
                                self.say_retry(&what, &err, delay, attempt);
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(10));
                                continue;
                            }
                            return Err(err);
                        }
                    };
                    tracing::debug!(target: "homelab::maas", "{what}: HTTP {status}, {} bytes", body.len());
                    if (200..300).contains(&status) {
                        return Ok(body);
                    }
                    // Shown to the user: terminal-safe, and no more than a screenful.
                    let text: String = crate::foundation::text::printable(String::from_utf8_lossy(&body).trim())
                        .chars()
                        .take(2000)
                        .collect();
                    let err = classify(status, &what, text, attempt);
                    let retryable = match status {
                        503 => true,
                        500 | 502 | 504 => !post,
                        _ => false,
                    };
                    (retryable.then_some(retry_after), err)
                }
            };
            match retry {
                Some(after) if attempt <= self.opts.retries => {
                    let wait = after.map(|a| a.min(self.opts.max_retry_after)).unwrap_or(delay);
                    self.say_retry(&what, &err, wait, attempt);
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                _ => {
                    return Err(match err {
                        MaasError::Unavailable { what, status, text, .. } => {
                            MaasError::Unavailable { what, status, text, attempts: attempt }
                        }
                        e => e,
                    });
                }
            }
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, query: Params) -> Result<T, MaasError> {
        let body = self.send(false, path, &query, &Vec::new()).await?;
        decode(&body, &describe(false, path, &query))
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        op: &str,
        form: Params,
    ) -> Result<T, MaasError> {
        let query = params([("op", op)]);
        let body = self.send(true, path, &query, &form).await?;
        decode(&body, &describe(true, path, &query))
    }

    // ---- read-only calls ----

    /// `GET version/` (anonymous): checks the URL points at a MAAS.
    pub async fn version(&self) -> Result<Version, MaasError> {
        self.get_json("version/", Vec::new()).await
    }

    /// `GET users/?op=whoami`: checks the key first (MAAS answers some unauthenticated calls
    /// with 400, or even acts on them, instead of 401).
    pub async fn whoami(&self) -> Result<Whoami, MaasError> {
        self.get_json("users/", params([("op", "whoami")])).await
    }

    /// Machines owning any of these MACs (one request per 50 MACs).
    pub async fn machines_by_mac(&self, macs: &[String]) -> Result<Vec<Machine>, MaasError> {
        let mut out = Vec::new();
        for chunk in macs.chunks(50) {
            let q = chunk.iter().map(|m| ("mac_address".to_owned(), m.clone())).collect();
            let mut ms: Vec<Machine> = self.get_json("machines/", q).await?;
            out.append(&mut ms);
        }
        Ok(out)
    }

    /// Machines with one of these hostnames.
    pub async fn machines_by_hostname(&self, hostnames: &[String]) -> Result<Vec<Machine>, MaasError> {
        let q = hostnames.iter().map(|h| ("hostname".to_owned(), h.clone())).collect();
        self.get_json("machines/", q).await
    }

    /// Machines by system id (one request per 50 ids): the batched status poll.
    pub async fn machines_by_id(&self, ids: &[String]) -> Result<Vec<Machine>, MaasError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(50) {
            let q = chunk.iter().map(|m| ("id".to_owned(), m.clone())).collect();
            let mut ms: Vec<Machine> = self.get_json("machines/", q).await?;
            out.append(&mut ms);
        }
        Ok(out)
    }

    /// The region and rack controllers (`regioncontrollers/`, `rackcontrollers/`): the MAAS
    /// host itself is listed here, never under `machines/`. A controller that is both is
    /// listed once.
    pub async fn controllers(&self) -> Result<Vec<Controller>, MaasError> {
        let mut out: Vec<Controller> = self.get_json("regioncontrollers/", Vec::new()).await?;
        let racks: Vec<Controller> = self.get_json("rackcontrollers/", Vec::new()).await?;
        for r in racks {
            if !out.iter().any(|c| c.system_id == r.system_id) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One MAAS setting (`GET maas/?op=get_config&name=…`), as MAAS answers it (JSON).
    pub async fn get_config(&self, name: &str) -> Result<serde_json::Value, MaasError> {
        self.get_json("maas/", params([("op", "get_config"), ("name", name)])).await
    }

    pub async fn machines_with_status(&self, status: Status) -> Result<Vec<Machine>, MaasError> {
        self.get_json("machines/", params([("status", &status.filter_label())])).await
    }

    pub async fn machine(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.get_json(&format!("machines/{system_id}/"), Vec::new()).await
    }

    pub async fn volume_groups(&self, system_id: &str) -> Result<Vec<VolumeGroup>, MaasError> {
        self.get_json(&format!("nodes/{system_id}/volume-groups/"), Vec::new()).await
    }

    pub async fn block_devices(&self, system_id: &str) -> Result<Vec<BlockDevice>, MaasError> {
        self.get_json(&format!("nodes/{system_id}/blockdevices/"), Vec::new()).await
    }

    pub async fn ssh_keys(&self) -> Result<Vec<SshKey>, MaasError> {
        self.get_json("account/prefs/sshkeys/", Vec::new()).await
    }

    /// Newest events of a machine at `level` and above.
    pub async fn events(&self, system_id: &str, level: &str, limit: u32) -> Result<EventsPage, MaasError> {
        self.get_json(
            "events/",
            params([("op", "query"), ("id", system_id), ("level", level), ("limit", &limit.to_string())]),
        )
        .await
    }

    // ---- mutations ----

    pub async fn commission(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.post_json(&format!("machines/{system_id}/"), "commission", Vec::new()).await
    }

    /// `set_storage_layout lvm` with the root logical volume of `root_bytes`. It clears the
    /// whole storage configuration of the machine first, so only call it on a Ready machine
    /// homelab is laying out.
    pub async fn set_lvm_layout(&self, system_id: &str, root_bytes: u64, vg_name: &str) -> Result<Machine, MaasError> {
        let form = params([
            ("storage_layout", "lvm"),
            ("vg_name", vg_name),
            ("lv_name", "lvroot"),
            ("lv_size", &root_bytes.to_string()),
        ]);
        self.post_json(&format!("machines/{system_id}/"), "set_storage_layout", form).await
    }

    /// An unformatted logical volume; `size: None` takes all free space of the group.
    pub async fn create_logical_volume(
        &self,
        system_id: &str,
        vg_id: i64,
        name: &str,
        size: Option<u64>,
    ) -> Result<BlockDevice, MaasError> {
        let mut form = params([("name", name)]);
        if let Some(s) = size {
            form.push(("size".into(), s.to_string()));
        }
        self.post_json(&format!("nodes/{system_id}/volume-group/{vg_id}/"), "create_logical_volume", form).await
    }

    pub async fn deploy(
        &self,
        system_id: &str,
        distro_series: &str,
        user_data_b64: Option<&str>,
    ) -> Result<Machine, MaasError> {
        let mut form = params([("distro_series", distro_series)]);
        if let Some(u) = user_data_b64 {
            form.push(("user_data".into(), u.to_owned()));
        }
        self.post_json(&format!("machines/{system_id}/"), "deploy", form).await
    }

    /// `PUT machines/{id}/ hostname=…`
    pub async fn rename(&self, system_id: &str, hostname: &str) -> Result<Machine, MaasError> {
        let path = format!("machines/{system_id}/");
        let body =
            self.send_method(reqwest::Method::PUT, &path, &Vec::new(), &params([("hostname", hostname)])).await?;
        decode(&body, &format!("PUT {path}"))
    }

    /// Sets one owner-data key of a machine the caller owns (an empty value removes it).
    /// MAAS answers 409 for a machine that is not allocated to the caller.
    pub async fn set_owner_data(&self, system_id: &str, key: &str, value: &str) -> Result<Machine, MaasError> {
        self.post_json(&format!("machines/{system_id}/"), "set_owner_data", params([(key, value)])).await
    }

    pub async fn release(&self, system_id: &str, comment: &str) -> Result<Machine, MaasError> {
        self.release_erasing(system_id, comment, None).await
    }

    /// Releases a machine, erasing its disks first when `erase` is `quick`, `secure` or
    /// `full` (MAAS boots it to wipe them; docs/day2.md §1.9).
    pub async fn release_erasing(
        &self,
        system_id: &str,
        comment: &str,
        erase: Option<&str>,
    ) -> Result<Machine, MaasError> {
        let mut p = params([("comment", comment)]);
        if let Some(e) = erase {
            p.push(("erase".into(), "true".into()));
            match e {
                "quick" => p.push(("quick_erase".into(), "true".into())),
                "secure" => p.push(("secure_erase".into(), "true".into())),
                _ => {}
            }
        }
        self.post_json(&format!("machines/{system_id}/"), "release", p).await
    }

    /// Registers a public key for the calling user (201). A key MAAS already has is a 400
    /// "already been added", which callers treat as success.
    pub async fn add_ssh_key(&self, key: &str) -> Result<SshKey, MaasError> {
        let form = params([("key", key)]);
        let body = self.send(true, "account/prefs/sshkeys/", &Vec::new(), &form).await?;
        decode(&body, "POST account/prefs/sshkeys/")
    }
}

fn describe(post: bool, path: &str, query: &Params) -> String {
    describe_method(if post { "POST" } else { "GET" }, path, query)
}

fn describe_method(method: &str, path: &str, query: &Params) -> String {
    let op = query.iter().find(|(k, _)| k == "op").map(|(_, v)| format!("?op={v}")).unwrap_or_default();
    format!("{method} {path}{op}")
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, MaasError> {
    serde_json::from_slice(body).map_err(|e| {
        let snippet: String = String::from_utf8_lossy(body).chars().take(120).collect();
        MaasError::Decode { what: what.to_owned(), detail: format!("{e} (answer began: {snippet:?})") }
    })
}

fn classify(status: u16, what: &str, text: String, attempts: u32) -> MaasError {
    let what = what.to_owned();
    match status {
        // A 401 for a wrong PLAINTEXT secret echoes the expected signature: keep only the
        // part before it (the secret filter would mask it too).
        401 => {
            let text =
                text.split("Expected signature").next().unwrap_or("").trim_end_matches([' ', '.', '\'']).to_owned();
            MaasError::Unauthorized { status, text: if text.is_empty() { "Forbidden".into() } else { text } }
        }
        403 => MaasError::Forbidden { what, text: if text.is_empty() { String::new() } else { format!(": {text}") } },
        404 => MaasError::NotFound { what, text },
        409 => MaasError::Conflict { what, text },
        400 => {
            // Field errors come as {"field": ["message", …]}; flatten them.
            let text = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
                Ok(m) => m
                    .iter()
                    .map(|(k, v)| {
                        let msgs = v
                            .as_array()
                            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
                            .unwrap_or_else(|| v.to_string());
                        if k == "__all__" { msgs } else { format!("{k}: {msgs}") }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(_) => text,
            };
            MaasError::BadRequest { what, text }
        }
        502..=504 => MaasError::Unavailable { what, status, text, attempts },
        _ => MaasError::Server { what, status, text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_shapes() {
        assert!(ApiKey::parse("AbCdEfGhIjKlMnOpQr:AbCdEfGhIjKlMnOpQr:AbCdEfGhIjKlMnOpQrStUvWxYz012345").is_ok());
        assert!(ApiKey::parse("not-a-key").unwrap_err().contains("three parts"));
        assert!(ApiKey::parse("a:b").is_err());
        assert!(ApiKey::parse("a:b:c:d").is_err());
        assert!(ApiKey::parse("a b:c:d").is_err());
        assert!(ApiKey::parse("a::d").is_err());
    }

    #[test]
    fn header_is_plaintext_with_escaped_ampersand() {
        let k = ApiKey::parse("ck1234567:tk1234567:secret1234567").unwrap();
        let h = k.header("n0nce", 1700000000);
        assert!(h.starts_with("OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\""));
        assert!(h.contains("oauth_signature=\"%26secret1234567\""));
        assert!(h.contains("oauth_nonce=\"n0nce\"") && h.contains("oauth_timestamp=\"1700000000\""));
        assert_eq!(format!("{k:?}"), "ApiKey([redacted])");
    }

    #[test]
    fn field_errors_are_flattened() {
        let e = classify(400, "POST x", r#"{"lv_size": ["Size is too large. Maximum size is 5."]}"#.into(), 1);
        assert_eq!(e.to_string(), "MAAS rejected POST x (400): lv_size: Size is too large. Maximum size is 5.");
        let e = classify(
            401,
            "GET x",
            "Authorization Error: 'Invalid signature. Expected signature base string: &abc'".into(),
            1,
        );
        assert!(!e.to_string().contains("&abc"));
    }
}
