//! TLS against real MariaDB servers (issue 12): a private `mariadbd` with
//! `require_secure_transport=ON` and certificates of a throw-away CA (see
//! `exporter-tls-testing`). Dump, restore into a scratch database and fingerprint with
//! `VERIFY_IDENTITY` and `REQUIRED`, the inline CA through a dial override, client
//! certificates, and each failure named. `PREFERRED` against the shared server (no TLS there)
//! stays clear text.

use std::sync::OnceLock;

use exporter_contract::{
    DatabaseUrl, DumpOptions, Endpoint, ErrorKind, PayloadFormat, RestoreOptions, ScratchServer,
    Source, Target, TlsInfo,
};
use exporter_mysql::{MysqlScratch, MysqlSource, MysqlTarget, fingerprint_database};
use exporter_tls_testing::{MariaDb, TUNNEL_NAME, pki};
use futures::StreamExt;

fn good() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = MariaDb::start(&pki().server, true);
        s.sql(
            "CREATE USER 'x509_u'@'127.0.0.1' REQUIRE X509; \
             GRANT ALL ON *.* TO 'x509_u'@'127.0.0.1';",
        );
        s
    })
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

fn seeded(server: &MariaDb, tag: &str) -> String {
    let db = unique(tag);
    server.sql(&format!(
        "CREATE DATABASE {db}; USE {db}; \
         CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), payload MEDIUMBLOB); \
         INSERT INTO items VALUES (1, 'über', REPEAT('x', 70000)), (2, 'two', NULL), \
         (3, 'three', 0x00FF);"
    ));
    db
}

fn url(user: &str, host: &str, port: u16, db: &str, params: &str) -> DatabaseUrl {
    DatabaseUrl::parse(&format!("mysql://{user}@{host}:{port}/{db}?{params}")).unwrap()
}

fn ca() -> String {
    pki().ca.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_identity_dump_restore_and_fingerprint() {
    let server = good();
    let db = seeded(server, "full");
    let params = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    // A password account: authentication runs inside the TLS session.
    let source = MysqlSource::new(url(
        "tls_pw:Tls-s3cret",
        "localhost",
        server.port,
        &db,
        &params,
    ));
    let mut dump = source.dump(DumpOptions::default()).await.unwrap();
    let tls = dump.meta.tls.clone().unwrap();
    assert_eq!(tls.mode, "VERIFY_IDENTITY");
    assert!(tls.encrypted);
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    assert!(
        tls.protocol
            .as_deref()
            .is_some_and(|p| p.starts_with("TLSv1."))
    );
    assert_eq!(
        tls.peer_certificate_sha256.as_deref(),
        Some(pki().server.sha256.as_str())
    );
    let mut script = Vec::new();
    while let Some(chunk) = dump.body.next().await {
        script.extend_from_slice(&chunk.unwrap());
    }
    let summary = dump.completion.await.unwrap();
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, 3);

    let scratch = MysqlScratch::new(url("root", "localhost", server.port, "", &params));
    let name = unique("scratch");
    let target = scratch.create(&name).await.unwrap();
    assert_eq!(
        target.preflight().await.unwrap().tls.map(|t| t.encrypted),
        Some(true)
    );
    let body = futures::stream::iter(
        script
            .chunks(5000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    let restored = target
        .restore(PayloadFormat::Sql, body, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(restored.rows, 3);
    let after = target.fingerprint().await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        (after[0].rows, &after[0].fingerprint),
        (3, &summary.tables[0].fingerprint)
    );
    let again = fingerprint_database(&url("root", "localhost", server.port, &db, &params))
        .await
        .unwrap();
    assert_eq!(again, summary.tables);
    scratch.drop_scratch(&name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_encrypts_without_checking_and_verify_ca_checks_the_chain() {
    let server = good();
    let db = seeded(server, "required");
    let source = MysqlSource::new(url(
        "root",
        "127.0.0.1",
        server.port,
        &db,
        "ssl-mode=REQUIRED",
    ));
    let tls = source.preflight().await.unwrap().tls.unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.encrypted, tls.verified.as_deref()),
        ("REQUIRED", true, Some("none"))
    );
    let mut dump = source.dump(DumpOptions::default()).await.unwrap();
    let mut script = Vec::new();
    while let Some(chunk) = dump.body.next().await {
        script.extend_from_slice(&chunk.unwrap());
    }
    let dumped = dump.completion.await.unwrap().tables;
    assert_eq!(dumped[0].rows, 3);
    // Restore and fingerprint over REQUIRED too.
    let scratch = MysqlScratch::new(url(
        "root",
        "127.0.0.1",
        server.port,
        "",
        "ssl-mode=REQUIRED",
    ));
    let name = unique("required_scratch");
    let restored_into = scratch.create(&name).await.unwrap();
    let body = futures::stream::iter(vec![Ok(bytes::Bytes::from(script))]).boxed();
    restored_into
        .restore(PayloadFormat::Sql, body, RestoreOptions::default())
        .await
        .unwrap();
    let after = restored_into.fingerprint().await.unwrap();
    assert_eq!(
        (after[0].rows, &after[0].fingerprint),
        (3, &dumped[0].fingerprint)
    );
    scratch.drop_scratch(&name).await.unwrap();
    let target = MysqlTarget::new(url(
        "root",
        "127.0.0.1",
        server.port,
        &db,
        "ssl-mode=REQUIRED",
    ));
    assert_eq!(
        target.existing_objects().await.unwrap(),
        vec!["table items".to_owned()]
    );

    // VERIFY_CA to an address the certificate does not name: the chain is enough.
    let params = format!("ssl-mode=VERIFY_CA&ssl-ca={}", ca());
    let tls = MysqlSource::new(url("root", "127.0.0.1", server.port, &db, &params))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain"));
    // VERIFY_IDENTITY there is a host name mismatch, with the names and a hint.
    let params = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    let err = MysqlSource::new(url("root", "127.0.0.1", server.port, &db, &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "certificate is for localhost, {TUNNEL_NAME}, not 127.0.0.1"
        )),
        "{err}"
    );
    assert!(
        err.hint().unwrap().contains("ssl-mode=VERIFY_CA"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_ca_through_a_dial_override() {
    let server = good();
    let db = seeded(server, "tunnel");
    let endpoint = Endpoint::new(url("root", TUNNEL_NAME, 3306, &db, ""))
        .dial("127.0.0.1", server.port)
        .with_ca_pem(pki().ca_pem.clone());
    // A CA and no mode: VERIFY_CA.
    let tls = MysqlSource::new(endpoint.clone())
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.verified.as_deref()),
        ("VERIFY_CA", Some("chain"))
    );
    // VERIFY_IDENTITY checks the URL's host, not the dial address.
    let endpoint = Endpoint::new(url(
        "root",
        TUNNEL_NAME,
        3306,
        &db,
        "ssl-mode=VERIFY_IDENTITY",
    ))
    .dial("127.0.0.1", server.port)
    .with_ca_pem(pki().ca_pem.clone());
    let tls = MysqlSource::new(endpoint.clone())
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    assert_eq!(fingerprint_database(endpoint).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_and_expired_certificate_are_named() {
    let server = good();
    let params = format!(
        "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        pki().other_ca.display()
    );
    let err = MysqlSource::new(url("root", "localhost", server.port, "", &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    assert!(err.hint().unwrap().contains("ssl-ca=FILE"), "{err:?}");

    let expired = MariaDb::start(&pki().expired, true);
    let params = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    let err = MysqlSource::new(url("root", "localhost", expired.port, "", &params))
        .dump(DumpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        err.to_string()
            .contains("expired: it is valid until 2021-01-01 00:00:00 UTC"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_is_refused_by_a_tls_only_server_with_a_hint() {
    let server = good();
    let err = MysqlSource::new(url(
        "root",
        "127.0.0.1",
        server.port,
        "",
        "ssl-mode=DISABLED",
    ))
    .preflight()
    .await
    .unwrap_err();
    // MariaDB answers "Access denied" (MySQL names the insecure transport); either way the
    // hint names ssl-mode.
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.hint().unwrap().contains("ssl-mode=REQUIRED"), "{err:?}");
    // PREFERRED (the default) encrypts there.
    let tls = MysqlSource::new(url("root", "127.0.0.1", server.port, "", ""))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!((tls.mode.as_str(), tls.encrypted), ("PREFERRED", true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_against_a_server_without_tls_is_clear_text_and_required_fails() {
    // The shared MariaDB has no TLS configured.
    let tls = MysqlSource::new(url("root", "127.0.0.1", 3306, "", ""))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(tls, TlsInfo::plaintext("PREFERRED"));
    let err = MysqlSource::new(url("root", "127.0.0.1", 3306, "", "ssl-mode=REQUIRED"))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("does not support TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_for_an_account_that_requires_one() {
    let server = good();
    let params = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    let err = MysqlSource::new(url("x509_u", "localhost", server.port, "", &params))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let with_cert = format!(
        "{params}&ssl-cert={}&ssl-key={}",
        pki().client.cert.display(),
        pki().client.key.display()
    );
    let info = MysqlSource::new(url("x509_u", "localhost", server.port, "", &with_cert))
        .preflight()
        .await
        .unwrap();
    assert!(info.tls.unwrap().encrypted);
}
