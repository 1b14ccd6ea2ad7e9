//! Identifiers: `<prefix>_<26 characters>`, ULID-like: 48 bits of milliseconds then 80 random
//! bits from the OS CSPRNG, in Crockford base32, so ids sort by creation time and never collide
//! in practice.

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Lower-case hex of `bytes` (digests, key hashes, webhook ids).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    out
}

/// Fills `buf` from the OS CSPRNG. The OS generator failing is not recoverable.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the OS random number generator is unavailable");
    buf
}

pub fn new_id(prefix: &str) -> String {
    id_at(
        prefix,
        crate::clock::now_millis().max(0) as u64,
        random_bytes::<10>(),
    )
}

fn id_at(prefix: &str, millis: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(millis & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(CROCKFORD[((value >> (5 * i)) & 0x1F) as usize] as char);
    }
    out
}

/// Whether `id` looks like one of ours with this prefix (cheap syntactic check for path params).
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == 26 && body.bytes().all(|b| CROCKFORD.contains(&b)))
}

/// A prefixed id type: what the platform hands out is always well-formed, and what a caller
/// presents becomes one only through `parse` (anything else names nothing: a 404 where it was
/// looked up). Stored and serialised as the plain string.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id (time-ordered, random).
            pub fn generate() -> Self {
                Self(new_id($prefix))
            }

            /// The presented text as an id of this kind, if it has the shape of one.
            pub fn parse(text: &str) -> Option<Self> {
                is_valid($prefix, text).then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9a-hjkmnp-tv-z]{26}$")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

prefixed_id!(
    /// `acct_…`: an account.
    AccountId,
    "acct"
);
prefixed_id!(
    /// `key_…`: an API key (its id, never the key).
    KeyId,
    "key"
);
prefixed_id!(
    /// `wh_…`: a webhook endpoint.
    EndpointId,
    "wh"
);
prefixed_id!(
    /// `chart_…`: a saved chart.
    ChartId,
    "chart"
);
prefixed_id!(
    /// `batch_…`: a batch job.
    BatchId,
    "batch"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn ids_sort_by_time_and_validate() {
        let early = id_at("acct", 1_000, [0xFF; 10]);
        let late = id_at("acct", 1_001, [0; 10]);
        assert!(early < late);
        assert!(is_valid("acct", &early));
        assert!(!is_valid("key", &early));
        assert!(!is_valid("acct", "acct_short"));
        assert_ne!(new_id("x"), new_id("x"));
    }

    #[test]
    fn typed_ids_accept_only_their_own_shape() {
        let account = AccountId::generate();
        assert_eq!(AccountId::parse(account.as_str()), Some(account.clone()));
        assert_eq!(KeyId::parse(account.as_str()), None, "another kind's id");
        assert_eq!(AccountId::parse("acct_#"), None);
        assert_eq!(
            serde_json::to_string(&account).expect("json"),
            format!("\"{account}\"")
        );
    }
}
