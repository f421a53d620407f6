use std::sync::Mutex;

use argon2::password_hash::{self, Output, ParamsString, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::Password;
use crate::telemetry;

/// OWASP's argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const SALT_BYTES: usize = 16;

/// The hash of a random password nobody knows, with the same parameters as real hashes. Login
/// verifies against it when the username does not exist, so that both failures take as long.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cUJbXDGrcufBmZqpdic8+w$KWccSO2bdDmt4Iag/twGQmRvjmGGpCVrHZ0dGXxkw/c";

/// argon2id's working memory, kept for the process: mapping and faulting in 19 MiB afresh took
/// about a third of every hash. A function serves one request at a time; should two hashes
/// overlap all the same, the second works in memory of its own.
static HASH_MEMORY: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// Allocations from this size up get mappings of their own (glibc's default starting threshold).
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;

/// Memory that argon2id gets beside the kept block (see `HASH_MEMORY`) is allocated on whichever
/// of Tokio's blocking threads runs it. After the first free, glibc raises its mmap threshold
/// above that size and serves the next ones from the thread's own heap, which it keeps: each new
/// blocking thread held on to another 19 MiB (162 MiB peak RSS after 200 registrations in
/// `make bench`). A fixed threshold keeps such blocks in mappings of their own, returned to the
/// system when freed. Call once, at start.
pub fn map_hash_memory_apart() {
    // SAFETY: mallopt only tunes the allocator, under malloc's own lock.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

fn params() -> Params {
    Params::new(MEMORY_KIB, PASSES, LANES, None).expect("constant parameters are valid")
}

/// argon2id of `password` and `salt` with `params` into `output`, in the kept memory.
fn argon2id_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> argon2::Result<()> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    match HASH_MEMORY.try_lock() {
        Ok(mut memory) => {
            memory.resize(blocks, Block::default());
            argon2.hash_password_into_with_memory(password, salt, output, &mut memory[..])
        }
        Err(_) => argon2.hash_password_into_with_memory(
            password,
            salt,
            output,
            vec![Block::default(); blocks],
        ),
    }
}

/// The PHC string of `password`'s argon2id hash with a fresh salt.
fn phc_hash(password: &[u8]) -> password_hash::Result<String> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|_| password_hash::Error::Crypto)?;
    let params = params();
    let params_string = ParamsString::try_from(&params)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |output| {
        Ok(argon2id_into(params, password, &salt, output)?)
    })?;
    let salt = SaltString::encode_b64(&salt)?;
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params_string,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `phc`, an argon2id PHC string (of any parameters).
fn phc_matches(password: &[u8], phc: &str) -> password_hash::Result<bool> {
    let stored = PasswordHash::new(phc)?;
    if stored.algorithm != ARGON2ID_IDENT
        || stored
            .version
            .is_some_and(|version| version != u32::from(Version::V0x13))
    {
        return Err(password_hash::Error::Algorithm);
    }
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(password_hash::Error::PhcStringField);
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let params = Params::try_from(&stored)?;
    let computed = Output::init_with(expected.len(), |output| {
        Ok(argon2id_into(params, password, salt, output)?)
    })?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2 hashing failed: {0}")]
    Hashing(password_hash::Error),
    #[error("hashing task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// The PHC string of an argon2id hash, computed off the async executor.
pub async fn hash_password(password: Password) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(telemetry::in_current_span(move || {
        telemetry::costed("argon2id", "hash", || {
            phc_hash(password.expose().as_bytes())
        })
        .map_err(PasswordError::Hashing)
    }))
    .await
    .map_err(PasswordError::Task)?
}

/// Whether `password` matches `stored_hash`; with no stored hash, does the same work against
/// the dummy hash and answers false.
pub async fn verify_password(password: SecretString, stored_hash: Option<String>) -> bool {
    let known_user = stored_hash.is_some();
    let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let matches = tokio::task::spawn_blocking(telemetry::in_current_span(move || {
        telemetry::costed("argon2id", "verify", || {
            phc_matches(password.expose_secret().as_bytes(), &hash)
        })
        .unwrap_or(false)
    }))
    .await
    .unwrap_or(false);
    known_user && matches
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn hash_round_trip() {
        let hash = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("Correct-Horse-9".into(), Some(hash.clone())).await);
        assert!(!verify_password("Correct-Horse-8".into(), Some(hash)).await);
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own() {
        let ours = phc_hash(b"Correct-Horse-9").unwrap();
        let library = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(library.verify_password(b"Correct-Horse-9", &parsed).is_ok());
        assert!(
            library
                .verify_password(b"Correct-Horse-8", &parsed)
                .is_err()
        );

        let salt = SaltString::encode_b64(&[7; SALT_BYTES]).unwrap();
        let theirs = library
            .hash_password(b"Correct-Horse-9", &salt)
            .unwrap()
            .to_string();
        assert!(phc_matches(b"Correct-Horse-9", &theirs).unwrap());
        assert!(!phc_matches(b"Correct-Horse-8", &theirs).unwrap());
    }

    #[test]
    fn other_parameters_verify_and_other_algorithms_do_not() {
        let salt = SaltString::encode_b64(&[7; SALT_BYTES]).unwrap();
        let hash_with = |algorithm, memory_kib| {
            let params = Params::new(memory_kib, 1, 1, Some(24)).unwrap();
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"Correct-Horse-9", &salt)
                .unwrap()
                .to_string()
        };
        assert!(phc_matches(b"Correct-Horse-9", &hash_with(Algorithm::Argon2id, 4096)).unwrap());
        assert!(phc_matches(b"Correct-Horse-9", &hash_with(Algorithm::Argon2i, 4096)).is_err());
        assert!(phc_matches(b"Correct-Horse-9", "not a PHC string").is_err());
    }

    #[test]
    fn the_working_memory_is_kept_and_overlapping_hashes_get_their_own() {
        let hashes: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| phc_hash(b"Correct-Horse-9").unwrap()))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for hash in &hashes {
            assert!(phc_matches(b"Correct-Horse-9", hash).unwrap());
        }
        assert_eq!(HASH_MEMORY.lock().unwrap().len(), params().block_count());
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently() {
        let a = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        let b = hash_password(Password::parse("Correct-Horse-9").unwrap())
            .await
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, PASSES, LANES)
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify_password("anything".into(), None).await);
    }
}
