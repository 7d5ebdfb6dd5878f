//! The parallel restore of a script (`RestoreOptions::jobs` > 1): which statements may run on
//! several connections ([`Planner`], [`classify`], [`TableRule`]: pure, unit-tested here) and
//! the dispatcher that runs them ([`apply`]). What it does and why is described in the module
//! docs of [`crate::restore`], "Parallel restore".

use std::collections::HashMap;

use bytes::Bytes;
use exporter_contract::{EngineError, ErrorKind, RestoreOptions, RestoreSummary};
use futures::StreamExt;
use futures::stream::BoxStream;
use mysql_async::prelude::Queryable;
use tokio::task::{JoinError, JoinSet};

use crate::connect::{self, Session};
use crate::encode::quote_str;
use crate::restore::{execute, refuse_switching, send, send_raw, statement_error};
use crate::script::{Splitter, Statement};

/// Bytes of data statements in flight at once (sent to a worker, not yet answered), over all
/// workers; a statement larger than this runs alone. Each statement in flight costs about four
/// times its size (ours, the driver's command buffer, its connection's write buffer, allocator
/// slack; measured: peak RSS 38, 46, 55 and 62 MiB with one, 2, 4 and 8 MiB in flight at
/// `jobs` 8), so at most four of our dump's 1 MiB INSERTs run at once, whatever `jobs` is, and
/// a restore stays under the 64 MiB ceiling.
pub const IN_FLIGHT_BYTES: usize = 4 * 1024 * 1024;

/// Times a data statement runs when InnoDB rolls it back as a deadlock victim (ERROR 1213,
/// "try restarting transaction"): in autocommit it had no effect, so it runs again.
pub const DEADLOCK_ATTEMPTS: u32 = 5;

// ---------------------------------------------------------------------------------------------
// Tokens

/// One token of a statement, as the server's lexer would cut it (roughly: enough to tell a
/// plain INSERT of literals and the head words of other statements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    /// An identifier, keyword or number: `[A-Za-z0-9_$]` and bytes ≥ 0x80; a word that starts
    /// with a digit (or `.` and a digit) also takes `.` and an exponent's sign.
    Word(&'a [u8]),
    /// A quoted token, by its quote byte (`'`, `"` or `` ` ``), without the quotes.
    Quoted(u8, &'a [u8]),
    /// Any other byte outside strings and comments.
    Punct(u8),
}

/// The string rules of the session (see [`Splitter::set_modes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// Backslash escapes in strings (no `NO_BACKSLASH_ESCAPES`).
    pub backslash: bool,
    /// `"` quotes identifiers (`ANSI_QUOTES`).
    pub ansi: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            backslash: true,
            ansi: false,
        }
    }
}

/// Tokens of a statement's text: whitespace and comments skipped; the markers of executable
/// comments (`/*!NNNNN`, `/*M!NNNNN`, and their `*/`) skipped while their content counts as
/// code, except a version of 999999 or more, which no server runs (mariadb-dump's sandbox
/// line). Stops at the end or at anything unterminated ([`Lexer::complete`] tells).
pub struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    modes: Modes,
    in_exec: bool,
    broken: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    /// Tokens of `text` from byte `pos`.
    #[must_use]
    pub fn new(text: &'a [u8], pos: usize, modes: Modes) -> Self {
        Self {
            text,
            pos,
            modes,
            in_exec: false,
            broken: false,
        }
    }

    /// Where the next token starts (after [`Lexer::next`] returned one: where it ended).
    #[must_use]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Whether the text ended cleanly: nothing unterminated, no executable comment open.
    #[must_use]
    pub fn complete(&self) -> bool {
        !self.broken && !self.in_exec && self.pos >= self.text.len()
    }

    fn skip_to_newline(&mut self) {
        self.pos = memchr::memchr(b'\n', &self.text[self.pos..])
            .map_or(self.text.len(), |i| self.pos + i + 1);
    }

    /// Skip whitespace and comments; false when broken.
    fn skip_blank(&mut self) -> bool {
        let t = self.text;
        while let Some(&b) = t.get(self.pos) {
            match b {
                _ if is_space(b) => self.pos += 1,
                b'#' => self.skip_to_newline(),
                b'-' if t.get(self.pos + 1) == Some(&b'-')
                    && t.get(self.pos + 2).is_none_or(|&c| c <= b' ') =>
                {
                    self.skip_to_newline();
                }
                b'*' if self.in_exec && t.get(self.pos + 1) == Some(&b'/') => {
                    self.pos += 2;
                    self.in_exec = false;
                }
                b'/' if t.get(self.pos + 1) == Some(&b'*') => {
                    let rest = &t[self.pos + 2..];
                    let marker = if rest.starts_with(b"!") {
                        1
                    } else if rest.starts_with(b"M!") {
                        2
                    } else {
                        0
                    };
                    let digits = rest[marker..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    let version: u64 = std::str::from_utf8(&rest[marker..marker + digits])
                        .ok()
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0);
                    if marker > 0 && !self.in_exec && version < 999_999 {
                        self.in_exec = true;
                        self.pos += 2 + marker + digits;
                    } else {
                        let Some(i) = memchr::memmem::find(rest, b"*/") else {
                            self.broken = true;
                            return false;
                        };
                        self.pos += 2 + i + 2;
                    }
                }
                _ => return true,
            }
        }
        true
    }

    /// The end of a quoted token starting at `start` (the quote), or `None` if unterminated.
    fn quoted_end(&self, start: usize, q: u8) -> Option<usize> {
        let t = self.text;
        let escapes = q != b'`' && self.modes.backslash && !(q == b'"' && self.modes.ansi);
        let mut i = start + 1;
        loop {
            let rest = &t[i..];
            let found = if escapes {
                memchr::memchr2(q, b'\\', rest)
            } else {
                memchr::memchr(q, rest)
            }?;
            i += found;
            if t[i] == b'\\' {
                i += 2;
                if i > t.len() {
                    return None;
                }
            } else if t.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return Some(i);
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Tok<'a>;

    fn next(&mut self) -> Option<Tok<'a>> {
        if self.broken || !self.skip_blank() {
            return None;
        }
        let t = self.text;
        let start = self.pos;
        let b = *t.get(start)?;
        match b {
            b'\'' | b'"' | b'`' => {
                let Some(end) = self.quoted_end(start, b) else {
                    self.broken = true;
                    return None;
                };
                self.pos = end + 1;
                Some(Tok::Quoted(b, &t[start + 1..end]))
            }
            _ if b.is_ascii_digit()
                || (b == b'.' && t.get(start + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let mut i = start + 1;
                while let Some(&c) = t.get(i) {
                    let sign = matches!(c, b'+' | b'-')
                        && matches!(t[i - 1], b'e' | b'E')
                        && !t[start..i].contains(&b'x')
                        && !t[start..i].contains(&b'X');
                    if is_word(c) || c == b'.' || sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                self.pos = i;
                Some(Tok::Word(&t[start..i]))
            }
            _ if is_word(b) => {
                let n = t[start..].iter().take_while(|&&c| is_word(c)).count();
                self.pos = start + n;
                Some(Tok::Word(&t[start..start + n]))
            }
            _ => {
                self.pos = start + 1;
                Some(Tok::Punct(b))
            }
        }
    }
}

fn word_is(tok: Option<&Tok<'_>>, word: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Classification

/// A plain INSERT's target and columns, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertHead {
    /// The schema, when the table name is qualified.
    pub schema: Option<String>,
    /// The table name.
    pub table: String,
    /// The column list, if any.
    pub columns: Option<Vec<String>>,
    /// Where the text after `VALUES` starts.
    pub values_at: usize,
}

/// What a statement does to the parallel plan when it runs on the main session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing: the workers stay in step.
    Neutral,
    /// `LOCK TABLES`: a region that runs on the main session until `UNLOCK TABLES`.
    LockStart,
    /// `UNLOCK TABLES`.
    LockEnd,
    /// `START TRANSACTION` / `BEGIN [WORK]`: a region until `COMMIT` / `ROLLBACK`.
    TxStart,
    /// `COMMIT [WORK]` / `ROLLBACK [WORK]`.
    TxEnd,
    /// It may change the session in a way the workers cannot follow (a procedure call, a
    /// prepared statement, a user variable set by a query, a temporary table, autocommit
    /// off, …): the rest of the script runs on the main session.
    Serial,
}

/// The kind of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// `INSERT [INTO] t [(cols)] VALUES (…), …` whose values are literals only: a candidate
    /// for the workers (the table's [`TableRule`] decides).
    Insert(InsertHead),
    /// Session state without side effects (`SET` of variables without function calls, `USE`):
    /// runs on the main session and then on every worker.
    Session,
    /// Everything else: waits for in-flight work, runs on the main session.
    Barrier(Effect),
}

/// Session variables whose value is per connection by nature or applies to the next
/// statement only: a `SET` naming one makes the rest of the script serial.
const SERIAL_SET_WORDS: &[&str] = &[
    "AUTOCOMMIT",
    "TRANSACTION",
    "STATEMENT",
    "GLOBAL",
    "PASSWORD",
    "ROLE",
    "INSERT_ID",
    "LAST_INSERT_ID",
    "IDENTITY",
    "RAND_SEED1",
    "RAND_SEED2",
    "PSEUDO_THREAD_ID",
    "WARNING_COUNT",
    "ERROR_COUNT",
    "GTID_NEXT",
    "GTID_SEQ_NO",
];

/// Statements that change nothing in the session beyond user variables (checked apart).
const NEUTRAL_KEYWORDS: &[&str] = &[
    "ALTER", "ANALYZE", "CHECK", "CHECKSUM", "CREATE", "DELETE", "DESC", "DESCRIBE", "DO", "DROP",
    "EXPLAIN", "GRANT", "INSERT", "OPTIMIZE", "RENAME", "REPAIR", "REPLACE", "REVOKE", "SELECT",
    "SHOW", "TRUNCATE", "UPDATE", "VALUES", "WITH",
];

/// The kind of one statement, read under the session's string rules.
#[must_use]
pub fn classify(text: &[u8], modes: Modes) -> Class {
    let head: Vec<Tok<'_>> = Lexer::new(text, 0, modes).take(4).collect();
    let Some(Tok::Word(first)) = head.first() else {
        return Class::Barrier(Effect::Serial);
    };
    let keyword = first.to_ascii_uppercase();
    let rest_is = |words: &[&str]| {
        head.len() - 1 <= words.len()
            && head[1..]
                .iter()
                .zip(words)
                .all(|(t, w)| word_is(Some(t), w))
    };
    match keyword.as_slice() {
        b"SET" => set_class(text, modes),
        b"USE" => Class::Session,
        b"LOCK" => Class::Barrier(Effect::LockStart),
        b"UNLOCK" if word_is(head.get(1), "TABLES") || word_is(head.get(1), "TABLE") => {
            Class::Barrier(Effect::LockEnd)
        }
        b"BEGIN" if rest_is(&["WORK"]) => Class::Barrier(Effect::TxStart),
        b"START" if word_is(head.get(1), "TRANSACTION") => Class::Barrier(Effect::TxStart),
        b"COMMIT" | b"ROLLBACK" if rest_is(&["WORK"]) => Class::Barrier(Effect::TxEnd),
        b"INSERT" => insert_head(text, modes).map_or_else(|| neutral(text, modes), Class::Insert),
        b"CREATE" if head[1..].iter().any(|t| word_is(Some(t), "TEMPORARY")) => {
            Class::Barrier(Effect::Serial)
        }
        k if NEUTRAL_KEYWORDS.iter().any(|n| n.as_bytes() == k) => neutral(text, modes),
        _ => Class::Barrier(Effect::Serial),
    }
}

/// A barrier that changes nothing the workers need, unless it reads or writes user variables
/// (`@name`, `@'name'`; `@@name` is a system variable, `user@host` an account: the `@`
/// follows a name without a space).
fn neutral(text: &[u8], modes: Modes) -> Class {
    let mut lexer = Lexer::new(text, 0, modes);
    let mut system = false;
    while let Some(tok) = lexer.next() {
        if tok != Tok::Punct(b'@') {
            system = false;
            continue;
        }
        let at = lexer.pos() - 1;
        if system || text.get(at + 1) == Some(&b'@') {
            // The first or second `@` of `@@name`.
            system = !system;
            continue;
        }
        let account =
            at > 0 && (is_word(text[at - 1]) || matches!(text[at - 1], b'`' | b'\'' | b'"'));
        if !account {
            return Class::Barrier(Effect::Serial);
        }
    }
    Class::Barrier(Effect::Neutral)
}

/// `SET …`: session state for every connection, unless it calls a function (a side effect
/// or a value that differs by connection), or names something in [`SERIAL_SET_WORDS`].
fn set_class(text: &[u8], modes: Modes) -> Class {
    let mut lexer = Lexer::new(text, 0, modes);
    for tok in lexer.by_ref() {
        match tok {
            Tok::Punct(b'(') => return Class::Barrier(Effect::Serial),
            Tok::Word(w)
                if SERIAL_SET_WORDS
                    .iter()
                    .any(|s| w.eq_ignore_ascii_case(s.as_bytes())) =>
            {
                return Class::Barrier(Effect::Serial);
            }
            _ => {}
        }
    }
    if lexer.complete() {
        Class::Session
    } else {
        Class::Barrier(Effect::Serial)
    }
}

/// An identifier the catalog query can name without escaping: printable ASCII without
/// quotes, backslashes or backticks.
fn plain_name(tok: Tok<'_>, modes: Modes) -> Option<String> {
    let bytes = match tok {
        Tok::Word(w) if !w[0].is_ascii_digit() => w,
        Tok::Quoted(b'`', w) => w,
        Tok::Quoted(b'"', w) if modes.ansi => w,
        _ => return None,
    };
    let ok = !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) && !matches!(b, b'\'' | b'"' | b'\\' | b'`'));
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// `INSERT [INTO] [schema.]table [(col, …)] VALUES|VALUE` and where the values start; `None`
/// for anything else (IGNORE, priorities, PARTITION, SELECT, SET, …).
#[must_use]
pub fn insert_head(text: &[u8], modes: Modes) -> Option<InsertHead> {
    let mut lx = Lexer::new(text, 0, modes);
    if !word_is(lx.next().as_ref(), "INSERT") {
        return None;
    }
    let mut tok = lx.next()?;
    if word_is(Some(&tok), "INTO") {
        tok = lx.next()?;
    }
    for modifier in ["IGNORE", "LOW_PRIORITY", "HIGH_PRIORITY", "DELAYED"] {
        if word_is(Some(&tok), modifier) {
            return None;
        }
    }
    let mut schema = None;
    let mut table = plain_name(tok, modes)?;
    tok = lx.next()?;
    if tok == Tok::Punct(b'.') {
        schema = Some(table);
        table = plain_name(lx.next()?, modes)?;
        tok = lx.next()?;
    }
    let mut columns = None;
    if tok == Tok::Punct(b'(') {
        let mut list = Vec::new();
        loop {
            list.push(plain_name(lx.next()?, modes)?);
            match lx.next()? {
                Tok::Punct(b',') => {}
                Tok::Punct(b')') => break,
                _ => return None,
            }
        }
        columns = Some(list);
        tok = lx.next()?;
    }
    if !(word_is(Some(&tok), "VALUES") || word_is(Some(&tok), "VALUE")) {
        return None;
    }
    Some(InsertHead {
        schema,
        table,
        columns,
        values_at: lx.pos(),
    })
}

/// A number token (`12`, `1.5e-3`, `0x1F`, `.5`).
fn is_number(w: &[u8]) -> bool {
    w[0].is_ascii_digit() || w[0] == b'.'
}

/// Whether the text after `VALUES` is rows of literals only — `(v, …), (…)` where each `v`
/// is signs and one of: a number, a string (`'…'`, `"…"` unless `ANSI_QUOTES`), `NULL`,
/// `TRUE`, `FALSE`, `X'…'` / `B'…'` / `N'…'`, a charset introducer (`_utf8mb4 '…'`,
/// `_latin1 0x…`) — and nothing after the last row: no function call, subquery, variable,
/// `DEFAULT` or `ON DUPLICATE KEY`. The values at `positions` (0-based within a row) must be
/// non-zero numbers, so that no AUTO_INCREMENT or sequence default decides them.
#[must_use]
pub fn literal_rows(text: &[u8], from: usize, modes: Modes, positions: &[usize]) -> bool {
    let mut lx = Lexer::new(text, from, modes);
    let string = |t: &Tok<'_>| match t {
        Tok::Quoted(b'\'', _) => true,
        Tok::Quoted(b'"', _) => !modes.ansi,
        _ => false,
    };
    let mut rows = 0usize;
    loop {
        if lx.next() != Some(Tok::Punct(b'(')) {
            return false;
        }
        let mut index = 0usize;
        let mut tok = lx.next();
        if tok != Some(Tok::Punct(b')')) {
            loop {
                while matches!(tok, Some(Tok::Punct(b'-' | b'+'))) {
                    tok = lx.next();
                }
                let Some(value) = tok else { return false };
                let fixed = positions.contains(&index);
                match value {
                    Tok::Word(w) if is_number(w) => {
                        if fixed && !w.iter().any(|b| (b'1'..=b'9').contains(b)) {
                            return false;
                        }
                    }
                    _ if fixed => return false,
                    Tok::Quoted(..) if string(&value) => {}
                    Tok::Word(w)
                        if [&b"NULL"[..], b"TRUE", b"FALSE"]
                            .iter()
                            .any(|k| w.eq_ignore_ascii_case(k)) => {}
                    Tok::Word(w) if w.len() == 1 && b"xXbBnN".contains(&w[0]) => {
                        if !matches!(lx.next(), Some(Tok::Quoted(b'\'', _))) {
                            return false;
                        }
                    }
                    Tok::Word(w) if w[0] == b'_' && w.len() > 1 => match lx.next() {
                        Some(Tok::Word(n)) if is_number(n) => {}
                        Some(t) if string(&t) => {}
                        _ => return false,
                    },
                    _ => return false,
                }
                match lx.next() {
                    Some(Tok::Punct(b',')) => {
                        index += 1;
                        tok = lx.next();
                    }
                    Some(Tok::Punct(b')')) => break,
                    _ => return false,
                }
            }
        }
        rows += 1;
        match lx.next() {
            Some(Tok::Punct(b',')) => {}
            None => return rows > 0 && lx.complete(),
            Some(_) => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the catalog says about a table

/// Whether, and how, a table's INSERTs may run on the workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRule {
    /// A base table (not a view, sequence or unknown name) without triggers, and without
    /// foreign keys while `foreign_key_checks` is on: INSERTs into it do not depend on the
    /// order of other INSERTs nor touch the session.
    pub parallel: bool,
    /// Columns (lower case) an INSERT must give as non-zero numbers to run on a worker: the
    /// AUTO_INCREMENT column and columns whose default is an expression (e.g. `NEXTVAL(s)`),
    /// whose values would otherwise depend on which INSERT runs first.
    pub fixed: Vec<String>,
    /// The columns (lower case) an INSERT without a column list fills, in order (the visible
    /// ones).
    pub implicit: Vec<String>,
}

impl TableRule {
    /// Whether `head` (the text `text`) may run on a worker.
    #[must_use]
    pub fn allows(&self, head: &InsertHead, text: &[u8], modes: Modes) -> bool {
        if !self.parallel {
            return false;
        }
        let names = head.columns.as_ref().unwrap_or(&self.implicit);
        let mut positions = Vec::with_capacity(self.fixed.len());
        for column in &self.fixed {
            match names.iter().position(|n| n.eq_ignore_ascii_case(column)) {
                Some(i) => positions.push(i),
                None => return false,
            }
        }
        literal_rows(text, head.values_at, modes, &positions)
    }

    /// The rule from the catalog rows of [`rule_query`]: `TABLE_TYPE, COLUMN_NAME, EXTRA,
    /// COLUMN_DEFAULT, triggers, foreign keys, @@foreign_key_checks` per column.
    #[must_use]
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> Self {
        let cell = |row: &Vec<Option<String>>, i: usize| row.get(i).cloned().flatten();
        let Some(first) = rows.first() else {
            return Self::default();
        };
        let number = |i: usize| {
            cell(first, i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
        };
        let base = matches!(
            cell(first, 0).as_deref(),
            Some("BASE TABLE" | "SYSTEM VERSIONED")
        );
        let triggers = number(4);
        let foreign_keys = number(5);
        let checks = number(6);
        let mut rule = Self {
            parallel: base && triggers == 0 && (foreign_keys == 0 || checks == 0),
            ..Self::default()
        };
        for row in rows {
            let name = cell(row, 1).unwrap_or_default().to_ascii_lowercase();
            let extra = cell(row, 2).unwrap_or_default().to_ascii_lowercase();
            let default = cell(row, 3).unwrap_or_default().to_ascii_lowercase();
            let expression = default.contains('(') && !default.starts_with("current_timestamp");
            if extra.contains("auto_increment") || expression {
                rule.fixed.push(name.clone());
            }
            if !extra.contains("invisible") {
                rule.implicit.push(name);
            }
        }
        rule
    }
}

/// The catalog query behind [`TableRule::from_rows`] for table `table` of schema `schema`
/// (both [`plain_name`]s, so quoting needs no escapes under any `sql_mode`). Every
/// `information_schema` table is filtered by constants, so the server opens this one table
/// only.
#[must_use]
pub fn rule_query(schema: &str, table: &str) -> String {
    let (schema, table) = (quote_str(schema), quote_str(table));
    format!(
        "SELECT t.TABLE_TYPE, c.COLUMN_NAME, c.EXTRA, c.COLUMN_DEFAULT, \
         (SELECT COUNT(*) FROM information_schema.TRIGGERS \
          WHERE EVENT_OBJECT_SCHEMA = {schema} AND EVENT_OBJECT_TABLE = {table}), \
         (SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
          WHERE CONSTRAINT_SCHEMA = {schema} AND TABLE_NAME = {table}), \
         @@SESSION.foreign_key_checks \
         FROM information_schema.TABLES t JOIN information_schema.COLUMNS c \
         ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
         WHERE t.TABLE_SCHEMA = {schema} AND t.TABLE_NAME = {table} \
         AND c.TABLE_SCHEMA = {schema} AND c.TABLE_NAME = {table} \
         ORDER BY c.ORDINAL_POSITION"
    )
}

// ---------------------------------------------------------------------------------------------
// The plan

/// Where a statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An INSERT that may go to a worker if its table's rule allows it.
    Data(InsertHead),
    /// On the main session, then on every worker (all idle by then).
    Everywhere,
    /// After in-flight work, on the main session.
    Main,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Lock,
    Transaction,
}

/// The state of a parallel restore along the script: inside a `LOCK TABLES` or transaction
/// region, serial for good, and the table rules read since the last statement that could
/// change them.
#[derive(Debug, Default)]
pub struct Planner {
    region: Option<Region>,
    serial: bool,
    /// Each table's rule, and whether one of its INSERTs ran on a worker since it was read.
    rules: HashMap<(Option<String>, String), (TableRule, bool)>,
}

impl Planner {
    /// Where `st` runs; updates the regions and the serial state.
    pub fn route(&mut self, text: &[u8], modes: Modes) -> Route {
        if self.serial {
            return Route::Main;
        }
        match classify(text, modes) {
            Class::Insert(head) if self.region.is_none() => Route::Data(head),
            Class::Insert(_) => Route::Main,
            Class::Session => {
                self.rules.clear();
                Route::Everywhere
            }
            Class::Barrier(effect) => {
                self.rules.clear();
                match effect {
                    Effect::Neutral => {}
                    Effect::LockStart => self.region = Some(Region::Lock),
                    Effect::LockEnd => {
                        if self.region == Some(Region::Lock) {
                            self.region = None;
                        }
                    }
                    Effect::TxStart => self.region = Some(Region::Transaction),
                    Effect::TxEnd => {
                        if self.region == Some(Region::Transaction) {
                            self.region = None;
                        }
                    }
                    Effect::Serial => self.serial = true,
                }
                Route::Main
            }
        }
    }

    /// A [`Route::Data`] statement that its table's rule keeps on the main session: if it
    /// reads or writes user variables, the rest of the script is serial (as for a barrier).
    pub fn on_main(&mut self, text: &[u8], modes: Modes) {
        if neutral(text, modes) == Class::Barrier(Effect::Serial) {
            self.serial = true;
        }
    }

    /// Whether the rest of the script runs on the main session only.
    #[must_use]
    pub fn serial(&self) -> bool {
        self.serial
    }

    /// Whether `head` (the text `text`) may run on a worker, by its table's rule (read on
    /// `main` unless known since the last barrier; a catalog query that fails counts as "not
    /// parallel": the statement then runs on the main session and fails there, by name, if it
    /// must). `Some(true)` for the first such INSERT of the table since the rule was read.
    async fn admit(
        &mut self,
        main: &mut Session,
        head: &InsertHead,
        text: &[u8],
        modes: Modes,
    ) -> Option<bool> {
        let key = (head.schema.clone(), head.table.clone());
        if !self.rules.contains_key(&key) {
            let rows = match read_rule(main, head).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::debug!(error = %connect::Redacted::of(&e), table = %head.table, "table rule");
                    Vec::new()
                }
            };
            self.rules
                .insert(key.clone(), (TableRule::from_rows(&rows), false));
        }
        let (rule, started) = self.rules.get_mut(&key)?;
        if !rule.allows(head, text, modes) {
            return None;
        }
        let first = !*started;
        *started = true;
        Some(first)
    }
}

/// The rows of [`rule_query`] for `head`'s table (in its schema, or the session's database)
/// as text cells; none when the database is unknown or not a [`plain_name`].
async fn read_rule(
    main: &mut Session,
    head: &InsertHead,
) -> Result<Vec<Vec<Option<String>>>, mysql_async::Error> {
    let cells = |row: &mysql_async::Row| -> Vec<Option<String>> {
        (0..row.len())
            .map(|i| match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                Some(mysql_async::Value::Int(n)) => Some(n.to_string()),
                Some(mysql_async::Value::UInt(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    };
    let schema = if let Some(schema) = &head.schema {
        Some(schema.clone())
    } else {
        let current: Vec<mysql_async::Row> = main.conn.query("SELECT DATABASE()").await?;
        current
            .first()
            .and_then(|row| cells(row).into_iter().next().flatten())
            .filter(|name| {
                plain_name(Tok::Quoted(b'`', name.as_bytes()), Modes::default()).is_some()
            })
    };
    let Some(schema) = schema else {
        return Ok(Vec::new());
    };
    let rows: Vec<mysql_async::Row> = main.conn.query(rule_query(&schema, &head.table)).await?;
    Ok(rows.iter().map(cells).collect())
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

/// A worker's answer: its session back, the statement's number and size, its inserted rows
/// or error.
struct Done {
    session: Session,
    number: u64,
    len: usize,
    result: Result<u64, EngineError>,
}

/// Why the dispatch stopped early.
enum Stop {
    /// A worker failed: see [`Pool::failure`].
    Pool,
    /// The input, the splitter or the main session failed.
    Error(EngineError),
}

impl From<EngineError> for Stop {
    fn from(e: EngineError) -> Self {
        Self::Error(e)
    }
}

/// The worker sessions: idle ones, and those running one statement each.
struct Pool {
    idle: Vec<Session>,
    busy: JoinSet<Done>,
    /// Bytes of the statements running.
    bytes: usize,
    rows: u64,
    /// Statements started on the workers.
    started: u64,
    /// The failed statement with the lowest number, and its error.
    failure: Option<(u64, EngineError)>,
}

impl Pool {
    fn new(workers: Vec<Session>) -> Self {
        Self {
            idle: workers,
            busy: JoinSet::new(),
            bytes: 0,
            rows: 0,
            started: 0,
            failure: None,
        }
    }

    fn fail(&mut self, number: u64, e: EngineError) {
        if self.failure.as_ref().is_none_or(|(n, _)| number < *n) {
            self.failure = Some((number, e));
        }
    }

    fn settle(&mut self, done: Result<Done, JoinError>) {
        match done {
            Ok(d) => {
                self.bytes -= d.len;
                self.idle.push(d.session);
                match d.result {
                    Ok(rows) => self.rows += rows,
                    Err(e) => self.fail(d.number, e),
                }
            }
            Err(e) => self.fail(
                0,
                EngineError::new(
                    ErrorKind::Protocol,
                    format!("a restore connection stopped: {e}"),
                ),
            ),
        }
    }

    /// Wait for every running statement; `Err` if any statement failed so far.
    async fn drain(&mut self) -> Result<(), Stop> {
        while let Some(done) = self.busy.join_next().await {
            self.settle(done);
        }
        if self.failure.is_some() {
            Err(Stop::Pool)
        } else {
            Ok(())
        }
    }

    /// Start `st` on an idle worker, waiting for one (and for room under
    /// [`IN_FLIGHT_BYTES`]). Nothing starts after a failure.
    async fn start(&mut self, st: Statement, options: &RestoreOptions) -> Result<(), Stop> {
        while let Some(done) = self.busy.try_join_next() {
            self.settle(done);
        }
        let len = st.text.len();
        while self.failure.is_none()
            && (self.idle.is_empty() || (self.bytes > 0 && self.bytes + len > IN_FLIGHT_BYTES))
        {
            match self.busy.join_next().await {
                Some(done) => self.settle(done),
                None => break,
            }
        }
        if self.failure.is_some() {
            return Err(Stop::Pool);
        }
        let Some(mut session) = self.idle.pop() else {
            return Err(Stop::Error(EngineError::new(
                ErrorKind::Protocol,
                "no restore connection left",
            )));
        };
        self.bytes += len;
        self.started += 1;
        let definer = options.definer;
        self.busy.spawn(async move {
            let result = run_data(&mut session.conn, &st, definer).await;
            Done {
                session,
                number: st.number,
                len,
                result,
            }
        });
        Ok(())
    }

    /// Run `st` on every (idle) worker at once.
    async fn broadcast(&mut self, st: &Statement, options: &RestoreOptions) -> Result<(), Stop> {
        let keyword = st.keyword();
        let runs = self
            .idle
            .iter_mut()
            .map(|s| send(&mut s.conn, st, &keyword, options.definer));
        for result in futures::future::join_all(runs).await {
            result?;
        }
        Ok(())
    }

    /// Disconnect every worker (after [`Pool::drain`]).
    async fn close(&mut self) {
        for s in self.idle.drain(..) {
            if let Err(e) = s.conn.disconnect().await {
                tracing::debug!(error = %connect::Redacted::of(&e), "disconnect a restore worker");
            }
        }
    }
}

/// Run a data statement on a worker's connection; its inserted rows. A deadlock victim runs
/// again, up to [`DEADLOCK_ATTEMPTS`] times.
async fn run_data(
    conn: &mut mysql_async::Conn,
    st: &Statement,
    definer: exporter_contract::DefinerPolicy,
) -> Result<u64, EngineError> {
    let keyword = st.keyword();
    let mut attempt = 1;
    loop {
        match send_raw(conn, st, &keyword, definer).await {
            Ok(()) => return Ok(conn.affected_rows()),
            Err(mysql_async::Error::Server(e))
                if e.code == connect::code::ER_LOCK_DEADLOCK && attempt < DEADLOCK_ATTEMPTS =>
            {
                tracing::debug!(statement = %st.label(), attempt, "deadlock victim, run again");
                attempt += 1;
            }
            Err(e) => return Err(statement_error(&e, st, &keyword)),
        }
    }
}

/// Apply a script with `workers` beside the `main` session; see the module docs of
/// [`crate::restore`]. The workers are disconnected before it returns; `main` is not.
///
/// # Errors
///
/// As the serial restore: the first failing statement (by number, among those that failed
/// before the restore stopped), the input's error, the splitter's.
pub async fn apply(
    main: &mut Session,
    workers: Vec<Session>,
    split: &mut Splitter,
    body: &mut BoxStream<'static, Result<Bytes, EngineError>>,
    options: &RestoreOptions,
    fixed: Option<&str>,
) -> Result<RestoreSummary, EngineError> {
    let mut pool = Pool::new(workers);
    let mut summary = RestoreSummary::default();
    let mut planner = Planner::default();
    let driven = drive(
        main,
        &mut pool,
        &mut planner,
        split,
        body,
        options,
        fixed,
        &mut summary,
    )
    .await;
    // Statements still running were sent before the stop: let them finish (each is one
    // statement), so the restore never returns while one of its statements still runs.
    let drained = pool.drain().await;
    pool.close().await;
    if let Some((_, e)) = pool.failure.take() {
        return Err(e);
    }
    match (driven, drained) {
        (Err(Stop::Error(e)), _) | (Ok(()), Err(Stop::Error(e))) => Err(e),
        (Err(Stop::Pool), _) | (_, Err(Stop::Pool)) => Err(EngineError::new(
            ErrorKind::Protocol,
            "a restore connection failed without an error",
        )),
        (Ok(()), Ok(())) => {
            tracing::debug!(
                workers = pool.started,
                main = summary.statements - pool.started,
                serial = planner.serial(),
                "parallel restore: statements run"
            );
            summary.rows += pool.rows;
            Ok(summary)
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the dispatcher's whole state, once"
)]
async fn drive(
    main: &mut Session,
    pool: &mut Pool,
    planner: &mut Planner,
    split: &mut Splitter,
    body: &mut BoxStream<'static, Result<Bytes, EngineError>>,
    options: &RestoreOptions,
    fixed: Option<&str>,
    summary: &mut RestoreSummary,
) -> Result<(), Stop> {
    let mut done = false;
    loop {
        while let Some(st) = split.next_statement()? {
            refuse_switching(&st, fixed)?;
            // The string rules the splitter read this statement with.
            let (backslash, ansi) = split.modes();
            let modes = Modes { backslash, ansi };
            let route = planner.route(&st.text, modes);
            if let Route::Data(head) = &route {
                if let Some(first) = planner.admit(main, head, &st.text, modes).await {
                    summary.statements += 1;
                    pool.start(st, options).await?;
                    if first {
                        // MariaDB (10.6+) loads an empty InnoDB table in bulk under an
                        // exclusive table lock when unique and foreign key checks are off
                        // (MDEV-24621); two INSERTs that both start on the empty table
                        // deadlock. So a table's first INSERT runs alone.
                        pool.drain().await?;
                    }
                    continue;
                }
                planner.on_main(&st.text, modes);
            }
            // On the main session once everything before it is done; session statements then
            // on every worker too.
            pool.drain().await?;
            execute(main, &st, options, summary, split).await?;
            if route == Route::Everywhere && !planner.serial() {
                pool.broadcast(&st, options).await?;
            }
        }
        if done {
            return Ok(());
        }
        match body.next().await {
            Some(Ok(chunk)) => split.push(&chunk),
            Some(Err(e)) => return Err(Stop::Error(e)),
            None => {
                split.finish();
                done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Modes = Modes {
        backslash: true,
        ansi: false,
    };

    fn class(sql: &str) -> Class {
        classify(sql.as_bytes(), M)
    }

    fn head(sql: &str) -> InsertHead {
        insert_head(sql.as_bytes(), M).unwrap_or_else(|| panic!("not a plain INSERT: {sql}"))
    }

    fn rows_ok(sql: &str, positions: &[usize]) -> bool {
        let h = head(sql);
        literal_rows(sql.as_bytes(), h.values_at, M, positions)
    }

    #[test]
    fn tokens_skip_comments_and_keep_strings_whole() {
        let sql = b"/*!40101 SET x */ -- c\n#h\n/* a */ 'it''s\\'' \"q\" `a``b` 1.5e-3 0x1F .5 @@v";
        let toks: Vec<Tok<'_>> = Lexer::new(sql, 0, M).collect();
        assert_eq!(
            toks,
            [
                Tok::Word(b"SET"),
                Tok::Word(b"x"),
                Tok::Quoted(b'\'', b"it''s\\'"),
                Tok::Quoted(b'"', b"q"),
                Tok::Quoted(b'`', b"a``b"),
                Tok::Word(b"1.5e-3"),
                Tok::Word(b"0x1F"),
                Tok::Word(b".5"),
                Tok::Punct(b'@'),
                Tok::Punct(b'@'),
                Tok::Word(b"v"),
            ]
        );
        // Without backslash escapes the string ends at the backslash's quote.
        let nbe = Modes {
            backslash: false,
            ansi: false,
        };
        let toks: Vec<Tok<'_>> = Lexer::new(b"'a\\' b", 0, nbe).collect();
        assert_eq!(toks, [Tok::Quoted(b'\'', b"a\\"), Tok::Word(b"b")]);
        // Unterminated input stops the tokens and is not complete.
        let mut lx = Lexer::new(b"'abc", 0, M);
        assert_eq!(lx.next(), None);
        assert!(!lx.complete());
        // The sandbox line of mariadb-dump is a comment to every server.
        let toks: Vec<Tok<'_>> =
            Lexer::new(b"/*M!999999 enable the sandbox mode */ SET a=1", 0, M).collect();
        assert_eq!(toks[0], Tok::Word(b"SET"));
    }

    #[test]
    fn session_statements_reach_every_connection() {
        for sql in [
            "SET NAMES utf8mb4",
            "SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0",
            "SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO'",
            "SET /* history of `t` */ @@SESSION.system_versioning_insert_history = 1",
            "/*!40101 SET character_set_client = @saved_cs_client */",
            "/*M!999999 enable the sandbox mode */ \n-- MariaDB dump\n/*!40101 SET @OLD=@@X */",
            "SET SESSION time_zone = '+00:00'",
            "USE `db`",
        ] {
            assert_eq!(class(sql), Class::Session, "{sql}");
        }
    }

    #[test]
    fn sets_with_side_effects_or_per_connection_values_make_the_rest_serial() {
        for sql in [
            "SET autocommit=0",
            "SET @@SESSION.AUTOCOMMIT = 0",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET STATEMENT max_statement_time=1 FOR INSERT INTO t VALUES (1)",
            "SET GLOBAL gtid_slave_pos = '0-1-2'",
            "SET @n = NEXTVAL(s)",
            "SET @x = (SELECT COUNT(*) FROM t)",
            "SET INSERT_ID = 5",
            "SET PASSWORD = 'x'",
            "SET 'unterminated",
        ] {
            assert_eq!(class(sql), Class::Barrier(Effect::Serial), "{sql}");
        }
    }

    #[test]
    fn regions_and_barriers() {
        let cases = [
            ("LOCK TABLES `a` WRITE", Effect::LockStart),
            ("UNLOCK TABLES", Effect::LockEnd),
            ("START TRANSACTION", Effect::TxStart),
            ("BEGIN", Effect::TxStart),
            ("begin work", Effect::TxStart),
            ("COMMIT", Effect::TxEnd),
            ("ROLLBACK WORK", Effect::TxEnd),
            ("COMMIT AND CHAIN", Effect::Serial),
            ("ROLLBACK TO SAVEPOINT s", Effect::Serial),
            ("BEGIN NOT ATOMIC SELECT 1; END", Effect::Serial),
            ("CALL p()", Effect::Serial),
            ("EXECUTE s", Effect::Serial),
            ("XA START 'x'", Effect::Serial),
            ("FLUSH TABLES WITH READ LOCK", Effect::Serial),
            ("CREATE TEMPORARY TABLE t (id INT)", Effect::Serial),
            (
                "CREATE OR REPLACE TEMPORARY TABLE t (id INT)",
                Effect::Serial,
            ),
            ("SELECT @x := COUNT(*) FROM t", Effect::Serial),
            ("SELECT COUNT(*) INTO @x FROM t", Effect::Serial),
            ("(SELECT 1)", Effect::Serial),
            (
                "CREATE TABLE `t` (`id` int(11) NOT NULL, PRIMARY KEY (`id`))",
                Effect::Neutral,
            ),
            (
                "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.s = 1 */",
                Effect::Neutral,
            ),
            (
                "CREATE DEFINER=root@localhost VIEW v AS SELECT 1",
                Effect::Neutral,
            ),
            (
                "CREATE DEFINER='a'@'%' PROCEDURE p() SELECT @@version",
                Effect::Neutral,
            ),
            ("/*!40000 ALTER TABLE `a` DISABLE KEYS */", Effect::Neutral),
            ("DO SETVAL(`s`, 1001, 0, 0)", Effect::Neutral),
            ("INSERT IGNORE INTO t VALUES (1)", Effect::Neutral),
            ("REPLACE INTO t VALUES (1)", Effect::Neutral),
            ("INSERT INTO t SELECT * FROM u", Effect::Neutral),
            ("INSERT INTO t PARTITION (p0) VALUES (1)", Effect::Neutral),
            ("GRANT SELECT ON db.* TO 'u'@'%'", Effect::Neutral),
        ];
        for (sql, effect) in cases {
            assert_eq!(class(sql), Class::Barrier(effect), "{sql}");
        }
    }

    #[test]
    fn plain_inserts_and_their_tables() {
        let sql = "INSERT INTO `t` (`a`,`b c`) VALUES (1,'x')";
        assert_eq!(
            head(sql),
            InsertHead {
                schema: None,
                table: "t".into(),
                columns: Some(vec!["a".into(), "b c".into()]),
                values_at: sql.find("VALUES").unwrap() + "VALUES".len(),
            }
        );
        let h = head("insert into db.t values\n(1)");
        assert_eq!(
            (h.schema.as_deref(), h.table.as_str(), h.columns),
            (Some("db"), "t", None)
        );
        assert_eq!(head("INSERT t VALUE (1)").table, "t");
        for not_plain in [
            "INSERT INTO `a'b` VALUES (1)",
            "INSERT INTO `a``b` VALUES (1)",
            "INSERT INTO t SET a = 1",
            "INSERT LOW_PRIORITY INTO t VALUES (1)",
            "INSERT INTO t (a) SELECT 1",
            "INSERT INTO \"t\" VALUES (1)",
        ] {
            assert_eq!(insert_head(not_plain.as_bytes(), M), None, "{not_plain}");
        }
        let ansi = Modes {
            backslash: true,
            ansi: true,
        };
        assert_eq!(
            insert_head(b"INSERT INTO \"t\" VALUES (1)", ansi).map(|h| h.table),
            Some("t".into())
        );
    }

    #[test]
    fn only_literal_rows_go_to_the_workers() {
        for ok in [
            "INSERT INTO t VALUES (1,'a\\'b',NULL,-2.5e-3,0x00FF,_latin1 0xE9,X'0A',b'101',N'x',TRUE,''),(2,'',\"d\",+1,_binary 'x',.5,FALSE,null,1,1,1)",
            "INSERT INTO t VALUES ()",
            "INSERT INTO `t` (`id`) VALUES (1);",
            "INSERT INTO t VALUES (1) -- trailing comment",
        ] {
            let sql = ok.trim_end_matches(';');
            assert!(rows_ok(sql, &[]), "{sql}");
        }
        for bad in [
            "INSERT INTO t VALUES (NOW())",
            "INSERT INTO t VALUES ((SELECT 1))",
            "INSERT INTO t VALUES (DEFAULT)",
            "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1",
            "INSERT INTO t VALUES (1) RETURNING id",
            "INSERT INTO t VALUES (NEXT VALUE FOR s)",
            "INSERT INTO t VALUES (1 + 2)",
            "INSERT INTO t VALUES (a)",
            "INSERT INTO t VALUES (1",
            "INSERT INTO t VALUES (1), ",
            "INSERT INTO t VALUES (1) /*!50000 ON DUPLICATE KEY UPDATE a = 1 */",
            "INSERT INTO t VALUES ('unterminated)",
        ] {
            assert!(!rows_ok(bad, &[]), "{bad}");
        }
        // AUTO_INCREMENT and sequence-default columns must be non-zero numbers.
        assert!(rows_ok("INSERT INTO t VALUES (1,'a'),(20,NULL)", &[0]));
        assert!(rows_ok("INSERT INTO t VALUES ('a',0x10),('b',-3)", &[1]));
        for bad in [
            "INSERT INTO t VALUES (NULL,'a')",
            "INSERT INTO t VALUES (0,'a')",
            "INSERT INTO t VALUES (0.0,'a')",
            "INSERT INTO t VALUES ('5','a')",
            "INSERT INTO t VALUES (1,'a'),(0,'b')",
        ] {
            assert!(!rows_ok(bad, &[0]), "{bad}");
        }
    }

    fn catalog(rows: &[[Option<&str>; 7]]) -> TableRule {
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.map(str::to_owned)).collect())
            .collect();
        TableRule::from_rows(&rows)
    }

    #[test]
    fn table_rules_from_the_catalog() {
        let n = None;
        let plain = catalog(&[
            [
                Some("BASE TABLE"),
                Some("id"),
                Some("auto_increment"),
                n,
                Some("0"),
                Some("1"),
                Some("0"),
            ],
            [
                Some("BASE TABLE"),
                Some("Seq"),
                Some(""),
                Some("nextval(`s`)"),
                Some("0"),
                Some("1"),
                Some("0"),
            ],
            [
                Some("BASE TABLE"),
                Some("at"),
                Some(""),
                Some("current_timestamp()"),
                Some("0"),
                Some("1"),
                Some("0"),
            ],
            [
                Some("BASE TABLE"),
                Some("hidden"),
                Some("INVISIBLE"),
                n,
                Some("0"),
                Some("1"),
                Some("0"),
            ],
        ]);
        assert_eq!(
            plain,
            TableRule {
                parallel: true,
                fixed: vec!["id".into(), "seq".into()],
                implicit: vec!["id".into(), "seq".into(), "at".into()],
            }
        );
        let text = |s: &str| (head(s), s.as_bytes().to_vec());
        let (h, t) = text("INSERT INTO t VALUES (1, 7, '2024-01-01')");
        assert!(plain.allows(&h, &t, M));
        let (h, t) = text("INSERT INTO t (`at`, `id`, `seq`) VALUES ('2024-01-01', 1, 7)");
        assert!(plain.allows(&h, &t, M));
        // The AUTO_INCREMENT column left out, or given NULL: the serial order decides it.
        let (h, t) = text("INSERT INTO t (`at`, `seq`) VALUES ('2024-01-01', 7)");
        assert!(!plain.allows(&h, &t, M));
        let (h, t) = text("INSERT INTO t VALUES (NULL, 7, '2024-01-01')");
        assert!(!plain.allows(&h, &t, M));
        // Foreign keys only count while their checks are on; triggers, views, unknown
        // tables always keep INSERTs on the main session.
        let fk_on = catalog(&[[
            Some("BASE TABLE"),
            Some("a"),
            Some(""),
            n,
            Some("0"),
            Some("1"),
            Some("1"),
        ]]);
        assert!(!fk_on.parallel);
        let fk_off = catalog(&[[
            Some("SYSTEM VERSIONED"),
            Some("a"),
            Some(""),
            n,
            Some("0"),
            Some("2"),
            Some("0"),
        ]]);
        assert!(fk_off.parallel);
        let trigger = catalog(&[[
            Some("BASE TABLE"),
            Some("a"),
            Some(""),
            n,
            Some("1"),
            Some("0"),
            Some("0"),
        ]]);
        assert!(!trigger.parallel);
        let view = catalog(&[[
            Some("VIEW"),
            Some("a"),
            Some(""),
            n,
            Some("0"),
            Some("0"),
            Some("0"),
        ]]);
        assert!(!view.parallel);
        assert!(!catalog(&[]).parallel);
    }

    #[test]
    fn the_planner_keeps_regions_on_the_main_session() {
        let mut p = Planner::default();
        let mut route = |sql: &str| p.route(sql.as_bytes(), M);
        assert!(matches!(route("INSERT INTO t VALUES (1)"), Route::Data(_)));
        assert_eq!(route("SET NAMES utf8mb4"), Route::Everywhere);
        assert_eq!(route("LOCK TABLES t WRITE"), Route::Main);
        assert_eq!(route("INSERT INTO t VALUES (1)"), Route::Main);
        assert_eq!(route("SET NAMES utf8mb4"), Route::Everywhere);
        assert_eq!(route("COMMIT"), Route::Main);
        assert_eq!(route("INSERT INTO t VALUES (1)"), Route::Main);
        assert_eq!(route("UNLOCK TABLES"), Route::Main);
        assert!(matches!(route("INSERT INTO t VALUES (1)"), Route::Data(_)));
        assert_eq!(route("START TRANSACTION"), Route::Main);
        assert_eq!(route("INSERT INTO t VALUES (1)"), Route::Main);
        assert_eq!(route("COMMIT"), Route::Main);
        assert!(matches!(route("INSERT INTO t VALUES (1)"), Route::Data(_)));
        p.on_main(b"INSERT INTO t VALUES (1, NOW())", M);
        assert!(!p.serial());
        let mut route = |sql: &str| p.route(sql.as_bytes(), M);
        assert_eq!(route("CALL p()"), Route::Main);
        assert_eq!(route("INSERT INTO t VALUES (1)"), Route::Main);
        assert_eq!(route("SET NAMES utf8mb4"), Route::Main);
        assert!(p.serial());
        // A rejected INSERT on the main session that touches user variables.
        let mut p = Planner::default();
        p.on_main(b"INSERT INTO t VALUES (@x := 1)", M);
        assert!(p.serial());
    }
}
