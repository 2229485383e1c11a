//! The embedded migration runner: plan → history → runner, with a small driver trait and two
//! drivers, PostgreSQL and SQLite.
//!
//! Typical use (what `offkit migrations run` and `offkit apply` do):
//!
//! ```no_run
//! # use std::collections::BTreeMap;
//! # use std::time::Duration;
//! use offkit::migrate::{DbUrl, MigrationSet, RunOptions, Session};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let set = MigrationSet::load("kits/demo".as_ref(), &BTreeMap::new())?;
//! let mut session = Session::connect(&DbUrl::parse("sqlite://./offkit.db")?)?;
//! let mut locked = session.lock(Duration::from_secs(60))?;
//! let report = locked.run(&set, &RunOptions::default())?;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! See `docs/MIGRATIONS.md` for the state tables, the lock, and what each error means.

pub mod data;
pub mod destructive;
pub mod display;
pub mod drivers;
pub mod error;
pub mod history;
pub mod legacy;
pub mod lock;
pub mod ops;
pub mod plan;
pub mod rehearse;
pub mod report;
pub mod runner;
pub mod safety;
pub mod script;
pub mod source;
pub mod sqltext;
pub mod url;

pub use crate::kit::migration_name::{Category, MigrationName, TxMode};
pub use drivers::{DbError, Dialect, Driver, Value, bind};
pub use error::{MigrateError, RunFailure};
pub use lock::{Locked, Session};
pub use plan::{Missing, ModuleFilter, OutOfOrder, State, Status};
pub use report::RunReport;
pub use runner::{AllowDestructive, OnError, ReleaseGate, RunMode, RunOptions};
pub use safety::Safety;
pub use source::{Migration, MigrationSet, Module, Rollback};
pub use url::DbUrl;
