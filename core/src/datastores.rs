//! Datastores: where data and artifacts live outside the workspace — S3-compatible object
//! stores (AWS S3, MinIO, Ceph, moto). A datastore is YAML in the shape of Azure ML's datastore
//! YAML (`name`, `type`, `description`) with S3's own fields:
//!
//! ```yaml
//! name: team-bucket
//! type: s3
//! endpoint_url: https://minio.internal:9000   # left out: AWS, https://s3.<region>.amazonaws.com
//! bucket: ml-data
//! prefix: lathe/            # optional
//! region: eu-west-1         # default us-east-1
//! credentials:              # optional; each form names where the secret is, never the secret
//!   access_key_id_env: TEAM_S3_KEY
//!   secret_access_key_env: TEAM_S3_SECRET
//!   # or: profile: team     (a section of ~/.aws/credentials)
//! ```
//!
//! Without `credentials`, AWS's default chain as its SDKs read it: `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`), else the `AWS_PROFILE` (or `default`)
//! profile of the shared credentials file. Requests are signed with SigV4 by rusty-s3 and sent
//! with [`crate::http::agent`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::{Error, Result};

/// A datastore as its YAML says it (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatastoreSpec {
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
    /// `s3`, the one type Lathe speaks.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The service's URL; left out, AWS's regional endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    pub bucket: String,
    /// Keys under this prefix only; `/` is added when missing, so `team` does not take in
    /// `teamX/`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// `path` (`endpoint/bucket/key`, what MinIO and moto expect) or `virtual_host`
    /// (`bucket.endpoint/key`, AWS's); default: virtual_host for AWS, path for an endpoint_url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_style: Option<String>,
    #[serde(default, skip_serializing_if = "CredentialSource::is_default")]
    pub credentials: CredentialSource,
}

/// Where a datastore's credentials are: names of environment variables, or a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl CredentialSource {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn problem(message: impl Into<String>) -> Error {
    Error::Datastore(message.into())
}

/// Fields that would put a secret in the workspace, and the field to use instead.
const SECRET_FIELDS: &[(&str, &str)] = &[
    ("access_key_id", "access_key_id_env"),
    ("secret_access_key", "secret_access_key_env"),
    ("session_token", "session_token_env"),
    ("account_key", "secret_access_key_env"),
    ("sas_token", "session_token_env"),
];

impl DatastoreSpec {
    /// Reads a datastore's YAML, naming the field of every problem.
    ///
    /// # Errors
    /// Not YAML, an unknown field, a secret written into the file, a type other than `s3`, a
    /// bad name, URL, bucket or style.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let value: serde_yaml_ng::Value = crate::yaml::from_str(text).map_err(problem)?;
        if let Some(credentials) = value.get("credentials") {
            for (secret, instead) in SECRET_FIELDS {
                if credentials.get(*secret).is_some() {
                    return Err(problem(format!(
                        "credentials.{secret}: a secret is never stored in the workspace; put it \
                         in an environment variable and name that with credentials.{instead}, \
                         or use credentials.profile"
                    )));
                }
            }
        }
        if value
            .get("credentials")
            .is_some_and(|c| !c.is_mapping() && !c.is_null())
        {
            return Err(problem(
                "credentials: a mapping of access_key_id_env and secret_access_key_env (with \
                 session_token_env), or of profile",
            ));
        }
        // Read again from the text, for errors with their line; a value in an error is
        // redacted, since a misplaced secret is the likeliest wrong value here.
        let mut spec: Self =
            serde_yaml_ng::from_str(text).map_err(|e| problem(redact(&e.to_string())))?;
        if let Some(url) = &mut spec.endpoint_url {
            *url = url.trim().to_owned();
        }
        if !spec.prefix.is_empty() && !spec.prefix.ends_with('/') {
            spec.prefix.push('/');
        }
        spec.check()?;
        Ok(spec)
    }

    /// The spec as YAML, as `datastore show --yaml` writes it.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<()> {
        if let Err(Error::InvalidName { reason, .. }) = crate::assets::validate_name(&self.name) {
            return Err(problem(format!("name: '{}': {reason}", self.name)));
        }
        if self.kind != "s3" {
            return Err(problem(format!(
                "type: '{}' is not a type Lathe speaks; it speaks s3 (S3-compatible stores)",
                self.kind
            )));
        }
        if let Some(why) = bucket_problem(&self.bucket) {
            return Err(problem(format!("bucket: '{}' {why}", self.bucket)));
        }
        if self.prefix.len() > 1024
            || self.prefix.chars().any(char::is_control)
            || self.prefix.starts_with('/')
            || self.prefix.split('/').any(|s| s == ".." || s == ".")
            || self.prefix.trim_end_matches('/').contains("//")
        {
            return Err(problem(
                "prefix: must be a relative key prefix of at most 1024 bytes, without control \
                 characters, empty, '.' or '..' segments",
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(problem(format!(
                "region: '{}' is not a region name (e.g. us-east-1)",
                self.region
            )));
        }
        if let Some(url) = &self.endpoint_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| problem(format!("endpoint_url: '{url}' is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(problem(format!(
                    "endpoint_url: '{url}' must be an http:// or https:// URL with a host"
                )));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(problem(
                    "endpoint_url: holds a user or password; name credentials instead",
                ));
            }
            if !matches!(parsed.path(), "" | "/")
                || parsed.query().is_some()
                || parsed.fragment().is_some()
            {
                return Err(problem(format!(
                    "endpoint_url: '{}' must be the service's address alone; the bucket and \
                     prefix go in bucket and prefix",
                    parsed.origin().ascii_serialization()
                )));
            }
            if self.url_style.as_deref() == Some("virtual_host")
                && matches!(parsed.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
            {
                return Err(problem(
                    "url_style: virtual_host puts the bucket in the host name, which an IP \
                     address endpoint_url cannot have; use path",
                ));
            }
        }
        match self.url_style.as_deref() {
            None | Some("path" | "virtual_host") => {}
            Some(other) => {
                return Err(problem(format!(
                    "url_style: '{other}' is not path or virtual_host"
                )));
            }
        }
        let c = &self.credentials;
        for (field, name) in [
            ("access_key_id_env", &c.access_key_id_env),
            ("secret_access_key_env", &c.secret_access_key_env),
            ("session_token_env", &c.session_token_env),
        ] {
            // Not echoed: a value here that is no variable's name is likely the secret itself.
            if name
                .as_deref()
                .is_some_and(|n| !crate::http::is_variable_name(n))
            {
                return Err(problem(format!(
                    "credentials.{field}: not an environment variable's name (letters, digits \
                     and _, not starting with a digit); it names the variable that holds the \
                     secret, not the secret"
                )));
            }
        }
        if c.profile.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(problem("credentials.profile: empty"));
        }
        if c.session_token_env.is_some() && c.access_key_id_env.is_none() {
            return Err(problem(
                "credentials.session_token_env: goes with access_key_id_env and \
                 secret_access_key_env (a profile holds its own aws_session_token)",
            ));
        }
        if c.access_key_id_env.is_some() != c.secret_access_key_env.is_some() {
            return Err(problem(
                "credentials: access_key_id_env and secret_access_key_env go together",
            ));
        }
        if c.profile.is_some() && c.access_key_id_env.is_some() {
            return Err(problem(
                "credentials: name environment variables or a profile, not both",
            ));
        }
        Ok(())
    }

    /// `s3://bucket/prefix`, as messages name the datastore's place.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The service's URL: `endpoint_url`, else AWS's endpoint for the region.
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region))
    }
}

/// Why `name` is not an S3 bucket name, per AWS's general purpose bucket naming rules.
fn bucket_problem(name: &str) -> Option<&'static str> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        Some("is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')")
    } else if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        Some("must begin and end with a letter or digit")
    } else if name.contains("..") {
        Some("has two periods in a row")
    } else if name.parse::<std::net::Ipv4Addr>().is_ok() {
        Some("is an IP address, which S3 does not take as a bucket name")
    } else if ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        Some("uses a prefix or suffix S3 reserves")
    } else {
        None
    }
}

/// A serde message with its quoted values taken out (`invalid type: string "…"`).
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("string \"") {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        let after = &rest[start + "string \"".len()..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// A datastore as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Datastore {
    #[serde(flatten)]
    pub spec: DatastoreSpec,
    pub created_at_ms: i64,
}

/// The `datastores` table (migration 19).
const DATASTORES: crate::specs::Specs = crate::specs::Specs {
    table: "datastores",
    what: "datastore",
    update: "lathe datastore update -f",
    problem: Error::Datastore,
};

/// Stores a datastore (`replace`: over one of the same name).
///
/// # Errors
/// The name is taken and `replace` is false; the store cannot be written.
pub fn put(store: &Store, spec: &DatastoreSpec, replace: bool) -> Result<Datastore> {
    let created_at_ms = DATASTORES.put(store, &spec.name, spec, replace)?;
    Ok(Datastore {
        spec: spec.clone(),
        created_at_ms,
    })
}

/// The datastores, by name.
///
/// # Errors
/// The store cannot be read.
pub fn list(store: &Store) -> Result<Vec<Datastore>> {
    Ok(DATASTORES
        .list(store)?
        .into_iter()
        .map(|(spec, created_at_ms)| Datastore {
            spec,
            created_at_ms,
        })
        .collect())
}

/// One datastore.
///
/// # Errors
/// No datastore of that name (the nearest names suggested).
pub fn get(store: &Store, name: &str) -> Result<Datastore> {
    let (spec, created_at_ms) = DATASTORES.get(store, name)?;
    Ok(Datastore {
        spec,
        created_at_ms,
    })
}

/// Removes a datastore (nothing in its bucket is touched).
///
/// # Errors
/// No datastore of that name.
pub fn delete(store: &Store, name: &str) -> Result<()> {
    DATASTORES.delete(store, name)
}

/// What [`check`] found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub endpoint: String,
    pub location: String,
    /// Where the credentials came from (a variable's or a profile's name, never a secret).
    pub credentials: String,
    /// Whether any object is under the prefix.
    pub has_objects: bool,
    /// The round trip of the listing, in milliseconds.
    pub latency_ms: u64,
}

/// Checks that a datastore can be used: its credentials resolve, its endpoint answers within
/// seconds, its bucket exists and the credentials may list the prefix.
///
/// # Errors
/// Each of those, by name: the variable or profile missing, the endpoint unreachable, the
/// bucket missing, the credentials refused.
pub fn check(store: &Store, name: &str) -> Result<CheckReport> {
    let datastore = get(store, name)?;
    let client = s3::Client::new(&datastore.spec)?;
    let started = std::time::Instant::now();
    let listed = client.list(&datastore.spec.prefix, None, 1)?;
    Ok(CheckReport {
        name: datastore.spec.name.clone(),
        endpoint: datastore.spec.endpoint(),
        location: datastore.spec.location(),
        credentials: client.credentials_source().to_owned(),
        has_objects: !listed.keys.is_empty(),
        latency_ms: started.elapsed().as_millis() as u64,
    })
}

/// How long a request to an object store may take before it is named unreachable.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub mod fetch;
pub mod s3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_redacted_from_type_errors() {
        assert_eq!(
            redact(
                r#"credentials: invalid type: string "AKIA:wJalr", expected struct X at line 3"#
            ),
            "credentials: invalid type: a string, expected struct X at line 3"
        );
        assert_eq!(redact("missing field `name`"), "missing field `name`");
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for good in ["lathe-test", "a.b.c", "123", "my-bucket-2"] {
            assert_eq!(bucket_problem(good), None, "{good}");
        }
        for bad in [
            "ab",
            "-lathe",
            "lathe-",
            "lathe..test",
            "192.168.1.1",
            "xn--lathe",
            "lathe-s3alias",
            "sthree-x",
            "Upper",
        ] {
            assert!(bucket_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn a_prefix_gets_its_slash_and_an_endpoint_is_trimmed() {
        let spec = DatastoreSpec::from_yaml(
            "name: t\ntype: s3\nbucket: lathe-test\nprefix: team\nendpoint_url: 'http://h:9 '\n",
        )
        .unwrap();
        assert_eq!(spec.prefix, "team/");
        assert_eq!(spec.endpoint_url.as_deref(), Some("http://h:9"));
    }
}
