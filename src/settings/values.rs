//! Single values of the command line and the config file: sizes, ages, database URLs and
//! archive names. Pure functions.

use std::time::Duration;

use exporter_contract::DatabaseUrl;

use super::SettingsError;
use crate::engines::EngineKind;

/// Parse an age: a number with a unit `s`, `m`, `h` or `d` (`90s`, `30m`, `2h`, `1d`), or
/// `0`.
///
/// # Errors
///
/// A message naming the text when it is not an age.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not an age (e.g. 30m, 2h, 1d, or 0)"))?;
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} needs a unit: s, m, h or d (e.g. 2h)")),
    };
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// The environment variable that sets how often long work prints a "still running" line.
pub const PROGRESS_INTERVAL_VAR: &str = "EXPORTER_PROGRESS_INTERVAL";

/// Default seconds between "still running" lines.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// How often a long dump, verification or restore says it is still running (issue 16: minutes
/// without a line): `EXPORTER_PROGRESS_INTERVAL` in seconds (decimals allowed; `0` turns the
/// lines off), else [`DEFAULT_PROGRESS_INTERVAL`].
///
/// # Errors
///
/// [`SettingsError`] (exit 2) when the variable is not a number of seconds.
pub fn progress_interval(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Duration>, SettingsError> {
    let Some(text) = env(PROGRESS_INTERVAL_VAR).filter(|t| !t.trim().is_empty()) else {
        return Ok(Some(DEFAULT_PROGRESS_INTERVAL));
    };
    let seconds: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| {
            SettingsError::new(format!(
                "{PROGRESS_INTERVAL_VAR}={text:?} is not a number of seconds"
            ))
            .hint("e.g. 30, or 0 for no \"still running\" lines")
        })?;
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// Parse a byte size: a plain number of bytes, or a number with a binary unit `K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024; `KB`, `MB`, … are read the same way).
///
/// # Errors
///
/// A message naming the text when it is not a size or overflows 64 bits.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512MiB, 20G, 1048576)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit (use KiB, MiB, GiB or TiB)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parse a database URL given on the command line or in the config.
///
/// # Errors
///
/// [`SettingsError`] for text that is not a URL with a host (or holds an unencoded special
/// character in its user name or password), or a scheme no engine handles. The message shows
/// the URL only redacted: everything between `://` and the last `@` is `****`
/// ([`exporter_contract::redact_unparsed`]).
pub fn parse_url(text: &str) -> Result<(DatabaseUrl, EngineKind), SettingsError> {
    let url = DatabaseUrl::parse(text).map_err(|e| {
        SettingsError::new(format!("invalid database URL {}: {e}", e.shown())).hint(
            "special characters in a user name or password must be percent-encoded: \
             @ as %40, : as %3A, / as %2F, ? as %3F, # as %23, % as %25 \
             (a ${VAR} in exporter.toml is encoded for you)",
        )
    })?;
    let engine = EngineKind::for_scheme(url.scheme()).ok_or_else(|| {
        SettingsError::new(format!("unsupported URL scheme {:?}", url.scheme())).hint(format!(
            "supported schemes: {}",
            EngineKind::supported_schemes().join(", ")
        ))
    })?;
    Ok((url, engine))
}

/// Check a payload name: 1..=100 characters of `[A-Za-z0-9._-]`, not starting with `.`.
///
/// # Errors
///
/// A message saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("name {name:?} must be 1 to 100 characters"));
    }
    if name.starts_with('.') {
        return Err(format!("name {name:?} must not start with '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "name {name:?} contains {c:?}; use letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// A file stem derived from a database name: unsupported characters become `_`.
#[must_use]
pub fn name_from_database(db: &str) -> String {
    let mut s: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.starts_with('.') {
        s.replace_range(0..1, "_");
    }
    s.truncate(100);
    if s.is_empty() {
        "database".to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_scheme_has_hint() {
        let e = parse_url("mongodb://h/db").unwrap_err();
        assert_eq!(e.to_string(), "unsupported URL scheme \"mongodb\"");
        assert!(e.hint_text().unwrap().contains("postgres"));
    }

    #[test]
    fn unparseable_urls_are_redacted_and_explained() {
        let e = parse_url("mysql://user:p@ss/w:rd%#1@host/db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid database URL mysql://****@host/db: the user name or password seems to \
             hold a character that must be percent-encoded"
        );
        assert!(e.hint_text().unwrap().contains("# as %23"));
        let e = parse_url("mysql://user:se#cret@host/db").unwrap_err();
        assert!(!e.to_string().contains("se#cret"), "{e}");
        assert!(e.to_string().contains("invalid port number"), "{e}");
        assert!(e.hint_text().unwrap().contains("percent-encoded"));
    }

    #[test]
    fn rediss_is_a_supported_scheme() {
        let (_, engine) = parse_url("rediss://:pw@cache.example:6380").unwrap();
        assert_eq!(engine, EngineKind::Redis);
        let e = parse_url("mongodb://h/db").unwrap_err();
        assert!(e.hint_text().unwrap().contains("rediss"));
    }

    #[test]
    fn names_are_validated_and_derived() {
        assert!(validate_name("billing-2.prod_x").is_ok());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(name_from_database("My DB/1"), "My_DB_1");
        assert_eq!(name_from_database(".hidden"), "_hidden");
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(parse_age("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_age("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_age("2h").unwrap().as_secs(), 7200);
        assert_eq!(parse_age("1d").unwrap().as_secs(), 86_400);
        assert!(parse_age("2").is_err());
        assert!(parse_age("h").is_err());
        assert!(parse_age("3 weeks").is_err());
    }

    #[test]
    fn progress_interval_from_the_environment() {
        let with =
            |v: &'static str| move |k: &str| (k == PROGRESS_INTERVAL_VAR).then(|| v.to_owned());
        assert_eq!(
            progress_interval(&|_| None),
            Ok(Some(DEFAULT_PROGRESS_INTERVAL))
        );
        assert_eq!(progress_interval(&with("0")), Ok(None));
        assert_eq!(
            progress_interval(&with("0.25")),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(
            progress_interval(&with("")),
            Ok(Some(DEFAULT_PROGRESS_INTERVAL))
        );
        let e = progress_interval(&with("soon")).unwrap_err();
        assert!(e.to_string().contains("EXPORTER_PROGRESS_INTERVAL"), "{e}");
        assert!(progress_interval(&with("-1")).is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("800G"), Ok(800 << 30));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
