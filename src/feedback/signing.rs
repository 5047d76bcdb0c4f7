//! Server-issued impression ids and, for `feedback.auth = "signed"`, the impression tokens
//! that bind an impression to its user. Both are a 128-bit keyed MAC: SipHash-2-4 (a PRF
//! designed as a MAC for short inputs) under two halves of a 256-bit key derived from the
//! 128-bit secret, concatenated. Ids are that MAC of a per-process counter under a random key,
//! so they are unique across replicas and cannot be guessed from other ids.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Parses a 128-bit key written as 32 hex digits.
pub fn parse_key(hex: &str) -> Result<[u8; 16], String> {
    let hex = hex.trim();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "feedback.auth = \"signed\" needs feedback.signing_key: 32 hex digits (128 bits)"
                .into(),
        );
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|e| format!("feedback.signing_key: {e}"))?;
    }
    Ok(key)
}

fn mac(key: &[u8; 16], parts: &[&[u8]]) -> u128 {
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    // std's SipHasher is SipHash-2-4 (deprecated only in favour of faster, non-MAC hashes).
    #[allow(deprecated)]
    let half = |a: u64, b: u64| {
        let mut h = std::hash::SipHasher::new_with_keys(a, b);
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            h.write_u64(p.len() as u64);
            h.write(p);
        }
        h.finish()
    };
    let hi = half(k0, k1);
    let lo = half(k0 ^ 0x736f_6d65_7073_6575, k1 ^ 0x646f_7261_6e64_6f6d);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// Issues impression ids: 32 lowercase hex digits.
pub struct IdIssuer {
    key: [u8; 16],
    next: AtomicU64,
}

impl IdIssuer {
    /// A fresh random key (per process).
    pub fn random() -> Self {
        let a = uuid::Uuid::new_v4().as_u128();
        Self {
            key: a.to_le_bytes(),
            next: AtomicU64::new(0),
        }
    }

    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:032x}", mac(&self.key, &[&n.to_le_bytes()]))
    }
}

/// Signs and checks impression tokens.
pub struct Signer {
    key: [u8; 16],
}

impl Signer {
    pub fn new(key: [u8; 16]) -> Self {
        Self { key }
    }

    /// The token for (impression id, user id; empty for an anonymous list).
    pub fn token(&self, impression: &str, user: &str) -> String {
        format!(
            "{:032x}",
            mac(&self.key, &[impression.as_bytes(), user.as_bytes()])
        )
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, impression: &str, user: &str, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.token(impression, user);
        token.len() == want.len() && bool::from(want.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex_and_tokens_bind_id_and_user() {
        let issuer = IdIssuer::random();
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| issuer.next_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        // Another process's issuer never repeats this one's ids.
        let other = IdIssuer::random();
        assert!((0..1000).all(|_| !ids.contains(&other.next_id())));

        let key = parse_key("000102030405060708090a0b0c0d0e0f").unwrap();
        let s = Signer::new(key);
        let t = s.token("imp1", "u1");
        assert!(s.verify("imp1", "u1", &t));
        assert!(!s.verify("imp1", "u2", &t));
        assert!(!s.verify("imp2", "u1", &t));
        assert!(!s.verify("imp1", "u1", &t[..31]));
        assert!(!s.verify("im", "p1u1", &s.token("imp", "1u1")));
        let other = Signer::new(parse_key("ffffffffffffffffffffffffffffffff").unwrap());
        assert!(!other.verify("imp1", "u1", &t));
        assert!(parse_key("abc").is_err() && parse_key(&"g".repeat(32)).is_err());
    }
}
