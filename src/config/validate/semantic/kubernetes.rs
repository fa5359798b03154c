//! The `kubernetes` section of cluster.yaml: its semantic rules and its resolved form.

use super::*;

impl Semantic<'_> {
    pub(in crate::config::validate) fn kubernetes(&mut self) -> Option<Kubernetes> {
        let k = &self.file.kubernetes;
        match k.distribution {
            Distribution::Microk8s => {
                for (field, set) in [("kubeconfig", k.kubeconfig.is_some()), ("context", k.context.is_some())] {
                    if set {
                        self.err_key(
                            &format!("/kubernetes/{field}"),
                            format!("`{field}` is only used with `distribution: existing`"),
                            "remove it; homelab fetches the kubeconfig from MicroK8s itself",
                        );
                    }
                }
                let Some(channel) = k.channel.clone() else {
                    self.err_key(
                        "/kubernetes",
                        "`distribution: microk8s` needs a `channel`",
                        "pin a track, e.g. `channel: 1.26/stable`",
                    );
                    return None;
                };
                let track = channel.split('/').next().unwrap_or("");
                if track.ends_with("-strict") {
                    self.err(
                        "/kubernetes/channel",
                        format!("`{channel}` is a strictly confined MicroK8s track"),
                        "homelab installs the classic snap (`--classic`); use e.g. `1.32/stable`",
                    );
                    return None;
                }
                let risk = channel.split('/').nth(1).unwrap_or("stable");
                if !["stable", "candidate", "beta", "edge"].contains(&risk) {
                    self.err(
                        "/kubernetes/channel",
                        format!("`{risk}` is not a snap risk level"),
                        "channels look like `<track>/<risk>`: 1.26/stable, 1.33/candidate",
                    );
                    return None;
                }
                let Some(minor) = parse_minor(track).filter(|m| m.0 == 1) else {
                    self.err("/kubernetes/channel", format!("`{channel}` does not pin a Kubernetes track"), "use a track such as `1.26/stable`; `latest/stable` is not the newest release and moves under you");
                    return None;
                };
                // A track the catalog does not list: newer than it, nothing homelab pins was
                // checked against it (and open-ended ranges would suggest the oldest
                // releases); older, the upgrade ladder does not start there.
                let known: Vec<(u32, u32)> =
                    self.catalog.microk8s.iter().filter_map(|m| parse_minor(&m.kubernetes)).collect();
                if let (Some(first), Some(last)) = (known.iter().min(), known.iter().max())
                    && !known.contains(&minor)
                {
                    let list = format!("{}.{} … {}.{}", first.0, first.1, last.0, last.1);
                    if minor > *last {
                        self.err(
                            "/kubernetes/channel",
                            format!("MicroK8s {}.{} is newer than every track homelab knows ({list})", minor.0, minor.1),
                            format!("use a track from {list}; `snap info microk8s` lists the published ones, and a newer homelab knows newer tracks"),
                        );
                        return None;
                    }
                    self.warn(
                        "/kubernetes/channel",
                        format!("MicroK8s {}.{} is older than the tracks homelab knows ({list})", minor.0, minor.1),
                        format!("homelab's releases and upgrade ladder start at {}.{}; upgrade the cluster to it by hand first (one track at a time)", first.0, first.1),
                    );
                }
                let channel = if channel.contains('/') { channel } else { format!("{channel}/stable") };
                let addons = k.addons.clone().unwrap_or_else(|| vec!["dns".to_owned()]);
                for (i, a) in addons.iter().enumerate() {
                    let p = format!("/kubernetes/addons/{i}");
                    if a == "rook-ceph" {
                        self.err(
                            &p,
                            "the `rook-ceph` add-on would install a second Rook operator",
                            "remove it; the `rook:` section installs and configures Rook",
                        );
                    } else if a == "hostpath-storage" || a == "storage" {
                        self.warn(&p, "hostpath storage is single-node only and may become the default StorageClass", "Kafka's storage class is set explicitly, but prefer Rook's rook-ceph-block on a multi-node cluster");
                    }
                }
                Some(Kubernetes::Microk8s { channel, minor, addons })
            }
            Distribution::Existing => {
                for (field, set) in [("channel", k.channel.is_some()), ("addons", k.addons.is_some())] {
                    if set {
                        self.err_key(
                            &format!("/kubernetes/{field}"),
                            format!("`{field}` is only used with `distribution: microk8s`"),
                            "remove it; homelab does not install Kubernetes on an existing cluster",
                        );
                    }
                }
                Some(Kubernetes::Existing {
                    kubeconfig: k.kubeconfig.as_deref().map(expand),
                    context: k.context.clone(),
                })
            }
        }
    }
}
