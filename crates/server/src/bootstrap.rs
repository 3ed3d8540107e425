//! A new installation's first start (SPEC 10): one admin API token, written once to a
//! file only its owner may read, so the first caller can authenticate.

use anyhow::Context;
use std::io::Write;
use std::path::Path;
use worklane_api::auth::{new_token, token_hint, token_sha256, BOOTSTRAP_TOKEN};
use worklane_domain::Role;
use worklane_engine::Engine;
use worklane_store::TokenRecord;

/// Makes the admin token when the store has never had one, and writes it to `file`.
///
/// The secret is written (to a file beside `file`) before the token is stored, and moved
/// into place after: a crash in between leaves a file nobody needs, never a token nobody
/// has. When another node sharing the store makes its token first, this one writes
/// nothing. Returns whether a token was made.
pub async fn admin_token(engine: &Engine, file: &Path) -> anyhow::Result<bool> {
    let access = engine.access();
    if access.count_tokens().await? > 0 {
        return Ok(false);
    }
    let secret = new_token();
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let tmp = std::path::PathBuf::from(tmp);
    write_private(&tmp, &secret)
        .with_context(|| format!("writing the first admin token to {}", tmp.display()))?;
    let record = TokenRecord {
        name: BOOTSTRAP_TOKEN.to_owned(),
        hint: token_hint(&secret),
        role: Role::Admin,
        agent: None,
        capture_point_id: None,
        created_at: engine.now(),
        last_used_at: None,
        revoked_at: None,
    };
    let stored = access.insert_token(&record, &token_sha256(&secret)).await;
    if !matches!(stored, Ok(true)) {
        let _ = std::fs::remove_file(&tmp);
    }
    if !stored? {
        tracing::info!("another node made the first admin token");
        return Ok(false);
    }
    std::fs::rename(&tmp, file).with_context(|| {
        format!(
            "moving the first admin token from {} to {} (it is valid: keep the first file)",
            tmp.display(),
            file.display()
        )
    })?;
    tracing::warn!(
        file = %file.display(),
        token = BOOTSTRAP_TOKEN,
        "first start: an admin API token was made and written to this file, readable by its owner only; \
         the CLI reads it from there, or send it as `Authorization: Bearer <token>`"
    );
    Ok(true)
}

/// Writes `secret` to a new file that only its owner may read.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
