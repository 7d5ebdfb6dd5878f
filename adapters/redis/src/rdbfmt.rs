//! Pure helpers for RDB bytes: Redis's CRC64, LZF decompression, the end-of-file checks of an
//! RDB snapshot, and the cutter for the diskless `$EOF:<mark>` transfer form.

use exporter_contract::{EngineError, ErrorKind};

/// Length of the end mark of a diskless transfer (`CONFIG_RUN_ID_SIZE` in Redis).
pub const EOF_MARK_LEN: usize = 40;

/// Bytes after a DUMP payload's serialized value: 2-byte RDB version (little endian) and the
/// 8-byte CRC64 (little endian) of everything before it.
pub const DUMP_TRAILER: usize = 10;

/// Reflected form of the Jones polynomial used by Redis's `crc64.c` (init 0, no final xor).
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

const fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
}

/// The tables of "slicing by 8": `t[0]` is the byte-at-a-time table, `t[k][i]` the CRC of
/// byte `i` followed by `k` zero bytes, so eight input bytes are folded in with eight
/// independent lookups instead of a chain of eight dependent ones (Kounavis and Berry,
/// "Novel Table Lookup-Based Algorithms for High-Performance CRC Generation", 2008; the
/// method of Redis's own `crcspeed.c`).
const fn tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    t[0] = table();
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u64; 256]; 8] = tables();

/// Continue Redis's CRC64 over `data`, eight bytes per step (equal to [`crc64_bytewise`],
/// which the tests check it against).
#[must_use]
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let t = &TABLES;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let v = crc ^ u64::from_le_bytes(eight);
        crc = t[7][(v & 0xff) as usize]
            ^ t[6][((v >> 8) & 0xff) as usize]
            ^ t[5][((v >> 16) & 0xff) as usize]
            ^ t[4][((v >> 24) & 0xff) as usize]
            ^ t[3][((v >> 32) & 0xff) as usize]
            ^ t[2][((v >> 40) & 0xff) as usize]
            ^ t[1][((v >> 48) & 0xff) as usize]
            ^ t[0][(v >> 56) as usize];
    }
    crc64_bytewise(crc, words.remainder())
}

/// [`crc64`] one byte at a time (the textbook loop of Redis's `crc64.c` before 6.2).
#[must_use]
pub fn crc64_bytewise(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLES[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// Decompress an LZF block (the compression of RDB strings) to exactly `out_len` bytes.
/// `None` if the block is malformed or decodes to another length.
#[must_use]
pub fn lzf_decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() || out.len() + n > out_len {
                return None;
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i)?);
                i += 1;
            }
            len += 2;
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            if back > out.len() || out.len() + len > out_len {
                return None;
            }
            let start = out.len() - back;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

/// Finds the 40-byte end mark of a diskless transfer in a stream of chunks, holding back at
/// most 39 bytes that might be the start of the mark, so nothing after the mark (the
/// replication stream that follows) and nothing of the mark itself is ever emitted.
#[derive(Debug)]
pub struct MarkCutter {
    mark: [u8; EOF_MARK_LEN],
    held: Vec<u8>,
}

impl MarkCutter {
    /// A cutter for `mark`.
    #[must_use]
    pub fn new(mark: [u8; EOF_MARK_LEN]) -> Self {
        Self {
            mark,
            held: Vec::with_capacity(EOF_MARK_LEN),
        }
    }

    /// Feed the next chunk; returns the bytes that are certainly file content, and whether the
    /// mark was found (then the file is complete and everything after the mark is dropped).
    pub fn push(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut combined = std::mem::take(&mut self.held);
        combined.extend_from_slice(data);
        if let Some(p) = combined.windows(EOF_MARK_LEN).position(|w| w == self.mark) {
            combined.truncate(p);
            return (combined, true);
        }
        let keep = combined.len().min(EOF_MARK_LEN - 1);
        self.held = combined.split_off(combined.len() - keep);
        (combined, false)
    }
}

/// Checks an RDB file as it streams by: the `REDIS0nnn` header, the `0xFF` end opcode and
/// the CRC64 of everything before the 8-byte checksum (a zero checksum means the server runs
/// with `rdbchecksum no` and is accepted).
#[derive(Debug, Default)]
pub struct RdbCheck {
    head: Vec<u8>,
    crc: u64,
    tail: Vec<u8>,
    last_summed: Option<u8>,
    /// Bytes seen.
    pub total: u64,
}

impl RdbCheck {
    fn sum(&mut self, data: &[u8]) {
        if let Some(&last) = data.last() {
            self.crc = crc64(self.crc, data);
            self.last_summed = Some(last);
        }
    }

    /// Feed the next bytes of the file.
    pub fn feed(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < 9 {
            let n = (9 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
        }
        if data.len() >= 8 {
            let tail = std::mem::take(&mut self.tail);
            self.sum(&tail);
            self.sum(&data[..data.len() - 8]);
            self.tail = data[data.len() - 8..].to_vec();
        } else {
            let mut c = std::mem::take(&mut self.tail);
            c.extend_from_slice(data);
            if c.len() > 8 {
                let split = c.len() - 8;
                self.sum(&c[..split]);
                self.tail = c[split..].to_vec();
            } else {
                self.tail = c;
            }
        }
    }

    /// The RDB version of the header, once 9 bytes were seen.
    #[must_use]
    pub fn version(&self) -> Option<u32> {
        if self.head.len() == 9 && self.head.starts_with(b"REDIS") {
            std::str::from_utf8(&self.head[5..]).ok()?.parse().ok()
        } else {
            None
        }
    }

    /// Check the whole file; returns its RDB version.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] naming what is wrong: no `REDIS` header, no end opcode, or a
    /// checksum mismatch (a cut or damaged transfer).
    pub fn finish(&self) -> Result<u32, EngineError> {
        let bad = |m: String| EngineError::new(ErrorKind::Protocol, m);
        let version = self.version().ok_or_else(|| {
            bad(format!(
                "the snapshot does not start with an RDB header ({} bytes received)",
                self.total
            ))
        })?;
        if version >= 5 {
            if self.tail.len() != 8 || self.last_summed != Some(0xff) {
                return Err(bad(format!(
                    "the snapshot ({} bytes) does not end with the RDB end opcode and checksum: \
                     it is incomplete",
                    self.total
                )));
            }
            let mut stored = [0u8; 8];
            stored.copy_from_slice(&self.tail);
            let stored = u64::from_le_bytes(stored);
            if stored != 0 && stored != self.crc {
                return Err(bad(format!(
                    "the snapshot's CRC64 does not match ({stored:016x} stored, {:016x} \
                     computed over {} bytes): damaged or cut transfer",
                    self.crc, self.total
                )));
            }
        } else if self.tail.last() != Some(&0xff) {
            return Err(bad(
                "the snapshot does not end with the RDB end opcode: it is incomplete".to_owned(),
            ));
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis_check_value() {
        // redis/src/crc64.c: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(crc64(0, b"1234"), b"56789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64_bytewise(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn sliced_crc64_equals_the_bytewise_loop_at_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in 0..data.len() {
            let want = crc64_bytewise(0, &data[..len]);
            assert_eq!(crc64(0, &data[..len]), want, "length {len}");
            let split = len / 3;
            assert_eq!(crc64(crc64(0, &data[..split]), &data[split..len]), want);
        }
    }

    #[test]
    fn lzf_round_trips_a_redis_block() {
        // DUMP of SET k <"abc" * 20> on Redis 7.0: an LZF block of 60 bytes.
        // Payload: 00 c3 0b 3c <11-byte block> 0a 00 <crc>: type 0, LZF (0xc3), clen 11, len 60.
        let block = [
            0x03, b'a', b'b', b'c', b'a', 0xe0, 0x2d, 0x02, 0x01, b'b', b'c',
        ];
        let out = lzf_decompress(&block, 60).unwrap();
        assert_eq!(out, b"abc".repeat(20));
        assert!(lzf_decompress(&block, 61).is_none());
        assert!(lzf_decompress(&[0xe0, 0x00], 9).is_none());
    }

    fn rdb_file(body: &[u8]) -> Vec<u8> {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(body);
        f.push(0xff);
        let crc = crc64(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn rdb_check_accepts_whole_files_in_any_chunking() {
        let f = rdb_file(b"\xfe\x00\x00\x01k\x01v");
        for step in [1, 3, 7, 8, 9, 64] {
            let mut c = RdbCheck::default();
            for piece in f.chunks(step) {
                c.feed(piece);
            }
            assert_eq!(c.finish().unwrap(), 10, "step {step}");
        }
    }

    #[test]
    fn rdb_check_refuses_cut_or_damaged_files() {
        let f = rdb_file(b"\xfe\x00\x00\x01k\x01v");
        let mut c = RdbCheck::default();
        c.feed(&f[..f.len() - 1]);
        assert_eq!(c.finish().unwrap_err().kind(), ErrorKind::Protocol);
        let mut damaged = f.clone();
        damaged[12] ^= 1;
        let mut c = RdbCheck::default();
        c.feed(&damaged);
        assert!(c.finish().unwrap_err().to_string().contains("CRC64"));
        let mut c = RdbCheck::default();
        c.feed(b"HELLO");
        assert!(c.finish().is_err());
    }

    #[test]
    fn mark_cutter_cuts_exactly_across_chunk_boundaries() {
        let mark = [b'a'; EOF_MARK_LEN];
        let mut mark_bytes = mark;
        mark_bytes[0] = b'7';
        let file = b"REDIS0010 body bytes \xff12345678".to_vec();
        let mut stream = file.clone();
        stream.extend_from_slice(&mark_bytes);
        stream.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        for step in [1, 2, 5, 39, 40, 41, 1000] {
            let mut cutter = MarkCutter::new(mark_bytes);
            let mut got = Vec::new();
            let mut done = false;
            for piece in stream.chunks(step) {
                let (emit, found) = cutter.push(piece);
                got.extend_from_slice(&emit);
                if found {
                    done = true;
                    break;
                }
            }
            assert!(done, "step {step}");
            assert_eq!(got, file, "step {step}");
        }
        let mut cutter = MarkCutter::new(mark);
        let (emit, found) = cutter.push(b"no mark here");
        assert!(!found);
        assert!(emit.is_empty(), "short input is held back");
    }
}
