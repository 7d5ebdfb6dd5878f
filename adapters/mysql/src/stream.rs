//! The producer: writes the script into a bounded channel while rows stream out of
//! prepared-statement (binary protocol) SELECTs, fingerprinting every row on the way.

use std::fmt::Write as _;

use exporter_contract::produce::Producer;
use exporter_contract::{DumpSummary, EngineError, ErrorKind, Fingerprint, Observer, TableSummary};
use mysql_async::prelude::Queryable;

use crate::catalog::{Catalog, Object, ObjectKind, Sequence, Table};
use crate::connect::Session;
use crate::encode::{definer_of, delimiter_for, literal, quote_ident, quote_str, strip_definer};

pub use exporter_contract::produce::{CHANNEL_CHUNKS, CHUNK};

/// Multi-row INSERT statements are closed before they grow past this many bytes (a single
/// larger row makes a statement of its own). Well under the default `max_allowed_packet`
/// of servers and clients (16 MiB for MariaDB and the `mysql` client, 64 MiB for MySQL 8).
pub const INSERT_LIMIT: usize = 1024 * 1024;

/// Rows read are reported to the dump's [`Observer`] once their literals reach this many
/// bytes (and at the end of each table): a batch, never a row at a time.
pub const REPORT_BYTES: usize = 64 * 1024;

/// The script's sql_mode while loading: permissive (no STRICT_*, no NO_ZERO_DATE /
/// NO_ZERO_IN_DATE) so zero dates load, `NO_AUTO_VALUE_ON_ZERO` so an AUTO_INCREMENT column
/// holding 0 keeps 0, and no `NO_BACKSLASH_ESCAPES` (our string literals use backslashes).
pub const LOAD_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO";

/// The script header (after the comment lines): save the client session's settings in
/// `@OLD_…` variables, like mysqldump, then set what the load needs.
pub const HEADER: &str = "SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT;
SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS;
SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION;
SET NAMES utf8mb4;
SET @OLD_TIME_ZONE=@@TIME_ZONE;
SET TIME_ZONE='+00:00';
SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0;
SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0;
SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO';
SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0;
";

/// The script footer: restore the client session's settings.
pub const FOOTER: &str = "SET TIME_ZONE=@OLD_TIME_ZONE;
SET SQL_MODE=@OLD_SQL_MODE;
SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS;
SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS;
SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT;
SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS;
SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION;
SET SQL_NOTES=@OLD_SQL_NOTES;
-- exporter: dump complete
";

/// What the producer needs besides the catalog.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Keep `DEFINER=` clauses (else strip them and list each in the warnings).
    pub definers: bool,
    /// Server version, for the header comment.
    pub server_version: String,
    /// Engine name, for the header comment.
    pub engine: &'static str,
    /// Hears of each sequence and table as it is read (none: nobody listens).
    pub observer: Observer,
}

/// Write the whole script; returns the summary (tables in dump order).
///
/// # Errors
///
/// Classified [`EngineError`]s naming the object; [`ErrorKind::Cancelled`] when the consumer
/// went away.
pub async fn produce(
    s: &mut Session,
    catalog: &Catalog,
    plan: &Plan,
    out: &mut Producer,
) -> Result<DumpSummary, EngineError> {
    let mut summary = DumpSummary::default();
    let scope = if catalog.all_schemas {
        "every schema except mysql, information_schema, performance_schema, sys".to_owned()
    } else {
        format!(
            "database {}",
            catalog
                .schemas
                .first()
                .map(|s| quote_ident(&s.name))
                .unwrap_or_default()
        )
    };
    let restore = if catalog.all_schemas {
        "zstd -dc FILE.sql.zst | mysql"
    } else {
        "zstd -dc FILE.sql.zst | mysql TARGET_DATABASE"
    };
    let head = format!(
        "-- exporter SQL dump of {scope}\n-- Server: {} {}\n-- Restore: {restore}\n\n",
        plan.engine,
        one_line(&plan.server_version),
    );
    out.write(head.as_bytes()).await?;
    out.write(HEADER.as_bytes()).await?;
    for schema in &catalog.schemas {
        if catalog.all_schemas {
            let create = schema
                .create_database
                .strip_prefix("CREATE DATABASE ")
                .map_or_else(
                    || format!("CREATE DATABASE {}", quote_ident(&schema.name)),
                    |rest| format!("CREATE DATABASE IF NOT EXISTS {rest}"),
                );
            out.write(
                format!(
                    "\n--\n-- Database {}\n--\n{create};\nUSE {};\n",
                    quote_ident(&schema.name),
                    quote_ident(&schema.name)
                )
                .as_bytes(),
            )
            .await?;
        }
        for seq in &schema.sequences {
            let seq = sequence(s, catalog, seq, Some(out)).await?;
            plan.observer.whole(&seq);
            summary.tables.push(seq);
        }
        for table in &schema.tables {
            let create = if catalog.all_schemas {
                table.create.clone()
            } else {
                crate::encode::unqualify_sequence_refs(&table.create, &table.schema)
            };
            out.write(
                format!(
                    "\n--\n-- Table {}\n--\n{create};\n",
                    quote_ident(&table.name)
                )
                .as_bytes(),
            )
            .await?;
            if table.with_data {
                summary
                    .tables
                    .push(table_rows(s, catalog, table, Some(out), &plan.observer).await?);
            }
        }
    }
    let mut current = catalog
        .schemas
        .last()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let routines = catalog.schemas.iter().flat_map(|s| s.routines.iter());
    let views = catalog.views_in_order().into_iter();
    let triggers = catalog.schemas.iter().flat_map(|s| s.triggers.iter());
    let events = catalog.schemas.iter().flat_map(|s| s.events.iter());
    for object in routines.chain(views).chain(triggers).chain(events) {
        if catalog.all_schemas && object.schema != current {
            out.write(format!("USE {};\n", quote_ident(&object.schema)).as_bytes())
                .await?;
            current.clone_from(&object.schema);
        }
        if !plan.definers
            && let Some(definer) = definer_of(&object.create)
        {
            // The archive keeps the record of what it leaves out (principle 3).
            summary.warnings.push(format!(
                "definer stripped: {} {}.{} was DEFINER={definer}",
                object.kind.label(),
                quote_ident(&object.schema),
                quote_ident(&object.name)
            ));
        }
        if object.kind == ObjectKind::View && !catalog.all_schemas {
            // See `unqualify_view_columns`: the script restores into any database.
            let mut view = object.clone();
            view.create = crate::encode::unqualify_view_columns(&object.create, &object.schema);
            out.write(&create_object(&view, plan.definers)).await?;
        } else {
            out.write(&create_object(object, plan.definers)).await?;
        }
    }
    out.write(b"\n").await?;
    out.write(FOOTER.as_bytes()).await?;
    out.flush().await?;
    let non_tx = catalog.non_transactional();
    if !non_tx.is_empty() {
        summary.warnings.push(format!(
            "tables with a non-transactional engine were read outside the snapshot (consistency is best effort): {}",
            non_tx.join(", ")
        ));
        summary.consistency = Some(exporter_contract::Consistency::BestEffort);
    }
    Ok(summary)
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The statements that re-create a view, routine, trigger or event under the session context
/// it was created in (its sql_mode, client character set and collation, an event's time
/// zone), then put the load session back.
#[must_use]
pub fn create_object(o: &Object, definers: bool) -> Vec<u8> {
    let create = if definers {
        o.create.clone()
    } else {
        strip_definer(&o.create)
    };
    let mut sql = format!("\n--\n-- {} {}\n--\n", o.kind.label(), quote_ident(&o.name));
    if let Some(mode) = &o.sql_mode {
        let _ = writeln!(sql, "SET SESSION sql_mode = {};", quote_str(mode));
    }
    if let Some(tz) = &o.time_zone {
        let _ = writeln!(sql, "SET SESSION time_zone = {};", quote_str(tz));
    }
    let _ = writeln!(sql, "SET character_set_client = {};", o.charset_client);
    let _ = writeln!(sql, "SET character_set_results = {};", o.charset_client);
    let _ = writeln!(
        sql,
        "SET collation_connection = {};",
        o.collation_connection
    );
    let mut bytes = sql.into_bytes();
    let mut tail = String::new();
    if o.kind == ObjectKind::View {
        bytes.extend_from_slice(&create);
        tail.push_str(";\n");
    } else {
        let d = delimiter_for(&create);
        bytes.extend_from_slice(format!("DELIMITER {d}\n").as_bytes());
        bytes.extend_from_slice(&create);
        let _ = writeln!(tail, "{d}\nDELIMITER ;");
    }
    tail.push_str("SET NAMES utf8mb4;\n");
    if o.sql_mode.is_some() {
        let _ = writeln!(tail, "SET SESSION sql_mode = '{LOAD_SQL_MODE}';");
    }
    if o.time_zone.is_some() {
        tail.push_str("SET SESSION time_zone = '+00:00';\n");
    }
    bytes.extend_from_slice(tail.as_bytes());
    bytes
}

/// A sequence: `CREATE SEQUENCE`, then its position with `SETVAL`. Fingerprint: one row,
/// `next_not_cached_value,cycle_count`.
async fn sequence(
    s: &mut Session,
    catalog: &Catalog,
    seq: &Sequence,
    out: Option<&mut Producer>,
) -> Result<TableSummary, EngineError> {
    let object = format!(
        "sequence {}.{}",
        quote_ident(&seq.schema),
        quote_ident(&seq.name)
    );
    let sql = format!(
        "SELECT next_not_cached_value, cycle_count FROM {}.{}",
        quote_ident(&seq.schema),
        quote_ident(&seq.name)
    );
    let rows = s.rows(&sql, Some(&object)).await?;
    let row = rows.first().ok_or_else(|| {
        EngineError::new(ErrorKind::Protocol, "sequence has no row").with_object(object.clone())
    })?;
    let next = crate::connect::text_req(row, 0, "next_not_cached_value")?;
    let cycle = crate::connect::text_req(row, 1, "cycle_count")?;
    if !next
        .bytes()
        .chain(cycle.bytes())
        .all(|b| b.is_ascii_digit() || b == b'-')
    {
        return Err(
            EngineError::new(ErrorKind::Protocol, "unexpected sequence position")
                .with_object(object),
        );
    }
    let canonical = format!("{next},{cycle}");
    if let Some(out) = out {
        let q = quote_ident(&seq.name);
        out.write(
            format!(
                "\n--\n-- Sequence {q}\n--\n{};\nDO SETVAL({q}, {next}, 0, {cycle});\n",
                seq.create
            )
            .as_bytes(),
        )
        .await?;
    }
    let mut fingerprint = Fingerprint::EMPTY;
    fingerprint.add_row(canonical.as_bytes());
    Ok(TableSummary {
        name: catalog.display_name(&seq.schema, &seq.name),
        rows: 1,
        fingerprint,
    })
}

/// Stream one table's rows through a prepared statement (binary protocol: FLOAT and DOUBLE
/// arrive as IEEE values, not rounded text), writing multi-row INSERTs to `out` if given, and
/// fingerprint them. Memory: one row (as received and as its literal text) at a time. The
/// table's start, its rows (every [`REPORT_BYTES`] of literals) and its end go to `observer`.
///
/// # Errors
///
/// Classified [`EngineError`]s naming the table; [`ErrorKind::Unsupported`] for a value that
/// does not fit its column's encoding; [`ErrorKind::Cancelled`] when the consumer went away.
pub async fn table_rows(
    s: &mut Session,
    catalog: &Catalog,
    table: &Table,
    mut out: Option<&mut Producer>,
    observer: &Observer,
) -> Result<TableSummary, EngineError> {
    let name = catalog.display_name(&table.schema, &table.name);
    observer.table_started(&name);
    let qualified = format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    );
    let object = format!("table {qualified}");
    let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let exprs: Vec<String> = table
        .columns
        .iter()
        .zip(&cols)
        .map(|(c, quoted)| c.encoding.select_expr(quoted))
        .collect();
    let cols = cols.join(",");
    // A system-versioned table: every row version, the current ones and the history.
    let history = if table.versioned {
        " FOR SYSTEM_TIME ALL"
    } else {
        ""
    };
    let select = format!("SELECT {} FROM {qualified}{history}", exprs.join(","));
    let prefix = format!("INSERT INTO {} ({cols}) VALUES ", quote_ident(&table.name));
    let stmt = match s.conn.prep(select).await {
        Ok(stmt) => stmt,
        Err(e) => return Err(s.error(&e, Some(&object))),
    };
    if table.versioned
        && let Some(out) = out.as_deref_mut()
    {
        // The comment names the table in the error of a restore into a server that cannot
        // load history (before MariaDB 10.11, or `secure_timestamp` forbidding it).
        out.write(
            format!(
                "SET /* history of {} */ @@SESSION.system_versioning_insert_history = 1;\n",
                quote_ident(&table.name)
            )
            .as_bytes(),
        )
        .await?;
    }
    let mut fingerprint = Fingerprint::EMPTY;
    let mut rows: u64 = 0;
    // Rows not reported to the observer yet, and the bytes of their literals.
    let (mut pending, mut pending_bytes) = (0u64, 0usize);
    let mut row_buf: Vec<u8> = Vec::new();
    let mut stmt_len = 0usize;
    {
        let mut result = match s.conn.exec_iter(&stmt, ()).await {
            Ok(r) => r,
            Err(e) => {
                return Err(
                    crate::connect::classify(&e, crate::connect::Phase::Query).with_object(object)
                );
            }
        };
        loop {
            let row = match result.next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    return Err(crate::connect::classify(&e, crate::connect::Phase::Query)
                        .with_object(object));
                }
            };
            let values = row.unwrap();
            if values.len() != table.columns.len() {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    "row has an unexpected number of columns",
                )
                .with_object(object));
            }
            row_buf.clear();
            for (i, (value, column)) in values.iter().zip(&table.columns).enumerate() {
                if i > 0 {
                    row_buf.push(b',');
                }
                if let Err(e) = literal(&mut row_buf, value, &column.encoding) {
                    return Err(EngineError::new(ErrorKind::Unsupported, e.0)
                        .with_object(format!("column {qualified}.{}", quote_ident(&column.name))));
                }
            }
            drop(values);
            fingerprint.add_row(&row_buf);
            rows += 1;
            pending += 1;
            pending_bytes += row_buf.len();
            if pending_bytes >= REPORT_BYTES {
                observer.rows(std::mem::take(&mut pending));
                pending_bytes = 0;
            }
            if let Some(out) = out.as_deref_mut() {
                if stmt_len > 0 && stmt_len + row_buf.len() + 3 > INSERT_LIMIT {
                    out.write(b";\n").await?;
                    stmt_len = 0;
                }
                if stmt_len == 0 {
                    out.write(prefix.as_bytes()).await?;
                    stmt_len = prefix.len();
                } else {
                    out.write(b",").await?;
                    stmt_len += 1;
                }
                out.write(b"(").await?;
                out.write(&row_buf).await?;
                out.write(b")").await?;
                stmt_len += row_buf.len() + 2;
            }
            if row_buf.capacity() > 4 * INSERT_LIMIT {
                row_buf = Vec::new();
            }
        }
    }
    if let Some(out) = out {
        if stmt_len > 0 {
            out.write(b";\n").await?;
        }
        if table.versioned {
            out.write(b"SET @@SESSION.system_versioning_insert_history = 0;\n")
                .await?;
        }
    }
    if let Err(e) = s.conn.close(stmt).await {
        return Err(s.error(&e, Some(&object)));
    }
    observer.rows(pending);
    let summary = TableSummary {
        name,
        rows,
        fingerprint,
    };
    observer.table_done(&summary);
    Ok(summary)
}

/// Row counts and fingerprints of every sequence and table of the catalog, in dump order,
/// without writing anything, on one session.
///
/// # Errors
///
/// As [`table_rows`].
pub async fn fingerprint_all(
    s: &mut Session,
    catalog: &Catalog,
) -> Result<Vec<TableSummary>, EngineError> {
    let mut v = Vec::new();
    for item in fingerprint_items(catalog) {
        v.push(fingerprint_item(s, catalog, item).await?);
    }
    Ok(v)
}

/// One entry of the fingerprint pass: a sequence or a table with rows, by its schema's and
/// its own position in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Sequence(usize, usize),
    Table(usize, usize),
}

/// The entries of the pass in dump order (per schema: sequences, then tables with rows), as
/// the summary lists them.
fn fingerprint_items(catalog: &Catalog) -> Vec<Item> {
    let mut items = Vec::new();
    for (i, schema) in catalog.schemas.iter().enumerate() {
        items.extend((0..schema.sequences.len()).map(|j| Item::Sequence(i, j)));
        items.extend(
            schema
                .tables
                .iter()
                .enumerate()
                .filter(|(_, t)| t.with_data)
                .map(|(j, _)| Item::Table(i, j)),
        );
    }
    items
}

async fn fingerprint_item(
    s: &mut Session,
    catalog: &Catalog,
    item: Item,
) -> Result<TableSummary, EngineError> {
    match item {
        Item::Sequence(i, j) => sequence(s, catalog, &catalog.schemas[i].sequences[j], None).await,
        Item::Table(i, j) => {
            let table = &catalog.schemas[i].tables[j];
            table_rows(s, catalog, table, None, &Observer::default()).await
        }
    }
}

/// The entries of the pass (their positions in dump order) in the order the parallel pass
/// takes them: largest `DATA_LENGTH` first (sequences are one row), ties in dump order.
fn largest_first(catalog: &Catalog) -> Vec<(usize, Item)> {
    let mut items: Vec<(usize, Item)> =
        fingerprint_items(catalog).into_iter().enumerate().collect();
    items.sort_by_key(|(at, item)| {
        let bytes = match *item {
            Item::Sequence(..) => 0,
            Item::Table(i, j) => catalog.schemas[i].tables[j].data_length,
        };
        (std::cmp::Reverse(bytes), *at)
    });
    items
}

/// The queue the sessions of a parallel pass take their entries from.
type Queue = std::sync::Mutex<std::collections::VecDeque<(usize, Item)>>;

/// Take entries from `queue` until it is empty; returns each one's summary with its
/// position in dump order.
async fn drain(
    s: &mut Session,
    catalog: &Catalog,
    queue: &Queue,
) -> Result<Vec<(usize, TableSummary)>, EngineError> {
    let mut done = Vec::new();
    loop {
        let next = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        let Some((at, item)) = next else {
            return Ok(done);
        };
        done.push((at, fingerprint_item(s, catalog, item).await?));
    }
}

/// [`fingerprint_all`] on `main` and up to `extra.len()` more sessions at once, each taking
/// the next entry (largest first) from one queue; the summaries are put back in dump order, so
/// the result is [`fingerprint_all`]'s. `extra` sessions are opened by the caller (each in
/// its own consistent snapshot, see the crate docs) and closed here, with `COMMIT`.
///
/// # Errors
///
/// As [`table_rows`]: the first error of any session. The extra sessions are then killed
/// (best effort, so the server stops sending results nobody reads); `main` is the caller's.
pub async fn fingerprint_all_parallel(
    main: &mut Session,
    extra: Vec<Session>,
    catalog: &Catalog,
) -> Result<Vec<TableSummary>, EngineError> {
    let items = largest_first(catalog);
    let count = items.len();
    let queue = std::sync::Arc::new(Queue::new(items.into_iter().collect()));
    let shared = std::sync::Arc::new(catalog.clone());
    let ids: Vec<(crate::connect::Link, u32)> =
        extra.iter().map(|s| (s.link.clone(), s.id)).collect();
    // Dropping the set (an error returned early, the future dropped) aborts the others.
    let mut set = tokio::task::JoinSet::new();
    for mut s in extra {
        let (queue, catalog) = (queue.clone(), shared.clone());
        set.spawn(async move {
            let done = drain(&mut s, &catalog, &queue).await?;
            s.exec_drop("COMMIT", None).await?;
            let _ = s.conn.disconnect().await;
            Ok::<_, EngineError>(done)
        });
    }
    let others = async {
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            done.extend(joined.map_err(|e| {
                EngineError::new(
                    ErrorKind::Protocol,
                    format!("a fingerprint session stopped: {e}"),
                )
            })??);
        }
        Ok(done)
    };
    let (mine, theirs) = match tokio::try_join!(drain(main, catalog, &queue), others) {
        Ok(found) => found,
        Err(e) => {
            for (link, id) in &ids {
                crate::connect::kill(link, *id).await;
            }
            return Err(e);
        }
    };
    let mut slots: Vec<Option<TableSummary>> = vec![None; count];
    for (at, summary) in mine.into_iter().chain(theirs) {
        slots[at] = Some(summary);
    }
    slots
        .into_iter()
        .map(|s| {
            s.ok_or_else(|| {
                EngineError::new(ErrorKind::Protocol, "a fingerprint entry was not read")
            })
        })
        .collect()
}
