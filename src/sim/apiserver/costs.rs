//! What the simulated API server charges for a request, so a benchmark against it predicts a
//! real run: a base cost per request, more for a new connection (TCP and the TLS handshake),
//! more for a write and more again for a write that changes the object, and a cost per byte of
//! the request body and of the answer (decoding, validating, encoding on the server, and the
//! transfer). The charge is slept after the request was acted on, before the answer leaves,
//! concurrently for concurrent requests, as a real server serves them.
//!
//! [`ApiCosts::measured`] holds the figures measured against a real kube-apiserver v1.28.7
//! behind a MicroK8s node's `:16443` (issue 18; BENCHMARKS.md says how they are used): a GET
//! on a kept-alive connection 2.0 ms, on a new TLS connection 6.8 ms, a no-op server-side
//! apply of a small object 3.0 ms, a changing one 3.7 ms, a LIST of the 18 Rook CRDs
//! (1.1 MB) 124 ms.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiCosts {
    /// Every request: the round trip and the server's fixed work.
    pub request: Duration,
    /// The first request of a connection: TCP and the TLS handshake.
    pub new_connection: Duration,
    /// A write (PATCH, POST, PUT, DELETE) that changes nothing: admission, the merge.
    pub write: Duration,
    /// A write that changes the object: the store (etcd) write on top.
    pub change: Duration,
    /// Nanoseconds per byte of request body and of answer.
    pub per_byte_ns: f64,
}

impl ApiCosts {
    /// Free: what the tests use (their timings are the simulated systems' own waits).
    pub const FREE: ApiCosts = ApiCosts {
        request: Duration::ZERO,
        new_connection: Duration::ZERO,
        write: Duration::ZERO,
        change: Duration::ZERO,
        per_byte_ns: 0.0,
    };

    /// The real API server's costs (module comment): 2.0 ms a request; 6.8 − 2.0 = 4.8 ms a
    /// new connection; 3.0 − 2.0 = 1.0 ms a no-op write; 3.7 − 2.0 = 1.7 ms a changing write;
    /// (124 − 2) ms / 1.1 MB ≈ 111 ns a byte.
    pub fn measured() -> ApiCosts {
        ApiCosts {
            request: Duration::from_micros(2000),
            new_connection: Duration::from_micros(4800),
            write: Duration::from_micros(1000),
            change: Duration::from_micros(1700),
            per_byte_ns: 122e6 / 1.1e6,
        }
    }

    pub fn is_free(&self) -> bool {
        *self == ApiCosts::FREE
    }

    /// The charge for one request.
    pub fn charge(&self, new_connection: bool, write: Option<bool>, bytes: usize) -> Duration {
        let mut d = self.request + Duration::from_nanos((bytes as f64 * self.per_byte_ns) as u64);
        if new_connection {
            d += self.new_connection;
        }
        match write {
            Some(true) => d += self.change,
            Some(false) => d += self.write,
            None => {}
        }
        d
    }
}

/// Marks an answer to a write that changed nothing (set by the handler).
#[derive(Debug, Clone, Copy)]
pub struct NoWrite;

/// The costs, the connections seen (a connection is known by its client address) and the
/// bytes that crossed (request bodies and answers, when costs are charged).
#[derive(Clone)]
pub struct Meter {
    pub costs: ApiCosts,
    seen: Arc<Mutex<HashSet<SocketAddr>>>,
    bytes: Arc<AtomicU64>,
}

impl Meter {
    pub fn new(costs: ApiCosts) -> Meter {
        Meter { costs, seen: Arc::default(), bytes: Arc::default() }
    }

    /// Connections opened to the server so far.
    pub fn connections(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Bytes of request bodies and answers so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Upper bound of an answer read back to be measured (the largest LIST in the tests is a few MB).
const MAX_ANSWER: usize = 256 << 20;

/// axum middleware: runs the request, then sleeps what it costs.
pub async fn layer(State(meter): State<Meter>, req: Request, next: Next) -> Response {
    let new_connection = match req.extensions().get::<ConnectInfo<super::tls::PeerAddr>>() {
        Some(ConnectInfo(super::tls::PeerAddr(addr))) => {
            meter.seen.lock().map(|mut s| s.insert(*addr)).unwrap_or(false)
        }
        None => false,
    };
    if meter.costs.is_free() {
        return next.run(req).await;
    }
    let is_write = matches!(*req.method(), Method::PATCH | Method::POST | Method::PUT | Method::DELETE);
    let sent: usize =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let resp = next.run(req).await;
    let changed = resp.extensions().get::<NoWrite>().is_none() && resp.status().is_success();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ANSWER).await.unwrap_or_default();
    meter.bytes.fetch_add((sent + bytes.len()) as u64, Ordering::Relaxed);
    let charge = meter.costs.charge(new_connection, is_write.then_some(changed), sent + bytes.len());
    tokio::time::sleep(charge).await;
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_costs_give_back_the_measured_figures() {
        let c = ApiCosts::measured();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert!((ms(c.charge(false, None, 300)) - 2.0).abs() < 0.1);
        assert!((ms(c.charge(true, None, 300)) - 6.8).abs() < 0.1);
        assert!((ms(c.charge(false, Some(false), 600)) - 3.0).abs() < 0.1);
        assert!((ms(c.charge(false, Some(true), 600)) - 3.7).abs() < 0.1);
        assert!((ms(c.charge(false, None, 1_100_000)) - 124.0).abs() < 1.0);
    }
}
