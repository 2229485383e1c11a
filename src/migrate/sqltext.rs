//! SQL text helpers: literal tokens, and a small lexer that knows where
//! comments, string literals, quoted identifiers and dollar-quoted bodies are, so that the runner
//! can count statements and bind `:batch_size` without touching text inside them.
//!
//! This is not a SQL parser: it only tells code from non-code, for PostgreSQL and SQLite syntax.

/// A string literal for a machine-checked token — ASCII letters, digits, `_`, `.`, `-` only, such
/// as a migration name that passed the naming standard or a hex checksum — or `None` for anything
/// else. Values that are not such tokens are always bound as parameters.
pub fn token_literal(token: &str) -> Option<String> {
    let plain = !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    plain.then(|| format!("'{token}'"))
}

/// What a byte range of SQL text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// Keywords, names, operators, numbers, placeholders.
    Code,
    /// A string literal, quoted identifier or dollar-quoted body (content, not code).
    Quoted,
    /// A `--` or `/* */` comment.
    Comment,
}

/// Splits SQL into spans. Unterminated quotes or comments run to the end of the text (the server
/// will report the syntax error).
fn spans(sql: &str) -> Vec<(Span, usize, usize)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut code_start = 0;
    let push_code = |out: &mut Vec<_>, from: usize, to: usize| {
        if from < to {
            out.push((Span::Code, from, to));
        }
    };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let (kind, end) = if c == b'-' && next == Some(b'-') {
            let end = b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .map_or(b.len(), |p| i + p);
            (Span::Comment, end)
        } else if c == b'/' && next == Some(b'*') {
            // PostgreSQL nests block comments; SQLite does not, but nested ones are rare there.
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            (Span::Comment, j.min(b.len()))
        } else if c == b'\'' || c == b'"' || c == b'`' {
            let escapes = c == b'\''
                && i > 0
                && matches!(b[i - 1], b'e' | b'E')
                && (i < 2 || !is_ident_byte(b[i - 2]));
            (Span::Quoted, quoted_end(b, i, c, escapes))
        } else if c == b'$' {
            match dollar_tag(b, i) {
                Some(tag_len) => {
                    let tag = &b[i..i + tag_len];
                    let body = i + tag_len;
                    let end = b[body..]
                        .windows(tag_len)
                        .position(|w| w == tag)
                        .map_or(b.len(), |p| body + p + tag_len);
                    (Span::Quoted, end)
                }
                None => {
                    i += 1;
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        };
        push_code(&mut out, code_start, i);
        out.push((kind, i, end));
        i = end;
        code_start = end;
    }
    push_code(&mut out, code_start, b.len());
    out
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// End (exclusive) of a quoted run starting at `start` with quote byte `q`; a doubled quote is
/// an escaped quote, and with `escapes` a backslash escapes the next byte (`E'…'`).
fn quoted_end(b: &[u8], start: usize, q: u8, escapes: bool) -> usize {
    let mut j = start + 1;
    while j < b.len() {
        if escapes && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Length of a dollar-quote opening tag (`$$` or `$tag$`) at `i`, if there is one. `$1` is a
/// positional parameter, not a tag, and a `$` inside a name (`a$b`) does not open one.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident_byte(b[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1 - i)
}

/// The number of non-empty statements (separated by `;` outside quotes and comments).
pub fn statement_count(sql: &str) -> usize {
    split_statements(sql).len()
}

/// Splits SQL into its non-empty statements (each without its `;`), with the byte offset of each
/// in `sql`. Used to run a no-transaction migration one statement at a time: PostgreSQL runs a
/// multi-statement message as one implicit transaction, where `CREATE INDEX CONCURRENTLY` fails.
pub fn split_statements<'a>(sql: &'a str) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_content = false;
    let push = |out: &mut Vec<(usize, &'a str)>, from: usize, to: usize, content: bool| {
        if content {
            out.push((from, &sql[from..to]));
        }
    };
    for (kind, from, to) in spans(sql) {
        match kind {
            Span::Comment => {}
            Span::Quoted => has_content = true,
            Span::Code => {
                for (k, &c) in sql.as_bytes()[from..to].iter().enumerate() {
                    if c == b';' {
                        push(&mut out, start, from + k, has_content);
                        start = from + k + 1;
                        has_content = false;
                    } else if !c.is_ascii_whitespace() {
                        has_content = true;
                    }
                }
            }
        }
    }
    push(&mut out, start, sql.len(), has_content);
    out
}

/// A token of SQL code, for classifying statements (comments are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What it is.
    pub kind: TokenKind,
    /// Its text (for a dollar-quoted body: the body without its tags).
    pub text: &'a str,
    /// Byte offset of the token in the text it came from.
    pub offset: usize,
}

/// The kinds of [`Token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword, name or number (compare keywords with `eq_ignore_ascii_case`).
    Word,
    /// One punctuation or operator character: `(`, `)`, `,`, `;`, `.`, `=`, ….
    Punct,
    /// A string literal or quoted identifier (content, never code).
    Quoted,
    /// A dollar-quoted body (`$$ … $$`): a function or `DO` body, or a string.
    Dollar,
}

impl Token<'_> {
    /// True for the keyword `kw` (case-insensitive).
    pub fn is(&self, kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    /// True for the punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.len() == c.len_utf8() && self.text.starts_with(c)
    }
}

/// The tokens of `sql`: words, punctuation, quoted runs and dollar bodies; comments dropped.
pub fn tokens(sql: &str) -> Vec<Token<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    for (kind, from, to) in spans(sql) {
        match kind {
            Span::Comment => {}
            Span::Quoted if b[from] == b'$' => {
                let tag = dollar_tag(b, from).unwrap_or(1);
                let body_end = to.saturating_sub(tag).max(from + tag);
                out.push(Token {
                    kind: TokenKind::Dollar,
                    text: sql.get(from + tag..body_end).unwrap_or(""),
                    offset: from + tag,
                });
            }
            Span::Quoted => out.push(Token {
                kind: TokenKind::Quoted,
                text: &sql[from..to],
                offset: from,
            }),
            Span::Code => {
                let mut i = from;
                while i < to {
                    let c = b[i];
                    if c.is_ascii_whitespace() {
                        i += 1;
                    } else if is_ident_byte(c) || c == b'$' {
                        let start = i;
                        while i < to && (is_ident_byte(b[i]) || b[i] == b'$') {
                            i += 1;
                        }
                        out.push(Token {
                            kind: TokenKind::Word,
                            text: &sql[start..i],
                            offset: start,
                        });
                    } else {
                        out.push(Token {
                            kind: TokenKind::Punct,
                            text: &sql[i..i + 1],
                            offset: i,
                        });
                        i += 1;
                    }
                }
            }
        }
    }
    out
}

/// The line of the first statement that ends or opens a transaction (`COMMIT`, `END`,
/// `ROLLBACK`, `ABORT`, `BEGIN`, `START TRANSACTION`, `PREPARE TRANSACTION`). offkit runs a
/// transactional migration in a transaction of its own, together with its history row (and a
/// rehearsal runs all of them in one), which such a statement would end: the file would be
/// applied in parts. A `BEGIN` inside a statement opens a body that an `END` closes (an
/// SQL-standard function's `BEGIN ATOMIC … END`, a SQLite trigger's `BEGIN … END`): neither
/// is transaction control.
pub fn transaction_control_line(sql: &str) -> Option<usize> {
    let toks = tokens(sql);
    let mut at_start = true;
    let mut atomic = 0usize;
    for t in &toks {
        if t.is_punct(';') {
            at_start = true;
            continue;
        }
        if t.is("BEGIN") && !at_start {
            atomic += 1;
        } else if atomic > 0 && at_start && t.is("END") {
            atomic -= 1;
        } else if at_start && atomic == 0 {
            let control = [
                "COMMIT", "END", "ROLLBACK", "ABORT", "BEGIN", "START", "PREPARE",
            ]
            .iter()
            .any(|k| t.is(k));
            if control {
                return Some(sql[..t.offset].matches('\n').count() + 1);
            }
        }
        at_start = false;
    }
    None
}

/// Byte offsets of the named placeholder `:name` in code: not in quotes or comments, and only
/// where it stands alone, so that binding cannot join it to its neighbours and change how the
/// rest of the statement reads.
///
/// The byte before the `:` may not be an identifier byte, `$` or `:` (`x::name` is a cast; in
/// `$tag:name$` binding would make `$tag1000$` or `$tag$1$`, a dollar-quote tag, and in
/// `LIMIT:name` it would make the PostgreSQL identifier `LIMIT$1`), and the byte after the name
/// may not be an identifier byte or `$` (`:name_x` and `:name$x` are longer names).
pub fn placeholder_offsets(sql: &str, name: &str) -> Vec<usize> {
    let b = sql.as_bytes();
    let needle = format!(":{name}");
    let mut found = Vec::new();
    for (kind, from, to) in spans(sql) {
        if kind != Span::Code {
            continue;
        }
        let mut k = from;
        while let Some(p) = sql[k..to].find(&needle) {
            let at = k + p;
            let after = at + needle.len();
            let joined_before =
                at > 0 && (is_ident_byte(b[at - 1]) || matches!(b[at - 1], b'$' | b':'));
            let joined_after = after < b.len() && (is_ident_byte(b[after]) || b[after] == b'$');
            if !joined_before && !joined_after {
                found.push(at);
            }
            k = after;
        }
    }
    found
}

/// Replaces every `:name` placeholder in code by `replacement`.
pub fn replace_placeholder(sql: &str, name: &str, replacement: &str) -> String {
    let offsets = placeholder_offsets(sql, name);
    let mut out = String::with_capacity(sql.len() + offsets.len() * replacement.len());
    let mut last = 0;
    for at in offsets {
        out.push_str(&sql[last..at]);
        out.push_str(replacement);
        last = at + 1 + name.len();
    }
    out.push_str(&sql[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_literals_refuse_anything_but_plain_tokens() {
        assert_eq!(
            token_literal("100_lnm_shards").as_deref(),
            Some("'100_lnm_shards'")
        );
        assert_eq!(token_literal("e3b0c442").as_deref(), Some("'e3b0c442'"));
        for bad in ["", "a'b", "a b", "x;DROP", "é", "a\\b"] {
            assert_eq!(token_literal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_statements_outside_quotes_and_comments() {
        assert_eq!(statement_count("SELECT 1"), 1);
        assert_eq!(statement_count("SELECT 1;\n  -- trailing\n"), 1);
        assert_eq!(statement_count("SELECT ';'; SELECT 2;"), 2);
        assert_eq!(statement_count("/* a; /* nested; */ b; */ SELECT 1;"), 1);
        assert_eq!(
            statement_count(
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql;"
            ),
            1
        );
        assert_eq!(statement_count("SELECT E'it\\'s; fine';"), 1);
        assert_eq!(statement_count("SELECT \"a;b\" FROM t; SELECT $1;"), 2);
        assert_eq!(statement_count(" ; ;\n"), 0);
    }

    #[test]
    fn splits_statements() {
        let sql = "-- offkit:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nSELECT ';';\n";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].1.ends_with("ON t (a)"));
        assert_eq!(parts[1].1.trim(), "SELECT ';'");
        assert_eq!(&sql[parts[1].0..parts[1].0 + 7], "\nSELECT");
    }

    #[test]
    fn tokens_skip_comments_and_open_dollar_bodies() {
        let sql = "DROP /* TABLE */ table \"x\" -- y\n; DO $b$ BEGIN DELETE FROM t; END $b$;";
        let t = tokens(sql);
        let words: Vec<_> = t.iter().map(|t| t.text).collect();
        assert_eq!(
            words,
            [
                "DROP",
                "table",
                "\"x\"",
                ";",
                "DO",
                " BEGIN DELETE FROM t; END ",
                ";"
            ]
        );
        assert!(t[1].is("TABLE") && t[3].is_punct(';'));
        assert_eq!(t[5].kind, TokenKind::Dollar);
        assert_eq!(&sql[t[5].offset..t[5].offset + 6], " BEGIN");
    }

    #[test]
    fn finds_statements_that_control_the_transaction() {
        assert_eq!(transaction_control_line("CREATE TABLE t (a int);"), None);
        assert_eq!(
            transaction_control_line("-- x\nBEGIN;\nCREATE TABLE t (a int);\nCOMMIT;"),
            Some(2)
        );
        assert_eq!(transaction_control_line("SELECT 1;\n  commit;"), Some(2));
        assert_eq!(
            transaction_control_line("DO $$ BEGIN PERFORM 1; END $$; SELECT 'COMMIT';"),
            None
        );
        assert_eq!(
            transaction_control_line(
                "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;"
            ),
            None
        );
        assert_eq!(
            transaction_control_line(
                "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\nEND;\nROLLBACK;"
            ),
            Some(5)
        );
        assert_eq!(
            transaction_control_line(
                "CREATE TRIGGER t AFTER UPDATE ON a BEGIN INSERT INTO b VALUES (1); END;\nCOMMIT;"
            ),
            Some(2)
        );
    }

    #[test]
    fn binds_batch_size_only_in_code() {
        let sql = "UPDATE t SET a = ':batch_size', b = x::int -- :batch_size\n \
                   WHERE id IN (SELECT id FROM t LIMIT :batch_size) AND :batch_size_x = 1";
        assert_eq!(placeholder_offsets(sql, "batch_size").len(), 1);
        let out = replace_placeholder(sql, "batch_size", "($1::bigint)");
        assert!(out.contains("LIMIT ($1::bigint))"));
        assert!(out.contains("':batch_size'"));
        assert!(out.contains("-- :batch_size"));
        assert!(out.contains(":batch_size_x"));
        assert!(placeholder_offsets("SELECT x::batch_size", "batch_size").is_empty());
    }

    /// Fuzz finding 3 (docs/FUZZING.md): a placeholder that binding would join to its neighbours
    /// is not one, so binding never changes how the rest of the text is quoted.
    #[test]
    fn a_placeholder_joined_to_its_neighbours_is_not_bound() {
        for sql in [
            "SELECT $tag:batch_size$ /* $tag1000$ :batch_size",
            "SELECT $:batch_size$ /* $$ :batch_size",
            "SELECT 1 LIMIT:batch_size",
            "SELECT arr[1:batch_size]",
            "SELECT :batch_size$x$ /* $x$ :batch_size",
            "SELECT é:batch_size",
        ] {
            // The only placeholder in the code, if any, is a standalone one; binding leaves the
            // text's quoting as it was and no placeholder behind.
            for replacement in ["1000", "$1", "?1", "0"] {
                let bound = replace_placeholder(sql, "batch_size", replacement);
                assert!(
                    placeholder_offsets(&bound, "batch_size").is_empty(),
                    "{sql:?} bound to {replacement}: {bound:?}"
                );
            }
        }
        assert!(placeholder_offsets("SELECT 1 LIMIT:batch_size", "batch_size").is_empty());
        assert!(placeholder_offsets("SELECT $tag:batch_size$", "batch_size").is_empty());
        assert_eq!(
            placeholder_offsets(
                "SELECT (:batch_size),-:batch_size,[:batch_size]",
                "batch_size"
            ),
            vec![8, 22, 35]
        );
        // The fuzzer's input: before the fix binding made `$tag1000$ … $tag1000$` a dollar quote
        // and left an unbound `:batch_size` after it.
        let found =
            include_str!("../../fuzz/regressions/sql_split/placeholder-joined-to-a-dollar-tag");
        let bound = replace_placeholder(found, "batch_size", "1000");
        assert!(placeholder_offsets(&bound, "batch_size").is_empty());
    }
}
