//! Standard Webhooks signatures (standardwebhooks.com): `webhook-signature: v1,<base64>` where
//! the base64 is HMAC-SHA256, keyed with the decoded `whsec_` secret, over
//! `"{webhook-id}.{webhook-timestamp}.{body}"`. Several signatures (during a secret rotation)
//! are separated by single spaces; a receiver accepts the delivery if any one matches.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the spec asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret. `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is \"whsec_\" followed by the base64 of 24 to 64 bytes")]
pub struct InvalidSecret;

impl WebhookSecret {
    /// A new secret from the OS CSPRNG.
    pub fn generate() -> Self {
        Self {
            key: crate::ids::random_bytes::<SECRET_BYTES>().to_vec(),
        }
    }

    /// Parses `whsec_<base64>` (padding optional).
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.strip_prefix(PREFIX).ok_or(InvalidSecret)?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self { key })
    }

    /// The `whsec_<base64>` form shown to the endpoint's owner.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    /// The MAC over `"id.timestamp.body"`, before finalisation.
    fn keyed_mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        self.keyed_mac(id, timestamp, body)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether any `v1` entry of a `webhook-signature` header is this secret's signature
    /// (constant-time comparison). Used by our own receivers in tests and tools.
    pub fn verifies(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|entry| {
            entry
                .strip_prefix("v1,")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .is_some_and(|given| {
                    self.keyed_mac(id, timestamp, body)
                        .verify_slice(&given)
                        .is_ok()
                })
        })
    }
}

/// The `webhook-signature` header for a delivery signed with every secret in `secrets` (the
/// current one, and the previous one during its rotation grace period).
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A known-answer vector: the same key, id, timestamp and body signed by the official
    /// `standardwebhooks` Python library (1.1.0).
    const SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const TIMESTAMP: i64 = 1_674_087_231;
    const BODY: &str = r#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
    const SIGNATURE: &str = "v1,4PMU5Dl90B4kgwxDpwuMZ/cnZ5ztf+Y+kviYQD66rJg=";

    #[test]
    fn signs_exactly_like_the_reference_implementation() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        assert!(secret.verifies(ID, TIMESTAMP, BODY.as_bytes(), SIGNATURE));
        assert!(!secret.verifies(ID, TIMESTAMP + 1, BODY.as_bytes(), SIGNATURE));
        assert!(!secret.verifies("msg_other", TIMESTAMP, BODY.as_bytes(), SIGNATURE));
    }

    #[test]
    fn secrets_round_trip_and_are_validated() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        assert_eq!(
            WebhookSecret::parse(SECRET.trim_end_matches('=')).unwrap(),
            WebhookSecret::parse(SECRET).unwrap(),
            "padding is optional"
        );
        for bad in ["", "whsec_", "AAECAwQF", "whsec_AAECAwQF", "whsec_!!!!"] {
            assert_eq!(WebhookSecret::parse(bad), Err(InvalidSecret), "{bad:?}");
        }
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let old = WebhookSecret::generate();
        let new = WebhookSecret::generate();
        let header = signature_header(&[&new, &old], ID, TIMESTAMP, BODY.as_bytes());
        assert_eq!(header.split(' ').count(), 2);
        assert!(new.verifies(ID, TIMESTAMP, BODY.as_bytes(), &header));
        assert!(old.verifies(ID, TIMESTAMP, BODY.as_bytes(), &header));
        assert!(!WebhookSecret::generate().verifies(ID, TIMESTAMP, BODY.as_bytes(), &header));
    }
}
