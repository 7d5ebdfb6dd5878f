//! Where the platform is and who we are: API roots, the access token and the CLI's token file
//! (spec §1.1, §1.4, §1.5).
//!
//! Nothing here reads the process environment: callers pass a lookup function (`|name|
//! std::env::var(name).ok()` in the binary, a map in tests), so resolution stays pure and
//! testable.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// The public Deploy API root (spec §1.1).
pub const DEFAULT_API_ROOT: &str = "https://api.aptible.com";
/// The public Auth API root (spec §1.1).
pub const DEFAULT_AUTH_ROOT: &str = "https://auth.aptible.com";

/// Environment variable overriding the Deploy API root.
pub const ENV_API_ROOT: &str = "APTIBLE_API_ROOT_URL";
/// Environment variable overriding the Auth API root (also the key into `tokens.json`).
pub const ENV_AUTH_ROOT: &str = "APTIBLE_AUTH_ROOT_URL";
/// Environment variable holding a bearer token; it wins over the token file.
pub const ENV_ACCESS_TOKEN: &str = "APTIBLE_ACCESS_TOKEN";
/// Environment variable naming the configuration directory (default `~/.aptible`).
pub const ENV_CONFIG_PATH: &str = "APTIBLE_CONFIG_PATH";

/// The two roots of the platform: the Deploy API and the Auth API. They are distinct roots
/// (spec §1.1); the auth root, spelled exactly as configured, keys the token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    api: String,
    auth: String,
}

impl Roots {
    /// Roots from two URLs (`https://api.aptible.com`, `https://auth.aptible.com`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when either is not an absolute `http(s)` URL.
    pub fn new(api: &str, auth: &str) -> Result<Self> {
        for (name, value) in [(ENV_API_ROOT, api), (ENV_AUTH_ROOT, auth)] {
            let ok = Url::parse(value)
                .ok()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(Error::new(
                    ErrorKind::Config,
                    name,
                    format!("not an http(s) URL: {value}"),
                ));
            }
        }
        Ok(Self {
            api: api.to_owned(),
            auth: auth.to_owned(),
        })
    }

    /// Roots from `APTIBLE_API_ROOT_URL` and `APTIBLE_AUTH_ROOT_URL`, else the public defaults.
    ///
    /// # Errors
    ///
    /// As [`Roots::new`].
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let api = non_empty(lookup(ENV_API_ROOT)).unwrap_or_else(|| DEFAULT_API_ROOT.to_owned());
        let auth = non_empty(lookup(ENV_AUTH_ROOT)).unwrap_or_else(|| DEFAULT_AUTH_ROOT.to_owned());
        Self::new(&api, &auth)
    }

    /// The Deploy API root as configured.
    #[must_use]
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The Auth API root as configured: the key of this platform's token in `tokens.json`.
    #[must_use]
    pub fn auth(&self) -> &str {
        &self.auth
    }

    /// `path` (starting with `/`) under the Deploy API root.
    #[must_use]
    pub fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api.trim_end_matches('/'))
    }

    /// `path` (starting with `/`) under the Auth API root.
    #[must_use]
    pub fn auth_url(&self, path: &str) -> String {
        format!("{}{path}", self.auth.trim_end_matches('/'))
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// The CLI's configuration directory: `$APTIBLE_CONFIG_PATH`, else `$HOME/.aptible`
/// (spec §1.4). `None` when neither is set.
#[must_use]
pub fn config_dir(lookup: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    non_empty(lookup(ENV_CONFIG_PATH))
        .map(PathBuf::from)
        .or_else(|| non_empty(lookup("HOME")).map(|h| Path::new(&h).join(".aptible")))
}

/// The token file inside a configuration directory: `<dir>/tokens.json`.
#[must_use]
pub fn tokens_path(config_dir: &Path) -> PathBuf {
    config_dir.join("tokens.json")
}

/// Where a token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `APTIBLE_ACCESS_TOKEN`.
    Env,
    /// The token file, under the auth root's key.
    File(PathBuf),
}

/// A token and where it was found.
#[derive(Debug, Clone)]
pub struct ResolvedToken {
    /// The bearer token (redacted in `Debug`).
    pub token: SecretString,
    /// Its origin, for messages ("from APTIBLE_ACCESS_TOKEN", "from ~/.aptible/tokens.json").
    pub source: TokenSource,
}

/// Find the access token as the CLI does (spec §1.4): `APTIBLE_ACCESS_TOKEN`, else
/// `tokens.json[<auth root>]` in the configuration directory.
///
/// # Errors
///
/// [`ErrorKind::Auth`] (hint: run exporter login) when there is no token;
/// [`ErrorKind::Io`] / [`ErrorKind::Config`] when the token file cannot be read or parsed.
pub fn resolve_token(
    lookup: &dyn Fn(&str) -> Option<String>,
    roots: &Roots,
) -> Result<ResolvedToken> {
    if let Some(token) = non_empty(lookup(ENV_ACCESS_TOKEN)) {
        return Ok(ResolvedToken {
            token: SecretString::from(token),
            source: TokenSource::Env,
        });
    }
    if let Some(dir) = config_dir(lookup) {
        let path = tokens_path(&dir);
        if let Some(token) = read_token(&path, roots.auth())? {
            return Ok(ResolvedToken {
                token,
                source: TokenSource::File(path),
            });
        }
    }
    Err(Error::new(
        ErrorKind::Auth,
        "",
        format!(
            "Could not read token: run exporter login or set {ENV_ACCESS_TOKEN} (no token for {} in the token file)",
            roots.auth()
        ),
    ))
}

/// Read the token stored for `auth_root` in a `tokens.json` (an object mapping auth root URL
/// to token string). A missing file or key is `Ok(None)`. Like the CLI, re-applies mode 0600
/// to the file on read (best effort).
///
/// # Errors
///
/// [`ErrorKind::Io`] when the file exists but cannot be read; [`ErrorKind::Config`] when it is
/// not a JSON object. The error never contains the file's content.
pub fn read_token(path: &Path, auth_root: &str) -> Result<Option<SecretString>> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                Error::new(ErrorKind::Io, path.display().to_string(), "cannot read").with_source(e),
            );
        }
    };
    set_private(path);
    let map = parse_token_map(path, &text)?;
    Ok(map
        .get(auth_root)
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned())))
}

/// Store `token` under `auth_root` in `tokens.json`, keeping every other key (spec §1.4): the
/// directory is created if missing, the file is written with mode 0600 and a trailing newline,
/// through a temporary file renamed into place.
///
/// # Errors
///
/// [`ErrorKind::Io`] on any file-system failure; [`ErrorKind::Config`] when an existing file
/// is not a JSON object (it is left untouched rather than overwritten).
pub fn save_token(path: &Path, auth_root: &str, token: &SecretString) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, path.display().to_string(), "cannot write").with_source(e)
    };
    let mut map = match fs_err::read_to_string(path) {
        Ok(text) => parse_token_map(path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(io(e)),
    };
    map.insert(
        auth_root.to_owned(),
        serde_json::Value::String(token.expose_secret().to_owned()),
    );
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(io)?;
    let mut text = serde_json::to_string(&map).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            path.display().to_string(),
            "cannot encode",
        )
        .with_source(e)
    })?;
    text.push('\n');
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    set_private(path);
    Ok(())
}

fn parse_token_map(path: &Path, text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        // The parse error's text could quote the file (a token): keep only its position.
        Ok(_) => Err(Error::new(
            ErrorKind::Config,
            path.display().to_string(),
            "the token file is not a JSON object",
        )),
        Err(e) => Err(Error::new(
            ErrorKind::Config,
            path.display().to_string(),
            format!(
                "the token file is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )),
    }
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn set_private(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup<'a>(map: &'a HashMap<&'a str, String>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| map.get(k).cloned()
    }

    #[test]
    fn roots_default_and_override() {
        let env = HashMap::new();
        let r = Roots::from_lookup(&lookup(&env)).unwrap();
        assert_eq!(r.api(), DEFAULT_API_ROOT);
        assert_eq!(r.auth(), DEFAULT_AUTH_ROOT);
        assert_eq!(r.api_url("/accounts"), "https://api.aptible.com/accounts");
        let env = HashMap::from([
            (ENV_API_ROOT, "http://127.0.0.1:1/".to_owned()),
            (ENV_AUTH_ROOT, "http://127.0.0.1:2".to_owned()),
        ]);
        let r = Roots::from_lookup(&lookup(&env)).unwrap();
        assert_eq!(r.api_url("/accounts"), "http://127.0.0.1:1/accounts");
        assert_eq!(r.auth(), "http://127.0.0.1:2");
        let bad = HashMap::from([(ENV_API_ROOT, "ftp://x".to_owned())]);
        assert_eq!(
            Roots::from_lookup(&lookup(&bad)).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn config_dir_order() {
        let env = HashMap::from([("HOME", "/home/u".to_owned())]);
        assert_eq!(
            config_dir(&lookup(&env)),
            Some(PathBuf::from("/home/u/.aptible"))
        );
        let env = HashMap::from([
            ("HOME", "/home/u".to_owned()),
            (ENV_CONFIG_PATH, "/etc/apt".to_owned()),
        ]);
        assert_eq!(config_dir(&lookup(&env)), Some(PathBuf::from("/etc/apt")));
        assert_eq!(config_dir(&lookup(&HashMap::new())), None);
    }

    #[test]
    fn token_file_roundtrip_keeps_other_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("tokens.json");
        assert!(read_token(&path, "http://a").unwrap().is_none());
        save_token(&path, "http://a", &SecretString::from("tok-a".to_owned())).unwrap();
        fs_err::write(&path, "{\"http://b\": \"tok-b\", \"http://a\": \"old\"}").unwrap();
        save_token(&path, "http://a", &SecretString::from("tok-a2".to_owned())).unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["http://b"], "tok-b");
        assert_eq!(v["http://a"], "tok-a2");
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_token(&path, "http://a")
                .unwrap()
                .unwrap()
                .expose_secret(),
            "tok-a2"
        );
        assert!(read_token(&path, "http://c").unwrap().is_none());
    }

    #[test]
    fn token_resolution_order_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots::new("http://api", "http://auth").unwrap();
        save_token(
            &tokens_path(dir.path()),
            "http://auth",
            &SecretString::from("from-file".to_owned()),
        )
        .unwrap();
        let mut env = HashMap::from([(ENV_CONFIG_PATH, dir.path().display().to_string())]);
        let t = resolve_token(&lookup(&env), &roots).unwrap();
        assert_eq!(t.token.expose_secret(), "from-file");
        assert_eq!(t.source, TokenSource::File(tokens_path(dir.path())));
        env.insert(ENV_ACCESS_TOKEN, "from-env".to_owned());
        let t = resolve_token(&lookup(&env), &roots).unwrap();
        assert_eq!(t.token.expose_secret(), "from-env");
        assert_eq!(t.source, TokenSource::Env);
        let other = Roots::new("http://api", "http://other-auth").unwrap();
        env.remove(ENV_ACCESS_TOKEN);
        let e = resolve_token(&lookup(&env), &other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.hint(), Some("run exporter login"));
    }

    #[test]
    fn broken_token_file_is_not_echoed_or_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        fs_err::write(&path, "{\"http://a\": \"secret-token-xyz\"").unwrap();
        let e = read_token(&path, "http://a").unwrap_err();
        assert!(!e.to_string().contains("secret-token-xyz"), "{e}");
        let e = save_token(&path, "http://a", &SecretString::from("n".to_owned())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            fs_err::read_to_string(&path)
                .unwrap()
                .contains("secret-token-xyz")
        );
    }
}
