//! The auth service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, Secret, ServiceSpec};

/// Development value of `SIGNING_KEY_ENCRYPTION_KEY` (production refuses to start without one).
const DEV_SIGNING_KEY_ENCRYPTION_KEY: &str = "lomash-dev-signing-key-encryption-key-not-secret";
/// Development value of `AUTH_HMAC_KEY`.
const DEV_HMAC_KEY: &str = "lomash-dev-auth-hmac-key-not-secret";

/// The auth service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to auth.
    pub auth: AuthSettings,
}

/// Settings specific to auth.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetime of access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token, and the sliding lifetime of a session.
    pub refresh_token_ttl: Duration,
    /// Whether the refresh cookie carries `Secure`.
    pub cookie_secure: bool,
    /// Encrypts signing keys at rest (AES-256-GCM under its SHA-256).
    pub signing_key_encryption_key: Secret<String>,
    /// Keys the HMAC that hashes OTPs, emails and client addresses in Redis.
    pub hmac_key: Secret<String>,
    /// How long an OTP works.
    pub otp_ttl: Duration,
    /// Wrong guesses before an OTP is burnt.
    pub otp_max_attempts: u32,
    /// Least time between two codes sent for the same account and purpose.
    pub otp_resend_cooldown: Duration,
    /// Most codes sent for one account and purpose in an hour.
    pub otp_max_per_hour: u32,
    /// Failed logins for one email before it is locked.
    pub login_max_failures: u32,
    /// Longest lock of one email (the lock doubles from 30 s up to this).
    pub login_lock_max: Duration,
    /// Failed logins from one client address within the window before it is refused.
    pub login_ip_max_failures: u32,
    /// The window of the per-address count.
    pub login_ip_window: Duration,
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let access_ttl: u64 = env.get(
            "ACCESS_TOKEN_TTL_SECS",
            auth_client::access::ACCESS_TTL_SECS as u64,
            "Lifetime of access tokens, in seconds",
        )?;
        let refresh_days: u64 = env.get(
            "REFRESH_TOKEN_TTL_DAYS",
            7,
            "Lifetime of refresh tokens and idle sessions, in days",
        )?;
        let auth = AuthSettings {
            access_token_ttl: Duration::from_secs(positive("ACCESS_TOKEN_TTL_SECS", access_ttl)?),
            refresh_token_ttl: Duration::from_secs(
                positive("REFRESH_TOKEN_TTL_DAYS", refresh_days)? * 24 * 3600,
            ),
            cookie_secure: env.get(
                "COOKIE_SECURE",
                true,
                "Mark the refresh-token cookie Secure (true/false)",
            )?,
            signing_key_encryption_key: env.secret_or(
                "SIGNING_KEY_ENCRYPTION_KEY",
                DEV_SIGNING_KEY_ENCRYPTION_KEY,
                "Secret that encrypts the access-token signing keys stored in the database",
            )?,
            hmac_key: env.secret_or(
                "AUTH_HMAC_KEY",
                DEV_HMAC_KEY,
                "Secret keying the HMAC of OTPs, emails and client addresses kept in Redis",
            )?,
            otp_ttl: Duration::from_secs(positive(
                "OTP_TTL_SECS",
                env.get(
                    "OTP_TTL_SECS",
                    600u64,
                    "How long a one-time code works, in seconds",
                )?,
            )?),
            otp_max_attempts: positive(
                "OTP_MAX_ATTEMPTS",
                env.get(
                    "OTP_MAX_ATTEMPTS",
                    5u32,
                    "Wrong guesses before a one-time code is burnt",
                )?,
            )?,
            otp_resend_cooldown: Duration::from_secs(env.get(
                "OTP_RESEND_COOLDOWN_SECS",
                60u64,
                "Least time between two codes sent to one account for one purpose, in seconds",
            )?),
            otp_max_per_hour: positive(
                "OTP_MAX_PER_HOUR",
                env.get(
                    "OTP_MAX_PER_HOUR",
                    5u32,
                    "Most codes sent to one account for one purpose in an hour",
                )?,
            )?,
            login_max_failures: positive(
                "LOGIN_MAX_FAILURES",
                env.get(
                    "LOGIN_MAX_FAILURES",
                    5u32,
                    "Failed logins for one email before it is locked (30 s, doubling)",
                )?,
            )?,
            login_lock_max: Duration::from_secs(positive(
                "LOGIN_LOCK_MAX_SECS",
                env.get(
                    "LOGIN_LOCK_MAX_SECS",
                    900u64,
                    "Longest lock of one email after failed logins, in seconds",
                )?,
            )?),
            login_ip_max_failures: positive(
                "LOGIN_IP_MAX_FAILURES",
                env.get(
                    "LOGIN_IP_MAX_FAILURES",
                    20u32,
                    "Failed logins from one client address within the window before it is refused",
                )?,
            )?,
            login_ip_window: Duration::from_secs(positive(
                "LOGIN_IP_WINDOW_SECS",
                env.get(
                    "LOGIN_IP_WINDOW_SECS",
                    900u64,
                    "Window of the per-address failed-login count, in seconds",
                )?,
            )?),
        };
        Ok(Self { common, auth })
    }
}

fn positive<T: PartialOrd + Default + std::fmt::Display>(
    name: &str,
    value: T,
) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError {
            variable: name.to_owned(),
            reason: format!("must be greater than zero (got {value})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthService;
    use service_kit::Service;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::from_env(AuthService::SPEC, &Env::from_pairs::<&str, &str>([]))
            .expect("defaults are valid");
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            config.auth.refresh_token_ttl,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert!(config.auth.cookie_secure);
        assert_eq!(config.auth.otp_max_attempts, 5);
    }

    #[test]
    fn zero_lifetimes_name_their_variable() {
        let err = Config::from_env(
            AuthService::SPEC,
            &Env::from_pairs([("ACCESS_TOKEN_TTL_SECS", "0")]),
        )
        .expect_err("zero is refused");
        assert_eq!(err.variable, "ACCESS_TOKEN_TTL_SECS");
    }

    #[test]
    fn production_needs_real_secrets() {
        let env = Env::from_pairs([
            ("ENVIRONMENT", "production"),
            ("DATABASE_URL", "postgres://db/lomash_auth"),
            ("REDIS_URL", "redis://redis"),
            ("AMQP_URL", "amqp://mq"),
            ("INTERNAL_TOKEN_PUBLIC_KEY", auth_client::DEV_PUBLIC_KEY_PEM),
            (
                "INTERNAL_TOKEN_PRIVATE_KEY",
                auth_client::DEV_PRIVATE_KEY_PEM,
            ),
        ]);
        let err = Config::from_env(AuthService::SPEC, &env).expect_err("secrets missing");
        assert_eq!(err.variable, "SIGNING_KEY_ENCRYPTION_KEY");
    }
}
