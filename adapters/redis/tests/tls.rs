//! `rediss://` against real TLS-only Redis servers (`--port 0 --tls-port N`, issue 12), with
//! certificates of a throw-away CA (see `exporter-tls-testing`): dump, restore into a scratch
//! server and fingerprint over verified TLS, redis-cli's `cacert`, `cert`/`key`, `sni` and
//! `insecure`, the inline CA through a dial override, and each failure named.

use std::process::Command;
use std::sync::OnceLock;

use exporter_contract::{
    DatabaseUrl, DumpOptions, Endpoint, ErrorKind, PayloadFormat, RestoreOptions, ScratchServer,
    Source,
};
use exporter_redis::{RedisScratch, RedisSource, fingerprint_database};
use exporter_tls_testing::{RedisTls, TUNNEL_NAME, pki};
use futures::StreamExt;

fn source_server() -> &'static RedisTls {
    static SERVER: OnceLock<RedisTls> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = RedisTls::start(&pki().server, "optional");
        // Seed through redis-cli's own TLS client.
        cli(s.port, &["SET", "plain", "value"]);
        cli(s.port, &["HSET", "hash", "a", "1", "b", "2"]);
        cli(s.port, &["RPUSH", "list", "x", "y", "z"]);
        // A value larger than one argument may be: through stdin (`-x`).
        let mut c = redis_cli(s.port);
        c.args(["-n", "3", "-x", "SET", "big"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("redis-cli runs");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(&vec![b'v'; 300_000])
                .expect("write the value");
        }
        assert!(child.wait().expect("redis-cli ends").success());
        s
    })
}

fn redis_cli(port: u16) -> Command {
    let mut c = Command::new("redis-cli");
    c.args(["--tls", "--cacert"])
        .arg(&pki().ca)
        .args(["-h", "localhost", "-p", &port.to_string()]);
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().expect("redis-cli runs");
    assert!(out.status.success(), "{c:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli(port: u16, args: &[&str]) -> String {
    let mut c = redis_cli(port);
    c.args(args);
    run(c)
}

fn url(text: &str) -> DatabaseUrl {
    DatabaseUrl::parse(text).unwrap()
}

fn ca() -> String {
    pki().ca.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_restore_and_fingerprint_over_verified_tls() {
    let server = source_server();
    let source = RedisSource::new(url(&format!(
        "rediss://localhost:{}?cacert={}",
        server.port,
        ca()
    )));
    let mut dump = source.dump(DumpOptions::default()).await.unwrap();
    let tls = dump.meta.tls.clone().unwrap();
    assert_eq!(tls.mode, "rediss");
    assert!(tls.encrypted);
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    assert_eq!(tls.protocol.as_deref(), Some("TLSv1.3"));
    assert_eq!(
        tls.peer_certificate_sha256.as_deref(),
        Some(pki().server.sha256.as_str())
    );
    let mut payload = Vec::new();
    while let Some(chunk) = dump.body.next().await {
        payload.extend_from_slice(&chunk.unwrap());
    }
    let summary = dump.completion.await.unwrap();
    let keys: u64 = summary.tables.iter().map(|t| t.rows).sum();
    assert_eq!(keys, 4);

    // Restore into a scratch server that also speaks TLS only, then compare.
    let scratch_server = RedisTls::start(&pki().server, "optional");
    let scratch = RedisScratch::new(url(&format!(
        "rediss://localhost:{}?cacert={}",
        scratch_server.port,
        ca()
    )));
    let target = scratch.create("tls_scratch").await.unwrap();
    let body = futures::stream::iter(
        payload
            .chunks(10_000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    let restored = target
        .restore(PayloadFormat::Resp, body, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(restored.rows, 4);
    assert_eq!(target.fingerprint().await.unwrap(), summary.tables);
    assert_eq!(
        cli(scratch_server.port, &["-n", "3", "STRLEN", "big"]).trim(),
        "300000"
    );
    scratch.drop_scratch("tls_scratch").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_sni_and_the_ip_address() {
    let server = source_server();
    // 127.0.0.1 is not in the certificate: verification fails, naming what it carries.
    let err = RedisSource::new(url(&format!(
        "rediss://127.0.0.1:{}?cacert={}",
        server.port,
        ca()
    )))
    .preflight()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(
        err.to_string().contains(&format!(
            "certificate is for localhost, {TUNNEL_NAME}, not 127.0.0.1"
        )),
        "{err}"
    );
    // sni names the server (as redis-cli --sni does) and is the name verified.
    let tls = RedisSource::new(url(&format!(
        "rediss://127.0.0.1:{}?cacert={}&sni=localhost",
        server.port,
        ca()
    )))
    .preflight()
    .await
    .unwrap()
    .tls
    .unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    // insecure: encrypted, nothing verified (redis-cli --insecure).
    let tls = RedisSource::new(url(&format!("rediss://127.0.0.1:{}?insecure", server.port)))
        .preflight()
        .await
        .unwrap()
        .tls
        .unwrap();
    assert_eq!(
        (tls.mode.as_str(), tls.encrypted, tls.verified.as_deref()),
        ("rediss insecure", true, Some("none"))
    );
    let tables = fingerprint_database(&url(&format!(
        "rediss://127.0.0.1:{}?insecure",
        server.port
    )))
    .await
    .unwrap();
    assert_eq!(tables.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_ca_through_a_dial_override() {
    let server = source_server();
    let endpoint = Endpoint::new(url(&format!("rediss://{TUNNEL_NAME}:6380")))
        .dial("127.0.0.1", server.port)
        .with_ca_pem(pki().ca_pem.clone());
    let source = RedisSource::new(endpoint.clone());
    let tls = source.preflight().await.unwrap().tls.unwrap();
    assert_eq!(tls.verified.as_deref(), Some("chain+hostname"));
    assert_eq!(fingerprint_database(endpoint).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_and_expired_certificate_are_named() {
    let server = source_server();
    let err = RedisSource::new(url(&format!(
        "rediss://localhost:{}?cacert={}",
        server.port,
        pki().other_ca.display()
    )))
    .preflight()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.to_string().contains("unknown CA"), "{err}");
    assert!(err.hint().unwrap().contains("cacert=FILE"), "{err:?}");

    let expired = RedisTls::start(&pki().expired, "optional");
    let err = RedisSource::new(url(&format!(
        "rediss://localhost:{}?cacert={}",
        expired.port,
        ca()
    )))
    .dump(DumpOptions::default())
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(
        err.to_string()
            .contains("expired: it is valid until 2021-01-01 00:00:00 UTC"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_against_a_tls_only_server_suggests_rediss() {
    let server = source_server();
    let err = RedisSource::new(url(&format!(
        "redis://:pw-4711@127.0.0.1:{}?connect_timeout=5",
        server.port
    )))
    .preflight()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("TLS connections only"), "{err}");
    assert!(err.hint().unwrap().contains("rediss://"), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("pw-4711"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_when_the_server_requires_one() {
    let server = RedisTls::start(&pki().server, "yes");
    let base = format!("rediss://localhost:{}?cacert={}", server.port, ca());
    let err = RedisSource::new(url(&base)).preflight().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(
        err.to_string()
            .contains("the server requires a client certificate"),
        "{err}"
    );
    assert!(
        err.hint().unwrap().contains("cert=FILE&key=FILE"),
        "{err:?}"
    );
    let with_cert = url(&format!(
        "{base}&cert={}&key={}",
        pki().client.cert.display(),
        pki().client.key.display()
    ));
    let info = RedisSource::new(with_cert).preflight().await.unwrap();
    assert!(info.tls.unwrap().encrypted);
}
