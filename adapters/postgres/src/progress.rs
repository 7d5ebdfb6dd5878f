//! Per-table progress of a dump for the core's [`exporter_contract::DumpObserver`]: which
//! summary entry starts and ends when, whatever the path (sequential, parallel page ranges,
//! the tables left to the snapshot's own connection).
//!
//! A summary entry is a table, or every leaf of a partition tree loaded through its root
//! (they share the root's name, [`DataTable::summary_name`]). It is one or more **pieces**:
//! a whole table, or a page range of one under parallel `COPY`. The entry starts with its
//! first piece and is done when its last piece is, with the rows and fingerprint of all of
//! them — exactly what the summary then lists.

use std::collections::HashMap;
use std::sync::Mutex;

use exporter_contract::{Fingerprint, Observer, TableSummary};

use crate::catalog::DataTable;

/// The summary entries of one dump's tables and how far each is.
pub struct Tables {
    observer: Observer,
    /// Per data table (by its index in the plan), its entry.
    entry_of: Vec<usize>,
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    name: String,
    /// Pieces not done yet.
    remaining: usize,
    started: bool,
    rows: u64,
    fingerprint: Fingerprint,
}

impl Tables {
    /// The entries of `tables` (in order of first appearance, as
    /// [`crate::stream::merge_summaries`] orders them), table `i` being `pieces(i)` pieces (at
    /// least one).
    pub fn new(observer: Observer, tables: &[DataTable], pieces: impl Fn(usize) -> usize) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let mut entry_of = Vec::with_capacity(tables.len());
        for (i, table) in tables.iter().enumerate() {
            let n = pieces(i).max(1);
            let at = *by_name.entry(table.summary_name()).or_insert_with(|| {
                entries.push(Entry {
                    name: table.summary_name().to_owned(),
                    remaining: 0,
                    started: false,
                    rows: 0,
                    fingerprint: Fingerprint::EMPTY,
                });
                entries.len() - 1
            });
            entries[at].remaining += n;
            entry_of.push(at);
        }
        Self {
            observer,
            entry_of,
            entries: Mutex::new(entries),
        }
    }

    /// The observer, for the rows the copy loops read.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A piece of table `table` starts: its entry starts, unless another piece started it.
    pub fn start(&self, table: usize) {
        let name = {
            let mut entries = self.entries();
            let entry = &mut entries[self.entry_of[table]];
            if entry.started {
                return;
            }
            entry.started = true;
            entry.name.clone()
        };
        self.observer.table_started(&name);
    }

    /// A piece of table `table` is done with `rows` rows fingerprinted `fingerprint`; the
    /// entry is done with its last piece.
    pub fn done(&self, table: usize, rows: u64, fingerprint: Fingerprint) {
        let finished = {
            let mut entries = self.entries();
            let entry = &mut entries[self.entry_of[table]];
            entry.rows += rows;
            entry.fingerprint = entry.fingerprint.combine(fingerprint);
            entry.remaining = entry.remaining.saturating_sub(1);
            (entry.remaining == 0).then(|| TableSummary {
                name: entry.name.clone(),
                rows: entry.rows,
                fingerprint: entry.fingerprint,
            })
        };
        if let Some(summary) = finished {
            self.observer.table_done(&summary);
        }
    }

    /// The summary entries, in order of first appearance.
    pub fn summaries(&self) -> Vec<TableSummary> {
        self.entries()
            .iter()
            .map(|e| TableSummary {
                name: e.name.clone(),
                rows: e.rows,
                fingerprint: e.fingerprint,
            })
            .collect()
    }
}

/// Rows read but not reported yet, for a copy loop whose pieces are single rows
/// (tokio-postgres gives each `COPY` row as one message): reported once about
/// [`REPORT_BYTES`] have passed, and at the end.
#[derive(Debug, Default)]
pub struct Pending {
    rows: u64,
    bytes: usize,
}

/// See [`Pending`].
pub const REPORT_BYTES: usize = 64 * 1024;

impl Pending {
    /// `rows` more rows in `bytes` bytes; reported to `observer` when enough have gathered.
    pub fn add(&mut self, observer: &Observer, rows: u64, bytes: usize) {
        self.rows += rows;
        self.bytes += bytes;
        if self.bytes >= REPORT_BYTES {
            self.flush(observer);
        }
    }

    /// Report what is gathered.
    pub fn flush(&mut self, observer: &Observer) {
        observer.rows(std::mem::take(&mut self.rows));
        self.bytes = 0;
    }
}
