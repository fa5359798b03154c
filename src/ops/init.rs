//! `init`: a draft cluster file from the machines MAAS has Ready and from PCs that run Ubuntu
//! already (their facts read over SSH, read-only: the facts script), checked by the same
//! validation as every other file before it is returned.

use crate::catalog::Catalog;
use crate::config::KeySource;
use crate::config::draft::{INSTALLER_VG, Preinstalled};
use crate::config::validate::expand;
use crate::foundation::output::Ui;
use crate::maas::{ClientOptions, MaasClient, Status};
use crate::microk8s as mk;
use crate::ssh::{Connector, HostAddr};
use anyhow::Context as _;

/// A validated draft and the number of machines it lists.
pub struct Draft {
    pub text: String,
    pub machines: usize,
}

/// Where `init` reads machines: MAAS (its URL and key file) and pre-installed PCs by SSH.
pub struct Sources<'a> {
    pub maas: Option<(&'a str, Option<&'a str>)>,
    /// The PCs' addresses, and the connector that reaches them (the SSH user and key).
    pub ssh: Vec<String>,
    pub connector: Option<&'a dyn Connector>,
    /// The SSH user and identity file the draft records.
    pub ssh_login: (&'a str, &'a str),
}

/// What a pre-installed PC at `address` is, read with the facts script (read-only; without
/// sudo when sudo wants a password, so the volume group is then unknown).
pub async fn read_preinstalled(connector: &dyn Connector, address: &str) -> anyhow::Result<Preinstalled> {
    let addr = HostAddr { hostname: address.to_owned(), ip: address.to_owned() };
    let r = connector.connect(&addr).await.with_context(|| format!("reaching {address} over SSH"))?;
    let mut out = r.run(&mk::facts_cmd(None, Some(INSTALLER_VG), &[], true)).await?;
    if mk::facts::sudo_wants_password(&out) {
        out = r.run(&mk::facts_cmd(None, Some(INSTALLER_VG), &[], false)).await?;
    }
    let f = mk::parse_facts(&out).with_context(|| format!("reading {address}"))?;
    Ok(Preinstalled {
        hostname: f.hostname.clone(),
        address: address.to_owned(),
        mem_kib: f.mem_kib,
        vg_free: f.vg.clone().flatten().map(|v| v.free_bytes),
    })
}

/// A validated draft from MAAS's Ready machines and the pre-installed PCs.
pub async fn draft_from(
    name: &str,
    src: &Sources<'_>,
    file_label: &str,
    catalog: &Catalog,
    ui: &Ui,
) -> anyhow::Result<Draft> {
    let ready = match src.maas {
        Some((url, key_file)) => ready_machines(url, key_file).await?,
        None => vec![],
    };
    let pre = match src.connector {
        Some(c) => futures::future::try_join_all(src.ssh.iter().map(|a| read_preinstalled(c, a))).await?,
        None => vec![],
    };
    if ready.is_empty() && pre.is_empty() {
        return Err(anyhow::anyhow!(
            "no machine to draft from\n  hint: enlist and commission your PCs in MAAS (they become Ready), or name PCs that run Ubuntu already with `--ssh ADDR,ADDR`"
        ));
    }
    let url = src.maas.map(|(u, k)| (u.trim_end_matches('/'), k));
    let text = crate::config::draft::draft_mixed(name, url, src.ssh_login, &ready, &pre);
    let v = crate::config::validate_bytes(text.as_bytes(), file_label, catalog);
    if v.report.has_errors() {
        ui.error(&v.render());
        return Err(anyhow::anyhow!(
            "the draft does not validate; nothing was written\n  hint: see the problems above (a PC without room for Ceph needs `storage: {{device: …}}` by hand)"
        ));
    }
    Ok(Draft { text, machines: ready.len() + pre.len() })
}

async fn ready_machines(maas_url: &str, api_key_file: Option<&str>) -> anyhow::Result<Vec<crate::maas::Machine>> {
    let source = match api_key_file {
        Some(f) => KeySource::File(expand(f)),
        None => KeySource::Env,
    };
    let key = super::world::maas_key(&source)?;
    let url = maas_url.trim_end_matches('/').to_owned();
    let client = MaasClient::new(&format!("{url}/api/2.0/"), key, ClientOptions::default())?;
    let me = client.whoami().await.context("checking the MAAS API key (GET users/?op=whoami)")?;
    let ready = client.machines_with_status(Status::Ready).await?;
    if ready.is_empty() {
        return Err(anyhow::anyhow!(
            "MAAS (user {}) has no Ready machine\n  hint: enlist your PCs (PXE boot) and commission them in MAAS; they become Ready",
            me.username
        ));
    }
    Ok(ready)
}

pub async fn draft_from_maas(
    name: &str,
    maas_url: &str,
    api_key_file: Option<&str>,
    file_label: &str,
    catalog: &Catalog,
    ui: &Ui,
) -> anyhow::Result<Draft> {
    let src = Sources {
        maas: Some((maas_url, api_key_file)),
        ssh: vec![],
        connector: None,
        ssh_login: ("ubuntu", "~/.ssh/id_ed25519"),
    };
    draft_from(name, &src, file_label, catalog, ui).await
}
