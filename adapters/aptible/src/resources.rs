//! Typed platform resources (spec §3). Only the fields this tool reads are typed; unknown
//! fields are ignored, and every optional field tolerates absence or `null`. Secrets are never
//! held as plain strings: connection URLs are [`DatabaseUrl`]s (redacted in `Display`/`Debug`),
//! and sensitive drain fields (passwords, tokens, API keys) are not deserialized at all.

use chrono::{DateTime, Utc};
use exporter_contract::DatabaseUrl;
use serde::{Deserialize, Deserializer};

use crate::hal::{Links, opt_string_or_number, string_or_number};

fn secret_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DatabaseUrl>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        // The parse error never repeats the input (it may hold a password).
        Some(s) => DatabaseUrl::parse(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("connection_url: {e}"))),
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parse a platform timestamp (`2026-02-03T04:05:06.000Z`).
#[must_use]
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An environment (`_type: "account"`, spec §3.2).
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// Numeric id.
    pub id: u64,
    /// The environment's handle (unique within an organization).
    pub handle: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// `production` or `development`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The environment's CA certificate (PEM) that signs its databases' server certificates
    /// (spec §6, TLS). Not a secret (the CA's private key, `ca_private_key`, is never read).
    // UNSURE (aptible-api.md §2.1): whether `Prefer: no_sensitive_extras=true` strips
    // `ca_body`; the spec lists only `ca_private_key` as sensitive, so accounts are read with
    // `true` and an absent `ca_body` means "no CA" (TLS then verifies nothing extra).
    #[serde(default)]
    pub ca_body: Option<String>,
    /// Number of apps (dashboard field).
    #[serde(default)]
    pub total_app_count: Option<u64>,
    /// Number of databases (dashboard field).
    #[serde(default)]
    pub total_database_count: Option<u64>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// `_links`: `self`, `stack`, `databases`, `apps`, `backups`, `log_drains`,
    /// `metric_drains`, `vhosts`, `operations`, …
    #[serde(rename = "_links", default)]
    pub links: Links,
}

impl Account {
    /// The CA certificate, if the environment has a non-empty one.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_body.as_deref().filter(|s| !s.trim().is_empty())
    }
}

/// A stack: where the SSH portal is (spec §3.3).
#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    /// Numeric id.
    pub id: u64,
    /// Name, e.g. `shared-us-west-1`.
    #[serde(default)]
    pub name: Option<String>,
    /// AWS region.
    #[serde(default)]
    pub region: Option<String>,
    /// The SSH portal's host name.
    #[serde(default)]
    pub ssh_portal_host: Option<String>,
    /// The SSH portal's port.
    #[serde(default)]
    pub ssh_portal_port: Option<u16>,
    /// The SSH portal's host public key (`<type> <base64>`), written to `known_hosts`.
    #[serde(default)]
    pub ssh_host_rsa_public_key: Option<String>,
    /// The stack's internal domain (e.g. `aptible.in`): the tunnel's local URL uses
    /// `localhost.<internal_domain>` (spec §6.12).
    #[serde(default)]
    pub internal_domain: Option<String>,
    /// `_links`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A database (spec §3.4).
#[derive(Debug, Clone, Deserialize)]
pub struct Database {
    /// Numeric id.
    pub id: u64,
    /// Handle, unique within its environment.
    pub handle: String,
    /// Database type: `postgresql`, `mysql`, `redis`, `mongodb`, `elasticsearch`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Provisionable status (`provisioned`, `provisioning`, `deprovisioned`, …; spec §3.12).
    #[serde(default)]
    pub status: Option<String>,
    /// The default credential's URL (sensitive; absent under `no_sensitive_extras=true`).
    #[serde(default, deserialize_with = "secret_url")]
    pub connection_url: Option<DatabaseUrl>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Set on soft-deleted databases read with `with_deleted=true`.
    #[serde(default)]
    pub deleted_at: Option<String>,
    /// `_embedded` (absent with `no_embed=true` or `no_sensitive_extras=true`).
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<DatabaseEmbedded>,
    /// `_links`: `self`, `account`, `database_image`, `service`, `disk`, `initialize_from`
    /// (replicas), `dependents`, `operations`, `backups`, `database_credentials`, …
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// What a database may embed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DatabaseEmbedded {
    /// The disk.
    #[serde(default)]
    pub disk: Option<Disk>,
    /// The credentials (their URLs only when sensitive extras are included).
    #[serde(default, deserialize_with = "null_as_default")]
    pub database_credentials: Vec<DatabaseCredential>,
}

impl Database {
    /// Whether the status is `provisioned` (the CLI's `provisioned?`, spec §3.4).
    #[must_use]
    pub fn is_provisioned(&self) -> bool {
        self.status.as_deref() == Some("provisioned")
    }

    /// The href of the database this one was initialized from (a replica's primary).
    #[must_use]
    pub fn initialize_from(&self) -> Option<&str> {
        self.links.href("initialize_from")
    }

    /// The `self` href.
    #[must_use]
    pub fn href(&self) -> Option<&str> {
        self.links.href("self")
    }
}

/// A database credential (spec §3.5).
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseCredential {
    /// Numeric id.
    pub id: u64,
    /// Credential type, e.g. `postgresql`, `redis`, `redis+ssl`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether this is the default credential (the one `db:tunnel` uses without `--type`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub default: bool,
    /// `scheme://user:password@host:port/db` (sensitive: only with
    /// `Prefer: no_sensitive_extras=false`).
    #[serde(default, deserialize_with = "secret_url")]
    pub connection_url: Option<DatabaseUrl>,
    /// `_links`: `self`, `database`, `operations`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A backup (spec §3.7).
#[derive(Debug, Clone, Deserialize)]
pub struct Backup {
    /// Numeric id.
    pub id: u64,
    /// When it was taken (`2026-02-03T04:05:06.000Z`).
    pub created_at: String,
    /// Size in GB.
    #[serde(default)]
    pub size: Option<f64>,
    /// Whether it was taken on demand (`db:backup`, dashboard) rather than automatically.
    #[serde(default, deserialize_with = "null_as_default")]
    pub manual: bool,
    /// AWS region holding it (copies live in another region).
    #[serde(default)]
    pub aws_region: Option<String>,
    /// The source database's handle (survives the database's deletion).
    #[serde(default)]
    pub database_handle: Option<String>,
    /// Who took it (manual backups).
    #[serde(default)]
    pub created_by_email: Option<String>,
    /// `_embedded.copied_from`: the original, when this is a copy.
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<BackupEmbedded>,
    /// `_links`: `self`, `account`, `database`, `database_image`, `copied_from`, `copies`,
    /// `operations`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// What a backup may embed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BackupEmbedded {
    /// The original backup of a copy (at least its id).
    #[serde(default)]
    pub copied_from: Option<BackupRef>,
}

/// A reference to a backup.
#[derive(Debug, Clone, Deserialize)]
pub struct BackupRef {
    /// The backup's id.
    pub id: u64,
}

impl Backup {
    /// The creation time, parsed.
    #[must_use]
    pub fn created(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.created_at)
    }

    /// Whether this backup is a copy of another (`_embedded.copied_from` or
    /// `_links.copied_from`).
    #[must_use]
    pub fn is_copy(&self) -> bool {
        self.embedded
            .as_ref()
            .is_some_and(|e| e.copied_from.is_some())
            || self.links.href("copied_from").is_some()
    }

    /// The CLI's origin label (spec §3.7): `manual`, `manual, copy`, `automatic, copy`,
    /// `automatic`.
    #[must_use]
    pub fn origin(&self) -> &'static str {
        match (self.manual, self.is_copy()) {
            (true, false) => "manual",
            (true, true) => "manual, copy",
            (false, true) => "automatic, copy",
            (false, false) => "automatic",
        }
    }
}

/// An operation (spec §3.8, §4).
#[derive(Debug, Clone, Deserialize)]
pub struct Operation {
    /// Numeric id.
    pub id: u64,
    /// Type: `tunnel`, `restore`, `deprovision`, `purge`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Whether it was cancelled.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cancelled: bool,
    /// The handle it carries (restore: the new database's handle).
    #[serde(default)]
    pub handle: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last update.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `_links`: `self`, `resource`, `account`, `destination_account`,
    /// `ssh_portal_connections`, `logs`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

impl Operation {
    /// Whether the status is final (`succeeded` or `failed`; spec §4.2 treats `queued` and
    /// `running` as not done).
    #[must_use]
    pub fn is_done(&self) -> bool {
        !matches!(self.status.as_str(), "queued" | "running")
    }
}

/// An SSH portal connection (spec §3.9).
#[derive(Debug, Clone, Deserialize)]
pub struct SshPortalConnection {
    /// Id (a uuid string; a number in older spec versions).
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The user to log in to the portal as.
    pub ssh_user: String,
    /// The OpenSSH user certificate signed for the posted key (not a secret: a signed public
    /// key).
    pub ssh_certificate_body: String,
    /// The `-L` target on the portal (a socket path or `host:port`), used verbatim.
    // UNSURE (aptible-api.md §3.9, §13.4): a string in the newer spec, an integer in the
    // older one; both are accepted and used verbatim as the CLI does.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub ssh_port_forward_socket: Option<String>,
    /// Whether the portal wants a PTY (`-T` is passed only when false).
    #[serde(default, deserialize_with = "null_as_default")]
    pub ssh_pty: bool,
}

/// An app (spec §3.10).
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    pub handle: String,
    /// Provisionable status.
    #[serde(default)]
    pub status: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// `_links`: `self`, `account`, `services`, `vhosts`, `operations`, …
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// An endpoint (`vhost`, spec §3.10).
#[derive(Debug, Clone, Deserialize)]
pub struct Vhost {
    /// Numeric id.
    pub id: u64,
    /// `http`, `http_proxy_protocol`, `tcp`, `tls`, `grpc`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The endpoint's external host name.
    #[serde(default)]
    pub external_host: Option<String>,
    /// The domain it serves.
    #[serde(default)]
    pub virtual_domain: Option<String>,
    /// A custom domain.
    #[serde(default)]
    pub user_domain: Option<String>,
    /// Provisionable status.
    #[serde(default)]
    pub status: Option<String>,
    /// Whether it is internal.
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal: bool,
    /// `_links`: `self`, `service`, `certificate`, `operations`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A log drain (spec §3.11), every `drain_type` including `tail`. Its secrets
/// (`drain_password`, `url`, `logging_token`, …) are never read.
#[derive(Debug, Clone, Deserialize)]
pub struct LogDrain {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    pub handle: String,
    /// `syslog_tls_tcp`, `https_post`, `datadog`, …, `tail`.
    pub drain_type: String,
    /// Provisionable status.
    #[serde(default)]
    pub status: Option<String>,
    /// Destination host (not a secret).
    #[serde(default)]
    pub drain_host: Option<String>,
    /// Destination port.
    #[serde(default)]
    pub drain_port: Option<u16>,
    /// `_links`: `self`, `account`, `operations`, …
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A metric drain (spec §3.11). Its `drain_configuration` (credentials) is never read.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricDrain {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    pub handle: String,
    /// `influxdb`, `influxdb2`, `influxdb_database`, `datadog`.
    pub drain_type: String,
    /// Provisionable status.
    #[serde(default)]
    pub status: Option<String>,
    /// `_links`: `self`, `account`, `database`, `operations`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A database image: type and version (spec §3.6).
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseImage {
    /// Numeric id.
    pub id: u64,
    /// Database type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Version, e.g. `15`.
    #[serde(default)]
    pub version: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `_links`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A disk (spec §3.6).
#[derive(Debug, Clone, Deserialize)]
pub struct Disk {
    /// Numeric id.
    pub id: u64,
    /// Size in GB.
    #[serde(default)]
    pub size: Option<u64>,
    /// `gp2` / `gp3`.
    #[serde(default)]
    pub ebs_volume_type: Option<String>,
    /// `_links`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// A service: container size and profile (spec §3.6).
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Numeric id.
    pub id: u64,
    /// Handle.
    #[serde(default)]
    pub handle: Option<String>,
    /// Process type.
    #[serde(default)]
    pub process_type: Option<String>,
    /// Container count.
    #[serde(default)]
    pub container_count: Option<u64>,
    /// Container size in MB.
    #[serde(default)]
    pub container_memory_limit_mb: Option<u64>,
    /// `m5`, `r5`, `c5`, …
    #[serde(default)]
    pub instance_class: Option<String>,
    /// `_links`.
    #[serde(rename = "_links", default)]
    pub links: Links,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_example_from_the_spec() {
        // aptible-api.md §11, "Database (GET /databases/100)".
        let db: Database = serde_json::from_value(serde_json::json!({
            "id":100,"handle":"main-db","type":"postgresql","status":"provisioned","provisioned":true,
            "connection_url":"postgresql://aptible:s3cret@db-shared-us-west-1-100.aptible.in:5432/db",
            "port_mapping":[[5432,25432]],"_type":"database",
            "_links":{"self":{"href":"B/databases/100"},"account":{"href":"B/accounts/42"}},
            "_embedded":{"disk":{"id":400,"size":10,"ebs_volume_type":"gp3","_type":"disk",
                "_links":{"self":{"href":"B/disks/400"}}},"last_operation":null,
              "database_credentials":[{"id":900,"type":"postgresql","default":true,
                 "connection_url":"postgresql://aptible:s3cret@db-shared-us-west-1-100.aptible.in:5432/db",
                 "_type":"database_credential","_links":{"self":{"href":"B/database_credentials/900"}}}]}
        }))
        .unwrap();
        assert!(db.is_provisioned());
        assert_eq!(db.kind, "postgresql");
        let debug = format!("{db:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        let emb = db.embedded.unwrap();
        assert_eq!(emb.disk.unwrap().size, Some(10));
        assert!(emb.database_credentials[0].default);
    }

    #[test]
    fn backup_origin_and_time() {
        let b: Backup = serde_json::from_value(serde_json::json!({
            "id":555,"created_at":"2026-02-03T04:05:06.000Z","size":10,"manual":false,
            "database_handle":"main-db","_embedded":{"copied_from":null},"_links":{}
        }))
        .unwrap();
        assert_eq!(b.origin(), "automatic");
        assert_eq!(
            b.created().unwrap().format("%Y-%m-%d-%H-%M-%S").to_string(),
            "2026-02-03-04-05-06"
        );
        let c: Backup = serde_json::from_value(serde_json::json!({
            "id":557,"created_at":"2026-02-03T05:00:00.000Z","manual":true,
            "_embedded":{"copied_from":{"id":555}}
        }))
        .unwrap();
        assert_eq!(c.origin(), "manual, copy");
    }

    #[test]
    fn portal_connection_socket_string_or_number() {
        let c: SshPortalConnection = serde_json::from_value(serde_json::json!({
            "id": 12, "ssh_user": "u", "ssh_certificate_body": "cert",
            "ssh_port_forward_socket": 5432, "ssh_pty": null
        }))
        .unwrap();
        assert_eq!(c.id, "12");
        assert_eq!(c.ssh_port_forward_socket.as_deref(), Some("5432"));
        assert!(!c.ssh_pty);
    }

    #[test]
    fn bad_connection_url_is_not_echoed() {
        let err = serde_json::from_value::<DatabaseCredential>(serde_json::json!({
            "id": 1, "type": "postgresql", "connection_url": "hunter2-not-a-url"
        }))
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
