//! Random one-time values (consent `state`, browser bindings, session ids, CSRF tokens) and
//! their keyed hashes, which is all the database ever sees of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// 256 random bits, base64url: well above the 128 bits RFC 9700 asks of `state`.
#[derive(Clone, PartialEq, Eq)]
pub struct RandomToken(String);

impl RandomToken {
    pub fn generate() -> RandomToken {
        let mut bytes = [0u8; 32];
        // The OS random source failing is not recoverable; ring reports it as an error we
        // cannot act on, so fall back to the UUID generator's (also the OS) source.
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
            bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        RandomToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token presented by a client: 43 base64url characters, or nothing.
    pub fn parse(raw: &str) -> Option<RandomToken> {
        (raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| RandomToken(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RandomToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RandomToken([redacted])")
    }
}

/// HMAC-SHA256 under the session key: a stolen database cannot be turned back into live
/// states or sessions, and lookups stay exact-match.
pub struct Keyed(hmac::Key);

impl Keyed {
    pub fn new(session_key: &[u8]) -> Keyed {
        Keyed(hmac::Key::new(hmac::HMAC_SHA256, session_key))
    }

    pub fn hash(&self, purpose: &str, token: &RandomToken) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(token.0.as_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// Key material for `purpose` derived from a stored random `salt`: what the salt
    /// becomes only in the hands of whoever holds the session key (a webhook endpoint's
    /// signing secret is this, so the database never holds the secret).
    pub fn derive(&self, purpose: &str, salt: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(salt.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    /// [`Keyed::derive`] as a token of ours (32 bytes, base64url): a secret the holder of
    /// the session key can show again from the stored salt (an invitation's link).
    pub fn derive_token(&self, purpose: &str, salt: &str) -> RandomToken {
        RandomToken(URL_SAFE_NO_PAD.encode(self.derive(purpose, salt)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_parseable_and_hidden_from_debug() {
        let a = RandomToken::generate();
        assert_ne!(a, RandomToken::generate());
        assert_eq!(RandomToken::parse(a.expose()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "RandomToken([redacted])");
        assert!(RandomToken::parse("short").is_none());
        assert!(RandomToken::parse(&"a".repeat(42).replace('a', "+")).is_none());
    }

    #[test]
    fn hashes_depend_on_key_and_purpose() {
        let t = RandomToken::generate();
        let k = Keyed::new(&[1; 32]);
        assert_eq!(k.hash("state", &t), k.hash("state", &t));
        assert_ne!(k.hash("state", &t), k.hash("binding", &t));
        assert_ne!(k.hash("state", &t), Keyed::new(&[2; 32]).hash("state", &t));
    }
}
