//! argon2id hashing (the crate's defaults: 19 MiB, t=2, p=1), off the async executor and
//! behind a semaphore so a burst of sign-ins cannot exhaust memory or the blocking pool.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use tokio::sync::Semaphore;

use crate::core::{Error, FieldErrors, Result};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Semaphore::new(cores.max(2))
});

/// A hash that no password matches, verified for unknown accounts so they take as long as a
/// wrong password for a real one.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("unitrack-dummy-password-never-valid").unwrap_or_default());

/// Checks a new password against the rules; `field` names the form field for the message.
pub fn check_new(password: &str, field: &str) -> Result<(), FieldErrors> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        Err(FieldErrors::one(
            field,
            format!("Use at least {MIN_LENGTH} characters."),
        ))
    } else if length > MAX_LENGTH {
        Err(FieldErrors::one(
            field,
            format!("Use at most {MAX_LENGTH} characters."),
        ))
    } else {
        Ok(())
    }
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_blocking(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Hashes a password as an argon2id PHC string.
pub async fn hash(password: String) -> Result<String> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::Internal(anyhow::anyhow!("hashing failed: {e}")))
}

/// Verifies a password; with no hash (unknown user, or no password set) it still does the
/// work of a verification and answers `false`.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || verify_blocking(&password, hash.as_deref()))
        .await
        .map_err(|e| Error::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hashed = hash("correct horse battery".into()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"), "{hashed}");
        assert!(
            verify("correct horse battery".into(), Some(hashed.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong".into(), Some(hashed)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
        assert!(
            !verify("x".into(), Some("not a phc string".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn new_passwords_have_a_minimum_and_maximum_length() {
        assert!(check_new("short", "password").is_err());
        assert!(check_new("long enough!", "password").is_ok());
        assert!(check_new(&"x".repeat(MAX_LENGTH + 1), "password").is_err());
    }
}
