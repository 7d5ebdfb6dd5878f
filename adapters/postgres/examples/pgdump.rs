//! Dump a database to stdout: `cargo run -p exporter-postgres --example pgdump -- postgres://…`.
//! A manual aid for inspecting the script; the summary goes to stderr.

#![allow(
    clippy::disallowed_macros,
    reason = "a command-line example: its summary goes to stderr"
)]

use std::io::Write;

use exporter_contract::{DatabaseUrl, DumpOptions, Source};
use exporter_postgres::PostgresSource;
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = DatabaseUrl::parse(&std::env::args().nth(1).ok_or("usage: pgdump URL")?)?;
    let mut dump = PostgresSource::new(url)
        .dump(DumpOptions::default())
        .await?;
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = dump.body.next().await {
        stdout.write_all(&chunk?)?;
    }
    let summary = dump.completion.await?;
    for t in &summary.tables {
        eprintln!("{}\t{}\t{}", t.name, t.rows, t.fingerprint);
    }
    Ok(())
}
