//! Shared test support.

#![allow(dead_code)]

pub mod crash;
pub mod mirror;
pub mod sshd;
pub mod subproc;

use std::path::PathBuf;

/// `../shared/<sub>` beside the checkout, or None with a printed notice when it is absent
/// (CI sets HOMELAB_REQUIRE_ALL, which turns the skip into a failure).
pub fn shared(sub: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared").join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        assert!(
            std::env::var_os("HOMELAB_REQUIRE_ALL").is_none(),
            "../shared/{sub} is missing but HOMELAB_REQUIRE_ALL is set"
        );
        eprintln!("notice: ../shared/{sub} is absent; skipping the tests that need it");
        None
    }
}

/// An example file of `examples/` (its `machines:` section onwards), with the lab's MAAS.
pub fn example(lab: &homelab::sim::lab::FullLab, name: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = text.lines().skip_while(|l| !l.starts_with("machines:")).map(|l| format!("{l}\n")).collect();
    lab.lab.cluster_yaml(&body)
}
