//! Integration tests of the auth service: the real router on 127.0.0.1:0, a fresh database per
//! test, real Redis.
#![allow(clippy::unwrap_used)]

mod account;
mod admin;
mod audit;
mod helpers;
mod keys;
mod passwords;
mod redis_outage;
mod registration;
mod sessions;
mod throttling;
mod two_factor;
