//! Failures are classified, name the redacted endpoint (or key), never print the password, and
//! a dump cut short never completes `Ok`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, closed_port, dump};
use exporter_contract::{DatabaseUrl, DumpOptions, EngineError, ErrorKind, Source};
use exporter_redis::{CLIENT_NAME, RedisFormat, RedisSource, fingerprint_database};
use futures::StreamExt;

/// Preflight, dump (both formats) and fingerprint all fail with `kind`; `secret` is nowhere
/// in the text.
async fn all_fail(url: &DatabaseUrl, kind: ErrorKind, secret: &str) -> EngineError {
    let resp = RedisSource::new(url.clone());
    let rdb = RedisSource::new(url.clone()).with_format(RedisFormat::Rdb);
    let mut errors = vec![
        resp.preflight().await.unwrap_err(),
        resp.dump(DumpOptions::default()).await.unwrap_err(),
        rdb.dump(DumpOptions::default()).await.unwrap_err(),
        fingerprint_database(url).await.unwrap_err(),
    ];
    for e in &errors {
        assert_eq!(e.kind(), kind, "{e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(secret), "password leaked: {text}");
    }
    errors.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_password_is_auth() {
    let src = Server::start_with(&["--requirepass", "right-pw-4711"], Some("right-pw-4711"));
    let e = all_fail(
        &src.url_with(":wrong-pw-0815", ""),
        ErrorKind::Auth,
        "wrong-pw-0815",
    )
    .await;
    assert!(!e.is_retryable());
    assert!(
        e.to_string().contains("****"),
        "names the redacted URL: {e}"
    );
    all_fail(&src.url(), ErrorKind::Auth, "right-pw-4711").await;
    // The right password works.
    let info = RedisSource::new(src.url_with(":right-pw-4711", ""))
        .preflight()
        .await
        .unwrap();
    assert_eq!(info.engine, "redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_with_wrong_password_is_auth() {
    let src = Server::start();
    src.cli(&[
        "ACL",
        "SETUSER",
        "dumper",
        "on",
        ">user-pw-1234",
        "~*",
        "+@all",
    ]);
    all_fail(
        &src.url_with("dumper:not-the-pw-99", ""),
        ErrorKind::Auth,
        "not-the-pw-99",
    )
    .await;
    src.cli(&["SET", "k", "v"]);
    let dumped = dump(&RedisSource::new(src.url_with("dumper:user-pw-1234", "")))
        .await
        .unwrap();
    assert_eq!(dumped.ok().tables[0].rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_port_is_connect_and_retryable() {
    let url =
        DatabaseUrl::parse(&format!("redis://:gone-pw-77@127.0.0.1:{}", closed_port())).unwrap();
    let e = all_fail(&url, ErrorKind::Connect, "gone-pw-77").await;
    assert!(e.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_to_a_clear_text_server_fails_naming_tls() {
    let src = Server::start();
    let url = DatabaseUrl::parse(&format!(
        "rediss://:tls-pw-5@127.0.0.1:{}?connect_timeout=1&insecure",
        src.port
    ))
    .unwrap();
    let e = all_fail(&url, ErrorKind::Connect, "tls-pw-5").await;
    assert!(e.to_string().contains("does not seem to speak TLS"), "{e}");
    assert!(e.hint().unwrap_or_default().contains("redis://"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_db_is_not_found() {
    let src = Server::start();
    let e = RedisSource::new(src.url_with("", "/99"))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("db99"), "{e}");
}

/// Fill `n` keys of `size` bytes through pipelines.
fn fill(src: &Server, n: usize, size: usize) {
    let mut c = src.client();
    let value = vec![b'x'; size];
    for start in (0..n).step_by(1000) {
        let mut p = redis::pipe();
        for i in start..(start + 1000).min(n) {
            p.cmd("SET").arg(format!("key:{i}")).arg(&value).ignore();
        }
        p.query::<()>(&mut c).unwrap();
    }
}

/// Pull the rest of a body and the completion: the dump must not end `Ok`.
async fn assert_fails(d: exporter_contract::Dump) -> EngineError {
    let mut body = d.body;
    let mut body_error = None;
    while let Some(item) = body.next().await {
        if let Err(e) = item {
            body_error = Some(e);
            break;
        }
    }
    let completion = d.completion.await;
    let e = completion.expect_err("a dump cut short must not complete Ok");
    assert!(body_error.is_some(), "the body must end with an error too");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_killed_midway_fails_the_dump() {
    let src = Server::start();
    fill(&src, 20_000, 1024);
    let d = RedisSource::new(src.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let mut d = d;
    // The dump is running: it produced something, and is far from done (20 MB of values).
    let first = d.body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let killed = src.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed.trim() != "0", "our connection was killed: {killed}");
    let e = assert_fails(d).await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.is_retryable());
    // The kernel reports the kill as an orderly close or as a reset, depending on timing.
    let text = e.to_string();
    assert!(
        text.contains("closed") || text.contains("Connection reset"),
        "{e}"
    );
    assert!(
        text.contains(&src.port.to_string()),
        "names the endpoint: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_midway_fails_the_rdb_dump() {
    let mut src = Server::start();
    // 32 MiB of incompressible values: far more than the socket and channel buffers hold.
    let mut c = src.client();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..32 {
        let v: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        redis::cmd("SET")
            .arg(format!("blob:{i}"))
            .arg(v)
            .query::<()>(&mut c)
            .unwrap();
    }
    drop(c);
    let mut d = RedisSource::new(src.url())
        .with_format(RedisFormat::Rdb)
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let first = d.body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"REDIS"));
    src.kill();
    let e = assert_fails(d).await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_replication_fails_rdb_with_a_resp_hint() {
    let src = Server::start();
    src.cli(&[
        "ACL",
        "SETUSER",
        "norepl",
        "on",
        ">np-pw-31",
        "~*",
        "+@all",
        "-sync",
        "-psync",
    ]);
    let url = src.url_with("norepl:np-pw-31", "");
    let e = RedisSource::new(url.clone())
        .with_format(RedisFormat::Rdb)
        .dump(DumpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert!(e.to_string().contains("RESP format"), "{e}");
    assert!(!e.to_string().contains("np-pw-31"));
    // The RESP format works for the same user.
    dump(&RedisSource::new(url)).await.unwrap().ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_be_dumped_fails_the_dump_by_name() {
    let src = Server::start();
    let mut c = src.client();
    redis::cmd("SET")
        .arg("allowed:1")
        .arg("v")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg(&b"secret\xff\n"[..])
        .arg("v")
        .query::<()>(&mut c)
        .unwrap();
    src.cli(&[
        "ACL",
        "SETUSER",
        "narrow",
        "on",
        ">narrow-pw",
        "~allowed:*",
        "+@all",
    ]);
    let dumped = dump(&RedisSource::new(src.url_with("narrow:narrow-pw", "")))
        .await
        .unwrap();
    let e = dumped.completion.expect_err("never a silent skip");
    assert!(dumped.body_error.is_some());
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert!(
        e.object()
            .unwrap_or_default()
            .ends_with(r#"db0 key "secret\xff\n""#),
        "names the escaped key: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_dump_closes_the_connection() {
    let src = Server::start();
    fill(&src, 20_000, 1024);
    let mut d = RedisSource::new(src.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    d.body.next().await.unwrap().unwrap();
    let ours = format!("name={CLIENT_NAME}");
    assert!(src.cli(&["CLIENT", "LIST"]).contains(&ours));
    drop(d);
    let deadline = Instant::now() + Duration::from_secs(5);
    while src.cli(&["CLIENT", "LIST"]).contains(&ours) {
        assert!(
            Instant::now() < deadline,
            "the dump's connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
