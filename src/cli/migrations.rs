//! `offkit migrations …`: status, verify, run, check, rollback, import-legacy, resolve.

use super::{CliResult, Global};

/// `offkit migrations` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show applied, pending and drifted migrations.
    Status,
}

/// Runs a `migrations` subcommand.
pub fn run(cmd: Command, _global: &Global) -> CliResult {
    match cmd {
        Command::Status => Ok(()),
    }
}
