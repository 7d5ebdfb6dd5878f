//! A streaming statement splitter that reads a SQL script the way the stock `mysql` /
//! `mariadb` command-line client does in batch mode (`mysql db < script.sql`), so that
//! [`crate::MysqlTarget`] runs exactly the statements the client would run, one at a time.
//!
//! The rules follow the client's own parser (`add_line()` and `find_command()` in
//! `client/mysql.cc` of MariaDB 10.11; documented in "mysql Client Commands" and "Comment
//! Syntax" of the MariaDB and MySQL manuals):
//!
//! - a statement ends at the current **delimiter** (`;` at first) outside strings and
//!   comments, or at `\g` / `\G`; the delimiter is not part of the statement;
//! - `DELIMITER x` (any case) on a line of its own, at the start of a statement, sets the
//!   delimiter to `x` (a quoted argument may contain spaces; no backslash allowed). A
//!   statement whose text is `DELIMITER x` (a line like `SELECT 1; DELIMITER ;;`) does too;
//! - strings: `'…'`, `"…"` with backslash escapes (unless the session's `sql_mode` has
//!   `NO_BACKSLASH_ESCAPES`, or `ANSI_QUOTES` for `"`: the caller passes the server's status
//!   flags after each statement with [`Splitter::set_modes`], as the client reads them from
//!   each OK packet) and doubled quotes; backtick identifiers `` `…` `` (no escapes);
//! - comments: `#` and `-- ` (two dashes and a space, control character or line end; at
//!   the start of a statement any `--`) to the end of the line, `/* … */`. Comments
//!   **between** statements are dropped; comments **inside** a statement are kept and sent
//!   to the server, which ignores them — so a routine body keeps its comments, as with
//!   `mysql --comments` (the client's default, `--skip-comments`, strips them from bodies);
//! - `/*!NNNNN … */` and `/*M!NNNNN … */` executable comments are statement text: the
//!   client passes them to the server, which runs their content when its version is at least
//!   `NNNNN`; inside them, strings and the delimiter count as everywhere else;
//! - client commands on a line of their own at the start of a statement (`use db`,
//!   `delimiter …`): `use` becomes the statement ``USE `db` ``; every other client command
//!   (`source`, `system`, `connect`, `charset`, `quit`, …, and backslash commands other than
//!   `\g`, `\G`, `\c`, `\N`) is refused with [`ErrorKind::Unsupported`] naming its line, since
//!   running files or shell commands from an archive is not a restore. `\-` (the sandbox
//!   command of mariadb-dump's first line) is accepted: this restore never runs such
//!   commands anyway;
//! - a UTF-8 byte order mark at the very start is skipped; bytes ≥ 0x80 are opaque (as for
//!   the client with a UTF-8 or single-byte character set).
//!
//! Where this splitter is stricter than the client: input that ends inside a statement, a
//! string or a comment is a [`ErrorKind::Protocol`] error (the client would send the partial
//! statement); a statement longer than [`Splitter::set_limit`] fails before it is buffered
//! whole. Memory: the current statement plus at most one input chunk.

use exporter_contract::{EngineError, ErrorKind};

/// One statement to send to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The text as the server receives it: no delimiter, no comments before it.
    pub text: Vec<u8>,
    /// 1-based number among the script's statements (client commands are not counted).
    pub number: u64,
    /// 1-based line of the script where the statement starts.
    pub line: u64,
}

impl Statement {
    /// `statement N (line L): FIRST WORDS`, the object of every error about this statement.
    #[must_use]
    pub fn label(&self) -> String {
        label(self.number, self.line, &self.text)
    }

    /// The statement's first keyword in upper case (after a leading `/*!NNNNN`), e.g.
    /// `INSERT`; empty if it starts with something else.
    #[must_use]
    pub fn keyword(&self) -> String {
        keyword(&self.text)
    }
}

fn label(number: u64, line: u64, text: &[u8]) -> String {
    format!("statement {number} (line {line}): {}", first_words(text))
}

/// The first words of a statement, for error messages: at most six words and 80 bytes,
/// stopping before anything that may be data (a quote, a parenthesis, a number), so row
/// values never appear in an error.
#[must_use]
pub fn first_words(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut out = String::new();
    for (i, word) in text.split_ascii_whitespace().enumerate() {
        if i == 6 {
            break;
        }
        let cut = word.find(['\'', '"', '(']);
        let part = &word[..cut.unwrap_or(word.len())];
        let numeric = part
            .trim_start_matches(['-', '+'])
            .starts_with(|c: char| c.is_ascii_digit());
        if part.is_empty() || numeric || out.len() + part.len() > 80 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
        if cut.is_some() {
            break;
        }
    }
    out
}

fn keyword(text: &[u8]) -> String {
    let mut t = text;
    if t.starts_with(b"/*!") || t.starts_with(b"/*M!") {
        let skip = t.iter().position(|&b| b == b'!').unwrap_or(0) + 1;
        t = &t[skip..];
        let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
        t = &t[digits..];
    }
    let start = t.iter().position(|b| !is_space(*b)).unwrap_or(t.len());
    t[start..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic() || **b == b'_')
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect()
}

/// The client's `my_isspace` for ASCII: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Quoted(u8),
    LineComment,
    BlockComment,
}

/// What the client does with a command word (see `commands[]` in the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Delimiter,
    Use,
    Refused,
}

/// Client commands: name, whether it takes parameters, what we do.
const COMMANDS: &[(&str, bool, Command)] = &[
    ("?", true, Command::Refused),
    ("clear", false, Command::Refused),
    ("connect", true, Command::Refused),
    ("delimiter", true, Command::Delimiter),
    ("edit", false, Command::Refused),
    ("ego", false, Command::Refused),
    ("exit", false, Command::Refused),
    ("go", false, Command::Refused),
    ("help", true, Command::Refused),
    ("nopager", false, Command::Refused),
    ("notee", false, Command::Refused),
    ("pager", true, Command::Refused),
    ("print", false, Command::Refused),
    ("prompt", true, Command::Refused),
    ("quit", false, Command::Refused),
    ("rehash", false, Command::Refused),
    ("sandbox", false, Command::Refused),
    ("source", true, Command::Refused),
    ("status", false, Command::Refused),
    ("system", true, Command::Refused),
    ("tee", true, Command::Refused),
    ("use", true, Command::Use),
    ("charset", true, Command::Refused),
    ("warnings", false, Command::Refused),
    ("nowarning", false, Command::Refused),
];

/// Longest command name, plus one.
const COMMAND_WORD_MAX: usize = 10;

/// Outcome of looking at a possible client command line.
enum LineCommand {
    NeedMore,
    NotACommand,
    Done(Option<Statement>),
}

/// The streaming splitter: [`Splitter::push`] chunks, take statements with
/// [`Splitter::next_statement`] until it returns `Ok(None)`, call [`Splitter::finish`] at the
/// end of the input and drain the rest the same way.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    pos: usize,
    start: Option<usize>,
    start_line: u64,
    mode: Mode,
    delimiter: Vec<u8>,
    line: u64,
    /// Only whitespace since the start of the line, and no statement pending: where the
    /// client looks for a command line.
    line_clean: bool,
    statements: u64,
    backslash_escapes: bool,
    ansi_quotes: bool,
    limit: usize,
    eof: bool,
    bom_checked: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Splitter {
    /// A splitter at the start of a script: delimiter `;`, backslash escapes on, no
    /// `ANSI_QUOTES`, no length limit.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            start: None,
            start_line: 1,
            mode: Mode::Normal,
            delimiter: b";".to_vec(),
            line: 1,
            line_clean: true,
            statements: 0,
            backslash_escapes: true,
            ansi_quotes: false,
            limit: usize::MAX,
            eof: false,
            bom_checked: false,
        }
    }

    /// Refuse statements longer than `bytes` (the server's `max_allowed_packet` less the
    /// command byte): [`ErrorKind::Query`] naming the statement, raised as soon as the
    /// pending text exceeds it, so memory stays bounded.
    pub fn set_limit(&mut self, bytes: usize) {
        self.limit = bytes;
    }

    /// The session's string rules from the server's status flags: `backslash_escapes` is
    /// false under `NO_BACKSLASH_ESCAPES`; `ansi_quotes` true under `ANSI_QUOTES` (then `"`
    /// strings take no backslash escapes). Applies to text not yet scanned.
    pub fn set_modes(&mut self, backslash_escapes: bool, ansi_quotes: bool) {
        self.backslash_escapes = backslash_escapes;
        self.ansi_quotes = ansi_quotes;
    }

    /// The string rules in force, as set by [`Splitter::set_modes`]: `(backslash_escapes,
    /// ansi_quotes)`.
    #[must_use]
    pub fn modes(&self) -> (bool, bool) {
        (self.backslash_escapes, self.ansi_quotes)
    }

    /// The current delimiter.
    #[must_use]
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// Append a chunk of input (cut anywhere).
    pub fn push(&mut self, chunk: &[u8]) {
        let keep = self.start.unwrap_or(self.pos);
        if keep > 0 {
            self.buf.drain(..keep);
            self.pos -= keep;
            if let Some(s) = self.start.as_mut() {
                *s = 0;
            }
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Mark the end of the input.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The next complete statement, `Ok(None)` when more input is needed (or, after
    /// [`Splitter::finish`], when the script is done).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`]: the input ended inside a statement, string or comment, or a
    /// `DELIMITER` command is malformed; [`ErrorKind::Unsupported`]: a client command other
    /// than `delimiter` and `use`; [`ErrorKind::Query`]: a statement longer than the limit.
    pub fn next_statement(&mut self) -> Result<Option<Statement>, EngineError> {
        if !self.bom_checked {
            if self.buf.len() < 3 && !self.eof {
                return Ok(None);
            }
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.pos = 3;
            }
            self.bom_checked = true;
        }
        loop {
            if let Some(start) = self.start
                && self.pos - start > self.limit
            {
                return Err(self.too_long(start));
            }
            let Some(&b) = self.buf.get(self.pos) else {
                return self.at_end();
            };
            match self.mode {
                Mode::LineComment => match memchr::memchr(b'\n', &self.buf[self.pos..]) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.line += 1;
                        self.mode = Mode::Normal;
                        self.line_clean = self.start.is_none();
                    }
                    None => self.pos = self.buf.len(),
                },
                Mode::BlockComment => match memchr::memchr2(b'*', b'\n', &self.buf[self.pos..]) {
                    Some(i) => {
                        self.pos += i;
                        if self.buf[self.pos] == b'\n' {
                            self.line += 1;
                            self.pos += 1;
                        } else {
                            match self.peek(1) {
                                None if !self.eof => return Ok(None),
                                Some(b'/') => {
                                    self.pos += 2;
                                    self.mode = Mode::Normal;
                                }
                                _ => self.pos += 1,
                            }
                        }
                    }
                    None => self.pos = self.buf.len(),
                },
                Mode::Quoted(q) => {
                    let escapes =
                        q != b'`' && self.backslash_escapes && !(q == b'"' && self.ansi_quotes);
                    let rest = &self.buf[self.pos..];
                    let found = if escapes {
                        memchr::memchr3(q, b'\\', b'\n', rest)
                    } else {
                        memchr::memchr2(q, b'\n', rest)
                    };
                    match found {
                        None => self.pos = self.buf.len(),
                        Some(i) => {
                            self.pos += i;
                            match self.buf[self.pos] {
                                b'\n' => {
                                    self.line += 1;
                                    self.pos += 1;
                                }
                                b'\\' => match self.peek(1) {
                                    None if !self.eof => return Ok(None),
                                    None => self.pos += 1,
                                    Some(next) => {
                                        if next == b'\n' {
                                            self.line += 1;
                                        }
                                        self.pos += 2;
                                    }
                                },
                                _ => {
                                    self.pos += 1;
                                    self.mode = Mode::Normal;
                                }
                            }
                        }
                    }
                }
                Mode::Normal => {
                    if self.start.is_none() {
                        match self.between(b)? {
                            Step::Continue => continue,
                            Step::NeedMore => return Ok(None),
                            Step::Emit(s) => return Ok(Some(s)),
                            Step::Start => {
                                self.start = Some(self.pos);
                                self.start_line = self.line;
                            }
                        }
                    }
                    match self.inside(b)? {
                        Step::Continue | Step::Start => {}
                        Step::NeedMore => return Ok(None),
                        Step::Emit(s) => return Ok(Some(s)),
                    }
                }
            }
        }
    }

    fn peek(&self, i: usize) -> Option<u8> {
        self.buf.get(self.pos + i).copied()
    }

    /// Whether the delimiter starts at `pos`: `Some(true/false)`, `None` if more input is
    /// needed to tell.
    fn delimiter_here(&self) -> Option<bool> {
        let rest = &self.buf[self.pos..];
        let d = &self.delimiter;
        if rest.len() >= d.len() {
            Some(rest[..d.len()] == d[..])
        } else if d.starts_with(rest) && !self.eof {
            None
        } else {
            Some(false)
        }
    }

    /// What starts at `pos` (a `/`): a plain comment, an executable one (`/*!`, `/*M!`),
    /// no comment, or more input is needed to tell.
    fn comment_here(&self) -> Comment {
        match self.peek(1) {
            None if !self.eof => return Comment::NeedMore,
            Some(b'*') => {}
            _ => return Comment::None,
        }
        match self.peek(2) {
            None if !self.eof => Comment::NeedMore,
            Some(b'!') => Comment::Executable,
            Some(b'M') => match self.peek(3) {
                None if !self.eof => Comment::NeedMore,
                Some(b'!') => Comment::Executable,
                _ => Comment::Plain,
            },
            _ => Comment::Plain,
        }
    }

    /// Between statements (nothing pending) at byte `b`.
    fn between(&mut self, b: u8) -> Result<Step, EngineError> {
        if is_space(b) {
            if b == b'\n' {
                self.line += 1;
                self.line_clean = true;
            }
            self.pos += 1;
            return Ok(Step::Continue);
        }
        if b == b'\\' {
            return self.backslash();
        }
        if b == self.delimiter[0] {
            match self.delimiter_here() {
                None => return Ok(Step::NeedMore),
                // An empty statement: the client sends nothing.
                Some(true) => {
                    self.pos += self.delimiter.len();
                    self.line_clean = false;
                    return Ok(Step::Continue);
                }
                Some(false) => {}
            }
        }
        match b {
            b'#' => {
                self.mode = Mode::LineComment;
                self.pos += 1;
                return Ok(Step::Continue);
            }
            // At the start of a statement the client takes any `--` as a comment.
            b'-' => match self.peek(1) {
                None if !self.eof => return Ok(Step::NeedMore),
                Some(b'-') => {
                    self.mode = Mode::LineComment;
                    self.pos += 2;
                    return Ok(Step::Continue);
                }
                _ => {}
            },
            b'/' => match self.comment_here() {
                Comment::NeedMore => return Ok(Step::NeedMore),
                Comment::Plain => {
                    self.mode = Mode::BlockComment;
                    self.pos += 2;
                    self.line_clean = false;
                    return Ok(Step::Continue);
                }
                Comment::Executable | Comment::None => {}
            },
            _ => {}
        }
        if self.line_clean && (b.is_ascii_alphabetic() || b == b'?') {
            match self.line_command()? {
                LineCommand::NeedMore => return Ok(Step::NeedMore),
                LineCommand::Done(Some(s)) => return Ok(Step::Emit(s)),
                LineCommand::Done(None) => return Ok(Step::Continue),
                LineCommand::NotACommand => {}
            }
        }
        self.line_clean = false;
        Ok(Step::Start)
    }

    /// Inside a statement at byte `b` (the statement has started).
    fn inside(&mut self, b: u8) -> Result<Step, EngineError> {
        if b == b'\\' {
            return self.backslash();
        }
        if b == self.delimiter[0] {
            match self.delimiter_here() {
                None => return Ok(Step::NeedMore),
                Some(true) => {
                    let end = self.pos;
                    self.pos += self.delimiter.len();
                    return self.emit(end);
                }
                Some(false) => {}
            }
        }
        match b {
            b'\'' | b'"' | b'`' => {
                self.mode = Mode::Quoted(b);
                self.pos += 1;
            }
            b'\n' => {
                self.line += 1;
                self.pos += 1;
            }
            b'#' => {
                self.mode = Mode::LineComment;
                self.pos += 1;
            }
            b'-' => match (self.peek(1), self.peek(2)) {
                (None, _) | (Some(b'-'), None) if !self.eof => return Ok(Step::NeedMore),
                (Some(b'-'), None) => {
                    self.mode = Mode::LineComment;
                    self.pos += 2;
                }
                (Some(b'-'), Some(c)) if is_space(c) => {
                    self.mode = Mode::LineComment;
                    self.pos += 2;
                }
                _ => self.pos += 1,
            },
            b'/' => match self.comment_here() {
                Comment::NeedMore => return Ok(Step::NeedMore),
                Comment::Plain => {
                    self.mode = Mode::BlockComment;
                    self.pos += 2;
                }
                Comment::Executable => self.pos += 2,
                Comment::None => self.pos += 1,
            },
            _ => {
                // Skip ordinary bytes in one go (the bulk of INSERT statements).
                let d0 = self.delimiter[0];
                let rest = &self.buf[self.pos + 1..];
                let n = rest
                    .iter()
                    .position(|&c| c == d0 || SPECIAL[usize::from(c)])
                    .unwrap_or(rest.len());
                self.pos += 1 + n;
            }
        }
        Ok(Step::Continue)
    }

    /// A backslash outside strings and comments: a client command.
    fn backslash(&mut self) -> Result<Step, EngineError> {
        let Some(c) = self.peek(1) else {
            if !self.eof {
                return Ok(Step::NeedMore);
            }
            // The client drops a backslash at the very end.
            self.buf.truncate(self.pos);
            return Ok(Step::Continue);
        };
        match c {
            // At the end of a line the client drops the backslash.
            b'\n' => {
                self.buf.remove(self.pos);
                Ok(Step::Continue)
            }
            // `\N` (NULL) is passed to the server.
            b'N' => {
                if self.start.is_none() {
                    return Ok(Step::Start);
                }
                self.pos += 2;
                Ok(Step::Continue)
            }
            // mariadb-dump's `/*M!999999\- enable the sandbox mode */`: the sandbox forbids
            // shell and file commands, which this restore never runs.
            b'-' => {
                self.buf.drain(self.pos..self.pos + 2);
                Ok(Step::Continue)
            }
            b'g' | b'G' => {
                let end = self.pos;
                self.pos += 2;
                match self.start {
                    Some(_) => self.emit(end),
                    None => Ok(Step::Continue),
                }
            }
            b'c' => {
                self.pos += 2;
                self.start = None;
                Ok(Step::Continue)
            }
            other => Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "the client command \\{} is not supported by a restore (only \\g, \\G, \\c and \\N are)",
                    char::from(other).escape_default()
                ),
            )
            .with_object(format!("line {}", self.line))),
        }
    }

    /// The statement `buf[start..end]` is complete.
    fn emit(&mut self, end: usize) -> Result<Step, EngineError> {
        let start = self.start.take().unwrap_or(end);
        if end - start > self.limit {
            self.start = Some(start);
            return Err(self.too_long(start));
        }
        // Sent as the client sends it: everything up to the delimiter, trailing spaces and
        // line ends included (a trigger body without BEGIN … END is stored up to there).
        let mut text = self.buf[start..end].to_vec();
        self.line_clean = false;
        // `find_command()` on the whole statement, as the client does at a delimiter.
        if let Some((cmd, arg)) = command_of(&text) {
            match cmd {
                Command::Delimiter => {
                    self.set_delimiter(arg.as_deref(), self.start_line)?;
                    return Ok(Step::Continue);
                }
                Command::Use => {
                    if let Some(db) = arg {
                        text = use_statement(&db);
                    }
                }
                Command::Refused => {}
            }
        }
        self.statements += 1;
        Ok(Step::Emit(Statement {
            text,
            number: self.statements,
            line: self.start_line,
        }))
    }

    fn too_long(&self, start: usize) -> EngineError {
        let text = &self.buf[start..self.pos.min(start + 200)];
        EngineError::new(
            ErrorKind::Query,
            format!(
                "the statement is longer than {} bytes, the most the server's max_allowed_packet takes; raise max_allowed_packet on the server and restore again",
                self.limit
            ),
        )
        .with_object(label(self.statements + 1, self.start_line, text))
    }

    fn at_end(&mut self) -> Result<Option<Statement>, EngineError> {
        if !self.eof {
            return Ok(None);
        }
        let what = match self.mode {
            Mode::Quoted(b'`') => Some("a quoted identifier"),
            Mode::Quoted(_) => Some("a string"),
            Mode::BlockComment => Some("a comment"),
            Mode::Normal | Mode::LineComment => None,
        };
        let pending = self.start.map(|s| {
            let text = &self.buf[s..];
            let content = text.iter().any(|b| !is_space(*b));
            (content, label(self.statements + 1, self.start_line, text))
        });
        match (what, pending) {
            (None, None | Some((false, _))) => Ok(None),
            (what, pending) => {
                let object = pending.map_or_else(|| format!("line {}", self.line), |p| p.1);
                let delim = String::from_utf8_lossy(&self.delimiter).into_owned();
                let msg = match what {
                    Some(w) => format!("the script ends inside {w}: it is truncated"),
                    None => format!(
                        "the script ends in the middle of a statement (no closing {delim}): it is truncated"
                    ),
                };
                Err(EngineError::new(ErrorKind::Protocol, msg).with_object(object))
            }
        }
    }

    /// A possible client command on its own line at `pos` (`find_command(line)`).
    fn line_command(&mut self) -> Result<LineCommand, EngineError> {
        let rest = &self.buf[self.pos..];
        let word_end = rest
            .iter()
            .take(COMMAND_WORD_MAX + 1)
            .position(|&c| matches!(c, b' ' | b'\t' | b'\n'));
        let word = match word_end {
            Some(n) => &rest[..n],
            None if rest.len() <= COMMAND_WORD_MAX && !self.eof => {
                return Ok(LineCommand::NeedMore);
            }
            None => &rest[..rest.len().min(COMMAND_WORD_MAX + 1)],
        };
        let is_delimiter = word.len() >= 9 && word[..9].eq_ignore_ascii_case(b"delimiter");
        if !is_delimiter && find_command(word).is_none() {
            return Ok(LineCommand::NotACommand);
        }
        let (line, consumed) = match memchr::memchr(b'\n', rest) {
            Some(n) => (&rest[..n], n + 1),
            None if !self.eof => return Ok(LineCommand::NeedMore),
            None => (rest, rest.len()),
        };
        let contains = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
        if contains(b"\\g") || (contains(&self.delimiter) && !is_delimiter) {
            return Ok(LineCommand::NotACommand);
        }
        let Some((cmd, arg)) = command_of(line) else {
            return Ok(LineCommand::NotACommand);
        };
        let line = line.to_vec();
        let line_no = self.line;
        let name = String::from_utf8_lossy(word).to_ascii_lowercase();
        let statement = match cmd {
            Command::Delimiter => {
                self.set_delimiter(arg.as_deref(), line_no)?;
                None
            }
            Command::Use => {
                let text = match arg {
                    Some(db) => use_statement(&db),
                    None => line.clone(),
                };
                self.statements += 1;
                Some(Statement {
                    text,
                    number: self.statements,
                    line: line_no,
                })
            }
            Command::Refused => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "the client command `{name}` is not supported by a restore (only `delimiter` and `use` are)"
                    ),
                )
                .with_object(format!("line {line_no}")));
            }
        };
        self.pos += consumed;
        if consumed > line.len() {
            self.line += 1;
        }
        self.line_clean = true;
        Ok(LineCommand::Done(statement))
    }

    fn set_delimiter(&mut self, arg: Option<&[u8]>, line: u64) -> Result<(), EngineError> {
        let bad = |msg: &str| {
            EngineError::new(ErrorKind::Protocol, msg.to_owned())
                .with_object(format!("line {line}"))
        };
        match arg {
            None | Some([]) => Err(bad(
                "DELIMITER must be followed by a delimiter character or string",
            )),
            Some(d) if d.contains(&b'\\') => Err(bad("DELIMITER cannot contain a backslash")),
            Some(d) if d.len() > 15 => Err(bad("the DELIMITER is longer than 15 bytes")),
            Some(d) => {
                self.delimiter = d.to_vec();
                Ok(())
            }
        }
    }
}

/// Bytes that need a look in a statement outside strings and comments (besides the
/// delimiter's first byte).
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b'`' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'#' as usize] = true;
    t[b'-' as usize] = true;
    t[b'/' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

enum Comment {
    NeedMore,
    None,
    Plain,
    Executable,
}

enum Step {
    Continue,
    NeedMore,
    Start,
    Emit(Statement),
}

fn find_command(word: &[u8]) -> Option<(bool, Command)> {
    COMMANDS
        .iter()
        .find(|(name, _, _)| word.eq_ignore_ascii_case(name.as_bytes()))
        .map(|&(_, params, cmd)| (params, cmd))
}

/// `find_command()` on a line or statement: the command and its argument (the client's
/// `get_arg`), if the text is a client command.
fn command_of(text: &[u8]) -> Option<(Command, Option<Vec<u8>>)> {
    let start = text.iter().position(|b| !is_space(*b))?;
    let text = &text[start..];
    let word_len = text
        .iter()
        .position(|&c| c == b' ' || c == b'\t')
        .unwrap_or(text.len());
    let (params, cmd) = find_command(&text[..word_len])?;
    let rest = &text[word_len..];
    let has_args = rest.iter().any(|b| !is_space(*b));
    if !has_args {
        return Some((cmd, None));
    }
    if !params {
        return None;
    }
    let arg = get_arg(rest)?;
    Some((cmd, Some(arg)))
}

/// The client's `get_arg`: after leading spaces, a quoted argument (`'`, `"` or `` ` ``; a
/// doubled quote stands for itself, backslash escapes except in backticks) or everything up
/// to the next space. `None` if empty or unterminated.
fn get_arg(rest: &[u8]) -> Option<Vec<u8>> {
    let start = rest.iter().position(|b| !is_space(*b))?;
    let mut s = &rest[start..];
    let mut quote = None;
    if let Some(&q @ (b'\'' | b'"' | b'`')) = s.first() {
        quote = Some(q);
        s = &s[1..];
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut closed = quote.is_none();
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && i + 1 < s.len() && quote != Some(b'`') {
            out.push(s[i + 1]);
            i += 2;
            continue;
        }
        if let Some(q) = quote {
            if c == q && s.get(i + 1) == Some(&q) {
                out.push(q);
                i += 2;
                continue;
            }
            if c == q {
                closed = true;
                break;
            }
        } else if c == b' ' {
            break;
        }
        out.push(c);
        i += 1;
    }
    (closed && !out.is_empty()).then_some(out)
}

fn use_statement(db: &[u8]) -> Vec<u8> {
    let mut t = b"USE `".to_vec();
    for &b in db {
        if b == b'`' {
            t.push(b'`');
        }
        t.push(b);
    }
    t.push(b'`');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split `script` fed in chunks of `size` bytes; statements as strings.
    fn split(script: &[u8], size: usize) -> Result<Vec<(u64, u64, String)>, EngineError> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for chunk in script.chunks(size.max(1)) {
            s.push(chunk);
            while let Some(st) = s.next_statement()? {
                out.push((
                    st.number,
                    st.line,
                    String::from_utf8_lossy(&st.text).into_owned(),
                ));
            }
        }
        s.finish();
        while let Some(st) = s.next_statement()? {
            out.push((
                st.number,
                st.line,
                String::from_utf8_lossy(&st.text).into_owned(),
            ));
        }
        Ok(out)
    }

    fn texts(script: &str) -> Vec<String> {
        let whole = split(script.as_bytes(), script.len()).unwrap();
        for size in 1..=7 {
            assert_eq!(
                split(script.as_bytes(), size).unwrap(),
                whole,
                "chunk size {size}"
            );
        }
        whole.into_iter().map(|s| s.2).collect()
    }

    #[test]
    fn statements_end_at_the_delimiter_outside_strings_and_comments() {
        let script = "SELECT 1;\nSELECT 'a;b', \"c;d\", `e;f`;  SELECT 'it''s; \\' ;' ;\n\
                      SELECT 2 -- not ; the end\n; # gone;\nSELECT /* ; */ 3;SELECT 4#;\n;";
        assert_eq!(
            texts(script),
            [
                "SELECT 1",
                "SELECT 'a;b', \"c;d\", `e;f`",
                "SELECT 'it''s; \\' ;' ",
                "SELECT 2 -- not ; the end\n",
                "SELECT /* ; */ 3",
                "SELECT 4#;\n",
            ]
        );
    }

    #[test]
    fn comments_between_statements_are_dropped_and_lines_counted() {
        let script = "-- header\n--no space at statement start\n# hash\n/* block\n ; */\n\n  SELECT 1;\n/*!40101 SET NAMES utf8mb4 */;\nSELECT\n2;";
        let out = split(script.as_bytes(), 3).unwrap();
        assert_eq!(
            out,
            [
                (1, 7, "SELECT 1".to_owned()),
                (2, 8, "/*!40101 SET NAMES utf8mb4 */".to_owned()),
                (3, 9, "SELECT\n2".to_owned()),
            ]
        );
    }

    #[test]
    fn double_dash_needs_a_space_inside_a_statement() {
        assert_eq!(
            texts("SELECT 1--1;\nSELECT 1 --\n;SELECT 2 --\t;\n;"),
            ["SELECT 1--1", "SELECT 1 --\n", "SELECT 2 --\t;\n"]
        );
    }

    #[test]
    fn delimiter_lines_switch_the_delimiter() {
        let script = "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT ';;' ; -- x ;;\n SELECT 1; END;;\ndelimiter $$\nSELECT 2$$\nDELIMITER ;\nSELECT 3;";
        assert_eq!(
            texts(script),
            [
                "CREATE PROCEDURE p() BEGIN SELECT ';;' ; -- x ;;\n SELECT 1; END",
                "SELECT 2",
                "SELECT 3",
            ]
        );
        let quoted = "DELIMITER 'a b'\nSELECT 1a b\nDELIMITER ;\n";
        assert_eq!(texts(quoted), ["SELECT 1"]);
    }

    #[test]
    fn mariadb_dump_first_line_and_executable_comments() {
        let script = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n/*!40101 SET @OLD=@@X */;\nDELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = ';'; END */;;\nDELIMITER ;\n";
        assert_eq!(
            texts(script),
            [
                "/*M!999999 enable the sandbox mode */ \n-- MariaDB dump 10.19\n/*!40101 SET @OLD=@@X */",
                "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = ';'; END */",
            ]
        );
    }

    #[test]
    fn use_lines_and_statements() {
        let script = "use `my db`\nUSE other;\nCREATE DATABASE IF NOT EXISTS x;";
        assert_eq!(
            texts(script),
            [
                "USE `my db`",
                "USE `other`",
                "CREATE DATABASE IF NOT EXISTS x"
            ]
        );
    }

    #[test]
    fn modes_change_how_strings_end() {
        let mut s = Splitter::new();
        s.set_modes(false, false);
        s.push(b"SELECT 'a\\';SELECT 2;");
        s.finish();
        assert_eq!(s.next_statement().unwrap().unwrap().text, b"SELECT 'a\\'");
        s.set_modes(true, true);
        let mut s2 = Splitter::new();
        s2.set_modes(true, true);
        s2.push(b"SELECT \"a\\\";SELECT 'b\\';';");
        s2.finish();
        assert_eq!(
            s2.next_statement().unwrap().unwrap().text,
            b"SELECT \"a\\\""
        );
        assert_eq!(
            s2.next_statement().unwrap().unwrap().text,
            b"SELECT 'b\\';'"
        );
    }

    #[test]
    fn truncated_input_is_a_protocol_error() {
        for script in [
            "SELECT 1;\nINSERT INTO t VALUES (1)",
            "SELECT 'abc;",
            "SELECT 1; /* open",
            "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT 1; END;\n",
        ] {
            let e = split(script.as_bytes(), 2).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{script}: {e}");
            assert!(e.to_string().contains("truncated"), "{e}");
        }
        let e = split(b"SELECT 1;\nINSERT INTO t VALUES (1, 'secret')", 5).unwrap_err();
        assert_eq!(
            e.object(),
            Some("statement 2 (line 2): INSERT INTO t VALUES")
        );
        // Trailing whitespace and comments are fine.
        assert_eq!(split(b"SELECT 1; -- end\n\n# x", 4).unwrap().len(), 1);
    }

    #[test]
    fn client_commands_other_than_use_and_delimiter_are_refused() {
        for script in [
            "source /etc/passwd\n",
            "SELECT 1;\nsystem ls\n",
            "SELECT 1 \\! ls;",
        ] {
            let e = split(script.as_bytes(), 3).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{script}: {e}");
        }
        // A word that merely looks like a command is SQL when the line has the delimiter.
        assert_eq!(texts("status;\nhelp 'x';"), ["status", "help 'x'"]);
        let e = split(b"DELIMITER\n", 4).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn limit_stops_long_statements_early() {
        let mut s = Splitter::new();
        s.set_limit(10);
        s.push(b"SELECT 1;INSERT INTO t VALUES (12345678901234567890");
        assert_eq!(s.next_statement().unwrap().unwrap().text, b"SELECT 1");
        let e = s.next_statement().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Query);
        assert!(e.to_string().contains("max_allowed_packet"), "{e}");
        assert!(!e.to_string().contains("1234"), "{e}");
    }

    #[test]
    fn first_words_never_show_values() {
        assert_eq!(
            first_words(b"INSERT INTO `t` (`a`,`b`) VALUES (1,'x')"),
            "INSERT INTO `t`"
        );
        assert_eq!(
            first_words(b"CREATE PROCEDURE `bump`(IN pid INT)"),
            "CREATE PROCEDURE `bump`"
        );
        assert_eq!(first_words(b"SET @a='secret'"), "SET @a=");
        assert_eq!(first_words(b"DO SETVAL(`s`, 5)"), "DO SETVAL");
        assert_eq!(
            first_words(b"UPDATE t SET a = 5 WHERE b"),
            "UPDATE t SET a ="
        );
        assert_eq!(keyword(b"/*!40101 SET NAMES x */"), "SET");
        assert_eq!(keyword(b"grant all on x to y"), "GRANT");
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(texts("\u{feff}SELECT 1;"), ["SELECT 1"]);
    }
}
