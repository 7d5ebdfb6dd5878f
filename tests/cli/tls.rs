//! `exporter dump` over TLS (issue 12): a private PostgreSQL cluster that accepts TLS only,
//! with a certificate of a throw-away CA (see `exporter-tls-testing`). The manifest records
//! the TLS used; a verification failure exits 3 naming the cause, with a hint, and leaves no
//! run behind.

use exporter_tls_testing::{PgServer, pki};

use crate::support::{db_entry, exporter, manifest, run, run_dirs, s, tempdir};

#[test]
fn dump_over_verified_tls_records_it_in_the_manifest() {
    let server = PgServer::start(&pki().server, true);
    server.psql("CREATE DATABASE tlsdump");
    server.psql_in(
        "tlsdump",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two');",
    );
    let dir = tempdir();
    let url = format!(
        "postgres://postgres@localhost:{}/tlsdump?sslmode=verify-full&sslrootcert={}",
        server.port,
        s(&pki().ca)
    );
    let out = run(exporter(dir.path()).args(["dump", &url, "--to", "archives"]));
    out.expect_code(0);
    assert!(
        out.stderr.contains("(verify-full, checked chain+hostname)"),
        "the progress line shows the TLS: {}",
        out.stderr
    );
    let run_dir = dir.path().join(out.last_stdout_line());
    let m = manifest(&run_dir);
    let tls = &db_entry(&m, "tlsdump")["tls"];
    assert_eq!(tls["mode"], "verify-full", "{m:#}");
    assert_eq!(tls["encrypted"], true);
    assert_eq!(tls["verified"], "chain+hostname");
    assert_eq!(tls["protocol"], "TLSv1.3");
    assert_eq!(tls["peer_certificate_sha256"], pki().server.sha256.as_str());
    assert_eq!(db_entry(&m, "tlsdump")["tables"][0]["rows"], 2);

    // The same server by IP address: the certificate does not name it.
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/tlsdump?sslmode=verify-full&sslrootcert={}",
        server.port,
        s(&pki().ca)
    );
    let dest = dir.path().join("failed");
    let out = run(exporter(dir.path()).args(["dump", &url, "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("host name mismatch")
        .stderr_contains("hint: ")
        .stderr_contains("sslmode=verify-ca");
    assert!(
        !dest.exists() || run_dirs(&dest).is_empty(),
        "a failed dump left a run behind"
    );
}
