//! Requests to an S3-compatible store: signed (SigV4) by rusty-s3, sent by
//! [`crate::http::agent`]; S3's XML errors (`<Error><Code>…`) turned into messages that name
//! the bucket, the endpoint and where the credentials came from — never a secret.

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::{DatastoreSpec, TIMEOUT, problem};
use crate::Result;

/// How long a signed request stays valid: long enough for a slow upload to start.
const SIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);

/// A client for one datastore's bucket.
pub struct Client {
    bucket: Bucket,
    credentials: Credentials,
    /// Where the credentials came from, for messages.
    source: String,
    endpoint: String,
    agent: ureq::Agent,
}

/// One page of a listing.
pub struct Listing {
    pub keys: Vec<(String, u64)>,
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
        let body = self.send(self.agent.get(url.as_str()).call(), "list")?;
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
                .map(|c| (c.key, c.size.unwrap_or(0)))
                .collect(),
            next: parsed.next_continuation_token,
        })
    }

    /// A response's body when it succeeded; else what went wrong, in words.
    fn send(
        &self,
        response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        doing: &str,
    ) -> Result<String> {
        let mut response = response.map_err(|e| {
            let failure = crate::http::failure(&e);
            problem(format!(
                "cannot reach {} ({}); is the endpoint_url right and the service running?",
                self.endpoint, failure.reason
            ))
        })?;
        let status = response.status().as_u16();
        let region = response
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default();
        if (200..300).contains(&status) {
            return Ok(body);
        }
        if let Some(region) = region.filter(|_| (300..400).contains(&status)) {
            return Err(problem(format!(
                "bucket '{}' is in region {region}; set region: {region}",
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
