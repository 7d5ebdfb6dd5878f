//! TLS against real PostgreSQL servers (issue 12): private clusters with `ssl = on` and only
//! `hostssl` lines for TCP, presenting certificates of a throw-away CA (see
//! `exporter-tls-testing`). Every connection kind goes through TLS here: the snapshot, the
//! parallel workers and raw COPY readers of a dump, restore, scratch databases and the
//! fingerprint pass.

use std::sync::OnceLock;

use bytes::Bytes;
use exporter_contract::{
    DatabaseUrl, DumpOptions, Endpoint, ErrorKind, PayloadFormat, RestoreOptions, ScratchServer,
    Source, Target, TlsInfo,
};
use exporter_postgres::{PostgresScratch, PostgresSource, PostgresTarget, fingerprint_database};
use exporter_tls_testing::{CLIENT_USER, PgServer, TUNNEL_NAME, pki};
use futures::StreamExt;

/// The TLS-only cluster with the good certificate, shared by the tests of this binary.
fn good() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start(&pki().server, true))
}

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tls_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database with two tables on `server`, created over the Unix socket.
fn seeded(server: &PgServer, tag: &str) -> String {
    let db = unique(tag);
    server.psql(&format!("CREATE DATABASE {db}"));
    server.psql_in(
        &db,
        "CREATE TABLE public.items (id int PRIMARY KEY, name text);
         INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 3000) g;
         CREATE TABLE public.notes (id int, body text);
         INSERT INTO public.notes VALUES (1, 'über'), (2, repeat('x', 100000));",
    );
    db
}

fn url(host: &str, port: u16, db: &str, params: &str) -> DatabaseUrl {
    DatabaseUrl::parse(&format!("postgres://postgres@{host}:{port}/{db}?{params}")).unwrap()
}

fn ca() -> String {
    pki().ca.display().to_string()
}

async fn dump_all(source: &PostgresSource, jobs: usize) -> (Vec<u8>, Option<TlsInfo>, usize) {
    let mut dump = source
        .dump(DumpOptions::default().with_jobs(jobs))
        .await
        .unwrap_or_else(|e| panic!("dump over TLS: {e}"));
    let tls = dump.meta.tls.clone();
    let mut script = Vec::new();
    while let Some(chunk) = dump.body.next().await {
        script.extend_from_slice(&chunk.unwrap());
    }
    let summary = dump.completion.await.unwrap();
    (script, tls, summary.tables.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_dump_restore_and_fingerprint_over_tls() {
    let server = good();
    let db = seeded(server, "full");
    let params = format!("sslmode=verify-full&sslrootcert={}", ca());
    let source = PostgresSource::new(url("localhost", server.port, &db, &params));
    // Parallel workers and raw COPY readers: every one of them must verify too.
    let (script, tls, tables) = dump_all(&source, 3).await;
    assert_eq!(tables, 2);
    let tls = tls.expect("the dump reports its TLS");
    assert_eq!(tls.mode, "verify-full");
    assert!(tls.encrypted);
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    assert_eq!(tls.protocol.as_deref(), Some("TLSv1.3"));
    assert_eq!(
        tls.peer_certificate_sha256.as_deref(),
        Some(pki().server.sha256.as_str())
    );
    let text = String::from_utf8(script.clone()).unwrap();
    // COPY column lists are in name order (body, id): the fingerprint's canonical row.
    assert!(text.contains("über\t1\n"), "rows travel");
    assert!(text.contains("item 3000"));

    // Restore into a scratch database created over TLS, then compare fingerprints, all
    // through the same verified endpoint.
    let scratch = PostgresScratch::new(url("localhost", server.port, "postgres", &params));
    let name = unique("scratch");
    let target = scratch.create(&name).await.unwrap();
    let info = target.preflight().await.unwrap();
    assert_eq!(info.tls.as_ref().map(|t| t.encrypted), Some(true));
    let body = futures::stream::iter(
        script
            .chunks(7000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    let summary = target
        .restore(PayloadFormat::Sql, body, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.rows, 3002);
    let restored = target.fingerprint().await.unwrap();
    let original = fingerprint_database(&url("localhost", server.port, &db, &params))
        .await
        .unwrap();
    assert_eq!(restored, original);
    assert_eq!(original.len(), 2);
    scratch.drop_scratch(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_and_checks_the_chain_only_when_given_a_ca() {
    let server = good();
    let db = seeded(server, "require");
    // No root certificate: encrypted, nothing verified (the IP address is not in the
    // certificate, and that is fine under require).
    let source = PostgresSource::new(url("127.0.0.1", server.port, &db, "sslmode=require"));
    let info = source.preflight().await.unwrap();
    let tls = info.tls.unwrap();
    assert!(tls.encrypted);
    assert_eq!(tls.mode, "require");
    assert_eq!(tls.verified.as_deref(), Some("none"));
    let (script, dump_tls, tables) = dump_all(&source, 1).await;
    assert_eq!(tables, 2);
    assert_eq!(dump_tls.unwrap().verified.as_deref(), Some("none"));
    // Restore and fingerprint over require too.
    let scratch =
        PostgresScratch::new(url("127.0.0.1", server.port, "postgres", "sslmode=require"));
    let name = unique("required");
    let target = scratch.create(&name).await.unwrap();
    let body = futures::stream::iter(vec![Ok(Bytes::from(script))]).boxed();
    let summary = target
        .restore(PayloadFormat::Sql, body, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.rows, 3002);
    assert_eq!(
        target.fingerprint().await.unwrap(),
        fingerprint_database(&url("127.0.0.1", server.port, &db, "sslmode=require"))
            .await
            .unwrap()
    );
    scratch.drop_scratch(&name).await.unwrap();
    // With a root certificate, require checks the chain (libpq: like verify-ca).
    let params = format!("sslmode=require&sslrootcert={}", ca());
    let tls = PostgresSource::new(url("127.0.0.1", server.port, &db, &params))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain"));
    // A restore target over require.
    let target = PostgresTarget::new(url("127.0.0.1", server.port, &db, "sslmode=require"));
    assert!(!target.existing_objects().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_ca_through_a_dial_override_verifies_the_url_host() {
    let server = good();
    let db = seeded(server, "tunnel");
    // The platform case: the URL names the database host, the socket goes to a local port,
    // the CA comes as text. The host name does not even resolve: only the dial address is
    // used for the socket.
    for host in [TUNNEL_NAME, "localhost"] {
        let endpoint = Endpoint::new(url(host, 5432, &db, "sslmode=verify-full"))
            .dial("127.0.0.1", server.port)
            .with_ca_pem(pki().ca_pem.clone())
            .via(format!("tunnel 127.0.0.1:{}", server.port));
        let source = PostgresSource::new(endpoint.clone());
        let tls = source.preflight().await.unwrap().tls.unwrap();
        assert_eq!(tls.verified.as_deref(), Some("chain+hostname"), "{host}");
        let (_, _, tables) = dump_all(&source, 2).await;
        assert_eq!(tables, 2, "{host}");
        assert_eq!(fingerprint_database(&endpoint).await.unwrap().len(), 2);
    }
    // Without a mode, the inline CA makes the default prefer check the chain.
    let endpoint = Endpoint::new(url(TUNNEL_NAME, 5432, &db, ""))
        .dial("127.0.0.1", server.port)
        .with_ca_pem(pki().ca_pem.clone());
    let tls = PostgresSource::new(endpoint)
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.verified.as_deref()),
        ("prefer", Some("chain"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostname_mismatch_names_what_the_certificate_carries() {
    let server = good();
    let params = format!("sslmode=verify-full&sslrootcert={}", ca());
    let err = PostgresSource::new(url("127.0.0.1", server.port, "postgres", &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    let text = err.to_string();
    assert!(text.contains("host name mismatch"), "{text}");
    assert!(
        text.contains(&format!("localhost, {TUNNEL_NAME}, not 127.0.0.1")),
        "{text}"
    );
    assert!(err.hint().unwrap().contains("sslmode=verify-ca"), "{err:?}");
    // The same dump fails the same way, before producing anything.
    let source = PostgresSource::new(url("127.0.0.1", server.port, "postgres", &params));
    let err = source.dump(DumpOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("host name mismatch"), "{err}");
    // verify-ca checks the chain and not the name.
    let params = format!("sslmode=verify-ca&sslrootcert={}", ca());
    let tls = PostgresSource::new(url("127.0.0.1", server.port, "postgres", &params))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_is_named() {
    let server = good();
    let params = format!(
        "sslmode=verify-full&sslrootcert={}",
        pki().other_ca.display()
    );
    let err = PostgresSource::new(url("localhost", server.port, "postgres", &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    assert!(
        err.to_string()
            .contains(&pki().other_ca.display().to_string()),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("sslrootcert"), "{err:?}");
    // verify-ca does not help: the chain is what is wrong.
    let params = format!("sslmode=verify-ca&sslrootcert={}", pki().other_ca.display());
    let err = PostgresSource::new(url("localhost", server.port, "postgres", &params))
        .preflight()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown CA"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_named_with_its_validity() {
    let server = PgServer::start(&pki().expired, true);
    let params = format!("sslmode=verify-full&sslrootcert={}", ca());
    let err = PostgresSource::new(url("localhost", server.port, "postgres", &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    let text = err.to_string();
    assert!(text.contains("certificate expired"), "{text}");
    assert!(
        text.contains("valid until 2021-01-01 00:00:00 UTC"),
        "{text}"
    );
    // Encryption alone (require, no CA) still connects: nothing claims the server is checked.
    let tls = PostgresSource::new(url("localhost", server.port, "postgres", "sslmode=require"))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_against_a_tls_only_server_suggests_sslmode() {
    let server = good();
    let source = PostgresSource::new(url("127.0.0.1", server.port, "postgres", "sslmode=disable"));
    let err = source.preflight().await.unwrap_err();
    assert!(err.to_string().contains("no encryption"), "{err}");
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("sslmode=require"), "{err:?}");
    let err = source.dump(DumpOptions::default()).await.unwrap_err();
    assert!(err.hint().unwrap_or_default().contains("sslmode=require"));
    // prefer (the default) uses TLS there.
    let tls = PostgresSource::new(url("127.0.0.1", server.port, "postgres", ""))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.encrypted);
    assert_eq!(tls.mode, "prefer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_against_a_plain_server_is_clear_text_and_require_fails() {
    let server = PgServer::start_plain();
    let db = seeded(&server, "plain");
    let source = PostgresSource::new(url("127.0.0.1", server.port, &db, ""));
    let tls = source.preflight().await.unwrap().tls.unwrap();
    assert_eq!(tls, TlsInfo::plaintext("prefer"));
    let (_, dump_tls, tables) = dump_all(&source, 2).await;
    assert_eq!(tables, 2);
    assert!(!dump_tls.unwrap().encrypted);
    // require never falls back to clear text.
    let err = PostgresSource::new(url("127.0.0.1", server.port, &db, "sslmode=require"))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.to_string().contains("does not support TLS"), "{err}");
    assert!(err.hint().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_sent_when_given() {
    let server = good();
    let base = format!(
        "postgres://{CLIENT_USER}@localhost:{}/postgres",
        server.port
    );
    // Without one, the server refuses the role (its pg_hba line says `cert`).
    let plain =
        DatabaseUrl::parse(&format!("{base}?sslmode=verify-full&sslrootcert={}", ca())).unwrap();
    let err = PostgresSource::new(plain).preflight().await.unwrap_err();
    assert!(
        err.to_string().contains("certificate"),
        "the server names the missing certificate: {err}"
    );
    let with_cert = DatabaseUrl::parse(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        ca(),
        pki().client.cert.display(),
        pki().client.key.display()
    ))
    .unwrap();
    let tls = PostgresSource::new(with_cert.clone())
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.encrypted);
    // The raw COPY reader presents it too (fingerprints read through it).
    assert!(fingerprint_database(&with_cert).await.unwrap().is_empty());
    // A key file that does not exist is a configuration mistake, named.
    let missing = DatabaseUrl::parse(&format!(
        "{base}?sslmode=require&sslcert={}&sslkey=/nonexistent/client.key",
        pki().client.cert.display()
    ))
    .unwrap();
    let err = PostgresSource::new(missing).preflight().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("/nonexistent/client.key"), "{err}");
}
