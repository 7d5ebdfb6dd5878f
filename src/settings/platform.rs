//! `[platform]` plus `--environment` plus the platform's environment variables, resolved into
//! [`PlatformSettings`] (pure: the caller passes an environment lookup).
//!
//! For Aptible the variables are those the official CLI honours (aptible-api.md §1.5):
//! `APTIBLE_API_ROOT_URL`, `APTIBLE_AUTH_ROOT_URL`, `APTIBLE_ACCESS_TOKEN`,
//! `APTIBLE_CONFIG_PATH` (else `$HOME/.aptible`). Settings only collect them; the platform
//! service ([`crate::platform`]) validates the roots and reads the token file.

use std::fmt;

use exporter_aptible::{Backup, Database};

use super::config::{PlatformConfig, PlatformKind};
use super::{Env, SettingsError};
use crate::archive::manifest::PlatformDatabase;
use crate::engines::EngineKind;

/// The environment variables a platform client reads, per platform.
const APTIBLE_VARS: &[&str] = &[
    "APTIBLE_API_ROOT_URL",
    "APTIBLE_AUTH_ROOT_URL",
    "APTIBLE_ACCESS_TOKEN",
    "APTIBLE_CONFIG_PATH",
    "HOME",
];

/// The platform's environment variables as they were when settings were resolved (name,
/// value): what the platform client reads instead of the process environment. They may hold
/// a token or a password, so `Debug` shows names only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PlatformVars(Vec<(String, String)>);

impl PlatformVars {
    /// The variables of `kind` found through `env`.
    #[must_use]
    pub fn from_env(kind: PlatformKind, env: Env<'_>) -> Self {
        let names = match kind {
            PlatformKind::Aptible => APTIBLE_VARS,
        };
        Self(
            names
                .iter()
                .filter_map(|name| env(name).map(|v| ((*name).to_owned(), v)))
                .collect(),
        )
    }

    /// A lookup over the variables.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| {
            self.0
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }
}

impl fmt::Debug for PlatformVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k.as_str()))
            .finish()
    }
}

/// Where the platform is and which environment to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSettings {
    /// The platform.
    pub kind: PlatformKind,
    /// The environment's handle (`--environment`, else `[platform] environment`).
    pub environment: String,
    /// The platform's environment variables as found.
    pub vars: PlatformVars,
}

impl PlatformSettings {
    /// A lookup over the platform's environment variables as they were when settings were
    /// resolved (what the platform client reads instead of the process environment).
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        self.vars.lookup()
    }
}

/// Resolve the platform: `--environment` (implies Aptible when the config has no
/// `[platform]`), else `[platform] environment`. `Ok(None)` when neither names a platform.
///
/// # Errors
///
/// [`SettingsError`] when `[platform]` names no environment and `--environment` is absent,
/// or the handle given is empty.
pub fn resolve_platform(
    config: Option<&PlatformConfig>,
    environment_flag: Option<&str>,
    env: Env<'_>,
) -> Result<Option<PlatformSettings>, SettingsError> {
    let kind = match (config, environment_flag) {
        (None, None) => return Ok(None),
        (Some(c), _) => c.kind,
        (None, Some(_)) => PlatformKind::Aptible,
    };
    let environment = match environment_flag.or(config.and_then(|c| c.environment.as_deref())) {
        Some(handle) if !handle.trim().is_empty() => handle.trim().to_owned(),
        Some(_) => return Err(SettingsError::new("--environment must not be empty")),
        None => {
            return Err(SettingsError::new(format!(
                "[platform] kind = \"{}\" names no environment",
                kind.as_str()
            ))
            .hint("add environment = \"<handle>\" to [platform], or pass --environment HANDLE"));
        }
    };
    Ok(Some(PlatformSettings {
        kind,
        environment,
        vars: PlatformVars::from_env(kind, env),
    }))
}

/// Which backup `--from-backup` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupChoice {
    /// `latest`: each database's newest backup.
    Latest,
    /// An id: that backup, for the database it belongs to (the others are read live).
    Id(u64),
}

impl BackupChoice {
    /// Parse `latest` or a backup id.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for anything else.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("latest") {
            return Ok(Self::Latest);
        }
        text.parse::<u64>().map(Self::Id).map_err(|_| {
            SettingsError::new(format!(
                "--from-backup {text:?}: give `latest` or a backup id (a number)"
            ))
            .hint("`exporter list` shows each database's backups")
        })
    }
}

/// What `dump --all` and `list` read from a platform environment, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformInventory {
    /// The platform and environment.
    pub settings: PlatformSettings,
    /// `--from-backup`: read databases from backups restored into new databases.
    pub from_backup: Option<BackupChoice>,
    /// `--include-orphaned-backups`: also the newest backup of each deleted database.
    pub include_orphaned_backups: bool,
    /// `--skip-unsupported`: record databases of other types as skipped instead of refusing.
    pub skip_unsupported: bool,
    /// `--keep-restored`: leave restored databases in place after their dump.
    pub keep_restored: bool,
    /// `--credential-type`: the credential each tunnel uses instead of the default one.
    pub credential_type: Option<String>,
}

/// How a platform database is read.
#[derive(Debug, Clone)]
pub enum PlatformRead {
    /// The database itself, through a tunnel.
    Live(Box<Database>),
    /// A backup, restored into a new database first, which is dumped through a tunnel.
    Backup(Box<Backup>),
}

/// One platform database to dump: its archive name, engine, how it is read, and its manifest
/// record as known before the dump (the endpoint step adds the restored database and the
/// credential type).
#[derive(Debug, Clone)]
pub struct PlatformTarget {
    /// The archive name (the database's handle).
    pub name: String,
    /// The engine for its type ([`EngineKind::for_platform_type`]).
    pub engine: EngineKind,
    /// How it is read.
    pub read: PlatformRead,
    /// What the manifest records about it.
    pub record: PlatformDatabase,
}

impl PartialEq for PlatformTarget {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.engine == other.engine && self.record == other.record
    }
}

impl Eq for PlatformTarget {}

impl PlatformTarget {
    /// `aptible://<environment>/<handle>`: how manifests and messages name the database
    /// before a tunnel gives it a connection URL.
    #[must_use]
    pub fn describe(&self) -> String {
        platform_label(&self.record)
    }
}

/// `aptible://<environment>/<handle>` for a platform record.
#[must_use]
pub fn platform_label(record: &PlatformDatabase) -> String {
    format!(
        "{}://{}/{}",
        record.platform, record.environment, record.handle
    )
}

/// A platform database deliberately not dumped (`--skip-unsupported`), recorded in the
/// manifest as `skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDatabase {
    /// The name of its manifest entry (the handle).
    pub name: String,
    /// Why it is not dumped.
    pub reason: String,
    /// What the manifest records about it.
    pub record: PlatformDatabase,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "APTIBLE_ACCESS_TOKEN" => Some("tok-secret".into()),
            "HOME" => Some("/home/u".into()),
            "PATH" => Some("/bin".into()),
            _ => None,
        }
    }

    #[test]
    fn flag_config_and_neither() {
        assert_eq!(resolve_platform(None, None, &env).unwrap(), None);
        let p = resolve_platform(None, Some("prod"), &env).unwrap().unwrap();
        assert_eq!(p.kind, PlatformKind::Aptible);
        assert_eq!(p.environment, "prod");
        assert_eq!(
            p.lookup()("APTIBLE_ACCESS_TOKEN").as_deref(),
            Some("tok-secret")
        );
        assert_eq!(
            p.lookup()("PATH"),
            None,
            "only the platform's variables are kept"
        );
        let debug = format!("{p:?}");
        assert!(!debug.contains("tok-secret"), "{debug}");
        let config = PlatformConfig {
            kind: PlatformKind::Aptible,
            environment: Some("staging".into()),
        };
        let p = resolve_platform(Some(&config), None, &env)
            .unwrap()
            .unwrap();
        assert_eq!(p.environment, "staging");
        let p = resolve_platform(Some(&config), Some("prod"), &env)
            .unwrap()
            .unwrap();
        assert_eq!(p.environment, "prod", "the flag wins");
    }

    #[test]
    fn a_platform_without_environment_is_an_error() {
        let config = PlatformConfig {
            kind: PlatformKind::Aptible,
            environment: None,
        };
        let e = resolve_platform(Some(&config), None, &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[platform] kind = \"aptible\" names no environment"
        );
        assert!(e.hint_text().unwrap().contains("--environment"));
        let e = resolve_platform(None, Some(" "), &env).unwrap_err();
        assert_eq!(e.to_string(), "--environment must not be empty");
    }
}
