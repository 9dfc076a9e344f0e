//! The appointment service's settings, read once at start through `service_kit::Env`.

use std::time::Duration;

use service_kit::config::{CommonConfig, ConfigError, Env, ServiceSpec};

/// The appointment service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shared settings.
    pub common: CommonConfig,
    /// What is specific to appointments.
    pub appointment: Settings,
}

/// Settings specific to appointments.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A customer may cancel or reschedule up to this long before the start.
    pub cancel_notice: chrono::Duration,
    /// Slots starting sooner than this are not offered nor bookable.
    pub min_notice: chrono::Duration,
    /// Slots are materialised and offered this many days ahead.
    pub horizon_days: i32,
    /// How long an availability answer is cached in Redis.
    pub availability_cache_ttl: Duration,
    /// How often the slot materialisation job runs, first at start-up (0 = never).
    pub materialise_every: Duration,
    /// How often the reminder job looks for due reminders (0 = never).
    pub reminders_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cancel_notice: chrono::Duration::hours(24),
            min_notice: chrono::Duration::hours(12),
            horizon_days: 90,
            availability_cache_ttl: Duration::from_secs(30),
            materialise_every: Duration::from_secs(3600),
            reminders_every: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Reads the configuration of `spec` from `env`.
    pub fn from_env(spec: ServiceSpec, env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(spec, env)?;
        let cancel_notice: i64 = env.get(
            "BOOKING_CANCEL_NOTICE_HOURS",
            24,
            "Customers may cancel or reschedule up to this many hours before the start",
        )?;
        let min_notice: i64 = env.get(
            "BOOKING_MIN_NOTICE_HOURS",
            12,
            "Slots starting sooner than this many hours are neither offered nor bookable",
        )?;
        let horizon_days: i32 = env.get(
            "BOOKING_HORIZON_DAYS",
            90,
            "Slots are materialised and offered this many days ahead",
        )?;
        let cache_ttl: u64 = env.get(
            "AVAILABILITY_CACHE_TTL_SECS",
            30,
            "How long an availability search answer is cached in Redis, in seconds",
        )?;
        let materialise: u64 = env.get(
            "SLOT_MATERIALISE_INTERVAL_SECS",
            3600,
            "How often time slots are materialised from the rules, in seconds, starting at start-up (0 = never: rule and exception changes still materialise their own slots)",
        )?;
        let reminders: u64 = env.get(
            "REMINDER_INTERVAL_SECS",
            60,
            "How often due booking reminders are looked for, in seconds (0 = never)",
        )?;
        let non_negative = |name: &str, value: i64| {
            if value < 0 {
                Err(ConfigError {
                    variable: name.to_owned(),
                    reason: "must not be negative".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        if !(1..=366).contains(&horizon_days) {
            return Err(ConfigError {
                variable: "BOOKING_HORIZON_DAYS".to_owned(),
                reason: "must be between 1 and 366".to_owned(),
            });
        }
        Ok(Self {
            common,
            appointment: Settings {
                cancel_notice: chrono::Duration::hours(non_negative(
                    "BOOKING_CANCEL_NOTICE_HOURS",
                    cancel_notice,
                )?),
                min_notice: chrono::Duration::hours(non_negative(
                    "BOOKING_MIN_NOTICE_HOURS",
                    min_notice,
                )?),
                horizon_days,
                availability_cache_ttl: Duration::from_secs(cache_ttl),
                materialise_every: Duration::from_secs(materialise),
                reminders_every: Duration::from_secs(reminders),
            },
        })
    }
}
