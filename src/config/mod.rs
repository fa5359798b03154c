//! `cluster.yaml`: the raw model ([`model`]), its JSON Schema ([`schema`]), validation with
//! located diagnostics ([`validate`]) and the resolved form the program runs on ([`resolved`]).

pub mod accept;
pub mod claims;
pub mod diag;
pub mod draft;
pub mod edit;
pub mod kraft_edit;
pub mod model;
pub mod resolved;
pub mod schema;
pub mod size;
pub mod syntax;
pub mod tree;
pub mod validate;

pub use diag::{Diagnostic, Report, Severity};
pub use resolved::*;
pub use validate::{MAX_FILE_BYTES, Validated, validate_bytes, validate_file};
