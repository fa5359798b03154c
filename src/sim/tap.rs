//! A hook the simulators call after they acted on a request and before its answer leaves.
//!
//! The crash-anywhere test uses it to SIGKILL a real `homelab` process at exactly the most
//! dangerous moment of each mutating call — MAAS has deployed, the join ran, the object was
//! applied — but homelab never heard the answer. It is empty (and costs one read lock) in
//! every other use.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, RwLock};

type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// Shared by a simulator and whoever wants to watch it; cloning shares the hook.
#[derive(Clone, Default)]
pub struct Tap(Arc<RwLock<Option<Hook>>>);

impl Tap {
    /// Sets the hook; it receives `"METHOD /path?query"` for HTTP simulators and
    /// `"SSH <host> <rw|ro> <command>"` for the hosts.
    pub fn set(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut g) = self.0.write() {
            *g = Some(Arc::new(f));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut g) = self.0.write() {
            *g = None;
        }
    }

    pub fn call(&self, what: &str) {
        let hook = self.0.read().ok().and_then(|g| g.clone());
        if let Some(h) = hook {
            h(what);
        }
    }
}

/// axum middleware: runs the request, then calls the tap with what was done.
pub async fn layer(State(tap): State<Tap>, req: Request, next: Next) -> Response {
    let what = format!("{} {}", req.method(), req.uri());
    let resp = next.run(req).await;
    tap.call(&what);
    resp
}
