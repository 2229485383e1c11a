//! `offkit migrations script`: the SQL that `offkit migrations run` would execute on a
//! PostgreSQL database — the pending migrations in order, each with its history row — for a DBA
//! team that applies by hand with `psql -f`.
//!
//! The plan, its refusals (history disagreeing with the kit, the release gate, the destructive
//! gate) and the timeouts are the run's own (`runner::prepare`). The script
//! writes what the run writes, in the same transactions:
//!
//! - the history and state tables (`CREATE … IF NOT EXISTS`);
//! - a transactional migration: `BEGIN`, its search path and timeouts (`SET LOCAL`), the file,
//!   its history row, `COMMIT`;
//! - a no-transaction migration: the in-progress record, the file's statements with session
//!   settings, then the history row with the removal of the record in one transaction (psql
//!   stopping in the middle leaves the record, which `status` shows and `resolve` settles, as
//!   after a failed run);
//! - a data migration: its checkpoint row, a `DO` block that runs the batch until it changes no
//!   row and commits each batch with its checkpoint, then the history row.
//!
//! `applied_by` is `session_user` with ` (psql script)`. The script starts with
//! `\set ON_ERROR_STOP on`, so psql stops at the first error. A migration whose text psql would
//! read differently than the server (a backslash command, a `:name` variable outside quotes) is
//! refused rather than scripted.

use std::fmt::Write as _;

use crate::kit::migration_name::{Category, TxMode};
use crate::migrate::drivers::{Dialect, pg_millis};
use crate::migrate::error::{MigrateError, RunFailure};
use crate::migrate::history::{
    self, DATA_PROGRESS_TABLE, HISTORY_TABLE, IN_PROGRESS_TABLE, STATE_SCHEMA,
};
use crate::migrate::lock::{LOCK_KEY, LOCK_TAG_PREFIX, Session};
use crate::migrate::report::RunReport;
use crate::migrate::runner::{RunOptions, check_gates, prepare};
use crate::migrate::safety::StepTimeouts;
use crate::migrate::source::{BATCH_SIZE_PARAM, Migration, MigrationSet, Module};
use crate::migrate::sqltext::{self, TokenKind, token_literal, tokens};

/// A script and the plan it carries out.
#[derive(Debug, Clone)]
pub struct Script {
    /// The SQL, for `psql -f`.
    pub sql: String,
    /// The plan (every step planned: nothing was run).
    pub report: RunReport,
}

/// What `applied_by` records for a scripted migration.
const APPLIED_BY: &str = "session_user || ' (psql script)'";

impl Session {
    /// The SQL a run with `opts` would execute on this database, refusing what the run would
    /// refuse. Reads only. PostgreSQL only (a SQLite database is offkit's own: run it).
    pub fn script(
        &mut self,
        set: &MigrationSet,
        opts: &RunOptions,
        label: &str,
    ) -> Result<Script, RunFailure> {
        if self.dialect() != Dialect::Postgres {
            return Err(MigrateError::Refused(
                "migrations script writes PostgreSQL SQL for psql; a SQLite database is \
                 offkit's embedded one: apply with `offkit migrations run`"
                    .to_owned(),
            )
            .into());
        }
        let opts = RunOptions {
            mode: crate::migrate::RunMode::DryRun,
            ..opts.clone()
        };
        let mut p = prepare(self, set, &opts)?;
        if let Err(e) = check_gates(&p.report, &opts).and_then(|()| {
            p.steps
                .iter()
                .try_for_each(|(md, m)| check_psql_safe(md, m))
        }) {
            return Err(p.fail(e));
        }
        let mut w = Writer::default();
        w.header(&p.report, label, &opts);
        for sql in history::ensure_tables_sql(Dialect::Postgres, &p.schemas) {
            w.line(&format!("{sql};"));
        }
        let total = p.steps.len();
        for (i, (md, m)) in p.steps.iter().enumerate() {
            let t = p.report.steps[i].timeouts;
            w.line("");
            w.line(&format!(
                "-- [{}/{total}] {}/{} ({}{}) sha256:{} [{t}]",
                i + 1,
                md.name,
                m.name,
                m.category(),
                if m.tx == TxMode::NoTransaction {
                    ", no-transaction"
                } else {
                    ""
                },
                m.checksum
            ));
            if let Some(d) = &p.report.steps[i].destructive {
                w.line(&format!("-- {d}"));
            }
            match (m.category(), m.tx) {
                (Category::Data, _) => w.data(md, m, &t, &opts),
                (_, TxMode::Transaction) => w.transactional(md, m, &t),
                (_, TxMode::NoTransaction) => w.no_transaction(md, m, &t, &opts),
            }
        }
        w.line("");
        w.line(&format!(
            "SELECT pg_advisory_unlock({LOCK_KEY}) \\gset offkit_"
        ));
        w.line(&format!(
            "-- End of script: {total} migration(s). Check with `offkit migrations verify`."
        ));
        p.report.duration_ms = 0;
        Ok(Script {
            sql: w.out,
            report: p.report,
        })
    }
}

/// Refuses text that psql would not pass to the server as written: a backslash outside quotes
/// and comments starts a psql meta-command (`\!` runs a shell command), and `:name` is a psql
/// variable.
fn check_psql_safe(md: &Module, m: &Migration) -> Result<(), MigrateError> {
    // A data migration's :batch_size becomes a number in the script.
    let sql = if m.category() == Category::Data {
        sqltext::replace_placeholder(&m.sql, BATCH_SIZE_PARAM, "0")
    } else {
        m.sql.clone()
    };
    let toks = tokens(&sql);
    for (i, t) in toks.iter().enumerate() {
        let prev_colon = i > 0 && toks[i - 1].is_punct(':');
        let next = toks.get(i + 1);
        let variable = t.is_punct(':')
            && !prev_colon
            && next.is_some_and(|n| {
                n.offset == t.offset + 1
                    && (n.kind == TokenKind::Word || n.kind == TokenKind::Quoted)
                    && !n.text.starts_with(|c: char| c.is_ascii_digit())
            })
            && !toks.get(i + 1).is_some_and(|n| n.is_punct(':'));
        let backslash = t.is_punct('\\');
        if backslash || variable {
            let line = sql[..t.offset].matches('\n').count() + 1;
            return Err(MigrateError::Refused(format!(
                "{}/{} ({}:{line}): {} outside quotes, which psql would interpret; this \
                 migration cannot be scripted — apply it with `offkit migrations run`",
                md.name,
                m.name,
                m.origin,
                if backslash {
                    "a backslash"
                } else {
                    "a :name variable"
                }
            )));
        }
    }
    Ok(())
}

/// The `WHERE` condition of a migration's row in a state table.
fn state_key(md: &Module, m: &Migration) -> String {
    format!(
        "schema_name = {} AND migration_name = {}",
        literal(&md.schema),
        literal(m.name.as_str())
    )
}

/// `schema_name, migration_name, checksum` of a migration's row in a state table.
fn state_values(md: &Module, m: &Migration) -> String {
    format!(
        "{}, {}, {}",
        literal(&md.schema),
        literal(m.name.as_str()),
        literal(&m.checksum)
    )
}

#[derive(Default)]
struct Writer {
    out: String,
}

fn literal(token: &str) -> String {
    // Names, categories, checksums and schemas are machine-checked tokens.
    token_literal(token).unwrap_or_else(|| "NULL".to_owned())
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn header(&mut self, report: &RunReport, label: &str, opts: &RunOptions) {
        let s = &mut self.out;
        let _ = writeln!(
            s,
            "-- offkit {} migrations script for {}",
            env!("CARGO_PKG_VERSION"),
            report.database
        );
        let _ = writeln!(
            s,
            "-- Migrations: {}",
            label.replace(|c: char| c.is_control(), " ")
        );
        let _ = writeln!(
            s,
            "-- Planned {} against the history read then: {} migration(s) pending, {} already applied.",
            report.started_at,
            report.steps.len(),
            report.counts.already_applied
        );
        let _ = writeln!(
            s,
            "-- Apply with: psql -X -f THIS_FILE (stops at the first error). Each transactional migration"
        );
        let _ = writeln!(
            s,
            "-- commits together with its history row, as `offkit migrations run` does. The script takes"
        );
        let _ = writeln!(
            s,
            "-- offkit's migration lock for its session (it stops if another runner holds it)."
        );
        s.push_str("\\set ON_ERROR_STOP on\n");
        let _ = writeln!(
            s,
            "DO $offkit_lock$ BEGIN IF NOT pg_try_advisory_lock({LOCK_KEY}) THEN \
             RAISE EXCEPTION 'the offkit migration lock is held by another session'; END IF; END $offkit_lock$;"
        );
        let _ = writeln!(
            s,
            "SELECT set_config('application_name', '{LOCK_TAG_PREFIX}' || \
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), false) \\gset offkit_"
        );
        let session = opts.safety.session();
        let _ = writeln!(
            s,
            "{}; SET idle_in_transaction_session_timeout TO {};",
            Dialect::Postgres
                .timeouts(&session, false)
                .unwrap_or_default(),
            pg_millis(opts.safety.idle_in_transaction_timeout)
        );
    }

    fn history_insert(&mut self, md: &Module, m: &Migration, duration: &str) {
        let table = Dialect::Postgres.table(&md.schema, HISTORY_TABLE);
        self.line(&format!(
            "INSERT INTO {table} (migration_name, category, checksum, applied_at, applied_by, duration_ms) \
             VALUES ({}, {}, {}, now(), {APPLIED_BY}, {duration});",
            literal(m.name.as_str()),
            literal(m.category().as_str()),
            literal(&m.checksum),
        ));
    }

    fn sql_text(&mut self, sql: &str) {
        self.out.push_str(sql);
        // A last line comment, or no final semicolon, must not swallow what follows.
        self.out.push_str("\n;\n");
    }

    fn session_settings(&mut self, md: &Module, t: &StepTimeouts) {
        let d = Dialect::Postgres;
        self.line(&format!(
            "{}; {};",
            d.session_search_path(&md.schema).unwrap_or_default(),
            d.timeouts(t, false).unwrap_or_default()
        ));
    }

    fn restore_session(&mut self, opts: &RunOptions) {
        self.line(&format!(
            "SET search_path TO DEFAULT; {};",
            Dialect::Postgres
                .timeouts(&opts.safety.session(), false)
                .unwrap_or_default()
        ));
    }

    fn transactional(&mut self, md: &Module, m: &Migration, t: &StepTimeouts) {
        let d = Dialect::Postgres;
        self.line(&format!(
            "BEGIN; {}; {};",
            d.local_search_path(&md.schema).unwrap_or_default(),
            d.timeouts(t, true).unwrap_or_default()
        ));
        self.sql_text(&m.sql);
        self.history_insert(
            md,
            m,
            "CAST(extract(epoch FROM clock_timestamp() - now()) * 1000 AS bigint)",
        );
        self.line("COMMIT;");
    }

    fn no_transaction(&mut self, md: &Module, m: &Migration, t: &StepTimeouts, o: &RunOptions) {
        let state = Dialect::Postgres.table(STATE_SCHEMA, IN_PROGRESS_TABLE);
        let key = state_key(md, m);
        self.line(&format!(
            "INSERT INTO {state} (schema_name, migration_name, checksum, started_at, started_by) \
             VALUES ({}, now(), {APPLIED_BY});",
            state_values(md, m)
        ));
        self.session_settings(md, t);
        self.sql_text(&m.sql);
        self.restore_session(o);
        self.line("BEGIN;");
        self.history_insert(md, m, "NULL");
        self.line(&format!("DELETE FROM {state} WHERE {key};"));
        self.line("COMMIT;");
    }

    fn data(&mut self, md: &Module, m: &Migration, t: &StepTimeouts, o: &RunOptions) {
        let progress = Dialect::Postgres.table(STATE_SCHEMA, DATA_PROGRESS_TABLE);
        let key = state_key(md, m);
        let batch = format!("CAST({} AS bigint)", o.batch_size);
        let stmt = sqltext::replace_placeholder(&m.sql, BATCH_SIZE_PARAM, &batch);
        let stmt = sqltext::split_statements(&stmt)
            .first()
            .map(|(_, s)| s.trim().to_owned())
            .unwrap_or_default();
        let mut tag = "$offkit_batches$".to_owned();
        while stmt.contains(&tag) {
            tag.insert(tag.len() - 1, '_');
        }
        self.line(&format!(
            "INSERT INTO {progress} (schema_name, migration_name, checksum, started_at, updated_at) \
             VALUES ({}, now(), now()) ON CONFLICT (schema_name, migration_name) DO NOTHING;",
            state_values(md, m)
        ));
        // One DO statement runs every batch, so statement_timeout would bound them all together:
        // it is lifted for the loop; lock_timeout still bounds each lock wait.
        let loop_timeouts = StepTimeouts {
            statement_timeout: crate::migrate::safety::Setting {
                millis: 0,
                ..t.statement_timeout
            },
            ..*t
        };
        self.session_settings(md, &loop_timeouts);
        self.line(&format!("DO {tag}"));
        self.line("DECLARE offkit_rows bigint;");
        self.line("BEGIN");
        self.line("  LOOP");
        self.line(&format!("    {stmt};"));
        self.line("    GET DIAGNOSTICS offkit_rows = ROW_COUNT;");
        self.line("    EXIT WHEN offkit_rows = 0;");
        self.line(&format!(
            "    UPDATE {progress} SET batches_done = batches_done + 1, rows_done = rows_done + offkit_rows, updated_at = now() WHERE {key};"
        ));
        self.line("    COMMIT;");
        self.line("  END LOOP;");
        self.line("END");
        self.line(&format!("{tag};"));
        self.restore_session(o);
        self.line("BEGIN;");
        self.history_insert(md, m, "NULL");
        self.line(&format!(
            "UPDATE {progress} SET finished_at = now(), updated_at = now(), last_error = NULL WHERE {key};"
        ));
        self.line("COMMIT;");
    }
}
