//! Logging in as the CLI does (spec §1.2, §1.3): the password grant on `POST {auth}/tokens`,
//! with a one-time code when the account has two-factor authentication.

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::client::{ClientOptions, build_http, context, network_error, read_response};
use crate::config::Roots;
use crate::error::{Error, ErrorKind, Result};

/// The CLI's default token lifetime without a one-time code: one week (spec §1.3).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The CLI's token lifetime when a one-time code is used: 12 hours (spec §1.3).
pub const OTP_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// What a login sends.
#[derive(Debug)]
pub struct Credentials {
    /// The account's email (`username`).
    pub email: String,
    /// The password (redacted in `Debug`).
    pub password: SecretString,
    /// The one-time code, once the first attempt answered `otp_token_required`.
    pub otp_token: Option<SecretString>,
    /// Token lifetime; `None` takes the CLI's defaults ([`DEFAULT_LIFETIME`], or
    /// [`OTP_LIFETIME`] with a one-time code).
    pub lifetime: Option<Duration>,
}

/// A token minted by the auth API.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token (redacted in `Debug`).
    pub access_token: SecretString,
    /// When it was created, as the API sent it.
    // UNSURE (aptible-api.md §1.2): `created_at` / `expires_at` may be strings or integer
    // timestamps; both are accepted and kept as text.
    pub created_at: Option<String>,
    /// When it expires, as the API sent it.
    pub expires_at: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: SecretString,
    #[serde(default)]
    created_at: Option<serde_json::Value>,
    #[serde(default)]
    expires_at: Option<serde_json::Value>,
}

fn as_text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A client of the Auth API (no token needed to log in).
#[derive(Debug, Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    roots: Roots,
}

impl AuthClient {
    /// A client for `roots`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the HTTP stack cannot be initialised.
    pub fn new(roots: Roots, options: &ClientOptions) -> Result<Self> {
        Ok(Self {
            http: build_http(options)?,
            roots,
        })
    }

    /// Mint a token with the password grant (`grant_type=password`, `scope=manage`,
    /// `expires_in` in seconds, `otp_token` when given), sent as a JSON body as the dashboard
    /// and go-deploy do. Never retried (a POST).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OtpRequired`] when the account needs a one-time code (call again with
    /// [`Credentials::otp_token`] set); [`ErrorKind::Login`] for a wrong email, password or
    /// code; the envelope's message otherwise. No error contains the password or the code.
    pub async fn login(&self, credentials: &Credentials) -> Result<IssuedToken> {
        let lifetime = credentials
            .lifetime
            .unwrap_or(if credentials.otp_token.is_some() {
                OTP_LIFETIME
            } else {
                DEFAULT_LIFETIME
            });
        let mut body = serde_json::json!({
            "grant_type": "password",
            "username": credentials.email,
            "password": credentials.password.expose_secret(),
            "scope": "manage",
            "expires_in": lifetime.as_secs(),
        });
        if let Some(otp) = &credentials.otp_token {
            body["otp_token"] = serde_json::Value::String(otp.expose_secret().to_owned());
        }
        let url = self.roots.auth_url("/tokens");
        let ctx = context(&Method::POST, &url);
        let resp = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| network_error(&ctx, &e))?;
        drop(body);
        let value = read_response(&ctx, resp).await?;
        let token: TokenBody = serde_json::from_value(value).map_err(|_| {
            Error::new(
                ErrorKind::Protocol,
                ctx.clone(),
                "the response has no access_token",
            )
        })?;
        if token.access_token.expose_secret().is_empty() {
            return Err(Error::new(
                ErrorKind::Protocol,
                ctx,
                "the response has an empty access_token",
            ));
        }
        Ok(IssuedToken {
            access_token: token.access_token,
            created_at: as_text(token.created_at),
            expires_at: as_text(token.expires_at),
        })
    }

    /// Check a token with `GET {auth}/current_token` (spec §1.2); returns its expiry as sent.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Auth`] for an invalid or expired token (hint: run exporter login).
    pub async fn current_token(&self, token: &SecretString) -> Result<Option<String>> {
        let url = self.roots.auth_url("/current_token");
        let ctx = context(&Method::GET, &url);
        let resp = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(|e| network_error(&ctx, &e))?;
        let value = read_response(&ctx, resp).await?;
        Ok(as_text(value.get("expires_at").cloned()))
    }
}
