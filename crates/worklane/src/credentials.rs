//! The credential a client command sends: `--token`, `WORKLANE_TOKEN`, or the admin token
//! a local server's first start wrote to `worklane-admin.token` in its working directory.

use crate::exit::Failure;
use clap::Args;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::time::Duration;
use worklane_api::auth::DEFAULT_TOKEN_FILE;

/// The server a client command talks to, and the credential it sends.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "WORKLANE_SERVER",
        default_value = "http://127.0.0.1:8035"
    )]
    pub server: String,
    #[command(flatten)]
    pub auth: TokenArg,
}

/// `--token`. Its `Debug` hides the value.
#[derive(Args, Clone, Default)]
pub struct TokenArg {
    /// An API token, sent as `Authorization: Bearer <token>`. Without one, the token in
    /// ./worklane-admin.token is sent when that file exists (a server's first start writes
    /// it in its working directory).
    #[arg(long, global = true, env = "WORKLANE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl std::fmt::Debug for TokenArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenArg")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl TokenArg {
    /// The token to send, if any.
    pub fn resolve(&self) -> Result<Option<String>, Failure> {
        if let Some(t) = &self.token {
            return Ok(Some(t.trim().to_owned()));
        }
        match std::fs::read_to_string(DEFAULT_TOKEN_FILE) {
            Ok(t) => Ok(Some(t.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::usage(format!(
                "cannot read ./{DEFAULT_TOKEN_FILE}: {e} (give --token or WORKLANE_TOKEN)"
            ))),
        }
    }

    /// An HTTP client that sends the token.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, Failure> {
        let headers = match self.resolve()? {
            Some(t) => bearer(&t)?,
            None => HeaderMap::new(),
        };
        reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| Failure::unreachable(e.to_string()))
    }
}

/// The `Authorization` header of a token, marked sensitive (kept out of debug output).
pub fn bearer(token: &str) -> Result<HeaderMap, Failure> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Failure::usage("the token has characters a header cannot carry"))?;
    v.set_sensitive(true);
    Ok(HeaderMap::from_iter([(AUTHORIZATION, v)]))
}
