//! The platform's session commands as services: `exporter login` ([`login`]: the password
//! grant with a one-time code when the account wants one, the token stored where the
//! platform's CLI keeps it) and `exporter tunnel` ([`open_tunnel`]: `db:tunnel` for a database
//! of any type, held by the command until Ctrl-C). Neither prints: the command layer supplies
//! the terminal ([`Prompt`]) and renders the results.

use std::path::PathBuf;

use exporter_aptible::config::{config_dir, tokens_path};
use exporter_aptible::{
    AuthClient, ClientOptions, Credentials, Database, ErrorKind, Roots, SecretString, Tunnel,
    TunnelOptions,
};

use crate::cleanup::{self, Cleanup};
use crate::settings::{LoginPlan, TunnelPlan};

/// Where `exporter login` asks the user for what the plan does not give.
pub trait Prompt {
    /// The account's email.
    ///
    /// # Errors
    ///
    /// When it cannot be asked (no terminal) or read.
    fn email(&mut self) -> std::io::Result<String>;
    /// The password (never echoed).
    ///
    /// # Errors
    ///
    /// As [`Prompt::email`].
    fn password(&mut self) -> std::io::Result<SecretString>;
    /// The one-time code of a two-factor account.
    ///
    /// # Errors
    ///
    /// As [`Prompt::email`].
    fn otp_token(&mut self) -> std::io::Result<SecretString>;
}

/// What `exporter login` did.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The account.
    pub email: String,
    /// The token file written (mode 0600, other platforms' tokens kept).
    pub path: PathBuf,
    /// When the token expires, as the auth API said.
    pub expires_at: Option<String>,
    /// Whether a one-time code was used.
    pub used_otp: bool,
}

/// Why `exporter login` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The platform refused or could not be reached.
    #[error(transparent)]
    Platform(#[from] exporter_aptible::Error),
    /// Something had to be asked and could not be.
    #[error("cannot read the {what}: {source}")]
    Prompt {
        /// `email`, `password` or `one-time code`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Neither `APTIBLE_CONFIG_PATH` nor `HOME` says where the token file goes.
    #[error("nowhere to store the token: neither APTIBLE_CONFIG_PATH nor HOME is set")]
    NoConfigDir,
}

/// Log in as `aptible login` does (aptible-api.md §1.2–§1.4): the password grant; on
/// `otp_token_required` once more with a one-time code (from the plan, else asked); the token
/// stored in `tokens.json` under the auth root, written 0600 with the other keys kept.
///
/// # Errors
///
/// [`LoginError`]: a refusal (wrong email, password or code: the platform's message), a
/// prompt that cannot be answered, nowhere to store the token.
pub async fn login(plan: LoginPlan, prompt: &mut dyn Prompt) -> Result<LoggedIn, LoginError> {
    let lookup = plan.vars.lookup();
    let roots = Roots::from_lookup(&lookup)?;
    let path = tokens_path(&config_dir(&lookup).ok_or(LoginError::NoConfigDir)?);
    let email = match plan.email {
        Some(e) => e,
        None => prompt.email().map_err(|source| LoginError::Prompt {
            what: "email",
            source,
        })?,
    };
    let password = match plan.password {
        Some(p) => p,
        None => prompt.password().map_err(|source| LoginError::Prompt {
            what: "password",
            source,
        })?,
    };
    let auth = AuthClient::new(roots.clone(), &ClientOptions::default())?;
    let mut credentials = Credentials {
        email: email.clone(),
        password,
        otp_token: None,
        lifetime: plan.lifetime,
    };
    let token = match auth.login(&credentials).await {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::OtpRequired => {
            let otp = match plan.otp_token {
                Some(o) => o,
                None => prompt.otp_token().map_err(|source| LoginError::Prompt {
                    what: "one-time code",
                    source,
                })?,
            };
            credentials.otp_token = Some(otp);
            auth.login(&credentials).await?
        }
        Err(e) => return Err(e.into()),
    };
    exporter_aptible::save_token(&path, roots.auth(), &token.access_token)?;
    Ok(LoggedIn {
        email,
        path,
        expires_at: token.expires_at,
        used_otp: credentials.otp_token.is_some(),
    })
}

/// A tunnel held for the user, registered with the cleanup scope so that Ctrl-C or SIGTERM
/// stop it (SIGHUP, then SIGKILL) before the command exits.
pub struct HeldTunnel {
    /// The database.
    pub database: Database,
    /// The running tunnel.
    pub tunnel: Tunnel,
    guard: cleanup::Guard,
}

impl HeldTunnel {
    /// Stop the tunnel (the user's Ctrl-C does it through the cleanup scope instead).
    pub async fn stop(self) -> exporter_aptible::TunnelEnd {
        let end = self.tunnel.stop().await;
        self.guard.disarm();
        end
    }
}

/// Open `db:tunnel` to the plan's database, whatever its type (a MongoDB user runs
/// `mongodump` against it).
///
/// # Errors
///
/// The platform's errors: no token, the database not found (naming those that exist), not
/// provisioned, no such credential type, a tunnel that does not come up.
pub async fn open_tunnel(
    plan: &TunnelPlan,
    cleanup: &Cleanup,
) -> Result<HeldTunnel, exporter_aptible::Error> {
    let client = super::client(&plan.platform)?;
    let env = client.environment(&plan.platform.environment).await?;
    let databases = client.databases(&env).await?;
    let names: Vec<String> = databases.iter().map(|d| d.handle.clone()).collect();
    let database = databases
        .into_iter()
        .find(|d| d.handle == plan.handle)
        .ok_or_else(|| {
            exporter_aptible::Error::new(
                ErrorKind::NotFound,
                format!("database {}", plan.handle),
                format!(
                    "not found in environment {} (databases: {})",
                    plan.platform.environment,
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?;
    let tunnel = client
        .open_tunnel(
            &database,
            &TunnelOptions {
                credential_type: plan.credential_type.clone(),
                local_port: plan.port,
                ..TunnelOptions::default()
            },
        )
        .await?;
    let mut watch = tunnel.watch();
    let guard = cleanup.register(
        cleanup::Task::Tunnel {
            database: database.handle.clone(),
        },
        move || {
            Box::pin(async move {
                watch.ended().await;
                Ok(())
            })
        },
    );
    Ok(HeldTunnel {
        database,
        tunnel,
        guard,
    })
}
