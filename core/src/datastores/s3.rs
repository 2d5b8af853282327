//! Requests to an S3-compatible store: signed (SigV4) by rusty-s3, sent by
//! [`crate::http::agent`]; S3's XML errors (`<Error><Code>…`) turned into messages that name
//! the bucket, the endpoint and where the credentials came from — never a secret.

use std::io::{Read, Seek};
use std::path::Path;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::{DatastoreSpec, TIMEOUT, problem};
use crate::Result;
use crate::jobs::Progress;

/// How long a signed request stays valid: long enough for a slow upload to start.
const SIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// A client for one datastore's bucket.
pub struct Client {
    bucket: Bucket,
    credentials: Credentials,
    /// Where the credentials came from, for messages.
    source: String,
    endpoint: String,
    /// For small requests: an answer within [`TIMEOUT`] or a failure.
    agent: ureq::Agent,
    /// For objects' bytes, which may take minutes: only a stall is a failure.
    transfer: ureq::Agent,
}

/// A part of a multipart upload that the store holds.
pub struct Part {
    /// From 1.
    pub number: u16,
    pub etag: String,
    pub size: u64,
}

/// An object as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    /// Changes whenever the object is written again.
    pub etag: String,
}

/// One page of a listing.
pub struct Listing {
    pub keys: Vec<Object>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

impl Client {
    /// A client for `spec`, its credentials resolved now.
    ///
    /// # Errors
    /// A credential variable or profile that is not there, an endpoint that cannot address
    /// the bucket.
    pub fn new(spec: &DatastoreSpec) -> Result<Self> {
        let (credentials, source) = resolve(spec)?;
        let endpoint = spec.endpoint();
        let url = url::Url::parse(&endpoint)
            .map_err(|e| problem(format!("endpoint_url: '{endpoint}' is not a URL ({e})")))?;
        let style = match spec.url_style.as_deref() {
            Some("path") => UrlStyle::Path,
            Some(_) => UrlStyle::VirtualHost,
            None if spec.endpoint_url.is_some() => UrlStyle::Path,
            None => UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(url, style, spec.bucket.clone(), spec.region.clone())
            .map_err(|e| problem(format!("bucket '{}' at {endpoint}: {e}", spec.bucket)))?;
        Ok(Self {
            bucket,
            credentials,
            source,
            endpoint,
            agent: crate::http::agent(TIMEOUT),
            transfer: crate::http::transfer_agent(TIMEOUT),
        })
    }

    /// Where the credentials came from (`$VAR` or `profile NAME`).
    pub fn credentials_source(&self) -> &str {
        &self.source
    }

    /// Up to `max` keys under `prefix` (ListObjectsV2), from `after` (a page's `next`).
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listing> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        if !prefix.is_empty() {
            action.with_prefix(prefix);
        }
        if let Some(token) = after {
            action.with_continuation_token(token);
        }
        action.with_max_keys(max);
        let url = action.sign(SIGNED_FOR);
        let body = self.send("list", || self.agent.get(url.as_str()).call())?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body).map_err(|e| {
            problem(format!(
                "{}: the listing of bucket '{}' did not read ({e}); is endpoint_url an S3 API?",
                self.endpoint,
                self.bucket.name()
            ))
        })?;
        Ok(Listing {
            keys: parsed
                .contents
                .into_iter()
                .map(|c| Object {
                    key: c.key,
                    size: c.size.unwrap_or(0),
                    etag: c.etag.unwrap_or_default(),
                })
                .collect(),
            next: parsed.next_continuation_token,
        })
    }

    /// Every object under `prefix`, page by page.
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn list_all(&self, prefix: &str) -> Result<Vec<Object>> {
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list(prefix, after.as_deref(), 1000)?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Writes `bytes` as the object `key` (PutObject), replacing what was there; S3 makes the
    /// object appear whole or not at all. The new object's ETag.
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<String> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let response = self.answer("write to", || self.transfer.put(url.as_str()).send(bytes))?;
        Ok(etag(&response))
    }

    /// Writes `len` bytes of the file at `path` from `offset` as the object `key`; `progress`
    /// counts the bytes as they go, and its cancel stops the request.
    ///
    /// # Errors
    /// The file cannot be read; see [`Client::failed`].
    pub fn put_file(
        &self,
        key: &str,
        (path, offset, len): (&Path, u64, u64),
        progress: &Progress,
    ) -> Result<()> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        self.put_section(&url, (path, offset, len), progress)
            .map(drop)
    }

    /// PUTs `len` bytes of `path` from `offset` to the signed `url` (an object or a part),
    /// counted into `progress` as they go.
    fn put_section(
        &self,
        url: &url::Url,
        (path, offset, len): (&Path, u64, u64),
        progress: &Progress,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.answer("write to", || {
            self.transfer
                .put(url.as_str())
                .header("content-length", len)
                .send(ureq::SendBody::from_reader(&mut section(
                    path, offset, len, progress,
                )?))
        })
    }

    /// Streams the object `key` (its bytes from `range`, when given) into `out`; the number of
    /// bytes written.
    ///
    /// # Errors
    /// No such object (named); see [`Client::failed`]; `out` refused a write.
    pub fn get_into(
        &self,
        key: &str,
        range: Option<(u64, u64)>,
        out: &mut dyn std::io::Write,
    ) -> Result<u64> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let mut response = self.answer("read from", || {
            let mut request = self.transfer.get(url.as_str());
            if let Some((start, len)) = range {
                request = request.header("range", format!("bytes={start}-{}", start + len - 1));
            }
            request.call()
        })?;
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, out).map_err(|e| {
            problem(format!(
                "reading s3://{}/{key} from {} broke off ({e})",
                self.bucket.name(),
                self.endpoint
            ))
        })
    }

    /// The object `key` in memory, up to `limit` bytes.
    ///
    /// # Errors
    /// As [`Client::get_into`]; an object over `limit`.
    pub fn get_bytes(&self, key: &str, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut capped = Capped {
            out: &mut out,
            left: limit,
        };
        self.get_into(key, None, &mut capped).map_err(|e| {
            if capped.left == 0 {
                problem(format!(
                    "s3://{}/{key} is over {} bytes",
                    self.bucket.name(),
                    limit
                ))
            } else {
                e
            }
        })?;
        Ok(out)
    }

    /// Starts a multipart upload of `key`; its upload id.
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn start_multipart(&self, key: &str) -> Result<String> {
        // rusty-s3's CreateMultipartUpload sends `?uploads=1`; S3's documented form is
        // `?uploads` (empty), which moto requires, so the URL is signed here with that query.
        let c = &self.credentials;
        let url = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            rusty_s3::Method::Post,
            self.bucket.object_url(key),
            c.key(),
            c.secret(),
            c.token(),
            self.bucket.region(),
            SIGNED_FOR.as_secs(),
            std::iter::once(("uploads", "")),
            std::iter::empty(),
        );
        let body = self.send("write to", || self.agent.post(url.as_str()).send_empty())?;
        let parsed = rusty_s3::actions::CreateMultipartUpload::parse_response(&body)
            .map_err(|e| self.unreadable("a multipart upload's start", e))?;
        Ok(parsed.upload_id().to_owned())
    }

    /// Uploads part `number` (from 1) of an upload: `len` bytes of `path` from `offset`. The
    /// part's ETag, which [`Client::finish_multipart`] needs. `progress` counts the bytes as
    /// they go, and its cancel stops the request.
    ///
    /// # Errors
    /// The file cannot be read; see [`Client::failed`].
    pub fn put_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        (path, offset, len): (&Path, u64, u64),
        progress: &Progress,
    ) -> Result<String> {
        let url = self
            .bucket
            .upload_part(Some(&self.credentials), key, number, upload_id)
            .sign(SIGNED_FOR);
        let response = self.put_section(&url, (path, offset, len), progress)?;
        Some(etag(&response))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                problem(format!(
                    "{} gave no ETag for part {number} of s3://{}/{key}",
                    self.endpoint,
                    self.bucket.name()
                ))
            })
    }

    /// The parts an upload already holds; `None` when the upload is gone (finished, aborted
    /// or expired), so it is started again.
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn uploaded_parts(&self, key: &str, upload_id: &str) -> Result<Option<Vec<Part>>> {
        let mut parts = Vec::new();
        let mut marker = None;
        loop {
            let mut action = self
                .bucket
                .list_parts(Some(&self.credentials), key, upload_id);
            if let Some(marker) = marker {
                action.set_part_number_marker(marker);
            }
            let url = action.sign(SIGNED_FOR);
            let body = match self.send("list", || self.agent.get(url.as_str()).call()) {
                Err(crate::Error::Datastore(m)) if m.contains("NoSuchUpload") => return Ok(None),
                other => other?,
            };
            let page = rusty_s3::actions::ListParts::parse_response(&body)
                .map_err(|e| self.unreadable("a listing of parts", e))?;
            parts.extend(page.parts.into_iter().map(|p| Part {
                number: p.number,
                etag: p.etag,
                size: p.size,
            }));
            // rusty-s3 gives a marker only when the listing is truncated.
            match page.next_part_number_marker {
                Some(next) => marker = Some(next),
                None => return Ok(Some(parts)),
            }
        }
    }

    /// Finishes an upload from its parts' ETags in order: the object appears whole.
    ///
    /// # Errors
    /// See [`Client::failed`].
    pub fn finish_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGNED_FOR);
        let body = action.body();
        let answer = self.send("write to", || self.transfer.post(url.as_str()).send(&body))?;
        // S3 may answer 200 with an error inside, when it fails after starting to answer.
        if answer.contains("<Error>") {
            return Err(self.failed(200, &answer, "write to"));
        }
        Ok(())
    }

    fn unreadable(&self, what: &str, e: impl std::fmt::Display) -> crate::Error {
        problem(format!(
            "{}: {what} in bucket '{}' did not read ({e}); is endpoint_url an S3 API?",
            self.endpoint,
            self.bucket.name()
        ))
    }

    /// A response's body when it succeeded; else what went wrong, in words.
    fn send(
        &self,
        doing: &str,
        make: impl Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String> {
        let mut response = self.answer(doing, make)?;
        Ok(response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default())
    }

    /// The response of the request `make` sends, when it succeeded, its body unread; else what
    /// went wrong, in words. A server error (500, 502, 503, 504), a throttle (429) or a
    /// connection that broke off is tried again, after 0.25, 1 and 4 seconds, as S3's
    /// documentation asks of clients; every request here may be sent twice.
    fn answer(
        &self,
        doing: &str,
        make: impl Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        const WAITS: [u64; 3] = [250, 1000, 4000];
        let mut attempt = 0;
        loop {
            let sent = make();
            let again = match &sent {
                Ok(r) => matches!(r.status().as_u16(), 429 | 500 | 502 | 503 | 504),
                Err(e) => broke_off(e),
            };
            if !again || attempt == WAITS.len() {
                return self.checked(sent, doing, attempt + 1);
            }
            std::thread::sleep(std::time::Duration::from_millis(WAITS[attempt]));
            attempt += 1;
        }
    }

    /// A response that succeeded; else what went wrong, in words (`tries`: how many times the
    /// request was sent).
    fn checked(
        &self,
        response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        doing: &str,
        tries: usize,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut response = response.map_err(|e| {
            let failure = crate::http::failure(&e);
            if broke_off(&e) || matches!(e, ureq::Error::Timeout(_)) {
                let reason = match &e {
                    ureq::Error::Io(io) => io.kind().to_string(),
                    _ => failure.reason,
                };
                problem(format!(
                    "the connection to {} broke off while asking to {doing} bucket '{}' \
                     ({reason}, {tries} tries); run the command again to go on from where it \
                     stopped",
                    self.endpoint,
                    self.bucket.name(),
                ))
            } else {
                problem(format!(
                    "cannot reach {} ({}); is the endpoint_url right and the service running?",
                    self.endpoint, failure.reason
                ))
            }
        })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let region = response
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        if let Some(region) = region.filter(|_| (300..400).contains(&status)) {
            return Err(problem(format!(
                "bucket '{}' is in region {region}; set region: {region}",
                self.bucket.name()
            )));
        }
        if status >= 500 && element(&body, "Code").is_none() {
            return Err(problem(format!(
                "{} answered {status} (a server error) to {doing} bucket '{}', {tries} times",
                self.endpoint,
                self.bucket.name()
            )));
        }
        Err(self.failed(status, &body, doing))
    }

    /// S3's error answer in words: a missing bucket, refused credentials (naming where they
    /// came from), or the code and message S3 gave.
    fn failed(&self, status: u16, body: &str, doing: &str) -> crate::Error {
        let code = element(body, "Code").unwrap_or_default();
        let message = element(body, "Message").unwrap_or_default();
        let bucket = self.bucket.name();
        match code.as_str() {
            "NoSuchBucket" => problem(format!(
                "bucket '{bucket}' does not exist at {}",
                self.endpoint
            )),
            "NoSuchKey" => problem(format!(
                "there is no object {} in bucket '{bucket}' at {}",
                element(body, "Key").unwrap_or_default(),
                self.endpoint
            )),
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "InvalidToken"
            | "ExpiredToken" => problem(format!(
                "{} refused the credentials from {} to {doing} bucket '{bucket}' ({code}{})",
                self.endpoint,
                self.source,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )),
            "" => problem(format!(
                "{} answered {status} to {doing} bucket '{bucket}', without an S3 error; is \
                 endpoint_url an S3 API?",
                self.endpoint
            )),
            _ => problem(format!(
                "{} answered {status} to {doing} bucket '{bucket}' ({code}: {message})",
                self.endpoint
            )),
        }
    }
}

/// `len` bytes of the file at `path` from `offset`, as a request body that counts its bytes
/// into `progress` and stops when it is cancelled.
fn section<'a>(
    path: &Path,
    offset: u64,
    len: u64,
    progress: &'a Progress,
) -> std::io::Result<Counted<'a, std::io::Take<std::fs::File>>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    Ok(Counted {
        inner: file.take(len),
        progress,
    })
}

/// A body that counts what is read from it and fails once its progress is cancelled.
struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A response's ETag header (empty when it has none).
fn etag(response: &ureq::http::Response<ureq::Body>) -> String {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Whether a request failed because its connection broke off after it was made (not a
/// refused connection or a stall): worth sending again.
fn broke_off(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(e, ureq::Error::Io(io)
        if matches!(io.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof))
}

/// A writer that takes up to `left` bytes and then refuses.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    left: u64,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.left = 0;
            return Err(std::io::Error::other("over the limit"));
        }
        self.left -= buf.len() as u64;
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn credentials(key: String, secret: String, token: Option<String>) -> Credentials {
    match token {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    }
}

/// The text of the first `<name>…</name>` in an XML answer.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    // Control characters out: the text is the server's, and goes to a terminal.
    Some(
        xml[start..end]
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .collect(),
    )
}

/// The datastore's credentials and where they came from (see the module docs of
/// [`super`] for the order).
fn resolve(spec: &DatastoreSpec) -> Result<(Credentials, String)> {
    let c = &spec.credentials;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let (Some(key_var), Some(secret_var)) = (&c.access_key_id_env, &c.secret_access_key_env) {
        let missing = |v: &str| {
            problem(format!(
                "datastore '{}': the environment variable {v} (named by its credentials) is not set",
                spec.name
            ))
        };
        let key = var(key_var).ok_or_else(|| missing(key_var))?;
        let secret = var(secret_var).ok_or_else(|| missing(secret_var))?;
        let token = match &c.session_token_env {
            Some(v) => Some(var(v).ok_or_else(|| missing(v))?),
            None => None,
        };
        return Ok((credentials(key, secret, token), format!("${key_var}")));
    }
    if let Some(profile) = &c.profile {
        return from_profile(profile)
            .map_err(|why| problem(format!("datastore '{}': {why}", spec.name)));
    }
    if let Some(credentials) = Credentials::from_env() {
        return Ok((credentials, "$AWS_ACCESS_KEY_ID".into()));
    }
    for (set, unset) in [
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ] {
        if var(set).is_some() && var(unset).is_none() {
            return Err(problem(format!(
                "datastore '{}': {set} is set but {unset} is not",
                spec.name
            )));
        }
    }
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    from_profile(&profile).map_err(|why| {
        problem(format!(
            "datastore '{}' has no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are \
             not set, and {why}; name them with credentials.access_key_id_env and \
             credentials.secret_access_key_env, or credentials.profile",
            spec.name
        ))
    })
}

/// A profile of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`): INI sections of `aws_access_key_id`, `aws_secret_access_key` and
/// `aws_session_token`, as the AWS CLI writes them. The format is a handful of lines of INI;
/// no crate reads only this.
fn from_profile(profile: &str) -> std::result::Result<(Credentials, String), String> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws/credentials"))
        })
        .ok_or("there is no home folder to find ~/.aws/credentials in")?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "the credentials file {} cannot be read ({e})",
            path.display()
        )
    })?;
    let mut sections: Vec<String> = Vec::new();
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(name.trim().to_owned());
            continue;
        }
        if sections.last().map(String::as_str) != Some(profile) {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
            match k.trim() {
                "aws_access_key_id" => key = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    if !sections.iter().any(|s| s == profile) {
        return Err(format!(
            "there is no profile '{profile}' in {} (it has: {})",
            path.display(),
            if sections.is_empty() {
                "none".to_owned()
            } else {
                sections.join(", ")
            }
        ));
    }
    match (key, secret) {
        (Some(key), Some(secret)) => Ok((
            credentials(key, secret, token),
            format!("profile '{profile}' of {}", path.display()),
        )),
        _ => Err(format!(
            "profile '{profile}' in {} has no aws_access_key_id and aws_secret_access_key",
            path.display()
        )),
    }
}
