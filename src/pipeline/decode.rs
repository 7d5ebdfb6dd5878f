//! The restore stream: a stored archive → SHA-256 and length → zstd decoder → a [`Target`],
//! streaming and bounded (design.md sections 1 and 6). `exporter restore` and
//! `verify --level restore` share it.
//!
//! A blocking thread reads the stored object, hashes every stored byte (SHA-256 and length),
//! decodes every zstd frame (content checksums checked by zstd) and hands the payload to
//! [`Target::restore`] as [`Bytes`] chunks of at most [`OUT_CHUNK`] bytes through a channel of
//! [`CHANNEL_DEPTH`] chunks, so memory stays bounded whatever the archive's size. At the end
//! of the stored bytes the thread compares what it read with the manifest
//! ([`ArchiveRef::compare`]) *before* it ends the stream: a mismatch is sent as an error item,
//! so the adapter aborts instead of finishing (the contract's protocol, point 3), and the
//! archive is reported as corrupt. Only the stored bytes the manifest records are decoded:
//! bytes appended after them are hashed (the length differs) but never reach the target.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use exporter_contract::{EngineError, ErrorKind, RestoreOptions, RestoreSummary, Target};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use zstd::stream::raw::{Decoder, InBuffer, Operation as _, OutBuffer};

use crate::archive::check::{Decoded, FileFacts, read_full};
use crate::progress::Meter;
use crate::run::{ArchiveError, ArchiveRef, OpenArchive};

/// Bytes read from storage at a time.
const READ_CHUNK: usize = 1 << 20;
/// Largest payload chunk handed to the target, in bytes.
pub const OUT_CHUNK: usize = 128 << 10;
/// Payload chunks buffered between the decoding thread and the target.
pub const CHANNEL_DEPTH: usize = 8;

/// Why streaming an archive into a target stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The stored bytes are not what the manifest describes, or could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The target failed (the adapter's error names the statement).
    #[error(transparent)]
    Target(EngineError),
}

/// Sets a flag when dropped: tells the reading thread to stop when the restore future is
/// dropped (Ctrl-C) or has failed for a reason the archive cannot explain.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Stream an opened archive into `target` (see the module docs).
///
/// # Errors
///
/// [`StreamError::Archive`] with [`ArchiveError::Corrupt`] if the stored bytes differ from the
/// manifest in any way (checked whether or not the target succeeded: a statement that fails on
/// damaged data is reported as the damage), or [`ArchiveError::Storage`] for read errors;
/// [`StreamError::Target`] with the adapter's error otherwise.
///
/// # Cancel safety
///
/// Dropping the future stops the reading thread and the adapter's work; the target keeps
/// whatever was applied before.
pub async fn restore_archive(
    archive: OpenArchive,
    target: &dyn Target,
    options: RestoreOptions,
    read: &Meter,
) -> Result<RestoreSummary, StreamError> {
    let OpenArchive {
        reader,
        expected,
        format,
    } = archive;
    let file = expected.file.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let (tx, rx) = mpsc::channel::<Result<Bytes, EngineError>>(CHANNEL_DEPTH);
    let reader_stop = stop.clone();
    let meter = read.clone();
    let pump =
        tokio::task::spawn_blocking(move || pump(reader, &expected, &tx, &reader_stop, &meter));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    let result = target.restore(format, body, options).await;
    // A failing statement may be the first sign of damaged data: then read on to the end so
    // the checksum can tell. Any other failure (connection, permission, unsupported format)
    // says nothing about the archive: stop reading.
    if let Err(e) = &result
        && !matches!(e.kind(), ErrorKind::Query | ErrorKind::Protocol)
    {
        stop.store(true, Ordering::Relaxed);
    }
    let read = pump.await.map_err(|e| ArchiveError::Storage {
        file: file.clone(),
        error: io::Error::other(format!("the reading thread failed: {e}")),
    })?;
    if !read.problems.is_empty() {
        return Err(ArchiveError::Corrupt {
            file,
            problems: read.problems,
        }
        .into());
    }
    if let Some(error) = read.io_error {
        return Err(ArchiveError::Storage { file, error }.into());
    }
    let summary = result.map_err(StreamError::Target)?;
    if !read.delivered_all {
        return Err(StreamError::Target(
            EngineError::new(
                ErrorKind::Protocol,
                "the target reported success before it had read the whole payload",
            )
            .with_object(file),
        ));
    }
    Ok(summary)
}

/// What the reading thread found.
#[derive(Debug, Default)]
struct ReadOutcome {
    /// Differences from the manifest, or undecodable data.
    problems: Vec<String>,
    /// A read error of storage.
    io_error: Option<io::Error>,
    /// Every payload byte was handed to the target and the stream ended normally.
    delivered_all: bool,
}

/// The reading thread: read, hash, decode, send (see the module docs). Returns when the
/// stored object ends, reading fails, or `stop` is set.
fn pump(
    mut reader: Box<dyn Read + Send>,
    expected: &ArchiveRef,
    tx: &mpsc::Sender<Result<Bytes, EngineError>>,
    stop: &AtomicBool,
    read: &Meter,
) -> ReadOutcome {
    let file = expected.file.as_str();
    let mut out = ReadOutcome::default();
    let corrupt = |text: &str| {
        EngineError::new(
            ErrorKind::Protocol,
            format!("archive {file} is corrupt: {text}"),
        )
    };
    let mut decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.blocking_send(Err(EngineError::new(
                ErrorKind::Io,
                "cannot start the zstd decoder",
            )
            .with_source(io::Error::new(e.kind(), e.to_string()))));
            out.io_error = Some(e);
            return out;
        }
    };
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut frames: u64 = 0;
    let mut uncompressed: u64 = 0;
    let mut in_frame = false;
    // Decoding stops after a bad frame or when the target stopped reading; hashing goes on so
    // the final comparison can say whether the archive is intact.
    let mut decode_error: Option<String> = None;
    let mut consumer_gone = false;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if stop.load(Ordering::Relaxed) {
            return out;
        }
        let n = match read_full(&mut reader, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Err(EngineError::new(
                    ErrorKind::Io,
                    format!("cannot read archive {file}: {e}"),
                )));
                out.io_error = Some(e);
                return out;
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        // Only the stored bytes the manifest records are decoded: whatever was appended after
        // them (a stray zstd frame, another script) is hashed, so the comparison reports the
        // length, but never reaches the target — not even before the mismatch is known.
        let within = usize::try_from(expected.bytes.saturating_sub(bytes)).map_or(n, |r| r.min(n));
        bytes += n as u64;
        read.add(n as u64);
        if decode_error.is_some() || consumer_gone || within == 0 {
            continue;
        }
        let mut input = InBuffer::around(&buf[..within]);
        'chunk: while input.pos() < within {
            loop {
                let mut chunk = vec![0u8; OUT_CHUNK];
                let mut output = OutBuffer::around(&mut chunk[..]);
                let hint = match decoder.run(&mut input, &mut output) {
                    Ok(hint) => hint,
                    Err(e) => {
                        let text = format!("zstd frame {} does not decode: {e}", frames + 1);
                        let _ = tx.blocking_send(Err(corrupt(&text)));
                        decode_error = Some(text);
                        break 'chunk;
                    }
                };
                let produced = output.pos();
                if produced > 0 {
                    uncompressed += produced as u64;
                    chunk.truncate(produced);
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        consumer_gone = true;
                        break 'chunk;
                    }
                }
                if hint == 0 {
                    // A frame ended, its checksum held, and its output is fully flushed.
                    frames += 1;
                    in_frame = false;
                    break;
                }
                in_frame = true;
                if produced < OUT_CHUNK {
                    break;
                }
            }
        }
    }

    let outcome = if let Some(text) = decode_error {
        Some(Err(text))
    } else if consumer_gone {
        // Decoding stopped early: only length and SHA-256 can be compared.
        None
    } else if in_frame {
        Some(Err(format!(
            "zstd data ends inside frame {} (truncated)",
            frames + 1
        )))
    } else if frames == 0 {
        Some(Err("no zstd frame in the file".to_owned()))
    } else {
        Some(Ok(Decoded {
            frames,
            uncompressed,
        }))
    };
    let decoded_all = matches!(outcome, Some(Ok(_)));
    let facts = FileFacts {
        bytes,
        sha256: hex::encode(hasher.finalize()),
        decoded: outcome,
    };
    out.problems = expected.compare(&facts);
    if !out.problems.is_empty() && !consumer_gone {
        // Before the stream ends: the target must abort, not finish (contract, point 3).
        let _ = tx.blocking_send(Err(corrupt(&out.problems.join("; "))));
    }
    out.delivered_all = decoded_all && out.problems.is_empty();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use exporter_contract::PayloadFormat;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    }

    fn payload(lines: u32) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("{i}\trow {i}\n").into_bytes())
            .collect()
    }

    fn expected(stored: &[u8], frames: u64, plain: usize) -> ArchiveRef {
        ArchiveRef {
            file: "x.sql.zst".into(),
            format: Some(PayloadFormat::Sql),
            bytes: stored.len() as u64,
            sha256: hex::encode(Sha256::digest(stored)),
            frames: Some(frames),
            uncompressed: Some(plain as u64),
        }
    }

    /// Run the pump over `stored` and collect what the target would receive.
    fn pump_all(stored: Vec<u8>, expect: &ArchiveRef) -> (ReadOutcome, Vec<u8>, Vec<String>) {
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let expect = expect.clone();
        let thread = std::thread::spawn(move || {
            pump(
                Box::new(std::io::Cursor::new(stored)),
                &expect,
                &tx,
                &AtomicBool::new(false),
                &Meter::default(),
            )
        });
        let mut data = Vec::new();
        let mut errors = Vec::new();
        while let Some(item) = rx.blocking_recv() {
            match item {
                Ok(b) => {
                    assert!(b.len() <= OUT_CHUNK);
                    data.extend_from_slice(&b);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (thread.join().unwrap(), data, errors)
    }

    #[test]
    fn a_good_multi_frame_archive_is_delivered_whole() {
        let (a, b) = (payload(60_000), payload(10));
        let mut stored = frame(&a);
        stored.extend(frame(&b));
        let expect = expected(&stored, 2, a.len() + b.len());
        let (out, data, errors) = pump_all(stored, &expect);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert!(out.delivered_all);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(data, [a, b].concat());
    }

    #[test]
    fn a_sha_mismatch_is_an_error_item_before_the_end() {
        // Decodes fine, but is not what the manifest describes (an appended valid frame).
        let a = payload(1000);
        let mut stored = frame(&a);
        let expect = expected(&stored, 1, a.len());
        stored.extend(frame(b"DROP TABLE x;\n"));
        let (out, _, errors) = pump_all(stored, &expect);
        assert!(!out.delivered_all);
        assert!(
            out.problems.iter().any(|p| p.starts_with("length ")),
            "{:?}",
            out.problems
        );
        assert!(out.problems.iter().any(|p| p.starts_with("sha256 ")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("archive x.sql.zst is corrupt: "));
    }

    #[test]
    fn a_flipped_byte_stops_decoding_but_hashing_goes_on() {
        let a = payload(50_000);
        let good = frame(&a);
        let expect = expected(&good, 1, a.len());
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let (out, data, errors) = pump_all(bad, &expect);
        assert!(!out.delivered_all);
        assert!(data.len() < a.len() || data != a);
        assert!(!errors.is_empty());
        // The checksum comparison still ran over every stored byte.
        assert!(
            out.problems.iter().any(|p| p.starts_with("sha256 ")),
            "{:?}",
            out.problems
        );
    }

    #[test]
    fn a_cut_inside_a_frame_is_truncation() {
        let a = payload(20_000);
        let good = frame(&a);
        let cut = good[..good.len() - 7].to_vec();
        let expect = expected(&cut, 1, a.len());
        let (out, _, errors) = pump_all(cut, &expect);
        assert_eq!(
            out.problems,
            vec!["zstd data ends inside frame 1 (truncated)".to_owned()]
        );
        assert_eq!(errors.len(), 1);
    }
}
