//! API keys: `orr_live_…` / `orr_test_…` + 192 bits from the OS CSPRNG in base62. Only an
//! HMAC-SHA256 of the key under a secret pepper is stored (a leaked table cannot be brute-forced
//! offline without the pepper), with a short display prefix. The full key is shown once.
//!
//! Storage (entities table), two items per key, written together in one transaction:
//! - `ACCT#<account>` / `KEY#<key id>`: the key's record, listed per account;
//! - `KEYHASH#<hmac>` / `KEY`: the lookup that authentication reads (one `GetItem`).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ApiError;
use crate::secrets::SecretString;
use crate::store::{Condition, Cursor, Item, Key, Store, StoreError, WriteOp, keyspace};
use crate::{clock, ids};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_BYTES: usize = 24;
/// base62 of 24 bytes is at most 33 characters; shorter values are left-padded with '0'.
const SECRET_CHARS: usize = 33;
const DISPLAY_CHARS: usize = 6;

/// Every scope a key can hold; a new key holds all unless it asks for fewer.
pub const SCOPES: [&str; 7] = [
    "charts",
    "readings",
    "batches",
    "events",
    "webhooks",
    "analytics",
    "keys",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    #[default]
    Live,
    Test,
}

impl KeyMode {
    fn prefix(self) -> &'static str {
        match self {
            KeyMode::Live => "orr_live_",
            KeyMode::Test => "orr_test_",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// Encodes bytes in base62 (big-endian), padded to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    let mut number = bytes.to_vec();
    while number.iter().any(|b| *b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Generates a random secret in base62 with the given prefix (also used for the admin key).
pub fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        base62(&ids::random_bytes::<SECRET_BYTES>(), SECRET_CHARS)
    )
}

/// Why a presented key was refused; the message is what the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Missing,
    Malformed,
    /// Unknown or deleted: indistinguishable on purpose.
    Invalid,
    Revoked,
    Expired,
}

impl KeyRefusal {
    pub fn message(self) -> &'static str {
        match self {
            KeyRefusal::Missing => {
                "No API key: send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
            }
            KeyRefusal::Malformed => {
                "The API key is malformed: keys look like orr_live_… or orr_test_… followed by 33 letters and digits."
            }
            KeyRefusal::Invalid => "The API key is not valid.",
            KeyRefusal::Revoked => "The API key has been revoked.",
            KeyRefusal::Expired => "The API key has expired.",
        }
    }
}

impl From<KeyRefusal> for ApiError {
    fn from(refusal: KeyRefusal) -> Self {
        ApiError::Unauthorized(refusal.message().into())
    }
}

/// Checks the shape of a presented key before any lookup.
pub fn parse_presented(text: &str) -> Result<&str, KeyRefusal> {
    let secret = text
        .strip_prefix(KeyMode::Live.prefix())
        .or_else(|| text.strip_prefix(KeyMode::Test.prefix()))
        .ok_or(KeyRefusal::Malformed)?;
    if secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(text)
    } else {
        Err(KeyRefusal::Malformed)
    }
}

/// HMAC-SHA256 under the pepper; comparisons are constant-time.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: SecretString,
}

impl KeyHasher {
    pub fn new(pepper: SecretString) -> Self {
        Self { pepper }
    }

    fn mac(&self, key: &str) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(self.pepper.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac
    }

    pub fn hash(&self, key: &str) -> String {
        crate::ids::hex(&self.mac(key).finalize().into_bytes())
    }

    /// A MAC of `message` under the pepper, separated by `domain` from key hashes and from
    /// every other use (so no signature can pass for a key hash or vice versa).
    pub fn sign(&self, domain: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac(domain);
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature` is [`Self::sign`]'s for `domain` and `message`, in constant time.
    pub fn verify(&self, domain: &str, message: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac(domain);
        mac.update(&[0]);
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }

    /// Whether `key` hashes to `stored_hash`, in constant time.
    pub fn matches(&self, key: &str, stored_hash: &str) -> bool {
        match unhex(stored_hash) {
            Some(expected) => self.mac(key).verify_slice(&expected).is_ok(),
            None => false,
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The stored record of a key (never holds the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: crate::ids::KeyId,
    pub account_id: crate::ids::AccountId,
    pub name: String,
    pub mode: KeyMode,
    /// The first characters of the key, for people to recognise it.
    pub display_prefix: String,
    pub hash: String,
    pub scopes: Vec<String>,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    /// The key stops working at this instant (`expires_at` in the API; the store reserves that
    /// name for item expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Set when rotated: the key that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<crate::ids::KeyId>,
    /// Incremented by every update; updates require the version they read (optimistic locking),
    /// so two concurrent revocations or rotations cannot both win.
    pub version: u64,
}

impl KeyRecord {
    /// The reason this key cannot be used now, if any.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<KeyRefusal> {
        match (self.status, self.valid_until) {
            (KeyStatus::Revoked, _) => Some(KeyRefusal::Revoked),
            (_, Some(until)) if until <= now => Some(KeyRefusal::Expired),
            _ => None,
        }
    }

    pub fn effective_status(&self, now: DateTime<Utc>) -> &'static str {
        match self.refusal(now) {
            Some(KeyRefusal::Revoked) => "revoked",
            Some(_) => "expired",
            None => "active",
        }
    }
}

pub fn record_key(account_id: &crate::ids::AccountId, key_id: &crate::ids::KeyId) -> Key {
    keyspace::api_key(account_id, key_id)
}

pub fn lookup_key(hash: &str) -> Key {
    keyspace::api_key_by_hash(hash)
}

/// A key's name, as the OpenAPI document states it.
fn key_name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::schemas::text(
        crate::openapi::TRIMMED_1_TO_100,
        "1 to 100 characters once trimmed.",
        false,
    )
}

/// `scopes` of a new key: at least one of [`SCOPES`], or null (all).
fn scopes_schema() -> utoipa::openapi::schema::Array {
    use crate::openapi::schemas::{names, nullable};
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(nullable(utoipa::openapi::schema::Type::Array))
        .items(names(SCOPES))
        .min_items(Some(1))
        .description(Some(
            "Scopes the key holds (default: those of the key that creates it).",
        ))
        .build()
}

/// What a caller asks for when creating a key.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    #[schema(schema_with = key_name_schema)]
    pub name: String,
    /// When the key stops working: in the future, at most 10 years ahead (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(schema_with = scopes_schema)]
    pub scopes: Option<Vec<String>>,
    /// Default: the mode of the key that creates it (live for a new account's first key).
    #[serde(default)]
    pub mode: Option<KeyMode>,
}

impl NewKeyRequest {
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(crate::FieldError::new(
                "name",
                "must be 1 to 100 characters",
            ));
        }
        if let Some(at) = self.expires_at {
            if at <= now {
                errors.push(crate::FieldError::new(
                    "expires_at",
                    "must be in the future (RFC 3339, UTC)",
                ));
            } else if at > now + ChronoDuration::days(3660) {
                errors.push(crate::FieldError::new(
                    "expires_at",
                    "must be within 10 years",
                ));
            }
        }
        if let Some(scopes) = &self.scopes {
            if scopes.is_empty() {
                errors.push(crate::FieldError::new(
                    "scopes",
                    "must hold at least one scope",
                ));
            }
            if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                errors.push(crate::FieldError::new(
                    "scopes",
                    format!("unknown scope {unknown:?}; accepted: {}", SCOPES.join(", ")),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// A freshly created key: the record and the full key, shown once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub record: KeyRecord,
    pub key: SecretString,
}

/// Builds a new key and the two writes that store it.
pub fn new_key(
    hasher: &KeyHasher,
    account_id: &crate::ids::AccountId,
    request: &NewKeyRequest,
) -> Result<(CreatedKey, Vec<WriteOp>), StoreError> {
    let mode = request.mode.unwrap_or_default();
    let key = random_token(mode.prefix());
    let mut scopes: Vec<String> = request
        .scopes
        .clone()
        .unwrap_or_else(|| SCOPES.iter().map(|s| (*s).to_owned()).collect());
    scopes.sort();
    scopes.dedup();
    let record = KeyRecord {
        id: crate::ids::KeyId::generate(),
        account_id: account_id.to_owned(),
        name: request.name.trim().to_owned(),
        mode,
        display_prefix: key[..mode.prefix().len() + DISPLAY_CHARS].to_owned(),
        hash: hasher.hash(&key),
        scopes,
        status: KeyStatus::Active,
        created_at: clock::now(),
        valid_until: request.expires_at,
        revoked_at: None,
        replaced_by: None,
        version: 0,
    };
    let writes = vec![
        WriteOp::Put {
            item: Item::from_serializable(record_key(account_id, &record.id), &record)?,
            condition: Some(Condition::NotExists),
        },
        WriteOp::Put {
            item: Item::from_serializable(lookup_key(&record.hash), &record)?,
            condition: Some(Condition::NotExists),
        },
    ];
    Ok((
        CreatedKey {
            record,
            key: SecretString::new(key),
        },
        writes,
    ))
}

/// The two writes that store an updated record (both items stay identical).
/// The two writes that store an update of `record` (as read, changed in memory): both items stay
/// identical, and the update applies only if nobody changed the key since it was read.
pub fn update_writes(record: &KeyRecord) -> Result<Vec<WriteOp>, StoreError> {
    let read_version = Condition::equals("version", record.version);
    let mut updated = record.clone();
    updated.version += 1;
    Ok(vec![
        WriteOp::Put {
            item: Item::from_serializable(record_key(&updated.account_id, &updated.id), &updated)?,
            condition: Some(read_version.clone()),
        },
        WriteOp::Put {
            item: Item::from_serializable(lookup_key(&updated.hash), &updated)?,
            condition: Some(read_version),
        },
    ])
}

pub async fn get(
    store: &dyn Store,
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
) -> Result<Option<KeyRecord>, StoreError> {
    parsed(store.get(&record_key(account_id, key_id)).await?)
}

/// [`get`], strongly consistent: for a decision a revocation must reach at once (a real-time
/// token names its key, and a key revoked a moment ago must not open a connection).
pub async fn get_current(
    store: &dyn Store,
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
) -> Result<Option<KeyRecord>, StoreError> {
    parsed(
        store
            .get_consistent(&record_key(account_id, key_id))
            .await?,
    )
}

fn parsed(item: Option<crate::store::Item>) -> Result<Option<KeyRecord>, StoreError> {
    item.map(|item| item.parse()).transpose()
}

/// The key record a hash stands for. Strongly consistent: the answer is cached (an unknown hash
/// for 300 s, a record until its namespace is bumped), so a stale read of a key created or
/// revoked a moment ago would outlive the moment. It runs once per cache miss.
pub async fn lookup(store: &dyn Store, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
    store
        .get_consistent(&lookup_key(hash))
        .await?
        .map(|item| item.parse())
        .transpose()
}

pub async fn list(
    store: &dyn Store,
    account_id: &crate::ids::AccountId,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<KeyRecord>, Option<Cursor>), StoreError> {
    store
        .query(
            keyspace::api_keys(account_id)
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()
}

pub async fn delete(store: &dyn Store, record: &KeyRecord) -> Result<(), StoreError> {
    store
        .transact(vec![
            WriteOp::Delete {
                key: record_key(&record.account_id, &record.id),
                condition: Some(Condition::Exists),
            },
            WriteOp::Delete {
                key: lookup_key(&record.hash),
                condition: None,
            },
        ])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> KeyHasher {
        KeyHasher::new(SecretString::new("pepper"))
    }

    #[test]
    fn keys_have_the_documented_format_and_entropy() {
        let request = NewKeyRequest {
            name: "ci".into(),
            ..NewKeyRequest::default()
        };
        let (created, writes) =
            new_key(&hasher(), &crate::ids::AccountId::generate(), &request).expect("key");
        let key = created.key.expose();
        assert!(
            key.starts_with("orr_live_") && key.len() == 9 + SECRET_CHARS,
            "{key}"
        );
        assert_eq!(parse_presented(key), Ok(key));
        assert_eq!(created.record.display_prefix, &key[..15]);
        assert!(
            !serde_json::to_string(&created.record)
                .expect("json")
                .contains(key),
            "the record never holds the key"
        );
        assert_eq!(writes.len(), 2);
        // 62^33 > 2^192: base62 of 24 random bytes loses nothing.
        assert!(33.0 * 62f64.log2() >= 192.0);
    }

    #[test]
    fn hashes_depend_on_the_pepper_and_compare_exactly() {
        let key = random_token("orr_test_");
        let hash = hasher().hash(&key);
        assert!(hasher().matches(&key, &hash));
        assert!(!KeyHasher::new(SecretString::new("other")).matches(&key, &hash));
        assert!(!hasher().matches(&key, "zz"));
    }

    #[test]
    fn malformed_keys_are_refused_before_lookup() {
        for bad in [
            "",
            "orr_live_",
            "sk_live_abc",
            "orr_live_short",
            &format!("orr_prod_{}", "a".repeat(33)),
            &format!("orr_live_{}!", "a".repeat(32)),
        ] {
            assert_eq!(parse_presented(bad), Err(KeyRefusal::Malformed), "{bad}");
        }
    }

    #[test]
    fn base62_pads_and_encodes() {
        assert_eq!(base62(&[0, 0], 3), "000");
        assert_eq!(base62(&[0, 62], 2), "10");
        assert_eq!(base62(&[255; 24], 33).len(), 33);
    }

    #[test]
    fn requests_are_validated_with_field_names() {
        let now = clock::now();
        let bad = NewKeyRequest {
            name: " ".into(),
            expires_at: Some(now - ChronoDuration::seconds(1)),
            scopes: Some(vec!["root".into()]),
            mode: Some(KeyMode::Live),
        };
        let Err(ApiError::Validation(errors)) = bad.validate(now) else {
            panic!("invalid")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "expires_at", "scopes"]);
    }
}
