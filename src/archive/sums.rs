//! `SHA256SUMS`: the `sha256sum -c` format, paths relative to the run directory.

/// Render lines `<64 hex>  <path>\n` (two spaces: text mode, as GNU coreutils writes them).
#[must_use]
pub fn render<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (sha, path) in entries {
        out.push_str(sha);
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out
}

/// Parse `SHA256SUMS` text into `(sha256, path)` pairs, accepting the binary-mode marker `*`.
///
/// # Errors
///
/// The 1-based number of the first line that is not `<64 hex> <space><space|*><path>`.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (sha, rest) = line.split_at_checked(64).ok_or(i + 1)?;
        if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(i + 1);
        }
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or(i + 1)?;
        if path.is_empty() {
            return Err(i + 1);
        }
        out.push((sha.to_ascii_lowercase(), path.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let sha = "a".repeat(64);
        let text = render([(sha.as_str(), "db.sql.zst")]);
        assert_eq!(text, format!("{sha}  db.sql.zst\n"));
        assert_eq!(
            parse(&text).unwrap(),
            vec![(sha.clone(), "db.sql.zst".to_owned())]
        );
        assert_eq!(parse(&format!("{sha} *x\n")).unwrap()[0].1, "x");
        assert_eq!(parse("zz  x\n"), Err(1));
        assert_eq!(parse(&format!("{sha}  a\nbroken\n")), Err(2));
    }
}
