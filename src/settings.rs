//! Resolved settings: command-line arguments, environment variables and the config file merged
//! into a validated plan, without any I/O (uv's "resolved settings").
//!
//! The caller reads the config file and passes its text plus a snapshot of the environment;
//! everything here is pure, so every rule is unit-tested.
//!
//! Config file shape (`exporter.toml`):
//!
//! ```toml
//! [storage]
//! to = "./archives"   # destination directory, or s3://bucket/prefix
//! # S3 only (all optional; see README.md "S3 storage"):
//! # endpoint = "http://127.0.0.1:9000"   # S3-compatible store (else AWS_ENDPOINT_URL, else AWS)
//! # region = "eu-west-1"                  # else AWS_REGION / the profile
//! # path_style = true                     # default: true with a custom endpoint
//! # sse = "AES256"                        # or "aws:kms" (with sse_kms_key_id)
//! # storage_class = "STANDARD_IA"
//! # checksums = "when_required"           # or "when_supported"
//! # part_size = "16MiB"                   # default: chosen from the size estimate
//! # upload_concurrency = 4                # parts in flight per object
//!
//! [[databases]]
//! name = "billing"    # payload file stem: letters, digits, '.', '_', '-'
//! url = "postgres://postgres:${PGPASSWORD}@127.0.0.1:5432/billing"
//! ```
//!
//! `${VAR}` in any value is replaced by the environment variable `VAR`; inside a URL the value
//! is percent-encoded so that a password like `p@ss/word` stays a password. `$${` is a literal
//! `${`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use exporter_contract::DatabaseUrl;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;

pub use crate::commands::verify::Level;
use crate::engines::{ConnectionDefaults, EngineKind, EngineOptions};
use crate::storage::s3::{self, Checksums, S3Config, Sse};

/// Default compression level (zstd's own default).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Highest compression level accepted (zstd's non-"ultra" range).
pub const MAX_COMPRESSION_LEVEL: i32 = 19;
/// Default destination when neither `--to` nor `[storage] to` is given.
pub const DEFAULT_DESTINATION: &str = "./archives";

/// A configuration or usage error: exit code 2. The message names the key or line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    message: String,
    hint: Option<String>,
}

impl SettingsError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A next step for the user, if there is one.
    #[must_use]
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// Where a run is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A local directory (created if missing).
    Local(PathBuf),
    /// A bucket and key prefix (`s3://bucket/prefix`) with its connection settings.
    S3(S3Config),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::S3(c) => write!(f, "{}", c.url()),
        }
    }
}

/// One database to dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTarget {
    /// Payload file stem, unique within a run.
    pub name: String,
    /// Connection URL (redacted when displayed).
    pub url: DatabaseUrl,
    /// The engine chosen for the URL's scheme.
    pub engine: EngineKind,
}

/// Where the inventory came from, as recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventorySource {
    /// `[[databases]]` of a config file.
    Config,
    /// URLs given on the command line.
    Urls,
}

impl InventorySource {
    /// `config` or `urls`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Urls => "urls",
        }
    }
}

/// A validated dump plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    /// Destination of the run.
    pub destination: Destination,
    /// Databases in the order given.
    pub databases: Vec<DatabaseTarget>,
    /// zstd level, 1..=19.
    pub compression_level: i32,
    /// Parallelism: zstd worker threads per archive and databases dumped at once.
    pub jobs: usize,
    /// Emit ownership and privileges.
    pub ownership: bool,
    /// Engine-specific choices (Redis format, MySQL definers).
    pub engine_options: EngineOptions,
    /// Where the inventory came from.
    pub inventory: InventorySource,
    /// Connection defaults from the environment (`PGSSLMODE`, …); set by the caller, which
    /// owns the environment snapshot.
    pub connections: ConnectionDefaults,
}

/// The config file, as parsed (before `${VAR}` substitution).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    storage: Option<StorageSection>,
    #[serde(default)]
    databases: Vec<DatabaseSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    to: Option<toml::Spanned<String>>,
    endpoint: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    sse: Option<String>,
    sse_kms_key_id: Option<String>,
    storage_class: Option<String>,
    checksums: Option<String>,
    part_size: Option<toml::Value>,
    upload_concurrency: Option<i64>,
}

/// The `[storage]` settings besides `to` (they apply to `s3://` destinations only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageOptions {
    /// `endpoint`: URL of an S3-compatible store.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `path_style`.
    pub path_style: Option<bool>,
    /// `sse` / `sse_kms_key_id`, validated.
    pub sse: Option<Sse>,
    /// `storage_class`.
    pub storage_class: Option<String>,
    /// `checksums`.
    pub checksums: Option<Checksums>,
    /// `part_size` in bytes.
    pub part_size: Option<u64>,
    /// `upload_concurrency`.
    pub upload_concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    name: toml::Spanned<String>,
    url: toml::Spanned<String>,
}

/// A parsed, substituted and validated config file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[storage] to`, if given.
    pub to: Option<String>,
    /// `[[databases]]`, validated.
    pub databases: Vec<DatabaseTarget>,
    /// The other `[storage]` keys.
    pub storage: StorageOptions,
}

/// Characters percent-encoded when a `${VAR}` value is substituted into a URL: everything
/// that could end or restructure the userinfo, host or path.
const URL_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'=')
    .add(b'+');

/// Parse a config file's text.
///
/// `origin` names the file in messages; `env` looks up environment variables.
///
/// # Errors
///
/// [`SettingsError`] naming the line or key: TOML syntax, unknown keys, unset variables,
/// invalid or unsupported URLs, invalid or duplicate names.
pub fn parse_config(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, SettingsError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let storage = storage_options(raw.storage.as_ref(), origin, env)?;

    let to = match raw.storage.and_then(|s| s.to) {
        Some(to) => {
            let at = format!(
                "{origin}, line {}, key storage.to",
                line_of(text, to.span().start)
            );
            let value = substitute(to.get_ref(), false, env).map_err(|e| located(&at, &e))?;
            if value.trim().is_empty() {
                return Err(SettingsError::new(format!("{at}: must not be empty")));
            }
            Some(value)
        }
        None => None,
    };

    let mut databases = Vec::with_capacity(raw.databases.len());
    let mut seen = HashSet::new();
    for (i, db) in raw.databases.iter().enumerate() {
        let name_at = format!(
            "{origin}, line {}, key databases[{i}].name",
            line_of(text, db.name.span().start)
        );
        let name = substitute(db.name.get_ref(), false, env).map_err(|e| located(&name_at, &e))?;
        validate_name(&name).map_err(|e| SettingsError::new(format!("{name_at}: {e}")))?;
        if !seen.insert(name.clone()) {
            return Err(
                SettingsError::new(format!("{name_at}: duplicate database name {name:?}"))
                    .hint("each database needs its own name: it becomes the archive file name"),
            );
        }
        let url_at = format!(
            "{origin}, line {}, key databases[{i}].url",
            line_of(text, db.url.span().start)
        );
        let url_text = substitute(db.url.get_ref(), true, env).map_err(|e| located(&url_at, &e))?;
        let (url, engine) = parse_url(&url_text).map_err(|e| SettingsError {
            message: format!("{url_at}: {}", e.message),
            hint: e.hint,
        })?;
        databases.push(DatabaseTarget { name, url, engine });
    }
    Ok(Config {
        to,
        databases,
        storage,
    })
}

/// Validate the S3 keys of `[storage]` (`${VAR}` substituted in each string).
fn storage_options(
    section: Option<&StorageSection>,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StorageOptions, SettingsError> {
    let Some(s) = section else {
        return Ok(StorageOptions::default());
    };
    let text = |key: &str, v: &Option<String>| -> Result<Option<String>, SettingsError> {
        v.as_deref()
            .map(|v| {
                substitute(v, false, env)
                    .map_err(|e| located(&format!("{origin}, key storage.{key}"), &e))
            })
            .transpose()
    };
    let bad =
        |key: &str, msg: String| SettingsError::new(format!("{origin}, key storage.{key}: {msg}"));
    let sse = match (
        text("sse", &s.sse)?,
        text("sse_kms_key_id", &s.sse_kms_key_id)?,
    ) {
        (None, None) => None,
        (Some(mode), key) => Some(Sse::parse(&mode, key).map_err(|m| bad("sse", m))?),
        (None, Some(key)) => Some(Sse::Kms(Some(key))),
    };
    let checksums = text("checksums", &s.checksums)?
        .map(|c| Checksums::parse(&c).map_err(|m| bad("checksums", m)))
        .transpose()?;
    let part_size = match &s.part_size {
        None => None,
        Some(toml::Value::Integer(n)) => {
            Some(u64::try_from(*n).map_err(|_| bad("part_size", format!("{n} is negative")))?)
        }
        Some(toml::Value::String(t)) => Some(parse_size(t).map_err(|m| bad("part_size", m))?),
        Some(other) => {
            return Err(bad(
                "part_size",
                format!("expected a size like \"16MiB\", found {}", other.type_str()),
            ));
        }
    };
    if let Some(p) = part_size {
        s3::check_part_size(p).map_err(|m| bad("part_size", m))?;
    }
    let upload_concurrency = match s.upload_concurrency {
        None => None,
        Some(n) if (1..=64).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(bad(
                "upload_concurrency",
                format!("{n} is out of range 1..=64"),
            ));
        }
    };
    Ok(StorageOptions {
        endpoint: text("endpoint", &s.endpoint)?,
        region: text("region", &s.region)?,
        path_style: s.path_style,
        sse,
        storage_class: text("storage_class", &s.storage_class)?,
        checksums,
        part_size,
        upload_concurrency,
    })
}

/// Parse an age: a number with a unit `s`, `m`, `h` or `d` (`90s`, `30m`, `2h`, `1d`), or
/// `0`.
///
/// # Errors
///
/// A message naming the text when it is not an age.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not an age (e.g. 30m, 2h, 1d, or 0)"))?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} needs a unit: s, m, h or d (e.g. 2h)")),
    };
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Parse a byte size: a plain number of bytes, or a number with a binary unit `K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024; `KB`, `MB`, … are read the same way).
///
/// # Errors
///
/// A message naming the text when it is not a size or overflows 64 bits.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512MiB, 20G, 1048576)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit (use KiB, MiB, GiB or TiB)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Read only `[storage]` of a config file, for commands that need no database (`verify`,
/// `uploads`): the databases' `${VAR}` references are not resolved, so their credentials need
/// not be set. Returns `to` and the other storage keys.
///
/// # Errors
///
/// [`SettingsError`] for TOML syntax, unknown keys, or an unset variable or invalid value in
/// `[storage]`.
pub fn parse_storage(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<String>, StorageOptions), SettingsError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let options = storage_options(raw.storage.as_ref(), origin, env)?;
    let to = raw
        .storage
        .and_then(|s| s.to)
        .map(|to| {
            let at = format!(
                "{origin}, line {}, key storage.to",
                line_of(text, to.span().start)
            );
            substitute(to.get_ref(), false, env).map_err(|e| located(&at, &e))
        })
        .transpose()?;
    Ok((to, options))
}

fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> SettingsError {
    let line = e.span().map(|s| line_of(text, s.start));
    let msg = e.message().trim_end().to_owned();
    let err = match line {
        Some(line) => SettingsError::new(format!("{origin}, line {line}: {msg}")),
        None => SettingsError::new(format!("{origin}: {msg}")),
    };
    if msg.starts_with("unknown field") {
        err.hint("fixtures/exporter.example.toml lists every key")
    } else {
        err
    }
}

/// Parse a database URL given on the command line or in the config.
///
/// # Errors
///
/// [`SettingsError`] for text that is not a URL with a host, or a scheme no engine handles.
/// The message never repeats the URL (it may hold a password).
pub fn parse_url(text: &str) -> Result<(DatabaseUrl, EngineKind), SettingsError> {
    let url = DatabaseUrl::parse(text)
        .map_err(|e| SettingsError::new(format!("invalid database URL: {e}")))?;
    let engine = EngineKind::for_scheme(url.scheme()).ok_or_else(|| {
        SettingsError::new(format!("unsupported URL scheme {:?}", url.scheme())).hint(format!(
            "supported schemes: {}",
            EngineKind::supported_schemes().join(", ")
        ))
    })?;
    Ok((url, engine))
}

/// Check a payload name: 1..=100 characters of `[A-Za-z0-9._-]`, not starting with `.`.
///
/// # Errors
///
/// A message saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("name {name:?} must be 1 to 100 characters"));
    }
    if name.starts_with('.') {
        return Err(format!("name {name:?} must not start with '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "name {name:?} contains {c:?}; use letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// A file stem derived from a database name: unsupported characters become `_`.
#[must_use]
pub fn name_from_database(db: &str) -> String {
    let mut s: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    s.truncate(100);
    if s.is_empty() {
        "database".to_owned()
    } else {
        s
    }
}

/// Replace `${VAR}` references. With `in_url`, values are percent-encoded.
fn substitute(
    value: &str,
    in_url: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated ${ in value".to_owned())?;
            let var = &body[..end];
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable reference ${{{var}}}"));
            }
            let val = env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
            if in_url {
                out.extend(utf8_percent_encode(&val, URL_VALUE));
            } else {
                out.push_str(&val);
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A substitution error at a config location, with a hint for unset variables.
fn located(at: &str, error: &str) -> SettingsError {
    let hint = error
        .strip_prefix("environment variable ")
        .and_then(|rest| rest.strip_suffix(" is not set"))
        .map(|var| {
            format!(
                "set it before running, e.g. `export {var}=...`, or write the value in the file"
            )
        });
    SettingsError {
        message: format!("{at}: {error}"),
        hint,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Command-line inputs of `dump`, as plain data (see `cli`).
#[derive(Debug, Clone, Default)]
pub struct DumpArgs {
    /// `--all`.
    pub all: bool,
    /// Positional URLs.
    pub urls: Vec<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--compression-level`.
    pub compression_level: Option<i32>,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--no-owner`.
    pub no_owner: bool,
    /// `--redis-format rdb`.
    pub redis_rdb: bool,
    /// `--keep-definers`.
    pub keep_definers: bool,
    /// `--expected-size` in bytes (sizes S3 upload parts).
    pub expected_size: Option<u64>,
}

/// Merge `dump` arguments with the config into a plan.
///
/// `config` is `None` when no config file exists; `cores` is the machine's parallelism.
///
/// # Errors
///
/// [`SettingsError`]: neither `--all` nor URLs, both, `--all` without a config, an invalid
/// URL, duplicate derived names, a compression level out of range, `--jobs 0`.
pub fn resolve_dump(
    args: &DumpArgs,
    config: Option<&Config>,
    config_name: &str,
    cores: usize,
) -> Result<DumpPlan, SettingsError> {
    let (databases, inventory) = match (args.all, args.urls.is_empty()) {
        (true, false) => {
            return Err(
                SettingsError::new("--all and database URLs cannot be combined").hint(
                    "use `exporter dump --all` for the config's databases, or name URLs alone",
                ),
            );
        }
        (false, true) => {
            return Err(SettingsError::new(
                "nothing to dump: give --all or one or more database URLs",
            )
            .hint("`exporter dump --all` dumps every database of exporter.toml"));
        }
        (true, true) => {
            let config = config.ok_or_else(|| {
                SettingsError::new(format!("--all needs a config file, and {config_name} does not exist"))
                    .hint("create exporter.toml (see fixtures/exporter.example.toml) or pass --config FILE")
            })?;
            if config.databases.is_empty() {
                return Err(SettingsError::new(format!(
                    "{config_name} lists no [[databases]]"
                )));
            }
            (config.databases.clone(), InventorySource::Config)
        }
        (false, false) => {
            let mut dbs = Vec::new();
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, text) in args.urls.iter().enumerate() {
                let (url, engine) = parse_url(text).map_err(|e| SettingsError {
                    message: format!("argument {} (URL #{}): {}", i + 1, i + 1, e.message),
                    hint: e.hint,
                })?;
                let name =
                    name_from_database(&url.database().unwrap_or_else(|| url.host().to_owned()));
                if let Some(prev) = seen.insert(name.clone(), i) {
                    return Err(SettingsError::new(format!(
                        "URLs #{} and #{} would both be written as {name:?}",
                        prev + 1,
                        i + 1
                    ))
                    .hint("name them in exporter.toml with distinct `name` keys"));
                }
                dbs.push(DatabaseTarget { name, url, engine });
            }
            (dbs, InventorySource::Urls)
        }
    };

    let level = args.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL);
    if !(1..=MAX_COMPRESSION_LEVEL).contains(&level) {
        return Err(SettingsError::new(format!(
            "--compression-level {level} is out of range 1..={MAX_COMPRESSION_LEVEL}"
        )));
    }
    let jobs = match args.jobs {
        Some(0) => return Err(SettingsError::new("--jobs must be at least 1")),
        Some(n) => n,
        None => cores.max(1),
    };
    let to = args
        .to
        .clone()
        .or_else(|| config.and_then(|c| c.to.clone()))
        .unwrap_or_else(|| DEFAULT_DESTINATION.to_owned());
    let engine_options = EngineOptions {
        redis_rdb: args.redis_rdb,
        keep_definers: args.keep_definers,
    };
    // Each adapter checks its URL without I/O, so parameter mistakes are usage errors.
    for db in &databases {
        db.engine
            .source(db.url.clone(), engine_options)
            .validate()
            .map_err(|e| {
                SettingsError::new(format!(
                    "database {} ({}): {}",
                    db.name,
                    db.url,
                    e.message()
                ))
            })?;
    }
    let default_options = StorageOptions::default();
    let storage = config.map_or(&default_options, |c| &c.storage);
    let mut destination = resolve_destination(&to, storage)?;
    if let Destination::S3(c) = &mut destination {
        c.expected_size = args.expected_size;
        // Check the part size against the expected size now: a usage error before any
        // database is touched, not a failure in the middle of the upload.
        s3::choose_part_size(c.part_size, c.expected_size).map_err(|m| {
            SettingsError::new(format!("--expected-size: {m}"))
                .hint("S3 objects are at most 5 TiB; an archive that large must go elsewhere")
        })?;
    } else if args.expected_size.is_some() {
        return Err(SettingsError::new(
            "--expected-size sizes S3 upload parts; the destination is a local directory",
        )
        .hint("leave out --expected-size, or dump to s3://bucket/prefix"));
    }
    Ok(DumpPlan {
        destination,
        databases,
        compression_level: level,
        jobs,
        ownership: !args.no_owner,
        engine_options: EngineOptions {
            redis_rdb: args.redis_rdb,
            keep_definers: args.keep_definers,
        },
        inventory,
        connections: ConnectionDefaults::default(),
    })
}

/// Command-line inputs of `verify`, as plain data (see `cli`).
#[derive(Debug, Clone)]
pub struct VerifyArgs {
    /// The positional RUN (an id under the destination or a path to a run directory).
    pub run: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--level`.
    pub level: Level,
    /// `--scratch` URLs, in the order given.
    pub scratch: Vec<String>,
}

/// A server `verify --level restore` may create and drop scratch databases on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchUrl {
    /// Its URL (redacted when displayed).
    pub url: DatabaseUrl,
    /// The engine of the URL's scheme.
    pub engine: EngineKind,
}

/// A validated verification plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPlan {
    /// Where runs are looked up by id.
    pub destination: Destination,
    /// The run to verify: an id, a path, or `None` for the latest run with a manifest.
    pub run: Option<String>,
    /// How deep to check.
    pub level: Level,
    /// Scratch servers, at most one per engine (only with [`Level::Restore`]).
    pub scratch: Vec<ScratchUrl>,
    /// Connection defaults from the environment, as in [`DumpPlan::connections`].
    pub connections: ConnectionDefaults,
}

impl VerifyPlan {
    /// The scratch server given for `engine`, if any.
    #[must_use]
    pub fn scratch_for(&self, engine: EngineKind) -> Option<&ScratchUrl> {
        self.scratch.iter().find(|s| s.engine == engine)
    }
}

/// Merge `verify` arguments with the config's `[storage]` (`to` and the S3 keys) into a plan.
///
/// # Errors
///
/// [`SettingsError`]: `--scratch` without `--level restore`, a `--scratch` value that is not a
/// database URL of a known engine, two `--scratch` URLs of the same engine (the choice would be
/// ambiguous), a bad destination. Whether every engine of the run has a scratch server can only
/// be known from its manifest, so `verify` checks that itself before restoring anything.
pub fn resolve_verify(
    args: &VerifyArgs,
    config_to: Option<&str>,
    storage: &StorageOptions,
) -> Result<VerifyPlan, SettingsError> {
    if !args.scratch.is_empty() && args.level != Level::Restore {
        return Err(SettingsError::new(format!(
            "--scratch is only used with --level restore (the level is {})",
            args.level.as_str()
        ))
        .hint("add --level restore, or leave out --scratch"));
    }
    let mut scratch: Vec<ScratchUrl> = Vec::with_capacity(args.scratch.len());
    for (i, text) in args.scratch.iter().enumerate() {
        let (url, engine) = parse_url(text).map_err(|e| SettingsError {
            message: format!("--scratch URL #{}: {}", i + 1, e.message),
            hint: e.hint,
        })?;
        if let Some(prev) = scratch.iter().position(|s| s.engine == engine) {
            return Err(SettingsError::new(format!(
                "--scratch URLs #{} and #{} are both {engine} servers",
                prev + 1,
                i + 1
            ))
            .hint("give one scratch server per engine"));
        }
        scratch.push(ScratchUrl { url, engine });
    }
    let to = args
        .to
        .as_deref()
        .or(config_to)
        .unwrap_or(DEFAULT_DESTINATION);
    Ok(VerifyPlan {
        destination: resolve_destination(to, storage)?,
        run: args.run.clone(),
        level: args.level,
        scratch,
        connections: ConnectionDefaults::default(),
    })
}

/// Command-line inputs of `restore`, as plain data (see `cli`).
#[derive(Debug, Clone, Default)]
pub struct RestoreArgs {
    /// The positional RUN (an id under the destination or a path to a run directory).
    pub run: String,
    /// `--into`: the target database URL.
    pub into: String,
    /// `--db`: the manifest entry to restore.
    pub db: Option<String>,
    /// `--clean`.
    pub clean: bool,
    /// `--no-owner`.
    pub no_owner: bool,
    /// `--to`.
    pub to: Option<String>,
}

/// A validated restore plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    /// Where runs are looked up by id.
    pub destination: Destination,
    /// The run: an id under the destination or a path to a run directory.
    pub run: String,
    /// The target database (redacted when displayed).
    pub into: DatabaseUrl,
    /// The engine of the target URL's scheme.
    pub engine: EngineKind,
    /// The manifest entry to restore; `None` means the run's only one.
    pub db: Option<String>,
    /// Drop what is already in the target first.
    pub clean: bool,
    /// Apply ownership and privilege statements.
    pub ownership: bool,
    /// Connection defaults from the environment, as in [`DumpPlan::connections`].
    pub connections: ConnectionDefaults,
}

/// Merge `restore` arguments with the config's `[storage]` (`to` and the S3 keys) into a plan.
///
/// # Errors
///
/// [`SettingsError`]: an empty RUN or `--db`, an `--into` value that is not a database URL of
/// a known engine, or one its engine refuses without I/O (`Target::validate`), a bad
/// destination. The message never repeats the URL's password.
pub fn resolve_restore(
    args: &RestoreArgs,
    config_to: Option<&str>,
    storage: &StorageOptions,
) -> Result<RestorePlan, SettingsError> {
    if args.run.trim().is_empty() {
        return Err(SettingsError::new("RUN must not be empty")
            .hint("give a run id under the destination, or a path to a run directory"));
    }
    if args.db.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err(SettingsError::new("--db must not be empty"));
    }
    let (into, engine) = parse_url(&args.into).map_err(|e| SettingsError {
        message: format!("--into: {}", e.message),
        hint: e.hint,
    })?;
    engine
        .target(into.clone())
        .validate()
        .map_err(|e| SettingsError::new(format!("--into {into}: {}", e.message())))?;
    let to = args
        .to
        .as_deref()
        .or(config_to)
        .unwrap_or(DEFAULT_DESTINATION);
    Ok(RestorePlan {
        destination: resolve_destination(to, storage)?,
        run: args.run.clone(),
        into,
        engine,
        db: args.db.clone(),
        clean: args.clean,
        ownership: !args.no_owner,
        connections: ConnectionDefaults::default(),
    })
}

/// Interpret a destination string: a local directory, or `s3://bucket[/prefix]` combined
/// with the `[storage]` options.
///
/// # Errors
///
/// [`SettingsError`] for an empty value, an invalid bucket name, or another URL scheme.
pub fn resolve_destination(
    to: &str,
    options: &StorageOptions,
) -> Result<Destination, SettingsError> {
    if to.trim().is_empty() {
        return Err(SettingsError::new("the destination must not be empty"));
    }
    if let Some(rest) = to.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        s3::check_bucket_name(bucket).map_err(|m| {
            SettingsError::new(format!("destination {to:?}: {m}"))
                .hint("write it as s3://bucket/prefix")
        })?;
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(SettingsError::new(format!(
                "destination {to:?}: the prefix must not contain `.` or `..` segments"
            )));
        }
        return Ok(Destination::S3(S3Config {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: options.endpoint.clone(),
            region: options.region.clone(),
            path_style: options.path_style,
            sse: options.sse.clone(),
            storage_class: options.storage_class.clone(),
            checksums: options.checksums.unwrap_or_default(),
            part_size: options.part_size,
            upload_concurrency: options
                .upload_concurrency
                .unwrap_or(s3::DEFAULT_UPLOAD_CONCURRENCY),
            expected_size: None,
        }));
    }
    if let Some((scheme, _)) = to.split_once("://") {
        return Err(
            SettingsError::new(format!("destination scheme {scheme:?} is not supported"))
                .hint("use a local directory or s3://bucket/prefix"),
        );
    }
    Ok(Destination::Local(PathBuf::from(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_a_full_config() {
        let text = "[storage]\nto = \"./out\"\n\n[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres@127.0.0.1:5432/billing\"\n";
        let c = parse_config(text, "exporter.toml", &no_env).unwrap();
        assert_eq!(c.to.as_deref(), Some("./out"));
        assert_eq!(c.databases.len(), 1);
        assert_eq!(c.databases[0].name, "billing");
        assert_eq!(c.databases[0].engine, EngineKind::Postgres);
    }

    #[test]
    fn unknown_key_names_its_line() {
        let text = "[storage]\nto = \"x\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://h/a\"\npasword = \"x\"\n";
        let e = parse_config(text, "exporter.toml", &no_env).unwrap_err();
        assert!(e.to_string().starts_with("exporter.toml, line 6:"), "{e}");
        assert!(e.to_string().contains("pasword"), "{e}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://h/a\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://h/b\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml, line 5, key databases[1].name: duplicate database name \"a\""
        );
    }

    #[test]
    fn unset_variable_names_key_and_line() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:${NOPE_PW}@h/a\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml, line 3, key databases[0].url: environment variable NOPE_PW is not set"
        );
        assert_eq!(
            e.hint_text(),
            Some(
                "set it before running, e.g. `export NOPE_PW=...`, or write the value in the file"
            )
        );
    }

    #[test]
    fn variables_are_percent_encoded_in_urls() {
        let env = |k: &str| (k == "PW").then(|| "p@ss/w:rd".to_owned());
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:${PW}@h:5432/a\"\n";
        let c = parse_config(text, "c.toml", &env).unwrap();
        assert_eq!(c.databases[0].url.password().as_deref(), Some("p@ss/w:rd"));
        assert_eq!(c.databases[0].url.host(), "h");
        assert_eq!(c.databases[0].url.to_string(), "postgres://u:****@h:5432/a");
    }

    #[test]
    fn literal_dollar_brace_escape() {
        assert_eq!(substitute("a$${B}c$d", false, &no_env).unwrap(), "a${B}c$d");
    }

    #[test]
    fn bad_url_does_not_echo_password() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:hunter2@\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("databases[0].url"), "{e}");
    }

    #[test]
    fn unsupported_scheme_has_hint() {
        let e = parse_url("mongodb://h/db").unwrap_err();
        assert_eq!(e.to_string(), "unsupported URL scheme \"mongodb\"");
        assert!(e.hint_text().unwrap().contains("postgres"));
    }

    #[test]
    fn names_are_validated_and_derived() {
        assert!(validate_name("billing-2.prod_x").is_ok());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(name_from_database("My DB/1"), "My_DB_1");
        assert_eq!(name_from_database(".hidden"), "_hidden");
    }

    #[test]
    fn resolve_verify_rules() {
        let mut args = VerifyArgs {
            run: None,
            to: None,
            level: Level::Decompress,
            scratch: vec!["postgres://postgres@h:5432/postgres".into()],
        };
        let e = resolve_verify(&args, None, &StorageOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--scratch is only used with --level restore (the level is decompress)"
        );
        args.level = Level::Restore;
        args.scratch.push("mariadb://root@h:3306".into());
        args.scratch.push("redis://h:6380".into());
        let plan = resolve_verify(&args, Some("/cfg"), &StorageOptions::default()).unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/cfg")));
        assert_eq!(plan.scratch.len(), 3);
        assert_eq!(plan.scratch_for(EngineKind::Mysql).unwrap().url.host(), "h");
        args.scratch.push("postgresql://u:hunter2@other/x".into());
        let e = resolve_verify(&args, None, &StorageOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--scratch URLs #1 and #4 are both postgresql servers"
        );
        args.scratch = vec!["mongodb://u:hunter2@h/x".into()];
        let e = resolve_verify(&args, None, &StorageOptions::default()).unwrap_err();
        assert!(e.to_string().starts_with("--scratch URL #1: "), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        args.scratch.clear();
        args.to = Some("/flag".into());
        let plan = resolve_verify(&args, Some("/cfg"), &StorageOptions::default()).unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/flag")));
        assert_eq!(plan.scratch_for(EngineKind::Postgres), None);
    }

    #[test]
    fn resolve_restore_rules() {
        let mut args = RestoreArgs {
            run: "20261129T074800Z".into(),
            into: "postgres://app:hunter2@h:5432/target".into(),
            ..RestoreArgs::default()
        };
        let plan = resolve_restore(&args, None, &StorageOptions::default()).unwrap();
        assert_eq!(plan.engine, EngineKind::Postgres);
        assert!(plan.ownership);
        assert!(!plan.clean);
        assert_eq!(plan.into.to_string(), "postgres://app:****@h:5432/target");
        assert_eq!(
            plan.destination,
            Destination::Local(PathBuf::from(DEFAULT_DESTINATION))
        );
        args.no_owner = true;
        args.clean = true;
        args.into = "mariadb://root@h/x".into();
        let plan = resolve_restore(&args, Some("/cfg"), &StorageOptions::default()).unwrap();
        assert_eq!(plan.engine, EngineKind::Mysql);
        assert!(!plan.ownership);
        assert!(plan.clean);
        args.into = "ftp://u:hunter2@h/x".into();
        let e = resolve_restore(&args, None, &StorageOptions::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("--into: unsupported URL scheme"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        args.into = "redis://h".into();
        args.db = Some(String::new());
        assert_eq!(
            resolve_restore(&args, None, &StorageOptions::default())
                .unwrap_err()
                .to_string(),
            "--db must not be empty"
        );
    }

    #[test]
    fn s3_destinations_take_the_storage_keys() {
        let text = "[storage]\nto = \"s3://acme-x/team/runs/\"\nendpoint = \"http://127.0.0.1:9000\"\nsse = \"aws:kms\"\nsse_kms_key_id = \"k1\"\nchecksums = \"when_supported\"\npart_size = \"16MiB\"\nupload_concurrency = 2\n";
        let (to, options) = parse_storage(text, "c.toml", &no_env).unwrap();
        let Destination::S3(c) = resolve_destination(&to.unwrap(), &options).unwrap() else {
            panic!("not an S3 destination");
        };
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str()),
            ("acme-x", "team/runs")
        );
        assert_eq!(c.url(), "s3://acme-x/team/runs");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.sse, Some(Sse::Kms(Some("k1".into()))));
        assert_eq!(c.checksums, Checksums::WhenSupported);
        assert_eq!(c.part_size, Some(16 << 20));
        assert_eq!(c.upload_concurrency, 2);
        let plain = resolve_destination("s3://bucket", &StorageOptions::default()).unwrap();
        let Destination::S3(c) = plain else { panic!() };
        assert_eq!(
            c.checksums,
            Checksums::WhenRequired,
            "the default works everywhere"
        );
        assert_eq!(c.upload_concurrency, s3::DEFAULT_UPLOAD_CONCURRENCY);
        assert!(resolve_destination("s3://Bad_Bucket/x", &StorageOptions::default()).is_err());
        assert!(resolve_destination("s3://bucket/../x", &StorageOptions::default()).is_err());
        assert!(resolve_destination("gs://bucket", &StorageOptions::default()).is_err());
        for (key, value) in [
            ("part_size", "\"1MiB\""),
            ("checksums", "\"always\""),
            ("upload_concurrency", "0"),
            ("sse", "\"DES\""),
        ] {
            let text = format!("[storage]\n{key} = {value}\n");
            let e = parse_storage(&text, "c.toml", &no_env).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("c.toml, key storage.{key}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(parse_age("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_age("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_age("2h").unwrap().as_secs(), 7200);
        assert_eq!(parse_age("1d").unwrap().as_secs(), 86_400);
        assert!(parse_age("2").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("3 weeks").is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("800G"), Ok(800 << 30));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn resolve_dump_rules() {
        let mut args = DumpArgs::default();
        assert!(
            resolve_dump(&args, None, "exporter.toml", 2)
                .unwrap_err()
                .to_string()
                .starts_with("nothing to dump")
        );
        args.all = true;
        assert!(
            resolve_dump(&args, None, "exporter.toml", 2)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        args.all = false;
        args.urls = vec!["postgres://h/x".into(), "postgresql://other/x".into()];
        assert!(
            resolve_dump(&args, None, "exporter.toml", 2)
                .unwrap_err()
                .to_string()
                .contains("both be written as \"x\"")
        );
        args.urls = vec!["postgres://h/x".into()];
        args.compression_level = Some(99);
        assert!(
            resolve_dump(&args, None, "exporter.toml", 2)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        args.compression_level = None;
        let plan = resolve_dump(&args, None, "exporter.toml", 2).unwrap();
        assert_eq!(
            plan.destination,
            Destination::Local(PathBuf::from("./archives"))
        );
        assert_eq!(plan.jobs, 2);
        assert_eq!(plan.compression_level, 3);
        assert_eq!(plan.databases[0].name, "x");
        let config = Config {
            to: Some("/cfg".into()),
            databases: vec![],
            storage: StorageOptions::default(),
        };
        args.to = Some("/flag".into());
        let plan = resolve_dump(&args, Some(&config), "exporter.toml", 2).unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/flag")));
    }
}
