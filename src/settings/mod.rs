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
//! `${VAR}` in any value is replaced by the environment variable `VAR` (see [`config`]).
//!
//! One `resolve_*` function per command takes that command's clap type ([`crate::cli`]) as it
//! is — no mirror structs — and owns every value resolution: sizes, ages, URLs, the
//! destination and its S3 keys, the verification level. The result is a plan the command runs
//! as given; nothing downstream reads arguments, the environment or the config file.

pub mod config;
pub mod platform;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use exporter_contract::{DatabaseUrl, DefinerPolicy};
use secrecy::SecretString;

use crate::archive::manifest::PlatformDatabase;
use crate::cli::{
    CheckCmd, DefinerArg, DumpCmd, LevelArg, ListCmd, LoginCmd, RedisFormatArg, RequireLevelArg,
    RestoreCmd, TeardownCmd, TunnelCmd, UploadsCmd, VerifyCmd,
};
use crate::engines::{ConnectionDefaults, EngineKind, EngineOptions};
use crate::storage::s3::{self, S3Config};
use crate::verify::Level;

pub use config::{
    Config, ConfigReadError, PlatformConfig, PlatformKind, StorageOptions, parse_config,
    parse_storage,
};
pub use platform::{
    BackupChoice, PlatformInventory, PlatformRead, PlatformSettings, PlatformTarget, PlatformVars,
    SkippedDatabase, platform_label, resolve_platform,
};
pub use values::{
    name_from_database, parse_age, parse_size, parse_url, progress_interval, validate_name,
};

/// Default compression level (zstd's own default).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;

/// Highest compression level accepted (zstd's non-"ultra" range).
pub const MAX_COMPRESSION_LEVEL: i32 = 19;

/// Default destination when neither `--to` nor `[storage] to` is given.
pub const DEFAULT_DESTINATION: &str = "./archives";

/// Where hints send a user to write a config file. An installed binary has no example
/// file beside it, so hints name the README's section rather than a path in the source tree.
pub const CONFIG_DOCS: &str = "README, section \"Configuration\"";

/// The hint of `exporter list` without a config file, `--to` or a platform environment.
const NO_CONFIG_HINT_LIST: &str = "create exporter.toml (README, section \"Configuration\"), \
     pass --config FILE, --to DEST to list the unfinished runs of a destination, or \
     --environment HANDLE to list a platform environment";

/// Default `--stall-timeout`: a database whose dump moves no data for this long fails.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(600);

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

/// One database named by URL: a `[[databases]]` entry, a URL on the command line, a
/// `--scratch` server, a restore's `--into`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTarget {
    /// Payload file stem, unique within a run.
    pub name: String,
    /// Connection URL (redacted when displayed).
    pub url: DatabaseUrl,
    /// The engine chosen for the URL's scheme.
    pub engine: EngineKind,
}

/// One database to dump: named by URL, or a database of a platform environment (opened
/// through a tunnel by the endpoint step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A URL.
    Url(UrlTarget),
    /// A platform database (resolved from the environment's inventory after settings).
    Platform(Box<PlatformTarget>),
}

impl DatabaseTarget {
    /// The payload file stem, unique within a run.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Url(t) => &t.name,
            Self::Platform(t) => &t.name,
        }
    }

    /// The engine that dumps it.
    #[must_use]
    pub fn engine(&self) -> EngineKind {
        match self {
            Self::Url(t) => t.engine,
            Self::Platform(t) => t.engine,
        }
    }

    /// Where it is, never with a password: the redacted URL, or `aptible://<env>/<handle>`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Url(t) => t.url.redacted(),
            Self::Platform(t) => t.describe(),
        }
    }

    /// The platform record, for a platform database.
    #[must_use]
    pub fn platform(&self) -> Option<&PlatformDatabase> {
        match self {
            Self::Url(_) => None,
            Self::Platform(t) => Some(&t.record),
        }
    }
}

impl From<UrlTarget> for DatabaseTarget {
    fn from(t: UrlTarget) -> Self {
        Self::Url(t)
    }
}

/// Where the inventory came from, as recorded in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventorySource {
    /// `[[databases]]` of a config file.
    Config,
    /// URLs given on the command line.
    Urls,
    /// A platform environment.
    Platform(PlatformKind),
}

impl InventorySource {
    /// `config`, `urls` or the platform's name (`aptible`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Urls => "urls",
            Self::Platform(kind) => kind.as_str(),
        }
    }
}

/// A validated dump plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpPlan {
    /// Destination of the run.
    pub destination: Destination,
    /// Databases in the order given. With a platform inventory this is empty until the
    /// inventory step ([`crate::platform::inventory`]) fills it from the environment.
    pub databases: Vec<DatabaseTarget>,
    /// Platform databases deliberately not dumped (`--skip-unsupported`), filled by the
    /// inventory step; recorded in the manifest as `skipped`.
    pub skipped: Vec<SkippedDatabase>,
    /// The platform environment `--all` reads, when the inventory is a platform's.
    pub platform: Option<PlatformInventory>,
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
    /// The environment's defaults for connection parameters (libpq's `PGSSLMODE`, …), applied
    /// by the endpoint step ([`crate::endpoint::UrlEndpoints`]).
    pub connections: ConnectionDefaults,
    /// `--resume`: continue the newest unfinished run of the same inventory.
    pub resume: bool,
    /// `--stall-timeout`: how long a database's dump may move no data; `None`: never fails
    /// for it.
    pub stall_timeout: Option<Duration>,
    /// `--verify LEVEL`: verify each archive as soon as it is committed, as this plan says
    /// (its `run` is `None`: the run the dump creates); `None` without `--verify`.
    pub verify: Option<VerifyPlan>,
    /// Check every database and the destination before the dump ([`crate::check`]); off with
    /// `--no-check`.
    pub check: bool,
}

/// The config file as the caller found it: settings reads no file itself.
#[derive(Debug, Clone, Copy)]
pub enum ConfigSource<'a> {
    /// No config file: the default `exporter.toml` does not exist (a file named with
    /// `--config` that cannot be read is the caller's error).
    Missing {
        /// The name used for it in messages.
        name: &'a str,
    },
    /// The file's text.
    Text {
        /// The name used for it in messages.
        name: &'a str,
        /// Its contents.
        text: &'a str,
    },
}

impl ConfigSource<'_> {
    /// The name of the file in messages.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Missing { name } | Self::Text { name, .. } => name,
        }
    }

    /// The whole file, parsed (`None` when there is none).
    fn parse(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Config>, SettingsError> {
        match self {
            Self::Missing { .. } => Ok(None),
            Self::Text { name, text } => parse_config(text, name, env).map(Some),
        }
    }

    /// `[storage]` only: `to` and the other keys (the databases' variables need not be set).
    fn storage(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Option<String>, StorageOptions), SettingsError> {
        match self {
            Self::Missing { .. } => Ok((None, StorageOptions::default())),
            Self::Text { name, text } => parse_storage(text, name, env),
        }
    }
}

/// The environment as a lookup function (settings never reads `std::env` itself).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Resolve `exporter dump`: its arguments merged with the config file into a plan.
///
/// `cores` is the machine's parallelism (the default of `--jobs`); `environment` is the global
/// `--environment` flag. With a platform (`[platform]` or `--environment`) and `--all`, the
/// plan names the environment and its databases are left for the inventory step.
///
/// # Errors
///
/// [`SettingsError`]: neither `--all` nor URLs, both, `--all` without a config or platform,
/// an invalid URL or one its engine refuses without I/O, duplicate derived names, a
/// compression level out of range, `--jobs 0`, an invalid `--expected-size` (or one given for
/// a local destination), platform flags without a platform, `[platform]` beside
/// `[[databases]]` without `--environment`.
pub fn resolve_dump(
    cmd: &DumpCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    cores: usize,
    environment: Option<&str>,
) -> Result<DumpPlan, SettingsError> {
    // A dump of URLs given on the command line reads only `[storage]` of the config: its
    // databases (and their `${VAR}`s, which need not be set) are not used.
    let parsed = if cmd.all {
        config.parse(env)?
    } else {
        let (to, storage) = config.storage(env)?;
        Some(Config {
            to,
            storage,
            ..Config::default()
        })
    };
    let platform = dump_platform(cmd, parsed.as_ref(), config.name(), env, environment)?;
    let (databases, inventory) = match &platform {
        Some(p) => (Vec::new(), InventorySource::Platform(p.settings.kind)),
        None => dump_databases(cmd, parsed.as_ref(), config.name())?,
    };
    let connections = ConnectionDefaults::from_env(env);
    let level = cmd.compression_level.unwrap_or(DEFAULT_COMPRESSION_LEVEL);
    if !(1..=MAX_COMPRESSION_LEVEL).contains(&level) {
        return Err(SettingsError::new(format!(
            "--compression-level {level} is out of range 1..={MAX_COMPRESSION_LEVEL}"
        )));
    }
    let jobs = resolve_jobs(cmd.jobs, cores)?;
    let engine_options = EngineOptions {
        redis_rdb: cmd.redis_format == RedisFormatArg::Rdb,
        strip_definers: cmd.strip_definers,
    };
    // Each adapter checks its URL without I/O, so parameter mistakes are usage errors (with
    // the environment's defaults, as the endpoint step will apply them: a bad PGSSLMODE too).
    for db in &databases {
        let DatabaseTarget::Url(db) = db else {
            continue;
        };
        db.engine
            .source(&db.engine.endpoint(&db.url, &connections), engine_options)
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
    let to = cmd
        .to
        .clone()
        .or_else(|| parsed.as_ref().and_then(|c| c.to.clone()))
        .unwrap_or_else(|| DEFAULT_DESTINATION.to_owned());
    let default_options = StorageOptions::default();
    let storage = parsed.as_ref().map_or(&default_options, |c| &c.storage);
    let destination = dump_destination(&to, storage, cmd.expected_size.as_deref())?;
    let stall_timeout = match cmd.stall_timeout.as_deref() {
        None => Some(DEFAULT_STALL_TIMEOUT),
        Some(text) => parse_stall_timeout(text)?,
    };
    let verify = dump_verify(cmd, &destination, &databases, &connections, jobs)?;
    Ok(DumpPlan {
        destination,
        databases,
        skipped: Vec::new(),
        platform,
        compression_level: level,
        jobs,
        ownership: !cmd.no_owner,
        engine_options,
        inventory,
        connections,
        resume: cmd.resume,
        stall_timeout,
        verify,
        check: !cmd.no_check,
    })
}

/// `--stall-timeout`: an age (`90s`, `10m`, `1h`), or `0` / `off` for none.
fn parse_stall_timeout(text: &str) -> Result<Option<Duration>, SettingsError> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let timeout = parse_age(text).map_err(|m| {
        SettingsError::new(format!("--stall-timeout: {m}"))
            .hint("e.g. --stall-timeout 10m, or off to wait for ever")
    })?;
    Ok((!timeout.is_zero()).then_some(timeout))
}

/// `dump --verify LEVEL [--scratch URL…]`: the verification each archive gets as soon as it
/// is committed, as the plan `exporter verify --level LEVEL --scratch URL…` of the new run
/// would be (its `run` is the run the dump creates; MySQL definers rewritten to the scratch
/// account, `verify`'s default). Whether every engine has a scratch server is checked by the
/// dump before its first database (a platform's engines are known only then).
///
/// # Errors
///
/// [`SettingsError`]: `--scratch` without `--verify restore`; `--verify restore` without
/// `--scratch`, with `--redis-format rdb`, or of a MySQL URL without a database (archives
/// that level cannot check, refused before anything is dumped); a bad `--scratch` URL.
fn dump_verify(
    cmd: &DumpCmd,
    destination: &Destination,
    databases: &[DatabaseTarget],
    connections: &ConnectionDefaults,
    jobs: usize,
) -> Result<Option<VerifyPlan>, SettingsError> {
    let level = cmd.verify.map(Level::from);
    if !cmd.scratch.is_empty() && level != Some(Level::Restore) {
        return Err(SettingsError::new(match level {
            Some(level) => format!(
                "--scratch is only used with --verify restore (the level is {})",
                level.as_str()
            ),
            None => "--scratch is only used with --verify restore".to_owned(),
        })
        .hint("add --verify restore, or leave out --scratch"));
    }
    let Some(level) = level else {
        return Ok(None);
    };
    if level == Level::Restore {
        if cmd.scratch.is_empty() {
            return Err(SettingsError::new(
                "--verify restore needs a --scratch server to restore each archive into",
            )
            .hint(
                "add --scratch URL per engine: a server where exporter may create and drop databases \
                 (postgres://postgres@host:5432/postgres, mysql://root@host:3306, redis://host:6380 of an empty Redis)",
            ));
        }
        if cmd.redis_format == RedisFormatArg::Rdb {
            return Err(SettingsError::new(
                "--verify restore cannot check RDB archives (--redis-format rdb)",
            )
            .hint(
                "dump with --redis-format resp (the default), or verify with --verify decompress",
            ));
        }
        for db in databases {
            if let DatabaseTarget::Url(db) = db
                && db.engine == EngineKind::Mysql
                && db.url.database().is_none()
            {
                return Err(SettingsError::new(format!(
                    "--verify restore cannot check database {} ({}): an archive of every schema \
                     of a MySQL server creates its own databases, which one scratch database \
                     cannot hold",
                    db.name, db.url
                ))
                .hint("name the database in the URL (mysql://host:3306/DB), or verify with --verify decompress"));
            }
        }
    }
    Ok(Some(VerifyPlan {
        destination: destination.clone(),
        run: None,
        level,
        scratch: scratch_servers(&cmd.scratch)?,
        definer: DefinerPolicy::CurrentUser,
        tablespaces: false,
        jobs,
        connections: connections.clone(),
    }))
}

/// Resolve `exporter check`: exactly the plan `exporter dump` would run with the same
/// inventory arguments ([`resolve_dump`]: config, URLs, `NAME=URL`, `--all`, a platform
/// environment, `--to`), so the check sees what the dump will see.
///
/// # Errors
///
/// As [`resolve_dump`].
pub fn resolve_check(
    cmd: &CheckCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    cores: usize,
    environment: Option<&str>,
) -> Result<DumpPlan, SettingsError> {
    let dump = DumpCmd {
        all: cmd.all,
        urls: cmd.urls.clone(),
        to: cmd.to.clone(),
        jobs: cmd.jobs,
        redis_format: cmd.redis_format,
        skip_unsupported: cmd.skip_unsupported,
        from_backup: cmd.from_backup.clone(),
        include_orphaned_backups: cmd.include_orphaned_backups,
        credential_type: cmd.credential_type.clone(),
        json: cmd.json,
        ..DumpCmd::default()
    };
    resolve_dump(&dump, config, env, cores, environment)
}

/// The platform inventory a dump reads, if any: `--all` with `[platform]` or `--environment`.
/// The platform flags need it.
fn dump_platform(
    cmd: &DumpCmd,
    config: Option<&Config>,
    config_name: &str,
    env: Env<'_>,
    environment: Option<&str>,
) -> Result<Option<PlatformInventory>, SettingsError> {
    let settings = resolve_platform(config.and_then(|c| c.platform.as_ref()), environment, env)?;
    let flags = [
        (cmd.skip_unsupported, "--skip-unsupported"),
        (cmd.from_backup.is_some(), "--from-backup"),
        (cmd.keep_restored, "--keep-restored"),
        (cmd.include_orphaned_backups, "--include-orphaned-backups"),
        (cmd.credential_type.is_some(), "--credential-type"),
    ];
    let given = flags.iter().find(|(on, _)| *on).map(|(_, name)| *name);
    let Some(settings) = settings.filter(|_| cmd.all) else {
        return match given {
            Some(flag) => Err(SettingsError::new(format!(
                "{flag} applies to `dump --all` of a platform environment"
            ))
            .hint("add [platform] to the config or pass --environment HANDLE, with --all")),
            None => Ok(None),
        };
    };
    if environment.is_none() && config.is_some_and(|c| !c.databases.is_empty()) {
        return Err(SettingsError::new(format!(
            "{config_name} has both [platform] and [[databases]]: `dump --all` takes one inventory"
        ))
        .hint(
            "pass --environment HANDLE to dump the platform's databases, or remove one of them",
        ));
    }
    if cmd.keep_restored && cmd.from_backup.is_none() && !cmd.include_orphaned_backups {
        return Err(SettingsError::new(
            "--keep-restored keeps databases restored from backups, and nothing is restored \
             without --from-backup or --include-orphaned-backups",
        ));
    }
    if cmd
        .credential_type
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(SettingsError::new("--credential-type must not be empty"));
    }
    Ok(Some(PlatformInventory {
        settings,
        from_backup: cmd
            .from_backup
            .as_deref()
            .map(BackupChoice::parse)
            .transpose()?,
        include_orphaned_backups: cmd.include_orphaned_backups,
        skip_unsupported: cmd.skip_unsupported,
        keep_restored: cmd.keep_restored,
        credential_type: cmd.credential_type.clone(),
    }))
}

/// The databases a dump names: the config's with `--all`, else the URLs given.
fn dump_databases(
    cmd: &DumpCmd,
    config: Option<&Config>,
    config_name: &str,
) -> Result<(Vec<DatabaseTarget>, InventorySource), SettingsError> {
    match (cmd.all, cmd.urls.is_empty()) {
        (true, false) => Err(
            SettingsError::new("--all and database URLs cannot be combined")
                .hint("use `exporter dump --all` for the config's databases, or name URLs alone"),
        ),
        (false, true) => Err(SettingsError::new(
            "nothing to dump: give --all or one or more database URLs",
        )
        .hint("`exporter dump --all` dumps every database of exporter.toml")),
        (true, true) => {
            let config = config.ok_or_else(|| {
                SettingsError::new(format!("--all needs a config file or a platform environment, and {config_name} does not exist"))
                    .hint(format!("create exporter.toml ({CONFIG_DOCS}), pass --config FILE, or pass --environment HANDLE"))
            })?;
            if config.databases.is_empty() {
                return Err(SettingsError::new(format!(
                    "{config_name} lists no [[databases]] and no [platform]"
                ))
                .hint("add [[databases]], or [platform] with the environment to export"));
            }
            Ok((
                config
                    .databases
                    .iter()
                    .cloned()
                    .map(DatabaseTarget::Url)
                    .collect(),
                InventorySource::Config,
            ))
        }
        (false, false) => {
            let mut dbs = Vec::new();
            // Lower-cased name → (URL index, name as given).
            let mut seen: BTreeMap<String, (usize, String)> = BTreeMap::new();
            for (i, text) in cmd.urls.iter().enumerate() {
                let (given, text) = split_named_url(text);
                let (url, engine) = parse_url(text).map_err(|e| SettingsError {
                    message: format!("argument {} (URL #{}): {}", i + 1, i + 1, e.message),
                    hint: e.hint,
                })?;
                let name = match given {
                    Some(name) => {
                        validate_name(name).map_err(|m| {
                            SettingsError::new(format!("argument {} (URL #{}): {m}", i + 1, i + 1))
                        })?;
                        name.to_owned()
                    }
                    None => target_name(&url),
                };
                // Compared without case: the name becomes a file name (see config.rs).
                if let Some((prev, prev_name)) =
                    seen.insert(name.to_ascii_lowercase(), (i, name.clone()))
                {
                    return Err(SettingsError::new(name_clash(prev + 1, &prev_name, i + 1, &name))
                    .hint(format!(
                        "name them: `exporter dump {name}-1=URL {name}-2=URL`, or give them \
                         distinct `name` keys in exporter.toml"
                    )));
                }
                dbs.push(DatabaseTarget::Url(UrlTarget { name, url, engine }));
            }
            Ok((dbs, InventorySource::Urls))
        }
    }
}

/// The error text of two URLs (numbered from 1) whose archive names are equal ignoring case.
fn name_clash(first: usize, first_name: &str, second: usize, second_name: &str) -> String {
    if first_name == second_name {
        format!("URLs #{first} and #{second} would both be written as {first_name:?}")
    } else {
        format!(
            "URLs #{first} and #{second} would be written as {first_name:?} and \
             {second_name:?}, names that differ only in case: archive names are compared \
             ignoring case, as a case-insensitive file system (macOS, Windows) would make \
             them one file"
        )
    }
}

/// `NAME=URL` on the command line: the name and the URL, or no name when the text before the
/// first `=` is not a plain name followed by a URL (`=` may well appear in a URL's query).
fn split_named_url(text: &str) -> (Option<&str>, &str) {
    match text.split_once('=') {
        Some((name, url))
            if !name.is_empty() && url.contains("://") && !name.contains([':', '/', '?', '@']) =>
        {
            (Some(name), url)
        }
        _ => (None, text),
    }
}

/// The name of a database given by URL: its database, or its host when the path is empty.
fn target_name(url: &DatabaseUrl) -> String {
    name_from_database(&url.database().unwrap_or_else(|| url.host().to_owned()))
}

/// A dump's destination, with `--expected-size` (S3 only) checked against the part size.
fn dump_destination(
    to: &str,
    storage: &StorageOptions,
    expected_size: Option<&str>,
) -> Result<Destination, SettingsError> {
    let expected_size = expected_size
        .map(|t| parse_size(t).map_err(|m| SettingsError::new(format!("--expected-size: {m}"))))
        .transpose()?;
    let mut destination = resolve_destination(to, storage)?;
    if let Destination::S3(c) = &mut destination {
        c.expected_size = expected_size;
        // Check the part size against the expected size now: a usage error before any
        // database is touched, not a failure in the middle of the upload.
        s3::choose_part_size(c.part_size, c.expected_size).map_err(|m| {
            SettingsError::new(format!("--expected-size: {m}"))
                .hint("S3 objects are at most 5 TiB; an archive that large must go elsewhere")
        })?;
    } else if expected_size.is_some() {
        return Err(SettingsError::new(
            "--expected-size sizes S3 upload parts; the destination is a local directory",
        )
        .hint("leave out --expected-size, or dump to s3://bucket/prefix"));
    }
    Ok(destination)
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
    pub scratch: Vec<UrlTarget>,
    /// MySQL `DEFINER=` clauses in scratch restores (`--definer`; default: rewritten to the
    /// scratch account, so a definer account missing on the scratch server cannot fail the
    /// proof).
    pub definer: DefinerPolicy,
    /// Apply PostgreSQL tablespace assignments in scratch restores (`--tablespaces`; default
    /// off: the scratch server need not have the source's tablespaces to prove the data).
    pub tablespaces: bool,
    /// Connections per scratch restore and fingerprint pass (`--jobs`, default the cores).
    pub jobs: usize,
    /// The environment's connection defaults, as in [`DumpPlan::connections`].
    pub connections: ConnectionDefaults,
}

impl VerifyPlan {
    /// The scratch server given for `engine`, if any.
    #[must_use]
    pub fn scratch_for(&self, engine: EngineKind) -> Option<&UrlTarget> {
        self.scratch.iter().find(|s| s.engine == engine)
    }
}

impl From<DefinerArg> for DefinerPolicy {
    fn from(arg: DefinerArg) -> Self {
        match arg {
            DefinerArg::Keep => Self::Keep,
            DefinerArg::CurrentUser => Self::CurrentUser,
        }
    }
}

impl From<LevelArg> for Level {
    fn from(arg: LevelArg) -> Self {
        match arg {
            LevelArg::Checksum => Self::Checksum,
            LevelArg::Decompress => Self::Decompress,
            LevelArg::Restore => Self::Restore,
        }
    }
}

/// Resolve `exporter verify` with the config's `[storage]` (`to` and the S3 keys).
///
/// # Errors
///
/// [`SettingsError`]: `--scratch` without `--level restore`, a `--scratch` value that is not a
/// database URL of a known engine, two `--scratch` URLs of the same engine (the choice would be
/// ambiguous), a bad destination or `[storage]`. Whether every engine of the run has a scratch
/// server can only be known from its manifest, so `verify` checks that itself before restoring
/// anything.
pub fn resolve_verify(
    cmd: &VerifyCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    cores: usize,
) -> Result<VerifyPlan, SettingsError> {
    let (config_to, storage) = config.storage(env)?;
    let level = Level::from(cmd.level);
    if !cmd.scratch.is_empty() && level != Level::Restore {
        return Err(SettingsError::new(format!(
            "--scratch is only used with --level restore (the level is {})",
            level.as_str()
        ))
        .hint("add --level restore, or leave out --scratch"));
    }
    let scratch = scratch_servers(&cmd.scratch)?;
    let to = cmd
        .to
        .as_deref()
        .or(config_to.as_deref())
        .unwrap_or(DEFAULT_DESTINATION);
    Ok(VerifyPlan {
        destination: resolve_destination(to, &storage)?,
        run: cmd.run.clone(),
        level,
        scratch,
        definer: cmd.definer.into(),
        tablespaces: cmd.tablespaces,
        jobs: resolve_jobs(cmd.jobs, cores)?,
        connections: ConnectionDefaults::from_env(env),
    })
}

/// `--jobs`: at least 1, default the machine's cores.
fn resolve_jobs(jobs: Option<usize>, cores: usize) -> Result<usize, SettingsError> {
    match jobs {
        Some(0) => Err(SettingsError::new("--jobs must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(cores.max(1)),
    }
}

/// The `--scratch` URLs of `verify` and `dump --verify restore`: at most one per engine, a
/// Redis one without a `/N` path.
fn scratch_servers(urls: &[String]) -> Result<Vec<UrlTarget>, SettingsError> {
    let mut scratch: Vec<UrlTarget> = Vec::with_capacity(urls.len());
    for (i, text) in urls.iter().enumerate() {
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
        if engine == EngineKind::Redis
            && let Some(db) = url.database()
        {
            // The archive's logical databases are restored under their own numbers into the
            // whole scratch server (checked empty first), so a /N path cannot be honoured.
            return Err(SettingsError::new(format!(
                "--scratch URL #{}: a Redis scratch server is a whole server, not logical database /{db}",
                i + 1
            ))
            .hint("give the scratch server without a /N path, e.g. redis://127.0.0.1:6380"));
        }
        scratch.push(UrlTarget {
            name: format!("scratch-{engine}"),
            url,
            engine,
        });
    }
    Ok(scratch)
}

/// A validated restore plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorePlan {
    /// Where runs are looked up by id.
    pub destination: Destination,
    /// The run: an id under the destination or a path to a run directory.
    pub run: String,
    /// The target database (its URL redacted when displayed).
    pub into: UrlTarget,
    /// The manifest entry to restore; `None` means the run's only one.
    pub db: Option<String>,
    /// Drop what is already in the target first.
    pub clean: bool,
    /// Apply ownership and privilege statements.
    pub ownership: bool,
    /// MySQL `DEFINER=` clauses (`--definer`): as written, or rewritten to the restoring
    /// account.
    pub definer: DefinerPolicy,
    /// Apply PostgreSQL tablespace assignments (`--no-tablespaces` turns them off).
    pub tablespaces: bool,
    /// Connections restoring at once (`--jobs`, default the cores).
    pub jobs: usize,
    /// The environment's connection defaults, as in [`DumpPlan::connections`].
    pub connections: ConnectionDefaults,
}

/// Resolve `exporter restore` with the config's `[storage]` (`to` and the S3 keys).
///
/// # Errors
///
/// [`SettingsError`]: an empty RUN or `--db`, an `--into` value that is not a database URL of
/// a known engine, or one its engine refuses without I/O (`Target::validate`), a bad
/// destination or `[storage]`. The message never repeats the URL's password.
pub fn resolve_restore(
    cmd: &RestoreCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    cores: usize,
) -> Result<RestorePlan, SettingsError> {
    let (config_to, storage) = config.storage(env)?;
    if cmd.run.trim().is_empty() {
        return Err(SettingsError::new("RUN must not be empty")
            .hint("give a run id under the destination, or a path to a run directory"));
    }
    if cmd.db.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err(SettingsError::new("--db must not be empty"));
    }
    let (url, engine) = parse_url(&cmd.into).map_err(|e| SettingsError {
        message: format!("--into: {}", e.message),
        hint: e.hint,
    })?;
    // A PostgreSQL URL without a database connects to `postgres`: a restore there would load
    // the archive into the server's maintenance database, which `--into` never means.
    if engine == EngineKind::Postgres && url.database().is_none() {
        return Err(SettingsError::new(format!(
            "--into {url}: name the database to restore into (postgres://user@host:5432/DATABASE)"
        ))
        .hint("create an empty database first (createdb NAME) and name it in the URL"));
    }
    let connections = ConnectionDefaults::from_env(env);
    engine
        .target(&engine.endpoint(&url, &connections))
        .validate()
        .map_err(|e| SettingsError::new(format!("--into {url}: {}", e.message())))?;
    let to = cmd
        .to
        .as_deref()
        .or(config_to.as_deref())
        .unwrap_or(DEFAULT_DESTINATION);
    Ok(RestorePlan {
        destination: resolve_destination(to, &storage)?,
        run: cmd.run.clone(),
        into: UrlTarget {
            name: target_name(&url),
            url,
            engine,
        },
        db: cmd.db.clone(),
        clean: cmd.clean,
        ownership: !cmd.no_owner,
        definer: cmd.definer.into(),
        tablespaces: !cmd.no_tablespaces,
        jobs: resolve_jobs(cmd.jobs, cores)?,
        connections,
    })
}

/// A validated `exporter list`: the config's databases, or a platform environment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlan {
    /// The databases, in config order (empty with a platform).
    pub databases: Vec<UrlTarget>,
    /// The config file the databases come from, as named in messages; `None` when there is
    /// none (`list --to DEST` alone lists only the destination's unfinished runs).
    pub config: Option<String>,
    /// The destination whose unfinished runs are shown (`--to`, `[storage] to`, else
    /// [`DEFAULT_DESTINATION`]).
    pub destination: Destination,
    /// The platform environment to list, read by the inventory step.
    pub platform: Option<PlatformInventory>,
    /// The environment's connection defaults, as in [`DumpPlan::connections`] (the TLS mode
    /// column shows them).
    pub connections: ConnectionDefaults,
}

/// Resolve `exporter list`: the platform environment (`[platform]` or `--environment`), else
/// the whole config file.
///
/// # Errors
///
/// [`SettingsError`] for an invalid config, or none at all and no platform, or platform flags
/// without a platform.
pub fn resolve_list(
    cmd: &ListCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    environment: Option<&str>,
) -> Result<ListPlan, SettingsError> {
    let name = config.name().to_owned();
    let parsed = config.parse(env)?;
    let connections = ConnectionDefaults::from_env(env);
    let (config_to, storage) = config.storage(env)?;
    let destination = resolve_destination(
        cmd.to
            .as_deref()
            .or(config_to.as_deref())
            .unwrap_or(DEFAULT_DESTINATION),
        &storage,
    )?;
    let settings = resolve_platform(
        parsed.as_ref().and_then(|c| c.platform.as_ref()),
        environment,
        env,
    )?;
    if let Some(settings) = settings {
        return Ok(ListPlan {
            databases: Vec::new(),
            config: parsed.is_some().then_some(name),
            destination,
            platform: Some(PlatformInventory {
                settings,
                from_backup: cmd
                    .from_backup
                    .as_deref()
                    .map(BackupChoice::parse)
                    .transpose()?,
                include_orphaned_backups: cmd.include_orphaned_backups,
                skip_unsupported: false,
                keep_restored: false,
                credential_type: None,
            }),
            connections,
        });
    }
    if cmd.from_backup.is_some() || cmd.include_orphaned_backups {
        return Err(SettingsError::new(
            "--from-backup and --include-orphaned-backups apply to a platform environment",
        )
        .hint("add [platform] to the config or pass --environment HANDLE"));
    }
    let (databases, config) = match parsed {
        Some(config) => (config.databases, Some(name)),
        // `list --to DEST` without a config: no inventory, the destination's unfinished runs.
        None if cmd.to.is_some() => (Vec::new(), None),
        None => {
            return Err(SettingsError::new(format!(
                "nothing to list: there is no config file ({name} does not exist)"
            ))
            .hint(NO_CONFIG_HINT_LIST));
        }
    };
    Ok(ListPlan {
        databases,
        config,
        destination,
        platform: None,
        connections,
    })
}

/// A validated `exporter login`.
#[derive(Debug)]
pub struct LoginPlan {
    /// The platform (only Aptible has a login).
    pub kind: PlatformKind,
    /// The platform's variables (roots, where the token file is).
    pub vars: PlatformVars,
    /// `--email`, else `APTIBLE_USERNAME`; `None`: ask on the terminal.
    pub email: Option<String>,
    /// `APTIBLE_PASSWORD`; `None`: `--password-stdin` or ask on the terminal.
    pub password: Option<SecretString>,
    /// Read the password from standard input.
    pub password_stdin: bool,
    /// `--otp-token`, else `APTIBLE_OTP_TOKEN`.
    pub otp_token: Option<SecretString>,
    /// `--lifetime`; `None` takes the platform CLI's defaults.
    pub lifetime: Option<Duration>,
}

/// Resolve `exporter login`: the flags and the variables `APTIBLE_USERNAME`,
/// `APTIBLE_PASSWORD` (as go-deploy and Terraform read them, aptible-api.md §1.5) and
/// `APTIBLE_OTP_TOKEN`.
///
/// # Errors
///
/// [`SettingsError`] for an empty email, an invalid or zero `--lifetime`, `--password-stdin`
/// beside `APTIBLE_PASSWORD`.
pub fn resolve_login(cmd: &LoginCmd, env: Env<'_>) -> Result<LoginPlan, SettingsError> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let email = match &cmd.email {
        Some(e) if e.trim().is_empty() => {
            return Err(SettingsError::new("--email must not be empty"));
        }
        Some(e) => Some(e.trim().to_owned()),
        None => non_empty(env("APTIBLE_USERNAME")).map(|e| e.trim().to_owned()),
    };
    let password = non_empty(env("APTIBLE_PASSWORD")).map(SecretString::from);
    if password.is_some() && cmd.password_stdin {
        return Err(SettingsError::new(
            "--password-stdin and APTIBLE_PASSWORD both give the password",
        )
        .hint("unset APTIBLE_PASSWORD, or leave out --password-stdin"));
    }
    let otp_token = cmd
        .otp_token
        .clone()
        .or_else(|| env("APTIBLE_OTP_TOKEN"))
        .filter(|s| !s.trim().is_empty())
        .map(|s| SecretString::from(s.trim().to_owned()));
    let lifetime = cmd
        .lifetime
        .as_deref()
        .map(|t| {
            parse_age(t)
                .map_err(|m| SettingsError::new(format!("--lifetime: {m}")))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(SettingsError::new("--lifetime must be longer than 0"))
                    } else {
                        Ok(d)
                    }
                })
        })
        .transpose()?;
    Ok(LoginPlan {
        kind: PlatformKind::Aptible,
        vars: PlatformVars::from_env(PlatformKind::Aptible, env),
        email,
        password,
        password_stdin: cmd.password_stdin,
        otp_token,
        lifetime,
    })
}

/// A validated `exporter tunnel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPlan {
    /// The platform and environment.
    pub platform: PlatformSettings,
    /// The database's handle.
    pub handle: String,
    /// `--port`.
    pub port: Option<u16>,
    /// `--credential-type`.
    pub credential_type: Option<String>,
    /// `--show-password`.
    pub show_password: bool,
}

/// Resolve `exporter tunnel`.
///
/// # Errors
///
/// [`SettingsError`] without a platform environment, for an empty handle or credential type,
/// or port 0.
pub fn resolve_tunnel(
    cmd: &TunnelCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    environment: Option<&str>,
) -> Result<TunnelPlan, SettingsError> {
    let parsed = config.parse(env)?;
    let platform = resolve_platform(
        parsed.as_ref().and_then(|c| c.platform.as_ref()),
        environment,
        env,
    )?
    .ok_or_else(|| {
        SettingsError::new("`exporter tunnel` needs a platform environment")
            .hint("pass --environment HANDLE, or add [platform] to the config")
    })?;
    if cmd.handle.trim().is_empty() {
        return Err(SettingsError::new("HANDLE must not be empty"));
    }
    if cmd.port == Some(0) {
        return Err(SettingsError::new("--port must be between 1 and 65535")
            .hint("leave out --port for a free one"));
    }
    if cmd
        .credential_type
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(SettingsError::new("--credential-type must not be empty"));
    }
    Ok(TunnelPlan {
        platform,
        handle: cmd.handle.trim().to_owned(),
        port: cmd.port,
        credential_type: cmd.credential_type.clone(),
        show_password: cmd.show_password,
    })
}

/// A validated `exporter teardown`: which environment, where its archives are, and what the
/// gate requires of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeardownOptions {
    /// The platform environment to remove.
    pub platform: PlatformSettings,
    /// Where the runs that cover it are (every run under it is read).
    pub destination: Destination,
    /// Run the plan (`--apply`); otherwise only show it.
    pub apply: bool,
    /// The handle typed with `--confirm`; `None` asks on the terminal.
    pub confirm: Option<String>,
    /// The verification level each covering archive must have passed (`restore` unless
    /// downgraded with `--require-level decompress`).
    pub required_level: Level,
    /// How old a covering archive may be (`--max-age`, default 24 h).
    pub max_age: Duration,
    /// Handles of databases this tool cannot export whose loss the user accepts, in the order
    /// given, without duplicates.
    pub accept_unexported: Vec<String>,
}

/// Resolve `exporter teardown`: the platform environment (`[platform]` or `--environment`),
/// the destination (`--to`, `[storage] to`, else `./archives`), the level and age the gate
/// requires.
///
/// # Errors
///
/// [`SettingsError`]: no platform environment, `--confirm` without `--apply` or empty, an
/// invalid `--max-age` (or zero), an empty `--accept-unexported`, a bad destination.
pub fn resolve_teardown(
    cmd: &TeardownCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
    environment: Option<&str>,
) -> Result<TeardownOptions, SettingsError> {
    let parsed = config.parse(env)?;
    let (config_to, storage) = config.storage(env)?;
    let platform = resolve_platform(
        parsed.as_ref().and_then(|c| c.platform.as_ref()),
        environment,
        env,
    )?
    .ok_or_else(|| {
        SettingsError::new("`exporter teardown` needs a platform environment")
            .hint("pass --environment HANDLE, or add [platform] to the config")
    })?;
    if cmd.confirm.is_some() && !cmd.apply {
        return Err(SettingsError::new("--confirm is only used with --apply"));
    }
    if cmd.confirm.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(SettingsError::new("--confirm must not be empty")
            .hint("type the environment's handle: --confirm HANDLE"));
    }
    let max_age =
        parse_age(&cmd.max_age).map_err(|m| SettingsError::new(format!("--max-age: {m}")))?;
    if max_age.is_zero() {
        return Err(SettingsError::new("--max-age must be longer than 0")
            .hint("the default is 24h: an archive made within the last day"));
    }
    let mut accept_unexported: Vec<String> = Vec::new();
    for handle in &cmd.accept_unexported {
        let handle = handle.trim();
        if handle.is_empty() {
            return Err(SettingsError::new("--accept-unexported must not be empty"));
        }
        if !accept_unexported.iter().any(|h| h == handle) {
            accept_unexported.push(handle.to_owned());
        }
    }
    let to = cmd
        .to
        .as_deref()
        .or(config_to.as_deref())
        .unwrap_or(DEFAULT_DESTINATION);
    Ok(TeardownOptions {
        platform,
        destination: resolve_destination(to, &storage)?,
        apply: cmd.apply,
        // Exactly as typed: a confirmation is compared with the handle byte for byte.
        confirm: cmd.confirm.clone(),
        required_level: match cmd.require_level {
            RequireLevelArg::Restore => Level::Restore,
            RequireLevelArg::Decompress => Level::Decompress,
        },
        max_age,
        accept_unexported,
    })
}

/// A validated `exporter uploads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadsPlan {
    /// The S3 destination.
    pub destination: S3Config,
    /// Abort the uploads listed (else only list them).
    pub abort: bool,
    /// With `abort`: only uploads started at least this long ago.
    pub older_than: Duration,
}

/// Resolve `exporter uploads` with the config's `[storage]`.
///
/// # Errors
///
/// [`SettingsError`]: no destination, an invalid one or one that is not `s3://`, an invalid
/// `--older-than`, a bad `[storage]`.
pub fn resolve_uploads(
    cmd: &UploadsCmd,
    config: ConfigSource<'_>,
    env: Env<'_>,
) -> Result<UploadsPlan, SettingsError> {
    let (config_to, storage) = config.storage(env)?;
    let to = cmd
        .to
        .clone()
        .or(config_to)
        .ok_or_else(|| SettingsError::new("no destination: give --to s3://bucket/prefix"))?;
    let destination = resolve_destination(&to, &storage)?;
    let older_than =
        parse_age(&cmd.older_than).map_err(|m| SettingsError::new(format!("--older-than: {m}")))?;
    let Destination::S3(destination) = destination else {
        return Err(SettingsError::new(format!(
            "`exporter uploads` needs an s3:// destination, not {destination}"
        ))
        .hint("local runs leave no uploads: an interrupted dump removes its directory"));
    };
    Ok(UploadsPlan {
        destination,
        abort: cmd.abort,
        older_than,
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
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const NO_CONFIG: ConfigSource<'static> = ConfigSource::Missing {
        name: "exporter.toml",
    };

    /// The command as clap parses it from `exporter <args>`.
    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("exporter").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn verify_cmd(args: &[&str]) -> VerifyCmd {
        let Command::Verify(cmd) = parse(&[&["verify"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    fn restore_cmd(args: &[&str]) -> RestoreCmd {
        let Command::Restore(cmd) = parse(&[&["restore"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    fn dump_cmd(args: &[&str]) -> DumpCmd {
        let Command::Dump(cmd) = parse(&[&["dump"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    fn check_cmd(args: &[&str]) -> CheckCmd {
        let Command::Check(cmd) = parse(&[&["check"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    /// `exporter check` resolves exactly the plan `exporter dump` would run with the same
    /// inventory arguments; the dump checks first unless `--no-check`.
    #[test]
    fn check_resolves_the_plan_the_dump_would_run() {
        let args = [
            "app=postgres://u@h/db",
            "redis://c:6379",
            "--to",
            "out",
            "--jobs",
            "3",
            "--redis-format",
            "rdb",
        ];
        let checked = resolve_check(&check_cmd(&args), NO_CONFIG, &no_env, 8, None).unwrap();
        let dumped = resolve_dump(&dump_cmd(&args), NO_CONFIG, &no_env, 8, None).unwrap();
        assert_eq!(checked, dumped);
        assert!(checked.check);
        assert_eq!(checked.jobs, 3);
        assert!(checked.engine_options.redis_rdb);
        let names: Vec<&str> = checked.databases.iter().map(DatabaseTarget::name).collect();
        assert_eq!(names, ["app", "c"]);
        let no_check = [&args[..], &["--no-check"]].concat();
        assert!(
            !resolve_dump(&dump_cmd(&no_check), NO_CONFIG, &no_env, 8, None)
                .unwrap()
                .check
        );
        // The same usage errors as the dump's.
        let e = resolve_check(
            &check_cmd(&["--skip-unsupported", "postgres://u@h/db"]),
            NO_CONFIG,
            &no_env,
            8,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--skip-unsupported"), "{e}");
        assert!(resolve_check(&check_cmd(&[]), NO_CONFIG, &no_env, 8, None).is_err());
    }

    fn uploads_cmd(args: &[&str]) -> UploadsCmd {
        let Command::Uploads(cmd) = parse(&[&["uploads"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    fn config_to(to: &str) -> String {
        format!("[storage]\nto = \"{to}\"\n")
    }

    #[test]
    fn resolve_verify_rules() {
        let pg = "postgres://postgres@h:5432/postgres";
        let e = resolve_verify(&verify_cmd(&["--scratch", pg]), NO_CONFIG, &no_env, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--scratch is only used with --level restore (the level is decompress)"
        );
        let three = [
            "--level",
            "restore",
            "--scratch",
            pg,
            "--scratch",
            "mariadb://root@h:3306",
            "--scratch",
            "redis://h:6380",
        ];
        let cfg = config_to("/cfg");
        let with_config = ConfigSource::Text {
            name: "c.toml",
            text: &cfg,
        };
        let plan = resolve_verify(&verify_cmd(&three), with_config, &no_env, 2).unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/cfg")));
        assert_eq!(plan.level, Level::Restore);
        assert_eq!(plan.scratch.len(), 3);
        assert_eq!(
            plan.definer,
            DefinerPolicy::CurrentUser,
            "scratch restores rewrite"
        );
        let keep = [&three[..], &["--definer", "keep"]].concat();
        let plan = resolve_verify(&verify_cmd(&keep), NO_CONFIG, &no_env, 2).unwrap();
        assert_eq!(plan.definer, DefinerPolicy::Keep);
        assert_eq!(plan.scratch_for(EngineKind::Mysql).unwrap().url.host(), "h");
        let four = [&three[..], &["--scratch", "postgresql://u:hunter2@other/x"]].concat();
        let e = resolve_verify(&verify_cmd(&four), NO_CONFIG, &no_env, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--scratch URLs #1 and #4 are both postgresql servers"
        );
        let bad = ["--level", "restore", "--scratch", "mongodb://u:hunter2@h/x"];
        let e = resolve_verify(&verify_cmd(&bad), NO_CONFIG, &no_env, 2).unwrap_err();
        assert!(e.to_string().starts_with("--scratch URL #1: "), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let numbered = [
            "--level",
            "restore",
            "--scratch",
            "redis://:hunter2@h:6380/13",
        ];
        let e = resolve_verify(&verify_cmd(&numbered), NO_CONFIG, &no_env, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--scratch URL #1: a Redis scratch server is a whole server, not logical database /13"
        );
        let plan = resolve_verify(
            &verify_cmd(&["--level", "checksum", "--to", "/flag"]),
            with_config,
            &no_env,
            2,
        )
        .unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/flag")));
        assert_eq!(plan.level, Level::Checksum);
        assert_eq!(plan.scratch_for(EngineKind::Postgres), None);
    }

    #[test]
    fn resolve_restore_rules() {
        let run = "20261129T074800Z";
        let cmd = restore_cmd(&[run, "--into", "postgres://app:hunter2@h:5432/target"]);
        let plan = resolve_restore(&cmd, NO_CONFIG, &no_env, 2).unwrap();
        assert_eq!(plan.jobs, 2, "--jobs defaults to the cores");
        let four = restore_cmd(&[run, "--into", "postgres://h/t", "-j", "4"]);
        assert_eq!(
            resolve_restore(&four, NO_CONFIG, &no_env, 2).unwrap().jobs,
            4
        );
        let zero = restore_cmd(&[run, "--into", "postgres://h/t", "--jobs", "0"]);
        assert_eq!(
            resolve_restore(&zero, NO_CONFIG, &no_env, 2)
                .unwrap_err()
                .to_string(),
            "--jobs must be at least 1"
        );
        let three = verify_cmd(&["--jobs", "3"]);
        assert_eq!(
            resolve_verify(&three, NO_CONFIG, &no_env, 2).unwrap().jobs,
            3
        );
        assert_eq!(plan.into.engine, EngineKind::Postgres);
        assert_eq!(plan.into.name, "target");
        assert!(plan.ownership);
        assert!(!plan.clean);
        assert_eq!(
            plan.definer,
            DefinerPolicy::Keep,
            "a restore keeps definers by default"
        );
        assert_eq!(
            plan.into.url.to_string(),
            "postgres://app:****@h:5432/target"
        );
        assert_eq!(
            plan.destination,
            Destination::Local(PathBuf::from(DEFAULT_DESTINATION))
        );
        let cfg = config_to("/cfg");
        let cmd = restore_cmd(&[run, "--into", "mariadb://root@h/x", "--no-owner", "--clean"]);
        let plan = resolve_restore(
            &cmd,
            ConfigSource::Text {
                name: "c.toml",
                text: &cfg,
            },
            &no_env,
            2,
        )
        .unwrap();
        assert_eq!(plan.into.engine, EngineKind::Mysql);
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/cfg")));
        assert!(!plan.ownership);
        assert!(plan.clean);
        assert!(plan.tablespaces, "a restore applies tablespaces by default");
        let cmd = restore_cmd(&[run, "--into", "postgres://h/t", "--no-tablespaces"]);
        assert!(
            !resolve_restore(&cmd, NO_CONFIG, &no_env, 2)
                .unwrap()
                .tablespaces
        );
        // A scratch restore proves the data: tablespaces only when asked for.
        assert!(
            !resolve_verify(&verify_cmd(&[]), NO_CONFIG, &no_env, 2)
                .unwrap()
                .tablespaces
        );
        assert!(
            resolve_verify(&verify_cmd(&["--tablespaces"]), NO_CONFIG, &no_env, 2)
                .unwrap()
                .tablespaces
        );
        let cmd = restore_cmd(&[
            run,
            "--into",
            "mariadb://root@h/x",
            "--definer",
            "current-user",
        ]);
        let plan = resolve_restore(&cmd, NO_CONFIG, &no_env, 2).unwrap();
        assert_eq!(plan.definer, DefinerPolicy::CurrentUser);
        let cmd = restore_cmd(&[run, "--into", "ftp://u:hunter2@h/x"]);
        let e = resolve_restore(&cmd, NO_CONFIG, &no_env, 2).unwrap_err();
        assert!(
            e.to_string().starts_with("--into: unsupported URL scheme"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        // A PostgreSQL target must be named: without a database the URL means `postgres`.
        let cmd = restore_cmd(&[run, "--into", "postgres://u:hunter2@h:5432"]);
        let e = resolve_restore(&cmd, NO_CONFIG, &no_env, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--into postgres://u:****@h:5432: name the database to restore into \
             (postgres://user@host:5432/DATABASE)"
        );
        let cmd = restore_cmd(&[run, "--into", "redis://h", "--db", ""]);
        assert_eq!(
            resolve_restore(&cmd, NO_CONFIG, &no_env, 2)
                .unwrap_err()
                .to_string(),
            "--db must not be empty"
        );
    }

    #[test]
    fn resolve_dump_rules() {
        let err = |args: &[&str]| {
            resolve_dump(&dump_cmd(args), NO_CONFIG, &no_env, 2, None)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[]).starts_with("nothing to dump"));
        assert!(err(&["--all"]).contains("does not exist"));
        assert!(
            err(&["postgres://h/x", "postgresql://other/x"]).contains("both be written as \"x\"")
        );
        // Issue 16: colliding names are named on the command line, NAME=URL.
        assert!(err(&["postgres://h/app", "mysql://h/app"]).contains("both be written as \"app\""));
        let plan = resolve_dump(
            &dump_cmd(&[
                "app-pg=postgres://h/app",
                "app-my=mysql://h/app?ssl-mode=DISABLED",
            ]),
            NO_CONFIG,
            &no_env,
            2,
            None,
        )
        .unwrap();
        let names: Vec<&str> = plan.databases.iter().map(DatabaseTarget::name).collect();
        assert_eq!(names, ["app-pg", "app-my"]);
        assert_eq!(plan.databases[1].engine(), EngineKind::Mysql);
        assert!(err(&["a b=postgres://h/x"]).contains("contains ' '"));
        assert!(err(&["x=postgres://h/x", "x=redis://h"]).contains("both be written as \"x\""));
        // `=` inside a URL's query is not a name.
        let plan = resolve_dump(
            &dump_cmd(&["postgres://h/x?sslmode=disable"]),
            NO_CONFIG,
            &no_env,
            2,
            None,
        )
        .unwrap();
        assert_eq!(plan.databases[0].name(), "x");
        // Issue 16: URLs on the command line do not need the config's databases (nor their
        // variables); its [storage] still applies.
        let cfg = "[storage]\nto = \"/cfg\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://u:${UNSET_PW}@h/a\"\n";
        let config = ConfigSource::Text {
            name: "exporter.toml",
            text: cfg,
        };
        let plan = resolve_dump(&dump_cmd(&["postgres://h/x"]), config, &no_env, 2, None).unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/cfg")));
        assert_eq!(plan.databases.len(), 1);
        let e = resolve_dump(&dump_cmd(&["--all"]), config, &no_env, 2, None).unwrap_err();
        assert!(e.to_string().contains("UNSET_PW"), "{e}");
        let mysql = err(&["mysql://h/x?compress=true"]);
        assert!(
            mysql.contains(
                "URL parameter \"compress\" is not supported (supported: ssl-mode, ssl-ca"
            ),
            "{mysql}"
        );
        assert!(err(&["postgres://h/x", "--compression-level", "99"]).contains("out of range"));
        assert_eq!(
            err(&["postgres://h/x", "--expected-size", "12 parsecs"]),
            "--expected-size: \"12 parsecs\" has an unknown unit (use KiB, MiB, GiB or TiB)"
        );
        assert!(
            err(&["postgres://h/x", "--expected-size", "1GiB"]).starts_with(
                "--expected-size sizes S3 upload parts; the destination is a local directory"
            )
        );
        let plan =
            resolve_dump(&dump_cmd(&["postgres://h/x"]), NO_CONFIG, &no_env, 2, None).unwrap();
        assert_eq!(
            plan.destination,
            Destination::Local(PathBuf::from("./archives"))
        );
        assert_eq!(plan.jobs, 2);
        assert_eq!(plan.compression_level, 3);
        assert_eq!(plan.databases[0].name(), "x");
        assert_eq!(plan.inventory, InventorySource::Urls);
        assert!(!plan.engine_options.redis_rdb);
        assert!(
            !plan.engine_options.strip_definers,
            "definers are kept by default"
        );
        let plan = resolve_dump(
            &dump_cmd(&["mysql://h/x", "--strip-definers"]),
            NO_CONFIG,
            &no_env,
            2,
            None,
        )
        .unwrap();
        assert!(plan.engine_options.strip_definers);
        // The old opt-in flag is still accepted (hidden); it cannot be combined with stripping.
        let plan = resolve_dump(
            &dump_cmd(&["mysql://h/x", "--keep-definers"]),
            NO_CONFIG,
            &no_env,
            2,
            None,
        )
        .unwrap();
        assert!(!plan.engine_options.strip_definers);
        assert!(
            Cli::try_parse_from([
                "exporter",
                "dump",
                "mysql://h/x",
                "--keep-definers",
                "--strip-definers"
            ])
            .is_err()
        );
        let cfg =
            "[storage]\nto = \"s3://bucket/p\"\n[[databases]]\nname = \"a\"\nurl = \"redis://h\"\n";
        let config = ConfigSource::Text {
            name: "c.toml",
            text: cfg,
        };
        let cmd = dump_cmd(&[
            "--all",
            "--redis-format",
            "rdb",
            "--expected-size",
            "800GiB",
        ]);
        let plan = resolve_dump(&cmd, config, &no_env, 2, None).unwrap();
        let Destination::S3(s3) = &plan.destination else {
            panic!("not S3: {:?}", plan.destination);
        };
        assert_eq!(s3.expected_size, Some(800 << 30));
        assert!(plan.engine_options.redis_rdb);
        assert_eq!(plan.inventory, InventorySource::Config);
        let plan = resolve_dump(
            &dump_cmd(&["--all", "--to", "/flag"]),
            config,
            &no_env,
            2,
            None,
        )
        .unwrap();
        assert_eq!(plan.destination, Destination::Local(PathBuf::from("/flag")));
    }

    #[test]
    fn libpq_environment_becomes_the_plans_connection_defaults() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-full".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            _ => None,
        };
        let expected = ConnectionDefaults::from_env(&env);
        assert_ne!(expected, ConnectionDefaults::default());
        let plan = resolve_dump(&dump_cmd(&["postgres://h/x"]), NO_CONFIG, &env, 2, None).unwrap();
        assert_eq!(plan.connections, expected);
        let cmd = verify_cmd(&["--level", "restore", "--scratch", "postgres://h/postgres"]);
        assert_eq!(
            resolve_verify(&cmd, NO_CONFIG, &env, 2)
                .unwrap()
                .connections,
            expected
        );
        let cmd = restore_cmd(&["r", "--into", "postgres://h/t"]);
        assert_eq!(
            resolve_restore(&cmd, NO_CONFIG, &env, 2)
                .unwrap()
                .connections,
            expected
        );
        let plan =
            resolve_dump(&dump_cmd(&["postgres://h/x"]), NO_CONFIG, &no_env, 2, None).unwrap();
        assert_eq!(plan.connections, ConnectionDefaults::default());
        // The URLs are checked with the environment's defaults: a bad PGSSLMODE is a usage
        // error naming the database, before any connection; a URL's own sslmode wins.
        let bad = |k: &str| (k == "PGSSLMODE").then(|| "paranoid".to_owned());
        let e = resolve_dump(&dump_cmd(&["postgres://h/x"]), NO_CONFIG, &bad, 2, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("database x (postgres://h/x): unknown sslmode \"paranoid\""),
            "{e}"
        );
        let cmd = restore_cmd(&["r", "--into", "postgres://h/t"]);
        let e = resolve_restore(&cmd, NO_CONFIG, &bad, 2).unwrap_err();
        assert!(
            e.to_string().contains("unknown sslmode \"paranoid\""),
            "{e}"
        );
        assert!(
            resolve_dump(
                &dump_cmd(&["postgres://h/x?sslmode=require"]),
                NO_CONFIG,
                &bad,
                2,
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn resolve_uploads_rules() {
        let e = resolve_uploads(&uploads_cmd(&[]), NO_CONFIG, &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no destination: give --to s3://bucket/prefix"
        );
        let e = resolve_uploads(&uploads_cmd(&["--to", "/local"]), NO_CONFIG, &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`exporter uploads` needs an s3:// destination, not /local"
        );
        let e = resolve_uploads(
            &uploads_cmd(&["--to", "s3://bucket/p", "--older-than", "3 weeks"]),
            NO_CONFIG,
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("--older-than: "), "{e}");
        let plan = resolve_uploads(
            &uploads_cmd(&["--to", "s3://bucket/p", "--abort"]),
            NO_CONFIG,
            &no_env,
        )
        .unwrap();
        assert_eq!(plan.destination.url(), "s3://bucket/p");
        assert!(plan.abort);
        assert_eq!(plan.older_than, Duration::from_secs(3600));
    }

    #[test]
    fn stall_timeout_defaults_to_ten_minutes_and_can_be_turned_off() {
        let resolve = |args: &[&str]| {
            resolve_dump(
                &dump_cmd(&[&["redis://h"], args].concat()),
                NO_CONFIG,
                &no_env,
                2,
                None,
            )
        };
        let plan = resolve(&[]).unwrap();
        assert_eq!(plan.stall_timeout, Some(Duration::from_secs(600)));
        assert!(!plan.resume);
        let plan = resolve(&["--stall-timeout", "3s", "--resume"]).unwrap();
        assert_eq!(plan.stall_timeout, Some(Duration::from_secs(3)));
        assert!(plan.resume);
        assert_eq!(
            resolve(&["--stall-timeout", "off"]).unwrap().stall_timeout,
            None
        );
        assert_eq!(
            resolve(&["--stall-timeout", "0"]).unwrap().stall_timeout,
            None
        );
        let e = resolve(&["--stall-timeout", "10"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--stall-timeout: \"10\" needs a unit: s, m, h or d (e.g. 2h)"
        );
    }

    #[test]
    fn resolve_list_needs_a_config() {
        let list = ListCmd {
            to: None,
            from_backup: None,
            include_orphaned_backups: false,
            json: false,
        };
        let e = resolve_list(&list, NO_CONFIG, &no_env, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nothing to list: there is no config file (exporter.toml does not exist)"
        );
        assert!(e.hint_text().unwrap().contains("--to DEST"), "{e:?}");
        let text = "[[databases]]\nname = \"a\"\nurl = \"redis://h\"\n";
        let plan = resolve_list(
            &list,
            ConfigSource::Text {
                name: "c.toml",
                text,
            },
            &no_env,
            None,
        )
        .unwrap();
        assert!(plan.platform.is_none());
        assert_eq!(plan.databases[0].engine, EngineKind::Redis);
        let plan = resolve_list(&list, NO_CONFIG, &no_env, Some("prod")).unwrap();
        assert_eq!(plan.platform.unwrap().settings.environment, "prod");
        // `--to DEST` alone: no inventory, the destination's unfinished runs (a dump made from
        // URLs has no config to list).
        let to = ListCmd {
            to: Some("runs".into()),
            ..list
        };
        let plan = resolve_list(&to, NO_CONFIG, &no_env, None).unwrap();
        assert!(plan.databases.is_empty() && plan.platform.is_none());
        assert!(matches!(plan.destination, Destination::Local(ref p) if p.ends_with("runs")));
    }

    #[test]
    fn resolve_dump_of_a_platform_environment() {
        let cmd = dump_cmd(&["--all", "--from-backup", "latest", "--skip-unsupported"]);
        let plan = resolve_dump(&cmd, NO_CONFIG, &no_env, 2, Some("prod")).unwrap();
        let p = plan.platform.as_ref().unwrap();
        assert_eq!(p.settings.environment, "prod");
        assert_eq!(p.from_backup, Some(BackupChoice::Latest));
        assert!(p.skip_unsupported);
        assert!(plan.databases.is_empty(), "the inventory step fills them");
        assert_eq!(plan.inventory.as_str(), "aptible");
        let cfg = "[platform]\nkind = \"aptible\"\nenvironment = \"staging\"\n";
        let config = ConfigSource::Text {
            name: "c.toml",
            text: cfg,
        };
        let cmd = dump_cmd(&["--all", "--from-backup", "555", "--keep-restored"]);
        let plan = resolve_dump(&cmd, config, &no_env, 2, None).unwrap();
        let p = plan.platform.unwrap();
        assert_eq!(p.settings.environment, "staging");
        assert_eq!(p.from_backup, Some(BackupChoice::Id(555)));
        assert!(p.keep_restored);
        let err = |args: &[&str], config, environment| {
            resolve_dump(&dump_cmd(args), config, &no_env, 2, environment)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["postgres://h/x", "--skip-unsupported"], NO_CONFIG, None),
            "--skip-unsupported applies to `dump --all` of a platform environment"
        );
        assert_eq!(
            err(
                &["--all", "--from-backup", "yesterday"],
                NO_CONFIG,
                Some("prod")
            ),
            "--from-backup \"yesterday\": give `latest` or a backup id (a number)"
        );
        assert!(
            err(&["--all", "--keep-restored"], NO_CONFIG, Some("prod"))
                .starts_with("--keep-restored keeps databases restored from backups")
        );
        let both = "[platform]\nkind = \"aptible\"\nenvironment = \"prod\"\n[[databases]]\nname = \"a\"\nurl = \"redis://h\"\n";
        let both = ConfigSource::Text {
            name: "c.toml",
            text: both,
        };
        assert_eq!(
            err(&["--all"], both, None),
            "c.toml has both [platform] and [[databases]]: `dump --all` takes one inventory"
        );
        // --environment chooses the platform; URLs alone ignore it.
        let plan = resolve_dump(&dump_cmd(&["--all"]), both, &no_env, 2, Some("prod")).unwrap();
        assert!(plan.platform.is_some());
        let plan = resolve_dump(&dump_cmd(&["redis://h"]), both, &no_env, 2, Some("prod")).unwrap();
        assert!(plan.platform.is_none());
        assert_eq!(plan.inventory, InventorySource::Urls);
    }

    #[test]
    fn resolve_login_and_tunnel_rules() {
        let Command::Login(cmd) = parse(&["login", "--lifetime", "12h"]) else {
            unreachable!()
        };
        let env = |k: &str| match k {
            "APTIBLE_USERNAME" => Some("me@example.com".to_owned()),
            "APTIBLE_PASSWORD" => Some("pw-Secret-1".to_owned()),
            "APTIBLE_CONFIG_PATH" => Some("/cfg".to_owned()),
            _ => None,
        };
        let plan = resolve_login(&cmd, &env).unwrap();
        assert_eq!(plan.email.as_deref(), Some("me@example.com"));
        assert!(plan.password.is_some());
        assert_eq!(plan.lifetime, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(
            plan.vars.lookup()("APTIBLE_CONFIG_PATH").as_deref(),
            Some("/cfg")
        );
        assert!(!format!("{plan:?}").contains("pw-Secret-1"));
        let Command::Login(cmd) = parse(&["login", "--password-stdin"]) else {
            unreachable!()
        };
        assert_eq!(
            resolve_login(&cmd, &env).unwrap_err().to_string(),
            "--password-stdin and APTIBLE_PASSWORD both give the password"
        );
        let Command::Login(cmd) = parse(&["login", "--lifetime", "soon"]) else {
            unreachable!()
        };
        assert!(
            resolve_login(&cmd, &no_env)
                .unwrap_err()
                .to_string()
                .starts_with("--lifetime: ")
        );
        let Command::Tunnel(cmd) = parse(&["tunnel", "events", "--port", "0"]) else {
            unreachable!()
        };
        assert_eq!(
            resolve_tunnel(&cmd, NO_CONFIG, &no_env, Some("prod"))
                .unwrap_err()
                .to_string(),
            "--port must be between 1 and 65535"
        );
        let Command::Tunnel(cmd) = parse(&["tunnel", "events", "--show-password"]) else {
            unreachable!()
        };
        assert_eq!(
            resolve_tunnel(&cmd, NO_CONFIG, &no_env, None)
                .unwrap_err()
                .to_string(),
            "`exporter tunnel` needs a platform environment"
        );
        let plan = resolve_tunnel(&cmd, NO_CONFIG, &no_env, Some("prod")).unwrap();
        assert_eq!(plan.handle, "events");
        assert!(plan.show_password);
    }

    fn teardown_cmd(args: &[&str]) -> TeardownCmd {
        let Command::Teardown(cmd) = parse(&[&["teardown"], args].concat()) else {
            unreachable!()
        };
        cmd
    }

    #[test]
    fn teardown_defaults_and_refusals() {
        let t = resolve_teardown(&teardown_cmd(&[]), NO_CONFIG, &no_env, Some("prod")).unwrap();
        assert_eq!(t.platform.environment, "prod");
        assert_eq!(
            t.destination,
            Destination::Local(PathBuf::from("./archives"))
        );
        assert!(!t.apply);
        assert_eq!(t.required_level, Level::Restore);
        assert_eq!(t.max_age, Duration::from_secs(24 * 3600));
        let t = resolve_teardown(
            &teardown_cmd(&[
                "--apply",
                "--confirm",
                " prod ",
                "--require-level",
                "decompress",
                "--max-age",
                "90m",
                "--accept-unexported",
                "events",
                "--accept-unexported",
                "events",
                "--to",
                "s3://bucket/p",
            ]),
            NO_CONFIG,
            &no_env,
            Some("prod"),
        )
        .unwrap();
        // Kept exactly as typed: the gate compares it with the handle byte for byte, so
        // " prod " does not confirm "prod".
        assert_eq!(t.confirm.as_deref(), Some(" prod "));
        assert_eq!(t.required_level, Level::Decompress);
        assert_eq!(t.max_age, Duration::from_secs(5400));
        assert_eq!(t.accept_unexported, ["events"]);
        assert!(matches!(t.destination, Destination::S3(_)));

        let e = resolve_teardown(&teardown_cmd(&[]), NO_CONFIG, &no_env, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`exporter teardown` needs a platform environment"
        );
        let e = resolve_teardown(
            &teardown_cmd(&["--max-age", "0"]),
            NO_CONFIG,
            &no_env,
            Some("prod"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "--max-age must be longer than 0");
        let e = resolve_teardown(
            &teardown_cmd(&["--accept-unexported", " "]),
            NO_CONFIG,
            &no_env,
            Some("prod"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "--accept-unexported must not be empty");
        // --confirm needs --apply (clap says so before settings).
        assert!(Cli::try_parse_from(["exporter", "teardown", "--confirm", "prod"]).is_err());
    }
}
