//! The `database` section: a PostgreSQL cluster run by CloudNativePG. The release follows
//! the cluster's Kubernetes minor through the catalog; the rules the file alone can decide
//! (a name CloudNativePG accepts, sizes, storage classes a pool provides, parameters as
//! strings, an image pinned by tag) and the resolution. Shrinking a volume and removing the
//! WAL volume need the running Cluster: the database phase refuses them.

use super::*;
use crate::config::model::DatabaseSpec;
use std::collections::BTreeMap;

/// CloudNativePG's limit on a Cluster's name (its objects append suffixes).
pub const NAME_MAX: usize = 50;

impl Semantic<'_> {
    pub(in crate::config::validate) fn database(
        &mut self,
        rook: Option<&Rook>,
        k: Option<&Kubernetes>,
    ) -> Option<Database> {
        let d: &DatabaseSpec = self.file.database.as_ref()?;
        let release = match k.and_then(Kubernetes::minor) {
            Some(minor) => match self.catalog.cnpg_for(minor) {
                Some(r) => r.clone(),
                None => {
                    let ranges: Vec<String> = self
                        .catalog
                        .cloudnativepg
                        .iter()
                        .map(|r| format!("{} ({})", r.version, r.kubernetes.describe()))
                        .collect();
                    self.err_key(
                        "/database",
                        format!("no pinned CloudNativePG release supports Kubernetes {}.{}", minor.0, minor.1),
                        format!("pinned releases: {}; change the MicroK8s channel", ranges.join(", ")),
                    );
                    return None;
                }
            },
            // An existing cluster: the newest release (the run checks the server's version).
            None => self.catalog.cloudnativepg.iter().max_by_key(|r| r.semver())?.clone(),
        };
        if d.name.len() > NAME_MAX {
            self.err(
                "/database/name",
                format!("`{}` has {} characters; CloudNativePG allows at most {NAME_MAX}", d.name, d.name.len()),
                "use a shorter name",
            );
        }
        let classes = PoolClasses::of(rook, k);
        let volume = |this: &mut Self, ptr: &str, v: &crate::config::model::DatabaseVolume| -> (String, String) {
            if parse_quantity(&v.size) == Some(0) {
                this.err(&format!("{ptr}/size"), format!("`{}` is zero", v.size), "use e.g. 20Gi");
            }
            this.volume_rules(ptr, &v.size, v.class.as_ref(), &classes, "use e.g. 20Gi");
            (v.size.clone(), v.class.clone().or(classes.default.clone()).unwrap_or_default())
        };
        let storage = volume(self, "/database/storage", &d.storage);
        let wal = d.wal_storage.as_ref().map(|w| volume(self, "/database/walStorage", w));
        let mut parameters = BTreeMap::new();
        for (key, v) in d.parameters.iter().flatten() {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "on" } else { "off" }.to_owned(),
                _ => {
                    self.err(
                        &format!("/database/parameters/{key}"),
                        format!("parameter `{key}` must be a single value"),
                        "PostgreSQL parameters are strings, numbers or booleans",
                    );
                    continue;
                }
            };
            parameters.insert(key.clone(), text);
        }
        let image = d.image.clone().or(release.default_image.clone());
        match &image {
            Some(i) if i.ends_with(":latest") || !(i.contains(':') || i.contains('@')) => self.err(
                "/database/image",
                format!("`{i}` does not pin a PostgreSQL version"),
                "name a tag with the major version, e.g. ghcr.io/cloudnative-pg/postgresql:16.4 (CloudNativePG reads the major from it)",
            ),
            Some(_) => {}
            None => self.warn(
                "/database/name",
                format!("the PostgreSQL image is not pinned: CloudNativePG {} uses its own default", release.version),
                "set `image:` (e.g. ghcr.io/cloudnative-pg/postgresql:16.4) so an operator upgrade cannot change it",
            ),
        }
        if d.instances.unwrap_or(1) == 1 {
            self.warn(
                "/database/name",
                format!("database `{}` has one instance: its PodDisruptionBudget blocks draining its node, so a MicroK8s upgrade round or `remove-node` of that PC waits until its deadline", d.name),
                "use `instances: 3` (a replica takes over while a node drains; the data is on every instance)",
            );
        }
        let database = d.database.clone().unwrap_or_else(|| "app".into());
        Some(Database {
            namespace: d.namespace.clone().unwrap_or_else(|| "databases".into()),
            name: d.name.clone(),
            instances: d.instances.unwrap_or(1),
            storage,
            wal,
            owner: d.owner.clone().unwrap_or_else(|| database.clone()),
            database,
            parameters,
            image,
            node_port: d.expose.as_ref().map(|e| e.node_port),
            release,
        })
    }
}
