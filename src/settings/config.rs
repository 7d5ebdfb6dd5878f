//! The config file (`exporter.toml`): TOML text plus an environment lookup in, a validated
//! [`Config`] out. Pure: the caller reads the file and passes a snapshot of the environment.
//!
//! `${VAR}` in any value is replaced by the environment variable `VAR`; inside a URL the value
//! is percent-encoded so that a password like `p@ss/word` stays a password. `$${` is a literal
//! `${`.

use std::collections::HashSet;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;

use super::values::{parse_size, parse_url, validate_name};

/// The config file could not be read (the caller reads it; see [`super::ConfigSource`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot read config file {name}")]
pub struct ConfigReadError {
    /// The file as named.
    pub name: String,
    /// Whether the command needs the databases of the file (then a hint says how to give one).
    pub needs_databases: bool,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}
use super::{SettingsError, UrlTarget};
use crate::storage::s3::{self, Checksums, Sse};

/// The config file, as parsed (before `${VAR}` substitution).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    storage: Option<StorageSection>,
    platform: Option<PlatformSection>,
    #[serde(default)]
    databases: Vec<DatabaseSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    to: Option<toml::Spanned<String>>,
    endpoint: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    sse: Option<String>,
    sse_kms_key_id: Option<String>,
    storage_class: Option<String>,
    checksums: Option<String>,
    part_size: Option<toml::Value>,
    upload_concurrency: Option<i64>,
}

/// The `[storage]` settings besides `to` (they apply to `s3://` destinations only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageOptions {
    /// `endpoint`: URL of an S3-compatible store.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `path_style`.
    pub path_style: Option<bool>,
    /// `sse` / `sse_kms_key_id`, validated.
    pub sse: Option<Sse>,
    /// `storage_class`.
    pub storage_class: Option<String>,
    /// `checksums`.
    pub checksums: Option<Checksums>,
    /// `part_size` in bytes.
    pub part_size: Option<u64>,
    /// `upload_concurrency`.
    pub upload_concurrency: Option<usize>,
}

/// `[platform]`: where `dump --all`, `list` and `teardown` take the inventory from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformSection {
    kind: toml::Spanned<String>,
    environment: Option<toml::Spanned<String>>,
}

/// `[platform]` of a config file, validated (`${VAR}` substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformConfig {
    /// `kind`: the platform.
    pub kind: PlatformKind,
    /// `environment`: the environment's handle, if given (`--environment` overrides it).
    pub environment: Option<String>,
}

/// A hosting platform `exporter` knows (design.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// Aptible Deploy (`adapters/aptible`).
    Aptible,
}

impl PlatformKind {
    /// The name used in config files and manifests: `aptible`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aptible => "aptible",
        }
    }

    /// The platform named `text` (case-insensitive), or `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        text.eq_ignore_ascii_case("aptible")
            .then_some(Self::Aptible)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    name: toml::Spanned<String>,
    url: toml::Spanned<String>,
}

/// A parsed, substituted and validated config file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[storage] to`, if given.
    pub to: Option<String>,
    /// `[[databases]]`, validated.
    pub databases: Vec<UrlTarget>,
    /// The other `[storage]` keys.
    pub storage: StorageOptions,
    /// `[platform]`, if given.
    pub platform: Option<PlatformConfig>,
}

/// Characters percent-encoded when a `${VAR}` value is substituted into a URL: everything
/// that could end or restructure the userinfo, host or path.
const URL_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'=')
    .add(b'+');

/// Parse a config file's text.
///
/// `origin` names the file in messages; `env` looks up environment variables.
///
/// # Errors
///
/// [`SettingsError`] naming the line or key: TOML syntax, unknown keys, unset variables,
/// invalid or unsupported URLs, invalid or duplicate names.
pub fn parse_config(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, SettingsError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let storage = storage_options(raw.storage.as_ref(), origin, env)?;
    let platform = platform_config(raw.platform.as_ref(), text, origin, env)?;

    let to = match raw.storage.and_then(|s| s.to) {
        Some(to) => {
            let at = format!(
                "{origin}, line {}, key storage.to",
                line_of(text, to.span().start)
            );
            let value = substitute(to.get_ref(), false, env).map_err(|e| located(&at, &e))?;
            if value.trim().is_empty() {
                return Err(SettingsError::new(format!("{at}: must not be empty")));
            }
            Some(value)
        }
        None => None,
    };

    let mut databases = Vec::with_capacity(raw.databases.len());
    let mut seen = HashSet::new();
    for (i, db) in raw.databases.iter().enumerate() {
        let name_at = format!(
            "{origin}, line {}, key databases[{i}].name",
            line_of(text, db.name.span().start)
        );
        let name = substitute(db.name.get_ref(), false, env).map_err(|e| located(&name_at, &e))?;
        validate_name(&name).map_err(|e| SettingsError::new(format!("{name_at}: {e}")))?;
        // Compared without case: the name becomes a file name, and `A.sql.zst` and
        // `a.sql.zst` are one file on a case-insensitive file system (macOS, Windows).
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(
                SettingsError::new(format!("{name_at}: duplicate database name {name:?}"))
                    .hint("each database needs its own name, also ignoring case: it becomes the archive file name"),
            );
        }
        let url_at = format!(
            "{origin}, line {}, key databases[{i}].url",
            line_of(text, db.url.span().start)
        );
        let url_text = substitute(db.url.get_ref(), true, env).map_err(|e| located(&url_at, &e))?;
        let (url, engine) = parse_url(&url_text).map_err(|e| SettingsError {
            message: format!("{url_at}: {}", e.message),
            hint: e.hint,
        })?;
        databases.push(UrlTarget { name, url, engine });
    }
    Ok(Config {
        to,
        databases,
        storage,
        platform,
    })
}

/// Validate `[platform]` (`${VAR}` substituted in each string).
fn platform_config(
    section: Option<&PlatformSection>,
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PlatformConfig>, SettingsError> {
    let Some(p) = section else {
        return Ok(None);
    };
    let at = |key: &str, span: std::ops::Range<usize>| {
        format!(
            "{origin}, line {}, key platform.{key}",
            line_of(text, span.start)
        )
    };
    let kind_at = at("kind", p.kind.span());
    let kind_text = substitute(p.kind.get_ref(), false, env).map_err(|e| located(&kind_at, &e))?;
    let kind = PlatformKind::parse(&kind_text).ok_or_else(|| {
        SettingsError::new(format!("{kind_at}: unknown platform {kind_text:?}"))
            .hint("supported platforms: aptible")
    })?;
    let environment = match &p.environment {
        None => None,
        Some(e) => {
            let e_at = at("environment", e.span());
            let value = substitute(e.get_ref(), false, env).map_err(|err| located(&e_at, &err))?;
            if value.trim().is_empty() {
                return Err(SettingsError::new(format!("{e_at}: must not be empty")));
            }
            Some(value)
        }
    };
    Ok(Some(PlatformConfig { kind, environment }))
}

/// Validate the S3 keys of `[storage]` (`${VAR}` substituted in each string).
fn storage_options(
    section: Option<&StorageSection>,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StorageOptions, SettingsError> {
    let Some(s) = section else {
        return Ok(StorageOptions::default());
    };
    let text = |key: &str, v: &Option<String>| -> Result<Option<String>, SettingsError> {
        v.as_deref()
            .map(|v| {
                substitute(v, false, env)
                    .map_err(|e| located(&format!("{origin}, key storage.{key}"), &e))
            })
            .transpose()
    };
    let bad =
        |key: &str, msg: String| SettingsError::new(format!("{origin}, key storage.{key}: {msg}"));
    let sse = match (
        text("sse", &s.sse)?,
        text("sse_kms_key_id", &s.sse_kms_key_id)?,
    ) {
        (None, None) => None,
        (Some(mode), key) => Some(Sse::parse(&mode, key).map_err(|m| bad("sse", m))?),
        (None, Some(key)) => Some(Sse::Kms(Some(key))),
    };
    let checksums = text("checksums", &s.checksums)?
        .map(|c| Checksums::parse(&c).map_err(|m| bad("checksums", m)))
        .transpose()?;
    let part_size = match &s.part_size {
        None => None,
        Some(toml::Value::Integer(n)) => {
            Some(u64::try_from(*n).map_err(|_| bad("part_size", format!("{n} is negative")))?)
        }
        Some(toml::Value::String(t)) => Some(parse_size(t).map_err(|m| bad("part_size", m))?),
        Some(other) => {
            return Err(bad(
                "part_size",
                format!("expected a size like \"16MiB\", found {}", other.type_str()),
            ));
        }
    };
    if let Some(p) = part_size {
        s3::check_part_size(p).map_err(|m| bad("part_size", m))?;
    }
    let upload_concurrency = match s.upload_concurrency {
        None => None,
        Some(n) if (1..=64).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(bad(
                "upload_concurrency",
                format!("{n} is out of range 1..=64"),
            ));
        }
    };
    Ok(StorageOptions {
        endpoint: text("endpoint", &s.endpoint)?,
        region: text("region", &s.region)?,
        path_style: s.path_style,
        sse,
        storage_class: text("storage_class", &s.storage_class)?,
        checksums,
        part_size,
        upload_concurrency,
    })
}

/// Read only `[storage]` of a config file, for commands that need no database (`verify`,
/// `uploads`): the databases' `${VAR}` references are not resolved, so their credentials need
/// not be set. Returns `to` and the other storage keys.
///
/// # Errors
///
/// [`SettingsError`] for TOML syntax, unknown keys, or an unset variable or invalid value in
/// `[storage]`.
pub fn parse_storage(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<String>, StorageOptions), SettingsError> {
    let raw: ConfigFile = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let options = storage_options(raw.storage.as_ref(), origin, env)?;
    let to = raw
        .storage
        .and_then(|s| s.to)
        .map(|to| {
            let at = format!(
                "{origin}, line {}, key storage.to",
                line_of(text, to.span().start)
            );
            substitute(to.get_ref(), false, env).map_err(|e| located(&at, &e))
        })
        .transpose()?;
    Ok((to, options))
}

fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> SettingsError {
    let line = e.span().map(|s| line_of(text, s.start));
    let msg = e.message().trim_end().to_owned();
    let err = match line {
        Some(line) => SettingsError::new(format!("{origin}, line {line}: {msg}")),
        None => SettingsError::new(format!("{origin}: {msg}")),
    };
    if msg.starts_with("unknown field") {
        err.hint("README, section \"Config reference\", lists every key")
    } else {
        err
    }
}

/// Replace `${VAR}` references. With `in_url`, values are percent-encoded.
fn substitute(
    value: &str,
    in_url: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated ${ in value".to_owned())?;
            let var = &body[..end];
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable reference ${{{var}}}"));
            }
            let val = env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
            if in_url {
                out.extend(utf8_percent_encode(&val, URL_VALUE));
            } else {
                out.push_str(&val);
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A substitution error at a config location, with a hint for unset variables.
fn located(at: &str, error: &str) -> SettingsError {
    let hint = error
        .strip_prefix("environment variable ")
        .and_then(|rest| rest.strip_suffix(" is not set"))
        .map(|var| {
            format!(
                "set it before running, e.g. `export {var}=...`, or write the value in the file"
            )
        });
    SettingsError {
        message: format!("{at}: {error}"),
        hint,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::EngineKind;
    use crate::settings::{Destination, resolve_destination};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_a_full_config() {
        let text = "[storage]\nto = \"./out\"\n\n[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres@127.0.0.1:5432/billing\"\n";
        let c = parse_config(text, "exporter.toml", &no_env).unwrap();
        assert_eq!(c.to.as_deref(), Some("./out"));
        assert_eq!(c.databases.len(), 1);
        assert_eq!(c.databases[0].name, "billing");
        assert_eq!(c.databases[0].engine, EngineKind::Postgres);
    }

    #[test]
    fn platform_section() {
        let env = |k: &str| (k == "ENV_HANDLE").then(|| "prod".to_owned());
        let text = "[platform]\nkind = \"aptible\"\nenvironment = \"${ENV_HANDLE}\"\n";
        let c = parse_config(text, "exporter.toml", &env).unwrap();
        assert_eq!(
            c.platform,
            Some(PlatformConfig {
                kind: PlatformKind::Aptible,
                environment: Some("prod".into())
            })
        );
        assert!(c.databases.is_empty());
        let e =
            parse_config("[platform]\nkind = \"heroku\"\n", "exporter.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exporter.toml, line 2, key platform.kind: unknown platform \"heroku\""
        );
        let e = parse_config(
            "[platform]\nkind = \"aptible\"\nenviron = \"x\"\n",
            "exporter.toml",
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("environ"), "{e}");
    }

    #[test]
    fn unknown_key_names_its_line() {
        let text = "[storage]\nto = \"x\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://h/a\"\npasword = \"x\"\n";
        let e = parse_config(text, "exporter.toml", &no_env).unwrap_err();
        assert!(e.to_string().starts_with("exporter.toml, line 6:"), "{e}");
        assert!(e.to_string().contains("pasword"), "{e}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://h/a\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://h/b\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml, line 5, key databases[1].name: duplicate database name \"a\""
        );
        let text = text.replacen("name = \"a\"", "name = \"A\"", 1);
        let e = parse_config(&text, "c.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml, line 5, key databases[1].name: duplicate database name \"a\""
        );
    }

    #[test]
    fn unset_variable_names_key_and_line() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:${NOPE_PW}@h/a\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml, line 3, key databases[0].url: environment variable NOPE_PW is not set"
        );
        assert_eq!(
            e.hint_text(),
            Some(
                "set it before running, e.g. `export NOPE_PW=...`, or write the value in the file"
            )
        );
    }

    #[test]
    fn variables_are_percent_encoded_in_urls() {
        let env = |k: &str| (k == "PW").then(|| "p@ss/w:rd".to_owned());
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:${PW}@h:5432/a\"\n";
        let c = parse_config(text, "c.toml", &env).unwrap();
        assert_eq!(c.databases[0].url.password().as_deref(), Some("p@ss/w:rd"));
        assert_eq!(c.databases[0].url.host(), "h");
        assert_eq!(c.databases[0].url.to_string(), "postgres://u:****@h:5432/a");
    }

    #[test]
    fn literal_dollar_brace_escape() {
        assert_eq!(substitute("a$${B}c$d", false, &no_env).unwrap(), "a${B}c$d");
    }

    #[test]
    fn bad_url_does_not_echo_password() {
        let text = "[[databases]]\nname = \"a\"\nurl = \"postgres://u:hunter2@\"\n";
        let e = parse_config(text, "c.toml", &no_env).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("databases[0].url"), "{e}");
    }

    #[test]
    fn s3_destinations_take_the_storage_keys() {
        let text = "[storage]\nto = \"s3://acme-x/team/runs/\"\nendpoint = \"http://127.0.0.1:9000\"\nsse = \"aws:kms\"\nsse_kms_key_id = \"k1\"\nchecksums = \"when_supported\"\npart_size = \"16MiB\"\nupload_concurrency = 2\n";
        let (to, options) = parse_storage(text, "c.toml", &no_env).unwrap();
        let Destination::S3(c) = resolve_destination(&to.unwrap(), &options).unwrap() else {
            panic!("not an S3 destination");
        };
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str()),
            ("acme-x", "team/runs")
        );
        assert_eq!(c.url(), "s3://acme-x/team/runs");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.sse, Some(Sse::Kms(Some("k1".into()))));
        assert_eq!(c.checksums, Checksums::WhenSupported);
        assert_eq!(c.part_size, Some(16 << 20));
        assert_eq!(c.upload_concurrency, 2);
        let plain = resolve_destination("s3://bucket", &StorageOptions::default()).unwrap();
        let Destination::S3(c) = plain else { panic!() };
        assert_eq!(
            c.checksums,
            Checksums::WhenRequired,
            "the default works everywhere"
        );
        assert_eq!(c.upload_concurrency, s3::DEFAULT_UPLOAD_CONCURRENCY);
        assert!(resolve_destination("s3://Bad_Bucket/x", &StorageOptions::default()).is_err());
        assert!(resolve_destination("s3://bucket/../x", &StorageOptions::default()).is_err());
        assert!(resolve_destination("gs://bucket", &StorageOptions::default()).is_err());
        for (key, value) in [
            ("part_size", "\"1MiB\""),
            ("checksums", "\"always\""),
            ("upload_concurrency", "0"),
            ("sse", "\"DES\""),
        ] {
            let text = format!("[storage]\n{key} = {value}\n");
            let e = parse_storage(&text, "c.toml", &no_env).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("c.toml, key storage.{key}: ")),
                "{e}"
            );
        }
    }
}
