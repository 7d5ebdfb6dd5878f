//! Pure text helpers: identifier quoting, exact SQL value literals, `DEFINER` removal and
//! delimiter choice. No I/O; unit-tested here.

use mysql_async::Value;

/// How the values of one column are written (see the crate docs, "Value encodings").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    /// Integers, DECIMAL, FLOAT, DOUBLE, YEAR: unquoted numbers.
    Number,
    /// ENUM and SET: read as `col+0` (the ENUM index, the SET bitmask) and written as that
    /// number. A label would not be exact: a value stored as index 0 (an invalid value written
    /// under a permissive sql_mode) reads as `''`, which restores as a real `''` member if the
    /// ENUM has one; the index restores exactly.
    Index,
    /// Binary strings, BLOBs, BIT and spatial values: `0x…` of the stored bytes
    /// (spatial: MariaDB's internal format, 4-byte SRID + WKB, which keeps the SRID).
    Hex,
    /// Character data in a UTF-8 family charset (`utf8mb4`, `utf8mb3`, `utf8`, `ascii`):
    /// a quoted, escaped string when the bytes are valid in that charset, else `_cs 0x…`.
    Utf8Text {
        /// The column's character set.
        charset: String,
    },
    /// Character data in any other charset (latin1, …): `_charset 0x…`, the stored bytes.
    CharsetHex {
        /// The column's character set.
        charset: String,
    },
    /// ASCII text types without a charset (MariaDB `UUID`, `INET6`, `INET4`): quoted.
    AsciiText,
    /// `DATE`.
    Date,
    /// `DATETIME` / `TIMESTAMP` with this many fractional digits.
    DateTime(u32),
    /// `TIME` with this many fractional digits.
    Time(u32),
}

impl Encoding {
    /// The encoding for an `information_schema.COLUMNS` row; `None` for a type we do not
    /// know how to write exactly (the dump then fails naming the column).
    #[must_use]
    pub fn for_column(
        data_type: &str,
        charset: Option<&str>,
        datetime_precision: u32,
    ) -> Option<Self> {
        let t = data_type.to_ascii_lowercase();
        Some(match t.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "float" | "double" | "real" | "year" => Self::Number,
            "bit" | "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint"
            | "multilinestring" | "multipolygon" | "geometrycollection" | "geomcollection" => {
                Self::Hex
            }
            "date" => Self::Date,
            "datetime" | "timestamp" => Self::DateTime(datetime_precision.min(6)),
            "time" => Self::Time(datetime_precision.min(6)),
            "uuid" | "inet6" | "inet4" => Self::AsciiText,
            // MySQL's native JSON type has no charset column; it travels as utf8mb4 text.
            "json" if charset.is_none() => Self::Utf8Text {
                charset: "utf8mb4".to_owned(),
            },
            "enum" | "set" => Self::Index,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "json" => {
                match charset.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("binary") => Self::Hex,
                    Some(cs @ ("utf8mb4" | "utf8mb3" | "utf8" | "ascii")) => Self::Utf8Text {
                        charset: cs.to_owned(),
                    },
                    Some(cs) if cs.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                        Self::CharsetHex {
                            charset: cs.to_owned(),
                        }
                    }
                    Some(_) => return None,
                }
            }
            _ => return None,
        })
    }
}

impl Encoding {
    /// The expression selecting a column of this encoding, given its quoted name.
    #[must_use]
    pub fn select_expr(&self, quoted: &str) -> String {
        match self {
            Self::Index => format!("({quoted}+0)"),
            _ => quoted.to_owned(),
        }
    }
}

/// Error writing one value: the value did not have a shape the column's encoding accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

/// Append the exact SQL literal of `value` for a column of `encoding` to `out`.
///
/// # Errors
///
/// [`EncodeError`] if the protocol value does not fit the column's encoding (never guessed).
pub fn literal(out: &mut Vec<u8>, value: &Value, encoding: &Encoding) -> Result<(), EncodeError> {
    let bad = || {
        EncodeError(format!(
            "unexpected value {value:?} for a column written as {encoding:?}"
        ))
    };
    match (value, encoding) {
        (Value::NULL, _) => out.extend_from_slice(b"NULL"),
        (Value::Int(n), Encoding::Number | Encoding::Index) => push_fmt(out, format_args!("{n}")),
        (Value::UInt(n), Encoding::Number | Encoding::Index) => push_fmt(out, format_args!("{n}")),
        // Exactly as stored: the binary protocol carries the IEEE value; `{:e}` prints the
        // shortest decimal that parses back to the same double, and the exponent makes it
        // an approximate-value (double) literal. A FLOAT is widened to f64 exactly first, so
        // the server's double -> float conversion gives back the same float.
        (Value::Float(f), Encoding::Number) => push_float(out, f64::from(*f)),
        (Value::Double(f), Encoding::Number) => push_float(out, *f),
        // DECIMAL arrives as its exact decimal text.
        (Value::Bytes(b), Encoding::Number) => {
            if b.is_empty()
                || !b
                    .iter()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
            {
                return Err(bad());
            }
            out.extend_from_slice(b);
        }
        (Value::Bytes(b), Encoding::Hex) => push_hex(out, b),
        (Value::Bytes(b), Encoding::Utf8Text { charset }) => {
            let valid = std::str::from_utf8(b).is_ok()
                && (charset != "ascii" || b.is_ascii())
                && (charset == "utf8mb4" || b.iter().all(|&c| c < 0xF0));
            if valid {
                push_quoted(out, b);
            } else {
                push_charset_hex(out, charset, b);
            }
        }
        (Value::Bytes(b), Encoding::CharsetHex { charset }) => push_charset_hex(out, charset, b),
        (Value::Bytes(b), Encoding::AsciiText) => {
            if !b.is_ascii() {
                return Err(bad());
            }
            push_quoted(out, b);
        }
        (Value::Date(y, mo, d, _, _, _, _), Encoding::Date) => {
            push_fmt(out, format_args!("'{y:04}-{mo:02}-{d:02}'"));
        }
        (Value::Date(y, mo, d, h, mi, s, us), Encoding::DateTime(prec)) => {
            push_fmt(
                out,
                format_args!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
            );
            push_fraction(out, *us, *prec);
            out.push(b'\'');
        }
        (Value::Time(neg, days, h, mi, s, us), Encoding::Time(prec)) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            push_fmt(out, format_args!("'{sign}{hours:02}:{mi:02}:{s:02}"));
            push_fraction(out, *us, *prec);
            out.push(b'\'');
        }
        _ => return Err(bad()),
    }
    Ok(())
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    // Straight into the buffer: no String per value (formatting into a fresh String per date
    // and double showed up in a MariaDB dump's profile). Writing to a Vec cannot fail.
    let _ = std::io::Write::write_fmt(out, args);
}

fn push_float(out: &mut Vec<u8>, f: f64) {
    push_fmt(out, format_args!("{f:e}"));
}

fn push_fraction(out: &mut Vec<u8>, micros: u32, prec: u32) {
    if prec > 0 {
        // The first `prec` of six zero-padded digits, without allocating.
        out.push(b'.');
        let mut divisor = 100_000;
        for _ in 0..prec.min(6) {
            out.push(b'0' + ((micros / divisor) % 10) as u8);
            divisor /= 10;
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `0x…` of `bytes`, or `''` for no bytes (`0x` alone is not a literal).
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.extend_from_slice(b"''");
        return;
    }
    out.reserve(2 + bytes.len() * 2);
    out.extend_from_slice(b"0x");
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xF)]);
    }
}

fn push_charset_hex(out: &mut Vec<u8>, charset: &str, bytes: &[u8]) {
    out.push(b'_');
    out.extend_from_slice(charset.as_bytes());
    if bytes.is_empty() {
        out.extend_from_slice(b"''");
    } else {
        out.push(b' ');
        push_hex(out, bytes);
    }
}

/// A single-quoted string literal with MySQL's backslash escapes (the script's sql_mode does
/// not contain `NO_BACKSLASH_ESCAPES`). NUL, CR, LF and ^Z are escaped so the script has no
/// raw control bytes the stock client objects to.
pub fn push_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'\'');
    // Copy runs of bytes that need no escape in one go (the hot path of text-heavy tables;
    // a byte-at-a-time push showed up at 7.6% of a MariaDB dump's profile).
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            0 => b"\\0",
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x1A => b"\\Z",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'\'');
}

/// A string as a quoted SQL literal (for sql_mode values, time zones).
#[must_use]
pub fn quote_str(s: &str) -> String {
    let mut v = Vec::new();
    push_quoted(&mut v, s.as_bytes());
    String::from_utf8(v).unwrap_or_default()
}

/// A backtick-quoted identifier.
#[must_use]
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The identifier as is when it needs no quoting (`[A-Za-z0-9_$]`, not all digits), else
/// backtick-quoted: the display names of [`exporter_contract::TableSummary`].
#[must_use]
pub fn display_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if plain {
        name.to_owned()
    } else {
        quote_ident(name)
    }
}

/// Where the `DEFINER = account` clause of a `SHOW CREATE` / mysqldump statement head is:
/// `(start of the DEFINER keyword, start of the account, end of the account)`. Only the head
/// counts — the keywords before the object kind (`CREATE`, `OR REPLACE`, `ALTER`,
/// `ALGORITHM=…`, `SQL SECURITY …`, `AGGREGATE`) and mysqldump's executable-comment markers
/// around them (`/*!50013 DEFINER=… */`); a `DEFINER=` in a body or a string never does.
/// `None` for a statement without such a clause.
#[must_use]
pub fn definer_clause(sql: &[u8]) -> Option<(usize, usize, usize)> {
    let skip_space = |mut i: usize| {
        while sql.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let word_end = |i: usize| {
        let mut j = i;
        while sql
            .get(j)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            j += 1;
        }
        j
    };
    let mut i = 0;
    let mut first = true;
    loop {
        i = skip_space(i);
        let rest = &sql[i.min(sql.len())..];
        if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
            i += if rest[2] == b'M' { 4 } else { 3 };
            while sql.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            continue;
        }
        if rest.starts_with(b"*/") {
            i += 2;
            continue;
        }
        let end = word_end(i);
        if end == i {
            return None;
        }
        let word = sql[i..end].to_ascii_uppercase();
        if first && word != b"CREATE" && word != b"ALTER" {
            return None;
        }
        first = false;
        let after = skip_space(end);
        let assigned = sql.get(after) == Some(&b'=');
        match word.as_slice() {
            b"DEFINER" if assigned => {
                let account = skip_space(after + 1);
                let len = account_len(&sql[account..])?;
                return Some((i, account, account + len));
            }
            b"ALGORITHM" if assigned => {
                let value = skip_space(after + 1);
                i = word_end(value);
            }
            b"CREATE" | b"ALTER" | b"OR" | b"REPLACE" | b"SQL" | b"SECURITY" | b"DEFINER"
            | b"INVOKER" | b"AGGREGATE" => i = end,
            _ => return None,
        }
    }
}

/// Length of an account at the start: `user`, `user@host` (each part quoted or bare), or
/// `CURRENT_USER` / `CURRENT_USER()` / a role name.
fn account_len(bytes: &[u8]) -> Option<usize> {
    let mut used = ident_len(bytes)?;
    if bytes.get(used) == Some(&b'@') {
        used += 1 + ident_len(&bytes[used + 1..])?;
    }
    Some(used)
}

/// The account of the `DEFINER=` clause in the head of a `SHOW CREATE` statement (see
/// [`definer_clause`]), as written (e.g. `` `app`@`%` ``).
#[must_use]
pub fn definer_of(sql: &[u8]) -> Option<String> {
    definer_clause(sql).map(|(_, a, b)| String::from_utf8_lossy(&sql[a..b]).into_owned())
}

/// Remove the `DEFINER=user@host` clause from the head of a `SHOW CREATE` statement (view,
/// trigger, routine, event), so that a restore by a user without SUPER / SET USER creates the
/// object with itself as definer. Text without such a clause is returned unchanged.
#[must_use]
pub fn strip_definer(sql: &[u8]) -> Vec<u8> {
    let Some((start, _, end)) = definer_clause(sql) else {
        return sql.to_vec();
    };
    let tail = &sql[end..];
    let tail = tail.strip_prefix(b" ").unwrap_or(tail);
    [&sql[..start], tail].concat()
}

/// The statement with the account of its head's `DEFINER=` clause replaced by
/// `CURRENT_USER` (the restoring account becomes the definer), or `None` when it has no such
/// clause or names `CURRENT_USER` already. The clause's place, including inside an
/// executable comment, is kept.
#[must_use]
pub fn rewrite_definer(sql: &[u8]) -> Option<Vec<u8>> {
    let (_, start, end) = definer_clause(sql)?;
    let account = sql[start..end].to_ascii_uppercase();
    if account == b"CURRENT_USER" || account == b"CURRENT_USER()" {
        return None;
    }
    Some([&sql[..start], b"CURRENT_USER", &sql[end..]].concat())
}

/// Length of a quoted (`` ` ``, `'`, `"`, doubled to escape) or bare identifier at the start.
fn ident_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.first()?;
    if matches!(first, b'`' | b'\'' | b'"') {
        let mut i = 1;
        while i < bytes.len() {
            if bytes[i] == first {
                if bytes.get(i + 1) == Some(&first) {
                    i += 2;
                    continue;
                }
                return Some(i + 1);
            }
            i += 1;
        }
        None
    } else {
        let n = bytes
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'(' | b')'))
            .count();
        (n > 0).then_some(n)
    }
}

/// In `SHOW CREATE TABLE` output, MariaDB qualifies a sequence used in a default with its
/// schema even when it is the current one (`DEFAULT nextval(`db`.`seq`)`). When the script
/// restores into any database, drop that qualifier so the restored table uses the restored
/// sequence, not the source's. Only `nextval(` / `lastval(` / `setval(` arguments change.
#[must_use]
pub fn unqualify_sequence_refs(create: &str, schema: &str) -> String {
    let q = format!("{}.", quote_ident(schema));
    let mut out = String::with_capacity(create.len());
    let mut rest = create;
    while let Some(pos) = rest.find(&q) {
        let head = &rest[..pos];
        let lower = head.to_ascii_lowercase();
        out.push_str(head);
        if !["nextval(", "lastval(", "setval("]
            .iter()
            .any(|f| lower.ends_with(f))
        {
            out.push_str(&q);
        }
        rest = &rest[pos + q.len()..];
    }
    out.push_str(rest);
    out
}

/// In a view's `SHOW CREATE VIEW`, drop the schema from three-part column references
/// `` `schema`.`table`.`column` `` (outside string literals). MariaDB prints a view whose
/// definer is missing or may not read its tables that way, even with its schema as the
/// current database; a script restored into another database would then refer to the source
/// database ("Unknown column …"). Two-part names are left alone (`` `x`.`y` `` may be a table
/// and column named like the schema).
#[must_use]
pub fn unqualify_view_columns(create: &[u8], schema: &str) -> Vec<u8> {
    let q = format!("{}.", quote_ident(schema));
    let q = q.as_bytes();
    let mut out = Vec::with_capacity(create.len());
    let mut i = 0;
    while i < create.len() {
        match create[i] {
            quote @ (b'\'' | b'"') => {
                // A string literal, copied whole (backslash escapes, doubled quotes).
                let start = i;
                i += 1;
                while i < create.len() {
                    match create[i] {
                        b'\\' => i += 2,
                        c if c == quote && create.get(i + 1) == Some(&quote) => i += 2,
                        c if c == quote => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                out.extend_from_slice(&create[start..i.min(create.len())]);
            }
            b'`' => {
                let rest = &create[i..];
                if rest.starts_with(q)
                    && let Some(n) = ident_len(&rest[q.len()..])
                    && rest.get(q.len() + n) == Some(&b'.')
                    && rest.get(q.len() + n + 1) == Some(&b'`')
                {
                    i += q.len();
                    continue;
                }
                let n = ident_len(rest).unwrap_or(rest.len());
                out.extend_from_slice(&rest[..n]);
                i += n;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A client `DELIMITER` that does not occur in `body`.
#[must_use]
pub fn delimiter_for(body: &[u8]) -> String {
    let contains = |d: &str| body.windows(d.len()).any(|w| w == d.as_bytes());
    for d in [";;", "$$", "//", ";;;", "$$$", "///"] {
        if !contains(d) {
            return d.to_owned();
        }
    }
    let mut d = String::from("$$");
    while contains(&d) {
        d.push('$');
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: &Value, e: &Encoding) -> String {
        let mut out = Vec::new();
        literal(&mut out, v, e).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn m08_float_exact() {
        // 1.2345678 as FLOAT is not 1.23457 (the text protocol's rounding).
        let f = 1.234_567_8_f32;
        let s = lit(&Value::Float(f), &Encoding::Number);
        assert_eq!(s, "1.2345677614212036e0");
        assert_eq!((s.parse::<f64>().unwrap() as f32).to_bits(), f.to_bits());
        assert_eq!(lit(&Value::Double(0.1), &Encoding::Number), "1e-1");
        assert_eq!(lit(&Value::Double(-1e300), &Encoding::Number), "-1e300");
    }

    #[test]
    fn quoting_escapes_every_special_byte_between_runs() {
        let mut out = Vec::new();
        push_quoted(&mut out, b"a\0b'c\\d\ne\rf\x1ag");
        assert_eq!(out, b"'a\\0b\\'c\\\\d\\ne\\rf\\Zg'");
        out.clear();
        push_quoted(&mut out, b"'\n");
        assert_eq!(out, b"'\\'\\n'");
        out.clear();
        push_quoted(&mut out, b"");
        assert_eq!(out, b"''");
    }

    #[test]
    fn strings_are_escaped_or_hex() {
        let utf8 = Encoding::Utf8Text {
            charset: "utf8mb4".into(),
        };
        assert_eq!(
            lit(&Value::Bytes(b"a'b\\c\n\0\x1a".to_vec()), &utf8),
            r"'a\'b\\c\n\0\Z'"
        );
        assert_eq!(lit(&Value::Bytes("😀".as_bytes().to_vec()), &utf8), "'😀'");
        assert_eq!(lit(&Value::Bytes(vec![0xFF]), &utf8), "_utf8mb4 0xFF");
        let mb3 = Encoding::Utf8Text {
            charset: "utf8mb3".into(),
        };
        assert_eq!(lit(&Value::Bytes("é".as_bytes().to_vec()), &mb3), "'é'");
        let lat = Encoding::CharsetHex {
            charset: "latin1".into(),
        };
        assert_eq!(lit(&Value::Bytes(vec![0xE9, 0x80]), &lat), "_latin1 0xE980");
        assert_eq!(lit(&Value::Bytes(vec![]), &lat), "_latin1''");
        assert_eq!(lit(&Value::Bytes(vec![0, 0x27]), &Encoding::Hex), "0x0027");
        assert_eq!(lit(&Value::Bytes(vec![]), &Encoding::Hex), "''");
        assert_eq!(lit(&Value::NULL, &Encoding::Hex), "NULL");
    }

    #[test]
    fn temporal_values() {
        assert_eq!(
            lit(&Value::Date(0, 0, 0, 0, 0, 0, 0), &Encoding::Date),
            "'0000-00-00'"
        );
        assert_eq!(
            lit(
                &Value::Date(2024, 1, 0, 10, 0, 0, 0),
                &Encoding::DateTime(0)
            ),
            "'2024-01-00 10:00:00'"
        );
        assert_eq!(
            lit(
                &Value::Date(2024, 1, 2, 3, 4, 5, 120_000),
                &Encoding::DateTime(3)
            ),
            "'2024-01-02 03:04:05.120'"
        );
        assert_eq!(
            lit(&Value::Time(true, 34, 22, 59, 59, 0), &Encoding::Time(0)),
            "'-838:59:59'"
        );
        assert_eq!(
            lit(&Value::Time(false, 0, 1, 2, 3, 4), &Encoding::Time(6)),
            "'01:02:03.000004'"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            lit(&Value::Bytes(b"-12.3400".to_vec()), &Encoding::Number),
            "-12.3400"
        );
        assert!(
            literal(
                &mut Vec::new(),
                &Value::Bytes(b"1;DROP".to_vec()),
                &Encoding::Number
            )
            .is_err()
        );
        assert_eq!(
            lit(&Value::UInt(u64::MAX), &Encoding::Number),
            "18446744073709551615"
        );
    }

    #[test]
    fn definers_are_stripped_from_the_head_only() {
        let strip_definer = |s: &str| String::from_utf8(strip_definer(s.as_bytes())).unwrap();
        assert_eq!(
            strip_definer(
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`127.0.0.1` SQL SECURITY DEFINER VIEW `v` AS select 1"
            ),
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"
        );
        assert_eq!(
            strip_definer(
                "CREATE DEFINER=`a``b`@`%` TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a='DEFINER=1'"
            ),
            "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a='DEFINER=1'"
        );
        assert_eq!(
            strip_definer("CREATE DEFINER=`role1` PROCEDURE p() BEGIN END"),
            "CREATE PROCEDURE p() BEGIN END"
        );
        let no_head = "CREATE PROCEDURE p() SELECT 'DEFINER=`x`@`y`'";
        assert_eq!(strip_definer(no_head), no_head);
    }

    #[test]
    fn definers_are_found_in_mysqldump_heads_and_rewritten() {
        let rewrite =
            |s: &str| rewrite_definer(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            rewrite("CREATE ALGORITHM=UNDEFINED DEFINER=`app`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1").as_deref(),
            Some("CREATE ALGORITHM=UNDEFINED DEFINER=CURRENT_USER SQL SECURITY DEFINER VIEW `v` AS select 1")
        );
        // mysqldump's executable comments (views, triggers, events).
        assert_eq!(
            rewrite("/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 */").as_deref(),
            Some("/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 */")
        );
        assert_eq!(
            rewrite("/*!50003 CREATE*/ /*!50017 DEFINER=`a``b`@`localhost`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @d='DEFINER=`z`@`y`' */").as_deref(),
            Some("/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @d='DEFINER=`z`@`y`' */")
        );
        assert_eq!(
            rewrite("CREATE DEFINER = 'app'@'10.0.0.%' PROCEDURE p() BEGIN END").as_deref(),
            Some("CREATE DEFINER = CURRENT_USER PROCEDURE p() BEGIN END")
        );
        assert_eq!(
            rewrite("CREATE DEFINER=CURRENT_USER() FUNCTION f() RETURNS INT RETURN 1"),
            None
        );
        assert_eq!(
            rewrite("CREATE PROCEDURE p() SELECT 'DEFINER=`x`@`y`'"),
            None
        );
        assert_eq!(
            rewrite("INSERT INTO t VALUES ('CREATE DEFINER=`x`@`y`')"),
            None
        );
        assert_eq!(rewrite("CREATE TABLE t (definer INT)"), None);
        assert_eq!(
            definer_of(b"CREATE DEFINER=`role1` EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1")
                .as_deref(),
            Some("`role1`")
        );
    }

    #[test]
    fn views_lose_the_source_schema_of_three_part_columns() {
        let create = "CREATE VIEW `v` AS select `db`.`t`.`id` AS `id`,`db`.`db`.`id` AS `x`,'`db`.`t`.`id`' AS `s`,`db`.`c` AS `c` from (`t` join `db`)";
        assert_eq!(
            String::from_utf8(unqualify_view_columns(create.as_bytes(), "db")).unwrap(),
            "CREATE VIEW `v` AS select `t`.`id` AS `id`,`db`.`id` AS `x`,'`db`.`t`.`id`' AS `s`,`db`.`c` AS `c` from (`t` join `db`)"
        );
        let other = "select `other`.`t`.`id` AS `id` from `other`.`t`";
        assert_eq!(
            unqualify_view_columns(other.as_bytes(), "db"),
            other.as_bytes()
        );
    }

    #[test]
    fn sequence_defaults_lose_the_source_schema() {
        assert_eq!(
            unqualify_sequence_refs(
                "`a` bigint DEFAULT nextval(`src`.`s`), `b` int COMMENT '`src`.`x`'",
                "src"
            ),
            "`a` bigint DEFAULT nextval(`s`), `b` int COMMENT '`src`.`x`'"
        );
        assert_eq!(
            unqualify_sequence_refs("DEFAULT NEXTVAL(`other`.`s`)", "src"),
            "DEFAULT NEXTVAL(`other`.`s`)"
        );
    }

    #[test]
    fn delimiters_avoid_the_body() {
        assert_eq!(delimiter_for(b"BEGIN SELECT 1; END"), ";;");
        assert_eq!(delimiter_for(b"SET @a=';;'"), "$$");
    }

    #[test]
    fn identifiers() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(display_ident("orders"), "orders");
        assert_eq!(display_ident("naïve_列"), "`naïve_列`");
        assert_eq!(display_ident("123"), "`123`");
    }

    #[test]
    fn encodings_by_type() {
        assert_eq!(
            Encoding::for_column("varchar", Some("latin1"), 0),
            Some(Encoding::CharsetHex {
                charset: "latin1".into()
            })
        );
        assert_eq!(
            Encoding::for_column("longblob", None, 0),
            Some(Encoding::Hex)
        );
        assert_eq!(
            Encoding::for_column("varchar", Some("binary"), 0),
            Some(Encoding::Hex)
        );
        assert_eq!(
            Encoding::for_column("datetime", None, 9),
            Some(Encoding::DateTime(6))
        );
        assert_eq!(Encoding::for_column("vector", None, 0), None);
    }
}
