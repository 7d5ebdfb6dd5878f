//! Per-table progress of a running dump: [`DumpObserver`] and its holder [`Observer`].

use std::fmt;
use std::sync::Arc;

use crate::TableSummary;

/// Receives a dump's per-table progress: the observer the core passes in
/// [`DumpOptions::observer`](crate::DumpOptions::observer), which the adapter calls while it
/// reads (issue 16: a bar shows rows or keys and the current table; a `table_dumped` event
/// per table). Every method has a no-op default.
///
/// # Protocol
///
/// An adapter reports, for every entry its [`DumpSummary`](crate::DumpSummary) will list (a
/// table, a sequence, large objects, a Redis logical database or its function libraries):
///
/// 1. [`table_started`](Self::table_started) once, with the entry's summary name, before its
///    first rows;
/// 2. [`rows`](Self::rows) with the rows (keys) read since the last call, per piece or batch
///    the adapter handles anyway (a `COPY` piece, 64 KiB of `INSERT` values, a `SCAN` batch) —
///    never once per row;
/// 3. [`table_done`](Self::table_done) once, with the entry exactly as the summary will hold
///    it.
///
/// Entries may overlap (PostgreSQL's parallel `COPY` under `jobs`: several tables are current
/// at once, and a table split into page ranges is done when its last range is). After a
/// successful dump the `rows` add up to the summary's rows and the `table_done` calls are the
/// summary's tables (in any order); after a failure the calls simply stop. The calls come from
/// the adapter's tasks, on any thread, while the body streams: an observer must be cheap and
/// never block (a relaxed atomic add for `rows`; a short lock and an event for the others).
/// Adapters that cannot tell (a Redis RDB snapshot) call nothing.
pub trait DumpObserver: Send + Sync {
    /// The entry named `name` (its summary name, e.g. `public."Order Items"`, `db0`) starts.
    fn table_started(&self, name: &str) {
        let _ = name;
    }

    /// `n` more rows (Redis: keys) were read, of whichever entries are current.
    fn rows(&self, n: u64) {
        let _ = n;
    }

    /// The entry is complete: `table` is what the summary will list for it.
    fn table_done(&self, table: &TableSummary) {
        let _ = table;
    }
}

/// The [`DumpObserver`] of one dump as [`DumpOptions`](crate::DumpOptions) holds it: none by
/// default (every call a no-op). Cheap to clone (an `Arc`). Two values are equal when both are none or
/// both hold the same observer, so the options keep their derives.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn DumpObserver>>);

impl Observer {
    /// An observer that calls `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn DumpObserver>) -> Self {
        Self(Some(inner))
    }

    /// Whether an observer is set (an adapter may skip work done only for it).
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// [`DumpObserver::table_started`], if an observer is set.
    pub fn table_started(&self, name: &str) {
        if let Some(o) = &self.0 {
            o.table_started(name);
        }
    }

    /// [`DumpObserver::rows`], if an observer is set and `n > 0`.
    pub fn rows(&self, n: u64) {
        if n > 0
            && let Some(o) = &self.0
        {
            o.rows(n);
        }
    }

    /// [`DumpObserver::table_done`], if an observer is set.
    pub fn table_done(&self, table: &TableSummary) {
        if let Some(o) = &self.0 {
            o.table_done(table);
        }
    }

    /// `table_started`, `rows` and `table_done` of an entry read in one go (a sequence, a
    /// small list).
    pub fn whole(&self, table: &TableSummary) {
        self.table_started(&table.name);
        self.rows(table.rows);
        self.table_done(table);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

impl PartialEq for Observer {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Observer {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl DumpObserver for Log {
        fn table_started(&self, name: &str) {
            self.0.lock().unwrap().push(format!("start {name}"));
        }
        fn rows(&self, n: u64) {
            self.0.lock().unwrap().push(format!("rows {n}"));
        }
        fn table_done(&self, table: &TableSummary) {
            self.0
                .lock()
                .unwrap()
                .push(format!("done {} {}", table.name, table.rows));
        }
    }

    #[test]
    fn calls_reach_the_observer_and_zero_rows_are_not_reported() {
        let log = Arc::new(Log::default());
        let observer = Observer::new(log.clone());
        assert!(observer.is_set());
        let table = TableSummary {
            name: "public.t".into(),
            rows: 3,
            fingerprint: crate::Fingerprint::EMPTY,
        };
        observer.rows(0);
        observer.whole(&table);
        assert_eq!(
            *log.0.lock().unwrap(),
            ["start public.t", "rows 3", "done public.t 3"]
        );
        // None: nothing to call, nothing fails.
        Observer::default().whole(&table);
    }

    #[test]
    fn equal_when_both_none_or_the_same_observer() {
        let log: Arc<dyn DumpObserver> = Arc::new(Log::default());
        let a = Observer::new(log.clone());
        assert_eq!(a, a.clone());
        assert_eq!(Observer::default(), Observer::default());
        assert_ne!(a, Observer::default());
        assert_ne!(a, Observer::new(Arc::new(Log::default())));
        assert_eq!(format!("{a:?}"), "Observer(set)");
    }
}
