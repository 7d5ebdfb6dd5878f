//! Environments and everything in them; pagination; retries of idempotent requests only;
//! the `Prefer` header (spec §2, §3, §5).

use exporter_aptible::{ClientOptions, ErrorKind, RestoreOptions};
use serde_json::json;

use crate::support::{Fake, FakeOptions, default_seed, fast_options, fast_poll};

fn no_sshd() -> Fake {
    Fake::start_with(FakeOptions::backed(&[], false))
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_of_the_seeded_environment() {
    let fake = no_sshd();
    let client = fake.client().await;
    let env = client.environment("prod").await.unwrap();
    assert_eq!(env.account.id, 42);
    assert_eq!(env.stack.internal_domain.as_deref(), Some("aptible.in"));
    let inv = client.inventory(&env).await.unwrap();

    let handles: Vec<&str> = inv
        .databases
        .iter()
        .map(|d| d.database.handle.as_str())
        .collect();
    assert_eq!(
        handles,
        [
            "cache",
            "events",
            "main-db",
            "main-db-replica",
            "shop-mysql"
        ]
    );
    let main = inv.database("main-db").unwrap();
    assert_eq!(main.database.kind, "postgresql");
    assert_eq!(main.version(), Some("15"));
    assert_eq!(main.disk_size_gb(), Some(10));
    assert!(!main.is_replica());
    let ids: Vec<u64> = main.backups.iter().map(|b| b.id).collect();
    assert_eq!(ids, [556, 557, 555], "newest first");
    assert_eq!(main.backups[0].origin(), "manual");
    assert_eq!(main.backups[1].origin(), "automatic, copy");
    assert_eq!(
        main.newest_backup().unwrap().created_at,
        "2026-02-04T09:00:00.000Z"
    );
    assert_eq!(
        exporter_aptible::restore::latest_backup(main).unwrap().id,
        556
    );
    let replicas: Vec<&str> = main.dependents.iter().map(|d| d.handle.as_str()).collect();
    assert_eq!(replicas, ["main-db-replica"]);
    let replica = inv.database("main-db-replica").unwrap();
    assert!(replica.is_replica());
    assert_eq!(
        inv.database_by_href(replica.database.initialize_from().unwrap())
            .unwrap()
            .database
            .handle,
        "main-db"
    );
    let mongo = inv.database("events").unwrap();
    assert_eq!(mongo.database.kind, "mongodb");
    assert_eq!(mongo.version(), Some("4.4"));
    assert_eq!(inv.database("shop-mysql").unwrap().disk_size_gb(), Some(20));

    assert_eq!(inv.apps.len(), 1);
    assert_eq!(inv.apps[0].app.handle, "web");
    assert_eq!(
        inv.apps[0].vhosts[0].external_host.as_deref(),
        Some("elb-web-60.aptible.in")
    );
    assert_eq!(inv.vhosts.len(), 1);
    let drains: Vec<(&str, &str)> = inv
        .log_drains
        .iter()
        .map(|d| (d.handle.as_str(), d.drain_type.as_str()))
        .collect();
    assert_eq!(
        drains,
        [("papertrail", "syslog_tls_tcp"), ("tail-1", "tail")]
    );
    assert_eq!(inv.metric_drains[0].drain_type, "datadog");
    let all: Vec<u64> = inv.backups.iter().map(|b| b.id).collect();
    assert_eq!(all, [556, 557, 580, 570, 560, 555, 590]);
    let orphaned: Vec<u64> = inv.orphaned_backups.iter().map(|b| b.id).collect();
    assert_eq!(orphaned, [590]);
    assert_eq!(
        inv.orphaned_backups[0].database_handle.as_deref(),
        Some("old-db")
    );
    assert!(exporter_aptible::leftover_restores(&inv).is_empty());

    // Nothing secret was asked for or kept: every request said no_sensitive_extras=true.
    fake.assert_no_secret(&format!("{inv:?}"));
    let log = fake.requests().await;
    assert!(
        log.iter()
            .all(|r| r["prefer"] == "no_sensitive_extras=true"),
        "{log:#?}"
    );
    assert!(log.iter().all(|r| r["method"] == "GET"));
    assert!(log.iter().all(|r| r["accept"] == "application/json"));
    fake.assert_clean_log(0).await;

    let e = client.environment("nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        "environment nope: not found (visible: prod, staging)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_to_the_end_across_pages() {
    let mut seed = default_seed();
    let dbs = seed["databases"].as_array_mut().unwrap();
    dbs.clear();
    for i in 0..60u64 {
        dbs.push(json!({
            "id": 1000 + i, "account": 43, "handle": format!("db-{i:02}"), "type": "postgresql",
            "image": 5, "backing": false,
            "credentials": [{"id": 5000 + i, "type": "postgresql", "default": true, "password": "pw"}]
        }));
    }
    seed["backups"] = json!([]);
    let fake = Fake::start_with(FakeOptions { seed, sshd: false });

    let client = fake
        .client_with(ClientOptions {
            per_page: Some(25),
            ..fast_options()
        })
        .await;
    let env = client.environment("staging").await.unwrap();
    fake.clear_requests().await;
    let dbs = client.databases(&env).await.unwrap();
    assert_eq!(dbs.len(), 60);
    let handles: Vec<String> = dbs.iter().map(|d| d.handle.clone()).collect();
    let expected: Vec<String> = (0..60).map(|i| format!("db-{i:02}")).collect();
    assert_eq!(handles, expected);
    let log = fake.requests().await;
    let pages: Vec<(&str, &str)> = log
        .iter()
        .map(|r| {
            (
                r["query"]["page"].as_str().unwrap_or("-"),
                r["query"]["per_page"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pages, [("-", "25"), ("2", "25"), ("3", "25")]);

    // Without per_page the server's default page size (40 in the fake) applies.
    let client = fake
        .client_with(ClientOptions {
            per_page: None,
            ..fast_options()
        })
        .await;
    fake.clear_requests().await;
    assert_eq!(client.databases(&env).await.unwrap().len(), 60);
    assert_eq!(fake.requests().await.len(), 2);
    let inv = client.inventory(&env).await.unwrap();
    assert_eq!(inv.databases.len(), 60);
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_requests_are_retried_posts_never() {
    let fake = no_sshd();
    let client = fake.client().await;
    fake.post(
        "/fail/http",
        json!({"method": "GET", "path_prefix": "/accounts", "status": 503, "count": 2}),
    )
    .await;
    let accounts = client.accounts().await.unwrap();
    assert_eq!(accounts.len(), 2);
    let gets = fake.requests().await.len();
    assert_eq!(gets, 3, "two 503s then a success");

    // Four 503s exhaust the three retries.
    fake.clear_requests().await;
    fake.post(
        "/fail/http",
        json!({"method": "GET", "path_prefix": "/accounts", "status": 502, "count": 4}),
    )
    .await;
    let e = client.accounts().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.is_retryable());
    assert_eq!(fake.requests().await.len(), 4);
    // Consume the fourth injected failure.
    let _ = client.accounts().await;

    // A POST that fails with a 5xx is sent once.
    let env = client.environment("prod").await.unwrap();
    let inv = client.inventory(&env).await.unwrap();
    let backup = inv.database("main-db").unwrap().backups[2].clone();
    assert_eq!(backup.id, 555);
    fake.clear_requests().await;
    fake.post(
        "/fail/http",
        json!({"method": "POST", "path_prefix": "/backups/555/operations", "status": 500}),
    )
    .await;
    let e = client
        .restore_backup(
            &backup,
            &RestoreOptions {
                poll: fast_poll(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    let posts = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(posts, 1);
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_are_polled_to_their_end() {
    let fake = no_sshd();
    let client = fake.client().await;
    let env = client.environment("prod").await.unwrap();
    let inv = client.inventory(&env).await.unwrap();
    let backup = inv.database("shop-mysql").unwrap().backups[0].clone();
    fake.post(
        "/fail/operation",
        json!({"type": "restore", "resource": "backups/560"}),
    )
    .await;
    let e = client
        .restore_backup(
            &backup,
            &RestoreOptions {
                poll: fast_poll(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Operation);
    assert!(e.to_string().ends_with("(restore) failed."), "{e}");
    // The failed restore left no database behind.
    let inv = client.inventory(&env).await.unwrap();
    assert_eq!(inv.databases.len(), 5);
    // Polling hits queued, running, then the end.
    let polls = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/operations/"))
        .count();
    assert!(polls >= 2, "{polls}");
    fake.assert_clean_log(0).await;
}
