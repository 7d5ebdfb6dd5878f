//! The endpoint step for platform databases: [`TunnelEndpoints`] opens one tunnel per
//! database, exactly as `aptible db:tunnel` (aptible-api.md §6, [`Client::open_tunnel`]), when
//! its dump starts, and closes it (SIGHUP, then SIGKILL) when the dump ends.
//!
//! - A database read from a backup is first restored into a new database
//!   ([`Client::restore_backup`]: the `restore` operation, polled to completion; a database
//!   left by an interrupted run is reused), dumped through a tunnel, then deprovisioned
//!   ([`Client::deprovision_restored`], which accepts only a database this tool restored)
//!   unless `--keep-restored`. An interrupted run leaves it in place: the next run finds it
//!   by handle and reuses it.
//! - Every tunnel is registered with the command's cleanup scope, so Ctrl-C or SIGTERM stop
//!   it (the scope waits for `ssh` to exit); a tunnel that dies on its own is reported through
//!   the guard's lifeline ([`EndpointGuard::lost`]), which fails that database's dump.
//! - The endpoint is the tunnel's ([`exporter_aptible::Tunnel::endpoint`]: the credential's
//!   URL dialled at the local port, the environment's CA inline) with the TLS defaults of a
//!   tunnel ([`crate::engines::EngineKind::platform_endpoint`]) and then the environment's connection defaults
//!   (`PGSSLMODE` …), which win; the credential URL's own parameters win over both.
//! - Several tunnels run at once with `--jobs`; PostgreSQL's parallel workers connect to the
//!   same endpoint, so they share their database's tunnel.

use std::sync::Arc;

use exporter_aptible::{
    Client, PollOptions, RestoreOptions, RestoredDatabase, Tunnel, TunnelOptions,
};
use exporter_contract::{EngineError, ErrorKind};
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::archive::manifest::{PlatformDatabase, RestoredDatabase as RestoredRecord};
use crate::cleanup::{self, Cleanup};
use crate::endpoint::{EndpointGuard, EndpointProvider, Held, Released};
use crate::engines::ConnectionDefaults;
use crate::progress::{Event, Progress};
use crate::settings::{DatabaseTarget, PlatformRead, PlatformTarget};

/// The endpoint provider of a platform dump (see the module docs). URL targets are their own
/// endpoints, as with [`crate::endpoint::UrlEndpoints`].
pub struct TunnelEndpoints {
    client: Client,
    defaults: ConnectionDefaults,
    tunnel: TunnelOptions,
    keep_restored: bool,
    poll: PollOptions,
    cleanup: Cleanup,
    progress: Arc<dyn Progress>,
}

impl TunnelEndpoints {
    /// A provider on `client`: tunnels with `credential_type` (`None`: each database's default
    /// credential), restored databases kept when `keep_restored`, the environment's connection
    /// `defaults` applied, every tunnel registered with `cleanup`, what it does reported to
    /// `progress` as [`Event::DatabaseNote`]s.
    #[must_use]
    pub fn new(
        client: Client,
        defaults: ConnectionDefaults,
        credential_type: Option<String>,
        keep_restored: bool,
        cleanup: Cleanup,
        progress: Arc<dyn Progress>,
    ) -> Self {
        Self {
            client,
            defaults,
            tunnel: TunnelOptions {
                credential_type,
                ..TunnelOptions::default()
            },
            keep_restored,
            poll: PollOptions::default(),
            cleanup,
            progress,
        }
    }

    fn note(&self, name: &str, note: String) {
        self.progress.event(&Event::DatabaseNote {
            name: name.to_owned(),
            note,
        });
    }

    async fn open_platform(&self, t: &PlatformTarget) -> Result<EndpointGuard, EngineError> {
        let mut record = t.record.clone();
        let (database, restored) = match &t.read {
            PlatformRead::Live(db) => ((**db).clone(), None),
            PlatformRead::Backup(backup) => {
                self.note(
                    &t.name,
                    format!(
                        "restoring backup #{} ({}) into a new database",
                        backup.id, backup.created_at
                    ),
                );
                let restored = self
                    .client
                    .restore_backup(
                        backup,
                        &RestoreOptions {
                            poll: self.poll.clone(),
                            ..RestoreOptions::default()
                        },
                    )
                    .await
                    .map_err(|e| platform_error(&t.record, "restoring its backup", &e))?;
                let handle = restored.database().handle.clone();
                self.note(
                    &t.name,
                    match restored.operation_id() {
                        Some(op) => format!("restored into {handle} (operation #{op})"),
                        None => {
                            format!("reusing {handle}, restored from this backup by an earlier run")
                        }
                    },
                );
                record.restored_into = Some(RestoredRecord {
                    id: restored.database().id,
                    handle: handle.clone(),
                    kept: true,
                });
                // Until it is deprovisioned (or kept on purpose), a restored database is
                // something an interrupted run leaves behind: say so when the scope closes.
                let guard = (!self.keep_restored).then(|| {
                    self.cleanup
                        .register(cleanup::Task::RestoredDatabase { handle }, || {
                            Box::pin(async { Ok(()) })
                        })
                });
                (restored.database().clone(), Some((restored, guard)))
            }
        };
        let tunnel = match self.client.open_tunnel(&database, &self.tunnel).await {
            Ok(t) => t,
            Err(e) => {
                let error = platform_error(&t.record, "opening its tunnel", &e);
                if let Some((restored, guard)) = restored {
                    let released = self.remove_restored(&restored, record).await;
                    for note in released.notes {
                        self.note(&t.name, note);
                    }
                    if let Some(g) = guard {
                        g.disarm();
                    }
                }
                return Err(error);
            }
        };
        record.credential_type = Some(tunnel.credential_type().to_owned());
        self.note(
            &t.name,
            format!(
                "tunnel to {} up on 127.0.0.1:{} (credential {})",
                database.handle,
                tunnel.local_port(),
                tunnel.credential_type()
            ),
        );
        let endpoint = t.engine.with_defaults(
            t.engine.platform_endpoint(tunnel.endpoint().clone()),
            &self.defaults,
        );
        let (lifeline_tx, lifeline) = watch::channel(None);
        let mut ended = tunnel.watch();
        let what = database.handle.clone();
        tokio::spawn(async move {
            let end = ended.ended().await;
            if end.is_unexpected() {
                let _ = lifeline_tx.send(Some(format!("the tunnel to {what} ended: {end}")));
            }
        });
        let mut watch = tunnel.watch();
        let tunnel_guard = self.cleanup.register(
            cleanup::Task::Tunnel {
                database: database.handle.clone(),
            },
            move || {
                // The tunnel's handle was dropped with the work: its supervisor is already
                // sending SIGHUP (then SIGKILL); wait until ssh is gone.
                Box::pin(async move {
                    watch.ended().await;
                    Ok(())
                })
            },
        );
        let held = PlatformHold {
            tunnel: Some((tunnel, tunnel_guard)),
            restored,
            record: record.clone(),
            client: self.client.clone(),
            keep: self.keep_restored,
            poll: self.poll.clone(),
        };
        Ok(EndpointGuard::held(endpoint, Box::new(held))
            .with_platform(record)
            .with_lifeline(lifeline))
    }

    async fn remove_restored(
        &self,
        restored: &RestoredDatabase,
        record: PlatformDatabase,
    ) -> Released {
        remove_restored(
            &self.client,
            restored,
            record,
            self.keep_restored,
            &self.poll,
        )
        .await
    }
}

impl EndpointProvider for TunnelEndpoints {
    fn open<'a>(
        &'a self,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<Arc<EndpointGuard>, EngineError>> {
        Box::pin(async move {
            match target {
                DatabaseTarget::Url(t) => Ok(Arc::new(EndpointGuard::direct(
                    t.engine.endpoint(&t.url, &self.defaults),
                ))),
                DatabaseTarget::Platform(t) => self.open_platform(t).await.map(Arc::new),
            }
        })
    }
}

/// A platform error on the way to a database, as the engine error the dump records: its
/// message names the database and the step; a token problem keeps its hint.
fn platform_error(
    record: &PlatformDatabase,
    step: &str,
    e: &exporter_aptible::Error,
) -> EngineError {
    let (kind, hint) = match e.kind() {
        exporter_aptible::ErrorKind::Auth => (ErrorKind::Auth, Some("run exporter login")),
        exporter_aptible::ErrorKind::Tunnel => (
            ErrorKind::Connect,
            Some(
                "check that the tunnel comes up with `exporter tunnel HANDLE`, then run the dump again",
            ),
        ),
        exporter_aptible::ErrorKind::Config => (ErrorKind::Config, e.hint()),
        // A platform operation (a backup restore, a tunnel's credential) that failed or timed
        // out: nothing is wrong with the network, the platform's log says why.
        exporter_aptible::ErrorKind::Operation => (
            ErrorKind::Query,
            e.hint().or(Some(
                "the platform's operation log says why (aptible operation:logs ID); run the dump again once it is fixed",
            )),
        ),
        exporter_aptible::ErrorKind::NotFound => (ErrorKind::NotFound, e.hint()),
        _ => (ErrorKind::Connect, e.hint()),
    };
    let error = EngineError::new(
        kind,
        format!(
            "{}://{}/{}: {step}: {e}",
            record.platform, record.environment, record.handle
        ),
    );
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// Deprovision a restored database unless `keep`, and say what happened; the record's
/// `restored_into.kept` says whether it is still there.
async fn remove_restored(
    client: &Client,
    restored: &RestoredDatabase,
    mut record: PlatformDatabase,
    keep: bool,
    poll: &PollOptions,
) -> Released {
    let handle = restored.database().handle.clone();
    let mut notes = Vec::new();
    let kept = if keep {
        notes.push(format!(
            "kept the restored database {handle} (--keep-restored)"
        ));
        true
    } else {
        // The one deprovision outside the teardown: it accepts only a RestoredDatabase, a
        // database this tool restored (adapters/aptible/src/restore.rs).
        match client.deprovision_restored(restored, poll).await {
            Ok(op) => {
                notes.push(match op {
                    Some(op) => {
                        format!("deprovisioned the restored database {handle} (operation #{op})")
                    }
                    None => format!("deprovisioned the restored database {handle}"),
                });
                false
            }
            Err(e) => {
                notes.push(format!(
                    "warning: could not deprovision the restored database {handle}: {e}; the \
                     next run reuses it, or deprovision it yourself"
                ));
                true
            }
        }
    };
    if let Some(r) = record.restored_into.as_mut() {
        r.kept = kept;
    }
    Released {
        platform: Some(record),
        notes,
    }
}

/// What a platform endpoint holds: its tunnel (and the cleanup registration that stops it on
/// Ctrl-C) and the database restored for it, if any.
struct PlatformHold {
    tunnel: Option<(Tunnel, cleanup::Guard)>,
    restored: Option<(RestoredDatabase, Option<cleanup::Guard>)>,
    record: PlatformDatabase,
    client: Client,
    keep: bool,
    poll: PollOptions,
}

impl Held for PlatformHold {
    fn release(mut self: Box<Self>) -> BoxFuture<'static, Released> {
        Box::pin(async move {
            if let Some((tunnel, guard)) = self.tunnel.take() {
                // SIGHUP, then SIGKILL after the grace period (spec §6.13).
                let _ = tunnel.stop().await;
                guard.disarm();
            }
            match self.restored.take() {
                Some((restored, guard)) => {
                    let released = remove_restored(
                        &self.client,
                        &restored,
                        self.record.clone(),
                        self.keep,
                        &self.poll,
                    )
                    .await;
                    if let Some(g) = guard {
                        g.disarm();
                    }
                    released
                }
                None => Released {
                    platform: Some(self.record.clone()),
                    notes: Vec::new(),
                },
            }
        })
    }
}
