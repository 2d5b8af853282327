//! Outbound HTTP: one client setup for every call that leaves Lathe (webhooks today), so https
//! trusts the same roots everywhere and failures are named without leaking URLs.

use std::sync::OnceLock;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// An agent that returns every status to its caller (none is an error), gives up after
/// `timeout` in all, speaks https (rustls) trusting [`roots`], and follows no redirect: a
/// redirect is answered to the caller (S3 names the bucket's region in one), and a token is
/// never carried to another host.
pub fn agent(timeout: Duration) -> ureq::Agent {
    settings().timeout_global(Some(timeout)).build().into()
}

/// What every agent here shares: statuses returned, no redirect followed, [`roots`] trusted.
fn settings() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(TlsConfig::builder().root_certs(roots().clone()).build())
}

/// An agent for transfers of any size: `connect` to reach the server, then only a stall — no
/// byte read or written for a minute — is a failure, so a large upload is never cut off for
/// taking long, and a dead connection is named within a minute rather than hanging.
pub fn transfer_agent(connect: Duration) -> ureq::Agent {
    const STALL: Duration = Duration::from_secs(60);
    settings()
        .timeout_connect(Some(connect))
        .timeout_resolve(Some(connect))
        .timeout_per_read(Some(STALL))
        .timeout_per_write(Some(STALL))
        .build()
        .into()
}

/// The roots https trusts: the platform's — on Linux the system bundle, or the PEM files named
/// by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, as OpenSSL, curl and Python read them
/// (rustls-native-certs) — else Mozilla's roots built in (webpki-roots), for a system with
/// none. Read once per process.
pub fn roots() -> &'static RootCerts {
    static ROOTS: OnceLock<RootCerts> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            RootCerts::WebPki
        } else {
            found
                .certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>()
                .into()
        }
    })
}

/// Why a request got no answer, in words that never hold its URL (paths and queries of
/// webhook URLs often carry secrets; ureq's own messages may quote them), and whether asking
/// again could help: a certificate refused now is refused on every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub lasting: bool,
}

/// The [`Failure`] behind a ureq error.
pub fn failure(e: &ureq::Error) -> Failure {
    let passing = |reason: &str| Failure {
        reason: reason.to_owned(),
        lasting: false,
    };
    match e {
        ureq::Error::Timeout(_) => passing("timed out"),
        ureq::Error::HostNotFound => passing("host not found"),
        ureq::Error::Rustls(tls) => tls_failure(tls),
        // A handshake that fails inside the stream comes back as an io error around rustls'.
        ureq::Error::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            Some(tls) => tls_failure(tls),
            // The system resolver's failure reaches ureq as a plain io error.
            None if io.to_string().contains("failed to lookup address") => {
                passing("host not found")
            }
            None => passing("connection failed"),
        },
        _ => passing("request failed"),
    }
}

/// rustls' reason (it names the certificate problem, never the URL) and what to do about it.
fn tls_failure(reason: &rustls::Error) -> Failure {
    let text = reason.to_string();
    let reason = if text.contains("CaUsedAsEndEntity") {
        "TLS failed: the server's certificate is a CA's (self-signed with CA:true); sign a server \
         certificate with that CA and trust the CA with SSL_CERT_FILE"
            .to_owned()
    } else {
        format!("TLS failed: {text}; a private CA's certificate can be trusted with SSL_CERT_FILE")
    };
    Failure {
        reason,
        lasting: true,
    }
}

/// Whether `name` can name an environment variable holding a token or key (letters, digits
/// and `_`, not starting with a digit): what a pasted secret usually is not.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
