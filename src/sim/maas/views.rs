//! How MAAS shows a machine in JSON: block devices, partitions, volume groups, the machine record.

use super::*;

pub(in crate::sim::maas) fn lv_json(system_id: &str, vg: &str, lv: &Lv) -> Value {
    let name = format!("{vg}-{}", lv.name);
    json!({
        "id": lv.id, "system_id": system_id, "name": name, "uuid": format!("{:08x}-sim", lv.id), "type": "virtual",
        "path": format!("/dev/disk/by-dname/{name}"), "model": null, "serial": null, "id_path": null,
        "size": lv.size, "block_size": 4096, "available_size": if lv.fstype.is_some() { 0 } else { lv.size }, "used_size": if lv.fstype.is_some() { lv.size } else { 0 },
        "used_for": match (&lv.fstype, &lv.mount) { (Some(f), Some(mp)) => format!("{f} formatted filesystem mounted at {mp}"), _ => "Unused".into() },
        "tags": [], "filesystem": lv.fstype.as_ref().map(|f| json!({"fstype": f, "label": "root", "uuid": "sim", "mount_point": lv.mount, "mount_options": null})),
        "partition_table_type": null, "partitions": [], "firmware_version": null, "storage_pool": null, "numa_node": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{system_id}/blockdevices/{}/", lv.id),
    })
}

pub(in crate::sim::maas) fn block_devices(m: &SimMachine) -> Vec<Value> {
    let disk_id = m.id as i64 * 100;
    let (partitions, used_for, ptable) = match &m.storage {
        Storage::Blank => (vec![], "Unused".to_owned(), Value::Null),
        Storage::Flat => {
            let root = (m.disk_bytes - EFI - GPT_OVERHEAD) / EXTENT * EXTENT;
            (
                vec![part_json(m, disk_id, 1, EFI, "fat32", "/boot/efi"), part_json(m, disk_id, 2, root, "ext4", "/")],
                "GPT partitioned with 2 partitions".to_owned(),
                json!("GPT"),
            )
        }
        Storage::Lvm { vg } => {
            let pv = (m.disk_bytes - EFI - GPT_OVERHEAD) / EXTENT * EXTENT;
            let mut p = part_json(m, disk_id, 2, pv, "lvm-pv", "");
            p["used_for"] = json!(format!("LVM volume for {}", vg.name));
            (
                vec![part_json(m, disk_id, 1, EFI, "fat32", "/boot/efi"), p],
                "GPT partitioned with 2 partitions".to_owned(),
                json!("GPT"),
            )
        }
    };
    let mut out = vec![json!({
        "id": disk_id, "system_id": m.system_id, "name": "sda", "uuid": null, "type": "physical",
        "path": "/dev/disk/by-dname/sda", "model": "SIM DISK", "serial": format!("SIM{}", m.id), "id_path": "/dev/disk/by-id/ata-SIM",
        "size": m.disk_bytes, "block_size": 512, "available_size": 0, "used_size": m.disk_bytes, "used_for": used_for, "tags": ["ssd"],
        "filesystem": null, "partition_table_type": ptable, "partitions": partitions, "firmware_version": "1.0", "storage_pool": null, "numa_node": 0,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{disk_id}/", m.system_id),
    })];
    if let Storage::Lvm { vg } = &m.storage {
        out.extend(vg.lvs.iter().map(|lv| lv_json(&m.system_id, &vg.name, lv)));
    }
    out
}

pub(in crate::sim::maas) fn part_json(
    m: &SimMachine,
    disk_id: i64,
    n: i64,
    size: u64,
    fstype: &str,
    mount: &str,
) -> Value {
    let id = disk_id + n;
    json!({
        "id": id, "uuid": format!("part-{id}"), "system_id": m.system_id, "device_id": disk_id, "path": format!("/dev/disk/by-dname/sda-part{n}"),
        "type": "partition", "size": size, "bootable": n == 1,
        "filesystem": if fstype.is_empty() { Value::Null } else { json!({"fstype": fstype, "label": null, "uuid": "sim", "mount_point": if mount.is_empty() { Value::Null } else { json!(mount) }, "mount_options": null}) },
        "used_for": if mount.is_empty() { fstype.to_string() } else { format!("{fstype} formatted filesystem mounted at {mount}") }, "tags": [],
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/blockdevices/{disk_id}/partition/{id}", m.system_id),
    })
}

pub(in crate::sim::maas) fn volume_groups(m: &SimMachine) -> Vec<Value> {
    let Storage::Lvm { vg } = &m.storage else { return vec![] };
    let human = |b: u64| format!("{:.1} GB", b as f64 / 1e9);
    vec![json!({
        "id": vg.id, "uuid": format!("vg-{}", vg.id), "name": vg.name, "system_id": m.system_id,
        "devices": [{"id": m.id as i64 * 100 + 2, "type": "partition"}],
        "size": vg.size, "human_size": human(vg.size),
        "available_size": vg.free(), "human_available_size": human(vg.free()),
        "used_size": vg.size - vg.free(), "human_used_size": human(vg.size - vg.free()),
        "logical_volumes": vg.lvs.iter().map(|lv| lv_json(&m.system_id, &vg.name, lv)).collect::<Vec<_>>(),
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/volume-group/{}/", m.system_id, vg.id),
    })]
}

pub(in crate::sim::maas) fn machine_json(m: &SimMachine) -> Value {
    let iface_id = m.id as i64 * 10;
    let ip = if m.ip_assigned { Some(m.ip.clone()) } else { None };
    let links = json!([{ "id": iface_id + 1, "mode": "auto", "ip_address": ip, "subnet": {"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "dns_servers": []} }]);
    let iface = json!({
        "id": iface_id, "name": "eth0", "type": "physical", "mac_address": m.mac, "enabled": true,
        "links": links, "vlan": {"vid": 0, "name": "untagged", "fabric": "fabric-0"}, "params": "", "parents": [], "children": [], "tags": [],
        "effective_mtu": 1500, "link_connected": true, "link_speed": 1000, "interface_speed": 1000,
        "resource_uri": format!("/MAAS/api/2.0/nodes/{}/interfaces/{iface_id}/", m.system_id),
    });
    let bds = block_devices(m);
    let vgs: Vec<Value> = volume_groups(m)
        .iter()
        .map(|v| json!({"system_id": m.system_id, "id": v["id"], "__incomplete__": true}))
        .collect();
    json!({
        "system_id": m.system_id, "hostname": m.hostname, "fqdn": format!("{}.maas", m.hostname),
        "domain": {"name": "maas", "id": 0, "authoritative": true},
        "description": "", "status": m.status.code(), "status_name": m.status.name(),
        "status_message": m.status_message.as_deref().filter(|s| *s != "__fail__"), "status_action": "",
        "error_description": "", "power_state": m.power, "power_type": "ipmi",
        "ip_addresses": ip.iter().collect::<Vec<_>>(),
        "boot_interface": iface, "interface_set": [iface],
        "architecture": "amd64/generic", "cpu_count": m.cpu_count, "cpu_speed": 3400, "memory": m.memory_mib,
        "storage": m.disk_bytes as f64 / 1e6,
        "osystem": if m.distro_series.is_some() { "ubuntu" } else { "" }, "distro_series": m.distro_series.clone().unwrap_or_default(),
        "hwe_kernel": null, "min_hwe_kernel": "",
        "owner": m.owner, "locked": false, "netboot": m.status != Status::Deployed,
        "boot_disk": bds.first(), "blockdevice_set": bds, "physicalblockdevice_set": bds.iter().take(1).collect::<Vec<_>>(),
        "virtualblockdevice_set": bds.iter().skip(1).collect::<Vec<_>>(),
        "volume_groups": vgs, "raids": [], "bcaches": [], "cache_sets": [], "special_filesystems": [],
        "tag_names": [], "zone": {"name": "default", "id": 1}, "pool": {"name": "default", "id": 0},
        "node_type": 0, "node_type_name": "Machine", "bios_boot_method": "uefi",
        "hardware_info": {"system_vendor": "Simulated", "system_product": "homelab-sim PC", "cpu_model": "Sim CPU"},
        "owner_data": m.owner_data, "swap_size": null, "ephemeral_deploy": false,
        "resource_uri": format!("/MAAS/api/2.0/machines/{}/", m.system_id),
    })
}
