//! `[platform]` plus `--environment` plus the platform's environment variables, resolved into
//! [`PlatformSettings`] (pure: the caller passes an environment lookup).
//!
//! For Aptible the variables are those the official CLI honours (aptible-api.md §1.5):
//! `APTIBLE_API_ROOT_URL`, `APTIBLE_AUTH_ROOT_URL`, `APTIBLE_ACCESS_TOKEN`,
//! `APTIBLE_CONFIG_PATH` (else `$HOME/.aptible`). Settings only collect them; the platform
//! service ([`crate::platform`]) validates the roots and reads the token file.

use std::fmt;

use super::config::{PlatformConfig, PlatformKind};
use super::{Env, SettingsError};

/// The environment variables a platform client reads, per platform.
const APTIBLE_VARS: &[&str] = &[
    "APTIBLE_API_ROOT_URL",
    "APTIBLE_AUTH_ROOT_URL",
    "APTIBLE_ACCESS_TOKEN",
    "APTIBLE_CONFIG_PATH",
    "HOME",
];

/// Where the platform is and which environment to work on.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformSettings {
    /// The platform.
    pub kind: PlatformKind,
    /// The environment's handle (`--environment`, else `[platform] environment`).
    pub environment: String,
    /// The platform's environment variables as found (name, value); may hold a token, so
    /// `Debug` shows names only.
    vars: Vec<(String, String)>,
}

impl PlatformSettings {
    /// A lookup over the platform's environment variables as they were when settings were
    /// resolved (what the platform client reads instead of the process environment).
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| {
            self.vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }
}

impl fmt::Debug for PlatformSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformSettings")
            .field("kind", &self.kind)
            .field("environment", &self.environment)
            .field(
                "vars",
                &self
                    .vars
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
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
    let names = match kind {
        PlatformKind::Aptible => APTIBLE_VARS,
    };
    let vars = names
        .iter()
        .filter_map(|name| env(name).map(|v| ((*name).to_owned(), v)))
        .collect();
    Ok(Some(PlatformSettings {
        kind,
        environment,
        vars,
    }))
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
