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
}
