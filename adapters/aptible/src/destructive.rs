//! The destructive calls of the teardown (spec §9.1): deprovision a metric drain, a log drain,
//! an app, an endpoint or a database, purge a backup, delete the environment.
//!
//! **To be called only from the teardown executor**, after its gate has passed (issue 14;
//! design.md §8). The workspace's `clippy.toml` bans these methods everywhere else with
//! `disallowed-methods`. Each is sent exactly once: a destructive request is never retried
//! automatically (a POST never is, spec §2.4; the DELETE is sent once too). Each returns the
//! operation; wait for it with [`Client::wait_operation`], where a 404 after a finished
//! deprovision or purge counts as done (spec §4.2).
//!
//! The dump path's own clean-up of a database it restored goes through
//! [`Client::deprovision_restored`], which accepts only a
//! [`crate::restore::RestoredDatabase`].

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::hal::Links;
use crate::resources::{Account, App, Backup, Database, LogDrain, MetricDrain, Operation, Vhost};

#[derive(Serialize)]
struct OperationBody {
    #[serde(rename = "type")]
    kind: &'static str,
}

async fn post_operation(
    client: &Client,
    links: &Links,
    what: &str,
    kind: &'static str,
) -> Result<Operation> {
    let href = links.href("operations").ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            what.to_owned(),
            "has no `operations` link",
        )
    })?;
    client
        .post(href, &OperationBody { kind })
        .await
        .map_err(|e| {
            let ctx = format!("{what}: {}", e.context());
            e.with_context(ctx)
        })
}

/// `POST <operations>` with `{"type": "deprovision"}`.
pub(crate) async fn post_deprovision(
    client: &Client,
    links: &Links,
    what: &str,
) -> Result<Operation> {
    post_operation(client, links, what, "deprovision").await
}

impl Client {
    /// Deprovision a metric drain (`POST /metric_drains/{id}/operations` `deprovision`; there
    /// is no DELETE endpoint). Teardown executor only.
    ///
    /// # Errors
    ///
    /// The platform's refusal (its envelope's message) or a transport error; never retried.
    pub async fn deprovision_metric_drain(&self, drain: &MetricDrain) -> Result<Operation> {
        post_deprovision(
            self,
            &drain.links,
            &format!("metric drain {}", drain.handle),
        )
        .await
    }

    /// Deprovision a log drain of any type, `tail` included. Teardown executor only.
    ///
    /// # Errors
    ///
    /// As [`Client::deprovision_metric_drain`].
    pub async fn deprovision_log_drain(&self, drain: &LogDrain) -> Result<Operation> {
        post_deprovision(self, &drain.links, &format!("log drain {}", drain.handle)).await
    }

    /// Deprovision an app; its endpoints go with it (spec §9.1). Teardown executor only.
    ///
    /// # Errors
    ///
    /// As [`Client::deprovision_metric_drain`].
    pub async fn deprovision_app(&self, app: &App) -> Result<Operation> {
        post_deprovision(self, &app.links, &format!("app {}", app.handle)).await
    }

    /// Deprovision an endpoint (optional for app endpoints, which go with their app).
    /// Teardown executor only.
    ///
    /// # Errors
    ///
    /// As [`Client::deprovision_metric_drain`].
    pub async fn deprovision_vhost(&self, vhost: &Vhost) -> Result<Operation> {
        let name = vhost
            .external_host
            .clone()
            .unwrap_or_else(|| format!("#{}", vhost.id));
        post_deprovision(self, &vhost.links, &format!("endpoint {name}")).await
    }

    /// Deprovision a database (replicas before their primary: the platform refuses a
    /// database with replicas, spec §9.2). Teardown executor only.
    ///
    /// # Errors
    ///
    /// As [`Client::deprovision_metric_drain`].
    pub async fn deprovision_database(&self, database: &Database) -> Result<Operation> {
        post_deprovision(
            self,
            &database.links,
            &format!("database {}", database.handle),
        )
        .await
    }

    /// Purge a backup and its copies (`POST /backups/{id}/operations` `purge`). A later purge
    /// of one of its copies may then answer 404 (spec §9.2). Teardown executor only.
    ///
    /// # Errors
    ///
    /// As [`Client::deprovision_metric_drain`].
    pub async fn purge_backup(&self, backup: &Backup) -> Result<Operation> {
        post_operation(
            self,
            &backup.links,
            &format!("backup #{}", backup.id),
            "purge",
        )
        .await
    }

    /// Delete the environment (`DELETE /accounts/{id}` → 204), the guide's step 7. The
    /// platform refuses while apps, databases, backups or drains remain.
    /// Teardown executor only.
    ///
    /// # Errors
    ///
    /// The refusal's message (its exact shape is not public: UNSURE, aptible-api.md §9.2),
    /// or a transport error; never retried.
    pub async fn delete_account(&self, account: &Account) -> Result<()> {
        let what = format!("environment {}", account.handle);
        let href = account
            .links
            .href("self")
            .ok_or_else(|| Error::new(ErrorKind::Protocol, what.clone(), "has no `self` link"))?;
        self.delete_once(href).await.map_err(|e| {
            let ctx = format!("{what}: {}", e.context());
            e.with_context(ctx)
        })
    }
}
