//! Integration tests of the appointment service: the real router on 127.0.0.1:0, a fresh
//! database per test, real Redis.
#![allow(clippy::unwrap_used)]

mod audit;
mod availability;
mod bookings;
mod brochures;
mod catalogue;
mod consumers;
mod helpers;
mod lifecycle;
mod race;
mod reminders;
mod slots;
