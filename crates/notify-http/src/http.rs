//! The HTTP side of a target: a reqwest client with rustls (TLS 1.2 or later), no
//! redirects, the configured proxy, pool and timeout; and one POST per attempt.

use crate::config::NotificationTargetConfig;
use crate::retry::{parse_retry_after, Failure};
use crate::signing::Signer;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, ETAG, RETRY_AFTER};
use std::time::{Duration, Instant};
use worklane_domain::Timestamp;
use worklane_store::redact_url;

/// Why a target's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read tls_ca_file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("http client: {0}")]
    Build(#[from] reqwest::Error),
    #[error("http_custom_headers: {0:?} is not a valid header")]
    Header(String),
}

/// Builds the client of a target.
pub fn build_client(cfg: &NotificationTargetConfig) -> Result<reqwest::Client, ClientError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (k, v) in &cfg.http_custom_headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| ClientError::Header(k.clone()))?;
        let mut value = HeaderValue::from_str(v).map_err(|_| ClientError::Header(k.clone()))?;
        // Keeps the value out of reqwest's own debug output.
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        // Seed 004: redirections are not supported; a 3xx is the answer.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.http_response_timeout)
        .pool_max_idle_per_host(cfg.http_connection_pool_size)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("Worklane/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers);
    b = match &cfg.http_proxy {
        Some(p) => b.proxy(reqwest::Proxy::all(p)?),
        // Only the configured proxy is used, never one from the environment.
        None => b.no_proxy(),
    };
    if let Some(path) = &cfg.tls_ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b.build()?)
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status: Option<u16>,
    pub latency: Duration,
    pub failure: Option<Failure>,
    /// Why it failed, for the attempt record.
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    pub attempted_at: Timestamp,
}

/// Sends a target's requests.
#[derive(Debug, Clone)]
pub struct Poster {
    pub client: reqwest::Client,
    /// Parsed once: parsing it for every request costs as much as a tenth of a POST.
    pub uri: reqwest::Url,
    pub signer: Signer,
    pub debug: bool,
    pub target: String,
    /// When each attempt was made, on the engine's clock.
    pub clock: worklane_engine::SharedClock,
}

impl Poster {
    /// POSTs a notification's body, byte for byte, with its GUID in `ETag`. `kind` and
    /// `id` name it in debug logs (`delivery` and its id, or `seq` while not stored).
    pub async fn post(&self, guid: &str, body: Bytes, kind: &'static str, id: i64) -> Sent {
        let attempted_at = self.clock.now();
        let mut req = self.client.post(self.uri.clone()).body(body.clone());
        if let Ok(etag) = HeaderValue::from_str(guid) {
            req = req.header(ETAG, etag);
        }
        if self.signer.is_enabled() {
            // Signed at send time, so a receiver's replay window holds for late retries;
            // the body and its own timestamp stay those of the notification.
            let ts = attempted_at.as_second();
            if let Some(sig) = self.signer.signature(guid, ts, &body) {
                req = req
                    .header("webhook-id", guid)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig);
            }
        }
        if self.debug {
            tracing::info!(
                target: "worklane::notify::debug",
                notification_target = %self.target,
                uri = %redact_url(self.uri.as_str()),
                kind,
                id,
                guid = %guid,
                body = %String::from_utf8_lossy(&body),
                "notification request"
            );
        }
        let started = Instant::now();
        let result = req.send().await;
        let (status, failure, error, retry_after) = match result {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    // An HTTP date is measured from the attempt, on the engine's clock
                    // like the retry time it decides.
                    .and_then(|v| parse_retry_after(v, attempted_at.into()));
                let headers = self.debug.then(|| format!("{:?}", resp.headers()));
                // Reading the answer lets the connection go back to the pool.
                let body = resp.bytes().await;
                if self.debug {
                    tracing::info!(
                        target: "worklane::notify::debug",
                        notification_target = %self.target,
                        kind,
                        id,
                        status = status.as_u16(),
                        headers = headers.unwrap_or_default(),
                        body = %body.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                        "notification response"
                    );
                }
                if status.is_success() {
                    (Some(status.as_u16()), None, None, None)
                } else {
                    let code = status.as_u16();
                    (
                        Some(code),
                        Some(Failure::Status(code)),
                        Some(status.to_string()),
                        retry_after,
                    )
                }
            }
            Err(e) => {
                let failure = if e.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Connect
                };

                let msg = error_chain(e);
                if self.debug {
                    tracing::info!(
                        target: "worklane::notify::debug",
                        notification_target = %self.target,
                        kind,
                        id,
                        error = %msg,
                        "notification failed"
                    );
                }
                (None, Some(failure), Some(msg), None)
            }
        };
        Sent {
            status,
            latency: started.elapsed(),
            failure,
            error,
            retry_after,
            attempted_at,
        }
    }
}

/// An error with its causes, without the URL (its query could carry a token).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
