//! A database URL that never prints its secrets (after uv's `DisplaySafeUrl`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use url::Url;

/// Query parameters whose values are known not to be secret and are shown as they are. Every
/// other parameter's value is redacted: an unknown parameter may well be a password
/// (`?pwd=…`, `?auth=…`), and redacting too much costs nothing.
const SHOWN_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "ssl_mode",
    "connect_timeout",
    "application_name",
    // TLS: modes, file paths and names (a key's *path* is no secret; `key`, Redis's client
    // key path, stays redacted because the name is too generic to be sure).
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslsni",
    "ssl-ca",
    "ssl_ca",
    "ssl-cert",
    "ssl_cert",
    "ssl-key",
    "ssl_key",
    "cacert",
    "cert",
    "sni",
    "insecure",
];

/// A parsed database URL (`postgres://user:pass@host:5432/db?…`) whose `Display` and `Debug`
/// replace the password and the value of every query parameter not known to be harmless
/// (`sslmode`, `connect_timeout`, …) with `****`.
///
/// Wrap a URL in this type the moment it is parsed; get the secret out only through
/// [`DatabaseUrl::password`] or [`DatabaseUrl::expose`], at the point of connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Url);

/// Error parsing a [`DatabaseUrl`]. Its message never contains the input, which may hold a
/// password; [`ParseDatabaseUrlError::shown`] is the input with everything between `://` and
/// the last `@` replaced by `****` ([`redact_unparsed`]).
#[derive(Debug, thiserror::Error)]
pub enum ParseDatabaseUrlError {
    /// Not a URL at all.
    #[error("not a valid URL ({source})")]
    Invalid {
        /// The input, redacted as [`redact_unparsed`] does.
        shown: String,
        /// Why the URL parser refused it.
        source: url::ParseError,
    },
    /// A URL without a host.
    #[error("the URL has no host")]
    NoHost {
        /// The input, redacted as [`redact_unparsed`] does.
        shown: String,
    },
    /// The text parses as a URL, but not as the user meant it: it has a fragment (`#…`) or an
    /// `@` after the host, which database URLs never have. A password with an unencoded `#`,
    /// `/`, `?` or `@` does this (`mysql://u:p@ss/w#1@host/db` would otherwise connect to the
    /// host `ss` and name the archive after `w`).
    #[error("the user name or password seems to hold a character that must be percent-encoded")]
    Ambiguous {
        /// The input, redacted as [`redact_unparsed`] does.
        shown: String,
    },
}

impl ParseDatabaseUrlError {
    /// The input as it may be shown: everything between `://` and the last `@` replaced by
    /// `****` ([`redact_unparsed`]).
    #[must_use]
    pub fn shown(&self) -> &str {
        match self {
            Self::Invalid { shown, .. } | Self::NoHost { shown } | Self::Ambiguous { shown } => {
                shown
            }
        }
    }
}

/// A URL that did not parse (or parsed into something else than meant), as it may be shown:
/// everything between `://` and the **last** `@` of the text becomes `****`, and the query's
/// values too. The last `@`, because a password with an unencoded `@` puts several in the
/// text and the host follows the last one (`mysql://u:p@ss/w:rd%#1@host/db` is shown as
/// `mysql://****@host/db`). Text without `://` is not shown at all (`****`): there is no way
/// to tell what in it is secret.
#[must_use]
pub fn redact_unparsed(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return "****".to_owned();
    };
    let rest = &text[start..];
    let (head, tail) = match rest.rfind('@') {
        Some(at) => ("****@", &rest[at + 1..]),
        None => ("", rest),
    };
    let tail = match tail.split_once('?') {
        Some((before, _)) => format!("{before}?****"),
        None => tail.to_owned(),
    };
    format!("{}{head}{tail}", &text[..start])
}

impl DatabaseUrl {
    /// Parse a URL.
    ///
    /// # Errors
    ///
    /// [`ParseDatabaseUrlError`] if the text is not a URL with a host, or one with a fragment
    /// or an `@` after the host (an unencoded special character in the password). The error
    /// text does not repeat the input; its [`ParseDatabaseUrlError::shown`] is redacted.
    pub fn parse(text: &str) -> Result<Self, ParseDatabaseUrlError> {
        let shown = || redact_unparsed(text);
        let url = Url::parse(text).map_err(|source| ParseDatabaseUrlError::Invalid {
            shown: shown(),
            source,
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ParseDatabaseUrlError::NoHost { shown: shown() });
        }
        // Database URLs have no fragment, and the userinfo ends at the host: an `@` later on
        // means the userinfo was cut short by an unencoded `/`, `?` or `#` (RFC 3986 §3.2).
        let after_host = &url[url::Position::AfterHost..];
        if url.fragment().is_some() || after_host.contains('@') {
            return Err(ParseDatabaseUrlError::Ambiguous { shown: shown() });
        }
        Ok(Self(url))
    }

    /// The scheme, lowercase: `postgres`, `postgresql`, `mysql`, `redis`, …
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.0.scheme()
    }

    /// The host (without brackets for IPv6).
    #[must_use]
    pub fn host(&self) -> &str {
        let h = self.0.host_str().unwrap_or_default();
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
    }

    /// The explicit port, if any.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.0.port()
    }

    /// The user name, percent-decoded; `None` if empty.
    #[must_use]
    pub fn username(&self) -> Option<String> {
        let u = self.0.username();
        (!u.is_empty()).then(|| decode(u))
    }

    /// The password, percent-decoded. The only way to get it out besides [`Self::expose`].
    #[must_use]
    pub fn password(&self) -> Option<String> {
        self.0.password().map(decode)
    }

    /// The first path segment, percent-decoded (the database name for SQL engines, the logical
    /// database number for Redis); `None` if the path is empty.
    #[must_use]
    pub fn database(&self) -> Option<String> {
        let path = self.0.path().trim_start_matches('/');
        (!path.is_empty()).then(|| decode(path))
    }

    /// Query parameters, percent-decoded.
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.0.query_pairs()
    }

    /// The full URL, secrets included. Use only to connect.
    #[must_use]
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// The URL with the password and every query value not known to be harmless replaced by
    /// `****`.
    #[must_use]
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("****"));
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let secret = !SHOWN_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                    (
                        k.into_owned(),
                        if secret {
                            "****".to_owned()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }
}

fn decode(s: &str) -> String {
    percent_decode(s)
}

fn percent_decode(s: &str) -> String {
    // Minimal RFC 3986 percent-decoding; invalid escapes are kept verbatim.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FromStr for DatabaseUrl {
    type Err = ParseDatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_displayed() {
        let u = DatabaseUrl::parse(
            "postgres://app:s3cr%40t@db.example:5432/main?sslmode=require&password=x",
        )
        .unwrap();
        let shown = u.to_string();
        assert_eq!(
            shown,
            "postgres://app:****@db.example:5432/main?sslmode=require&password=****"
        );
        assert!(!format!("{u:?}").contains("s3cr"));
        assert_eq!(u.password().as_deref(), Some("s3cr@t"));
        assert_eq!(u.username().as_deref(), Some("app"));
        assert_eq!(u.database().as_deref(), Some("main"));
        assert_eq!(u.port(), Some(5432));
        assert_eq!(u.host(), "db.example");
    }

    #[test]
    fn unknown_query_values_are_redacted_known_ones_shown() {
        let u =
            DatabaseUrl::parse("redis://h:6379/3?auth=hunter3&connect_timeout=5&pwd=x").unwrap();
        assert_eq!(
            u.to_string(),
            "redis://h:6379/3?auth=****&connect_timeout=5&pwd=****"
        );
    }

    #[test]
    fn no_password_no_stars() {
        let u = DatabaseUrl::parse("postgres://postgres@127.0.0.1/billing").unwrap();
        assert_eq!(u.to_string(), "postgres://postgres@127.0.0.1/billing");
        assert_eq!(u.password(), None);
    }

    #[test]
    fn parse_errors_do_not_echo_input() {
        let err = DatabaseUrl::parse("postgres://u:hunter2@").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let err = DatabaseUrl::parse("hunter2 is not a url").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    /// Issue 16: a password that is not percent-encoded was partly printed
    /// (`****@ss/w:rd%#1@host`) and the archive named after a fragment of it.
    #[test]
    fn unencoded_password_is_refused_and_redacted_to_the_last_at() {
        let err = DatabaseUrl::parse("mysql://user:p@ss/w:rd%#1@host/db").unwrap_err();
        assert!(
            matches!(err, ParseDatabaseUrlError::Ambiguous { .. }),
            "{err:?}"
        );
        assert_eq!(err.shown(), "mysql://****@host/db");
        // `#` alone cuts the authority: "invalid port number" before.
        let err = DatabaseUrl::parse("mysql://user:se#cret@host/db").unwrap_err();
        assert!(
            matches!(err, ParseDatabaseUrlError::Invalid { .. }),
            "{err:?}"
        );
        assert_eq!(err.shown(), "mysql://****@host/db");
        assert!(!format!("{err} {err:?}").contains("se#cret"));
        // A slash in the password: parses with host `user` otherwise.
        let err = DatabaseUrl::parse("postgres://u:a/b@host/db?sslmode=require").unwrap_err();
        assert_eq!(err.shown(), "postgres://****@host/db?****");
        assert_eq!(redact_unparsed("no scheme at all"), "****");
        // Percent-encoded, the same password is fine.
        let u = DatabaseUrl::parse("mysql://user:p%40ss%2Fw%3Ard%25%231@host/db").unwrap();
        assert_eq!(u.password().as_deref(), Some("p@ss/w:rd%#1"));
        assert_eq!(u.host(), "host");
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b%2F%zz%4"), "a b/%zz%4");
        let u = DatabaseUrl::parse("postgres://h/My%20DB").unwrap();
        assert_eq!(u.database().as_deref(), Some("My DB"));
    }
}
