//! The dump stream: engine bytes → zstd (content checksum on) → SHA-256 and byte counts →
//! storage, with backpressure and bounded memory (design.md section 4).
//!
//! ```text
//!  async task (pulls body)         blocking thread
//!  Dump::body ──► bounded channel ──► zstd encoder (N worker threads) ──► HashingWriter ──► ObjectWriter
//! ```
//!
//! The async side pulls the engine's stream and hands chunks to a blocking thread through a
//! channel of [`CHANNEL_CHUNKS`] chunks. When the body ends it awaits the engine's completion;
//! only then does it tell the thread to finish the zstd frame, sync and commit the object.
//! On any failure (body error, completion error, write error) the object is aborted, so nothing
//! appears under the final name (principle 2: success is earned).
//!
//! Memory: the channel holds at most `CHANNEL_CHUNKS` engine chunks (engines batch to about
//! 128 KiB, but a single huge row arrives as one chunk), plus zstd's own buffers (a few MiB per
//! worker at level 3).

use std::io::{self, Write};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use exporter_contract::{Consistency, DumpMeta, DumpOptions, DumpSummary, EngineError, Source};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::progress::{DumpMeters, Meter};
use crate::storage::ObjectWriter;

/// zstd multithreading job size in bytes (see `compress_loop`).
pub const JOB_SIZE: u32 = 2 << 20;

/// Chunks buffered between the engine and the compressor.
pub const CHANNEL_CHUNKS: usize = 8;

/// What one successful archive looks like, for the manifest.
#[derive(Debug, Clone)]
pub struct ArchiveStats {
    /// Engine metadata.
    pub meta: DumpMeta,
    /// The engine's completion report.
    pub summary: DumpSummary,
    /// Bytes stored.
    pub compressed_bytes: u64,
    /// Payload bytes before compression.
    pub uncompressed_bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// zstd frames written.
    pub zstd_frames: u64,
    /// Consistency finally achieved.
    pub consistency: Consistency,
    /// Start of the dump.
    pub started_at: DateTime<Utc>,
    /// End of the dump (after commit).
    pub finished_at: DateTime<Utc>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Why one archive failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The engine failed (before, during or at completion).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Writing, compressing or committing failed.
    #[error("failed to write {file}")]
    Write {
        /// The archive file name.
        file: String,
        /// The I/O error (it names the path).
        #[source]
        source: io::Error,
    },
}

/// Compression settings.
#[derive(Debug, Clone, Copy)]
pub struct Compression {
    /// zstd level.
    pub level: i32,
    /// zstd worker threads (0 = compress on the pipeline thread).
    pub workers: u32,
}

enum Msg {
    /// The engine's size estimate, sent before any data (sizes S3 upload parts).
    SizeHint(u64),
    Data(Bytes),
    Finish,
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
    /// `bytes`, for progress.
    written: Meter,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        self.written.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Written {
    compressed_bytes: u64,
    uncompressed_bytes: u64,
    sha256: String,
}

/// Runs on a blocking thread: compress and write until `Finish` (commit) or the channel closes
/// without it (abort).
fn compress_loop(
    mut rx: mpsc::Receiver<Msg>,
    object: Box<dyn ObjectWriter>,
    compression: Compression,
    written: Meter,
) -> io::Result<Option<Written>> {
    let hashing = HashingWriter {
        inner: object,
        hasher: Sha256::new(),
        bytes: 0,
        written,
    };
    let mut encoder = zstd::stream::write::Encoder::new(hashing, compression.level)?;
    encoder.include_checksum(true)?;
    if compression.workers > 0 {
        encoder.multithread(compression.workers)?;
        // zstd's default job size at level 3 is 8 MiB per worker (plus as many buffered jobs
        // again); smaller jobs keep peak memory low at a negligible cost in ratio.
        encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))?;
    }
    let mut uncompressed: u64 = 0;
    loop {
        match rx.blocking_recv() {
            Some(Msg::SizeHint(bytes)) => encoder.get_mut().inner.set_size_hint(bytes),
            Some(Msg::Data(chunk)) => {
                // On error the encoder and the object are dropped: dropping an uncommitted
                // ObjectWriter aborts it.
                encoder.write_all(&chunk)?;
                uncompressed += chunk.len() as u64;
            }
            Some(Msg::Finish) => {
                let mut hashing = encoder.finish()?;
                hashing.flush()?;
                let sha256 = hex::encode(hashing.hasher.finalize());
                let compressed_bytes = hashing.bytes;
                hashing.inner.commit()?;
                return Ok(Some(Written {
                    compressed_bytes,
                    uncompressed_bytes: uncompressed,
                    sha256,
                }));
            }
            None => {
                drop(encoder);
                return Ok(None);
            }
        }
    }
}

/// Dump one database into `object`, which is committed only if everything succeeded.
///
/// `file` names the object in errors; `meters` count the payload bytes pulled from the
/// engine, the compressed bytes written and the engine's size estimate (for progress).
///
/// # Errors
///
/// [`PipelineError::Engine`] if the engine fails to start, yields an error, or its completion
/// is not `Ok`; [`PipelineError::Write`] if compression or storage fails. In every error case
/// the object is aborted.
///
/// # Cancel safety
///
/// Dropping the future drops the engine's dump (cancelling server work) and closes the channel,
/// which makes the blocking thread abort the object.
pub async fn dump_one(
    source: &dyn Source,
    options: DumpOptions,
    object: Box<dyn ObjectWriter>,
    file: &str,
    compression: Compression,
    meters: &DumpMeters,
) -> Result<ArchiveStats, PipelineError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let write_err = |source: io::Error| PipelineError::Write {
        file: file.to_owned(),
        source,
    };

    let (tx, rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    let written = meters.written.clone();
    let writer =
        tokio::task::spawn_blocking(move || compress_loop(rx, object, compression, written));

    // Everything that can fail before the body ends happens in this block; leaving it drops
    // `tx`, so the writer aborts unless `Finish` was sent.
    let produced: Result<(DumpMeta, DumpSummary), PipelineError> = async {
        let dump = source.dump(options).await?;
        let meta = dump.meta;
        if let Some(hint) = meta.size_hint {
            meters.expected.set(hint);
            // Compressed output rarely exceeds the payload, so the payload estimate bounds it.
            let _ = tx.send(Msg::SizeHint(hint)).await;
        }
        let mut body = dump.body;
        while let Some(item) = body.next().await {
            let chunk = item?;
            if chunk.is_empty() {
                continue;
            }
            meters.read.add(chunk.len() as u64);
            if tx.send(Msg::Data(chunk)).await.is_err() {
                // The writer stopped: its error is reported below.
                return Err(PipelineError::Write {
                    file: file.to_owned(),
                    source: io::Error::other("compressor stopped"),
                });
            }
        }
        drop(body);
        let summary = dump.completion.await?;
        Ok((meta, summary))
    }
    .await;

    match produced {
        Ok((meta, summary)) => {
            // The writer may already have failed; then this send fails and we report its error.
            let _ = tx.send(Msg::Finish).await;
            drop(tx);
            let written = writer
                .await
                .map_err(|e| write_err(io::Error::other(e)))?
                .map_err(write_err)?
                .ok_or_else(|| write_err(io::Error::other("compressor stopped before the end")))?;
            let consistency = summary.consistency.unwrap_or(meta.consistency);
            Ok(ArchiveStats {
                meta,
                summary,
                compressed_bytes: written.compressed_bytes,
                uncompressed_bytes: written.uncompressed_bytes,
                sha256: written.sha256,
                zstd_frames: 1,
                consistency,
                started_at,
                finished_at: Utc::now(),
                seconds: clock.elapsed().as_secs_f64(),
            })
        }
        Err(e) => {
            drop(tx);
            // Prefer the writer's own I/O error (e.g. disk full) when it is the cause.
            let writer_result = writer.await;
            if let (PipelineError::Write { .. }, Ok(Err(io))) = (&e, writer_result) {
                return Err(write_err(io));
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline's own protocol, driven by an in-memory source: these tests exercise how the
    //! core treats completion and errors, not any database.
    use super::*;
    use crate::storage::{LocalStorage, Storage};
    use exporter_contract::{Dump, ErrorKind, PayloadFormat, ServerInfo};
    use futures::future::BoxFuture;
    use std::io::Read;

    struct MemorySource {
        chunks: Vec<Result<&'static [u8], ErrorKind>>,
        completion: Result<(), ErrorKind>,
    }

    impl Source for MemorySource {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
            Box::pin(async {
                Ok(ServerInfo {
                    engine: "memory".into(),
                    version: "1".into(),
                    tls: None,
                    notes: Vec::new(),
                })
            })
        }
        fn check(
            &self,
            _: DumpOptions,
        ) -> BoxFuture<'_, Result<exporter_contract::SourceCheck, EngineError>> {
            Box::pin(async {
                Err(EngineError::new(
                    ErrorKind::Unsupported,
                    "the pipeline tests never check",
                ))
            })
        }
        fn dump(
            &self,
            _: DumpOptions,
        ) -> BoxFuture<'_, Result<exporter_contract::Dump, EngineError>> {
            let items: Vec<Result<Bytes, EngineError>> = self
                .chunks
                .iter()
                .map(|c| {
                    c.map(Bytes::from_static)
                        .map_err(|k| EngineError::new(k, "stream broke"))
                })
                .collect();
            let completion = self.completion;
            Box::pin(async move {
                Ok(Dump {
                    meta: DumpMeta {
                        engine: "memory".into(),
                        format: PayloadFormat::Sql,
                        server_version: "1".into(),
                        consistency: Consistency::Snapshot,
                        size_hint: None,
                        tls: None,
                    },
                    body: Box::pin(futures::stream::iter(items)),
                    completion: Box::pin(async move {
                        completion.map(|()| DumpSummary::default()).map_err(|k| {
                            EngineError::new(k, "producer did not finish").with_object("table t")
                        })
                    }),
                })
            })
        }
    }

    fn setup() -> (tempfile::TempDir, LocalStorage, String) {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        let run = storage.create_run("20261129T074800Z").unwrap();
        (dir, storage, run)
    }

    const C: Compression = Compression {
        level: 3,
        workers: 2,
    };

    #[tokio::test(flavor = "multi_thread")]
    async fn success_commits_and_reports_exact_stats() {
        let (_dir, storage, run) = setup();
        let src = MemorySource {
            chunks: vec![Ok(b"hello "), Ok(b""), Ok(b"world\n")],
            completion: Ok(()),
        };
        let obj = storage.create_object(&run, "x.sql.zst").unwrap();
        let meters = DumpMeters::default();
        let stats = dump_one(&src, DumpOptions::default(), obj, "x.sql.zst", C, &meters)
            .await
            .unwrap();
        // What progress saw is what the manifest gets.
        assert_eq!(meters.read.get(), stats.uncompressed_bytes);
        assert_eq!(meters.written.get(), stats.compressed_bytes);
        assert_eq!(meters.expected.get(), 0, "the source gave no estimate");
        let mut stored = Vec::new();
        storage
            .open_object(&run, "x.sql.zst")
            .unwrap()
            .read_to_end(&mut stored)
            .unwrap();
        assert_eq!(stats.compressed_bytes, stored.len() as u64);
        assert_eq!(stats.sha256, hex::encode(Sha256::digest(&stored)));
        assert_eq!(stats.uncompressed_bytes, 12);
        assert_eq!(zstd::decode_all(&stored[..]).unwrap(), b"hello world\n");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stream_that_ends_is_not_success_without_completion() {
        let (_dir, storage, run) = setup();
        let src = MemorySource {
            chunks: vec![Ok(b"COPY ...")],
            completion: Err(ErrorKind::Protocol),
        };
        let obj = storage.create_object(&run, "x.sql.zst").unwrap();
        let err = dump_one(
            &src,
            DumpOptions::default(),
            obj,
            "x.sql.zst",
            C,
            &DumpMeters::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "table t: producer did not finish");
        assert!(storage.list_objects(&run).unwrap().is_empty());
        assert_eq!(
            fs_err::read_dir(storage.root().join(&run)).unwrap().count(),
            0,
            "no temp file left"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_body_error_aborts_the_object() {
        let (_dir, storage, run) = setup();
        let src = MemorySource {
            chunks: vec![Ok(b"a"), Err(ErrorKind::Query), Ok(b"b")],
            completion: Ok(()),
        };
        let obj = storage.create_object(&run, "x.sql.zst").unwrap();
        let err = dump_one(
            &src,
            DumpOptions::default(),
            obj,
            "x.sql.zst",
            C,
            &DumpMeters::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, PipelineError::Engine(ref e) if e.kind() == ErrorKind::Query),
            "{err}"
        );
        assert_eq!(
            fs_err::read_dir(storage.root().join(&run)).unwrap().count(),
            0
        );
    }
}
