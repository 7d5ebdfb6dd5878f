//! Progress: what the services report while they work, for the command layer to render.
//!
//! Services never print (design.md section 3: "nothing below the command layer prints").
//! Long work — a dump, a verification, a restore — reports each step as an [`Event`] to a
//! [`Progress`] observer that the command supplies. The command renders the events it cares
//! about as lines today; the same events can drive progress bars or a stream of JSON events
//! (every event serializes, tagged by `event`), without touching a service.
//!
//! Events are small owned values, sent a handful of times per database — plus one
//! [`Event::TableDumped`] per table, and one `…Progress` event every [`Progress::heartbeat`]
//! while a dump or restore runs, from a [`Ticker`] reading a [`Meter`] that the pipeline
//! advances — so observers may be called from any task or thread (`Send + Sync`). During a
//! dump the engine reports its tables to a [`TableWatch`] (the contract's
//! [`DumpObserver`]), which advances the database's row meter, keeps its current tables and
//! sends [`Event::TableDumped`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use exporter_contract::{DumpObserver, PayloadFormat, TableSummary, TlsInfo};
use serde::Serialize;

use crate::engines::EngineKind;
use crate::pipeline::DatabaseFailure;
use crate::verify::{Level, RestoreCheck};

/// One step of a service's work.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// Run resolution passed over a run without a manifest while looking for the latest one.
    RunSkipped {
        /// The run id.
        run_id: String,
        /// Why it was skipped.
        reason: String,
    },

    /// A dump created its run and starts on its databases.
    DumpStarted {
        /// The run id.
        run_id: String,
        /// Where the run is written (`<destination>/<run-id>`).
        location: String,
        /// How many databases this dump writes (with `--resume`: without those kept from the
        /// unfinished run, which [`Event::ArchiveKept`] names), skipped ones included.
        databases: usize,
    },
    /// One database's dump starts (after the endpoint step, before `preflight`).
    DatabaseStarted {
        /// The database's name in the run.
        name: String,
        /// The adapter's description of the source (redacted).
        source: String,
    },
    /// One database's archive is committed.
    DatabaseDumped {
        /// The database's name in the run.
        name: String,
        /// Its engine.
        engine: EngineKind,
        /// The archive file.
        file: String,
        /// The payload format.
        format: PayloadFormat,
        /// Tables (Redis: logical databases) in the summary.
        tables: u64,
        /// Rows (Redis: keys) in the summary.
        rows: u64,
        /// Payload bytes before compression.
        uncompressed_bytes: u64,
        /// Bytes stored.
        compressed_bytes: u64,
        /// SHA-256 of the stored bytes, lowercase hex (as in the manifest and `SHA256SUMS`).
        sha256: String,
        /// Wall time in seconds.
        seconds: f64,
        /// How the dump's connection travelled (the adapter's report, also in the manifest);
        /// `None` when the engine reports nothing.
        tls: Option<TlsInfo>,
    },
    /// What the endpoint step did for a platform database (a backup restored into a new
    /// database, a tunnel opened, the restored database removed or kept): information, not in
    /// the manifest's warnings.
    DatabaseNote {
        /// The database's name in the run.
        name: String,
        /// What happened.
        note: String,
    },
    /// A reduced-fidelity note the user opted into, recorded in the manifest.
    DatabaseWarning {
        /// The database's name in the run.
        name: String,
        /// The warning.
        warning: String,
    },
    /// Something about a database's connection the user should know, reported once by the
    /// adapter's preflight ([`exporter_contract::ServerInfo::notes`]); not in the manifest.
    ConnectionNote {
        /// The database's name in the run.
        name: String,
        /// The note.
        note: String,
    },
    /// A database's dump is still running: sent every [`Progress::heartbeat`] while it runs
    /// (issue 16: minutes without a line on a long dump).
    DatabaseProgress {
        /// The database's name in the run.
        name: String,
        /// Payload bytes read from the engine so far (before compression).
        bytes_read: u64,
        /// Compressed bytes written to the archive so far (zstd buffers a few MiB, so this
        /// trails `bytes_read` / ratio).
        bytes_written: u64,
        /// The engine's estimate of the payload size ([`exporter_contract::DumpMeta::size_hint`]),
        /// when it gives one: an estimate, which `bytes_read` may exceed.
        expected_bytes: Option<u64>,
        /// Rows (Redis: keys) read so far, over every table.
        rows: u64,
        /// The tables being read now, in the order they started (several under `--jobs`;
        /// none between tables, or when the engine does not say, as for an RDB snapshot).
        current_tables: Vec<String>,
        /// Seconds since the dump of this database started.
        seconds: f64,
    },
    /// One table (Redis: logical database) of a database's dump has been read whole; the
    /// archive is not committed yet (that is [`Event::DatabaseDumped`]).
    TableDumped {
        /// The database's name in the run.
        name: String,
        /// The table, as the manifest names it (e.g. `public."Order Items"`, `db0`).
        table: String,
        /// Its rows (Redis: keys), as the manifest will record them.
        rows: u64,
        /// Seconds from its first row to its last (under `--jobs`, from its first page range
        /// to its last).
        seconds: f64,
    },
    /// One database could not be dumped; the run goes on with the others.
    DatabaseFailed {
        /// The database's name in the run.
        name: String,
        /// What went wrong.
        failure: DatabaseFailure,
    },

    /// `dump --resume` found no unfinished run of its inventory at the destination and starts
    /// a new run.
    NothingToResume {
        /// The destination.
        destination: String,
        /// The inventory's source kind (`config`, `urls`, `aptible`).
        source: String,
    },
    /// `dump --resume` continues an unfinished run: its recorded archives are checked next.
    ResumeStarted {
        /// The run id.
        run_id: String,
        /// Where the run is (`<destination>/<run-id>`).
        location: String,
        /// When the run was first started.
        started_at: DateTime<Utc>,
        /// How many databases it recorded as finished (before their check).
        recorded: usize,
    },
    /// A finished database of the resumed run passed its check (the stored archive's length
    /// and SHA-256 equal its completion record's) and is kept: it is not dumped again.
    ArchiveKept {
        /// The database's name in the run.
        name: String,
        /// The archive file.
        file: String,
        /// Its stored bytes.
        compressed_bytes: u64,
        /// When its dump finished.
        finished_at: DateTime<Utc>,
    },
    /// Something of the resumed run is not kept (a tampered archive, one without completion
    /// record, a database no longer in the inventory): said, and removed from the run.
    ResumeWarning {
        /// The database's name (or the file's, when no database matches it).
        name: String,
        /// What happens to it.
        warning: String,
    },
    /// Information about the resumed run as a whole (unfinished writes discarded).
    ResumeNote {
        /// The database concerned, if one.
        name: Option<String>,
        /// What happened.
        note: String,
    },

    /// A verification starts.
    VerifyStarted {
        /// The run id.
        run_id: String,
        /// The level.
        level: Level,
        /// Where the run is (`<destination>/<run-id>`).
        location: String,
        /// Entries in the manifest (0 when it cannot be read): each gets an
        /// [`Event::ArchiveChecked`] or [`Event::ArchiveSkipped`].
        archives: usize,
    },
    /// A problem of the run as a whole (manifest, `SHA256SUMS`, extra files).
    RunProblem {
        /// One line.
        problem: String,
    },
    /// A database the manifest marks `skipped` has no archive: nothing to verify.
    ArchiveSkipped {
        /// The database's name.
        name: String,
        /// Why it was not exported (the manifest entry's `error`).
        reason: String,
    },
    /// One archive is being read back (levels `checksum` and `decompress`; level `restore`
    /// reads it so first).
    ArchiveCheckStarted {
        /// The archive file.
        label: String,
        /// Stored bytes, as the manifest says.
        stored_bytes: u64,
    },
    /// Reading one archive back is still running: sent every [`Progress::heartbeat`].
    ArchiveCheckProgress {
        /// The archive file.
        label: String,
        /// Stored bytes read so far.
        bytes_read: u64,
        /// The archive's stored size, as the manifest says.
        total_bytes: Option<u64>,
        /// Seconds since the read started.
        seconds: f64,
    },
    /// One archive was read back (levels `checksum` and `decompress`).
    ArchiveChecked {
        /// The archive file, or the database's name when the manifest names no file.
        label: String,
        /// Whether every check passed.
        ok: bool,
        /// Stored bytes, as the manifest says.
        stored_bytes: u64,
        /// Payload bytes, as the manifest says.
        payload_bytes: u64,
        /// What failed.
        problems: Vec<String>,
    },
    /// A scratch restore (level `restore`) starts.
    ScratchRestoreStarted {
        /// The archive file.
        label: String,
        /// The scratch server (redacted).
        server: String,
    },
    /// A scratch restore (level `restore`) is still running: sent every
    /// [`Progress::heartbeat`].
    ScratchRestoreProgress {
        /// The archive file.
        label: String,
        /// Stored (compressed) bytes of the archive read so far.
        bytes_read: u64,
        /// The archive's stored size, as the manifest says.
        total_bytes: Option<u64>,
        /// Seconds since the restore started.
        seconds: f64,
    },
    /// A scratch restore (level `restore`) ended.
    ScratchRestoreChecked {
        /// The archive file.
        label: String,
        /// The manifest's engine name.
        engine: String,
        /// Whether the restore and every fingerprint matched.
        ok: bool,
        /// What the restore did, when it started.
        check: Option<RestoreCheck>,
        /// What failed.
        problems: Vec<String>,
    },
    /// The scratch database's name was taken on the scratch server (a leftover of an
    /// interrupted verification, or a verification of the same run beside this one): left
    /// alone, and the restore goes to another name.
    ScratchNameTaken {
        /// The taken name.
        name: String,
        /// The scratch server (redacted).
        server: String,
    },
    /// A scratch database could not be dropped after its check.
    ScratchLeftBehind {
        /// The scratch database.
        name: String,
        /// The scratch server (redacted).
        server: String,
        /// Why.
        error: String,
    },

    /// `restore --clean` reads the archive once before dropping anything.
    CleanCheckStarted {
        /// The archive file.
        label: String,
    },
    /// `restore --clean` drops what the target holds.
    CleanStarted {
        /// The target (redacted).
        target: String,
        /// How many objects it holds.
        objects: usize,
    },
    /// The restore proper starts.
    RestoreStarted {
        /// The database's name in the run.
        database: String,
        /// The archive file.
        label: String,
        /// The run id.
        run_id: String,
        /// The target (redacted).
        target: String,
    },

    /// The teardown sends one destructive request (or follows the operation of an earlier
    /// `--apply`).
    TeardownStepStarted {
        /// The resource in words.
        resource: String,
        /// The request.
        request: String,
    },
    /// A teardown step is done (or was done by an earlier `--apply`).
    TeardownStepFinished {
        /// The resource in words.
        resource: String,
        /// How it ended (`operation #7001 succeeded`, `already gone (404)`, …).
        outcome: String,
    },
    /// The restore proper is still running: sent every [`Progress::heartbeat`].
    RestoreProgress {
        /// The archive file.
        label: String,
        /// Stored (compressed) bytes of the archive read so far.
        bytes_read: u64,
        /// The archive's stored size, as the manifest says.
        total_bytes: Option<u64>,
        /// Seconds since the restore started.
        seconds: f64,
    },
}

/// Receives a service's [`Event`]s.
pub trait Progress: Send + Sync {
    /// One event. Called from the service's task or one of its threads; must not block long.
    fn event(&self, event: &Event);

    /// How often long work should report that it is still running (the `…Progress` events:
    /// [`Event::DatabaseProgress`], [`Event::ArchiveCheckProgress`],
    /// [`Event::ScratchRestoreProgress`], [`Event::RestoreProgress`]); `None`, the default,
    /// for never. Progress bars ask for a few per second, plain lines for one every 30 s.
    fn heartbeat(&self) -> Option<Duration> {
        None
    }
}

/// A byte count that a pipeline advances and a [`Ticker`] reads (shared, lock-free).
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<AtomicU64>);

impl Meter {
    /// Count `n` more bytes.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The bytes counted so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Replace the count (for a figure known at once, such as an engine's size estimate).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// What a running dump has done so far, advanced by the pipeline and read by its [`Ticker`]
/// for [`Event::DatabaseProgress`].
#[derive(Debug, Clone, Default)]
pub struct DumpMeters {
    /// Payload bytes pulled from the engine (before compression).
    pub read: Meter,
    /// Compressed bytes handed to storage.
    pub written: Meter,
    /// The engine's size estimate in payload bytes ([`exporter_contract::DumpMeta::size_hint`]);
    /// 0 while unknown.
    pub expected: Meter,
    /// Rows (Redis: keys) the engine read so far ([`TableWatch`]).
    pub rows: Meter,
    /// The tables being read now ([`TableWatch`]).
    pub tables: CurrentTables,
}

/// The tables of a dump being read now, each with the time it started; shared by the
/// engine's [`TableWatch`] and the [`Ticker`] that reads it.
#[derive(Debug, Clone, Default)]
pub struct CurrentTables(Arc<Mutex<Vec<(String, Instant)>>>);

impl CurrentTables {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `name` starts now.
    pub fn start(&self, name: &str) {
        self.lock().push((name.to_owned(), Instant::now()));
    }

    /// `name` is done: it is no longer current. Returns how long it ran (`None` if it was
    /// never started).
    #[must_use]
    pub fn finish(&self, name: &str) -> Option<Duration> {
        let mut tables = self.lock();
        let at = tables.iter().position(|(n, _)| n == name)?;
        Some(tables.remove(at).1.elapsed())
    }

    /// The current tables' names, in the order they started.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The core's [`DumpObserver`] for one database's dump: rows advance [`DumpMeters::rows`],
/// a started table joins [`DumpMeters::tables`], and a table done leaves it and is reported
/// as [`Event::TableDumped`]. Cheap per call: an atomic add for rows; a short lock, and for a
/// table done one event, per table.
pub struct TableWatch {
    database: String,
    rows: Meter,
    tables: CurrentTables,
    progress: Arc<dyn Progress>,
}

impl TableWatch {
    /// A watch over the dump of `database` (its name in the run), advancing `meters` and
    /// reporting to `progress`.
    #[must_use]
    pub fn new(database: &str, meters: &DumpMeters, progress: Arc<dyn Progress>) -> Self {
        Self {
            database: database.to_owned(),
            rows: meters.rows.clone(),
            tables: meters.tables.clone(),
            progress,
        }
    }
}

impl DumpObserver for TableWatch {
    fn table_started(&self, name: &str) {
        self.tables.start(name);
    }

    fn rows(&self, n: u64) {
        self.rows.add(n);
    }

    fn table_done(&self, table: &TableSummary) {
        let seconds = self
            .tables
            .finish(&table.name)
            .map_or(0.0, |d| d.as_secs_f64());
        self.progress.event(&Event::TableDumped {
            name: self.database.clone(),
            table: table.name.clone(),
            rows: table.rows,
            seconds,
        });
    }
}

/// An [`std::io::Read`] that counts the bytes it reads on a [`Meter`] (for the progress of a
/// blocking read).
#[derive(Debug)]
pub struct MeteredReader<R> {
    inner: R,
    meter: Meter,
}

impl<R> MeteredReader<R> {
    /// Count what `inner` reads on `meter`.
    pub fn new(inner: R, meter: Meter) -> Self {
        Self { inner, meter }
    }
}

impl<R: std::io::Read> std::io::Read for MeteredReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n as u64);
        Ok(n)
    }
}

/// Calls a closure every `every` (first after one interval) with the time since it started,
/// until dropped: the heartbeat of one long piece of work. Needs a Tokio runtime.
#[derive(Debug)]
pub struct Ticker(Option<tokio::task::JoinHandle<()>>);

impl Ticker {
    /// Start ticking; `every: None` (or zero) starts nothing.
    #[must_use]
    pub fn start(every: Option<Duration>, beat: impl Fn(Duration) + Send + 'static) -> Self {
        let Some(every) = every.filter(|d| !d.is_zero()) else {
            return Self(None);
        };
        let started = Instant::now();
        Self(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                beat(started.elapsed());
            }
        })))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// An observer that ignores everything (for library callers and tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// Collects the events it is sent.
    #[derive(Default)]
    struct Collect(Mutex<Vec<Event>>);

    impl Progress for Collect {
        fn event(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn a_table_watch_counts_rows_keeps_the_current_tables_and_reports_each_table() {
        let meters = DumpMeters::default();
        let events = Arc::new(Collect::default());
        let watch = TableWatch::new("app", &meters, events.clone());
        watch.table_started("public.a");
        watch.table_started("public.b");
        watch.rows(5);
        assert_eq!(meters.tables.names(), ["public.a", "public.b"]);
        watch.rows(2);
        watch.table_done(&TableSummary {
            name: "public.a".into(),
            rows: 4,
            fingerprint: exporter_contract::Fingerprint::EMPTY,
        });
        assert_eq!(meters.rows.get(), 7);
        assert_eq!(
            meters.tables.names(),
            ["public.b"],
            "a table done is not current"
        );
        let events = events.0.lock().unwrap();
        let [
            Event::TableDumped {
                name,
                table,
                rows,
                seconds,
            },
        ] = events.as_slice()
        else {
            panic!("one table_dumped event: {events:?}");
        };
        assert_eq!(
            (name.as_str(), table.as_str(), *rows),
            ("app", "public.a", 4)
        );
        assert!(*seconds >= 0.0 && *seconds < 5.0, "{seconds}");
        assert_eq!(meters.tables.finish("never started"), None);
    }

    #[test]
    fn a_metered_reader_counts_what_it_reads() {
        let meter = Meter::default();
        let mut reader = MeteredReader::new(&b"twelve bytes"[..], meter.clone());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(meter.get(), 12);
        meter.set(3);
        assert_eq!(meter.get(), 3);
    }
}
