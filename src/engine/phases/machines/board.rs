//! The status board: while machines are commissioned or deployed, one MAAS list request per
//! poll interval refreshes every watched machine's record, so waiting for many machines costs
//! no more requests than waiting for one.

use crate::maas::MaasClient;
use crate::maas::types::Machine as MaasMachine;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Every machine's latest MAAS record, refreshed by one list request per poll interval for
/// all machines being waited on (the cost of waiting does not grow with the machine count).
pub struct StatusBoard {
    client: Arc<MaasClient>,
    interval: Duration,
    watched: Mutex<HashSet<String>>,
    latest: watch::Sender<HashMap<String, Arc<MaasMachine>>>,
    last_error: Mutex<Option<String>>,
    running: Mutex<bool>,
}

impl StatusBoard {
    pub fn new(client: Arc<MaasClient>, interval: Duration) -> Arc<StatusBoard> {
        Arc::new(StatusBoard {
            client,
            interval,
            watched: Mutex::new(HashSet::new()),
            latest: watch::channel(HashMap::new()).0,
            last_error: Mutex::new(None),
            running: Mutex::new(false),
        })
    }

    pub fn watch(self: &Arc<Self>, system_id: &str) {
        if let Ok(mut w) = self.watched.lock() {
            w.insert(system_id.to_owned());
        }
        let start = self.running.lock().map(|mut r| !std::mem::replace(&mut *r, true)).unwrap_or(false);
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.poll_loop().await });
        }
    }

    pub fn unwatch(&self, system_id: &str) {
        if let Ok(mut w) = self.watched.lock() {
            w.remove(system_id);
        }
    }

    async fn poll_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.interval).await;
            let ids: Vec<String> = self.watched.lock().map(|w| w.iter().cloned().collect()).unwrap_or_default();
            if ids.is_empty() {
                if let Ok(mut r) = self.running.lock() {
                    // Re-check under the flag: a watcher may have arrived meanwhile.
                    if self.watched.lock().map(|w| w.is_empty()).unwrap_or(true) {
                        *r = false;
                        return;
                    }
                }
                continue;
            }
            match self.client.machines_by_id(&ids).await {
                Ok(ms) => {
                    if let Ok(mut e) = self.last_error.lock() {
                        *e = None;
                    }
                    self.latest.send_modify(|l| {
                        for m in ms {
                            l.insert(m.system_id.clone(), Arc::new(m));
                        }
                    });
                }
                Err(e) => {
                    if let Ok(mut le) = self.last_error.lock() {
                        *le = Some(e.to_string());
                    }
                }
            }
        }
    }

    pub fn get(&self, system_id: &str) -> Option<Arc<MaasMachine>> {
        self.latest.borrow().get(system_id).cloned()
    }

    /// The error of the last failed poll, if the newest poll failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    pub fn forget(&self, system_id: &str) {
        self.latest.send_modify(|l| {
            l.remove(system_id);
        });
    }
}
