//! Turning a validation into a cluster or an exit-2 failure, showing every finding first.

use crate::foundation::output::Ui;

/// The cluster of a validation, or a configuration failure (exit 2) after showing every
/// problem: as JSON with `-o json`, else as located diagnostics. Warnings are shown too.
pub fn accept_validated(v: crate::config::Validated, file: &str, ui: &Ui) -> anyhow::Result<crate::config::Cluster> {
    use crate::foundation::error::Failure;
    if v.report.has_errors() {
        if ui.is_json() {
            ui.out(&v.report.json_line());
        } else {
            ui.error(&v.render());
        }
        return Err(Failure::Config(format!("{file} is invalid")).into());
    }
    // Warnings are shown before the run in every output mode.
    if v.report.warnings() > 0 {
        if ui.is_json() {
            ui.out(&v.report.json_line());
        } else {
            ui.err(&v.render());
        }
    }
    v.cluster.ok_or_else(|| Failure::Config(format!("{file} is invalid")).into())
}
