//! The LVM commands homelab sends to a pre-installed machine to give Ceph a logical volume
//! from a volume group's free extents (docs/hosts.md, "Carving the Ceph volume"), and what
//! their failures mean. Nothing here shrinks, moves or removes a volume.

use crate::ssh::{Cmd, Output};
use std::time::Duration;

/// `lvcreate` of `lv` in `vg`: all free extents (`bytes: None`) or a size in bytes. `--yes`
/// answers the signature prompt no TTY could answer; `-W y -Z y` wipe old signatures and zero
/// the start of the new volume, as curtin does for the volumes MAAS makes, so Ceph finds it
/// blank.
pub fn lvcreate_cmd(vg: &str, lv: &str, bytes: Option<u64>) -> Cmd {
    let size = match bytes {
        None => vec!["-l".to_owned(), "100%FREE".to_owned()],
        Some(b) => vec!["-L".to_owned(), format!("{b}b")],
    };
    let mut argv: Vec<String> = ["lvcreate", "--yes", "-W", "y", "-Z", "y", "-n", lv].map(str::to_owned).to_vec();
    argv.extend(size);
    argv.push(vg.to_owned());
    Cmd::new(argv).sudo().timeout(Duration::from_secs(120))
}

/// The user's words for an `lvcreate` that failed (exit 5 is LVM's "command failed").
pub fn lvcreate_failure(vg: &str, lv: &str, out: &Output) -> String {
    let text = out.text();
    let hint = if text.contains("insufficient free space") {
        format!(
            "the volume group {vg} has less free space than asked: declare a smaller `ceph` size, or free extents in {vg} yourself (homelab never shrinks a volume)"
        )
    } else if text.contains("is 0 extents") {
        format!(
            "the volume group {vg} has no free extents left: declare a blank `device` instead, or free space in {vg} yourself"
        )
    } else if text.contains("already exists") {
        format!(
            "a logical volume {vg}/{lv} exists already: run `homelab up` again, which checks it is blank and uses it"
        )
    } else {
        format!("run `sudo vgs {vg}` on the machine to see the volume group")
    };
    format!(
        "lvcreate of {vg}/{lv} failed (exit {}): {}\n  hint: {hint}",
        out.code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
        text.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_takes_free_extents_or_a_size() {
        assert_eq!(
            lvcreate_cmd("ubuntu-vg", "ceph", None).argv.join(" "),
            "lvcreate --yes -W y -Z y -n ceph -l 100%FREE ubuntu-vg"
        );
        let c = lvcreate_cmd("ubuntu-vg", "ceph", Some(200_000_000_000));
        assert_eq!(c.argv.join(" "), "lvcreate --yes -W y -Z y -n ceph -L 200000000000b ubuntu-vg");
        assert!(c.sudo);
    }

    #[test]
    fn failures_say_what_to_do() {
        let o = Output {
            code: Some(5),
            stdout: String::new(),
            stderr: "  Volume group \"ubuntu-vg\" has insufficient free space (100 extents): 2000 required.\n".into(),
        };
        let m = lvcreate_failure("ubuntu-vg", "ceph", &o);
        assert!(m.contains("exit 5") && m.contains("smaller `ceph` size"), "{m}");
    }
}
