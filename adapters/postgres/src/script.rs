//! A streaming splitter for plain SQL scripts: our dumps and `pg_dump`'s plain format, cut into
//! statements and `COPY … FROM stdin` data exactly where `psql` would cut them.
//!
//! [`Splitter`] is a byte state machine fed [`Bytes`] chunks cut anywhere (inside a multi-byte
//! character, a quoted string, a dollar-quote tag or a `\.` end marker). It follows psql's
//! lexer (`src/fe_utils/psqlscan.l` in the PostgreSQL sources) for what matters to splitting:
//!
//! - single-quoted strings with `''` (`standard_conforming_strings` on; a statement
//!   `SET standard_conforming_strings = off` switches to backslash escapes, like psql does
//!   when the server reports the change), `E'…'` strings with backslash escapes;
//! - double-quoted identifiers with `""`;
//! - dollar quotes `$tag$ … $tag$` (a tag never starts with a digit, and `$` inside an
//!   identifier such as `a$b` does not open one);
//! - `--` line comments and nested `/* … */` block comments;
//! - parentheses, and `BEGIN … END` of SQL-standard function bodies (`CREATE [OR REPLACE]
//!   FUNCTION|PROCEDURE … BEGIN ATOMIC … END`): a `;` inside either does not end the
//!   statement (psql's `paren_depth` and `begin_depth` heuristic, PostgreSQL 14+);
//! - `COPY … FROM stdin;` followed by data lines up to a line that is exactly `\.` (also
//!   `\.\r`); the data is passed on as slices of the input chunks, never gathered.
//!
//! A backslash outside quotes and comments starts a psql meta-command (`\connect`,
//! `\restrict` and `\unrestrict` of recent pg_dump versions, `\set`, …): the splitter refuses
//! it with [`ErrorKind::Unsupported`] naming the command and its line, since only psql can run
//! it. psql variables (`:name`) are not interpolated; undefined variables are left as they are
//! by psql too.
//!
//! # Memory
//!
//! One statement's text at a time, plus at most three bytes of a possible `\.` marker held
//! across a chunk boundary. `COPY` data is never copied.

use bytes::Bytes;
use exporter_contract::{EngineError, ErrorKind};

/// One complete statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position in the script (empty statements such as a lone `;` are not counted).
    pub number: u64,
    /// 1-based line of the statement's first significant byte.
    pub line: u64,
    /// The text from its first significant byte (leading whitespace and `--` comments left
    /// out) up to, not including, the terminating `;`.
    pub text: String,
    /// `true` for `COPY … FROM stdin`: [`Item::CopyData`] pieces and one [`Item::CopyEnd`]
    /// follow.
    pub copy_from_stdin: bool,
}

impl Statement {
    /// `statement N (line L): <first words>`, the object of every error about this statement.
    /// The first words stop before any literal or parenthesis, so they never carry data. An
    /// index or constraint whose table is not among them gets it appended
    /// (`… CREATE UNIQUE INDEX ux ON (table app.t)`; see [`classify`]).
    #[must_use]
    pub fn label(&self) -> String {
        let mut label = label(self.number, self.line, &self.text);
        if let Some(table) = classify(&self.text).tables().first()
            && !label.contains(table)
        {
            label.push_str(" (table ");
            label.push_str(table);
            label.push(')');
        }
        label
    }
}

fn label(number: u64, line: u64, text: &str) -> String {
    let words = first_words(text);
    if words.is_empty() {
        format!("statement {number} (line {line})")
    } else {
        format!("statement {number} (line {line}): {words}")
    }
}

/// What the splitter produces, in script order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete statement.
    Statement(Statement),
    /// A piece of the data of the current `COPY … FROM stdin` (lines with their `\n`, cut
    /// anywhere; the `\.` line excluded).
    CopyData(Bytes),
    /// The `\.` line that ends the current `COPY` data.
    CopyEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between tokens.
    Normal,
    /// Inside an unquoted identifier, keyword or number.
    Word,
    /// After `-` (a second `-` starts a comment).
    Dash,
    LineComment,
    /// After `/` (a `*` starts a comment).
    Slash,
    Block,
    BlockStar,
    BlockSlash,
    /// Inside `'…'`; `extended` for `E'…'` (backslash escapes).
    Quote {
        extended: bool,
    },
    /// After a `'` inside a string: a second `'` is an escaped quote.
    QuoteEnd {
        extended: bool,
    },
    /// After `\` inside an extended string.
    QuoteBackslash,
    Ident,
    IdentEnd,
    /// After `$` outside quotes: reading a possible opening tag.
    DollarOpen,
    /// Inside a dollar-quoted body.
    Dollar,
    /// Inside a body after `$`: reading a possible closing tag.
    DollarClose,
    /// After `\` outside quotes: reading the meta-command's name.
    Meta,
    /// After `COPY … FROM stdin;`: the rest of its line (data starts on the next line, as psql
    /// reads it).
    CopyStatementLine,
    CopyLineStart,
    CopyLine,
    /// At a line start in COPY data: `\`, `\.`, `\.\r` seen.
    CopyBackslash,
    CopyBackslashDot,
    CopyBackslashDotCr,
}

/// The streaming splitter; see the module docs.
///
/// Feed chunks with [`Splitter::push`], then call [`Splitter::finish`] once at the end of the
/// input.
#[derive(Debug)]
pub struct Splitter {
    state: State,
    /// The current statement from its first significant byte.
    buf: Vec<u8>,
    significant: bool,
    /// Line of the next byte.
    line: u64,
    stmt_line: u64,
    /// Statements emitted so far.
    number: u64,
    paren: u32,
    begin_depth: u32,
    /// psql's `identifiers[]`/`identifier_count` for the `CREATE FUNCTION … BEGIN` heuristic.
    idents: [u8; 4],
    ident_count: u32,
    /// The current word, lowercased, up to 16 bytes (`word_len` counts all of it).
    word: [u8; 16],
    word_len: usize,
    word_is_ident: bool,
    /// The previous token was the identifier `e`/`E` and ended right here (`E'…'`).
    after_e: bool,
    std_strings: bool,
    tag: Vec<u8>,
    cand: Vec<u8>,
    comment_depth: u32,
    meta: Vec<u8>,
    meta_line: u64,
    /// COPY: bytes of a possible `\.` marker carried over from the previous chunk.
    held: Vec<u8>,
    /// COPY: the statement being fed, for errors.
    copy_label: String,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

impl Splitter {
    /// A splitter at the start of a script.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: State::Normal,
            buf: Vec::new(),
            significant: false,
            line: 1,
            stmt_line: 1,
            number: 0,
            paren: 0,
            begin_depth: 0,
            idents: [0; 4],
            ident_count: 0,
            word: [0; 16],
            word_len: 0,
            word_is_ident: false,
            after_e: false,
            std_strings: true,
            tag: Vec::new(),
            cand: Vec::new(),
            comment_depth: 0,
            meta: Vec::new(),
            meta_line: 0,
            held: Vec::new(),
            copy_label: String::new(),
        }
    }

    /// The line the splitter has reached (1-based).
    #[must_use]
    pub fn line(&self) -> u64 {
        self.line
    }

    fn push_byte(&mut self, b: u8) {
        if !self.significant {
            self.significant = true;
            self.stmt_line = self.line;
        }
        self.buf.push(b);
    }

    /// Append `b` if the statement has started (whitespace and comments before it are dropped).
    fn push_quiet(&mut self, b: u8) {
        if self.significant {
            self.buf.push(b);
        }
    }

    /// Feed the next chunk; complete items are appended to `out` in order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for a psql meta-command (naming it and its line),
    /// `COPY … TO STDOUT` and a `client_encoding` other than UTF-8;
    /// [`ErrorKind::Protocol`] for a statement that is not UTF-8. After an error the splitter
    /// must not be fed again.
    pub fn push(&mut self, chunk: &Bytes, out: &mut Vec<Item>) -> Result<(), EngineError> {
        let data = &chunk[..];
        let mut i = 0;
        // COPY data of this chunk not yet emitted starts here.
        let mut copy_from: Option<usize> = None;
        while i < data.len() {
            let b = data[i];
            match self.state {
                State::CopyLineStart => {
                    if copy_from.is_none() {
                        copy_from = Some(i);
                    }
                    if b == b'\\' {
                        self.state = State::CopyBackslash;
                        i += 1;
                    } else {
                        self.state = State::CopyLine;
                    }
                }
                State::CopyLine => {
                    if copy_from.is_none() {
                        copy_from = Some(i);
                    }
                    if let Some(pos) = memchr::memchr(b'\n', &data[i..]) {
                        i += pos + 1;
                        self.line += 1;
                        self.state = State::CopyLineStart;
                    } else {
                        i = data.len();
                    }
                }
                State::CopyBackslash | State::CopyBackslashDot | State::CopyBackslashDotCr => {
                    match (self.state, b) {
                        (State::CopyBackslash, b'.') => {
                            self.state = State::CopyBackslashDot;
                            i += 1;
                        }
                        (State::CopyBackslashDot, b'\r') => {
                            self.state = State::CopyBackslashDotCr;
                            i += 1;
                        }
                        (State::CopyBackslashDot | State::CopyBackslashDotCr, b'\n') => {
                            // The end marker. Its bytes in this chunk precede `i`; bytes held
                            // from earlier chunks were never emitted.
                            let in_chunk = self.marker_len() - self.held.len();
                            if let Some(from) = copy_from
                                && i - in_chunk > from
                            {
                                out.push(Item::CopyData(chunk.slice(from..i - in_chunk)));
                            }
                            copy_from = None;
                            self.held.clear();
                            out.push(Item::CopyEnd);
                            self.line += 1;
                            self.end_copy();
                            i += 1;
                        }
                        _ => {
                            // Not a marker after all: a data line that starts with `\`.
                            if !self.held.is_empty() {
                                out.push(Item::CopyData(Bytes::from(std::mem::take(
                                    &mut self.held,
                                ))));
                                // The rest of the would-be marker is at the chunk's start.
                                copy_from = Some(0);
                            }
                            self.state = State::CopyLine;
                        }
                    }
                }
                _ => {
                    if self.step(b, out)? {
                        if b == b'\n' {
                            self.line += 1;
                        }
                        i += 1;
                    }
                }
            }
        }
        // End of the chunk: emit the COPY data read so far, hold a partial `\.` marker.
        let in_chunk = self.marker_len() - self.held.len().min(self.marker_len());
        let end = data.len() - in_chunk;
        if let Some(from) = copy_from
            && end > from
        {
            out.push(Item::CopyData(chunk.slice(from..end)));
        }
        self.held.extend_from_slice(&data[end..]);
        Ok(())
    }

    /// Bytes of a possible `\.` marker read so far (0 outside one).
    fn marker_len(&self) -> usize {
        match self.state {
            State::CopyBackslash => 1,
            State::CopyBackslashDot => 2,
            State::CopyBackslashDotCr => 3,
            _ => 0,
        }
    }

    fn end_copy(&mut self) {
        self.state = State::Normal;
        self.copy_label.clear();
    }

    /// One byte outside COPY data. Returns `false` when the byte must be read again in the
    /// new state (it ended a token).
    fn step(&mut self, b: u8, out: &mut Vec<Item>) -> Result<bool, EngineError> {
        match self.state {
            State::Normal => self.step_normal(b, out),
            State::Word => Ok(self.step_word(b)),
            State::Dash
            | State::LineComment
            | State::Slash
            | State::Block
            | State::BlockStar
            | State::BlockSlash => Ok(self.step_comment(b)),
            State::Quote { .. }
            | State::QuoteBackslash
            | State::QuoteEnd { .. }
            | State::Ident
            | State::IdentEnd => Ok(self.step_quoted(b)),
            State::DollarOpen | State::Dollar | State::DollarClose => Ok(self.step_dollar(b)),
            State::Meta | State::CopyStatementLine => self.step_line_end(b),
            State::CopyLineStart
            | State::CopyLine
            | State::CopyBackslash
            | State::CopyBackslashDot
            | State::CopyBackslashDotCr => unreachable!("COPY data is handled in push"),
        }
    }

    /// A byte between tokens: it may start a comment, a quote, a word, a meta-command, or end
    /// the statement.
    fn step_normal(&mut self, b: u8, out: &mut Vec<Item>) -> Result<bool, EngineError> {
        let after_e = std::mem::take(&mut self.after_e);
        match b {
            b'-' => self.state = State::Dash,
            b'/' => self.state = State::Slash,
            b'\'' => {
                self.push_byte(b);
                self.state = State::Quote {
                    extended: after_e || !self.std_strings,
                };
            }
            b'"' => {
                self.push_byte(b);
                self.state = State::Ident;
            }
            b'$' => {
                self.push_byte(b);
                self.cand.clear();
                self.state = State::DollarOpen;
            }
            b'\\' => {
                self.meta.clear();
                self.meta.push(b);
                self.meta_line = self.line;
                self.state = State::Meta;
            }
            b'(' => {
                self.push_byte(b);
                self.paren += 1;
            }
            b')' => {
                self.push_byte(b);
                self.paren = self.paren.saturating_sub(1);
            }
            b';' if self.paren == 0 && self.begin_depth == 0 => {
                self.emit_statement(out)?;
            }
            _ if is_space(b) => self.push_quiet(b),
            _ if is_ident_start(b) || b.is_ascii_digit() => {
                self.word_len = 0;
                self.word_is_ident = is_ident_start(b);
                self.state = State::Word;
                return Ok(false);
            }
            _ => self.push_byte(b),
        }
        Ok(true)
    }

    /// A byte of an unquoted word (keyword, identifier or number).
    fn step_word(&mut self, b: u8) -> bool {
        if is_ident_cont(b) {
            self.push_byte(b);
            if self.word_len < self.word.len() {
                self.word[self.word_len] = b.to_ascii_lowercase();
            }
            self.word_len += 1;
            true
        } else {
            self.end_word();
            self.state = State::Normal;
            false
        }
    }

    /// A byte of a `--` or (nested) `/* */` comment, or the `-` / `/` that may start one.
    fn step_comment(&mut self, b: u8) -> bool {
        match self.state {
            State::Dash => {
                if b == b'-' {
                    if self.significant {
                        self.buf.extend_from_slice(b"--");
                    }
                    self.state = State::LineComment;
                } else {
                    self.push_byte(b'-');
                    self.state = State::Normal;
                    return false;
                }
            }
            State::LineComment => {
                self.push_quiet(b);
                if b == b'\n' {
                    self.state = State::Normal;
                }
            }
            State::Slash => {
                if b == b'*' {
                    if self.significant {
                        self.buf.extend_from_slice(b"/*");
                    }
                    self.comment_depth = 1;
                    self.state = State::Block;
                } else {
                    self.push_byte(b'/');
                    self.state = State::Normal;
                    return false;
                }
            }
            _ => {
                self.push_quiet(b);
                self.state = match (self.state, b) {
                    (State::BlockStar, b'/') => {
                        self.comment_depth -= 1;
                        if self.comment_depth == 0 {
                            State::Normal
                        } else {
                            State::Block
                        }
                    }
                    (State::BlockSlash, b'*') => {
                        self.comment_depth += 1;
                        State::Block
                    }
                    (_, b'*') => State::BlockStar,
                    (_, b'/') => State::BlockSlash,
                    _ => State::Block,
                };
            }
        }
        true
    }

    /// A byte of a `'string'` (standard or with backslash escapes) or a `"identifier"`, where a
    /// doubled quote is a quote.
    fn step_quoted(&mut self, b: u8) -> bool {
        match self.state {
            State::Quote { extended } => {
                self.push_byte(b);
                if b == b'\'' {
                    self.state = State::QuoteEnd { extended };
                } else if extended && b == b'\\' {
                    self.state = State::QuoteBackslash;
                }
            }
            State::QuoteBackslash => {
                self.push_byte(b);
                self.state = State::Quote { extended: true };
            }
            State::QuoteEnd { extended } => {
                if b == b'\'' {
                    self.push_byte(b);
                    self.state = State::Quote { extended };
                } else {
                    self.state = State::Normal;
                    return false;
                }
            }
            State::Ident => {
                self.push_byte(b);
                if b == b'"' {
                    self.state = State::IdentEnd;
                }
            }
            _ => {
                if b == b'"' {
                    self.push_byte(b);
                    self.state = State::Ident;
                } else {
                    self.state = State::Normal;
                    return false;
                }
            }
        }
        true
    }

    /// A byte of a dollar quote: its opening tag, its body, or a possible closing tag.
    fn step_dollar(&mut self, b: u8) -> bool {
        match self.state {
            State::DollarOpen => {
                if is_ident_start(b) || (!self.cand.is_empty() && b.is_ascii_digit()) {
                    self.push_byte(b);
                    self.cand.push(b);
                } else if b == b'$' {
                    self.push_byte(b);
                    self.tag = std::mem::take(&mut self.cand);
                    self.state = State::Dollar;
                } else {
                    // `$1` (a parameter) or a lone `$`: not a dollar quote.
                    self.state = State::Normal;
                    return false;
                }
            }
            State::Dollar => {
                self.push_byte(b);
                if b == b'$' {
                    self.cand.clear();
                    self.state = State::DollarClose;
                }
            }
            _ => {
                self.push_byte(b);
                if b == b'$' {
                    if self.cand == self.tag {
                        self.state = State::Normal;
                    } else {
                        // This `$` may open the real closing tag (psql's `yyless`).
                        self.cand.clear();
                    }
                } else if is_ident_start(b) || (!self.cand.is_empty() && b.is_ascii_digit()) {
                    if self.cand.len() <= self.tag.len() {
                        self.cand.push(b);
                    }
                } else {
                    self.state = State::Dollar;
                }
            }
        }
        true
    }

    /// A byte of a backslash meta-command (refused: only COPY data may use them), or of the
    /// rest of a `COPY … FROM stdin;` line (nothing but spaces may follow).
    fn step_line_end(&mut self, b: u8) -> Result<bool, EngineError> {
        if self.state == State::Meta {
            if is_space(b) || self.meta.len() >= 64 {
                return Err(self.meta_error());
            }
            self.meta.push(b);
        } else if b == b'\n' {
            self.state = State::CopyLineStart;
        } else if !is_space(b) {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                "text after `COPY … FROM stdin;` on the same line (its data must start \
                 on the next line)",
            )
            .with_object(std::mem::take(&mut self.copy_label)));
        }
        Ok(true)
    }

    /// The end of an unquoted word: psql's heuristic for `CREATE FUNCTION … BEGIN ATOMIC`.
    fn end_word(&mut self) {
        if !self.word_is_ident {
            return;
        }
        let w: &[u8] = if self.word_len <= self.word.len() {
            &self.word[..self.word_len]
        } else {
            b""
        };
        self.after_e = w == b"e";
        if self.ident_count == 0 {
            self.idents = [0; 4];
        }
        if matches!(
            w,
            b"create" | b"function" | b"procedure" | b"or" | b"replace"
        ) && (self.ident_count as usize) < self.idents.len()
        {
            self.idents[self.ident_count as usize] = w[0];
        }
        self.ident_count = self.ident_count.saturating_add(1);
        let id = self.idents;
        let in_function = id[0] == b'c'
            && (id[1] == b'f'
                || id[1] == b'p'
                || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if in_function && self.paren == 0 {
            match w {
                b"begin" => self.begin_depth += 1,
                b"case" if self.begin_depth >= 1 => self.begin_depth += 1,
                b"end" => self.begin_depth = self.begin_depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn meta_error(&self) -> EngineError {
        let name = String::from_utf8_lossy(&self.meta);
        EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "psql meta-command {name} cannot be run by exporter's restore, only by psql \
                 (pg_dump writes \\connect with --create, and \\restrict/\\unrestrict since \
                 versions 17.6, 16.10, 15.14, 14.19 and 13.22)"
            ),
        )
        .with_object(format!("line {}", self.meta_line))
    }

    fn emit_statement(&mut self, out: &mut Vec<Item>) -> Result<(), EngineError> {
        self.paren = 0;
        self.begin_depth = 0;
        self.ident_count = 0;
        self.after_e = false;
        if !self.significant {
            // Only whitespace and comments before this `;`: an empty statement.
            self.buf.clear();
            return Ok(());
        }
        self.significant = false;
        self.number += 1;
        let bytes = std::mem::take(&mut self.buf);
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    "the statement is not valid UTF-8 (the script must be UTF-8)",
                )
                .with_object(label(self.number, self.stmt_line, &lossy)));
            }
        };
        let mut copy_from_stdin = false;
        match first_keyword(&text).as_str() {
            "copy" => match copy_kind(&text) {
                CopyKind::FromStdin => copy_from_stdin = true,
                CopyKind::ToStdout => {
                    return Err(EngineError::new(
                        ErrorKind::Unsupported,
                        "COPY … TO STDOUT in a script is not supported by exporter's restore",
                    )
                    .with_object(label(self.number, self.stmt_line, &text)));
                }
                CopyKind::Other => {}
            },
            "set" | "reset" => {
                if let Some((name, value)) = setting(&text) {
                    match name.as_str() {
                        "standard_conforming_strings" => {
                            self.std_strings =
                                !matches!(value.as_str(), "off" | "false" | "no" | "0");
                        }
                        "client_encoding"
                            if !matches!(value.as_str(), "utf8" | "utf-8" | "unicode") =>
                        {
                            return Err(EngineError::new(
                                ErrorKind::Unsupported,
                                format!(
                                    "client_encoding {value} is not supported by exporter's \
                                     restore (the script must be UTF-8)"
                                ),
                            )
                            .with_object(label(
                                self.number,
                                self.stmt_line,
                                &text,
                            )));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        let statement = Statement {
            number: self.number,
            line: self.stmt_line,
            text,
            copy_from_stdin,
        };
        if copy_from_stdin {
            self.copy_label = statement.label();
            self.state = State::CopyStatementLine;
        }
        out.push(Item::Statement(statement));
        Ok(())
    }

    /// The end of the input: a final `\.` without newline ends its `COPY`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] if the script ends inside a statement (no terminating `;`), a
    /// quoted string, a comment or `COPY` data; [`ErrorKind::Unsupported`] for a
    /// meta-command on the last line.
    pub fn finish(mut self, out: &mut Vec<Item>) -> Result<(), EngineError> {
        let next = label(
            self.number + 1,
            self.stmt_line,
            &String::from_utf8_lossy(&self.buf),
        );
        let truncated = |what: &str, object: String| {
            EngineError::new(
                ErrorKind::Protocol,
                format!("the script ends {what}: it is truncated"),
            )
            .with_object(object)
        };
        match self.state {
            State::Normal
            | State::Word
            | State::LineComment
            | State::QuoteEnd { .. }
            | State::IdentEnd
            | State::DollarOpen
                if !self.significant =>
            {
                Ok(())
            }
            State::Normal
            | State::Word
            | State::LineComment
            | State::QuoteEnd { .. }
            | State::IdentEnd
            | State::DollarOpen
            | State::Dash
            | State::Slash => Err(truncated("before the statement's terminating `;`", next)),
            State::Block | State::BlockStar | State::BlockSlash => {
                Err(truncated("inside a /* comment */", next))
            }
            State::Quote { .. } | State::QuoteBackslash => {
                Err(truncated("inside a quoted string", next))
            }
            State::Ident => Err(truncated("inside a quoted identifier", next)),
            State::Dollar | State::DollarClose => {
                Err(truncated("inside a dollar-quoted string", next))
            }
            State::Meta => Err(self.meta_error()),
            State::CopyStatementLine
            | State::CopyLineStart
            | State::CopyLine
            | State::CopyBackslash => {
                let object = std::mem::take(&mut self.copy_label);
                Err(truncated("inside COPY data (no `\\.` line)", object))
            }
            State::CopyBackslashDot | State::CopyBackslashDotCr => {
                out.push(Item::CopyEnd);
                Ok(())
            }
        }
    }
}

// --- Reading complete statements -------------------------------------------------------------

/// A token of a complete statement (see [`tokens`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An unquoted word (keyword, identifier, number), ASCII-lowercased.
    Word(String),
    /// A double-quoted identifier, unquoted.
    Quoted(String),
    /// A string constant (`'…'`, `E'…'`, `$tag$…$tag$`), decoded.
    Str(String),
    /// Any other character.
    Sym(char),
}

/// The tokens of a complete statement with their parenthesis depth, comments left out. Good
/// enough to classify statements; `E''` escapes other than the common single-character ones
/// are decoded approximately.
fn tokens(text: &str) -> Vec<(u32, Tok)> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0u32;
    let mut i = 0;
    let mut prev_e_end = usize::MAX; // end of a standalone `e` word
    while i < s.len() {
        let b = s[i];
        if is_space(b) {
            i += 1;
        } else if b == b'-' && s.get(i + 1) == Some(&b'-') {
            i = s[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(s.len(), |p| i + p);
        } else if b == b'/' && s.get(i + 1) == Some(&b'*') {
            let mut d = 0;
            while i < s.len() {
                if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
                    d += 1;
                    i += 2;
                } else if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
                    d -= 1;
                    i += 2;
                    if d == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b == b'\'' {
            let extended = prev_e_end == i;
            if extended {
                out.pop();
            }
            let mut value = Vec::new();
            i += 1;
            while i < s.len() {
                match s[i] {
                    b'\'' if s.get(i + 1) == Some(&b'\'') => {
                        value.push(b'\'');
                        i += 2;
                    }
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    b'\\' if extended && i + 1 < s.len() => {
                        value.push(match s[i + 1] {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            b'b' => b'\x08',
                            b'f' => b'\x0c',
                            c => c,
                        });
                        i += 2;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            out.push((
                depth,
                Tok::Str(String::from_utf8_lossy(&value).into_owned()),
            ));
        } else if b == b'"' {
            let mut value = Vec::new();
            i += 1;
            while i < s.len() {
                if s[i] == b'"' {
                    if s.get(i + 1) == Some(&b'"') {
                        value.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value.push(s[i]);
                i += 1;
            }
            out.push((
                depth,
                Tok::Quoted(String::from_utf8_lossy(&value).into_owned()),
            ));
        } else if b == b'$' {
            let tag_end = s[i + 1..]
                .iter()
                .position(|&c| !is_tag_cont(c))
                .map_or(s.len(), |p| i + 1 + p);
            let tag_ok = tag_end < s.len()
                && s[tag_end] == b'$'
                && (tag_end == i + 1 || !s[i + 1].is_ascii_digit());
            if tag_ok {
                let delim = &s[i..=tag_end];
                let body_start = tag_end + 1;
                let body_end = s[body_start..]
                    .windows(delim.len())
                    .position(|w| w == delim)
                    .map_or(s.len(), |p| body_start + p);
                out.push((
                    depth,
                    Tok::Str(String::from_utf8_lossy(&s[body_start..body_end]).into_owned()),
                ));
                i = (body_end + delim.len()).min(s.len());
            } else {
                out.push((depth, Tok::Sym('$')));
                i += 1;
            }
        } else if is_ident_start(b) || b.is_ascii_digit() {
            let start = i;
            while i < s.len() && is_ident_cont(s[i]) {
                i += 1;
            }
            let word = String::from_utf8_lossy(&s[start..i]).to_ascii_lowercase();
            if word == "e" {
                prev_e_end = i;
            }
            out.push((depth, Tok::Word(word)));
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            if ch == '(' {
                out.push((depth, Tok::Sym(ch)));
                depth += 1;
            } else if ch == ')' {
                depth = depth.saturating_sub(1);
                out.push((depth, Tok::Sym(ch)));
            } else {
                out.push((depth, Tok::Sym(ch)));
            }
            i += ch.len_utf8();
        }
    }
    out
}

fn word(t: Option<&(u32, Tok)>) -> Option<&str> {
    match t {
        Some((_, Tok::Word(w))) => Some(w),
        _ => None,
    }
}

/// The first word of a statement, lowercased (`""` if it does not start with one).
fn first_keyword(text: &str) -> String {
    let end = text
        .as_bytes()
        .iter()
        .position(|&b| !is_ident_cont(b))
        .unwrap_or(text.len());
    text[..end].to_ascii_lowercase()
}

#[derive(Debug, PartialEq, Eq)]
enum CopyKind {
    FromStdin,
    ToStdout,
    Other,
}

fn copy_kind(text: &str) -> CopyKind {
    let toks = tokens(text);
    for pair in toks.windows(2) {
        let (d, a) = &pair[0];
        if *d != 0 {
            continue;
        }
        match (a, &pair[1].1) {
            (Tok::Word(a), Tok::Word(b)) if a == "from" && b == "stdin" => {
                return CopyKind::FromStdin;
            }
            (Tok::Word(a), Tok::Word(b)) if a == "to" && b == "stdout" => {
                return CopyKind::ToStdout;
            }
            _ => {}
        }
    }
    CopyKind::Other
}

/// `SET [SESSION|LOCAL] name {=|TO} value` and `RESET name`: the name and the first word of
/// the value, lowercased (`default` for `RESET`).
fn setting(text: &str) -> Option<(String, String)> {
    let toks = tokens(text);
    let mut it = toks.iter().map(|(_, t)| t).peekable();
    let first = match it.next()? {
        Tok::Word(w) => w.clone(),
        _ => return None,
    };
    if let Some(Tok::Word(w)) = it.peek()
        && (w == "session" || w == "local")
    {
        it.next();
    }
    let name = match it.next()? {
        Tok::Word(w) => w.clone(),
        _ => return None,
    };
    if first == "reset" {
        return Some((name, "default".to_owned()));
    }
    match it.next()? {
        Tok::Sym('=') => {}
        Tok::Word(w) if w == "to" => {}
        _ => return None,
    }
    let value = match it.next()? {
        Tok::Word(w) => w.clone(),
        Tok::Str(s) | Tok::Quoted(s) => s.to_ascii_lowercase(),
        Tok::Sym(_) => return None,
    };
    Some((name, value))
}

/// How a parallel restore may run a statement (`RestoreOptions::jobs` above 1; the
/// restore module's docs say what each class means for scheduling). Classification is by the
/// statement's leading tokens only, and conservative: whatever is not positively recognised is
/// [`Class::Serial`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Changes only the session: `SET …` (not `SET LOCAL`, `SET TRANSACTION`, `SET
    /// CONSTRAINTS`), `RESET …`, `SELECT [pg_catalog.]set_config(…, false)`. Every connection
    /// of the restore applies it, in script order.
    Session,
    /// `BEGIN` / `START TRANSACTION`: what follows, up to [`Class::End`], runs on one
    /// connection.
    Begin,
    /// `COMMIT`, `END`, `ROLLBACK`, `ABORT`.
    End,
    /// `CREATE [UNIQUE] INDEX … ON [ONLY] table`, or `ALTER TABLE [ONLY] table ADD CONSTRAINT
    /// name PRIMARY KEY | UNIQUE | EXCLUDE | CHECK …`: builds on the rows of `table` only.
    Index {
        /// The table, as written (`schema.name`; unquoted parts lowercased, quoted ones as
        /// they are), to keep two statements on one table from running at once.
        table: String,
    },
    /// `ALTER TABLE [ONLY] table ADD CONSTRAINT name FOREIGN KEY (…) REFERENCES referenced …`.
    ForeignKey {
        /// The referencing table, as in [`Class::Index`].
        table: String,
        /// The referenced table.
        referenced: String,
    },
    /// Anything else: runs alone, after everything before it and before anything after it.
    /// Among them `ALTER INDEX parent ATTACH PARTITION child`, which must run after both
    /// indexes are built and names no table to wait for.
    Serial,
}

impl Class {
    /// The tables an [`Class::Index`] or [`Class::ForeignKey`] statement locks.
    #[must_use]
    pub fn tables(&self) -> Vec<&str> {
        match self {
            Self::Index { table } => vec![table],
            Self::ForeignKey { table, referenced } => vec![table, referenced],
            _ => Vec::new(),
        }
    }
}

/// Classify a complete statement (its [`Statement::text`]) for a parallel restore.
#[must_use]
pub fn classify(text: &str) -> Class {
    match first_keyword(text).as_str() {
        "set" => {
            let toks = tokens(text);
            match word(toks.get(1)) {
                Some("local" | "transaction" | "constraints") => Class::Serial,
                _ => Class::Session,
            }
        }
        "reset" => Class::Session,
        "begin" | "start" => Class::Begin,
        "commit" | "end" | "rollback" | "abort" => Class::End,
        "select" => classify_select(&tokens(text)),
        "create" => classify_index(&tokens(text)),
        "alter" => classify_constraint(&tokens(text)),
        _ => Class::Serial,
    }
}

/// `SELECT [pg_catalog.]set_config('name', 'value', false)` and nothing else.
fn classify_select(toks: &[(u32, Tok)]) -> Class {
    let mut i = 1;
    if word(toks.get(i)) == Some("pg_catalog")
        && matches!(toks.get(i + 1), Some((_, Tok::Sym('.'))))
    {
        i += 2;
    }
    let shape = word(toks.get(i)) == Some("set_config")
        && matches!(toks.get(i + 1), Some((_, Tok::Sym('('))))
        && matches!(toks.get(i + 2), Some((_, Tok::Str(_))))
        && matches!(toks.get(i + 3), Some((_, Tok::Sym(','))))
        && matches!(toks.get(i + 4), Some((_, Tok::Str(_))))
        && matches!(toks.get(i + 5), Some((_, Tok::Sym(','))))
        && word(toks.get(i + 6)) == Some("false")
        && matches!(toks.get(i + 7), Some((_, Tok::Sym(')'))))
        && toks.len() == i + 8;
    if shape { Class::Session } else { Class::Serial }
}

/// A possibly qualified name at `toks[i..]`: its normalised text and the index after it.
fn qualified_name(toks: &[(u32, Tok)], mut i: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    loop {
        match toks.get(i) {
            Some((0, Tok::Word(w))) => name.push_str(w),
            Some((0, Tok::Quoted(q))) => {
                name.push('"');
                name.push_str(&q.replace('"', "\"\""));
                name.push('"');
            }
            _ => return None,
        }
        i += 1;
        if matches!(toks.get(i), Some((0, Tok::Sym('.')))) {
            name.push('.');
            i += 1;
        } else {
            return Some((name, i));
        }
    }
}

/// No second action at depth 0 (`ALTER TABLE t ADD …, ADD …`).
fn single_action(toks: &[(u32, Tok)]) -> bool {
    !toks
        .iter()
        .any(|(d, tok)| *d == 0 && matches!(tok, Tok::Sym(',')))
}

fn classify_index(toks: &[(u32, Tok)]) -> Class {
    let mut i = 1;
    if word(toks.get(i)) == Some("unique") {
        i += 1;
    }
    if word(toks.get(i)) != Some("index") {
        return Class::Serial;
    }
    // The first `ON` at depth 0 after `INDEX` (an index name may be absent or quoted).
    let Some(on) = toks[i..]
        .iter()
        .position(|(d, tok)| *d == 0 && matches!(tok, Tok::Word(w) if w == "on"))
        .map(|p| i + p)
    else {
        return Class::Serial;
    };
    if toks[i + 1..on]
        .iter()
        .any(|(_, tok)| matches!(tok, Tok::Word(w) if w == "concurrently"))
    {
        return Class::Serial;
    }
    let mut j = on + 1;
    if word(toks.get(j)) == Some("only") {
        j += 1;
    }
    match qualified_name(toks, j) {
        Some((table, _)) => Class::Index { table },
        None => Class::Serial,
    }
}

fn classify_constraint(toks: &[(u32, Tok)]) -> Class {
    if word(toks.get(1)) != Some("table") || !single_action(toks) {
        return Class::Serial;
    }
    let mut i = 2;
    if word(toks.get(i)) == Some("if") && word(toks.get(i + 1)) == Some("exists") {
        i += 2;
    }
    if word(toks.get(i)) == Some("only") {
        i += 1;
    }
    let Some((table, j)) = qualified_name(toks, i) else {
        return Class::Serial;
    };
    if word(toks.get(j)) != Some("add") || word(toks.get(j + 1)) != Some("constraint") {
        return Class::Serial;
    }
    // The constraint's name, then its kind.
    let Some((_, k)) = qualified_name(toks, j + 2) else {
        return Class::Serial;
    };
    match word(toks.get(k)) {
        Some("primary" | "unique" | "exclude" | "check") => Class::Index { table },
        Some("foreign") => {
            let Some(r) = toks[k..]
                .iter()
                .position(|(d, tok)| *d == 0 && matches!(tok, Tok::Word(w) if w == "references"))
                .map(|p| k + p)
            else {
                return Class::Serial;
            };
            match qualified_name(toks, r + 1) {
                Some((referenced, _)) => Class::ForeignKey { table, referenced },
                None => Class::Serial,
            }
        }
        _ => Class::Serial,
    }
}

/// Whether a statement sets ownership or privileges, which `RestoreOptions::ownership = false`
/// skips (like `pg_restore --no-owner --no-privileges`): `GRANT`, `REVOKE`,
/// `ALTER DEFAULT PRIVILEGES`, `ALTER … OWNER TO role`, `[RE]SET SESSION AUTHORIZATION`, and a
/// `DO` block whose every `EXECUTE '…'` runs one of those (our dumps wrap each owner and grant
/// naming a role in such a block, so that a missing role only warns).
#[must_use]
pub fn is_ownership(text: &str) -> bool {
    ownership_tokens(&tokens(text), 0)
}

fn ownership_tokens(toks: &[(u32, Tok)], nesting: u32) -> bool {
    let w = |n: usize| word(toks.get(n));
    match w(0) {
        Some("grant" | "revoke") => true,
        Some("set" | "reset") => w(1) == Some("session") && w(2) == Some("authorization"),
        Some("alter") => {
            if w(1) == Some("default") && w(2) == Some("privileges") {
                return true;
            }
            let n = toks.len();
            n >= 4
                && w(n - 3) == Some("owner")
                && w(n - 2) == Some("to")
                && matches!(toks[n - 1].1, Tok::Word(_) | Tok::Quoted(_))
        }
        Some("do") if nesting == 0 => {
            let Some(body) = toks.iter().find_map(|(d, t)| match t {
                Tok::Str(s) if *d == 0 => Some(s),
                _ => None,
            }) else {
                return false;
            };
            let inner = tokens(body);
            let mut executed = 0;
            for pair in inner.windows(2) {
                if let (Tok::Word(k), Tok::Str(stmt)) = (&pair[0].1, &pair[1].1)
                    && k == "execute"
                {
                    if !ownership_tokens(&tokens(stmt), nesting + 1) {
                        return false;
                    }
                    executed += 1;
                }
            }
            executed > 0
        }
        _ => false,
    }
}

/// The tablespace a statement makes the default for what follows — `SET [SESSION | LOCAL]
/// default_tablespace {= | TO} name`, the form pg_dump writes before each object in a
/// tablespace (`_selectTablespace` in pg_backup_archiver.c) and our dumps too —, as written
/// (unquoted: `Fast Disk` for `"Fast Disk"`); `None` for any other statement and for the
/// database's default (`= ''`, `TO DEFAULT`, `RESET`). `RestoreOptions::tablespaces = false`
/// skips these statements, like `pg_restore --no-tablespaces`.
#[must_use]
pub fn tablespace_assignment(text: &str) -> Option<String> {
    let toks = tokens(text);
    let mut i = 0;
    if word(toks.get(i)) != Some("set") {
        return None;
    }
    i += 1;
    if matches!(word(toks.get(i)), Some("session" | "local")) {
        i += 1;
    }
    if word(toks.get(i)) != Some("default_tablespace") {
        return None;
    }
    match toks.get(i + 1) {
        Some((_, Tok::Sym('='))) => {}
        Some((_, Tok::Word(w))) if w == "to" => {}
        _ => return None,
    }
    if toks.len() != i + 3 {
        return None;
    }
    match &toks[i + 2].1 {
        Tok::Word(w) if w != "default" => Some(w.clone()),
        Tok::Quoted(name) => Some(name.clone()),
        Tok::Str(name) if !name.is_empty() => Some(name.clone()),
        _ => None,
    }
}

/// Up to five words of a statement for error messages, stopping before the first literal,
/// parenthesis or comma (so no value is ever shown), at most about 100 characters.
#[must_use]
pub fn first_words(text: &str) -> String {
    let s = text.as_bytes();
    let mut out = String::new();
    let mut words = 0;
    let mut i = 0;
    'outer: while words < 5 {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        let mut stop = false;
        while i < s.len() {
            let b = s[i];
            if is_space(b) {
                break;
            }
            if b == b'"' {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            let comment = (b == b'-' && s.get(i + 1) == Some(&b'-'))
                || (b == b'/' && s.get(i + 1) == Some(&b'*'));
            if comment || matches!(b, b'\'' | b'(' | b'$' | b';' | b',' | b'[' | b'\\') {
                stop = true;
                break;
            }
            i += 1;
        }
        let i_end = i.min(s.len());
        let mut piece = &text[start..i_end];
        // A prefix of a string constant (E'…', U&'…', B'…', X'…', N'…') is not a word.
        if stop && s.get(i_end) == Some(&b'\'') && piece.len() <= 2 {
            piece = "";
        }
        if !piece.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(piece);
            words += 1;
        }
        if stop || out.len() > 100 {
            break 'outer;
        }
    }
    if out.len() > 100 {
        let mut cut = 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split `script` fed in the given chunk sizes (the last size repeats); consecutive
    /// `CopyData` pieces are merged so results compare independently of the cuts.
    fn split(script: &[u8], sizes: &[usize]) -> Result<Vec<Item>, EngineError> {
        let mut splitter = Splitter::new();
        let mut out = Vec::new();
        let mut rest = Bytes::copy_from_slice(script);
        let mut n = 0;
        while !rest.is_empty() {
            let size = sizes[n.min(sizes.len() - 1)].min(rest.len());
            n += 1;
            let chunk = rest.split_to(size);
            splitter.push(&chunk, &mut out)?;
        }
        splitter.finish(&mut out)?;
        let mut merged: Vec<Item> = Vec::new();
        for item in out {
            if let (Some(Item::CopyData(prev)), Item::CopyData(next)) = (merged.last_mut(), &item) {
                let mut joined = prev.to_vec();
                joined.extend_from_slice(next);
                *prev = Bytes::from(joined);
                continue;
            }
            if let Item::CopyData(d) = &item {
                assert!(!d.is_empty(), "no empty COPY pieces");
            }
            merged.push(item);
        }
        Ok(merged)
    }

    fn texts(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Statement(s) => format!("{}@{}:{}", s.number, s.line, s.text),
                Item::CopyData(d) => format!("DATA:{}", String::from_utf8_lossy(d)),
                Item::CopyEnd => "END".to_owned(),
            })
            .collect()
    }

    /// Every construct the splitter knows, with traps for each.
    const TRICKY: &str = "-- leading comment; with a semicolon\n\
SET standard_conforming_strings = on;\n\
SELECT 'it''s; not the end', E'esc\\'aped; \\\\', 'back\\';\n\
/* block /* nested; */ still; */ SELECT \"we\"\"ird;\" FROM t; -- trailing\n\
CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$ BEGIN RETURN $$a;b$$ || $x$ $fn $; END $fn$;\n\
SELECT a$b$c, $1, $é$ü;$é$ FROM (SELECT 1; ) x;\n\
CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\n\
COPY public.\"T\" (a, b) FROM stdin;\n\
1\t\\\\.\n\
\\N\tx\\.\n\
\\.x\t\\.\\.\n\
ünï\tcödé 😀\n\
\\.\n\
SELECT 'après';\n\
COPY t FROM stdin;\r\n\
a\r\n\
\\.\r\n\
-- done\n";

    #[test]
    fn splits_every_construct() {
        let items = split(TRICKY.as_bytes(), &[usize::MAX]).unwrap();
        assert_eq!(
            texts(&items),
            [
                "1@2:SET standard_conforming_strings = on",
                "2@3:SELECT 'it''s; not the end', E'esc\\'aped; \\\\', 'back\\'",
                "3@4:SELECT \"we\"\"ird;\" FROM t",
                "4@5:CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$ BEGIN RETURN $$a;b$$ || $x$ $fn $; END $fn$",
                "5@6:SELECT a$b$c, $1, $é$ü;$é$ FROM (SELECT 1; ) x",
                "6@7:CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END",
                "7@8:COPY public.\"T\" (a, b) FROM stdin",
                "DATA:1\t\\\\.\n\\N\tx\\.\n\\.x\t\\.\\.\nünï\tcödé 😀\n",
                "END",
                "8@14:SELECT 'après'",
                "9@15:COPY t FROM stdin",
                "DATA:a\r\n",
                "END",
            ]
        );
        let Item::Statement(copy) = &items[6] else {
            panic!()
        };
        assert!(copy.copy_from_stdin);
        assert_eq!(
            copy.label(),
            "statement 7 (line 8): COPY public.\"T\"",
            "first words stop at the column list"
        );
    }

    #[test]
    fn every_chunk_boundary_gives_the_same_items() {
        let script = TRICKY.as_bytes();
        let whole = split(script, &[usize::MAX]).unwrap();
        for cut in 0..=script.len() {
            let two = split(script, &[cut.max(1), usize::MAX]).unwrap();
            assert_eq!(two, whole, "cut at byte {cut}");
        }
        for size in [1, 2, 3, 5, 7, 64] {
            assert_eq!(split(script, &[size]).unwrap(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn copy_end_marker_split_across_three_chunks() {
        let script = b"COPY t FROM stdin;\nab\n\\.\nSELECT 1;\n";
        let whole = split(script, &[usize::MAX]).unwrap();
        // `\`, `.`, `\n` of the marker each in its own chunk, and `\` `N` of a data line.
        assert_eq!(split(script, &[22, 1, 1, 1, usize::MAX]).unwrap(), whole);
        let script = b"COPY t FROM stdin;\n\\N\n\\.";
        let items = split(script, &[19, 1, 1, 1, 1, 1]).unwrap();
        assert_eq!(texts(&items)[1..], ["DATA:\\N\n", "END"]);
    }

    #[test]
    fn backslash_escapes_follow_standard_conforming_strings() {
        let script = "SELECT 'a\\';\nSET standard_conforming_strings = off;\nSELECT 'b\\';';\n\
                      SET standard_conforming_strings TO 'on';\nSELECT 'c\\';";
        let items = split(script.as_bytes(), &[usize::MAX]).unwrap();
        assert_eq!(
            texts(&items),
            [
                "1@1:SELECT 'a\\'",
                "2@2:SET standard_conforming_strings = off",
                "3@3:SELECT 'b\\';'",
                "4@4:SET standard_conforming_strings TO 'on'",
                "5@5:SELECT 'c\\'",
            ]
        );
    }

    #[test]
    fn meta_commands_are_refused_by_name_and_line() {
        for (script, name, line) in [
            ("\\restrict abc123\nSELECT 1;\n", "\\restrict", 1),
            ("SELECT 1;\n\n\\connect other\n", "\\connect", 3),
            ("SELECT 1 \\gset\n", "\\gset", 1),
            ("SELECT 1;\n\\q", "\\q", 2),
        ] {
            let err = split(script.as_bytes(), &[usize::MAX]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{script}");
            assert_eq!(err.object(), Some(format!("line {line}").as_str()));
            assert!(
                err.message()
                    .starts_with(&format!("psql meta-command {name} ")),
                "{err}"
            );
            assert!(
                !err.message().contains("abc123"),
                "the argument is not shown"
            );
        }
        // A backslash inside quotes, comments and dollar quotes is not a meta-command.
        let ok = "SELECT '\\x', \"\\\", $$\\$$ /* \\ */; -- \\n\n";
        assert_eq!(split(ok.as_bytes(), &[1]).unwrap().len(), 1);
    }

    #[test]
    fn truncated_scripts_are_protocol_errors() {
        for (script, what, object) in [
            (
                "SELECT 1;\nCREATE TABLE t (a int)",
                "before the statement's terminating `;`",
                "statement 2 (line 2): CREATE TABLE t",
            ),
            (
                "SELECT 1;\nINSERT INTO t VALUES ('secret",
                "inside a quoted string",
                "statement 2 (line 2): INSERT INTO t VALUES",
            ),
            (
                "DO $$ BEGIN",
                "inside a dollar-quoted string",
                "statement 1 (line 1): DO",
            ),
            (
                "\nCOPY t (a) FROM stdin;\nsecret row\n",
                "inside COPY data (no `\\.` line)",
                "statement 1 (line 2): COPY t",
            ),
            (
                "COPY t (a) FROM stdin;\nsecret\n\\",
                "inside COPY data (no `\\.` line)",
                "statement 1 (line 1): COPY t",
            ),
        ] {
            let err = split(script.as_bytes(), &[3]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{script}");
            assert_eq!(
                err.message(),
                format!("the script ends {what}: it is truncated")
            );
            assert_eq!(err.object(), Some(object));
            assert!(!err.to_string().contains("secret"));
        }
        // Trailing whitespace and comments are fine.
        assert!(split(b"SELECT 1; -- end\n/* c */ \n", &[1]).is_ok());
    }

    #[test]
    fn copy_to_stdout_and_foreign_encodings_are_refused() {
        let err = split(b"COPY t TO STDOUT;", &[usize::MAX]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let err = split(b"SET client_encoding = 'LATIN1';", &[usize::MAX]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("latin1"), "{err}");
        assert!(split(b"SET client_encoding = 'UTF8';", &[usize::MAX]).is_ok());
        // Server-side files are ordinary statements.
        let items = split(
            b"COPY t FROM '/x' ; COPY (SELECT 1 FROM stdin) TO '/y';",
            &[4],
        )
        .unwrap();
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn invalid_utf8_names_the_statement() {
        let err = split(b"SELECT 1;\nSELECT '\xff';", &[usize::MAX]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(err.object(), Some("statement 2 (line 2): SELECT"));
    }

    #[test]
    fn ownership_statements() {
        for yes in [
            "GRANT SELECT ON TABLE app.v TO PUBLIC",
            "REVOKE ALL ON TABLE public.t FROM PUBLIC",
            "ALTER TABLE public.t OWNER TO postgres",
            "ALTER LARGE OBJECT 424242 OWNER TO \"o'neil\"",
            "ALTER DEFAULT PRIVILEGES FOR ROLE a IN SCHEMA s GRANT SELECT ON TABLES TO b",
            "SET SESSION AUTHORIZATION alice",
            // Our dump's guarded form (`catalog/acl.rs`, `guarded`).
            "DO 'BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(ARRAY[''o''''neil'']::pg_catalog.text[]) AS r(n) \
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.n)) THEN EXECUTE ''ALTER TABLE public.t OWNER TO \"o''''neil\"''; \
             ELSE RAISE WARNING USING MESSAGE = ''exporter: skipped owner of table public.t: a role it names does not exist here''; END IF; \
             EXCEPTION WHEN insufficient_privilege THEN RAISE WARNING USING MESSAGE = ''exporter: skipped owner of table public.t: '' || SQLERRM; END'",
            "DO $$BEGIN EXECUTE 'GRANT SELECT ON TABLE public.t TO bob'; END$$",
        ] {
            assert!(is_ownership(yes), "{yes}");
        }
        for no in [
            "CREATE TABLE public.owner_to (a int)",
            "ALTER TABLE public.t ADD CONSTRAINT c CHECK (a <> 'OWNER TO x')",
            "ALTER TABLE public.t ALTER COLUMN owner SET DEFAULT 'to'",
            "COMMENT ON TABLE t IS 'GRANT'",
            "SET search_path = ''",
            "DO 'BEGIN IF true THEN EXECUTE ''CREATE POLICY p ON public.t TO bob USING (true)''; END IF; END'",
            "DO $$BEGIN RAISE NOTICE 'GRANT'; END$$",
        ] {
            assert!(!is_ownership(no), "{no}");
        }
    }

    #[test]
    fn tablespace_assignments() {
        for (text, expected) in [
            ("SET default_tablespace = fast", Some("fast")),
            ("SET default_tablespace TO \"Fast Disk\"", Some("Fast Disk")),
            ("SET SESSION default_tablespace = 'ssd'", Some("ssd")),
            ("set Default_Tablespace = FAST", Some("fast")),
            ("SET default_tablespace = ''", None),
            ("SET default_tablespace TO DEFAULT", None),
            ("RESET default_tablespace", None),
            ("SET default_table_access_method = heap", None),
            ("SET search_path = fast", None),
            ("CREATE TABLE t (a int) TABLESPACE fast", None),
        ] {
            assert_eq!(tablespace_assignment(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn first_words_never_show_values() {
        for (text, words) in [
            (
                "CREATE TABLE public.orders (id int)",
                "CREATE TABLE public.orders",
            ),
            ("INSERT INTO t VALUES ('secret')", "INSERT INTO t VALUES"),
            ("INSERT INTO t SELECT E'secret'", "INSERT INTO t SELECT"),
            (
                "SELECT pg_catalog.setval('s', 5, true)",
                "SELECT pg_catalog.setval",
            ),
            (
                "ALTER TABLE ONLY \"Sales Dept\".\"Order Items\" ADD CONSTRAINT x",
                "ALTER TABLE ONLY \"Sales Dept\".\"Order Items\" ADD",
            ),
            ("DO 'BEGIN secret END'", "DO"),
            ("SELECT x'ff'", "SELECT"),
            ("SELECT 1 -- comment", "SELECT 1"),
        ] {
            assert_eq!(first_words(text), words, "{text}");
        }
        let long = format!("CREATE TABLE {}", "x".repeat(300));
        assert!(first_words(&long).chars().count() <= 101);
    }

    #[test]
    fn classify_for_parallel_restore() {
        let index = |t: &str| Class::Index {
            table: t.to_owned(),
        };
        let cases: &[(&str, Class)] = &[
            ("SET search_path = app, public", Class::Session),
            ("SET LOCAL search_path = app", Class::Serial),
            ("SET CONSTRAINTS ALL DEFERRED", Class::Serial),
            ("RESET ALL", Class::Session),
            (
                "SELECT pg_catalog.set_config('search_path', '', false)",
                Class::Session,
            ),
            ("SELECT set_config('search_path', '', true)", Class::Serial),
            ("SELECT pg_catalog.setval('app.s', 42, true)", Class::Serial),
            ("BEGIN", Class::Begin),
            ("START TRANSACTION", Class::Begin),
            ("COMMIT", Class::End),
            (
                "CREATE INDEX orders_cust_idx ON app.orders USING btree (cust)",
                index("app.orders"),
            ),
            (
                "CREATE UNIQUE INDEX \"Ux\" ON ONLY \"App\".\"T\" USING btree (a)",
                index("\"App\".\"T\""),
            ),
            ("CREATE INDEX ON t (a)", index("t")),
            ("CREATE INDEX CONCURRENTLY i ON t (a)", Class::Serial),
            ("CREATE TABLE t (a int)", Class::Serial),
            (
                "ALTER TABLE ONLY app.customers\n    ADD CONSTRAINT customers_pkey PRIMARY KEY (id)",
                index("app.customers"),
            ),
            (
                "ALTER TABLE app.m ADD CONSTRAINT m_pkey PRIMARY KEY (k)",
                index("app.m"),
            ),
            (
                "ALTER TABLE ONLY t ADD CONSTRAINT c CHECK ((a > 0))",
                index("t"),
            ),
            (
                "ALTER TABLE ONLY t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)",
                index("t"),
            ),
            (
                "ALTER TABLE ONLY app.orders ADD CONSTRAINT f FOREIGN KEY (cust) REFERENCES app.customers(id) DEFERRABLE",
                Class::ForeignKey {
                    table: "app.orders".to_owned(),
                    referenced: "app.customers".to_owned(),
                },
            ),
            (
                "ALTER TABLE t ADD CONSTRAINT a UNIQUE (x), ADD CONSTRAINT b UNIQUE (y)",
                Class::Serial,
            ),
            ("ALTER TABLE t OWNER TO bob", Class::Serial),
            (
                "ALTER INDEX app.m_pkey ATTACH PARTITION app.m1_pkey",
                Class::Serial,
            ),
            // A partitioned table's key on that table alone (the partitions' keys are
            // statements of their own, attached after), as dumps write it.
            (
                "ALTER TABLE ONLY app.m\n    ADD CONSTRAINT m_pkey PRIMARY KEY (k)",
                index("app.m"),
            ),
            (
                "ALTER INDEX \"App\".\"P_idx\" ATTACH PARTITION \"App\".\"C_idx\"",
                Class::Serial,
            ),
            ("COMMENT ON TABLE t IS 'x'", Class::Serial),
        ];
        for (text, want) in cases {
            assert_eq!(&classify(text), want, "{text}");
        }
    }
}
