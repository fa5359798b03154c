//! The operations MAAS performs on request: commission, deploy, release, storage layout and
//! logical volumes, SSH keys, events.

use super::*;

pub(in crate::sim::maas) fn machine_op(
    st: &mut State,
    cfg: &SimMaasConfig,
    id: &str,
    op: Option<&str>,
    form: &[(String, String)],
) -> Response {
    let user = cfg.username.clone();
    let keys: Vec<String> = st.ssh_keys.iter().map(|(_, k)| k.clone()).collect();
    let fail_deploy = st.faults.fail_deploy.clone();
    let fail_commission = st.faults.fail_commission.clone();
    let mut next_obj = st.next_obj_id;
    let mut consumed: Option<(&'static str, String)> = None;
    let r = with_machine(st, id, |m, next_event| match op {
        Some("commission") => {
            if !matches!(m.status, Status::New | Status::Ready | Status::Broken | Status::FailedCommissioning) {
                return field_error("__all__", "Commission is not available because of the current state of the node.");
            }
            m.status = Status::Commissioning;
            m.power = "on";
            m.running = Some(Running {
                op: Op::Commission,
                started: Instant::now(),
                duration: cfg.commission_time,
                stages_logged: 0,
            });
            if fail_commission.contains(&m.hostname) {
                m.status_message = Some("__fail__".into());
                consumed = Some(("commission", m.hostname.clone()));
            } else {
                m.status_message = Some("Commissioning".into());
            }
            push_event(next_event, m, "INFO", "Commissioning", "");
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("set_storage_layout") => {
            if m.status != Status::Ready {
                return text(StatusCode::CONFLICT, "Cannot change the storage layout on a machine that is not Ready.");
            }
            let layout = get(form, "storage_layout").unwrap_or("");
            let valid = ["bcache", "blank", "custom", "flat", "lvm", "vmfs6", "vmfs7"];
            if !valid.contains(&layout) {
                return field_error(
                    "storage_layout",
                    &format!(
                        "'{layout}' is not a valid storage_layout.  It should be one of: 'bcache', 'blank', 'custom', 'flat', 'lvm', 'vmfs6', 'vmfs7'."
                    ),
                );
            }
            match layout {
                "lvm" => {
                    let part = (m.disk_bytes.saturating_sub(EFI + GPT_OVERHEAD)) / EXTENT * EXTENT;
                    let max_lv = m.disk_bytes.saturating_sub(EFI);
                    let vg_size = (part / EXTENT).saturating_sub(1) * EXTENT;
                    let lv_size = match get(form, "lv_size") {
                        None => vg_size,
                        Some(s) => match parse_si(s) {
                            Some(b) if b > max_lv => {
                                return field_error(
                                    "lv_size",
                                    &format!("Size is too large. Maximum size is {max_lv}."),
                                );
                            }
                            Some(b) if b < 3 * (1 << 30) => {
                                return field_error("lv_size", "Size is too small. Minimum size is 3221225472.");
                            }
                            Some(b) => (b / EXTENT * EXTENT).min(vg_size),
                            None => return field_error("lv_size", "Enter a whole number."),
                        },
                    };
                    let vg_name = get(form, "vg_name").unwrap_or("vgroot").to_owned();
                    let lv_name = get(form, "lv_name").unwrap_or("lvroot").to_owned();
                    next_obj += 1;
                    let vg_id = next_obj;
                    next_obj += 1;
                    m.storage = Storage::Lvm {
                        vg: Vg {
                            id: vg_id,
                            name: vg_name,
                            size: vg_size,
                            lvs: vec![Lv {
                                id: next_obj,
                                name: lv_name,
                                size: lv_size,
                                fstype: Some("ext4".into()),
                                mount: Some("/".into()),
                            }],
                        },
                    };
                }
                "flat" => m.storage = Storage::Flat,
                "blank" => m.storage = Storage::Blank,
                other => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        &format!("Failed to configure storage layout '{other}': not simulated"),
                    );
                }
            }
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("deploy") => {
            if m.status == Status::Ready {
                if m.owner.as_deref().is_some_and(|o| o != user) {
                    return text(StatusCode::CONFLICT, "Can't allocate a machine belonging to another user.");
                }
            } else if m.status != Status::Allocated {
                return text(
                    StatusCode::CONFLICT,
                    &format!("Can't deploy a machine that is in the '{}' state", m.status.name()),
                );
            }
            let series = get(form, "distro_series").unwrap_or("jammy");
            let series = series.strip_prefix("ubuntu/").unwrap_or(series);
            let series = match series {
                "22.04" => "jammy",
                "24.04" => "noble",
                "20.04" => "focal",
                s => s,
            };
            if !cfg.series.iter().any(|s| s == series) {
                let choices: Vec<String> = std::iter::once("''".to_owned())
                    .chain(cfg.series.iter().map(|s| format!("'ubuntu/{s}'")))
                    .collect();
                return field_error(
                    "distro_series",
                    &format!("'{series}' is not a valid distro_series.  It should be one of: {}.", choices.join(", ")),
                );
            }
            let root_mounted = match &m.storage {
                Storage::Flat => true,
                Storage::Lvm { vg } => vg.lvs.iter().any(|l| l.mount.as_deref() == Some("/")),
                Storage::Blank => false,
            };
            if !root_mounted {
                return field_error("storage", "Mount the root '/' filesystem to be able to deploy this node.");
            }
            m.owner = Some(user.clone());
            m.status = Status::Deploying;
            m.power = "on";
            m.distro_series = Some(series.to_owned());
            m.user_data = get(form, "user_data").map(str::to_owned);
            m.ip_assigned = true;
            m.deployed_keys = keys.clone();
            let fail = fail_deploy.contains(&m.hostname);
            if fail {
                consumed = Some(("deploy", m.hostname.clone()));
            }
            m.running = Some(Running {
                op: Op::Deploy { fail },
                started: Instant::now(),
                duration: cfg.deploy_time,
                stages_logged: 0,
            });
            advance(m, cfg, next_event);
            json_resp(StatusCode::OK, &machine_json(m))
        }
        // MAAS 3.x (`set_workload_annotations`, of which `set_owner_data` is the deprecated
        // name): only the machine's owner may set them; an empty value removes a key.
        Some("set_owner_data") => {
            if m.owner.as_deref() != Some(user.as_str()) {
                return text(StatusCode::CONFLICT, "Cannot set workload annotation: it hasn't been acquired.");
            }
            for (k, v) in form.iter().filter(|(k, _)| k != "op") {
                if v.is_empty() {
                    m.owner_data.remove(k);
                } else {
                    m.owner_data.insert(k.clone(), v.clone());
                }
            }
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("release") => {
            match m.status {
                Status::Ready | Status::Releasing => return json_resp(StatusCode::OK, &machine_json(m)),
                Status::Allocated
                | Status::Reserved
                | Status::Broken
                | Status::Deploying
                | Status::Deployed
                | Status::FailedDeployment
                | Status::FailedDiskErasing
                | Status::FailedReleasing => {}
                s => {
                    return text(
                        StatusCode::CONFLICT,
                        &format!("Machine cannot be released in its current state ('{}').", s.name()),
                    );
                }
            }
            // Erasing boots the machine to wipe its disks (MachineHandler.release).
            let erase = get(form, "erase") == Some("true");
            m.erase = erase.then(|| {
                if get(form, "quick_erase") == Some("true") {
                    "quick"
                } else if get(form, "secure_erase") == Some("true") {
                    "secure"
                } else {
                    "full"
                }
                .to_owned()
            });
            m.status = if erase { Status::DiskErasing } else { Status::Releasing };
            m.running = Some(Running {
                op: Op::Release,
                started: Instant::now(),
                duration: cfg.release_time,
                stages_logged: 0,
            });
            push_event(next_event, m, "INFO", "Releasing", "");
            json_resp(StatusCode::OK, &machine_json(m))
        }
        Some("abort") => {
            let back = match m.status {
                Status::Commissioning => Status::New,
                Status::Deploying => Status::Allocated,
                s => {
                    return text(
                        StatusCode::CONFLICT,
                        &format!("Cannot abort in current state: node {} is in state {}.", m.system_id, s.name()),
                    );
                }
            };
            m.status = back;
            m.running = None;
            json_resp(StatusCode::OK, &machine_json(m))
        }
        other => unrecognised(&Method::POST, other),
    });
    st.next_obj_id = next_obj;
    if let Some((what, host)) = consumed {
        match what {
            "deploy" => st.faults.fail_deploy.remove(&host),
            _ => st.faults.fail_commission.remove(&host),
        };
    }
    r
}

pub(in crate::sim::maas) fn parse_si(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1_000u64),
        'M' => (&s[..s.len() - 1], 1_000_000),
        'G' => (&s[..s.len() - 1], 1_000_000_000),
        'T' => (&s[..s.len() - 1], 1_000_000_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

pub(in crate::sim::maas) fn create_lv(st: &mut State, id: &str, vg_id: &str, form: &[(String, String)]) -> Response {
    let mut next_obj = st.next_obj_id;
    let r = with_machine(st, id, |m, _| {
        if m.status != Status::Ready {
            return text(StatusCode::CONFLICT, "Cannot create logical volume because the machine is not Ready.");
        }
        let Storage::Lvm { vg } = &mut m.storage else {
            return text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query.");
        };
        if vg.id.to_string() != vg_id {
            return text(StatusCode::NOT_FOUND, "No VolumeGroup matches the given query.");
        }
        let Some(name) = get(form, "name").filter(|n| !n.is_empty()) else {
            return field_error("name", "This field is required.");
        };
        if vg.lvs.iter().any(|l| l.name == name) {
            return field_error("__all__", "Virtual block device with this Name and Filesystem group already exists.");
        }
        let free = vg.free();
        let size = match get(form, "size") {
            None => free / EXTENT * EXTENT,
            Some(s) => match parse_si(s) {
                Some(b) if b / EXTENT * EXTENT > free => {
                    return field_error("size", &format!("Size is too large. Maximum size is {free}."));
                }
                Some(b) => b / EXTENT * EXTENT,
                None => return field_error("size", "Enter a whole number."),
            },
        };
        if size < EXTENT {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Volume group ({}) cannot hold any more logical volumes, because it doesn't have enough free space.",
                    vg.name
                ),
            );
        }
        next_obj += 1;
        vg.lvs.push(Lv { id: next_obj, name: name.to_owned(), size, fstype: None, mount: None });
        let lv = vg.lvs.last().cloned();
        let vgname = vg.name.clone();
        match lv {
            Some(lv) => json_resp(StatusCode::OK, &lv_json(&m.system_id, &vgname, &lv)),
            None => text(StatusCode::INTERNAL_SERVER_ERROR, "lost the logical volume"),
        }
    });
    st.next_obj_id = next_obj;
    r
}

pub(in crate::sim::maas) fn valid_ssh_key(k: &str) -> bool {
    let mut it = k.split_whitespace();
    let (Some(t), Some(b)) = (it.next(), it.next()) else { return false };
    ["ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"]
        .contains(&t)
        && b.len() > 16
        && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
}

pub(in crate::sim::maas) fn add_key(st: &mut State, form: &[(String, String)]) -> Response {
    let Some(key) = get(form, "key") else { return field_error("key", "This field is required.") };
    let key = key.trim().to_owned();
    if !valid_ssh_key(&key) {
        return field_error("key", "Invalid SSH public key: the key is not in a format MAAS understands.");
    }
    let norm = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    if st.ssh_keys.iter().any(|(_, k)| norm(k) == norm(&key)) {
        return field_error("__all__", "This key has already been added for this user.");
    }
    let id = st.next_key_id;
    st.next_key_id += 1;
    st.ssh_keys.push((id, key.clone()));
    json_resp(StatusCode::CREATED, &key_json(id, &key))
}

pub(in crate::sim::maas) fn key_json(id: i64, key: &str) -> Value {
    json!({"id": id, "key": key, "keysource": null, "resource_uri": format!("/MAAS/api/2.0/account/prefs/sshkeys/{id}/")})
}

pub(in crate::sim::maas) fn events(st: &State, query: &[(String, String)]) -> Response {
    let limit: usize = match get(query, "limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 1000 => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("Requested number of events {n} is greater than limit: 1000"),
                );
            }
            Ok(n) => n,
            Err(_) => return field_error("limit", "Enter a whole number."),
        },
    };
    let levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
    let min = get(query, "level").and_then(|l| levels.iter().position(|x| *x == l)).unwrap_or(1);
    let ids: Vec<&str> = query.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.as_str()).collect();
    let mut evs: Vec<Value> = st
        .machines
        .iter()
        .filter(|m| ids.is_empty() || ids.contains(&m.system_id.as_str()))
        .flat_map(|m| {
            m.events.iter().filter(|e| levels.iter().position(|x| *x == e.level).unwrap_or(1) >= min).map(move |e| {
                (e.id, json!({"username": "admin", "node": m.system_id, "hostname": m.hostname, "id": e.id, "level": e.level, "created": e.created, "type": e.kind, "description": e.description}))
            })
        })
        .collect::<BTreeMap<i64, Value>>()
        .into_values()
        .rev()
        .collect();
    evs.truncate(limit);
    let newest = evs.first().and_then(|e| e["id"].as_i64()).unwrap_or(0);
    json_resp(
        StatusCode::OK,
        &json!({"count": evs.len(), "events": evs, "next_uri": format!("/MAAS/api/2.0/events/?op=query&after={newest}"), "prev_uri": "/MAAS/api/2.0/events/?op=query&before=0"}),
    )
}
