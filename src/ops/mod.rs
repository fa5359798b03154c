//! Library operations behind the commands that are not a run of phases: building the real
//! outside world for a cluster (MAAS key, SSH, manifest source), fetching and merging the
//! kubeconfig, drafting a cluster file from MAAS, the client settings of `connect`. Each command in `cli` parses its arguments
//! and calls one of these (or an engine operation); nothing here knows about the command line.

pub mod connect;
pub mod init;
pub mod kubeconfig;
pub mod world;
