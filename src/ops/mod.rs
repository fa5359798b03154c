//! The operations behind the commands, one module per command and named as the command
//! (`homelab remove-node` is `cli::remove_node` → `ops::remove_node`), plus `world`, the real
//! outside world a command runs against (MAAS key, SSH options, manifest source). `up` alone
//! lives in the engine, being the run every operation builds on. An operation with several
//! stages is a folder with a file per stage (`observe`, pure `decide`, `act`). Nothing here
//! knows about the command line.

pub mod add_node;
pub mod connect;
pub mod diagnose;
pub mod init;
pub mod kubeconfig;
pub mod remove_node;
pub mod replace_node;
pub mod reset;
pub mod status;
pub mod upgrade;
pub mod world;
