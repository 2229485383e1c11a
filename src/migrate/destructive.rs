//! The destructive-change gate's classifier: which statements of a migration can lose data,
//! break the running application, or hold a table locked for a long scan.
//!
//! It reads the SQL the way [`crate::migrate::sqltext`] does (comments, strings, quoted names
//! and dollar bodies are told apart from code) and looks at each statement's leading keywords;
//! it is not a SQL parser. What it finds:
//!
//! | kind | statements |
//! |---|---|
//! | `drop-table` | `DROP TABLE` |
//! | `drop-schema` | `DROP SCHEMA` |
//! | `drop-column` | `ALTER TABLE … DROP [COLUMN]` |
//! | `drop-type` | `DROP TYPE`, `DROP DOMAIN` |
//! | `drop-materialized-view` | `DROP MATERIALIZED VIEW` |
//! | `drop-sequence` | `DROP SEQUENCE` |
//! | `truncate` | `TRUNCATE` |
//! | `delete-without-where` | `DELETE` with no `WHERE` of its own |
//! | `update-without-where` | `UPDATE` with no `WHERE` of its own |
//! | `alter-column-type` | `ALTER TABLE … ALTER [COLUMN] … [SET DATA] TYPE` |
//! | `rename` | any `ALTER … RENAME` (tables, columns, constraints, types, schemas, …) |
//! | `set-not-null` | `ALTER TABLE … ALTER [COLUMN] … SET NOT NULL` (a full scan under an exclusive lock) |
//!
//! A `DROP TABLE` or `ALTER TABLE` of a table the same file created earlier (a staging table) is
//! not destructive. `DO` blocks are read statement by statement; SQL built at run time
//! (`EXECUTE 'DROP …'`) is not seen, which is why a kit may also declare a migration destructive
//! that the classifier finds nothing in.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::migrate::sqltext::{Token, TokenKind, tokens};

/// What makes a statement destructive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `DROP TABLE`.
    DropTable,
    /// `DROP SCHEMA`.
    DropSchema,
    /// `ALTER TABLE … DROP COLUMN`.
    DropColumn,
    /// `DROP TYPE` / `DROP DOMAIN`.
    DropType,
    /// `DROP MATERIALIZED VIEW` (its rows go with it).
    DropMaterializedView,
    /// `DROP SEQUENCE` (its position goes with it).
    DropSequence,
    /// `TRUNCATE`.
    Truncate,
    /// `DELETE` without `WHERE`.
    DeleteWithoutWhere,
    /// `UPDATE` without `WHERE`.
    UpdateWithoutWhere,
    /// `ALTER COLUMN … TYPE` (rewrites the table; may lose precision or fail on data).
    AlterColumnType,
    /// `ALTER … RENAME` (breaks the application version still running).
    Rename,
    /// `ALTER COLUMN … SET NOT NULL` (scans the whole table under an exclusive lock).
    SetNotNull,
}

impl Kind {
    /// The kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DropTable => "drop-table",
            Kind::DropSchema => "drop-schema",
            Kind::DropColumn => "drop-column",
            Kind::DropType => "drop-type",
            Kind::DropMaterializedView => "drop-materialized-view",
            Kind::DropSequence => "drop-sequence",
            Kind::Truncate => "truncate",
            Kind::DeleteWithoutWhere => "delete-without-where",
            Kind::UpdateWithoutWhere => "update-without-where",
            Kind::AlterColumnType => "alter-column-type",
            Kind::Rename => "rename",
            Kind::SetNotNull => "set-not-null",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destructive statement of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it does.
    pub kind: Kind,
    /// The 1-based line of the file where the statement starts.
    pub line: usize,
    /// The statement, whitespace collapsed, control characters escaped, at most 120 characters.
    pub statement: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} ({})", self.line, self.statement, self.kind)
    }
}

/// The most characters of a statement a finding quotes.
const EXCERPT_CHARS: usize = 120;

/// The destructive statements of a migration file, in file order.
pub fn classify(sql: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut created = BTreeSet::new();
    scan(sql, 0, &tokens(sql), false, &mut created, &mut out);
    out
}

/// Classifies the statements of `toks` (tokens of `text`, which starts at byte `base` of the
/// file). In a PL/pgSQL body, block keywords also end a statement.
fn scan(
    file: &str,
    base: usize,
    toks: &[Token<'_>],
    plpgsql: bool,
    created: &mut BTreeSet<String>,
    out: &mut Vec<Finding>,
) {
    let ends_statement = |t: &Token<'_>| {
        t.is_punct(';')
            || (plpgsql
                && ["BEGIN", "THEN", "ELSE", "LOOP", "DECLARE", "EXCEPTION"]
                    .iter()
                    .any(|k| t.is(k)))
    };
    for stmt in toks.split(ends_statement).filter(|s| !s.is_empty()) {
        if stmt[0].is("DO") {
            for body in stmt.iter().filter(|t| t.kind == TokenKind::Dollar) {
                let at = base + body.offset;
                scan(file, at, &tokens(body.text), true, created, out);
            }
            continue;
        }
        for kind in statement_kinds(stmt, created) {
            let start = base + stmt[0].offset;
            let last = stmt[stmt.len() - 1];
            let end = base + last.offset + last.text.len();
            out.push(Finding {
                kind,
                line: file[..start.min(file.len())].matches('\n').count() + 1,
                statement: excerpt(file.get(start..end).unwrap_or("")),
            });
        }
    }
}

fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = collapsed.chars().take(EXCERPT_CHARS).collect();
    if collapsed.chars().count() > EXCERPT_CHARS {
        s.push('…');
    }
    crate::util::escape_controls(&s)
}

/// A table name as written after `TABLE`: `[IF [NOT] EXISTS] [ONLY] name[.name] [*]`; returns
/// the normalized name (unquoted names lowercased) and the index after it.
fn table_name(t: &[Token<'_>], mut i: usize) -> Option<(String, usize)> {
    let skip = |i: &mut usize, kw: &str| {
        if t.get(*i).is_some_and(|x| x.is(kw)) {
            *i += 1;
            true
        } else {
            false
        }
    };
    if skip(&mut i, "IF") {
        skip(&mut i, "NOT");
        skip(&mut i, "EXISTS");
    }
    skip(&mut i, "ONLY");
    let part = |x: &Token<'_>| match x.kind {
        TokenKind::Word => Some(x.text.to_ascii_lowercase()),
        TokenKind::Quoted if x.text.starts_with('"') => Some(x.text.trim_matches('"').to_owned()),
        _ => None,
    };
    let mut name = part(t.get(i)?)?;
    i += 1;
    while t.get(i).is_some_and(|x| x.is_punct('.')) {
        name.push('.');
        name.push_str(&part(t.get(i + 1)?)?);
        i += 2;
    }
    if t.get(i).is_some_and(|x| x.is_punct('*')) {
        i += 1;
    }
    Some((name, i))
}

/// The kinds of one statement; records tables it creates in `created`.
fn statement_kinds(t: &[Token<'_>], created: &mut BTreeSet<String>) -> Vec<Kind> {
    let word = |i: usize, kw: &str| t.get(i).is_some_and(|x| x.is(kw));
    let mut kinds = Vec::new();
    if word(0, "CREATE") {
        // CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE name
        let at = (1..4).find(|&i| word(i, "TABLE"));
        if let Some((name, _)) = at.and_then(|i| table_name(t, i + 1)) {
            created.insert(name);
        }
        return kinds;
    }
    if word(0, "DROP") {
        let kind = if word(1, "TABLE") {
            let own = table_name(t, 2).is_some_and(|(n, i)| {
                // Only a single staging table this file made is exempt.
                created.contains(&n) && !t[i..].iter().any(|x| x.is_punct(','))
            });
            (!own).then_some(Kind::DropTable)
        } else if word(1, "SCHEMA") {
            Some(Kind::DropSchema)
        } else if word(1, "TYPE") || word(1, "DOMAIN") {
            Some(Kind::DropType)
        } else if word(1, "MATERIALIZED") && word(2, "VIEW") {
            Some(Kind::DropMaterializedView)
        } else if word(1, "SEQUENCE") {
            Some(Kind::DropSequence)
        } else {
            None
        };
        kinds.extend(kind);
        return kinds;
    }
    if word(0, "TRUNCATE") {
        kinds.push(Kind::Truncate);
        return kinds;
    }
    if word(0, "ALTER") {
        if word(1, "TABLE") {
            if let Some((name, i)) = table_name(t, 2) {
                if !created.contains(&name) {
                    alter_table_actions(&t[i..], &mut kinds);
                }
            }
        } else if depth_zero(t).any(|x| x.is("RENAME")) {
            kinds.push(Kind::Rename);
        }
        return kinds;
    }
    unbounded_writes(t, &mut kinds);
    kinds
}

/// The tokens of `t` outside any parentheses.
fn depth_zero<'t, 'a>(t: &'t [Token<'a>]) -> impl Iterator<Item = &'t Token<'a>> {
    let mut depth = 0i32;
    t.iter().filter(move |x| {
        if x.is_punct('(') {
            depth += 1;
        } else if x.is_punct(')') {
            depth -= 1;
            return false;
        }
        depth == 0 && !x.is_punct('(')
    })
}

/// `ALTER TABLE name` actions, separated by commas outside parentheses.
fn alter_table_actions(t: &[Token<'_>], kinds: &mut Vec<Kind>) {
    let top: Vec<&Token<'_>> = depth_zero(t).collect();
    for action in top.split(|x| x.is_punct(',')) {
        let word = |i: usize, kw: &str| action.get(i).is_some_and(|x| x.is(kw));
        let kind = if word(0, "DROP") {
            (!word(1, "CONSTRAINT")).then_some(Kind::DropColumn)
        } else if word(0, "RENAME") {
            Some(Kind::Rename)
        } else if word(0, "ALTER") {
            let col = if word(1, "COLUMN") { 3 } else { 2 };
            if word(col, "TYPE") || (word(col, "SET") && word(col + 1, "DATA")) {
                Some(Kind::AlterColumnType)
            } else if word(col, "SET") && word(col + 1, "NOT") && word(col + 2, "NULL") {
                Some(Kind::SetNotNull)
            } else {
                None
            }
        } else {
            None
        };
        if let Some(k) = kind.filter(|k| !kinds.contains(k)) {
            kinds.push(k);
        }
    }
}

/// `DELETE` and `UPDATE` commands (also inside `WITH`) without a `WHERE` at their own level.
fn unbounded_writes(t: &[Token<'_>], kinds: &mut Vec<Kind>) {
    let with = t.first().is_some_and(|x| x.is("WITH"));
    let mut depth = 0i32;
    for (i, x) in t.iter().enumerate() {
        if x.is_punct('(') {
            depth += 1;
        } else if x.is_punct(')') {
            depth -= 1;
        }
        let kind = if x.is("DELETE") {
            Kind::DeleteWithoutWhere
        } else if x.is("UPDATE") {
            Kind::UpdateWithoutWhere
        } else {
            continue;
        };
        let command =
            i == 0 || t[i - 1].is_punct('(') || (with && t[i - 1].is_punct(')') && depth == 0);
        if !command {
            continue;
        }
        let mut d = 0i32;
        let mut bounded = false;
        for y in &t[i + 1..] {
            if y.is_punct('(') {
                d += 1;
            } else if y.is_punct(')') {
                d -= 1;
                if d < 0 {
                    break;
                }
            } else if d == 0 && y.is("WHERE") {
                bounded = true;
                break;
            }
        }
        if !bounded && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<&'static str> {
        classify(sql).iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn finds_each_kind() {
        let cases = [
            ("DROP TABLE legacy_items;", "drop-table"),
            ("drop table if exists a.b cascade", "drop-table"),
            ("DROP SCHEMA old CASCADE;", "drop-schema"),
            ("ALTER TABLE t DROP COLUMN note;", "drop-column"),
            ("ALTER TABLE ONLY public.t DROP note;", "drop-column"),
            ("DROP TYPE mood;", "drop-type"),
            ("DROP DOMAIN posint;", "drop-type"),
            ("DROP MATERIALIZED VIEW mv;", "drop-materialized-view"),
            ("DROP SEQUENCE s;", "drop-sequence"),
            ("TRUNCATE t;", "truncate"),
            ("DELETE FROM t;", "delete-without-where"),
            (
                "UPDATE t SET a = (SELECT max(b) FROM u WHERE u.id = 1);",
                "update-without-where",
            ),
            (
                "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
                "alter-column-type",
            ),
            (
                "ALTER TABLE t ALTER a SET DATA TYPE text;",
                "alter-column-type",
            ),
            ("ALTER TABLE t RENAME COLUMN a TO b;", "rename"),
            ("ALTER TABLE t RENAME TO u;", "rename"),
            ("ALTER INDEX i RENAME TO j;", "rename"),
            ("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';", "rename"),
            ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", "set-not-null"),
            (
                "WITH gone AS (DELETE FROM t RETURNING id) SELECT count(*) FROM gone;",
                "delete-without-where",
            ),
            (
                "WITH x AS (SELECT 1) UPDATE t SET a = 1;",
                "update-without-where",
            ),
            ("DO $$ BEGIN DELETE FROM t; END $$;", "delete-without-where"),
        ];
        for (sql, want) in cases {
            assert_eq!(kinds(sql), [want], "{sql}");
        }
    }

    #[test]
    fn leaves_safe_statements_alone() {
        for sql in [
            "CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int;",
            "DELETE FROM t WHERE id = 1;",
            "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t LIMIT 10);",
            "ALTER TABLE t DROP CONSTRAINT c, ADD CONSTRAINT d CHECK (a > 0);",
            "ALTER TABLE t ALTER COLUMN a DROP NOT NULL, ALTER COLUMN b SET DEFAULT 0;",
            "SELECT * FROM t FOR UPDATE;",
            "INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 2;",
            "CREATE TRIGGER g BEFORE DELETE OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();",
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u ON DELETE CASCADE ON UPDATE CASCADE;",
            "GRANT SELECT, UPDATE, DELETE ON t TO app;",
            "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t; $$ LANGUAGE sql;",
            "SELECT 'DROP TABLE t; TRUNCATE u';",
            "-- DROP TABLE t;\n/* TRUNCATE u; */ SELECT 1;",
            "CREATE TEMP TABLE stage AS SELECT 1 AS a; ALTER TABLE stage ALTER a TYPE text; DROP TABLE stage;",
            "DROP INDEX i; DROP VIEW v; DROP FUNCTION f();",
        ] {
            assert_eq!(kinds(sql), Vec::<&str>::new(), "{sql}");
        }
    }

    #[test]
    fn reports_the_line_and_the_statement() {
        let sql = "-- Retire v1.\nCREATE TABLE keep (a int);\n\nDROP TABLE\n  legacy_items;\nALTER TABLE t\n  DROP COLUMN a,\n  RENAME b TO c;\n";
        let f = classify(sql);
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].kind, f[0].line), (Kind::DropTable, 4));
        assert_eq!(f[0].statement, "DROP TABLE legacy_items");
        assert_eq!((f[1].kind, f[1].line), (Kind::DropColumn, 6));
        assert_eq!((f[2].kind, f[2].line), (Kind::Rename, 6));
        assert_eq!(
            f[0].to_string(),
            "line 4: DROP TABLE legacy_items (drop-table)"
        );
        let long = format!("DELETE FROM t{};", " ".repeat(3) + &"x".repeat(300));
        let e = &classify(&long)[0].statement;
        assert!(
            e.chars().count() <= EXCERPT_CHARS + 1 && e.ends_with('…'),
            "{e}"
        );
        let ctl = classify("DROP TABLE \"a\u{1b}[2Jb\";");
        assert!(
            !ctl[0].statement.contains('\u{1b}'),
            "{:?}",
            ctl[0].statement
        );
    }

    #[test]
    fn reads_do_blocks_statement_by_statement_and_keeps_lines() {
        let sql =
            "SELECT 1;\nDO $body$\nBEGIN\n  IF true THEN\n    TRUNCATE t;\n  END IF;\nEND\n$body$;";
        let f = classify(sql);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].kind, f[0].line), (Kind::Truncate, 5));
    }
}
