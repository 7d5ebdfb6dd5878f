//! Quoting of identifiers and literals for the script.
//!
//! Most names in the script are quoted by the server itself (`quote_ident()` in the catalog
//! queries), so they follow exactly the server's keyword list. These helpers cover text we
//! assemble in Rust. Both assume `standard_conforming_strings = on`, which the script header
//! sets (<https://www.postgresql.org/docs/current/sql-syntax-lexical.html>).

/// Quote an identifier: always double-quoted, embedded `"` doubled. Always quoting is correct
/// for every name (keywords, upper case, spaces, non-ASCII) and never changes its meaning.
#[must_use]
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for ch in name.chars() {
        if ch == '"' {
            out.push('"');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// Quote a string literal: single-quoted, embedded `'` doubled. Backslashes are ordinary
/// characters under `standard_conforming_strings = on`.
#[must_use]
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        if ch == '\'' {
            out.push('\'');
        }
        out.push(ch);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(quote_ident("plain"), "\"plain\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_ident("naïve 表"), "\"naïve 表\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    #[test]
    fn literals() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("back\\slash"), "'back\\slash'");
        assert_eq!(quote_literal(""), "''");
    }
}
