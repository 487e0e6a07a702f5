//! Operator passwords: Argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's
//! recommended minimum), stored as PHC strings; and [`PasswordChecks`], which bounds how many
//! of those 19 MiB computations the server runs at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Shortest password `consentry operators add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// Constant-time inside argon2; false for a malformed hash too.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of nothing in particular, with the parameters `hash_password` uses, verified
/// against when the operator name is unknown, so that a wrong name takes as long as a wrong
/// password. A constant: it protects nothing, and computing it would cost a start-up hash.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$nJ/2KJaOtfQKAJQRbpmzwg$QJi0Zq9SOboJIZLxN85icqNzyJdg0DPS90+h4/8XOf0"
}

/// Like [`verify_password`], but with Argon2's working memory supplied (and grown if the
/// hash asks for more), so that it can be reused instead of allocated for every check.
fn verify_with_memory(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_ok()
        && bool::from(computed.ct_eq(expected.as_bytes()))
}

/// Why a password could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Every check was in use for the whole wait.
    #[error("every password check is in use")]
    Busy,
    /// The blocking task died (a bug).
    #[error("the password check did not finish: {0}")]
    Failed(#[source] tokio::task::JoinError),
}

/// Runs Argon2 checks off the async workers, at most `concurrency` at once, each in working
/// memory of its own that is kept for the next check.
///
/// Argon2 needs 19 MiB per check. Unbounded, 40 concurrent logins took the server from 14 MB
/// to 813 MB; bounded and reused, the memory is `concurrency` × 19 MiB, allocated once
/// (`cargo bench --bench login_flood`). Reuse matters as much as the bound: the allocator
/// keeps freed 19 MiB blocks per thread, and the blocking pool has many threads.
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: Duration,
}

impl PasswordChecks {
    /// `concurrency` checks at once (at least one); a check waits up to `wait` for its turn.
    pub fn new(concurrency: usize, wait: Duration) -> PasswordChecks {
        PasswordChecks {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            wait,
        }
    }

    /// The server's: one check per core, 2 to 4 (more than the cores adds memory, not
    /// throughput; 2 keep one slow check from stalling sign-in), each waiting up to 3 s for
    /// its turn (an Argon2 check takes about 30 ms: a queue of a hundred).
    pub fn for_sign_ins() -> PasswordChecks {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        PasswordChecks::new(cores.clamp(2, 4), Duration::from_secs(3))
    }

    /// How long a check waits for its turn before it is refused as [`CheckError::Busy`].
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Whether `password` matches `phc`; without a `phc` (an unknown name), a check against
    /// [`decoy_hash`] that takes as long and answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, CheckError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| CheckError::Busy)?
            .map_err(|_| CheckError::Busy)?;
        let pool = self.memory.clone();
        // The permit and the memory go with the blocking task: should this future be
        // dropped (the client went away), they are released only when the hash is done.
        tokio::task::spawn_blocking(move || {
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let ok = match &phc {
                Some(phc) => verify_with_memory(&password, phc, &mut memory),
                None => {
                    let _ = verify_with_memory(&password, decoy_hash(), &mut memory);
                    false
                }
            };
            lock(&pool).push(memory);
            drop(permit);
            ok
        })
        .await
        .map_err(CheckError::Failed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn reused_memory_verifies_like_the_crate_does() {
        let hash = hash_password("correct horse battery").unwrap();
        let mut memory = Vec::new();
        assert!(verify_with_memory(
            "correct horse battery",
            &hash,
            &mut memory
        ));
        assert_eq!(memory.len(), Params::default().block_count());
        assert!(!verify_with_memory("wrong", &hash, &mut memory));
        assert!(verify_with_memory(
            "correct horse battery",
            &hash,
            &mut memory
        ));
        assert!(!verify_with_memory("x", "not a hash", &mut memory));
        // A hash made with other parameters (and algorithm) still verifies.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"password", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(verify_with_memory("password", &other, &mut memory));
        assert!(!verify_with_memory("passwort", &other, &mut memory));
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        let decoy = PasswordHash::new(decoy_hash()).unwrap();
        let real = hash_password("anything at all").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(
            Params::try_from(&decoy).unwrap(),
            Params::try_from(&real).unwrap()
        );
    }

    #[tokio::test]
    async fn checks_beyond_the_bound_wait_then_are_refused() {
        let checks = PasswordChecks::new(1, Duration::from_millis(1));
        let hash = hash_password("correct horse battery").unwrap();
        // Hold the only permit, as a running check would.
        let held = checks.permits.clone().acquire_owned().await.unwrap();

        let refused = checks
            .verify("correct horse battery".into(), Some(hash.clone()))
            .await;
        drop(held);
        let verified = checks
            .verify("correct horse battery".into(), Some(hash))
            .await;
        let unknown = checks.verify("anything".into(), None).await;

        assert!(matches!(refused, Err(CheckError::Busy)), "{refused:?}");
        assert!(verified.unwrap());
        assert!(!unknown.unwrap());
        assert_eq!(lock(&checks.memory).len(), 1, "one buffer, reused");
    }
}
