//! S3 and S3-compatible storage: `s3://bucket/prefix` holds runs as `prefix/<run-id>/<object>`
//! (FORMAT.md, "S3 layout").
//!
//! Built on aws-sdk-s3 with the standard aws-config chain: credentials from the environment,
//! profiles, SSO, web identity or instance metadata; the region from `[storage] region`,
//! `AWS_REGION` or the profile; an S3-compatible endpoint from `[storage] endpoint` or
//! `AWS_ENDPOINT_URL`. Credentials never reach a message: errors carry the S3 error code and
//! message, the bucket and the key.
//!
//! The [`Storage`] interface is synchronous (the pipeline writes from a blocking thread), so
//! every request is spawned on the tokio runtime whose [`Handle`] the storage keeps, and the
//! calling thread waits for its result. That works from any thread, including the drop of a
//! future on the runtime's own thread (the uncommitted-run guard after Ctrl-C).
//!
//! # Uploads: visible means complete
//!
//! An object smaller than one part is sent with one `PutObject` at commit. A larger one is a
//! multipart upload with one fixed part size for the whole upload (R2 requires equal parts;
//! S3 allows at most 10,000 parts of 5 MiB to 5 GiB), chosen by [`choose_part_size`] from
//! `--expected-size`, the engine's size hint or `[storage] part_size`. At most
//! `upload_concurrency` parts are in flight and one more is being filled, so memory stays at
//! `part size x (concurrency + 1)`. Each part is retried on transient errors by the SDK's
//! standard retry strategy (`UploadPart` is idempotent per part number). Before part 10,001
//! would start, the upload fails with an error naming the limit. Every failure, and every
//! writer dropped without commit, aborts the multipart upload, so nothing appears under the
//! final key; after `CompleteMultipartUpload` a `HeadObject` checks the stored length.
//!
//! # Checksums
//!
//! Our SHA-256 of the stored bytes lives in the manifest and `SHA256SUMS` (S3 keeps no
//! full-object SHA-256 of a multipart object, and its ETag is no MD5). Transport checksums
//! follow [`Checksums`]: aws-sdk-s3 1.69 and later send CRC32 with `aws-chunked` trailers by
//! default, which several S3-compatible stores reject (awslabs/aws-sdk-rust#1240,
//! cloudnative-pg#7715, case A08 of the fidelity notes), so the default is
//! [`Checksums::WhenRequired`]. With [`Checksums::WhenSupported`] every request of one upload
//! uses CRC32: `CreateMultipartUpload` declares it, each `UploadPart` sends it and
//! `CompleteMultipartUpload` lists each part's value.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};
use bytes::Bytes;
use tokio::runtime::Handle;

use super::{ObjectWriter, Storage};
use crate::archive::partial::PARTIAL_DIR;
use crate::archive::{MANIFEST_FILE, is_run_id, run_sort_key};
use crate::cleanup::{self, Cleanup};

/// Smallest part S3 accepts (except the last), in bytes: 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Largest part S3 accepts, in bytes: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// Most parts of one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Largest S3 object, in bytes: 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// Part size when no estimate asks for more, in bytes: 8 MiB (objects up to 78 GiB).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// Parts in flight per object when not configured.
pub const DEFAULT_UPLOAD_CONCURRENCY: usize = 4;
/// Parts an estimate is planned to fill: half the limit, because size hints are estimates
/// (table sizes on disk, `used_memory`) and COPY text can outgrow them before compression.
pub const PLANNED_PARTS: u64 = MAX_PARTS / 2;
/// Attempts per request (first try included) of the SDK's standard retry strategy.
pub const MAX_ATTEMPTS: u32 = 5;

/// The transport-checksum policy (`[storage] checksums`), mapped to the SDK's
/// `request_checksum_calculation` and `response_checksum_validation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksums {
    /// `when_required` (default): checksums only where S3 requires one; works with stores
    /// that reject `x-amz-checksum-*` headers and `aws-chunked` trailers (older MinIO, R2).
    #[default]
    WhenRequired,
    /// `when_supported`: CRC32 on every upload request and validated on downloads (the SDK's
    /// own default since aws-sdk-s3 1.69).
    WhenSupported,
}

impl Checksums {
    /// Parse `when_required` or `when_supported`.
    ///
    /// # Errors
    ///
    /// A message listing the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "when_required" => Ok(Self::WhenRequired),
            "when_supported" => Ok(Self::WhenSupported),
            other => Err(format!(
                "{other:?} is not a checksum policy; use \"when_required\" or \"when_supported\""
            )),
        }
    }
}

/// Server-side encryption requested on every object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// `AES256`: S3-managed keys.
    Aes256,
    /// `aws:kms`, with a key id or ARN (else the bucket's default KMS key).
    Kms(Option<String>),
}

impl Sse {
    /// Parse `[storage] sse` (`AES256` or `aws:kms`) with `sse_kms_key_id`.
    ///
    /// # Errors
    ///
    /// A message for an unknown mode, or a key id with `AES256`.
    pub fn parse(mode: &str, kms_key_id: Option<String>) -> Result<Self, String> {
        match (mode, kms_key_id) {
            ("AES256", None) => Ok(Self::Aes256),
            ("AES256", Some(_)) => Err("sse_kms_key_id needs sse = \"aws:kms\"".into()),
            ("aws:kms", key) => Ok(Self::Kms(key)),
            (other, _) => Err(format!(
                "{other:?} is not an encryption mode; use \"AES256\" or \"aws:kms\""
            )),
        }
    }
}

/// Everything needed to reach one `s3://bucket/prefix` (plain data: no I/O, no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// Endpoint URL of an S3-compatible store (else `AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// Region (else the aws-config chain; `us-east-1` with a custom endpoint).
    pub region: Option<String>,
    /// Path-style addressing; `None` means "yes with a custom endpoint, no on AWS".
    pub path_style: Option<bool>,
    /// Server-side encryption.
    pub sse: Option<Sse>,
    /// Storage class, e.g. `STANDARD_IA`.
    pub storage_class: Option<String>,
    /// Transport checksum policy.
    pub checksums: Checksums,
    /// Fixed part size in bytes, instead of one chosen from the size estimate.
    pub part_size: Option<u64>,
    /// Parts in flight per object.
    pub upload_concurrency: usize,
    /// `--expected-size`: the largest object expected, in bytes (overrides engine hints).
    pub expected_size: Option<u64>,
}

impl S3Config {
    /// `s3://bucket/prefix` (or `s3://bucket`).
    #[must_use]
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key prefix of runs: `prefix/` or empty.
    fn root(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// Check a bucket name against S3's rules: 3 to 63 characters of lowercase letters, digits,
/// `.` and `-`, starting and ending with a letter or digit.
///
/// # Errors
///
/// A message saying which rule the name breaks.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err(format!("bucket name {name:?} must be 3 to 63 characters"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    if let Some(c) = name.chars().find(|c| !ok_char(*c)) {
        return Err(format!(
            "bucket name {name:?} contains {c:?}; use lowercase letters, digits, '.' and '-'"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return Err(format!(
            "bucket name {name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Check a configured part size: 5 MiB to 5 GiB.
///
/// # Errors
///
/// A message naming the limits.
pub fn check_part_size(bytes: u64) -> Result<(), String> {
    if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "part size {bytes} bytes is outside S3's limits of 5 MiB to 5 GiB"
        ))
    }
}

/// The part size of one upload, in bytes.
///
/// `configured` is `[storage] part_size`; `expected` the expected object size (from
/// `--expected-size` or the engine's hint). Without a configured size: [`DEFAULT_PART_SIZE`],
/// or the size that fits `expected` into [`PLANNED_PARTS`] parts if that is larger, rounded up
/// to a whole MiB. Source: S3 multipart upload limits (Amazon S3 User Guide, "Amazon S3
/// multipart upload limits").
///
/// # Errors
///
/// A message if `expected` exceeds S3's 5 TiB object limit, or if a configured part size
/// cannot hold `expected` in 10,000 parts.
pub fn choose_part_size(configured: Option<u64>, expected: Option<u64>) -> Result<u64, String> {
    if let Some(e) = expected
        && e > MAX_OBJECT_SIZE
    {
        return Err(format!(
            "the object is expected to be {e} bytes, more than S3's limit of 5 TiB per object"
        ));
    }
    if let Some(p) = configured {
        check_part_size(p)?;
        if let Some(e) = expected
            && e > p.saturating_mul(MAX_PARTS)
        {
            return Err(format!(
                "part size {p} bytes holds at most {} bytes in 10,000 parts, but the object is expected to be {e} bytes; raise [storage] part_size",
                p * MAX_PARTS
            ));
        }
        return Ok(p);
    }
    let needed = expected.map_or(0, |e| e.div_ceil(PLANNED_PARTS).next_multiple_of(1 << 20));
    Ok(needed.clamp(DEFAULT_PART_SIZE, MAX_PART_SIZE))
}

/// A multipart upload that was started and not completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpenUpload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was started (RFC 3339), if the store says.
    pub initiated: Option<String>,
}

struct Shared {
    client: Client,
    handle: Handle,
    config: S3Config,
    /// Where writers register their uploads until completed or aborted.
    cleanup: Cleanup,
}

/// Runs under `s3://bucket/prefix`.
#[derive(Clone)]
pub struct S3Storage {
    shared: Arc<Shared>,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("url", &self.shared.config.url())
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Load the AWS configuration (credentials are resolved lazily, at the first request) and
    /// build a client on the current tokio runtime. Every multipart upload registers with
    /// `cleanup` until it is completed or aborted, so an interrupted command aborts it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if no region is configured anywhere and no custom endpoint is given.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn connect(config: S3Config, cleanup: Cleanup) -> io::Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let sdk = loader.load().await;
        let custom_endpoint = sdk.endpoint_url().is_some();
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.path_style.unwrap_or(custom_endpoint))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(500)),
            );
        builder = match config.checksums {
            Checksums::WhenRequired => builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired),
            Checksums::WhenSupported => builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
                .response_checksum_validation(ResponseChecksumValidation::WhenSupported),
        };
        if sdk.region().is_none() {
            if custom_endpoint {
                builder = builder.region(aws_sdk_s3::config::Region::new("us-east-1"));
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "no AWS region for {}: set AWS_REGION, a profile region, or [storage] region",
                        config.url()
                    ),
                ));
            }
        }
        Ok(Self {
            shared: Arc::new(Shared {
                client: Client::from_conf(builder.build()),
                handle: Handle::current(),
                config,
                cleanup,
            }),
        })
    }

    /// The destination's settings.
    #[must_use]
    pub fn config(&self) -> &S3Config {
        &self.shared.config
    }

    fn key(&self, run_id: &str, name: &str) -> String {
        format!("{}{run_id}/{name}", self.shared.config.root())
    }

    fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.shared.config.bucket)
    }

    /// Run a request on the runtime and wait for it from this (non-async) thread.
    fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        wait(&self.shared.handle, fut)
    }

    /// Multipart uploads under the prefix that were neither completed nor aborted (left by an
    /// interrupted process, or in progress in another one), oldest first.
    ///
    /// # Errors
    ///
    /// I/O errors naming the bucket (access denied, no such bucket, network).
    pub fn list_uploads(&self) -> io::Result<Vec<OpenUpload>> {
        let root = self.shared.config.root();
        list_uploads(&self.shared, root)
    }

    /// Abort one multipart upload. An upload that is already gone counts as aborted.
    ///
    /// # Errors
    ///
    /// I/O errors naming the key.
    pub fn abort_upload(&self, upload: &OpenUpload) -> io::Result<()> {
        abort_upload(&self.shared, upload.key.clone(), upload.upload_id.clone())
    }

    fn head(&self, key: &str) -> io::Result<Option<i64>> {
        let s = self.shared.clone();
        let key = key.to_owned();
        self.wait(async move {
            match s
                .client
                .head_object()
                .bucket(&s.config.bucket)
                .key(&key)
                .send()
                .await
            {
                Ok(out) => Ok(Some(out.content_length().unwrap_or(0))),
                Err(e) => {
                    let e = sdk_error(&format!("cannot read {}", url(&s, &key)), e);
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        })
    }

    /// Keys under `prefix`, paginated, without the prefix.
    fn list_keys(&self, prefix: String) -> io::Result<Vec<String>> {
        let s = self.shared.clone();
        self.wait(async move {
            let mut names = Vec::new();
            let mut token = None;
            loop {
                let out = s
                    .client
                    .list_objects_v2()
                    .bucket(&s.config.bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("cannot list {}", url(&s, &prefix)), e))?;
                for o in out.contents() {
                    if let Some(rest) = o.key().and_then(|k| k.strip_prefix(&prefix)) {
                        names.push(rest.to_owned());
                    }
                }
                match out.next_continuation_token() {
                    Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            Ok(names)
        })
    }

    /// The bucket must exist and be reachable, and the prefix must not itself be a run.
    fn refuse_unusable_root(&self) -> io::Result<()> {
        self.check_bucket()?;
        let root = self.shared.config.root();
        if !root.is_empty() && self.head(&format!("{root}{MANIFEST_FILE}"))?.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "destination {} is itself a run (it holds {MANIFEST_FILE}); give the prefix that holds runs",
                    self.describe()
                ),
            ));
        }
        Ok(())
    }

    /// Delete one object.
    fn delete(&self, key: &str) -> io::Result<()> {
        let s = self.shared.clone();
        let key = key.to_owned();
        self.wait(async move {
            s.client
                .delete_object()
                .bucket(&s.config.bucket)
                .key(&key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&format!("cannot delete {}", url(&s, &key)), e))
        })
    }

    /// Whether the bucket exists and can be reached, as a clear error if not.
    fn check_bucket(&self) -> io::Result<()> {
        let s = self.shared.clone();
        self.wait(async move {
            let bucket = &s.config.bucket;
            s.client
                .head_bucket()
                .bucket(bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    let e = sdk_error(&format!("cannot use bucket {bucket}"), e);
                    if e.kind() == io::ErrorKind::NotFound {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("bucket {bucket} does not exist"),
                        )
                    } else {
                        e
                    }
                })
        })
    }
}

fn url(s: &Shared, key: &str) -> String {
    format!("s3://{}/{key}", s.config.bucket)
}

/// Spawn `fut` on `handle` and block this thread until it finishes. Never called from a
/// runtime worker of a current-thread runtime (ours is multi-threaded).
fn wait<T: Send + 'static>(
    handle: &Handle,
    fut: impl Future<Output = io::Result<T>> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .unwrap_or_else(|_| Err(io::Error::other("the async runtime is shutting down")))
}

/// Apply the options every new object gets — checksum algorithm (one for the whole upload,
/// case A08), server-side encryption, storage class — to a `PutObject` or
/// `CreateMultipartUpload` request. A macro because the SDK's two builders share these
/// setters but no trait.
macro_rules! with_object_options {
    ($req:expr, $config:expr) => {{
        let mut req = $req;
        if $config.checksums == Checksums::WhenSupported {
            req = req.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        match &$config.sse {
            None => {}
            Some(Sse::Aes256) => req = req.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Sse::Kms(id)) => {
                req = req
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .set_ssekms_key_id(id.clone());
            }
        }
        if let Some(class) = &$config.storage_class {
            req = req.storage_class(StorageClass::from(class.as_str()));
        }
        req
    }};
}

/// An SDK error as an `io::Error`: `what: Code: message` (or the transport error chain),
/// with `NotFound` / `PermissionDenied` kinds. Never includes credentials: the S3 error's
/// code and message only, not the request.
#[allow(clippy::needless_pass_by_value)] // Called as `.map_err(|e| sdk_error(.., e))`.
fn sdk_error<E, R>(what: &str, err: SdkError<E, R>) -> io::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + HasStatus + 'static,
{
    let status = err.raw_response().map(HasStatus::status);
    let code = err.code().map(str::to_owned);
    let kind = match (status, code.as_deref()) {
        (_, Some("NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound")) | (Some(404), _) => {
            io::ErrorKind::NotFound
        }
        (
            _,
            Some(
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken",
            ),
        )
        | (Some(401 | 403), _) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    let detail = match (&code, err.message(), status) {
        (Some(c), Some(m), _) => format!("{c}: {m}"),
        (Some(c), None, Some(s)) => format!("{c} (HTTP {s})"),
        (None, _, Some(404)) => "not found (HTTP 404)".to_owned(),
        (None, _, Some(403)) => "access denied (HTTP 403)".to_owned(),
        (None, _, Some(s)) if matches!(err, SdkError::ServiceError(_)) => format!("HTTP {s}"),
        _ => transport_detail(&err),
    };
    io::Error::new(kind, format!("{what}: {detail}"))
}

/// A transport or credential failure as one readable line: the messages of the error's
/// source chain (without the SDK's debug dump), plus what to check for the two usual causes.
fn transport_detail(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    let mut line = parts.join(": ");
    let lower = line.to_ascii_lowercase();
    if lower.contains("credential") {
        line.push_str(
            " (no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             AWS_PROFILE, or run where an instance role or SSO session provides them)",
        );
    } else if lower.contains("dns error") || lower.contains("connect") {
        line.push_str(
            " (cannot reach the S3 endpoint: for an S3-compatible store set `endpoint` in \
             [storage] or AWS_ENDPOINT_URL)",
        );
    }
    line
}

/// The HTTP status of a raw response (a seam so [`sdk_error`] stays generic).
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn list_uploads(s: &Arc<Shared>, prefix: String) -> io::Result<Vec<OpenUpload>> {
    let s2 = s.clone();
    wait(&s.handle, async move {
        let s = s2;
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = s
                .client
                .list_multipart_uploads()
                .bucket(&s.config.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| {
                    sdk_error(
                        &format!("cannot list multipart uploads under {}", url(&s, &prefix)),
                        e,
                    )
                })?;
            for u in page.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(OpenUpload {
                        key: key.to_owned(),
                        upload_id: id.to_owned(),
                        initiated: u.initiated().map(ToString::to_string),
                    });
                }
            }
            if page.is_truncated() == Some(true) {
                key_marker = page.next_key_marker().map(str::to_owned);
                id_marker = page.next_upload_id_marker().map(str::to_owned);
                if key_marker.is_none() && id_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        out.sort_by(|a, b| a.initiated.cmp(&b.initiated).then(a.key.cmp(&b.key)));
        Ok(out)
    })
}

fn abort_upload(s: &Arc<Shared>, key: String, upload_id: String) -> io::Result<()> {
    wait(&s.handle, abort_upload_async(s.clone(), key, upload_id))
}

/// Abort one multipart upload; one that is already gone counts as aborted.
async fn abort_upload_async(s: Arc<Shared>, key: String, upload_id: String) -> io::Result<()> {
    {
        match s
            .client
            .abort_multipart_upload()
            .bucket(&s.config.bucket)
            .key(&key)
            .upload_id(&upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk_error(
                    &format!("cannot abort the multipart upload of {}", url(&s, &key)),
                    e,
                );
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl Storage for S3Storage {
    fn describe(&self) -> String {
        self.shared.config.url()
    }

    fn create_run(&self, run_id: &str) -> io::Result<String> {
        self.refuse_unusable_root()?;
        let root = self.shared.config.root();
        for n in 0..1000 {
            let id = if n == 0 {
                run_id.to_owned()
            } else {
                format!("{run_id}-{}", n + 1)
            };
            // A prefix is taken if any object or upload is under it.
            let prefix = format!("{root}{id}/");
            if self.list_keys(prefix.clone())?.is_empty()
                && list_uploads(&self.shared, prefix)?.is_empty()
            {
                return Ok(id);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("too many runs named {run_id} in {}", self.describe()),
        ))
    }

    fn create_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer::new(
            self.shared.clone(),
            self.key(run_id, name),
        )))
    }

    fn put_object(&self, run_id: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
        let key = self.key(run_id, name);
        put(&self.shared, key, Bytes::copy_from_slice(bytes))
    }

    fn open_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let s = self.shared.clone();
        let key = self.key(run_id, name);
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Option<Bytes>>>(16);
        let body = self.wait({
            let s = s.clone();
            let key = key.clone();
            async move {
                s.client
                    .get_object()
                    .bucket(&s.config.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(|o| o.body)
                    .map_err(|e| sdk_error(&format!("cannot read {}", url(&s, &key)), e))
            }
        })?;
        let what = self.url_of(&key);
        let task = s.handle.spawn(async move {
            let mut body = body;
            loop {
                let item = match body.next().await {
                    Some(Ok(chunk)) => Ok(Some(chunk)),
                    Some(Err(e)) => Err(io::Error::other(format!(
                        "download of {what} failed: {}",
                        transport_detail(&e)
                    ))),
                    None => Ok(None),
                };
                let last = !matches!(item, Ok(Some(_)));
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Box::new(S3Reader {
            rx,
            current: Bytes::new(),
            done: false,
            task: task.abort_handle(),
        }))
    }

    fn list_objects(&self, run_id: &str) -> io::Result<Vec<String>> {
        let partial = format!("{PARTIAL_DIR}/");
        let mut names: Vec<String> = self
            .list_keys(self.key(run_id, ""))?
            .into_iter()
            .filter(|n| !n.starts_with(&partial))
            .collect();
        names.sort();
        Ok(names)
    }

    fn list_dir(&self, run_id: &str, dir: &str) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list_keys(self.key(run_id, &format!("{dir}/")))?
            .into_iter()
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .collect();
        names.sort();
        Ok(names)
    }

    fn remove_object(&self, run_id: &str, name: &str) -> io::Result<()> {
        // DeleteObject of a missing key succeeds on S3.
        self.delete(&self.key(run_id, name))
    }

    fn remove_dir(&self, run_id: &str, dir: &str) -> io::Result<()> {
        let prefix = self.key(run_id, &format!("{dir}/"));
        for name in self.list_keys(prefix.clone())? {
            self.delete(&format!("{prefix}{name}"))?;
        }
        Ok(())
    }

    /// Prefixes named like run ids that hold objects but no manifest.
    fn list_unfinished_runs(&self) -> io::Result<Vec<String>> {
        let mut runs: std::collections::BTreeMap<String, bool> = std::collections::BTreeMap::new();
        for key in self.list_keys(self.shared.config.root())? {
            let Some((run, name)) = key.split_once('/') else {
                continue;
            };
            if is_run_id(run) {
                *runs.entry(run.to_owned()).or_default() |= name == MANIFEST_FILE;
            }
        }
        let mut unfinished: Vec<String> = runs
            .into_iter()
            .filter_map(|(run, committed)| (!committed).then_some(run))
            .collect();
        unfinished.sort_by_key(|r| run_sort_key(r));
        Ok(unfinished)
    }

    /// Abort every multipart upload under the run's prefix: none of them can be completed by
    /// the process that started it any more.
    fn discard_unfinished(&self, run_id: &str) -> io::Result<usize> {
        let uploads = list_uploads(&self.shared, self.key(run_id, ""))?;
        for upload in &uploads {
            self.abort_upload(upload)?;
        }
        Ok(uploads.len())
    }

    /// Runs with a manifest only: on S3 a prefix is a run once its commit marker exists.
    fn list_runs(&self) -> io::Result<Vec<String>> {
        let mut runs: Vec<String> = self
            .list_keys(self.shared.config.root())?
            .into_iter()
            .filter_map(|k| {
                let (run, name) = k.split_once('/')?;
                (name == MANIFEST_FILE && is_run_id(run)).then(|| run.to_owned())
            })
            .collect();
        runs.sort_by_key(|r| run_sort_key(r));
        Ok(runs)
    }

    fn remove_uncommitted_run(&self, run_id: &str) -> io::Result<()> {
        let manifest = self.key(run_id, MANIFEST_FILE);
        if self.head(&manifest)?.is_some() {
            return Err(io::Error::other(format!(
                "run {} is committed; not removing it",
                self.url_of(&self.key(run_id, ""))
            )));
        }
        let prefix = self.key(run_id, "");
        for upload in list_uploads(&self.shared, prefix.clone())? {
            self.abort_upload(&upload)?;
        }
        for name in self.list_keys(prefix)? {
            self.delete(&self.key(run_id, &name))?;
        }
        Ok(())
    }

    /// A `PutObject` with the destination's object options (checksums, encryption, storage
    /// class), read back with `HeadObject`, then `DeleteObject`; and a multipart upload
    /// started with the same options and aborted (the dump uploads archives in parts, and
    /// aborts them on failure).
    fn probe(&self, name: &str) -> io::Result<()> {
        self.refuse_unusable_root()?;
        let key = format!("{}{name}", self.shared.config.root());
        let body = Bytes::from_static(b"exporter check: this object is removed at once\n");
        let len = body.len() as i64;
        put(&self.shared, key.clone(), body)?;
        let seen = self.head(&key);
        let deleted = self.delete(&key);
        match seen? {
            Some(l) if l == len => {}
            other => {
                return Err(io::Error::other(format!(
                    "{} holds {} bytes after the upload, {len} were sent",
                    self.url_of(&key),
                    other.map_or_else(|| "no".to_owned(), |l| l.to_string())
                )));
            }
        }
        deleted?;
        // A writer, so the upload is registered with the cleanup scope while it exists.
        let mut writer = S3Writer::new(self.shared.clone(), key.clone());
        writer.finished = true;
        let id = writer.create_upload()?;
        writer.upload_id = None;
        writer.set_started(None);
        abort_upload(&self.shared, key, id)
    }
}

/// One `PutObject` of a whole (small) object, replacing any object of that key.
fn put(s: &Arc<Shared>, key: String, body: Bytes) -> io::Result<()> {
    let s2 = s.clone();
    wait(&s.handle, async move {
        let s = s2;
        let len = body.len() as i64;
        let req = s
            .client
            .put_object()
            .bucket(&s.config.bucket)
            .key(&key)
            .content_length(len)
            .body(ByteStream::from(body));
        let req = with_object_options!(req, s.config);
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&format!("cannot write {}", url(&s, &key)), e))
    })
}

/// A streaming GET: chunks come from a task on the runtime through a bounded channel, so at
/// most 16 body chunks are buffered. The end is an explicit `None`; a channel that closes
/// without it (runtime shutdown) is an error, never a silent truncation.
struct S3Reader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Option<Bytes>>>,
    current: Bytes,
    done: bool,
    task: tokio::task::AbortHandle,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(chunk))) => self.current = chunk,
                Some(Ok(None)) => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    return Err(io::Error::other("the download stopped before its end"));
                }
            }
        }
    }
}

impl Drop for S3Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type PartTask = tokio::task::JoinHandle<io::Result<CompletedPart>>;

/// A multipart (or, if small, single-PUT) upload; see the module docs.
struct S3Writer {
    shared: Arc<Shared>,
    key: String,
    hint: Option<u64>,
    part_size: Option<u64>,
    buf: Vec<u8>,
    written: u64,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: VecDeque<PartTask>,
    done: Vec<CompletedPart>,
    finished: bool,
    /// The upload id once started, shared with the cleanup action.
    started: Arc<Mutex<Option<String>>>,
    /// The writer's registration with the cleanup scope: settled when the upload completed or
    /// the writer aborted it; otherwise the scope aborts the upload recorded in `started`.
    cleanup: Option<cleanup::Guard>,
}

impl S3Writer {
    fn new(shared: Arc<Shared>, key: String) -> Self {
        let started = Arc::new(Mutex::new(None::<String>));
        let cleanup = shared.cleanup.register(
            cleanup::Task::Upload {
                object: url(&shared, &key),
            },
            {
                let shared = shared.clone();
                let key = key.clone();
                let started = started.clone();
                move || {
                    Box::pin(async move {
                        let id = started
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .take();
                        match id {
                            None => Ok(()),
                            Some(id) => abort_upload_async(shared, key, id)
                                .await
                                .map_err(|e| e.to_string()),
                        }
                    })
                }
            },
        );
        Self {
            shared,
            key,
            hint: None,
            part_size: None,
            buf: Vec::new(),
            written: 0,
            upload_id: None,
            next_part: 1,
            in_flight: VecDeque::new(),
            done: Vec::new(),
            finished: false,
            started,
            cleanup: Some(cleanup),
        }
    }

    /// Record the upload id where the cleanup action finds it.
    fn set_started(&self, id: Option<String>) {
        *self.started.lock().unwrap_or_else(PoisonError::into_inner) = id;
    }

    /// Nothing is left to abort: settle the registration.
    fn settle(&mut self) {
        if let Some(guard) = self.cleanup.take() {
            guard.disarm();
        }
    }

    fn url(&self) -> String {
        url(&self.shared, &self.key)
    }

    fn part_size(&mut self) -> io::Result<u64> {
        if let Some(p) = self.part_size {
            return Ok(p);
        }
        let c = &self.shared.config;
        let p = choose_part_size(c.part_size, c.expected_size.or(self.hint)).map_err(|m| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {m}", self.url()))
        })?;
        tracing::debug!(object = %self.url(), part_size = p, "chose the part size");
        self.part_size = Some(p);
        Ok(p)
    }

    fn create_upload(&mut self) -> io::Result<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let s = self.shared.clone();
        let key = self.key.clone();
        let id = wait(&self.shared.handle, async move {
            let req = s
                .client
                .create_multipart_upload()
                .bucket(&s.config.bucket)
                .key(&key);
            let req = with_object_options!(req, s.config);
            let out = req.send().await.map_err(|e| {
                sdk_error(
                    &format!("cannot start the multipart upload of {}", url(&s, &key)),
                    e,
                )
            })?;
            out.upload_id().map(str::to_owned).ok_or_else(|| {
                io::Error::other(format!("{}: no upload id in the answer", url(&s, &key)))
            })
        })?;
        tracing::debug!(object = %self.url(), upload_id = %id, "started a multipart upload");
        self.upload_id = Some(id.clone());
        self.set_started(Some(id.clone()));
        Ok(id)
    }

    /// Collect finished parts without blocking; the first failure is returned.
    fn reap(&mut self, block_until_at_most: usize) -> io::Result<()> {
        while let Some(front) = self.in_flight.front() {
            if self.in_flight.len() <= block_until_at_most && !front.is_finished() {
                break;
            }
            let task = self.in_flight.pop_front().expect("front exists");
            let part = wait(&self.shared.handle, async move {
                task.await
                    .map_err(|e| io::Error::other(format!("part upload task failed: {e}")))?
            })?;
            self.done.push(part);
        }
        Ok(())
    }

    /// Send the filled buffer as the next part.
    fn send_part(&mut self) -> io::Result<()> {
        let part_size = self.part_size()?;
        if u64::try_from(self.next_part).unwrap_or(u64::MAX) > MAX_PARTS {
            let estimate = match (self.shared.config.expected_size, self.hint) {
                (Some(e), _) => format!("--expected-size was {e} bytes"),
                (None, Some(h)) => format!("the engine estimated {h} bytes"),
                (None, None) => "no size estimate was available".to_owned(),
            };
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "{} is larger than 10,000 parts of {part_size} bytes ({} bytes), S3's limit per upload ({estimate}); dump again with --expected-size above the compressed size, or a larger [storage] part_size",
                    self.url(),
                    part_size * MAX_PARTS,
                ),
            ));
        }
        let upload_id = self.create_upload()?;
        // Bounded parts in flight: wait for the oldest before starting another.
        self.reap(self.shared.config.upload_concurrency.max(1) - 1)?;
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(part_size as usize),
        ));
        let number = self.next_part;
        self.next_part += 1;
        let s = self.shared.clone();
        let key = self.key.clone();
        let task = self.shared.handle.spawn(async move {
            let mut req = s
                .client
                .upload_part()
                .bucket(&s.config.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .content_length(data.len() as i64)
                // The SDK retries transient failures of this request with the same bytes.
                .body(ByteStream::from(data));
            if s.config.checksums == Checksums::WhenSupported {
                req = req.checksum_algorithm(ChecksumAlgorithm::Crc32);
            }
            let out = req.send().await.map_err(|e| {
                sdk_error(
                    &format!(
                        "part {number} of {} failed after {MAX_ATTEMPTS} attempts",
                        url(&s, &key)
                    ),
                    e,
                )
            })?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build())
        });
        self.in_flight.push_back(task);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.upload_id.is_none() {
            let body = Bytes::from(std::mem::take(&mut self.buf));
            return put(&self.shared, self.key.clone(), body);
        }
        if !self.buf.is_empty() {
            self.send_part()?;
        }
        self.reap(0)?;
        let upload_id = self.upload_id.clone().expect("upload started");
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(CompletedPart::part_number);
        let s = self.shared.clone();
        let key = self.key.clone();
        wait(&self.shared.handle, async move {
            s.client
                .complete_multipart_upload()
                .bucket(&s.config.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    sdk_error(
                        &format!("cannot complete the multipart upload of {}", url(&s, &key)),
                        e,
                    )
                })
        })?;
        self.upload_id = None;
        self.set_started(None);
        Ok(())
    }

    /// Abort the multipart upload (if any), after cancelling parts in flight.
    fn abort_upload(&mut self) {
        for task in &self.in_flight {
            task.abort();
        }
        let tasks: Vec<PartTask> = self.in_flight.drain(..).collect();
        let _ = wait(&self.shared.handle, async move {
            for t in tasks {
                let _ = t.await;
            }
            Ok(())
        });
        self.set_started(None);
        if let Some(id) = self.upload_id.take() {
            match abort_upload(&self.shared, self.key.clone(), id.clone()) {
                Ok(()) => tracing::info!(object = %self.url(), "aborted the multipart upload"),
                Err(e) => tracing::warn!(
                    object = %self.url(),
                    upload_id = %id,
                    error = %e,
                    "could not abort the multipart upload; remove it with `exporter uploads --abort`"
                ),
            }
        }
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let part_size = self.part_size()? as usize;
        // Send a full buffer only when more data follows, so an object of exactly one part
        // still goes up with a single PUT.
        if self.buf.len() == part_size {
            self.send_part()?;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(part_size);
        }
        let n = data.len().min(part_size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.finished = true;
        if let Err(e) = self.finish() {
            self.abort_upload();
            return Err(e);
        }
        // A length check costs one request and catches a store that assembled the parts
        // wrongly (the SHA-256 in the manifest covers the content; verify reads it back).
        self.settle();
        let storage = S3Storage {
            shared: self.shared.clone(),
        };
        match storage.head(&self.key)? {
            Some(len) if len == self.written as i64 => Ok(()),
            other => Err(io::Error::other(format!(
                "{} holds {} bytes after the upload, {} were sent",
                self.url(),
                other.map_or_else(|| "no".to_owned(), |l| l.to_string()),
                self.written
            ))),
        }
    }

    fn abort(mut self: Box<Self>) {
        self.finished = true;
        self.abort_upload();
    }

    fn set_size_hint(&mut self, bytes: u64) {
        if self.part_size.is_none() {
            self.hint = Some(bytes);
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if !self.finished {
            self.abort_upload();
        }
        self.settle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn part_size_defaults_and_grows_with_the_estimate() {
        assert_eq!(choose_part_size(None, None), Ok(DEFAULT_PART_SIZE));
        assert_eq!(choose_part_size(None, Some(1 << 30)), Ok(DEFAULT_PART_SIZE));
        // 100 GiB over 5,000 planned parts: 20.48 MiB, rounded up to 21 MiB.
        assert_eq!(choose_part_size(None, Some(100 << 30)), Ok(21 * MIB));
        // The planned size always leaves the object under 10,000 parts, with headroom.
        for e in [1u64 << 30, 77 << 30, 500 << 30, 3 << 40, MAX_OBJECT_SIZE] {
            let p = choose_part_size(None, Some(e)).unwrap();
            assert!(e.div_ceil(p) <= PLANNED_PARTS, "{e}: {p}");
            assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p));
            assert_eq!(p % MIB, 0);
        }
    }

    #[test]
    fn part_size_refuses_what_cannot_fit() {
        let e = choose_part_size(None, Some(MAX_OBJECT_SIZE + 1)).unwrap_err();
        assert!(e.contains("5 TiB"), "{e}");
        // 8 MiB parts hold 80,000 MiB; 100 GiB does not fit.
        let e = choose_part_size(Some(8 * MIB), Some(100 << 30)).unwrap_err();
        assert!(e.contains("10,000 parts"), "{e}");
        assert_eq!(choose_part_size(Some(8 * MIB), Some(70 << 30)), Ok(8 * MIB));
        assert!(choose_part_size(Some(MIN_PART_SIZE - 1), None).is_err());
        assert!(choose_part_size(Some(MAX_PART_SIZE + 1), None).is_err());
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(check_bucket_name("exporter-archives.prod").is_ok());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("Upper").is_err());
        assert!(check_bucket_name("-dash").is_err());
        assert!(check_bucket_name("under_score").is_err());
    }

    #[test]
    fn settings_values_parse() {
        assert_eq!(
            Checksums::parse("when_supported"),
            Ok(Checksums::WhenSupported)
        );
        assert!(Checksums::parse("always").is_err());
        assert_eq!(Sse::parse("AES256", None), Ok(Sse::Aes256));
        assert_eq!(
            Sse::parse("aws:kms", Some("k1".into())),
            Ok(Sse::Kms(Some("k1".into())))
        );
        assert!(Sse::parse("AES256", Some("k".into())).is_err());
        assert!(Sse::parse("des", None).is_err());
    }

    /// The 10,000-part limit is enforced by the writer before part 10,001 starts: a writer
    /// whose part counter stands at the limit refuses to send another part without any
    /// network request (the client points at a closed port).
    #[tokio::test(flavor = "multi_thread")]
    async fn part_10001_is_refused_before_any_request() {
        let config = S3Config {
            bucket: "bucket".into(),
            prefix: "p".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            sse: None,
            storage_class: None,
            checksums: Checksums::WhenRequired,
            part_size: Some(MIN_PART_SIZE),
            upload_concurrency: 1,
            expected_size: None,
        };
        let storage = S3Storage::connect(config, Cleanup::new()).await.unwrap();
        let err = tokio::task::spawn_blocking(move || {
            let mut w = S3Writer::new(storage.shared.clone(), "p/r/x.sql.zst".into());
            w.upload_id = Some("already-started".into());
            w.next_part = 10_001;
            w.buf = vec![1; MIN_PART_SIZE as usize];
            let err = w.write(b"more").unwrap_err();
            // Forget the fake upload so Drop does not try to abort it.
            w.upload_id = None;
            err
        })
        .await
        .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let text = err.to_string();
        assert!(text.contains("10,000 parts of 5242880 bytes"), "{text}");
        assert!(text.contains("--expected-size"), "{text}");
    }
}
