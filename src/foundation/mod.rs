//! The foundation every other layer stands on, importing nothing of theirs: secrets and their
//! redaction, typed events and phase ids, the one owner of output, the one wait primitive,
//! atomic files, the run log, bounded reads, terminal-safe remote text, paths, time formatting, TLS setup, exit codes and JSON helpers.

pub mod error;
pub mod events;
pub mod files;
pub mod json;
pub mod limits;
pub mod output;
pub mod paths;
pub mod phase_id;
pub mod runlog;
pub mod secrets;
pub mod text;
pub mod time;
pub mod tls;
pub mod wait;
