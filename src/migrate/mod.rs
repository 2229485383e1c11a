//! The embedded migration runner: plan → history → runner, with a small driver trait and two
//! drivers, PostgreSQL and SQLite.

pub mod name;

pub use name::{Category, MigrationName};
