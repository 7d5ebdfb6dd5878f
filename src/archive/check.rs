//! Reading an archive file back: length, SHA-256, and every zstd frame (design.md section 6,
//! levels `checksum` and `decompress`).
//!
//! One pass over the bytes: the reading thread hashes, a second thread decodes, so the two
//! costs overlap on two cores. Frames are counted with zstd's streaming decoder, which returns
//! 0 exactly when a frame has been decoded, its content checksum checked, and its output fully
//! flushed; input that ends inside a frame is a truncation. Input that ends exactly at a frame
//! boundary cannot be detected from the data alone (facebook/zstd#1109): that is what the
//! manifest's length, SHA-256 and frame count are for.

use std::io::{self, Read};
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

/// Read size.
const CHUNK: usize = 1 << 20;

/// What reading a file back found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// With decoding: the result.
    pub decoded: Option<Result<Decoded, String>>,
}

/// Facts from decoding every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Complete frames.
    pub frames: u64,
    /// Decompressed bytes.
    pub uncompressed: u64,
}

/// Incremental frame decoder.
struct FrameCounter {
    decoder: Decoder<'static>,
    out: Vec<u8>,
    frames: u64,
    uncompressed: u64,
    in_frame: bool,
}

impl FrameCounter {
    fn new() -> io::Result<Self> {
        Ok(Self {
            decoder: Decoder::new()?,
            out: vec![0; CHUNK],
            frames: 0,
            uncompressed: 0,
            in_frame: false,
        })
    }

    fn feed(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut input = InBuffer::around(chunk);
        while input.pos() < chunk.len() {
            loop {
                let mut output = OutBuffer::around(&mut self.out[..]);
                let hint = self.decoder.run(&mut input, &mut output)?;
                let produced = output.pos();
                self.uncompressed += produced as u64;
                if hint == 0 {
                    // A frame ended and is fully flushed; a new one may follow in this chunk.
                    self.frames += 1;
                    self.in_frame = false;
                    break;
                }
                self.in_frame = true;
                if produced < self.out.len() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Decoded, String> {
        if self.in_frame {
            return Err(format!(
                "zstd data ends inside frame {} (truncated)",
                self.frames + 1
            ));
        }
        if self.frames == 0 {
            return Err("no zstd frame in the file".to_owned());
        }
        Ok(Decoded {
            frames: self.frames,
            uncompressed: self.uncompressed,
        })
    }
}

/// Read `reader` to the end, hashing it and, with `decompress`, decoding every zstd frame.
///
/// # Errors
///
/// Only read errors; decoding problems are reported in [`FileFacts::decoded`].
pub fn scan(mut reader: impl Read, decompress: bool) -> io::Result<FileFacts> {
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    if !decompress {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        return Ok(FileFacts {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            decoded: None,
        });
    }

    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
    let (back_tx, back_rx) = mpsc::sync_channel::<Vec<u8>>(6);
    for _ in 0..6 {
        let _ = back_tx.send(vec![0u8; CHUNK]);
    }
    std::thread::scope(|scope| {
        let decoder = scope.spawn(move || -> Result<Decoded, String> {
            let mut counter = FrameCounter::new().map_err(|e| e.to_string())?;
            let mut failure = None;
            for chunk in rx {
                if failure.is_none()
                    && let Err(e) = counter.feed(&chunk)
                {
                    failure = Some(format!(
                        "zstd frame {} does not decode: {e}",
                        counter.frames + 1
                    ));
                }
                let _ = back_tx.send(chunk);
            }
            match failure {
                Some(f) => Err(f),
                None => counter.finish(),
            }
        });
        let read_result = (|| -> io::Result<()> {
            loop {
                let mut buf = back_rx.recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                buf.resize(CHUNK, 0);
                let n = read_full(&mut reader, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                hasher.update(&buf);
                bytes += n as u64;
                if tx.send(buf).is_err() {
                    return Ok(());
                }
            }
        })();
        drop(tx);
        let outcome = decoder
            .join()
            .unwrap_or_else(|_| Err("decoder thread panicked".to_owned()));
        read_result?;
        Ok(FileFacts {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            decoded: Some(outcome),
        })
    })
}

/// Fill `buf` from `reader` as far as it goes: fewer bytes only at the end of the input.
///
/// # Errors
///
/// The reader's errors (interruptions are retried).
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_checksum(true).unwrap();
        io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    }

    fn numbers(from: u32, to: u32) -> Vec<u8> {
        let mut out = String::new();
        for i in from..=to {
            out.push_str(&i.to_string());
            out.push('\n');
        }
        out.into_bytes()
    }

    #[test]
    fn counts_every_frame_of_a_multi_frame_file() {
        // A06 (a): both frames decode, not only the first.
        let (a, b) = (numbers(1, 200_000), numbers(200_001, 400_000));
        let mut multi = frame(&a);
        multi.extend(frame(&b));
        let facts = scan(&multi[..], true).unwrap();
        assert_eq!(facts.bytes, multi.len() as u64);
        assert_eq!(
            facts.decoded,
            Some(Ok(Decoded {
                frames: 2,
                uncompressed: (a.len() + b.len()) as u64
            }))
        );
    }

    #[test]
    fn cut_inside_a_frame_is_truncation_cut_at_boundary_is_one_frame() {
        let a = numbers(1, 200_000);
        let first = frame(&a);
        let mut multi = first.clone();
        multi.extend(frame(&numbers(200_001, 400_000)));
        let cut_mid = &multi[..first.len() + 100];
        let err = scan(cut_mid, true).unwrap().decoded.unwrap().unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        // A06 (b): at the boundary the data alone looks valid; only the manifest can tell.
        let at_boundary = scan(&multi[..first.len()], true).unwrap();
        assert_eq!(
            at_boundary.decoded,
            Some(Ok(Decoded {
                frames: 1,
                uncompressed: a.len() as u64
            }))
        );
    }

    #[test]
    fn flipped_byte_fails_decoding_or_checksum() {
        let mut data = frame(&numbers(1, 50_000));
        let mid = data.len() / 2;
        data[mid] ^= 0x40;
        let facts = scan(&data[..], true).unwrap();
        assert!(matches!(facts.decoded, Some(Err(_))), "{:?}", facts.decoded);
    }

    #[test]
    fn empty_payload_is_one_valid_frame_and_empty_file_is_not() {
        let data = frame(b"");
        assert_eq!(
            scan(&data[..], true).unwrap().decoded,
            Some(Ok(Decoded {
                frames: 1,
                uncompressed: 0
            }))
        );
        let err = scan(&b""[..], true).unwrap().decoded.unwrap().unwrap_err();
        assert_eq!(err, "no zstd frame in the file");
    }

    #[test]
    fn checksum_level_only_hashes() {
        let facts = scan(&b"abc"[..], false).unwrap();
        assert_eq!(
            facts.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(facts.bytes, 3);
        assert_eq!(facts.decoded, None);
    }
}
