//! The HTTP client of the Deploy API: headers, errors, retries and pagination (spec §2).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::{Roots, resolve_token};
use crate::error::{Error, ErrorKind, Result};

/// How the client behaves. [`ClientOptions::default`] follows the official client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `User-Agent` header.
    pub user_agent: String,
    /// Delays before each retry of an idempotent request (GET, PUT, PATCH) after a network
    /// error, a timeout or a 5xx: the Ruby client's 0.2 s, 0.8 s, 2 s (spec §2.4). POST is
    /// never retried, and neither is a destructive DELETE.
    pub retry_delays: Vec<Duration>,
    /// `per_page` sent on the first page of each collection (later pages follow
    /// `_links.next` as given). `None` sends none and takes the server's default.
    // UNSURE (aptible-api.md §2.3): the server's default page size and any maximum are not
    // documented; clients use up to 5000. Pagination follows `next` either way.
    pub per_page: Option<u32>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// How many per-resource requests of an inventory run at once.
    pub concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            user_agent: concat!("exporter v", env!("CARGO_PKG_VERSION")).to_owned(),
            retry_delays: vec![
                Duration::from_millis(200),
                Duration::from_millis(800),
                Duration::from_secs(2),
            ],
            per_page: Some(100),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            concurrency: 8,
        }
    }
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Idempotent (GET, PUT, PATCH): retried per [`ClientOptions::retry_delays`].
    Idempotent,
    /// Sent once: POST (creates an operation each time, spec §2.4) and destructive calls.
    Never,
}

/// Whether secrets are wanted in the response (spec §2.1 `Prefer: no_sensitive_extras`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sensitive {
    /// `no_sensitive_extras=true` (the CLI's default for every request).
    Omit,
    /// `no_sensitive_extras=false`: only where secrets are needed (credentials).
    Include,
}

impl Sensitive {
    fn header(self) -> &'static str {
        match self {
            Self::Omit => "no_sensitive_extras=true",
            Self::Include => "no_sensitive_extras=false",
        }
    }
}

/// A client of the Deploy API with a bearer token.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    roots: Roots,
    token: SecretString,
    options: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("roots", &self.roots)
            .field("token", &"****")
            .finish_non_exhaustive()
    }
}

pub(crate) fn build_http(options: &ClientOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(options.user_agent.clone())
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, "HTTP client", "cannot be built").with_source(e))
}

impl Client {
    /// A client for `roots` with `token`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the HTTP stack cannot be initialised.
    pub fn new(roots: Roots, token: SecretString, options: ClientOptions) -> Result<Self> {
        Ok(Self {
            http: build_http(&options)?,
            roots,
            token,
            options,
        })
    }

    /// A client configured as the CLI is: roots from `APTIBLE_API_ROOT_URL` /
    /// `APTIBLE_AUTH_ROOT_URL`, the token from `APTIBLE_ACCESS_TOKEN` or the token file
    /// (spec §1.4). `lookup` reads the environment (the crate never reads it itself).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Auth`] without a token (hint: run exporter login); as
    /// [`crate::config::resolve_token`] otherwise.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self> {
        let roots = Roots::from_lookup(lookup)?;
        let token = resolve_token(lookup, &roots)?;
        Self::new(roots, token.token, options)
    }

    /// The roots in use.
    #[must_use]
    pub fn roots(&self) -> &Roots {
        &self.roots
    }

    /// The options in use.
    #[must_use]
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    pub(crate) fn token(&self) -> &SecretString {
        &self.token
    }

    /// GET a resource by absolute href (spec §2.2: hrefs are followed as given), without
    /// sensitive extras.
    ///
    /// # Errors
    ///
    /// The platform's envelope as an [`Error`] (404 → [`ErrorKind::NotFound`], 401 →
    /// [`ErrorKind::Auth`], …); [`ErrorKind::Network`] after the retries;
    /// [`ErrorKind::Protocol`] when the body is not the expected resource.
    pub async fn get<T: DeserializeOwned>(&self, href: &str) -> Result<T> {
        self.get_with(href, Sensitive::Omit).await
    }

    pub(crate) async fn get_with<T: DeserializeOwned>(
        &self,
        href: &str,
        sensitive: Sensitive,
    ) -> Result<T> {
        let url = parse_href(href)?;
        let value = self
            .send(Method::GET, url, None, sensitive, Retry::Idempotent)
            .await?;
        decode(&context(&Method::GET, href), value)
    }

    /// Every item of a collection, following `_links.next` to the end (spec §2.3), items taken
    /// from `_embedded.<plural>`. `params` are added to the first page's query (e.g.
    /// `no_embed=true`, `orphaned=true`), as is `per_page` from the options.
    ///
    /// # Errors
    ///
    /// As [`Client::get`]; [`ErrorKind::Protocol`] when the pages loop. A 404 on a page after
    /// the first ends the listing, as in the Ruby client.
    pub async fn list<T: DeserializeOwned>(
        &self,
        href: &str,
        plural: &str,
        params: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        self.list_with(href, plural, params, Sensitive::Omit).await
    }

    pub(crate) async fn list_with<T: DeserializeOwned>(
        &self,
        href: &str,
        plural: &str,
        params: &[(&str, &str)],
        sensitive: Sensitive,
    ) -> Result<Vec<T>> {
        let mut url = parse_href(href)?;
        {
            let present: HashSet<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                if !present.contains(*k) {
                    q.append_pair(k, v);
                }
            }
            if let Some(n) = self.options.per_page
                && !present.contains("per_page")
            {
                q.append_pair("per_page", &n.to_string());
            }
        }
        let ctx = context(&Method::GET, href);
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut first = true;
        loop {
            seen.insert(url.to_string());
            let page = match self
                .send(Method::GET, url.clone(), None, sensitive, Retry::Idempotent)
                .await
            {
                Ok(v) => v,
                Err(e) if !first && e.kind() == ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            };
            first = false;
            if let Some(list) = page
                .get("_embedded")
                .and_then(|e| e.get(plural))
                .and_then(serde_json::Value::as_array)
            {
                for (i, item) in list.iter().enumerate() {
                    let parsed = serde_json::from_value::<T>(item.clone()).map_err(|e| {
                        Error::new(
                            ErrorKind::Protocol,
                            ctx.clone(),
                            format!("{plural}[{}]: {e}", items.len() + i),
                        )
                    })?;
                    items.push(parsed);
                }
            }
            let next = page
                .get("_links")
                .and_then(|l| l.get("next"))
                .and_then(|n| n.get("href"))
                .and_then(serde_json::Value::as_str)
                .filter(|h| !h.is_empty());
            match next {
                None => break,
                Some(next) => {
                    let next = parse_href(next)?;
                    if seen.contains(next.as_str()) {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            ctx,
                            "the collection's next link points at a page already read",
                        ));
                    }
                    url = next;
                }
            }
        }
        Ok(items)
    }

    /// POST a JSON body to an absolute href; never retried (spec §2.4).
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        href: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let url = parse_href(href)?;
        let body = serde_json::to_value(body).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                context(&Method::POST, href),
                "bad body",
            )
            .with_source(e)
        })?;
        let value = self
            .send(Method::POST, url, Some(body), Sensitive::Omit, Retry::Never)
            .await?;
        decode(&context(&Method::POST, href), value)
    }

    /// PUT a JSON body (idempotent: retried).
    pub(crate) async fn put<T: DeserializeOwned>(
        &self,
        href: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let url = parse_href(href)?;
        let body = serde_json::to_value(body).map_err(|e| {
            Error::new(ErrorKind::Protocol, context(&Method::PUT, href), "bad body").with_source(e)
        })?;
        let value = self
            .send(
                Method::PUT,
                url,
                Some(body),
                Sensitive::Omit,
                Retry::Idempotent,
            )
            .await?;
        decode(&context(&Method::PUT, href), value)
    }

    /// DELETE an href, sent once (a destructive call is never retried automatically, issue
    /// 14, although the Ruby client would retry it).
    pub(crate) async fn delete_once(&self, href: &str) -> Result<()> {
        let url = parse_href(href)?;
        self.send(Method::DELETE, url, None, Sensitive::Omit, Retry::Never)
            .await?;
        Ok(())
    }

    /// Send with retries; the body of a 2xx as JSON (`Null` when empty).
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        sensitive: Sensitive,
        retry: Retry,
    ) -> Result<serde_json::Value> {
        let ctx = context(&method, url.as_str());
        let mut attempt = 0;
        loop {
            match self
                .send_once(&method, url.clone(), body.as_ref(), sensitive, &ctx)
                .await
            {
                Ok(v) => return Ok(v),
                Err(e)
                    if retry == Retry::Idempotent
                        && e.is_retryable()
                        && attempt < self.options.retry_delays.len() =>
                {
                    tokio::time::sleep(self.options.retry_delays[attempt]).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: Url,
        body: Option<&serde_json::Value>,
        sensitive: Sensitive,
        ctx: &str,
    ) -> Result<serde_json::Value> {
        // Headers as the CLI's HAL client sends them (spec §2.1).
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(reqwest::header::ACCEPT, "application/json")
            .bearer_auth(self.token.expose_secret())
            .header("Prefer", sensitive.header());
        if let Some(body) = body {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.to_string());
        }
        let resp = req.send().await.map_err(|e| network_error(ctx, &e))?;
        read_response(ctx, resp).await
    }
}

/// Turn a reqwest transport error into a [`ErrorKind::Network`] error. reqwest's own message
/// names the URL, which carries no secret here (hrefs never hold credentials).
pub(crate) fn network_error(ctx: &str, e: &reqwest::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut msg = what.to_owned();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::new(ErrorKind::Network, ctx, msg)
}

/// Read a response: a 2xx body as JSON, anything else as the §2.4 envelope.
pub(crate) async fn read_response(ctx: &str, resp: reqwest::Response) -> Result<serde_json::Value> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| network_error(ctx, &e))?;
    if status.is_success() {
        if bytes.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(serde_json::Value::Null);
        }
        return serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                ctx,
                format!("the response is not JSON ({e})"),
            )
        });
    }
    let envelope: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let field = |k: &str| {
        envelope
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let message = field("message").or_else(|| status.canonical_reason().map(str::to_owned));
    Err(Error::from_envelope(
        ctx,
        status.as_u16(),
        field("error"),
        message,
    ))
}

fn decode<T: DeserializeOwned>(ctx: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            ctx,
            format!("unexpected response: {e}"),
        )
    })
}

fn parse_href(href: &str) -> Result<Url> {
    Url::parse(href).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            href.to_owned(),
            format!("not an absolute URL ({e})"),
        )
    })
}

/// `METHOD /path` of an href: the path only, never the query.
pub(crate) fn context(method: &Method, href: &str) -> String {
    let path = Url::parse(href).map_or_else(|_| href.to_owned(), |u| u.path().to_owned());
    format!("{method} {path}")
}
