//! `init`: a draft cluster file from the machines MAAS has Ready, checked by the same
//! validation as every other file before it is returned.

use crate::catalog::Catalog;
use crate::config::KeySource;
use crate::config::validate::expand;
use crate::foundation::output::Ui;
use crate::maas::{ClientOptions, MaasClient, Status};
use anyhow::Context as _;

/// A validated draft and the number of machines it lists.
pub struct Draft {
    pub text: String,
    pub machines: usize,
}

pub async fn draft_from_maas(
    name: &str,
    maas_url: &str,
    api_key_file: Option<&str>,
    file_label: &str,
    catalog: &Catalog,
    ui: &Ui,
) -> anyhow::Result<Draft> {
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
    let text = crate::config::draft::draft(name, &url, api_key_file, &ready);
    let v = crate::config::validate_bytes(text.as_bytes(), file_label, catalog);
    if v.report.has_errors() {
        ui.error(&v.render());
        return Err(anyhow::anyhow!("the draft does not validate (a homelab bug); nothing was written"));
    }
    Ok(Draft { text, machines: ready.len() })
}
