//! Order-independent content fingerprints (design.md section 6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::xxh3_128;

/// Name of the fingerprint algorithm, as recorded in manifests (FORMAT.md, "Fingerprints").
///
/// Each row's canonical bytes are hashed with XXH3-128; the fingerprint is the wrapping sum
/// of those hashes modulo 2^128, so it does not depend on row order. A row's canonical bytes
/// are defined by column **name**, never by position: its values in byte order of their
/// column names (PostgreSQL: the `COPY … TO STDOUT` text line of the row with the columns
/// listed in that order, without its newline; MySQL/MariaDB: the literals of the `VALUES (…)`
/// tuple, columns in that order, joined by `,`). A restore that orders a table's columns
/// differently (an inheritance child whose parent gained a column) therefore gives the same
/// fingerprint. Redis keys have no columns; their rows are unchanged from
/// [`LEGACY_FINGERPRINT_ALGORITHM`].
pub const FINGERPRINT_ALGORITHM: &str = "xxh3-128-wrapping-sum-by-column-name";

/// The algorithm of manifests written before [`FINGERPRINT_ALGORITHM`] (format 1.0): the
/// same sum, with each row's values in column **position** order. Its fingerprints are never
/// compared with the current algorithm's.
pub const LEGACY_FINGERPRINT_ALGORITHM: &str = "xxh3-128-wrapping-sum";

/// An order-independent fingerprint of a multiset of rows: 128 bits, printed as 32 lowercase
/// hex digits. Serialized as that hex string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint(u128);

impl Fingerprint {
    /// The fingerprint of no rows.
    pub const EMPTY: Self = Self(0);

    /// Add one row, given its canonical bytes.
    pub fn add_row(&mut self, row: &[u8]) {
        self.0 = self.0.wrapping_add(xxh3_128(row));
    }

    /// Add one row given its XXH3-128 hash, for a row too large to hold whole: hash it with
    /// xxhash's streaming `Xxh3::digest128`, which equals `xxh3_128` of the whole row.
    pub fn add_row_hash(&mut self, hash: u128) {
        self.0 = self.0.wrapping_add(hash);
    }

    /// Combine two fingerprints of disjoint row sets (for parallel producers).
    #[must_use]
    pub fn combine(self, other: Self) -> Self {
        Self(self.0.wrapping_add(other.0))
    }

    /// The raw 128-bit value.
    #[must_use]
    pub fn value(self) -> u128 {
        self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Error parsing a [`Fingerprint`] from text.
#[derive(Debug, thiserror::Error)]
#[error("fingerprint must be 32 hex digits, got {0:?}")]
pub struct ParseFingerprintError(String);

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(ParseFingerprintError(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseFingerprintError(s.to_owned()))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_does() {
        let mut a = Fingerprint::EMPTY;
        a.add_row(b"1\tx");
        a.add_row(b"2\ty");
        let mut b = Fingerprint::EMPTY;
        b.add_row(b"2\ty");
        b.add_row(b"1\tx");
        assert_eq!(a, b);
        let mut c = Fingerprint::EMPTY;
        c.add_row(b"1\tx");
        c.add_row(b"2\tz");
        assert_ne!(a, c);
    }

    #[test]
    fn duplicate_rows_count() {
        let mut one = Fingerprint::EMPTY;
        one.add_row(b"r");
        let mut two = one;
        two.add_row(b"r");
        assert_ne!(one, two);
    }

    #[test]
    fn hex_round_trip() {
        let mut streamed = Fingerprint::EMPTY;
        streamed.add_row_hash(xxh3_128(b"row"));
        let mut a = Fingerprint::EMPTY;
        a.add_row(b"row");
        assert_eq!(streamed, a, "a row hash adds like the row");
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), a);
        assert!("xyz".parse::<Fingerprint>().is_err());
    }
}
