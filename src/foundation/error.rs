//! The errors that decide the exit code. Everything else is an `anyhow::Error` chain, which
//! means "failed while provisioning" (exit 1).

use std::process::ExitCode;

/// An error whose exit code is not 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad command-line usage (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The configuration is invalid; the diagnostics were already printed (exit 2).
    #[error("{0}")]
    Config(String),
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// One place turns errors into exit codes: 0 done, 1 failed while provisioning, 2 bad usage
/// or invalid configuration.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Usage(_) | Failure::Config(_) => ExitCode::from(EXIT_USAGE),
            };
        }
    }
    ExitCode::from(EXIT_FAILED)
}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Failure::Usage(msg.into()).into()
}
