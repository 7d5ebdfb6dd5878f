//! Command-line types: plain data for clap, nothing else (conventions: "parse, then resolve,
//! then run"). `settings` turns these into a validated plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Get every database out of an account as verified, standard zstd archives.
#[derive(Debug, Parser)]
#[command(name = "exporter", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file [default: ./exporter.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The platform environment (its handle) to work on, instead of `[platform] environment`.
    #[arg(long, global = true, value_name = "HANDLE")]
    pub environment: Option<String>,
    /// More detail on stderr (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Stderr as `text` (progress bars on a terminal, plain lines otherwise) or `json` (one
    /// JSON event per line).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormatArg::Text,
        hide_possible_values = true
    )]
    pub log_format: LogFormatArg,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`: what stderr carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Lines for a person; progress bars when stderr is a terminal.
    Text,
    /// One JSON object per line for each event (FORMAT.md, "Events on stderr").
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump databases into a new archive run.
    Dump(DumpCmd),
    /// Check that every database and the destination are ready for a dump (nothing is
    /// dumped).
    Check(CheckCmd),
    /// Read a run back and check every file against its manifest.
    Verify(VerifyCmd),
    /// Restore one archive of a run into a database.
    Restore(RestoreCmd),
    /// Show the inventory and what `dump --all` would write.
    List(ListCmd),
    /// List (and with --abort, remove) unfinished S3 multipart uploads under the destination.
    Uploads(UploadsCmd),
    /// Log in to the platform and store the token where the platform's own CLI keeps it.
    Login(LoginCmd),
    /// Open a tunnel to a platform database and hold it until Ctrl-C (any database type).
    Tunnel(TunnelCmd),
    /// Plan (and with --apply, run) the removal of a platform environment, gated on an
    /// archive proven restorable for every database.
    Teardown(TeardownCmd),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(CompletionsCmd),
    /// Print the manual page (roff) of exporter, or of one command, on stdout.
    Man(ManCmd),
}

/// `exporter completions`.
#[derive(Debug, Args)]
#[command(after_help = "Install, e.g.: exporter completions bash > \
    ~/.local/share/bash-completion/completions/exporter; exporter completions zsh > \
    ~/.zfunc/_exporter; exporter completions fish > ~/.config/fish/completions/exporter.fish")]
pub struct CompletionsCmd {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `exporter man`.
#[derive(Debug, Args)]
#[command(after_help = "Read it with: exporter man | man -l -")]
pub struct ManCmd {
    /// A command's page (`exporter-dump(1)`, …) instead of the program's.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// `exporter dump`.
#[derive(Debug, Default, Args)]
pub struct DumpCmd {
    /// Dump every database of the inventory: the platform environment (`[platform]` or
    /// `--environment`), else the config file's `[[databases]]`.
    #[arg(long)]
    pub all: bool,
    /// Database URLs to dump instead of the config's (postgres://user@host:5432/db);
    /// `NAME=URL` names the archive (default: the URL's database, else its host).
    #[arg(value_name = "[NAME=]URL")]
    pub urls: Vec<String>,
    /// Destination: a directory or s3://bucket/prefix (overrides `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// S3: the largest archive expected (e.g. 800GiB), to size upload parts; overrides the
    /// engines' estimates.
    #[arg(long, value_name = "SIZE")]
    pub expected_size: Option<String>,
    /// zstd compression level, 1 to 19 [default: 3].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// Parallelism: zstd worker threads, databases dumped at once, and PostgreSQL connections
    /// copying tables in one shared snapshot [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Leave ownership and privilege statements out of the dump.
    #[arg(long)]
    pub no_owner: bool,
    /// Redis payload: `resp` (RESTORE commands for `redis-cli --pipe`, works everywhere) or
    /// `rdb` (a point-in-time snapshot through the replication handshake).
    #[arg(long, value_enum, default_value_t = RedisFormatArg::Resp)]
    pub redis_format: RedisFormatArg,
    /// MySQL: strip the DEFINER clauses of views, routines, triggers and events (kept by
    /// default, as mysqldump does); the manifest's warnings list each object's original
    /// definer. A restore can rewrite them instead: `restore --definer current-user`.
    #[arg(long)]
    pub strip_definers: bool,
    /// Accepted for compatibility: keeping definers is the default now.
    #[arg(long, hide = true, conflicts_with = "strip_definers")]
    pub keep_definers: bool,
    /// Platform: record databases of types this tool cannot dump (MongoDB, Elasticsearch, …)
    /// as skipped instead of refusing the whole dump.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Platform: read each database from a backup restored into a new database (`latest`:
    /// each database's newest backup; an id: that backup for its database, the others live).
    #[arg(long, value_name = "latest|ID")]
    pub from_backup: Option<String>,
    /// Platform: keep the databases restored from backups instead of deprovisioning them
    /// after their dump.
    #[arg(long)]
    pub keep_restored: bool,
    /// Platform: also export the newest backup of each database that no longer exists.
    #[arg(long)]
    pub include_orphaned_backups: bool,
    /// Platform: the credential type each tunnel uses (e.g. `redis+ssl`) instead of each
    /// database's default credential; a database without it fails.
    #[arg(long, value_name = "TYPE")]
    pub credential_type: Option<String>,
    /// Continue the newest unfinished run (no manifest.json) of the same inventory at the
    /// destination: keep each database it finished after re-checking its archive's SHA-256
    /// against storage, and dump only the others. Without one, start a new run.
    #[arg(long)]
    pub resume: bool,
    /// Fail a database whose dump moves no data for this long (`90s`, `10m`, `1h`; `0` or
    /// `off`: never); the other databases go on [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub stall_timeout: Option<String>,
    /// Verify each archive as soon as it is committed, while the next ones are dumped, and
    /// record the result as `verify.json` (as `exporter verify --level LEVEL` would);
    /// `restore` needs `--scratch`.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub verify: Option<LevelArg>,
    /// With `--verify restore`: a server to create and drop scratch databases on, one per
    /// engine (as `verify --scratch`). Repeat for several engines.
    #[arg(long, value_name = "URL")]
    pub scratch: Vec<String>,
    /// Print a JSON summary on stdout instead of the run directory.
    #[arg(long)]
    pub json: bool,
    /// Skip the check that runs before the dump (`exporter check`: privileges, snapshot,
    /// destination); a database that fails is then recorded as failed and the others go on.
    #[arg(long)]
    pub no_check: bool,
}

/// `exporter check`: the inventory of `dump` (the same arguments), checked without dumping.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 every database and the destination are ready, 1 \
    something would make the dump fail (each problem is named), 2 usage error."
)]
pub struct CheckCmd {
    /// Check every database of the inventory: the platform environment (`[platform]` or
    /// `--environment`), else the config file's `[[databases]]`.
    #[arg(long)]
    pub all: bool,
    /// Database URLs to check instead of the config's (postgres://user@host:5432/db);
    /// `NAME=URL` names them as the dump would.
    #[arg(value_name = "[NAME=]URL")]
    pub urls: Vec<String>,
    /// Destination to check: a directory or s3://bucket/prefix (overrides `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Databases checked at once (as `dump --jobs`) [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// The Redis format the dump will use: `rdb` needs replication rights (SYNC).
    #[arg(long, value_enum, default_value_t = RedisFormatArg::Resp)]
    pub redis_format: RedisFormatArg,
    /// Platform: databases of types this tool cannot dump are reported as skipped instead of
    /// refusing the check.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Platform: the plan of `dump --all --from-backup latest|ID` (a database read from a
    /// backup is restored when its dump starts: the check cannot reach it before).
    #[arg(long, value_name = "latest|ID")]
    pub from_backup: Option<String>,
    /// Platform: also the newest backup of each database that no longer exists.
    #[arg(long)]
    pub include_orphaned_backups: bool,
    /// Platform: the credential type each tunnel uses (e.g. `redis+ssl`).
    #[arg(long, value_name = "TYPE")]
    pub credential_type: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Redis archive format.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedisFormatArg {
    /// `SELECT` + `RESTORE … ABSTTL` commands, replayable with `redis-cli --pipe`.
    #[default]
    Resp,
    /// An RDB file from the replication handshake (point in time).
    Rdb,
}

/// What a restore does with MySQL DEFINER clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefinerArg {
    /// Apply them as written (restoring objects of other accounts needs SET USER or SUPER).
    Keep,
    /// Rewrite them to DEFINER=CURRENT_USER: the restoring account owns every object.
    CurrentUser,
}

/// Verification depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Length and SHA-256 of every file.
    Checksum,
    /// Also decode every zstd frame, check its content checksum and the uncompressed length.
    Decompress,
    /// Also restore every archive into a scratch database (see `--scratch`) and compare its
    /// row counts and content fingerprints with the manifest.
    Restore,
}

/// `exporter verify`.
#[derive(Debug, Args)]
pub struct VerifyCmd {
    /// A run id under the destination, or a path to a run directory [default: the latest run].
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Destination holding runs: a directory or s3://bucket/prefix (overrides `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// How deep to check.
    #[arg(long, value_enum, default_value_t = LevelArg::Decompress)]
    pub level: LevelArg,
    /// With `--level restore`: a server to create and drop scratch databases on, one per
    /// engine (postgres://user@host:5432/postgres, mysql://root@host:3306, redis://host:6380
    /// for an empty Redis server that will be flushed). Repeat for several engines.
    #[arg(long, value_name = "URL")]
    pub scratch: Vec<String>,
    /// With `--level restore`: MySQL DEFINER clauses in the scratch restore (default: rewritten
    /// to the scratch account, so a definer account missing on the scratch server does not
    /// fail the proof; `keep` applies them as written).
    #[arg(long, value_enum, default_value_t = DefinerArg::CurrentUser)]
    pub definer: DefinerArg,
    /// With `--level restore`: apply the archives' PostgreSQL tablespace assignments in the
    /// scratch restore (by default left out, as `restore --no-tablespaces`, so a scratch
    /// server without the source's tablespaces proves the data all the same).
    #[arg(long)]
    pub tablespaces: bool,
    /// With `--level restore`: connections per scratch restore and per fingerprint pass
    /// (data blocks, indexes and constraints in parallel, as `pg_restore -j`) [default:
    /// number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `exporter restore`.
#[derive(Debug, Args)]
pub struct RestoreCmd {
    /// A run id under the destination, or a path to a run directory.
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The database to restore into (postgres://user@host:5432/db, mysql://root@host:3306/db,
    /// redis://host:6379). It must exist and be empty, unless `--clean` is given.
    #[arg(long, value_name = "URL")]
    pub into: String,
    /// Which database of the run to restore (its manifest name); required when the run holds
    /// more than one.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Drop everything already in the target before restoring.
    #[arg(long)]
    pub clean: bool,
    /// Skip ownership and privilege statements (ALTER … OWNER TO, GRANT).
    #[arg(long)]
    pub no_owner: bool,
    /// PostgreSQL: skip tablespace assignments (SET default_tablespace), as pg_restore
    /// --no-tablespaces: every object goes to the target's default tablespace.
    #[arg(long)]
    pub no_tablespaces: bool,
    /// MySQL DEFINER clauses: `keep` them as written (needs SET USER or SUPER for objects of
    /// other accounts), or rewrite them to `current-user` (the restoring account).
    #[arg(long, value_enum, default_value_t = DefinerArg::Keep)]
    pub definer: DefinerArg,
    /// Connections restoring at once: data blocks, then indexes and constraints, in parallel
    /// as `pg_restore -j` (PostgreSQL, MySQL) [default: number of cores].
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Destination holding runs: a directory or s3://bucket/prefix (overrides `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `exporter list`.
#[derive(Debug, Args)]
pub struct ListCmd {
    /// Destination whose unfinished runs to show: a directory or s3://bucket/prefix (overrides
    /// `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Platform: show the plan of `dump --all --from-backup latest|ID`.
    #[arg(long, value_name = "latest|ID")]
    pub from_backup: Option<String>,
    /// Platform: show the plan of `dump --all --include-orphaned-backups`.
    #[arg(long)]
    pub include_orphaned_backups: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `exporter login`: the password grant of the platform's auth API, as `aptible login`.
#[derive(Debug, Args)]
pub struct LoginCmd {
    /// The account's email [default: $APTIBLE_USERNAME, else asked on the terminal].
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password from the first line of standard input [default: $APTIBLE_PASSWORD,
    /// else asked on the terminal without echo].
    #[arg(long)]
    pub password_stdin: bool,
    /// The one-time code of an account with two-factor authentication [default:
    /// $APTIBLE_OTP_TOKEN, else asked on the terminal when the platform wants one].
    #[arg(long, value_name = "CODE")]
    pub otp_token: Option<String>,
    /// How long the token lives (`30m`, `12h`, `7d`) [default: 7d, or 12h with a one-time
    /// code, as the platform's CLI].
    #[arg(long, value_name = "DURATION")]
    pub lifetime: Option<String>,
}

/// `exporter tunnel`: `aptible db:tunnel` without the platform's CLI.
#[derive(Debug, Args)]
pub struct TunnelCmd {
    /// The database's handle in the environment.
    #[arg(value_name = "HANDLE")]
    pub handle: String,
    /// The local port [default: a free one].
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// The credential type (e.g. `redis+ssl`) [default: the database's default credential].
    #[arg(long, value_name = "TYPE")]
    pub credential_type: Option<String>,
    /// Print the password in the URL (it is shown as `****` otherwise).
    #[arg(long)]
    pub show_password: bool,
}

/// `exporter uploads`.
#[derive(Debug, Args)]
pub struct UploadsCmd {
    /// The S3 destination, s3://bucket/prefix (overrides `[storage] to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Abort the listed uploads started longer ago than --older-than (never touches completed
    /// objects).
    #[arg(long)]
    pub abort: bool,
    /// With --abort: only uploads started at least this long ago (`90s`, `30m`, `2h`, `1d`;
    /// `0` for all), so that a dump still running into the same prefix keeps its upload.
    #[arg(long, value_name = "AGE", default_value = "1h")]
    pub older_than: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The verification level the teardown gate requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequireLevelArg {
    /// Each archive restored into a scratch database and its fingerprints compared (`verify
    /// --level restore`).
    Restore,
    /// An explicit downgrade: intact bytes and zstd frames only (`verify --level
    /// decompress`); stated in the plan, the prompt and the report.
    Decompress,
}

/// `exporter teardown`: the cancellation guide's steps 2 to 7 for one environment.
#[derive(Debug, Args)]
pub struct TeardownCmd {
    /// Run the plan: deprovision everything, then delete the environment. Without it nothing
    /// is changed.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: the environment's handle, typed again [default: asked on the terminal].
    #[arg(long, value_name = "HANDLE", requires = "apply")]
    pub confirm: Option<String>,
    /// The verification every database's archive must have passed.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = RequireLevelArg::Restore)]
    pub require_level: RequireLevelArg,
    /// The oldest archive that may cover a database (`90m`, `24h`, `2d`).
    #[arg(long, value_name = "AGE", default_value = "24h")]
    pub max_age: String,
    /// A database this tool cannot export (MongoDB, …) whose loss you accept; recorded in
    /// the report. Repeat for several.
    #[arg(long, value_name = "HANDLE")]
    pub accept_unexported: Vec<String>,
    /// Destination holding the runs: a directory or s3://bucket/prefix (overrides `[storage]
    /// to`).
    #[arg(long, value_name = "DEST")]
    pub to: Option<String>,
    /// Print the plan (with --apply: the report) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
