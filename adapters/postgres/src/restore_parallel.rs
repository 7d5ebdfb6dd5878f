//! The parallel restore of `RestoreOptions::jobs` > 1: one plain SQL script applied over
//! several sessions, the way `pg_restore -j` restores a directory-format dump (its
//! `restore_toc_entries_parallel`: pre-data in order on one connection, then data and
//! post-data items on worker connections, items that lock the same table never at once), but
//! from the same plain script `psql` restores, read once, in order.
//!
//! # Who runs what
//!
//! The script is read and split once ([`Splitter`]), and every statement is classified
//! ([`classify`]):
//!
//! - **Session statements** (`SET`, `RESET`, `set_config(…, false)`) run on the main session
//!   at once and are appended to a log. Before a worker runs any item it applies the log
//!   entries it has not applied yet, up to the item's place in the script: every item runs
//!   under exactly the session state (`search_path`, `row_security`, the role, …) it would
//!   have run under in a serial restore.
//! - **`COPY … FROM stdin` blocks** go to the workers, one block per worker at a time, their
//!   data streamed to the worker's session as it is read (our dumps cut tables into blocks of
//!   about 256 KiB, so the reader is soon at the next block while the servers load the
//!   previous ones; a `pg_dump` script's one block per table still loads tables in parallel
//!   whenever the reader can run ahead of the server). A worker that finds the next block of
//!   the table it is loading already queued (same `COPY` text, same session state) streams it
//!   into the `COPY` it has open rather than committing and starting another ([`OpenCopy`]);
//!   it commits as soon as no such block is queued.
//! - **Index and constraint statements** ([`Class::Index`]: `CREATE INDEX`, `ADD CONSTRAINT …
//!   PRIMARY KEY | UNIQUE | EXCLUDE | CHECK`) go to the workers once every data block before
//!   them is loaded; two on the same table never run at once (they would only wait for each
//!   other's lock). **Foreign keys** ([`Class::ForeignKey`]) start once every index and
//!   constraint before them is built (a foreign key needs the referenced table's unique
//!   index), never two at once on a table either of them names. A statement that is the
//!   victim of a deadlock (SQLSTATE 40P01: the server rolled it back) is tried again, up to
//!   three times.
//! - **Everything else** — `CREATE TABLE`, functions, `setval`, `ALTER INDEX … ATTACH
//!   PARTITION`, views, comments, owners, grants, and every statement inside an explicit
//!   `BEGIN … COMMIT` — is a barrier: it runs on the main session after every item before it
//!   is done, and nothing after it starts before it is done. So the schema is complete before
//!   the first row is loaded, and everything the post-data section builds on is in place.
//!   An index attachment names two indexes, not their tables, and needs both built: as a
//!   barrier it runs once every index and key before it in the script is (our dumps and
//!   pg_dump's put every attachment after every index build — pg_dump's `PRIO_INDEX_ATTACH`
//!   — so the restore waits for the builds once, and the attachments, quick catalog updates,
//!   follow one after the other). The indexes of a partitioned table and of its partitions
//!   are separate statements (`CREATE INDEX … ON ONLY parent`, `ALTER TABLE ONLY parent ADD
//!   CONSTRAINT …`, one per partition), so they build in parallel.
//!
//! The first worker connects before anything is applied (a server that allows only one
//! session gets the serial restore instead of a failure); the others connect only when there
//! is work for them: the restore grows to `jobs` sessions while every existing worker is busy,
//! so a small script runs on two, and sessions the server refuses leave their share to the
//! others.
//!
//! # Failure
//!
//! The first failing statement stops the restore: the error names it as a serial restore
//! would (statement number, line, first words, and the table of an index or constraint),
//! statements still running on other workers are cancelled (`pg_cancel_backend` from the main
//! session), and no summary is returned. What was applied before stays applied, as with
//! `psql`; a `COPY` block whose end was not reached is never committed (nor are the blocks
//! merged into the same `COPY`). A data error names the block holding the bad line and the
//! line within it, as the serial restore does.
//!
//! # Memory
//!
//! At most [`BLOCK_QUEUE`] pieces of the block being read (slices of the input chunks) plus
//! `jobs` queued items; statements one at a time, as in the serial restore.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use exporter_contract::{EngineError, ErrorKind, RestoreSummary};
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::JoinSet;
use tokio_postgres::CopyInSink;
use tokio_postgres::error::SqlState;

use crate::connect::{Conn, Link};
use crate::restore::{
    Applier, Skips, connect_restore, make_durable, simple, statement_error, statement_error_in,
};
use crate::script::{Class, Item, Splitter, Statement, classify};

/// Data pieces of one `COPY` block queued for its worker. A piece is at most one input chunk
/// (128 KiB from the archive reader), so a block of our dumps fits whole.
pub const BLOCK_QUEUE: usize = 16;

/// How often a deadlock victim is tried again.
const DEADLOCK_RETRIES: u32 = 3;

/// The data of the block being read, as the worker receives it.
enum Piece {
    Data(Bytes),
    /// The `\.`: the block is complete and may be committed.
    End,
}

/// What kind of item a worker runs: items of one kind run together, a change of kind waits
/// for the items of the other kind to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Copy,
    Index,
    ForeignKey,
}

/// One item of work for a worker.
struct Work {
    stmt: Statement,
    /// The error object: [`Statement::label`].
    label: String,
    /// Session log entries to apply first (the log's length when the item was read).
    version: usize,
    /// The block's data (a `COPY`), or `None` (an index or constraint).
    data: Option<mpsc::Receiver<Piece>>,
}

/// A finished item.
struct Done {
    number: u64,
    rows: u64,
    result: Result<(), EngineError>,
}

/// The session statements of the script so far, in order, shared with the workers.
type SessionLog = Arc<StdMutex<Vec<Arc<Statement>>>>;

/// Apply `body` on up to `jobs` sessions (see the module docs).
///
/// # Errors
///
/// As the serial restore: the first failing statement ([`ErrorKind::Query`] naming it),
/// a malformed script ([`ErrorKind::Protocol`]), connection errors.
pub(crate) async fn restore(
    link: Link,
    mut body: BoxStream<'static, Result<Bytes, EngineError>>,
    skips: Skips,
    jobs: usize,
) -> Result<RestoreSummary, EngineError> {
    let conn = connect_restore(&link).await?;
    // The first worker session, opened before anything is applied: a server that refuses a
    // second session (its `max_connections`, the role's connection limit) gets the serial
    // restore on the one session it allows, rather than a failure.
    let first = match connect_restore(&link).await {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!("restore: no second session ({e}); restoring on one session");
            return crate::restore::apply_serial(conn, body, skips).await;
        }
    };
    let mut primary = Applier {
        conn,
        copy: None,
        summary: RestoreSummary::default(),
        skips,
    };
    let mut pool = Pool::new(link, jobs, first);
    let mut driver = Driver {
        in_transaction: false,
        skips,
    };
    let result = drive(&mut body, &mut driver, &mut primary, &mut pool).await;
    match result {
        Ok(()) => {
            let mut summary = primary.summary;
            summary.statements += pool.statements;
            summary.rows += pool.rows;
            pool.close().await;
            // After every worker's last commit: see `make_durable`.
            make_durable(&mut primary.conn).await?;
            Ok(summary)
        }
        Err(e) => {
            pool.cancel(&primary.conn).await;
            Err(e)
        }
    }
}

/// Read, split and hand out the whole script, then wait for the last item.
async fn drive(
    body: &mut BoxStream<'static, Result<Bytes, EngineError>>,
    driver: &mut Driver,
    primary: &mut Applier,
    pool: &mut Pool,
) -> Result<(), EngineError> {
    let mut splitter = Splitter::new();
    let mut items = Vec::new();
    while let Some(chunk) = body.next().await {
        let split = splitter.push(&chunk?, &mut items);
        // Items before a splitting error run first, as in the serial restore.
        for item in items.drain(..) {
            driver.step(item, primary, pool).await?;
        }
        split?;
    }
    let end = splitter.finish(&mut items);
    for item in items.drain(..) {
        driver.step(item, primary, pool).await?;
    }
    end?;
    pool.wait_all().await
}

/// Where the reader is in the script.
struct Driver {
    /// Inside `BEGIN … COMMIT`: everything runs on the main session.
    in_transaction: bool,
    skips: Skips,
}

impl Driver {
    async fn step(
        &mut self,
        item: Item,
        primary: &mut Applier,
        pool: &mut Pool,
    ) -> Result<(), EngineError> {
        let s = match item {
            Item::Statement(s) => s,
            data @ (Item::CopyData(_) | Item::CopyEnd) if primary.copy.is_some() => {
                return primary.apply(data).await;
            }
            Item::CopyData(data) => return pool.feed(Piece::Data(data)).await,
            Item::CopyEnd => return pool.feed(Piece::End).await,
        };
        if self.skips.skips(&s.text) {
            primary.summary.skipped += 1;
            return Ok(());
        }
        let class = classify(&s.text);
        if self.in_transaction {
            pool.wait_all().await?;
            if class == Class::End {
                self.in_transaction = false;
            }
            let session = class == Class::Session;
            let log = session.then(|| Arc::new(s.clone()));
            primary.statement(s).await?;
            if let Some(s) = log {
                pool.log_session(s);
            }
            return Ok(());
        }
        if s.copy_from_stdin {
            return pool.copy(s).await;
        }
        match class {
            Class::Session => {
                let logged = Arc::new(s.clone());
                primary.statement(s).await?;
                pool.log_session(logged);
                Ok(())
            }
            Class::Index { .. } | Class::ForeignKey { .. } => pool.exec(s, &class).await,
            Class::Begin => {
                pool.wait_all().await?;
                self.in_transaction = true;
                primary.statement(s).await
            }
            Class::End | Class::Serial => {
                pool.wait_all().await?;
                primary.statement(s).await
            }
        }
    }
}

/// Work sent and not done yet: statement number → its kind and the tables it locks.
type Outstanding = HashMap<u64, (Kind, Vec<String>)>;

/// The worker sessions and the items given to them.
struct Pool {
    link: Link,
    jobs: usize,
    queue: mpsc::Sender<Work>,
    receiver: Arc<AsyncMutex<mpsc::Receiver<Work>>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done: mpsc::UnboundedReceiver<Done>,
    workers: JoinSet<()>,
    spawned: usize,
    /// Backend process ids of the workers, for `pg_cancel_backend`.
    pids: Arc<StdMutex<Vec<i32>>>,
    /// The first worker's session, connected before the script starts.
    first: Option<Conn>,
    log: SessionLog,
    outstanding: Outstanding,
    /// The data channel of the block being read.
    current: Option<mpsc::Sender<Piece>>,
    statements: u64,
    rows: u64,
}

impl Pool {
    fn new(link: Link, jobs: usize, first: Conn) -> Self {
        let (queue, receiver) = mpsc::channel(jobs.max(1));
        let (done_tx, done) = mpsc::unbounded_channel();
        Self {
            first: Some(first),
            link,
            jobs: jobs.max(1),
            queue,
            receiver: Arc::new(AsyncMutex::new(receiver)),
            done_tx,
            done,
            workers: JoinSet::new(),
            spawned: 0,
            pids: Arc::default(),
            log: Arc::default(),
            outstanding: HashMap::new(),
            current: None,
            statements: 0,
            rows: 0,
        }
    }

    fn log_session(&self, s: Arc<Statement>) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(s);
    }

    fn version(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Account for a finished item; its error stops the restore.
    fn complete(&mut self, done: Done) -> Result<(), EngineError> {
        self.outstanding.remove(&done.number);
        done.result?;
        self.statements += 1;
        self.rows += done.rows;
        Ok(())
    }

    /// Collect finished items until `ready` holds for the work still outstanding.
    async fn wait_for(&mut self, ready: impl Fn(&Outstanding) -> bool) -> Result<(), EngineError> {
        loop {
            while let Ok(done) = self.done.try_recv() {
                self.complete(done)?;
            }
            if ready(&self.outstanding) {
                return Ok(());
            }
            tokio::select! {
                done = self.done.recv() => self.complete(done.ok_or_else(gone)?)?,
                // A worker ends early only after it sent its failure (collected above on the
                // next turn), or by a panic.
                Some(ended) = self.workers.join_next() => {
                    if ended.is_err() {
                        return Err(gone());
                    }
                }
            }
        }
    }

    /// Wait until every item given out is done.
    async fn wait_all(&mut self) -> Result<(), EngineError> {
        self.wait_for(HashMap::is_empty).await
    }

    /// Hand `work` to the workers, adding one if every worker is busy.
    async fn dispatch(
        &mut self,
        work: Work,
        kind: Kind,
        tables: Vec<String>,
    ) -> Result<(), EngineError> {
        if self.spawned < self.jobs && self.outstanding.len() >= self.spawned {
            let mut session = Session {
                link: self.link.clone(),
                conn: None,
                applied: 0,
                log: self.log.clone(),
                pids: self.pids.clone(),
            };
            // The first worker takes the session opened before the script started (see
            // `restore`); later ones connect on their own and, if the server refuses more
            // sessions (its `max_connections`, the role's connection limit), leave the work
            // to the others.
            if let Some(first) = self.first.take() {
                session.adopt(first).await?;
            }
            self.spawned += 1;
            self.workers.spawn(worker(
                session,
                self.receiver.clone(),
                self.done_tx.clone(),
                self.spawned,
            ));
        }
        self.outstanding.insert(work.stmt.number, (kind, tables));
        let queue = self.queue.clone();
        let permit = loop {
            tokio::select! {
                permit = queue.reserve() => break permit.map_err(|_| gone())?,
                done = self.done.recv() => self.complete(done.ok_or_else(gone)?)?,
            }
        };
        permit.send(work);
        Ok(())
    }

    async fn copy(&mut self, stmt: Statement) -> Result<(), EngineError> {
        self.wait_for(|o| o.values().all(|(k, _)| *k == Kind::Copy))
            .await?;
        let (tx, rx) = mpsc::channel(BLOCK_QUEUE);
        let work = Work {
            label: stmt.label(),
            version: self.version(),
            stmt,
            data: Some(rx),
        };
        self.dispatch(work, Kind::Copy, Vec::new()).await?;
        self.current = Some(tx);
        Ok(())
    }

    async fn feed(&mut self, piece: Piece) -> Result<(), EngineError> {
        let end = matches!(piece, Piece::End);
        let Some(tx) = self.current.clone() else {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                if end {
                    "\\. outside COPY"
                } else {
                    "COPY data outside COPY"
                },
            ));
        };
        loop {
            tokio::select! {
                permit = tx.reserve() => {
                    match permit {
                        Ok(permit) => permit.send(piece),
                        // The worker stopped: its error is on the way.
                        Err(_) => {
                            self.wait_for(|_| false).await?;
                        }
                    }
                    break;
                }
                done = self.done.recv() => self.complete(done.ok_or_else(gone)?)?,
            }
        }
        if end {
            self.current = None;
        }
        Ok(())
    }

    async fn exec(&mut self, stmt: Statement, class: &Class) -> Result<(), EngineError> {
        let kind = match class {
            Class::ForeignKey { .. } => Kind::ForeignKey,
            _ => Kind::Index,
        };
        let tables: Vec<String> = class.tables().into_iter().map(str::to_owned).collect();
        self.wait_for(|o| {
            o.values()
                .all(|(k, busy)| *k == kind && !busy.iter().any(|t| tables.iter().any(|u| u == t)))
        })
        .await?;
        let work = Work {
            label: stmt.label(),
            version: self.version(),
            stmt,
            data: None,
        };
        self.dispatch(work, kind, tables).await
    }

    /// No more work: let the workers finish and close their sessions.
    async fn close(mut self) {
        drop(self.queue);
        while self.workers.join_next().await.is_some() {}
    }

    /// Stop every worker: cancel what their sessions run (from `primary`, best effort), then
    /// drop them.
    async fn cancel(mut self, primary: &Conn) {
        self.current = None;
        let pids = self
            .pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if !pids.is_empty() {
            let list = pids
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                // Only sessions still there: for one that has ended, the server warns "PID … is
                // not a PostgreSQL backend process", which would only puzzle the user.
                "SELECT pg_catalog.pg_cancel_backend(a.pid) FROM pg_catalog.pg_stat_activity a \
                  WHERE a.pid = ANY (ARRAY[{list}]::pg_catalog.int4[])"
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), primary.client.simple_query(&sql))
                .await;
        }
        self.workers.abort_all();
        while self.workers.join_next().await.is_some() {}
    }
}

fn gone() -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        "a parallel restore worker stopped without a result",
    )
}

/// A worker's session: connected on its first item, with the session log applied up to
/// the place in the script of the item it runs.
struct Session {
    link: Link,
    conn: Option<Conn>,
    applied: usize,
    log: SessionLog,
    pids: Arc<StdMutex<Vec<i32>>>,
}

impl Session {
    /// Connect (once) and note the backend's process id, for `pg_cancel_backend`.
    async fn connect(&mut self) -> Result<(), EngineError> {
        if self.conn.is_none() {
            let c = connect_restore(&self.link).await?;
            self.adopt(c).await?;
        }
        Ok(())
    }

    /// Take `c` (a [`connect_restore`] session) as this worker's and note its backend's
    /// process id, for `pg_cancel_backend`.
    async fn adopt(&mut self, mut c: Conn) -> Result<(), EngineError> {
        let pid = match c
            .client
            .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
            .await
        {
            Ok(row) => row.try_get::<_, i32>(0).unwrap_or_default(),
            Err(e) => return Err(c.error(e, "worker session").await),
        };
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pid);
        self.conn = Some(c);
        Ok(())
    }

    /// The connection, ready for an item read when the log held `version` entries.
    async fn ready(&mut self, version: usize) -> Result<&mut Conn, EngineError> {
        self.connect().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(gone());
        };
        let pending: Vec<Arc<Statement>> = {
            let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.get(self.applied..version).unwrap_or_default().to_vec()
        };
        for s in pending {
            if let Err(e) = simple(conn, &s.text).await {
                return Err(statement_error(conn, e, &s.label()).await);
            }
            self.applied += 1;
        }
        Ok(conn)
    }
}

/// A `COPY` kept open across consecutive blocks of the same statement text read under the
/// same session state: a worker that finds the next block of the table it is loading in the
/// queue streams it into the same `COPY` instead of ending it, committing, and starting
/// another (two round trips and a commit per block of about 256 KiB; about a third of a
/// worker's time in the measurement of issue 17). Committed when the queue holds no such
/// block, so the coordinator never waits on a block that is loaded but not committed.
struct OpenCopy {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    text: String,
    version: usize,
    /// Each merged block: statement number, label, data lines before it.
    blocks: Vec<(u64, String, u64)>,
    lines: u64,
}

impl OpenCopy {
    fn takes(&self, work: &Work) -> bool {
        work.data.is_some() && work.version == self.version && work.stmt.text == self.text
    }

    /// Stream one block's data into the open `COPY`.
    async fn append(
        &mut self,
        conn: &mut Conn,
        number: u64,
        label: String,
        mut data: mpsc::Receiver<Piece>,
    ) -> Result<(), EngineError> {
        self.blocks.push((number, label, self.lines));
        loop {
            match data.recv().await {
                Some(Piece::Data(bytes)) => {
                    self.lines += memchr::memchr_iter(b'\n', &bytes).count() as u64;
                    if let Err(e) = self.sink.feed(bytes).await {
                        return Err(self.error(conn, e).await);
                    }
                }
                Some(Piece::End) => return Ok(()),
                // The reader stopped before the block's end: never commit a partial block.
                None => {
                    let label = self.blocks.last().map(|b| b.1.clone()).unwrap_or_default();
                    return Err(EngineError::new(ErrorKind::Cancelled, "restore stopped")
                        .with_object(label));
                }
            }
        }
    }

    async fn error(&self, conn: &mut Conn, e: tokio_postgres::Error) -> EngineError {
        let blocks: Vec<(String, u64)> = self
            .blocks
            .iter()
            .map(|(_, label, before)| (label.clone(), *before))
            .collect();
        statement_error_in(conn, e, &blocks).await
    }

    /// Commit: one [`Done`] per merged block (the rows on the last one).
    async fn finish(mut self, conn: &mut Conn) -> Vec<Done> {
        let result = self.sink.as_mut().finish().await;
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                let error = self.error(conn, e).await;
                let number = self.blocks.first().map_or(0, |b| b.0);
                return vec![Done {
                    number,
                    rows: 0,
                    result: Err(error),
                }];
            }
        };
        let last = self.blocks.len().saturating_sub(1);
        self.blocks
            .iter()
            .enumerate()
            .map(|(i, (number, _, _))| Done {
                number: *number,
                rows: if i == last { rows } else { 0 },
                result: Ok(()),
            })
            .collect()
    }
}

/// One worker session: takes items from the shared queue until it closes.
async fn worker(
    mut session: Session,
    receiver: Arc<AsyncMutex<mpsc::Receiver<Work>>>,
    done: mpsc::UnboundedSender<Done>,
    n: usize,
) {
    if session.conn.is_none()
        && let Err(e) = session.connect().await
    {
        tracing::warn!(
            "restore: session {n} could not connect ({e}); the other sessions do its share"
        );
        return;
    }
    let mut open: Option<OpenCopy> = None;
    loop {
        let work = if open.is_some() {
            // Only what is queued now: an idle worker holding the queue's lock means it is
            // empty.
            receiver
                .try_lock()
                .ok()
                .and_then(|mut queue| queue.try_recv().ok())
        } else {
            match receiver.lock().await.recv().await {
                Some(work) => Some(work),
                None => return,
            }
        };
        let results = match (work, open.take()) {
            (None, Some(copy)) => finish(copy, &mut session).await,
            (None, None) => continue,
            (Some(work), Some(mut copy)) if copy.takes(&work) => {
                let number = work.stmt.number;
                match append(&mut copy, &mut session, number, work).await {
                    Ok(()) => {
                        open = Some(copy);
                        continue;
                    }
                    Err(e) => vec![Done {
                        number,
                        rows: 0,
                        result: Err(e),
                    }],
                }
            }
            (Some(work), previous) => {
                let mut results = match previous {
                    Some(copy) => finish(copy, &mut session).await,
                    None => Vec::new(),
                };
                if results.iter().all(|d| d.result.is_ok()) {
                    let number = work.stmt.number;
                    match start(&mut session, work).await {
                        Ok(Started::Copy(copy)) => open = Some(copy),
                        Ok(Started::Done) => results.push(Done {
                            number,
                            rows: 0,
                            result: Ok(()),
                        }),
                        Err(e) => results.push(Done {
                            number,
                            rows: 0,
                            result: Err(e),
                        }),
                    }
                }
                results
            }
        };
        let failed = results.iter().any(|d| d.result.is_err());
        for d in results {
            if done.send(d).is_err() {
                return;
            }
        }
        if failed {
            return;
        }
    }
}

async fn finish(copy: OpenCopy, session: &mut Session) -> Vec<Done> {
    let version = copy.version;
    match session.ready(version).await {
        Ok(conn) => copy.finish(conn).await,
        Err(e) => vec![Done {
            number: copy.blocks.first().map_or(0, |b| b.0),
            rows: 0,
            result: Err(e),
        }],
    }
}

async fn append(
    copy: &mut OpenCopy,
    session: &mut Session,
    number: u64,
    work: Work,
) -> Result<(), EngineError> {
    let conn = session.ready(work.version).await?;
    let Some(data) = work.data else {
        return Err(gone());
    };
    copy.append(conn, number, work.label, data).await
}

/// What [`start`] left behind.
enum Started {
    /// A `COPY` with its first block's data sent, open for more.
    Copy(OpenCopy),
    /// An index or constraint statement, done.
    Done,
}

/// Run one item on the worker's session: a `COPY` is opened and its block streamed (left
/// open, see [`OpenCopy`]); an index or constraint statement runs, tried again if it was a
/// deadlock victim.
async fn start(session: &mut Session, work: Work) -> Result<Started, EngineError> {
    let conn = session.ready(work.version).await?;
    let Work {
        stmt,
        label,
        data,
        version,
    } = work;
    if let Some(data) = data {
        let sink = match conn.client.copy_in::<str, Bytes>(stmt.text.as_str()).await {
            Ok(sink) => sink,
            Err(e) => return Err(statement_error(conn, e, &label).await),
        };
        let mut copy = OpenCopy {
            sink: Box::pin(sink),
            text: stmt.text,
            version,
            blocks: Vec::new(),
            lines: 0,
        };
        copy.append(conn, stmt.number, label, data).await?;
        return Ok(Started::Copy(copy));
    }
    let mut attempt = 0;
    loop {
        match simple(conn, &stmt.text).await {
            Ok(_) => return Ok(Started::Done),
            Err(e)
                if attempt < DEADLOCK_RETRIES
                    && e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                attempt += 1;
                tracing::debug!("{label}: deadlock victim, trying again ({attempt})");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(statement_error(conn, e, &label).await),
        }
    }
}
