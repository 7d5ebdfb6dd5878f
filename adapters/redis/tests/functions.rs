//! Server state outside the keyspace: Redis 7 function libraries are not returned by `SCAN`,
//! so a RESP dump must carry them explicitly (`FUNCTION RESTORE`) or lose them silently.

mod common;

use common::{Server, dump};
use exporter_redis::{RedisSource, fingerprint_database};

const LIBRARY: &str = "#!lua name=exporter_lib\n\
    redis.register_function('echo_first', function(keys, args) return args[1] end)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_libraries_survive_a_resp_round_trip() {
    let src = Server::start();
    assert_eq!(
        src.cli(&["FUNCTION", "LOAD", LIBRARY]).trim(),
        "exporter_lib"
    );
    src.cli(&["SET", "k", "v"]);
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok();
    let functions = summary
        .tables
        .iter()
        .find(|t| t.name == "functions")
        .expect("a functions entry in the summary");
    assert_eq!(functions.rows, 1);
    assert!(
        common::contains(&dumped.bytes, b"FUNCTION"),
        "the stream restores the libraries"
    );

    let target = Server::start();
    target.restore(&dumped.bytes);
    assert_eq!(
        target.cli(&["FCALL", "echo_first", "0", "hello"]).trim(),
        "hello",
        "the function works on the restored server"
    );
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables,
        "fingerprints, functions included, equal the dump's"
    );

    // A library changed after the dump is a fingerprint difference, not a silent pass.
    target.cli(&[
        "FUNCTION",
        "LOAD",
        "REPLACE",
        &LIBRARY.replace("args[1]", "args[2]"),
    ]);
    assert_ne!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_functions_has_no_functions_entry() {
    let src = Server::start();
    src.cli(&["SET", "k", "v"]);
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let names: Vec<&str> = dumped.ok().tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["db0"]);
    assert!(!common::contains(&dumped.bytes, b"FUNCTION"));
}
