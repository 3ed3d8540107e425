//! Optional request signing by the Standard Webhooks convention
//! (<https://www.standardwebhooks.com>): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one signature per
//! configured secret so receivers can rotate secrets without losing messages.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Why a signing secret was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret #{0} must start with whsec_")]
    Prefix(usize),
    #[error("secret #{0} is not base64 after whsec_")]
    Base64(usize),
    #[error("secret #{0} is shorter than 16 bytes")]
    Short(usize),
}

/// Signs requests with every configured secret. The keys never appear in Debug output.
#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// Decodes `whsec_<base64>` secrets.
    pub fn new(secrets: &[String]) -> Result<Self, SecretError> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let b64 = s
                    .trim()
                    .strip_prefix("whsec_")
                    .ok_or(SecretError::Prefix(i + 1))?;
                let key = STANDARD
                    .decode(b64)
                    .map_err(|_| SecretError::Base64(i + 1))?;
                if key.len() < 16 {
                    return Err(SecretError::Short(i + 1));
                }
                Ok(key)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Whether any secret is configured.
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The `webhook-signature` header value for a message, or None when signing is off.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        if self.keys.is_empty() {
            return None;
        }
        let sigs: Vec<String> = self
            .keys
            .iter()
            .map(|key| {
                // HMAC accepts keys of any length.
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(msg_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            })
            .collect();
        Some(sigs.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference implementations.
    #[test]
    fn matches_the_reference_vector() {
        let s = Signer::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()]).unwrap();
        let sig = s
            .signature(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn one_signature_per_secret_and_bad_secrets_refused() {
        let s = Signer::new(&[
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            "whsec_c2Vjb25kLXNlY3JldC0xMjM0NTY3OA==".into(),
        ])
        .unwrap();
        assert_eq!(s.signature("id", 1, b"{}").unwrap().split(' ').count(), 2);
        assert!(!format!("{s:?}").contains("MfKQ"));
        assert!(Signer::new(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()]).is_err());
        assert!(Signer::new(&["whsec_!!!".into()]).is_err());
        assert!(Signer::new(&["whsec_YWJj".into()]).is_err());
        assert!(Signer::default().signature("id", 1, b"{}").is_none());
    }
}
