//! RFC 6238 codes for tests that sign in with two-factor authentication: what an authenticator
//! app would show for a secret at a given time.

use totp_rs::{Algorithm, Builder, Secret};

/// Seconds in one time step (RFC 6238's default, as auth uses).
pub const STEP_SECS: u64 = 30;

/// The six-digit code for the base32 `secret` (as auth's setup answers it) at `unix_time`.
pub fn code_at(secret: &str, unix_time: u64) -> String {
    let secret = Secret::try_from_base32(secret).expect("the secret is base32");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .build()
        .expect("an RFC 6238 secret")
        .generate(unix_time)
        .to_string()
}

/// The code for `secret` now.
pub fn code_now(secret: &str) -> String {
    code_at(secret, now())
}

/// The current Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the secret `12345678901234567890`; six-digit codes are the
    /// last six digits of the eight-digit vectors).
    #[test]
    fn matches_the_rfc_test_vectors() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
        assert_eq!(code_at(secret, 1_234_567_890), "005924");
        assert_eq!(code_at(secret, 2_000_000_000), "279037");
    }
}
