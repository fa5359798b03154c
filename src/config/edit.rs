//! Byte-preserving edits of `cluster.yaml` (used by `add-node`).
