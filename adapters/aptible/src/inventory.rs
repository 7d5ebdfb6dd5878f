//! Environments and everything in them (spec §3, §5): what `exporter list`, `dump --all` and
//! the teardown plan read.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::resources::{
    Account, App, Backup, Database, DatabaseImage, Disk, LogDrain, MetricDrain, Stack, Vhost,
};

/// An environment and its stack.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The account (`ca_body` included when the environment has a CA).
    pub account: Account,
    /// Its stack (SSH portal, internal domain).
    pub stack: Stack,
}

impl Environment {
    /// The environment's handle.
    #[must_use]
    pub fn handle(&self) -> &str {
        &self.account.handle
    }
}

/// One database and what the listing shows about it.
#[derive(Debug, Clone)]
pub struct DatabaseEntry {
    /// The database (without sensitive fields).
    pub database: Database,
    /// Its image (type and version), when linked.
    pub image: Option<DatabaseImage>,
    /// Its disk (size in GB), when linked.
    pub disk: Option<Disk>,
    /// Its backups, newest first (spec §2.3: backup lists are newest-first; sorted here by
    /// `created_at` all the same).
    pub backups: Vec<Backup>,
    /// Its replicas (`GET /databases/{id}/dependents`).
    pub dependents: Vec<Database>,
}

impl DatabaseEntry {
    /// Whether this database is a replica of another (`_links.initialize_from`).
    #[must_use]
    pub fn is_replica(&self) -> bool {
        self.database.initialize_from().is_some()
    }

    /// The newest backup, if any.
    #[must_use]
    pub fn newest_backup(&self) -> Option<&Backup> {
        self.backups.first()
    }

    /// The image version (e.g. `15`).
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.image.as_ref().and_then(|i| i.version.as_deref())
    }

    /// The disk size in GB.
    #[must_use]
    pub fn disk_size_gb(&self) -> Option<u64> {
        self.disk.as_ref().and_then(|d| d.size)
    }
}

/// An app and its endpoints.
#[derive(Debug, Clone)]
pub struct AppEntry {
    /// The app.
    pub app: App,
    /// Its endpoints (`GET /apps/{id}/vhosts`).
    pub vhosts: Vec<Vhost>,
}

/// Everything of one environment.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The environment.
    pub environment: Environment,
    /// Databases, by handle.
    pub databases: Vec<DatabaseEntry>,
    /// Apps with their endpoints.
    pub apps: Vec<AppEntry>,
    /// Every endpoint of the environment (`GET /accounts/{id}/vhosts`).
    pub vhosts: Vec<Vhost>,
    /// Log drains, every type including `tail`.
    pub log_drains: Vec<LogDrain>,
    /// Metric drains.
    pub metric_drains: Vec<MetricDrain>,
    /// Every backup of the environment (final, manual, automatic, copies, orphaned), newest
    /// first.
    pub backups: Vec<Backup>,
    /// Backups of databases that no longer exist (`orphaned=true`), newest first.
    pub orphaned_backups: Vec<Backup>,
}

impl Inventory {
    /// The database with `handle`.
    #[must_use]
    pub fn database(&self, handle: &str) -> Option<&DatabaseEntry> {
        self.databases.iter().find(|d| d.database.handle == handle)
    }

    /// The database whose `self` href is `href` (a replica's primary).
    #[must_use]
    pub fn database_by_href(&self, href: &str) -> Option<&DatabaseEntry> {
        self.databases
            .iter()
            .find(|d| d.database.href() == Some(href))
    }
}

fn missing_link(what: &str, rel: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        what.to_owned(),
        format!("has no `{rel}` link"),
    )
}

/// INFERRED (aptible-api.md §2.3): backup lists come newest-first; not relied upon, they are
/// sorted here by `created_at` (then id).
fn newest_first(backups: &mut [Backup]) {
    backups.sort_by(|a, b| {
        b.created()
            .cmp(&a.created())
            .then_with(|| b.created_at.cmp(&a.created_at))
            .then_with(|| b.id.cmp(&a.id))
    });
}

impl Client {
    /// Every environment the token can see (`GET /accounts?no_embed=true`, all pages).
    ///
    /// # Errors
    ///
    /// The client's errors.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        self.list(
            &self.roots().api_url("/accounts"),
            "accounts",
            &[("no_embed", "true")],
        )
        .await
    }

    /// Resolve an environment by handle: list the accounts and match the handle (the
    /// portable route of spec §5; `/find/account` exists only on newer API versions, spec
    /// §13.7), then read its stack.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] naming the visible environments when none matches;
    /// [`ErrorKind::Client`] when several do; the client's errors otherwise.
    pub async fn environment(&self, handle: &str) -> Result<Environment> {
        let accounts = self.accounts().await?;
        let mut matching: Vec<Account> = accounts
            .iter()
            .filter(|a| a.handle == handle)
            .cloned()
            .collect();
        let account = match matching.len() {
            1 => matching.remove(0),
            0 => {
                let mut visible: Vec<&str> = accounts.iter().map(|a| a.handle.as_str()).collect();
                visible.sort_unstable();
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("environment {handle}"),
                    if visible.is_empty() {
                        "not found (this token sees no environment)".to_owned()
                    } else {
                        format!("not found (visible: {})", visible.join(", "))
                    },
                ));
            }
            n => {
                return Err(Error::new(
                    ErrorKind::Client,
                    format!("environment {handle}"),
                    format!("{n} environments have this handle"),
                ));
            }
        };
        // The listing was read with no_embed; read the account itself for its full fields.
        let self_href = account
            .links
            .href("self")
            .ok_or_else(|| missing_link(&format!("environment {handle}"), "self"))?
            .to_owned();
        let account: Account = self.get(&self_href).await?;
        let stack_href = account
            .links
            .href("stack")
            .ok_or_else(|| missing_link(&format!("environment {handle}"), "stack"))?;
        let stack: Stack = self.get(stack_href).await?;
        Ok(Environment { account, stack })
    }

    /// The databases of an environment (all pages, `no_embed=true`).
    ///
    /// # Errors
    ///
    /// The client's errors.
    pub async fn databases(&self, env: &Environment) -> Result<Vec<Database>> {
        let href =
            env.account.links.href("databases").ok_or_else(|| {
                missing_link(&format!("environment {}", env.handle()), "databases")
            })?;
        self.list(href, "databases", &[("no_embed", "true")]).await
    }

    /// Everything of an environment: databases (with image, disk, backups, replicas), apps
    /// and their endpoints, every endpoint, log and metric drains, every backup and the
    /// orphaned ones. Per-database reads run a few at a time
    /// ([`crate::ClientOptions::concurrency`]).
    ///
    /// # Errors
    ///
    /// The client's errors, naming the request that failed.
    pub async fn inventory(&self, env: &Environment) -> Result<Inventory> {
        let what = format!("environment {}", env.handle());
        let link = |rel: &str| {
            env.account
                .links
                .href(rel)
                .map(str::to_owned)
                .ok_or_else(|| missing_link(&what, rel))
        };
        let databases = self.databases(env).await?;
        let mut images: HashMap<String, DatabaseImage> = HashMap::new();
        for href in databases
            .iter()
            .filter_map(|d| d.links.href("database_image"))
        {
            if !images.contains_key(href) {
                images.insert(href.to_owned(), self.get(href).await?);
            }
        }
        let images = &images;
        let concurrency = self.options().concurrency.max(1);
        let mut entries: Vec<DatabaseEntry> = futures::stream::iter(databases)
            .map(|database| async move { self.database_entry(database, images).await })
            .buffered(concurrency)
            .try_collect()
            .await?;
        entries.sort_by(|a, b| a.database.handle.cmp(&b.database.handle));

        let apps: Vec<App> = self
            .list(&link("apps")?, "apps", &[("no_embed", "true")])
            .await?;
        let mut app_entries: Vec<AppEntry> = futures::stream::iter(apps)
            .map(|app| async move {
                let vhosts = match app.links.href("vhosts") {
                    Some(h) => self.list(h, "vhosts", &[]).await?,
                    None => Vec::new(),
                };
                Ok::<_, Error>(AppEntry { app, vhosts })
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        app_entries.sort_by(|a, b| a.app.handle.cmp(&b.app.handle));

        let vhosts = self.list(&link("vhosts")?, "vhosts", &[]).await?;
        let log_drains = self.list(&link("log_drains")?, "log_drains", &[]).await?;
        let metric_drains = self
            .list(&link("metric_drains")?, "metric_drains", &[])
            .await?;
        let backups_href = link("backups")?;
        let mut backups: Vec<Backup> = self.list(&backups_href, "backups", &[]).await?;
        newest_first(&mut backups);
        // `orphaned=true` is used by the CLI and the dashboard though absent from the OpenAPI
        // spec (aptible-api.md §3.2, §3.7).
        let mut orphaned_backups: Vec<Backup> = self
            .list(&backups_href, "backups", &[("orphaned", "true")])
            .await?;
        newest_first(&mut orphaned_backups);
        Ok(Inventory {
            environment: env.clone(),
            databases: entries,
            apps: app_entries,
            vhosts,
            log_drains,
            metric_drains,
            backups,
            orphaned_backups,
        })
    }

    async fn database_entry(
        &self,
        database: Database,
        images: &HashMap<String, DatabaseImage>,
    ) -> Result<DatabaseEntry> {
        let image = database
            .links
            .href("database_image")
            .and_then(|h| images.get(h).cloned());
        let disk = match (
            database.embedded.as_ref().and_then(|e| e.disk.clone()),
            database.links.href("disk"),
        ) {
            (Some(d), _) => Some(d),
            (None, Some(h)) => Some(self.get::<Disk>(h).await?),
            (None, None) => None,
        };
        let mut backups = match database.links.href("backups") {
            Some(h) => self.list::<Backup>(h, "backups", &[]).await?,
            None => Vec::new(),
        };
        newest_first(&mut backups);
        let dependents = match database.links.href("dependents") {
            Some(h) => {
                self.list::<Database>(h, "databases", &[("no_embed", "true")])
                    .await?
            }
            None => Vec::new(),
        };
        Ok(DatabaseEntry {
            database,
            image,
            disk,
            backups,
            dependents,
        })
    }

    /// Read a database again by its `self` href (e.g. to see its status now).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] once it is deprovisioned; the client's errors otherwise.
    pub async fn refresh_database(&self, database: &Database) -> Result<Database> {
        let href = database
            .href()
            .ok_or_else(|| missing_link(&format!("database {}", database.handle), "self"))?;
        self.get(href).await
    }
}
