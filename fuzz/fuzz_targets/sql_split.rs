//! The SQL text helpers of the migration runner (`offkit::migrate::sqltext`): the statement
//! splitter that runs a no-transaction migration one statement at a time, the lexer behind it,
//! the `:batch_size` placeholder binding and the transaction-control check, plus the
//! destructive-statement classifier built on them (`migrate::destructive::classify`).
//!
//! Oracles: no panic; every statement is a slice of the text at its offset, in order, without
//! overlap, and re-splitting a statement gives that one statement (the lexer reads a statement
//! alone as it read it in the file); `statement_count` agrees; tokens lie where they say; a bound
//! placeholder leaves no placeholder behind; line numbers fall inside the text; a finding quotes
//! a bounded excerpt with no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offkit::migrate::destructive;
use offkit::migrate::sqltext::{self, TokenKind};

const PLACEHOLDER: &str = "batch_size";

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let lines = sql.matches('\n').count() + 1;

    let statements = sqltext::split_statements(sql);
    assert_eq!(sqltext::statement_count(sql), statements.len());
    let mut end = 0;
    for &(offset, text) in &statements {
        assert!(offset >= end, "statements overlap");
        assert_eq!(&sql[offset..offset + text.len()], text);
        // Not only whitespace, as the splitter means it (ASCII: a vertical tab or a no-break
        // space is not whitespace to it, nor to PostgreSQL before 16).
        assert!(
            !text
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .is_empty()
        );
        end = offset + text.len();
        assert_eq!(
            sqltext::split_statements(text),
            vec![(0, text)],
            "a statement split again is not itself"
        );
    }

    let mut last = 0;
    for token in sqltext::tokens(sql) {
        assert!(token.offset >= last, "tokens out of order");
        last = token.offset;
        if token.kind != TokenKind::Dollar {
            assert_eq!(
                &sql[token.offset..token.offset + token.text.len()],
                token.text
            );
        }
        if let Some(lit) = sqltext::token_literal(token.text) {
            assert_eq!(lit, format!("'{}'", token.text));
        }
    }

    for at in sqltext::placeholder_offsets(sql, PLACEHOLDER) {
        assert!(sql[at..].starts_with(":batch_size"));
    }
    let bound = sqltext::replace_placeholder(sql, PLACEHOLDER, "1000");
    assert!(
        sqltext::placeholder_offsets(&bound, PLACEHOLDER).is_empty(),
        "a placeholder survived binding"
    );

    if let Some(line) = sqltext::transaction_control_line(sql) {
        assert!((1..=lines).contains(&line));
    }
    for finding in destructive::classify(sql) {
        assert!((1..=lines).contains(&finding.line), "{finding}");
        // 120 characters and an ellipsis, each control character escaped (`\u{1b}`).
        assert!(finding.statement.chars().count() <= 121 * 8, "{finding}");
        assert!(
            !finding.statement.chars().any(char::is_control),
            "{finding:?}"
        );
    }
});
