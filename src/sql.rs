//! The one SQL identifier-quoting helper, shared by the migration runner, the ledger and the
//! PostgreSQL object store. Values are never quoted by hand: they are bound parameters.

/// Quotes an SQL identifier (`"name"`, inner `"` doubled). Every schema and table name offkit
/// writes into SQL goes through this function.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("concelier"), "\"concelier\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
