//! `spindle check PROJECT.toml`: validate a project file without running it.

use std::path::Path;
use std::process::ExitCode;

use crate::crawl::load_project;

/// Prints the project's warnings and a one-line summary, or its error (with line and column)
/// and exits 1.
pub fn command(project: &Path) -> ExitCode {
    match load_project(project) {
        Ok(p) => {
            for warning in p.warnings() {
                eprintln!("{}: warning: {warning}", project.display());
            }
            println!(
                "{}: ok (project {}, {} start URLs, {} sitemaps, {} handlers)",
                project.display(),
                p.name,
                p.start.len(),
                p.sitemaps.len(),
                p.handlers.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
