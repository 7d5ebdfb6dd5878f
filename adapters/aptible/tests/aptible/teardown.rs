//! The destructive calls against the fake, in the cancellation guide's order (spec §9): what
//! the teardown executor will run. Destructive calls are meant for the teardown executor only;
//! this test exercises them (and the fake's side of issue 14) directly.
#![allow(
    clippy::disallowed_methods,
    reason = "the client's own tests of its destructive calls against the fake (clippy.toml)"
)]

use exporter_aptible::{ErrorKind, Finished, Operation};
use serde_json::json;

use crate::support::{Fake, FakeOptions, fast_poll};

async fn done(client: &exporter_aptible::Client, op: &Operation) {
    match client.wait_operation(op, &fast_poll()).await.unwrap() {
        Finished::Gone | Finished::Succeeded(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fake_serves_a_full_teardown_in_the_guides_order() {
    let fake = Fake::start_with(FakeOptions::backed(&[], false));
    let client = fake.client().await;
    let env = client.environment("prod").await.unwrap();
    let inv = client.inventory(&env).await.unwrap();

    // A primary with a replica is refused (one destructive request, refused).
    let e = client
        .deprovision_database(&inv.database("main-db").unwrap().database)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert!(e.to_string().contains("main-db-replica"), "{e}");
    // The environment cannot go while resources remain.
    let e = client.delete_account(&env.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Validation);
    assert_eq!(
        e.message(),
        "You must first deprovision any existing Apps, Databases, Database Backups, Log Drains, \
         Metric Drains inside your prod environment to proceed."
    );

    // Steps 2-5: metric drains, log drains (tail included), apps, databases (replicas first).
    for d in &inv.metric_drains {
        done(&client, &client.deprovision_metric_drain(d).await.unwrap()).await;
    }
    for d in &inv.log_drains {
        done(&client, &client.deprovision_log_drain(d).await.unwrap()).await;
    }
    for a in &inv.apps {
        done(&client, &client.deprovision_app(&a.app).await.unwrap()).await;
    }
    let mut dbs: Vec<_> = inv.databases.iter().collect();
    dbs.sort_by_key(|d| !d.is_replica());
    for d in dbs {
        done(
            &client,
            &client.deprovision_database(&d.database).await.unwrap(),
        )
        .await;
    }
    let after = client.inventory(&env).await.unwrap();
    assert!(after.databases.is_empty() && after.apps.is_empty() && after.vhosts.is_empty());
    assert!(after.log_drains.is_empty() && after.metric_drains.is_empty());
    // Left: a final backup per database, the manual one, and the orphaned ones; automatic
    // backups and their copies went with their databases.
    let manual: Vec<u64> = after
        .backups
        .iter()
        .filter(|b| b.manual)
        .map(|b| b.id)
        .collect();
    assert_eq!(manual, [556]);
    assert!(
        after
            .backups
            .iter()
            .all(|b| ![555, 557, 560, 570, 580].contains(&b.id))
    );
    assert_eq!(after.backups.len(), 5 + 1 + 1);
    assert_eq!(after.orphaned_backups.len(), after.backups.len());

    // Step 6: purge every backup (a copy already gone with its original answers 404 = done).
    for b in &after.backups {
        match client.purge_backup(b).await {
            Ok(op) => done(&client, &op).await,
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
        }
    }
    // Step 7: the environment; an injected failure first, never retried.
    fake.post(
        "/fail/delete_account",
        json!({"status": 500, "message": "boom"}),
    )
    .await;
    let e = client.delete_account(&env.account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.to_string(), "environment prod: DELETE /accounts/42: boom");
    client.delete_account(&env.account).await.unwrap();
    let e = client.environment("prod").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let log = fake.requests().await;
    let deletes = log.iter().filter(|r| r["method"] == "DELETE").count();
    assert_eq!(deletes, 3, "the failed DELETE was not retried");
    let unspecified = log.iter().filter(|r| r["specified"] == false).count();
    assert_eq!(unspecified, 0);
}
