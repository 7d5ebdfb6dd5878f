//! Reading the catalog: schemas, tables and their columns, sequences, views, routines,
//! triggers and events, with their `SHOW CREATE` text; privilege checks; what is refused.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use exporter_contract::{EngineError, ErrorKind};

use crate::connect::{Flavor, Session, text, text_req};
use crate::encode::{Encoding, quote_ident, quote_str};

/// Schemas never dumped when the URL names no database.
pub const SYSTEM_SCHEMAS: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

/// Engines whose rows live somewhere else: dumping their rows would write them into the
/// remote table on restore, and their DDL alone would silently drop the data. Refused.
pub(crate) const REMOTE_ENGINES: &[&str] = &["FEDERATED", "FEDERATEDX", "CONNECT", "SPIDER"];

/// Engines with no rows of their own: the DDL is dumped, the rows are not read (a MERGE
/// table's rows are its underlying tables' rows; BLACKHOLE keeps none).
pub(crate) const NO_DATA_ENGINES: &[&str] = &["MRG_MYISAM", "BLACKHOLE"];

/// One column of a table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Name.
    pub name: String,
    /// How values are written.
    pub encoding: Encoding,
    /// A period column of a system-versioned table (`GENERATED ALWAYS AS ROW START` / `ROW
    /// END`, or the implicit `ROW_START` / `ROW_END`): written only with its history.
    pub period: bool,
}

/// A base table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Schema (database).
    pub schema: String,
    /// Name.
    pub name: String,
    /// Storage engine.
    pub engine: String,
    /// Whether the engine is transactional (read inside the snapshot).
    pub transactional: bool,
    /// Whether rows are dumped (false for MERGE and BLACKHOLE).
    pub with_data: bool,
    /// A MariaDB system-versioned table (`WITH SYSTEM VERSIONING`): its rows are read `FOR
    /// SYSTEM_TIME ALL`, the current ones and every historical one, with their period
    /// columns, and loaded with `system_versioning_insert_history` (MariaDB 10.11+).
    pub versioned: bool,
    /// Stored (non-generated) columns, INVISIBLE ones included, in byte order of their names
    /// (not in ordinal order): the column list of every INSERT and of the SELECT that reads
    /// the rows, so each `VALUES (…)` tuple is the row's canonical bytes for the fingerprint
    /// (FORMAT.md, "Fingerprints").
    pub columns: Vec<Column>,
    /// `SHOW CREATE TABLE` (with `AUTO_INCREMENT=`).
    pub create: String,
    /// `DATA_LENGTH` as `information_schema.TABLES` reports it (an estimate for InnoDB; 0
    /// when unknown): the parallel fingerprint pass reads the largest tables first.
    pub data_length: u64,
}

/// A MariaDB sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `SHOW CREATE SEQUENCE`.
    pub create: String,
}

/// Kinds of schema objects created from `SHOW CREATE` after the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `CREATE VIEW`.
    View,
    /// `CREATE PROCEDURE`.
    Procedure,
    /// `CREATE FUNCTION`.
    Function,
    /// `CREATE TRIGGER`.
    Trigger,
    /// `CREATE EVENT`.
    Event,
}

impl ObjectKind {
    /// Lowercase label for messages and comments.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Procedure => "procedure",
            Self::Function => "function",
            Self::Trigger => "trigger",
            Self::Event => "event",
        }
    }
}

/// A view, routine, trigger or event with the session context it was created in.
#[derive(Debug, Clone)]
pub struct Object {
    /// Kind.
    pub kind: ObjectKind,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// The `SHOW CREATE` statement (definer still in it).
    pub create: Vec<u8>,
    /// The object's recorded `sql_mode` (views have none).
    pub sql_mode: Option<String>,
    /// Recorded `character_set_client`.
    pub charset_client: String,
    /// Recorded `collation_connection`.
    pub collation_connection: String,
    /// Events: the recorded `time_zone`.
    pub time_zone: Option<String>,
}

/// One schema's objects.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Name.
    pub name: String,
    /// `SHOW CREATE DATABASE`.
    pub create_database: String,
    /// Sequences by name.
    pub sequences: Vec<Sequence>,
    /// Base tables by name.
    pub tables: Vec<Table>,
    /// Views (not yet in dependency order).
    pub views: Vec<Object>,
    /// Procedures and functions by name.
    pub routines: Vec<Object>,
    /// Triggers by table, timing, event and action order.
    pub triggers: Vec<Object>,
    /// Events by name.
    pub events: Vec<Object>,
}

/// Everything a dump writes, except rows.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Schemas in name order.
    pub schemas: Vec<Schema>,
    /// True when the URL named no database: names are schema-qualified, and the script
    /// creates and selects each schema.
    pub all_schemas: bool,
    /// Sum of `DATA_LENGTH` of the dumped tables.
    pub size_hint: Option<u64>,
}

impl Catalog {
    /// The display name of a table in summaries (`t`, or `db.t` when dumping every schema).
    #[must_use]
    pub fn display_name(&self, schema: &str, name: &str) -> String {
        use crate::encode::display_ident;
        if self.all_schemas {
            format!("{}.{}", display_ident(schema), display_ident(name))
        } else {
            display_ident(name)
        }
    }

    /// Tables whose engine is not transactional, as `schema.table (ENGINE)`.
    #[must_use]
    pub fn non_transactional(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.schemas {
            for t in s.tables.iter().filter(|t| !t.transactional && t.with_data) {
                out.push(format!(
                    "{}.{} ({})",
                    quote_ident(&s.name),
                    quote_ident(&t.name),
                    t.engine
                ));
            }
        }
        out
    }

    /// All views in creation order: a view comes after every view its definition refers to
    /// (found by the backtick-quoted name in the server's normalised definition); ties and
    /// leftovers (only possible through false matches) by schema and name.
    #[must_use]
    pub fn views_in_order(&self) -> Vec<&Object> {
        let views: Vec<&Object> = self.schemas.iter().flat_map(|s| s.views.iter()).collect();
        let n = views.len();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, v) in views.iter().enumerate() {
            let text = String::from_utf8_lossy(&v.create);
            let body = text.split_once(" AS ").map_or(&*text, |(_, b)| b);
            for (j, w) in views.iter().enumerate() {
                if i != j && refers_to(body, &v.schema, &w.schema, &w.name) {
                    deps[i].push(j);
                }
            }
        }
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let next = (0..n).find(|&i| !done[i] && deps[i].iter().all(|&j| done[j]));
            // A cycle can only come from a false match: fall back to name order.
            let i = next.unwrap_or_else(|| (0..n).find(|&i| !done[i]).unwrap_or(0));
            done[i] = true;
            order.push(views[i]);
        }
        order
    }
}

/// Whether a normalised view body (from `SHOW CREATE VIEW`, run with the view's schema as the
/// current database) refers to view `schema.name`: `` `schema`.`name` `` anywhere, or, in the
/// same schema, `` `name` `` not directly after or before a `.` (which would make it a column).
fn refers_to(body: &str, own_schema: &str, schema: &str, name: &str) -> bool {
    let q = quote_ident(name);
    if body.contains(&format!("{}.{q}", quote_ident(schema))) {
        return true;
    }
    if own_schema != schema {
        return false;
    }
    let mut from = 0;
    while let Some(pos) = body[from..].find(&q) {
        let at = from + pos;
        let before = body.as_bytes()[..at].last().copied();
        let after = body.as_bytes().get(at + q.len()).copied();
        if before != Some(b'.')
            && after != Some(b'.')
            && before != Some(b'`')
            && after != Some(b'`')
        {
            return true;
        }
        from = at + q.len();
    }
    false
}

async fn set_results(s: &mut Session, charset: &str) -> Result<(), EngineError> {
    s.exec_drop(
        &format!("SET SESSION character_set_results = {charset}"),
        None,
    )
    .await
}

/// Load the catalog of the URL's database (or of every non-system schema), check privileges
/// and refuse what cannot be dumped faithfully. Run inside the snapshot transaction: each
/// table is probed with `SELECT … LIMIT 0`, which checks the SELECT privilege and takes the
/// table's metadata lock for the rest of the transaction (concurrent DDL then waits, like
/// pg_dump's ACCESS SHARE locks).
///
/// # Errors
///
/// [`ErrorKind::Permission`] naming the table, routine or missing privilege;
/// [`ErrorKind::Unsupported`] naming the object (system-versioned tables whose history cannot
/// be loaded, remote engines, packages, unknown column types); [`ErrorKind::NotFound`] for a missing database; other
/// classified errors.
pub async fn load(s: &mut Session, database: Option<&str>) -> Result<Catalog, EngineError> {
    let all_schemas = database.is_none();
    let names: Vec<String> = if let Some(db) = database {
        let rows = s
            .rows(
                &format!(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                    quote_str(db)
                ),
                None,
            )
            .await?;
        if rows.is_empty() {
            return Err(EngineError::new(ErrorKind::NotFound, "unknown database")
                .with_object(quote_ident(db)));
        }
        vec![db.to_owned()]
    } else {
        require_global_listing(s).await?;
        let rows = s
            .rows("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", None)
            .await?;
        let mut v = Vec::new();
        for r in &rows {
            let n = text_req(r, 0, "SCHEMA_NAME")?;
            if !SYSTEM_SCHEMAS.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
                v.push(n);
            }
        }
        v.sort();
        v
    };
    let mut transactional = HashMap::new();
    for r in s
        .rows(
            "SELECT ENGINE, TRANSACTIONS FROM information_schema.ENGINES",
            None,
        )
        .await?
    {
        let engine = text_req(&r, 0, "ENGINE")?.to_ascii_uppercase();
        let tx = text(&r, 1)?.is_some_and(|t| t.eq_ignore_ascii_case("YES"));
        transactional.insert(engine, tx);
    }
    // MariaDB 10.11 and later load history rows of system-versioned tables.
    let history = !s
        .rows(
            "SHOW VARIABLES LIKE 'system\\_versioning\\_insert\\_history'",
            None,
        )
        .await?
        .is_empty();
    let mut catalog = Catalog {
        schemas: Vec::new(),
        all_schemas,
        size_hint: None,
    };
    let mut size: u64 = 0;
    for name in names {
        let (schema, bytes) = load_schema(s, &name, &transactional, history).await?;
        size = size.saturating_add(bytes);
        catalog.schemas.push(schema);
    }
    for schema in &catalog.schemas {
        check_schema_privileges(s, &schema.name).await?;
    }
    set_results(s, "binary").await?;
    catalog.size_hint = Some(size);
    Ok(catalog)
}

/// One schema's catalog: its tables, sequences, views, routines, triggers and events.
/// `history`: whether this server can load history rows (see [`history_columns`]).
async fn load_schema(
    s: &mut Session,
    db: &str,
    transactional: &HashMap<String, bool>,
    history: bool,
) -> Result<(Schema, u64), EngineError> {
    let mut schema = enter_schema(s, db).await?;
    let mut columns = stored_columns(s, db).await?;
    let (entries, size) = table_entries(s, db).await?;
    for (name, kind, engine, data_length) in entries {
        let object = format!("{}.{}", quote_ident(db), quote_ident(&name));
        match kind.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => {
                let mut cols = columns.remove(&name).unwrap_or_default();
                let versioned = kind == "SYSTEM VERSIONED";
                if versioned {
                    history_columns(&object, &mut cols, history)?;
                }
                let mut table = base_table(s, db, name, engine, cols, transactional).await?;
                table.versioned = versioned;
                table.data_length = data_length;
                schema.tables.push(table);
            }
            "SEQUENCE" => {
                let create = show_create(s, "SEQUENCE", &name, &object, 1).await?;
                s.exec_drop(
                    &format!("SELECT 1 FROM {object} LIMIT 0"),
                    Some(&format!("sequence {object}")),
                )
                .await?;
                schema.sequences.push(Sequence {
                    schema: db.to_owned(),
                    name,
                    create,
                });
            }
            // Views are read below; temporary tables belong to other sessions.
            "VIEW" | "SYSTEM VIEW" | "TEMPORARY" => {}
            other => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!("table type {other} is not supported"),
                )
                .with_object(format!("table {object}")));
            }
        }
    }
    // Views, routines, triggers, events: the stored bytes, unconverted, re-created under the
    // recorded character_set_client (mysqldump does the same).
    set_results(s, "binary").await?;
    schema.views = views(s, db).await?;
    schema.routines = routines(s, db).await?;
    schema.triggers = triggers(s, db).await?;
    schema.events = events(s, db).await?;
    schema.views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((schema, size))
}

/// The period columns of system-versioned table `object` among its `columns`: the explicit
/// ones (`GENERATED ALWAYS AS ROW START` / `ROW END`) are there already; implicit ones are
/// added as the pseudo-columns `ROW_START` and `ROW_END` (`TIMESTAMP(6)`), which `SELECT …
/// FOR SYSTEM_TIME ALL` reads and `INSERT` writes under `system_versioning_insert_history`
/// (how `mariadb-dump --dump-history` dumps them; MariaDB docs, "System-Versioned Tables").
/// The columns are kept in name order (see [`Table::columns`]).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] naming the table, never a dump of only the current rows: when
/// this server cannot load history rows (no `system_versioning_insert_history`: MariaDB
/// before 10.11), or when the table is versioned by transaction id (`BIGINT UNSIGNED` period
/// columns refer to this server's `mysql.transaction_registry`; no server can load them).
fn history_columns(
    object: &str,
    columns: &mut Vec<Column>,
    history: bool,
) -> Result<(), EngineError> {
    if !history {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            "system-versioned table: this server cannot load history rows (system_versioning_insert_history \
             needs MariaDB 10.11 or later), and a dump of only its current rows would lose the history",
        )
        .with_object(format!("table {object}")));
    }
    let explicit = columns.iter().filter(|c| c.period).count();
    if explicit == 0 {
        for name in ["ROW_START", "ROW_END"] {
            columns.push(Column {
                name: name.to_owned(),
                encoding: Encoding::DateTime(6),
                period: true,
            });
        }
        columns.sort_by(|a, b| a.name.cmp(&b.name));
    } else if columns
        .iter()
        .any(|c| c.period && !matches!(c.encoding, Encoding::DateTime(_)))
    {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            "system-versioned table versioned by transaction id: its history refers to this \
             server's transaction registry and cannot be loaded into another server",
        )
        .with_object(format!("table {object}")));
    }
    Ok(())
}

/// Make `db` the current database (`SHOW CREATE` then prints names in it unqualified: the
/// script restores into whatever database the user selects) and read its `SHOW CREATE
/// DATABASE`, with results converted to utf8mb4 like mysqldump.
pub(crate) async fn enter_schema(s: &mut Session, db: &str) -> Result<Schema, EngineError> {
    let qdb = quote_ident(db);
    s.exec_drop(&format!("USE {qdb}"), Some(&format!("database {qdb}")))
        .await?;
    // Tables and databases: text converted to utf8mb4, like mysqldump.
    set_results(s, "utf8mb4").await?;
    let rows = s
        .rows(
            &format!("SHOW CREATE DATABASE {qdb}"),
            Some(&format!("database {qdb}")),
        )
        .await?;
    let create_database = rows
        .first()
        .map(|r| text_req(r, 1, "Create Database"))
        .transpose()?
        .unwrap_or_default();
    Ok(Schema {
        name: db.to_owned(),
        create_database,
        ..Schema::default()
    })
}

/// The stored (non-generated) columns of every table of `db` with their encodings, in byte
/// order of their names (see [`Table::columns`]).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] naming a column whose type cannot be written exactly.
async fn stored_columns(
    s: &mut Session,
    db: &str,
) -> Result<BTreeMap<String, Vec<Column>>, EngineError> {
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    let sql = format!(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, EXTRA, DATETIME_PRECISION, \
         GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
        quote_str(db)
    );
    for r in s.rows(&sql, None).await? {
        let table = text_req(&r, 0, "TABLE_NAME")?;
        let column = text_req(&r, 1, "COLUMN_NAME")?;
        let data_type = text_req(&r, 2, "DATA_TYPE")?;
        let charset = text(&r, 3)?;
        let extra = text(&r, 4)?.unwrap_or_default().to_ascii_uppercase();
        let precision = text(&r, 5)?
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        // MariaDB reports the period columns of a system-versioned table as generated, with
        // the expression `ROW START` / `ROW END`: they carry the history's timestamps.
        let period = matches!(
            text(&r, 6)?
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref(),
            Some("ROW START" | "ROW END")
        );
        // Generated columns (VIRTUAL / STORED / PERSISTENT GENERATED) are computed again on
        // restore and rejected by INSERT; MySQL's DEFAULT_GENERATED is an ordinary column.
        let generated = [
            "VIRTUAL GENERATED",
            "STORED GENERATED",
            "PERSISTENT GENERATED",
        ]
        .iter()
        .any(|g| extra.contains(g));
        if generated && !period {
            continue;
        }
        let Some(encoding) = Encoding::for_column(&data_type, charset.as_deref(), precision) else {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!("column type {data_type} (charset {charset:?}) cannot be exported exactly"),
            )
            .with_object(format!(
                "column {}.{}.{}",
                quote_ident(db),
                quote_ident(&table),
                quote_ident(&column)
            )));
        };
        columns.entry(table).or_default().push(Column {
            name: column,
            encoding,
            period,
        });
    }
    for cols in columns.values_mut() {
        cols.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(columns)
}

/// Every entry of `information_schema.TABLES` in `db` as (name, type, engine, `DATA_LENGTH`),
/// sorted, and the sum of their `DATA_LENGTH`.
pub(crate) async fn table_entries(
    s: &mut Session,
    db: &str,
) -> Result<(Vec<(String, String, String, u64)>, u64), EngineError> {
    let sql = format!(
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = {}",
        quote_str(db)
    );
    let mut size = 0u64;
    let mut entries = Vec::new();
    for r in s.rows(&sql, None).await? {
        let name = text_req(&r, 0, "TABLE_NAME")?;
        let kind = text_req(&r, 1, "TABLE_TYPE")?;
        let engine = text(&r, 2)?.unwrap_or_default();
        let bytes: u64 = text(&r, 3)?.and_then(|v| v.parse().ok()).unwrap_or(0);
        size = size.saturating_add(bytes);
        entries.push((name, kind, engine, bytes));
    }
    entries.sort();
    Ok((entries, size))
}

/// A base table: refused if its engine keeps the rows elsewhere; its `SHOW CREATE TABLE`;
/// probed with `SELECT … LIMIT 0` (privilege check, and the metadata lock for the rest of the
/// snapshot) unless its engine has no rows of its own.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for a remote engine, [`ErrorKind::Permission`] when the
/// account may not read it, [`ErrorKind::Protocol`] for a table without readable columns.
async fn base_table(
    s: &mut Session,
    db: &str,
    name: String,
    engine: String,
    columns: Vec<Column>,
    transactional: &HashMap<String, bool>,
) -> Result<Table, EngineError> {
    let object = format!("{}.{}", quote_ident(db), quote_ident(&name));
    let upper = engine.to_ascii_uppercase();
    if REMOTE_ENGINES.contains(&upper.as_str()) {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!("engine {engine} keeps its rows on another server; dump that server instead"),
        )
        .with_object(format!("table {object}")));
    }
    let create = show_create(s, "TABLE", &name, &object, 1).await?;
    let with_data = !NO_DATA_ENGINES.contains(&upper.as_str());
    if with_data {
        // Privilege check + metadata lock for the rest of the snapshot.
        s.exec_drop(
            &format!("SELECT 1 FROM {object} LIMIT 0"),
            Some(&format!("table {object}")),
        )
        .await?;
    }
    if columns.is_empty() && with_data {
        return Err(EngineError::new(ErrorKind::Protocol, "no readable columns")
            .with_object(format!("table {object}")));
    }
    Ok(Table {
        schema: db.to_owned(),
        name,
        transactional: transactional.get(&upper).copied().unwrap_or(false),
        engine,
        with_data,
        versioned: false,
        columns,
        create,
        data_length: 0,
    })
}

/// The views of `db` (by name; ordered by dependency later, see [`Catalog::views_in_order`]).
async fn views(s: &mut Session, db: &str) -> Result<Vec<Object>, EngineError> {
    let names = names_of(
        s,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {}",
            quote_str(db)
        ),
    )
    .await?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        out.push(show_object(s, ObjectKind::View, db, &name).await?);
    }
    Ok(out)
}

/// The procedures and functions of `db`, procedures first, each by name.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for other routine types (Oracle-mode packages).
async fn routines(s: &mut Session, db: &str) -> Result<Vec<Object>, EngineError> {
    let sql = format!(
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {}",
        quote_str(db)
    );
    let mut routines = Vec::new();
    for r in s.rows(&sql, None).await? {
        routines.push((
            text_req(&r, 1, "ROUTINE_TYPE")?,
            text_req(&r, 0, "ROUTINE_NAME")?,
        ));
    }
    routines.sort();
    let mut out = Vec::with_capacity(routines.len());
    for (kind, name) in routines {
        let kind = match kind.as_str() {
            "PROCEDURE" => ObjectKind::Procedure,
            "FUNCTION" => ObjectKind::Function,
            other => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!("routine type {other} is not supported"),
                )
                .with_object(format!(
                    "routine {}.{}",
                    quote_ident(db),
                    quote_ident(&name)
                )));
            }
        };
        out.push(show_object(s, kind, db, &name).await?);
    }
    Ok(out)
}

/// The triggers of `db`, by table, timing, event and action order (the order they fire in).
async fn triggers(s: &mut Session, db: &str) -> Result<Vec<Object>, EngineError> {
    let sql = format!(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {} \
         ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
        quote_str(db)
    );
    let mut out = Vec::new();
    for name in names_of(s, &sql).await? {
        out.push(show_object(s, ObjectKind::Trigger, db, &name).await?);
    }
    Ok(out)
}

/// The events of `db`, by name.
async fn events(s: &mut Session, db: &str) -> Result<Vec<Object>, EngineError> {
    let mut names = names_of(
        s,
        &format!(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {}",
            quote_str(db)
        ),
    )
    .await?;
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        out.push(show_object(s, ObjectKind::Event, db, &name).await?);
    }
    Ok(out)
}

pub(crate) async fn names_of(s: &mut Session, sql: &str) -> Result<Vec<String>, EngineError> {
    let mut v = Vec::new();
    for r in s.rows(sql, None).await? {
        v.push(text_req(&r, 0, "name")?);
    }
    Ok(v)
}

async fn show_create(
    s: &mut Session,
    what: &str,
    name: &str,
    object: &str,
    col: usize,
) -> Result<String, EngineError> {
    let label = format!("{} {object}", what.to_ascii_lowercase());
    let rows = s
        .rows(
            &format!("SHOW CREATE {what} {}", quote_ident(name)),
            Some(&label),
        )
        .await?;
    let row = rows.first().ok_or_else(|| {
        EngineError::new(ErrorKind::NotFound, "SHOW CREATE returned nothing")
            .with_object(label.clone())
    })?;
    text(row, col)
        .map_err(|e| EngineError::new(e.kind(), e.message().to_owned()).with_object(label.clone()))?
        .ok_or_else(|| {
            EngineError::new(
                ErrorKind::Permission,
                "SHOW CREATE returned no definition (missing privilege?)",
            )
            .with_object(label)
        })
}

pub(crate) async fn show_object(
    s: &mut Session,
    kind: ObjectKind,
    db: &str,
    name: &str,
) -> Result<Object, EngineError> {
    let object = format!("{} {}.{}", kind.label(), quote_ident(db), quote_ident(name));
    let what = match kind {
        ObjectKind::View => "VIEW",
        ObjectKind::Procedure => "PROCEDURE",
        ObjectKind::Function => "FUNCTION",
        ObjectKind::Trigger => "TRIGGER",
        ObjectKind::Event => "EVENT",
    };
    let rows = s
        .rows(
            &format!("SHOW CREATE {what} {}", quote_ident(name)),
            Some(&object),
        )
        .await?;
    let row = rows.first().ok_or_else(|| {
        EngineError::new(ErrorKind::NotFound, "SHOW CREATE returned nothing")
            .with_object(object.clone())
    })?;
    let named = |e: EngineError| {
        EngineError::new(e.kind(), e.message().to_owned()).with_object(object.clone())
    };
    // Column layouts of SHOW CREATE (MariaDB and MySQL agree):
    // VIEW: View, Create View, character_set_client, collation_connection
    // PROCEDURE/FUNCTION: name, sql_mode, Create, character_set_client, collation_connection, Database Collation
    // TRIGGER: Trigger, sql_mode, SQL Original Statement, character_set_client, collation_connection, ...
    // EVENT: Event, sql_mode, time_zone, Create Event, character_set_client, collation_connection, ...
    let (mode, tz, create, cs) = match kind {
        ObjectKind::View => (None, None, 1, 2),
        ObjectKind::Procedure | ObjectKind::Function | ObjectKind::Trigger => (Some(1), None, 2, 3),
        ObjectKind::Event => (Some(1), Some(2), 3, 4),
    };
    let create = raw(row, create).ok_or_else(|| {
        EngineError::new(
            ErrorKind::Permission,
            "the server hides this definition from the account (it needs to be the definer, or hold \
             SELECT on mysql.proc / SHOW CREATE ROUTINE)",
        )
        .with_object(object.clone())
    })?;
    Ok(Object {
        kind,
        schema: db.to_owned(),
        name: name.to_owned(),
        create,
        sql_mode: mode
            .map(|i| text(row, i).map(Option::unwrap_or_default))
            .transpose()
            .map_err(named)?,
        charset_client: text_req(row, cs, "character_set_client").map_err(named)?,
        collation_connection: text_req(row, cs + 1, "collation_connection").map_err(named)?,
        time_zone: tz
            .map(|i| text(row, i).map(Option::unwrap_or_default))
            .transpose()
            .map_err(named)?,
    })
}

/// A result cell's raw bytes (`None` for SQL NULL): definitions are kept exactly as stored,
/// in their `character_set_client`, which need not be UTF-8.
fn raw(row: &mysql_async::Row, idx: usize) -> Option<Vec<u8>> {
    match row.as_ref(idx) {
        Some(mysql_async::Value::Bytes(b)) => Some(b.clone()),
        _ => None,
    }
}

/// The grantee string of the current account (`'user'@'host'`), and its role if any.
const GRANTEES: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

async fn privileges(s: &mut Session, db: Option<&str>) -> Result<Vec<String>, EngineError> {
    let role = if s.flavor == Flavor::MariaDb {
        " OR GRANTEE = CONCAT('''', CURRENT_ROLE(), '''')"
    } else {
        ""
    };
    let mut sql = format!(
        "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE (GRANTEE = {GRANTEES}{role})"
    );
    if let Some(db) = db {
        let _ = write!(
            sql,
            " UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
             WHERE (GRANTEE = {GRANTEES}{role}) AND {} LIKE TABLE_SCHEMA",
            quote_str(db)
        );
    }
    let mut v = Vec::new();
    for r in s.rows(&sql, None).await? {
        v.push(text_req(&r, 0, "PRIVILEGE_TYPE")?.to_ascii_uppercase());
    }
    Ok(v)
}

/// Whether the account holds the global SHOW DATABASES (or SELECT) privilege, so that
/// `information_schema.SCHEMATA` lists every schema.
///
/// # Errors
///
/// Classified query errors.
pub(crate) async fn sees_every_schema(s: &mut Session) -> Result<bool, EngineError> {
    let p = privileges(s, None).await?;
    Ok(p.iter().any(|p| p == "SHOW DATABASES" || p == "SELECT"))
}

/// Dumping every schema needs to see every schema: `information_schema.SCHEMATA` hides the
/// ones the account has no privilege on.
async fn require_global_listing(s: &mut Session) -> Result<(), EngineError> {
    if sees_every_schema(s).await? {
        return Ok(());
    }
    Err(EngineError::new(
        ErrorKind::Permission,
        "dumping every schema needs the global SHOW DATABASES privilege (schemas the account cannot \
         see would be missing); name the database in the URL instead",
    )
    .with_object(s.endpoint.clone()))
}

/// The schema-wide (or global) privileges a dump of `db` needs and the account lacks:
/// `SELECT`, `TRIGGER`, `EVENT`, and `EXECUTE` (or `ALTER ROUTINE`), in that order.
///
/// # Errors
///
/// Classified query errors.
pub(crate) async fn missing_schema_privileges(
    s: &mut Session,
    db: &str,
) -> Result<Vec<&'static str>, EngineError> {
    let p = privileges(s, Some(db)).await?;
    let has = |name: &str| p.iter().any(|x| x == name);
    let mut missing = Vec::new();
    for needed in ["SELECT", "TRIGGER", "EVENT"] {
        if !has(needed) {
            missing.push(needed);
        }
    }
    if !(has("EXECUTE") || has("ALTER ROUTINE")) {
        missing.push("EXECUTE");
    }
    Ok(missing)
}

/// `information_schema` hides tables, triggers, events and routines the account holds no
/// privilege on, so a dump by an under-privileged account could miss them without any
/// error. Require schema-wide (or global) SELECT, TRIGGER, EVENT and a routine privilege.
async fn check_schema_privileges(s: &mut Session, db: &str) -> Result<(), EngineError> {
    let missing = missing_schema_privileges(s, db).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(EngineError::new(
        ErrorKind::Permission,
        format!(
            "the account lacks database-wide {} on it: objects it cannot see would be missing from the \
             dump without an error (grant them ON {}.*)",
            missing.join(", "),
            quote_ident(db)
        ),
    )
    .with_object(format!("database {}", quote_ident(db))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(schema: &str, name: &str, create: &str) -> Object {
        Object {
            kind: ObjectKind::View,
            schema: schema.into(),
            name: name.into(),
            create: create.as_bytes().to_vec(),
            sql_mode: None,
            charset_client: "utf8mb4".into(),
            collation_connection: "utf8mb4_general_ci".into(),
            time_zone: None,
        }
    }

    fn col(name: &str, encoding: Encoding, period: bool) -> Column {
        Column {
            name: name.into(),
            encoding,
            period,
        }
    }

    #[test]
    fn history_needs_a_server_that_loads_it_and_timestamps() {
        // Implicit period columns are added as ROW_START / ROW_END, in name order.
        let mut cols = vec![col("id", Encoding::Number, false)];
        history_columns("`d`.`t`", &mut cols, true).unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ROW_END", "ROW_START", "id"]);
        assert!(cols[0].period && cols[0].encoding == Encoding::DateTime(6));
        // A server without system_versioning_insert_history: refused, naming the table.
        let mut cols = vec![col("id", Encoding::Number, false)];
        let e = history_columns("`d`.`t`", &mut cols, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(e.object(), Some("table `d`.`t`"));
        assert!(e.message().contains("10.11"), "{e}");
        // Explicit timestamp periods are kept as they are; transaction ids are refused.
        let mut cols = vec![
            col("id", Encoding::Number, false),
            col("s", Encoding::DateTime(6), true),
            col("e", Encoding::DateTime(6), true),
        ];
        history_columns("`d`.`t`", &mut cols, true).unwrap();
        assert_eq!(cols.len(), 3);
        let mut cols = vec![
            col("s", Encoding::Number, true),
            col("e", Encoding::Number, true),
        ];
        let e = history_columns("`d`.`t`", &mut cols, true).unwrap_err();
        assert!(e.message().contains("transaction id"), "{e}");
    }

    #[test]
    fn views_on_views_come_after_their_base() {
        let s = Schema {
            name: "d".into(),
            views: vec![
                view(
                    "d",
                    "a_top",
                    "CREATE VIEW `a_top` AS select `m_mid`.`x` AS `x` from `m_mid`",
                ),
                view(
                    "d",
                    "m_mid",
                    "CREATE VIEW `m_mid` AS select `z_base`.`x` AS `x` from `z_base`",
                ),
                view(
                    "d",
                    "z_base",
                    "CREATE VIEW `z_base` AS select `t`.`x` AS `x` from `t`",
                ),
                view(
                    "d",
                    "col",
                    "CREATE VIEW `col` AS select `t`.`a_top` AS `c` from `t`",
                ),
            ],
            ..Schema::default()
        };
        let c = Catalog {
            schemas: vec![s],
            ..Catalog::default()
        };
        let names: Vec<&str> = c.views_in_order().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["z_base", "m_mid", "a_top", "col"]);
    }
}
