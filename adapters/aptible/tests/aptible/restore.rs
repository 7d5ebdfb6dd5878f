//! Restoring a backup into a new database (spec §8): the new database holds the backup's data,
//! not the live data; a second run finds and reuses it; deprovisioning it makes it 404.

use std::time::Duration;

use exporter_aptible::{ErrorKind, RestoreOptions, TunnelOptions, leftover_restores};
use serde_json::json;

use crate::support::{Fake, FakeOptions, fast_poll};
use crate::tunnel::pg_connect;

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_backup_holds_the_backup_data_and_is_deprovisioned() {
    let fake = Fake::start_with(FakeOptions::backed(&[100], true));
    let client = fake.client().await;
    let env = client.environment("prod").await.unwrap();

    // The live database moves on after the backup was taken.
    let backing = fake.backing(100).await;
    let (live, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port=5432 user=postgres dbname={}",
            backing["dbname"].as_str().unwrap()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    live.batch_execute(
        "INSERT INTO customers VALUES (4, 'dave'); DELETE FROM customers WHERE id = 1",
    )
    .await
    .unwrap();
    drop(live);

    let inv = client.inventory(&env).await.unwrap();
    let backup = inv
        .database("main-db")
        .unwrap()
        .backups
        .iter()
        .find(|b| b.id == 555)
        .unwrap()
        .clone();
    let options = RestoreOptions {
        poll: fast_poll(),
        ..RestoreOptions::default()
    };
    let restored = client.restore_backup(&backup, &options).await.unwrap();
    assert_eq!(
        restored.database().handle,
        "main-db-at-2026-02-03-04-05-06-exporter"
    );
    assert!(!restored.reused());
    assert_eq!(restored.backup_id(), Some(555));
    assert!(restored.operation_id().is_some());
    assert!(restored.database().is_provisioned());

    // Through a tunnel, as the dump will read it: the backup's rows, not the live ones.
    let tunnel = client
        .open_tunnel(restored.database(), &TunnelOptions::default())
        .await
        .unwrap();
    let pg = pg_connect(tunnel.endpoint()).await;
    let names: Vec<String> = pg
        .query("SELECT name FROM customers ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    // Same user and password as the original at backup time (DOCS, spec §8).
    assert_eq!(
        tunnel.endpoint().url().password().as_deref(),
        Some("pg-Seed-Pass-7731")
    );
    drop(pg);
    tunnel.stop().await;

    // An interrupted run left it behind: the next run finds it by handle and reuses it.
    let inv = client.inventory(&env).await.unwrap();
    let leftovers = leftover_restores(&inv);
    assert_eq!(leftovers.len(), 1);
    assert_eq!(leftovers[0].database().handle, restored.database().handle);
    fake.clear_requests().await;
    let again = client.restore_backup(&backup, &options).await.unwrap();
    assert!(again.reused());
    assert_eq!(again.database().id, restored.database().id);
    assert!(
        fake.requests().await.iter().all(|r| r["method"] == "GET"),
        "nothing posted for a reused database"
    );

    // --keep-restored off: deprovision it; afterwards it answers 404.
    let op = client
        .deprovision_restored(&restored, &fast_poll())
        .await
        .unwrap();
    assert!(op.is_some());
    let e = client
        .refresh_database(restored.database())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let inv = client.inventory(&env).await.unwrap();
    assert!(leftover_restores(&inv).is_empty());
    assert_eq!(inv.databases.len(), 5);
    // Its real database is gone too (dropped in the background by the fake).
    let mut gone = false;
    for _ in 0..100 {
        if fake.backing(restored.database().id).await.is_null() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone);
    // The only destructive request of the whole test: that deprovision.
    let log = fake.requests().await;
    let destructive: Vec<&serde_json::Value> =
        log.iter().filter(|r| r["destructive"] == true).collect();
    assert_eq!(destructive.len(), 1);
    assert_eq!(
        destructive[0]["path"],
        format!("/databases/{}/operations", restored.database().id)
    );
    fake.assert_clean_log(1).await;
    fake.assert_no_secret(&format!("{restored:?} {inv:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_handles_follow_the_rules_and_the_orphaned_backup_restores() {
    let mut seed = FakeOptions::backed(&[], false).seed;
    // A source handle long enough that the CLI's default handle would exceed 64 characters.
    let long = "customer-reporting-warehouse-eu-west-primary";
    seed["databases"][5]["handle"] = json!(long);
    let fake = Fake::start_with(FakeOptions { seed, sshd: false });
    let client = fake.client().await;
    let env = client.environment("prod").await.unwrap();
    let inv = client.inventory(&env).await.unwrap();
    let orphan = inv.orphaned_backups[0].clone();
    assert_eq!(orphan.database_handle.as_deref(), Some(long));
    let restored = client
        .restore_backup(
            &orphan,
            &RestoreOptions {
                poll: fast_poll(),
                ..RestoreOptions::default()
            },
        )
        .await
        .unwrap();
    let handle = &restored.database().handle;
    assert_eq!(handle.len(), 64, "{handle}");
    assert!(handle.starts_with("customer-reporting-wareho-"), "{handle}");
    assert!(
        handle.ends_with("-at-2025-06-01-00-00-00-exporter"),
        "{handle}"
    );
    assert!(exporter_aptible::restore::is_valid_handle(handle));

    // An explicit invalid handle is refused before anything is posted.
    fake.clear_requests().await;
    let e = client
        .restore_backup(
            &orphan,
            &RestoreOptions {
                handle: Some("Not Valid".into()),
                poll: fast_poll(),
                ..RestoreOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(fake.requests().await.is_empty());
    fake.assert_clean_log(0).await;
}
