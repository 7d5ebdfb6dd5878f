//! Tunnels exactly as `db:tunnel` (spec §6) through the fake's real sshd to the real
//! PostgreSQL, MariaDB and Redis: real queries, the port race, a portal that refuses, a
//! tunnel killed mid-use, a portal time-out.

use std::time::Duration;

use exporter_aptible::{Client, Database, ErrorKind, TunnelEnd, TunnelOptions};
use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::support::{Fake, FakeOptions, SEED_SECRETS};

async fn database(client: &Client, handle: &str) -> Database {
    let env = client.environment("prod").await.unwrap();
    client
        .databases(&env)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.handle == handle)
        .unwrap()
}

pub async fn pg_connect(endpoint: &exporter_contract::Endpoint) -> tokio_postgres::Client {
    let url = endpoint.url();
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(endpoint.connect_host())
        .port(endpoint.connect_port(5432))
        .user(url.username().unwrap())
        .password(url.password().unwrap())
        .dbname(url.database().unwrap());
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn opts() -> TunnelOptions {
    TunnelOptions {
        ready_timeout: Duration::from_secs(30),
        ..TunnelOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnel_to_postgresql_runs_a_real_query() {
    let fake = Fake::start_with(FakeOptions::backed(&[100], true));
    let client = fake.client().await;
    let db = database(&client, "main-db").await;
    let env = client.environment("prod").await.unwrap();
    assert_eq!(env.stack.ssh_portal_port, fake.ssh_port);
    assert_eq!(env.stack.ssh_portal_host.as_deref(), Some("127.0.0.1"));
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    let port = tunnel.local_port();

    // The URL the CLI prints, and the endpoint our own connections use.
    assert_eq!(tunnel.local_url().host(), "localhost.aptible.in");
    assert_eq!(tunnel.local_url().port(), Some(port));
    assert_eq!(tunnel.local_url().scheme(), "postgresql");
    let endpoint = tunnel.endpoint();
    assert_eq!(endpoint.url().host(), "db-shared-us-west-1-100.aptible.in");
    assert_eq!(endpoint.connect_host(), "127.0.0.1");
    assert_eq!(endpoint.connect_port(5432), port);
    assert_eq!(endpoint.ca_pem(), None, "the seeded environment has no CA");
    assert_eq!(tunnel.credential_type(), "postgresql");
    assert_eq!(
        tunnel.local_url().password().as_deref(),
        Some("pg-Seed-Pass-7731")
    );

    let pg = pg_connect(endpoint).await;
    let rows = pg
        .query("SELECT name FROM customers ORDER BY id", &[])
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);

    // The portal saw the API token through SendEnv=ACCESS_TOKEN.
    let sessions = fake.get("/portal/sessions").await;
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["token_known"], true);

    let shown = format!("{tunnel:?} {} {}", tunnel.local_url(), tunnel.endpoint());
    fake.assert_no_secret(&shown);
    drop(pg);
    let end = tunnel.stop().await;
    assert_eq!(end, TunnelEnd::Stopped);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the forward is closed after stop"
    );

    // Exactly the spec's requests: credentials with secrets, the tunnel op, the connection.
    let log = fake.requests().await;
    let creds: Vec<&serde_json::Value> = log
        .iter()
        .filter(|r| r["path"] == "/databases/100/database_credentials")
        .collect();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0]["prefer"], "no_sensitive_extras=false");
    assert!(
        log.iter()
            .filter(|r| r["path"] != "/databases/100/database_credentials")
            .all(|r| r["prefer"] == "no_sensitive_extras=true")
    );
    let posts: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r["method"] == "POST")
        .map(|r| {
            (
                r["path"].as_str().unwrap(),
                r["operation_type"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0], ("/database_credentials/900/operations", "tunnel"));
    assert!(posts[1].0.ends_with("/ssh_portal_connections"));
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_to_mysql_and_redis_run_real_queries() {
    let fake = Fake::start_with(FakeOptions::backed(&[110, 120], true));
    let client = fake.client().await;

    let db = database(&client, "shop-mysql").await;
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    let ep = tunnel.endpoint().clone();
    assert_eq!(ep.url().scheme(), "mysql");
    let my_opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(ep.connect_host().to_owned())
        .tcp_port(ep.connect_port(3306))
        .user(ep.url().username())
        .pass(ep.url().password())
        .db_name(ep.url().database());
    let mut conn = mysql_async::Conn::new(my_opts).await.unwrap();
    let items: Vec<String> = conn
        .query("SELECT item FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(items, ["lamp", "desk"]);
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(
        who.unwrap().ends_with("@localhost"),
        "reached through the server's socket"
    );
    conn.disconnect().await.unwrap();
    assert_eq!(tunnel.stop().await, TunnelEnd::Stopped);

    let db = database(&client, "cache").await;
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    assert_eq!(tunnel.credential_type(), "redis");
    assert_eq!(tunnel.credential_types(), ["redis", "redis+ssl"]);
    let ep = tunnel.endpoint().clone();
    let url = format!(
        "redis://{}:{}@{}:{}/",
        ep.url().username().unwrap(),
        ep.url().password().unwrap(),
        ep.connect_host(),
        ep.connect_port(6379)
    );
    let value: String = tokio::task::spawn_blocking(move || {
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("GET").arg("greeting").query(&mut c).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(value, "hello");
    assert_eq!(tunnel.stop().await, TunnelEnd::Stopped);

    // A credential type that does not exist: the CLI's text, nothing posted.
    let e = client
        .open_tunnel(
            &db,
            &TunnelOptions {
                credential_type: Some("memcached".into()),
                ..opts()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(
        e.to_string(),
        "database cache: No credential with type memcached for database, valid credential types: redis, redis+ssl"
    );
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_taken_in_between_is_retried_on_another() {
    let fake = Fake::start_with(FakeOptions::backed(&[100], true));
    let client = fake.client().await;
    let db = database(&client, "main-db").await;
    // Hold a port on both loopback addresses, as another program would.
    let v4 = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken = v4.local_addr().unwrap().port();
    let _v6 = std::net::TcpListener::bind(("::1", taken)).ok();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let options = TunnelOptions {
        port_picker: Some(std::sync::Arc::new(move || {
            if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Ok(taken)
            } else {
                exporter_aptible::tunnel::free_local_port()
            }
        })),
        ..opts()
    };
    let tunnel = client.open_tunnel(&db, &options).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_ne!(tunnel.local_port(), taken);
    let pg = pg_connect(tunnel.endpoint()).await;
    let n: i64 = pg
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    drop(pg);
    tunnel.stop().await;

    // A fixed port that is taken is not retried: the CLI's question is the hint.
    let e = client
        .open_tunnel(
            &db,
            &TunnelOptions {
                local_port: Some(taken),
                ..opts()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tunnel);
    let text = e.to_string();
    assert!(
        text.starts_with("database main-db: Tunnel did not come up: "),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("(is something else listening on port {taken}?)")),
        "{text}"
    );
    drop(v4);
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_that_does_not_come_up_fails_with_redacted_stderr() {
    let mut options = FakeOptions::backed(&[], true);
    options.seed["accounts"][0]["generate_ca"] = json!(true);
    let fake = Fake::start_with(options);
    let client = fake.client().await;
    let db = database(&client, "main-db").await;
    fake.post("/fail/portal", json!({"count": 1})).await;
    let e = client.open_tunnel(&db, &opts()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tunnel);
    let text = format!("{e} {e:?}");
    assert!(
        e.to_string()
            .starts_with("database main-db: Tunnel did not come up: "),
        "{e}"
    );
    assert!(text.contains("Permission denied"), "{text}");
    fake.assert_no_secret(&text);
    for s in SEED_SECRETS {
        assert!(!text.contains(s));
    }
    // The next attempt works; the environment's CA travels with the endpoint.
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    let env = client.environment("prod").await.unwrap();
    let ca = env.account.ca_pem().unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert_eq!(tunnel.endpoint().ca_pem(), Some(ca));
    tunnel.stop().await;
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tunnel_killed_mid_use_is_observed() {
    let fake = Fake::start_with(FakeOptions::backed(&[100], true));
    let client = fake.client().await;
    let db = database(&client, "main-db").await;
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    let mut watch = tunnel.watch();
    assert_eq!(watch.end(), None);
    let pg = pg_connect(tunnel.endpoint()).await;
    let n: i64 = pg
        .query_one("SELECT count(*) FROM customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    // The portal side dies (its sshd session process is killed).
    let killed = fake.post("/portal/kill", json!({})).await;
    assert_eq!(killed["killed"], 1);
    let end = tokio::time::timeout(Duration::from_secs(20), watch.ended())
        .await
        .expect("the tunnel's end is observed");
    match &end {
        TunnelEnd::Crashed { code, .. } => assert_eq!(*code, Some(255), "{end}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(end.to_string().starts_with("Tunnel crashed (255)"), "{end}");
    assert!(end.is_unexpected());
    fake.assert_no_secret(&end.to_string());
    assert!(
        pg.query_one("SELECT 1", &[]).await.is_err(),
        "the connection through the dead tunnel fails"
    );
    // stop() after the end reports the end, not "stopped".
    assert_eq!(tunnel.stop().await, end);
    fake.assert_clean_log(0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portal_time_out_is_reported_as_such() {
    let fake = Fake::start_with(FakeOptions::backed(&[120], true));
    let client = fake.client().await;
    let db = database(&client, "cache").await;
    fake.post("/portal/timeout", json!({"seconds": 1})).await;
    let tunnel = client.open_tunnel(&db, &opts()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(20), tunnel.watch().ended())
        .await
        .expect("the portal's time limit ends the tunnel");
    assert_eq!(end, TunnelEnd::TimedOut);
    assert_eq!(end.to_string(), "Tunnel timed out");
}
