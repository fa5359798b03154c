//! A local HTTP server that serves ../shared/upstream with the mirror layout
//! `<project>/<version>/<path>`, so the real download, verify and apply path runs in tests.

#![allow(dead_code)]

use std::path::PathBuf;

pub fn upstream() -> Option<PathBuf> {
    super::shared("upstream")
}

pub struct Mirror {
    pub url: String,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `root` (default: ../shared/upstream) on 127.0.0.1.
pub async fn serve(root: PathBuf) -> Mirror {
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h2 = hits.clone();
    let app = axum::Router::new()
        .fallback(move |State(root): State<PathBuf>, uri: Uri| {
            let hits = h2.clone();
            async move {
                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let rel = uri.path().trim_start_matches('/');
                if rel.contains("..") {
                    return Err(StatusCode::BAD_REQUEST);
                }
                std::fs::read(root.join(rel)).map_err(|_| StatusCode::NOT_FOUND)
            }
        })
        .with_state(root);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Mirror { url, hits, task }
}
