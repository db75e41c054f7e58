//! Passwords: Argon2id hashes in PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`,
//! the OWASP-recommended parameters that are argon2's defaults), and what a password must
//! be to be accepted. Pure but for the random salt, which the caller passes in.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// The longest (hashing cost follows the length; no passphrase needs more).
pub const MAX_LENGTH: usize = 1024;

/// Why a password was not accepted, or could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Nothing given.
    #[error("the password is empty: give one of at least {MIN_LENGTH} characters")]
    Empty,
    /// Too short to resist guessing.
    #[error("the password has {0} characters: use at least {MIN_LENGTH} (a few words make a good one)")]
    TooShort(usize),
    /// Longer than any passphrase needs.
    #[error("the password has {0} characters: use at most {MAX_LENGTH}")]
    TooLong(usize),
    /// One character repeated, or a well-known password.
    #[error("the password is too easy to guess: avoid repeated characters and well-known passwords")]
    Guessable,
    /// The hash could not be computed (a bug).
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// Checks that `password` is acceptable for a new account.
pub fn check_strength(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if password.trim().is_empty() {
        return Err(PasswordError::Empty);
    }
    if n < MIN_LENGTH {
        return Err(PasswordError::TooShort(n));
    }
    if n > MAX_LENGTH {
        return Err(PasswordError::TooLong(n));
    }
    let mut chars = password.chars();
    let first = chars.next();
    let lower = password.to_lowercase();
    const COMMON: &[&str] = &["password", "123456789", "qwertyuiop", "letmein", "iloveyou", "changeme", "welcome"];
    if chars.all(|c| Some(c) == first) || COMMON.iter().any(|c| lower.starts_with(c) && lower.len() <= c.len() + 3) {
        return Err(PasswordError::Guessable);
    }
    Ok(())
}

/// The Argon2id PHC string of `password` with `salt` (16 random bytes from the caller).
pub fn hash(password: &str, salt: &[u8; 16]) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false for a string that is not one).
/// The comparison is argon2's, in constant time.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Hashes with a fresh salt from the OS.
pub fn hash_new(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hashing(format!("no randomness from the OS: {e}")))?;
    hash(password, &salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let phc = hash("correct horse battery", &[7; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("", &phc));
        assert!(!verify("correct horse battery", "not a phc string"));
        // The same password with another salt hashes differently, and both verify.
        let other = hash("correct horse battery", &[8; 16]).unwrap();
        assert_ne!(phc, other);
        assert!(verify("correct horse battery", &other));
    }

    #[test]
    fn the_phc_string_names_argon2id_its_parameters_and_our_salt() {
        let phc = hash("password-for-the-test", b"0123456789abcdef").unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        // base64 (unpadded) of the 16 salt bytes we passed
        assert_eq!(parsed.salt.map(|s| s.to_string()).as_deref(), Some("MDEyMzQ1Njc4OWFiY2RlZg"));
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert_eq!(check_strength(""), Err(PasswordError::Empty));
        assert_eq!(check_strength("   "), Err(PasswordError::Empty));
        assert_eq!(check_strength("short"), Err(PasswordError::TooShort(5)));
        assert_eq!(check_strength("aaaaaaaaaaaa"), Err(PasswordError::Guessable));
        assert_eq!(check_strength("Password123"), Err(PasswordError::Guessable));
        assert_eq!(check_strength(&"x".repeat(1025).replace("xx", "xy")), Err(PasswordError::TooLong(1025)));
        assert_eq!(check_strength("plum tree at dawn"), Ok(()));
    }
}
