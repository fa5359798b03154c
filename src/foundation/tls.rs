//! One rustls crypto provider (ring) for kube and reqwest alike. Installing it is idempotent;
//! without it both would panic at run time (docs/rust-stack.md, "TLS provider").

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
