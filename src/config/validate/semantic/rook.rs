//! The `rook` section of cluster.yaml: its semantic rules and its resolved form.

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn rook(&mut self, machines: &[Machine], k: Option<&Kubernetes>) -> Option<Rook> {
        let r = self.file.rook.as_ref()?;
        let Some(release) = self.catalog.rook(&r.version).cloned() else {
            let versions = self.catalog.rook_versions().join(", ");
            self.err(
                "/rook/version",
                format!("Rook {} is not in the release catalog", r.version),
                format!("pinned releases: {versions} (add others with --catalog FILE)"),
            );
            return None;
        };
        if let Some(minor) = k.and_then(Kubernetes::minor) {
            let kv = format!("{}.{}", minor.0, minor.1);
            if !release.kubernetes.contains(minor) {
                self.err(
                    "/rook/version",
                    format!(
                        "Rook {} supports Kubernetes {}, but the channel gives {kv}",
                        release.version,
                        release.kubernetes.describe()
                    ),
                    rook_hint(self.catalog, minor),
                );
            } else if release.kubernetes.above_tested(minor) {
                self.warn(
                    "/rook/version",
                    format!(
                        "Rook {} was tested up to Kubernetes {}; the channel gives {kv}",
                        release.version,
                        release.kubernetes.tested.as_deref().unwrap_or("?")
                    ),
                    "it is documented as \"1.19 or higher\"; watch the operator log after the upgrade",
                );
            }
        }
        let with_ceph = machines.iter().filter(|m| m.ceph_device().is_some()).count() as u32;
        if with_ceph == 0 {
            let hint = if self.is_microk8s(k) {
                "give the machines a Ceph volume (`storage: {layout: lvm, ceph: rest}`) or remove `rook:`"
            } else {
                "list the nodes under `machines:` with their raw disk: `- {hostname: node1, storage: {device: /dev/sdb}}`"
            };
            self.err_key("/rook", "Rook is declared but no machine has a Ceph volume", hint);
        }
        let mut pools = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut defaults = 0;
        for (i, p) in r.pools.iter().enumerate() {
            let ptr = format!("/rook/pools/{i}");
            if names.insert(&p.name, i).is_some() {
                self.err(
                    &format!("{ptr}/name"),
                    format!("pool `{}` is declared twice", p.name),
                    "give each pool its own name",
                );
            }
            let fd = p.failure_domain.unwrap_or_default();
            if with_ceph > 0 && p.replicas > with_ceph && fd == model::FailureDomain::Host {
                self.err(&format!("{ptr}/replicas"), format!("{} replicas but only {with_ceph} machine{} carr{} a Ceph volume", p.replicas, if with_ceph == 1 { "" } else { "s" }, if with_ceph == 1 { "ies" } else { "y" }), format!("with failureDomain host each replica needs its own machine: use replicas ≤ {with_ceph}, or add machines"));
            }
            if p.replicas == 1 {
                self.warn(
                    &format!("{ptr}/replicas"),
                    "a single replica keeps one copy of your data",
                    "losing that disk loses the data; use 2 or more when you have the machines",
                );
            }
            if let Some(sc) = &p.storage_class
                && sc.default
            {
                defaults += 1;
                if defaults > 1 {
                    self.err(
                        &format!("{ptr}/storageClass/default"),
                        "more than one StorageClass is marked default",
                        "Kubernetes picks unpredictably between several defaults: mark only one",
                    );
                }
            }
            pools.push(Pool {
                name: p.name.clone(),
                failure_domain: fd,
                replicas: p.replicas,
                storage_class: p
                    .storage_class
                    .as_ref()
                    .map(|s| StorageClass { name: s.name.clone(), default: s.default }),
            });
        }
        let ceph_image = match &r.ceph_image {
            None => release.ceph_image.clone(),
            Some(img) => {
                let pinned: Vec<&str> =
                    self.catalog.ceph.iter().flat_map(|c| c.images.iter().map(String::as_str)).collect();
                match crate::catalog::parse_version(img) {
                    _ if !self.catalog.ceph_pinned(img) => self.err(
                        "/rook/cephImage",
                        format!("the Ceph image `{img}` is not a build the release catalog pins"),
                        format!("pinned builds: {} (add others with --catalog FILE)", pinned.join(", ")),
                    ),
                    Some(v) => {
                        if let Err(e) = release.accepts_ceph(v) {
                            self.err(
                                "/rook/cephImage",
                                format!(
                                    "Rook {} refuses Ceph {}: {e}",
                                    release.version,
                                    crate::catalog::fmt_version(v)
                                ),
                                format!(
                                    "Rook {} runs Ceph majors {:?}; pick one of those builds",
                                    release.version,
                                    release.ceph_majors()
                                ),
                            );
                        }
                    }
                    None => self.err(
                        "/rook/cephImage",
                        format!("`{img}` has no version tag"),
                        "give a full build tag, e.g. quay.io/ceph/ceph:v19.2.3",
                    ),
                }
                img.clone()
            }
        };
        Some(Rook { release, ceph_image, pools })
    }
}
