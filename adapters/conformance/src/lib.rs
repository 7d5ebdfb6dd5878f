//! The engine conformance suite: behaviour every engine adapter must show, checked the same way
//! for each (opendal's behaviour tests, rustic's testing crate; design.md section 3, "the
//! adapter contract"). A dev-only crate: each adapter calls the checks from its own
//! `tests/conformance.rs` with a [`Harness`] for its real test server.
//!
//! The checks, one function each:
//!
//! - [`dump_ends_and_reports_completion`]: the body ends, then `completion` resolves `Ok` with a
//!   summary that accounts for every row the harness wrote;
//! - [`restore_into_an_empty_target`]: a dump restores into an empty database, which then holds
//!   every row;
//! - [`restore_fingerprints_equal_the_dump`]: the restored database's fingerprints
//!   ([`Target::fingerprint`]) equal the dump's, table by table;
//! - [`dropping_a_dump_cancels_server_work`]: dropping a dump mid-stream closes its server
//!   connections (contract, point 5);
//! - [`killed_connection_fails_classified`]: a connection killed by the server mid-stream makes
//!   the dump fail — never complete `Ok` — with a protocol or cancelled error that names what
//!   it concerns (the table or key, or else the endpoint) and never the password;
//! - [`describe_never_shows_the_password`]: `describe()` of a source and a target redacts the
//!   password, as do the errors of a server that cannot be reached (connect errors, retryable,
//!   naming the endpoint);
//! - [`check_of_a_readable_database_passes`]: `check()` of a readable database reports no
//!   problem, its version and a size, closes its connections, and the dump that follows
//!   completes; of an unreachable server it is a connect error without the password;
//! - [`observer_hears_every_table`]: the [`DumpObserver`] of a dump (one connection and
//!   several) hears each table of the summary start once and end once, exactly as the summary
//!   lists it, and rows that add up to the summary's, in batches ([`Recorder::check`], also
//!   for an adapter's own tests).
//!
//! Every URL a harness hands out carries [`Harness::secret`] as its password, so each check can
//! also assert that the secret never appears in a description or an error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use exporter_contract::{
    DatabaseUrl, DumpObserver, DumpOptions, DumpSummary, EngineError, ErrorKind, Source,
    TableSummary, Target,
};
use futures::StreamExt as _;

/// Rows a small seed writes (a dump of a few chunks).
pub const SMALL_ROWS: u64 = 500;
/// Rows a large seed writes, about 1 KiB each: ~20 MB, far more than the adapter's channel and
/// the socket buffers hold, so a dump is still running after its first chunk.
pub const LARGE_ROWS: u64 = 20_000;

/// What a check needs from an engine's test environment. Implemented in each adapter's
/// `tests/conformance.rs` against the real server on the machine (never a mock).
pub trait Harness: Sync {
    /// A database of the engine, owned by one check: dropped (or its server stopped) when the
    /// value is dropped.
    type Db: Send + Sync;

    /// The password in every URL this harness hands out; it must never appear in a
    /// description or an error.
    fn secret(&self) -> &'static str;

    /// Create an empty database for one check (`tag` makes its name unique and readable).
    fn create(&self, tag: &str) -> impl Future<Output = Self::Db> + Send;

    /// Write `rows` rows (Redis: keys) of about 1 KiB each, spread over a few tables (Redis:
    /// one logical database).
    fn seed(&self, db: &Self::Db, rows: u64) -> impl Future<Output = ()> + Send;

    /// The database's URL, with [`Harness::secret`] as its password.
    fn url(&self, db: &Self::Db) -> DatabaseUrl;

    /// A URL of the engine, with [`Harness::secret`] as its password, where nothing listens.
    fn unreachable_url(&self) -> DatabaseUrl;

    /// The engine's source for `url`.
    fn source(&self, url: DatabaseUrl) -> Arc<dyn Source>;

    /// The engine's restore target for `url`.
    fn target(&self, url: DatabaseUrl) -> Arc<dyn Target>;

    /// How many server connections the adapter holds to `db` now.
    fn connections(&self, db: &Self::Db) -> impl Future<Output = usize> + Send;

    /// Kill the adapter's server connections to `db` from the server side; returns how many.
    fn kill_connections(&self, db: &Self::Db) -> impl Future<Output = usize> + Send;
}

/// A whole dump: its chunks and its summary.
struct Dumped {
    format: exporter_contract::PayloadFormat,
    chunks: Vec<Bytes>,
    summary: DumpSummary,
}

/// Dump `url` to the end, failing the check on any error.
async fn dump_all<H: Harness>(h: &H, url: DatabaseUrl) -> Dumped {
    dump_with(h, url, DumpOptions::default()).await
}

/// [`dump_all`] with `options`.
async fn dump_with<H: Harness>(h: &H, url: DatabaseUrl, options: DumpOptions) -> Dumped {
    let source = h.source(url);
    source
        .preflight()
        .await
        .unwrap_or_else(|e| panic!("preflight of {}: {e}", source.describe()));
    let dump = source
        .dump(options)
        .await
        .unwrap_or_else(|e| panic!("dump of {}: {e}", source.describe()));
    let format = dump.meta.format;
    let mut body = dump.body;
    let mut chunks = Vec::new();
    while let Some(item) = body.next().await {
        chunks.push(item.unwrap_or_else(|e| panic!("body of {}: {e}", source.describe())));
    }
    drop(body);
    let summary = dump
        .completion
        .await
        .unwrap_or_else(|e| panic!("completion of {}: {e}", source.describe()));
    Dumped {
        format,
        chunks,
        summary,
    }
}

fn total_rows(tables: &[TableSummary]) -> u64 {
    tables.iter().map(|t| t.rows).sum()
}

/// The body ends, and only then `completion` resolves `Ok` with a summary that counts every
/// row written.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn dump_ends_and_reports_completion<H: Harness>(h: &H) {
    let db = h.create("complete").await;
    h.seed(&db, SMALL_ROWS).await;
    let dumped = dump_all(h, h.url(&db)).await;
    assert!(
        dumped.chunks.iter().any(|c| !c.is_empty()),
        "the body carried no bytes"
    );
    assert!(
        !dumped.summary.tables.is_empty(),
        "the summary lists no table"
    );
    assert_eq!(
        total_rows(&dumped.summary.tables),
        SMALL_ROWS,
        "the summary must count every row written: {:?}",
        dumped.summary.tables
    );
}

/// Dump a seeded database, restore it into an empty one; returns the dump's summary and the
/// target.
async fn round_trip<H: Harness>(h: &H, tag: &str) -> (DumpSummary, Arc<dyn Target>, H::Db, H::Db) {
    let source = h.create(&format!("{tag}_src")).await;
    h.seed(&source, SMALL_ROWS).await;
    let dumped = dump_all(h, h.url(&source)).await;
    let target_db = h.create(&format!("{tag}_dst")).await;
    let target = h.target(h.url(&target_db));
    target
        .preflight()
        .await
        .unwrap_or_else(|e| panic!("preflight of {}: {e}", target.describe()));
    let existing = target.existing_objects().await.expect("existing objects");
    assert!(existing.is_empty(), "a new target is empty: {existing:?}");
    let body = futures::stream::iter(dumped.chunks.into_iter().map(Ok)).boxed();
    let summary = target
        .restore(
            dumped.format,
            body,
            exporter_contract::RestoreOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("restore into {}: {e}", target.describe()));
    assert_eq!(
        summary.rows, SMALL_ROWS,
        "the restore must load every row: {summary:?}"
    );
    (dumped.summary, target, source, target_db)
}

/// A dump restores into an empty database, which then holds it.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn restore_into_an_empty_target<H: Harness>(h: &H) {
    let (_, target, _source, _target_db) = round_trip(h, "restore").await;
    let existing = target.existing_objects().await.expect("existing objects");
    assert!(
        !existing.is_empty(),
        "after a restore the target holds objects"
    );
}

/// The restored database's fingerprints equal the dump's, table by table.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn restore_fingerprints_equal_the_dump<H: Harness>(h: &H) {
    let (dumped, target, _source, _target_db) = round_trip(h, "fingerprint").await;
    let mut restored = target
        .fingerprint()
        .await
        .unwrap_or_else(|e| panic!("fingerprint of {}: {e}", target.describe()));
    let mut expected = dumped.tables;
    restored.sort_by(|a, b| a.name.cmp(&b.name));
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        restored, expected,
        "fingerprints of the restore vs the dump"
    );
}

/// Start a dump of a large database and read its first chunk.
async fn started_dump<H: Harness>(h: &H, db: &H::Db) -> exporter_contract::Dump {
    let mut dump = h
        .source(h.url(db))
        .dump(DumpOptions::default())
        .await
        .expect("dump starts");
    let first = dump
        .body
        .next()
        .await
        .expect("a first chunk")
        .expect("an ok first chunk");
    assert!(!first.is_empty());
    dump
}

/// Dropping a dump mid-stream closes its server connections within 10 s.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn dropping_a_dump_cancels_server_work<H: Harness>(h: &H) {
    let db = h.create("cancel").await;
    h.seed(&db, LARGE_ROWS).await;
    let dump = started_dump(h, &db).await;
    assert!(
        h.connections(&db).await > 0,
        "the running dump holds a connection"
    );
    drop(dump);
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.connections(&db).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the dump's server work survived the dropped dump"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection killed by the server mid-stream makes the dump fail: the completion (and the
/// body, when it reports anything) is a protocol or cancelled error that names what it
/// concerns (the table or key being read, or else the endpoint), without the password.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn killed_connection_fails_classified<H: Harness>(h: &H) {
    let db = h.create("killed").await;
    h.seed(&db, LARGE_ROWS).await;
    let dump = started_dump(h, &db).await;
    assert!(
        h.kill_connections(&db).await > 0,
        "no connection of the dump was killed"
    );
    let mut body = dump.body;
    let mut body_error: Option<EngineError> = None;
    while let Some(item) = body.next().await {
        if let Err(e) = item {
            body_error.get_or_insert(e);
        }
    }
    drop(body);
    let error = dump
        .completion
        .await
        .expect_err("a dump whose connection was killed must not complete Ok");
    let url = h.url(&db);
    for e in std::iter::once(&error).chain(body_error.as_ref()) {
        assert!(
            matches!(e.kind(), ErrorKind::Protocol | ErrorKind::Cancelled),
            "a killed connection is a protocol or cancelled error: {e:?}"
        );
        assert_no_secret(h, e);
    }
    // What it concerns: the table or key being read, or else the endpoint. (The core adds
    // the database's redacted endpoint to every failure it reports.)
    let text = error.to_string();
    let endpoint = format!("{}:{}", url.host(), url.port().unwrap_or_default());
    assert!(
        error.object().is_some() || text.contains(&endpoint),
        "the error names its object or the endpoint ({}): {error:?}",
        url.redacted()
    );
}

/// `describe()` of a source and a target redacts the password; so do the errors of a server
/// that cannot be reached, which are connect errors a retry may help, naming the endpoint.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn describe_never_shows_the_password<H: Harness>(h: &H) {
    let db = h.create("describe").await;
    let url = h.url(&db);
    assert!(
        url.password().as_deref() == Some(h.secret()),
        "the harness's URLs carry its secret"
    );
    for text in [
        h.source(url.clone()).describe(),
        h.target(url.clone()).describe(),
    ] {
        assert!(!text.contains(h.secret()), "{text}");
        assert!(text.contains("****"), "the password shows as ****: {text}");
    }
    let unreachable = h.unreachable_url();
    let gone = h.source(unreachable.clone());
    let e = gone.preflight().await.expect_err("nothing listens there");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.is_retryable(), "a connect error may be retried: {e}");
    let endpoint = format!(
        "{}:{}",
        unreachable.host(),
        unreachable.port().unwrap_or_default()
    );
    assert!(e.to_string().contains(&endpoint), "names {endpoint}: {e}");
    assert_no_secret(h, &e);
    let e = gone
        .dump(DumpOptions::default())
        .await
        .expect_err("nothing listens there");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert_no_secret(h, &e);
}

/// [`exporter_contract::Source::check`] of a seeded database the harness's account may read
/// reports no problem, the server's version and a size, and leaves no connection behind; the
/// dump that follows completes (a check that passes means the dump can start). Of a server
/// that cannot be reached, the check is a connect error naming the endpoint, without the
/// password.
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn check_of_a_readable_database_passes<H: Harness>(h: &H) {
    let db = h.create("check").await;
    h.seed(&db, SMALL_ROWS).await;
    let source = h.source(h.url(&db));
    let report = source
        .check(DumpOptions::default())
        .await
        .unwrap_or_else(|e| panic!("check of {}: {e}", source.describe()));
    assert!(
        report.passed(),
        "a readable database has no problem: {:?}",
        report.problems
    );
    assert!(!report.server.version.is_empty(), "{report:?}");
    assert!(
        report.size_bytes.is_some_and(|b| b > 0),
        "a seeded database has a size: {report:?}"
    );
    assert!(
        !format!("{report:?}").contains(h.secret()),
        "the report holds the password: {report:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.connections(&db).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the check left a connection open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dumped = dump_all(h, h.url(&db)).await;
    assert_eq!(total_rows(&dumped.summary.tables), SMALL_ROWS);

    let unreachable = h.unreachable_url();
    let e = h
        .source(unreachable.clone())
        .check(DumpOptions::default())
        .await
        .expect_err("nothing listens there");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let endpoint = format!(
        "{}:{}",
        unreachable.host(),
        unreachable.port().unwrap_or_default()
    );
    assert!(e.to_string().contains(&endpoint), "names {endpoint}: {e}");
    assert_no_secret(h, &e);
}

/// Every call a [`DumpObserver`] receives, in order, for [`Recorder::check`].
#[derive(Debug, Default)]
pub struct Recorder {
    /// `table_started` and `table_done`, in the order they came.
    calls: Mutex<Vec<Call>>,
    /// The sum of `rows`.
    rows: AtomicU64,
    /// How many `rows` calls.
    batches: AtomicU64,
}

#[derive(Debug, Clone)]
enum Call {
    Started(String),
    Done(TableSummary),
}

impl DumpObserver for Recorder {
    fn table_started(&self, name: &str) {
        self.calls
            .lock()
            .expect("recorder lock")
            .push(Call::Started(name.to_owned()));
    }

    fn rows(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    fn table_done(&self, table: &TableSummary) {
        self.calls
            .lock()
            .expect("recorder lock")
            .push(Call::Done(table.clone()));
    }
}

impl Recorder {
    /// The rows reported so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// How many `rows` calls came.
    #[must_use]
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// The names of the `table_started` calls, in order.
    #[must_use]
    pub fn started(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("recorder lock")
            .iter()
            .filter_map(|c| match c {
                Call::Started(name) => Some(name.clone()),
                Call::Done(_) => None,
            })
            .collect()
    }

    /// The `table_done` calls, in order.
    #[must_use]
    pub fn done(&self) -> Vec<TableSummary> {
        self.calls
            .lock()
            .expect("recorder lock")
            .iter()
            .filter_map(|c| match c {
                Call::Done(t) => Some(t.clone()),
                Call::Started(_) => None,
            })
            .collect()
    }

    /// Check the observer protocol against the summary of the completed dump: every table
    /// of `summary` started once, then was done once with exactly its summary entry (in any
    /// order across tables); nothing else started or ended; the rows add up to the summary's.
    ///
    /// # Panics
    ///
    /// When the calls do not match `summary`.
    pub fn check(&self, summary: &DumpSummary) {
        let calls = self.calls.lock().expect("recorder lock").clone();
        let mut state: HashMap<&str, bool> = HashMap::new();
        for call in &calls {
            match call {
                Call::Started(name) => assert!(
                    state.insert(name, false).is_none(),
                    "{name} started twice: {calls:?}"
                ),
                Call::Done(t) => match state.get_mut(t.name.as_str()) {
                    Some(done @ false) => *done = true,
                    Some(true) => panic!("{} done twice: {calls:?}", t.name),
                    None => panic!("{} done before it started: {calls:?}", t.name),
                },
            }
        }
        let mut done = self.done();
        let mut expected = summary.tables.clone();
        done.sort_by(|a, b| a.name.cmp(&b.name));
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            done,
            expected,
            "the tables done are the summary's (started: {:?})",
            self.started()
        );
        assert_eq!(
            state.len(),
            expected.len(),
            "every table started is in the summary: {calls:?}"
        );
        assert_eq!(
            self.rows(),
            total_rows(&summary.tables),
            "the rows reported add up to the summary's"
        );
    }
}

/// The observer of a dump hears each table of the summary start once and end once, exactly
/// as the summary lists it, and rows that add up to the summary's, reported in batches (fewer
/// calls than rows); with one connection and with `jobs` 3 (engines without parallel reads
/// ignore it).
///
/// # Panics
///
/// When the adapter does not conform.
pub async fn observer_hears_every_table<H: Harness>(h: &H) {
    let db = h.create("observer").await;
    h.seed(&db, SMALL_ROWS).await;
    for jobs in [1, 3] {
        let recorder = Arc::new(Recorder::default());
        let options = DumpOptions::default()
            .with_jobs(jobs)
            .with_observer(recorder.clone());
        let dumped = dump_with(h, h.url(&db), options).await;
        recorder.check(&dumped.summary);
        assert_eq!(recorder.rows(), SMALL_ROWS, "jobs={jobs}");
        assert!(
            recorder.batches() < SMALL_ROWS / 2,
            "jobs={jobs}: rows are reported per batch, not per row: {} calls for {} rows",
            recorder.batches(),
            SMALL_ROWS
        );
    }
}

/// Neither the error's text nor its debug form holds the harness's secret.
fn assert_no_secret<H: Harness>(h: &H, e: &EngineError) {
    assert!(!e.to_string().contains(h.secret()), "{e}");
    assert!(!format!("{e:?}").contains(h.secret()), "{e:?}");
}
