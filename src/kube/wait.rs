//! Readiness waits on Kubernetes objects, with the condition given as data: a condition type
//! and status, the observed generation, and predicates on fields. Every wait has a deadline,
//! backs off, and names the object and the condition when it gives up.

use super::apply::Applier;
use crate::foundation::output::Ui;
use crate::foundation::phase_id::PhaseId;
use crate::foundation::wait::{Backoff, Probe, WaitSpec, wait_for};
use anyhow::Result;
use serde_json::Value;
use std::time::Duration;

/// A check on one field (JSON pointer into the object).
#[derive(Debug, Clone)]
pub enum Check {
    Equals(Value),
    OneOf(Vec<Value>),
    AtLeast(f64),
    /// Equal to another field of the same object (e.g. readyReplicas == spec.replicas).
    SameAs(String),
    Exists,
}

/// What "ready" means for an object.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// `status.conditions[type=T].status == S`
    pub condition: Option<(String, String)>,
    /// `status.observedGeneration == metadata.generation` (the status describes the spec we applied).
    pub observed_generation: bool,
    pub fields: Vec<(String, Check)>,
    /// A condition whose presence means failure (e.g. `ReplicaFailure`), shown when it appears.
    pub failure_condition: Option<String>,
}

impl Expect {
    pub fn condition(t: &str, s: &str) -> Expect {
        Expect { condition: Some((t.into(), s.into())), ..Default::default() }
    }
    pub fn with_generation(mut self) -> Expect {
        self.observed_generation = true;
        self
    }
    pub fn field(mut self, pointer: &str, check: Check) -> Expect {
        self.fields.push((pointer.into(), check));
        self
    }

    /// `None` when satisfied, else what is still missing.
    pub fn unmet(&self, obj: &Value) -> Option<String> {
        let conds = obj.pointer("/status/conditions").and_then(Value::as_array);
        if let Some((t, s)) = &self.condition {
            let c = conds.and_then(|cs| cs.iter().find(|c| c["type"] == t.as_str()));
            match c {
                Some(c) if c["status"] == s.as_str() => {}
                Some(c) => {
                    let msg = c["message"].as_str().or(c["reason"].as_str()).unwrap_or("");
                    return Some(format!(
                        "condition {t} is {}{}",
                        c["status"].as_str().unwrap_or("?"),
                        if msg.is_empty() { String::new() } else { format!(": {msg}") }
                    ));
                }
                None => return Some(format!("no {t} condition yet")),
            }
        }
        if self.observed_generation {
            let g = obj.pointer("/metadata/generation").and_then(Value::as_i64);
            let og = obj.pointer("/status/observedGeneration").and_then(Value::as_i64);
            if g.is_some() && og != g {
                return Some(format!(
                    "status describes generation {} of {}",
                    og.map(|x| x.to_string()).unwrap_or("-".into()),
                    g.unwrap_or(0)
                ));
            }
        }
        for (p, check) in &self.fields {
            let v = obj.pointer(p);
            let ok = match (check, v) {
                (Check::Exists, v) => v.is_some_and(|v| !v.is_null()),
                (Check::Equals(want), Some(v)) => v == want,
                (Check::OneOf(wants), Some(v)) => wants.contains(v),
                (Check::AtLeast(n), Some(v)) => v.as_f64().is_some_and(|x| x >= *n),
                (Check::SameAs(other), Some(v)) => obj.pointer(other).is_some_and(|o| o == v),
                (_, None) => false,
            };
            if !ok {
                return Some(format!("{p} is {}", v.map(|v| v.to_string()).unwrap_or_else(|| "missing".into())));
            }
        }
        None
    }
}

/// The object a wait is about.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }
    pub fn describe(&self) -> String {
        format!("{} {}{}", self.kind, self.namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default(), self.name)
    }
}

/// Waits until `obj` meets `expect`; returns the object.
#[allow(clippy::too_many_arguments)]
pub async fn wait_object(
    applier: &Applier,
    ui: &Ui,
    phase: PhaseId,
    obj: &ObjectRef,
    what: &str,
    expect: &Expect,
    deadline: Duration,
    backoff: Backoff,
    hint: &str,
) -> Result<Value> {
    let spec = WaitSpec { phase, target: obj.describe(), what: what.into(), deadline, backoff, hint: hint.into() };
    wait_for(ui, &spec, || async {
        let o = applier.get(&obj.api_version, &obj.kind, obj.namespace.as_deref(), &obj.name).await?;
        let Some(o) = o else { return Ok(Probe::Pending(Some("does not exist yet".into()))) };
        let v = serde_json::to_value(&o)?;
        Ok(match expect.unmet(&v) {
            None => Probe::Ready(v),
            Some(why) => Probe::Pending(Some(why)),
        })
    })
    .await
}

/// A Deployment is Available with all replicas updated.
pub fn deployment_available() -> Expect {
    Expect::condition("Available", "True")
        .with_generation()
        .field("/status/updatedReplicas", Check::SameAs("/spec/replicas".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expectations() {
        let e = Expect::condition("Ready", "True")
            .with_generation()
            .field("/status/ceph/health", Check::OneOf(vec![json!("HEALTH_OK"), json!("HEALTH_WARN")]));
        let mut o = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}], "ceph": {"health": "HEALTH_OK"}}});
        assert!(e.unmet(&o).unwrap().contains("generation 1 of 2"));
        o["status"]["observedGeneration"] = json!(2);
        assert_eq!(e.unmet(&o), None);
        o["status"]["ceph"]["health"] = json!("HEALTH_ERR");
        assert!(e.unmet(&o).unwrap().contains("HEALTH_ERR"));
        let d = deployment_available();
        let dep = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "updatedReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}});
        assert_eq!(d.unmet(&dep), None);
        let nr = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "message": "Kafka cluster is being deployed"}]}});
        assert!(Expect::condition("Ready", "True").unmet(&nr).unwrap().contains("being deployed"));
    }
}
