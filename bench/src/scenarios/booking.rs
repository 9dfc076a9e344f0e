//! `booking`: bookings through the gateway (issue 6, DESIGN.md §7).
//!
//! Release-built auth, appointment and gateway on fresh databases. Fixtures go straight into
//! appointment's database: consultants covering `SW` with open 90-minute home-measurement slots
//! three hours apart (so no two of a consultant's bookings, buffer included, overlap), and one
//! more consultant whose slots are raced for. Through the gateway, as guests:
//! 1. **bookings/s**: concurrent clients book distinct slots (`POST /v1/appointments`) for the
//!    run's length → bookings/s and latency;
//! 2. **availability search**: `GET /v1/availability?type=HOME_MEASUREMENT&postcode=SW4 0AB`
//!    over two weeks at the usual connections → req/s, p50/p99 (a 30 s Redis cache answers
//!    repeats; bookings invalidate it);
//! 3. **the race**: rounds of many clients released together on one slot → exactly one 201
//!    and the rest 409 `SLOT_UNAVAILABLE` per round, then an SQL audit for overlapping active
//!    bookings — the budget: exactly one booking, every time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Ctx;
use super::support::{self, Launch, Service};
use crate::cleanup::Item;
use crate::load::{LoadResult, Target};
use crate::report::{Curve, Mark, Section, Table, Verdict};
use crate::stats::{self, Latencies};

super::scenario!(
    "booking",
    "bookings/s on distinct slots and availability search p50/p99 through the gateway; the one-slot race (exactly one 201 per round)"
);

/// Consultants whose slots are booked in the throughput run.
pub(super) const CONSULTANTS: i64 = 40;
/// Open slots each of them has (three hours apart from two days ahead).
pub(super) const SLOTS_EACH: i64 = 600;
/// Concurrent booking clients in the throughput run.
const CLIENTS: usize = 16;
/// Race rounds (one fresh slot each).
const ROUNDS: usize = 100;
/// Clients racing for each slot.
const RACERS: usize = 50;

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(RACERS)
        .build()?;
    let platform = support::platform(
        ctx,
        &client,
        "booking",
        vec![
            Launch::ready("appointment")
                .env("REMINDER_INTERVAL_SECS", "0")
                .env("SLOT_MATERIALISE_INTERVAL_SECS", "0"),
        ],
    )
    .await?;
    let (appointment, gateway) = (platform.service("appointment")?, &platform.gateway);

    let pool = appointment_pool(ctx, appointment).await?;
    let (_, slots) = open_slots(&pool, CONSULTANTS, SLOTS_EACH).await?;
    let (racer, race_slots) = open_slots(&pool, 1, ROUNDS as i64).await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    println!(
        "  fixtures: {CONSULTANTS} consultants × {SLOTS_EACH} open home-measurement slots, \
         1 consultant × {ROUNDS} slots for the race"
    );

    let gw = gateway.base.clone();

    // 1. Bookings on distinct slots.
    println!(
        "  {CLIENTS} guests booking distinct slots, {} ...",
        stats::show_duration(s.duration)
    );
    let bookings = book_distinct(&client, &gw, slots, s.duration).await?;
    println!(
        "    {} bookings/s, p50 {}, p99 {}, {} refused",
        stats::rate(bookings.rate()),
        stats::latency(bookings.latencies.p50()),
        stats::latency(bookings.latencies.p99()),
        bookings.refused.values().sum::<u64>()
    );
    platform.check_alive()?;

    // 2. Availability search.
    let from = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let to = from + chrono::Duration::days(13);
    let availability_path =
        format!("/v1/availability?type=HOME_MEASUREMENT&postcode=SW4%200AB&from={from}&to={to}");
    let check = client
        .get(format!("{gw}{availability_path}"))
        .send()
        .await?;
    let status = check.status();
    let body: Value = check.json().await.unwrap_or(Value::Null);
    let days = body["days"].as_array().map_or(0, Vec::len);
    if !status.is_success() || days == 0 {
        bail!(
            "step `availability`: {availability_path} answered {status} with {days} days: {body}"
        );
    }
    let availability = support::sweep(
        ctx,
        &Target::get(
            "availability search",
            gateway.port,
            availability_path.clone(),
            gateway.process.tree(),
            appointment.process.tree(),
        ),
        &platform.processes(),
    )
    .await?;

    // 3. The race.
    println!("  race: {ROUNDS} rounds of {RACERS} guests on one slot ...");
    let race = race(&client, &gw, &race_slots).await?;
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings a JOIN bookings b
           ON a.consultant_id = b.consultant_id AND a.id < b.id AND a.blocks && b.blocks
         WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')",
    )
    .fetch_one(&pool)
    .await
    .context("step `audit`")?;
    let racer_bookings: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE consultant_id = ANY($1) AND status = 'PENDING'",
    )
    .bind(&racer)
    .fetch_one(&pool)
    .await?;
    println!(
        "    rounds with exactly one 201 and {} × 409: {} of {ROUNDS}; bookings of the raced \
         consultant: {racer_bookings}; overlapping active bookings: {overlapping}",
        RACERS - 1,
        race.exact_rounds
    );
    platform.check_alive()?;
    Ok(section(
        ctx,
        &bookings,
        &availability_path,
        &availability,
        &race,
        racer_bookings,
        overlapping,
    ))
}

/// A pool on appointment's database (closed at cleanup).
pub(super) async fn appointment_pool(ctx: &Ctx, appointment: &Service) -> Result<sqlx::PgPool> {
    let pool = sqlx::PgPool::connect(
        appointment
            .database_url
            .as_deref()
            .context("appointment has a database")?,
    )
    .await
    .context("step `fixtures`")?;
    ctx.cleanup.push(Item::Pool(pool.clone()));
    Ok(pool)
}

/// `count` consultants covering SW with `slots` open 90-minute home-measurement slots each,
/// three hours apart from 08:00 two days ahead; returns the consultants and their slots in
/// time order.
pub(super) async fn open_slots(
    pool: &sqlx::PgPool,
    count: i64,
    slots: i64,
) -> Result<(Vec<Uuid>, Vec<Uuid>)> {
    let first_start = (Utc::now() + chrono::Duration::days(2))
        .date_naive()
        .and_hms_opt(8, 0, 0)
        .context("08:00")?
        .and_utc();
    let consultants = fixtures(pool, count, slots, first_start).await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM time_slots WHERE consultant_id = ANY($1) ORDER BY lower(during), consultant_id",
    )
    .bind(&consultants)
    .fetch_all(pool)
    .await?;
    Ok((consultants, ids))
}

/// Inserts `count` consultants covering SW with `slots` open home-measurement slots each.
async fn fixtures(
    pool: &sqlx::PgPool,
    count: i64,
    slots: i64,
    first_start: DateTime<Utc>,
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for i in 0..count {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO consultants (id, user_id, name, specialisation, coverage)
             VALUES ($1, $2, $3, 'BOTH', ARRAY['SW'])",
        )
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(format!("Bench Consultant {i}"))
        .execute(pool)
        .await
        .context("step `fixtures`: consultant")?;
        sqlx::query(
            "INSERT INTO time_slots (id, consultant_id, appointment_type, during)
             SELECT gen_random_uuid(), $1, 'HOME_MEASUREMENT',
                    tstzrange($2 + n * interval '3 hours', $2 + n * interval '3 hours' + interval '90 minutes')
             FROM generate_series(0, $3 - 1) AS n",
        )
        .bind(id)
        .bind(first_start)
        .bind(slots)
        .execute(pool)
        .await
        .context("step `fixtures`: slots")?;
        ids.push(id);
    }
    Ok(ids)
}

/// A guest's home-measurement booking of `slot`.
pub(super) fn booking_body(slot: Uuid, n: usize) -> String {
    json!({
        "type": "HOME_MEASUREMENT",
        "forKitchen": true,
        "forBedroom": n.is_multiple_of(3),
        "firstName": "Bench",
        "lastName": "Guest",
        "email": format!("bench-guest-{n}@example.com"),
        "phone": "07700 900123",
        "postcode": "SW4 0AB",
        "address": "1 Acre Lane, London",
        "slotId": slot,
    })
    .to_string()
}

async fn post_booking(client: &reqwest::Client, url: &str, body: String) -> Result<(u16, String)> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The throughput run's outcome.
struct Bookings {
    done: usize,
    refused: BTreeMap<u16, u64>,
    first_refusal: Option<String>,
    elapsed: Duration,
    latencies: Latencies,
}

impl Bookings {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

async fn book_distinct(
    client: &reqwest::Client,
    gateway: &str,
    slots: Vec<Uuid>,
    duration: Duration,
) -> Result<Bookings> {
    let queue = Arc::new(Mutex::new(VecDeque::from(slots)));
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{gateway}/v1/appointments");
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let (client, queue, stop, url) = (client.clone(), queue.clone(), stop.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut refused = BTreeMap::<u16, u64>::new();
            let mut first_refusal = None;
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(slot) = next else { break };
                n += CLIENTS;
                let begun = Instant::now();
                match post_booking(&client, &url, booking_body(slot, n)).await {
                    Ok((201, _)) => {
                        samples.push(u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX));
                    }
                    Ok((status, text)) => {
                        *refused.entry(status).or_default() += 1;
                        first_refusal.get_or_insert(format!("{status}: {text}"));
                    }
                    Err(error) => {
                        *refused.entry(0).or_default() += 1;
                        first_refusal.get_or_insert(error.to_string());
                    }
                }
            }
            (samples, refused, first_refusal)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    let mut refused = BTreeMap::<u16, u64>::new();
    let mut first_refusal = None;
    for worker in workers {
        let (s, r, f) = worker.await.context("a booking client panicked")?;
        samples.extend(s);
        for (status, n) in r {
            *refused.entry(status).or_default() += n;
        }
        if first_refusal.is_none() {
            first_refusal = f;
        }
    }
    let elapsed = started.elapsed();
    if samples.is_empty() {
        bail!(
            "step `bookings`: no booking succeeded ({})",
            first_refusal.unwrap_or_default()
        );
    }
    Ok(Bookings {
        done: samples.len(),
        refused,
        first_refusal,
        elapsed,
        latencies: Latencies::from_samples(samples),
    })
}

/// The race's outcome.
struct Race {
    rounds: usize,
    exact_rounds: usize,
    created: u64,
    conflicts: u64,
    other: BTreeMap<u16, u64>,
    first_other: Option<String>,
}

async fn race(client: &reqwest::Client, gateway: &str, slots: &[Uuid]) -> Result<Race> {
    let url = format!("{gateway}/v1/appointments");
    let mut outcome = Race {
        rounds: 0,
        exact_rounds: 0,
        created: 0,
        conflicts: 0,
        other: BTreeMap::new(),
        first_other: None,
    };
    for (round, slot) in slots.iter().enumerate() {
        let gate = Arc::new(tokio::sync::Barrier::new(RACERS));
        let mut racers = Vec::new();
        for i in 0..RACERS {
            let (client, url, gate) = (client.clone(), url.clone(), gate.clone());
            let body = booking_body(*slot, round * RACERS + i);
            racers.push(tokio::spawn(async move {
                gate.wait().await;
                post_booking(&client, &url, body).await
            }));
        }
        let (mut created, mut conflicts) = (0u64, 0u64);
        for racer in racers {
            match racer.await.context("a racer panicked")? {
                Ok((201, _)) => created += 1,
                Ok((409, text)) if text.contains("SLOT_UNAVAILABLE") => conflicts += 1,
                Ok((status, text)) => {
                    *outcome.other.entry(status).or_default() += 1;
                    outcome
                        .first_other
                        .get_or_insert(format!("{status}: {text}"));
                }
                Err(error) => {
                    *outcome.other.entry(0).or_default() += 1;
                    outcome.first_other.get_or_insert(error.to_string());
                }
            }
        }
        outcome.rounds += 1;
        outcome.created += created;
        outcome.conflicts += conflicts;
        if created == 1 && conflicts == (RACERS - 1) as u64 {
            outcome.exact_rounds += 1;
        }
    }
    Ok(outcome)
}

fn section(
    ctx: &Ctx,
    bookings: &Bookings,
    availability_path: &str,
    availability: &[LoadResult],
    race: &Race,
    racer_bookings: i64,
    overlapping: i64,
) -> Section {
    let s = &ctx.settings;
    let mut table = Table::new(&[
        "run",
        "done",
        "per second",
        "p50",
        "p99",
        "max",
        "refused / errors",
    ]);
    table.row(vec![
        format!("book distinct slots (`POST /v1/appointments`, {CLIENTS} guests)"),
        bookings.done.to_string(),
        stats::rate(bookings.rate()),
        stats::latency(bookings.latencies.p50()),
        stats::latency(bookings.latencies.p99()),
        stats::latency(bookings.latencies.max()),
        stats::status_counts(&bookings.refused),
    ]);
    for run in availability {
        table.row(vec![
            format!(
                "availability search (`{availability_path}`, {} connections)",
                run.connections
            ),
            run.requests.to_string(),
            stats::rate(run.rps),
            stats::latency(run.p50()),
            stats::latency(run.p99()),
            stats::latency(run.max()),
            format!("{} / {}", run.non_2xx, run.errors),
        ]);
    }
    table.row(vec![
        format!("race: {RACERS} guests × one slot, {} rounds", race.rounds),
        format!("{} × 201, {} × 409", race.created, race.conflicts),
        "–".to_owned(),
        "–".to_owned(),
        "–".to_owned(),
        "–".to_owned(),
        stats::status_counts(&race.other),
    ]);
    let race_ok = race.rounds == ROUNDS
        && race.exact_rounds == race.rounds
        && racer_bookings == race.rounds as i64
        && overlapping == 0;
    let verdicts = vec![Verdict {
        mark: if race_ok { Mark::Pass } else { Mark::Fail },
        text: format!(
            "booking race: **{} of {} rounds** gave exactly one 201 and {} × 409 \
             `SLOT_UNAVAILABLE`; {racer_bookings} bookings of the raced consultant; SQL audit: \
             **{overlapping}** overlapping active bookings (budget: exactly one booking, every time)",
            race.exact_rounds,
            race.rounds,
            RACERS - 1
        ),
    }];
    let mut notes = vec![
        "DESIGN.md §7 sets no throughput budget for bookings; the figures are quoted in issue 6. \
         The load generator, the gateway, appointment, Postgres and Redis share the two cores; \
         the load average at start (above) shows whether other work shared them too."
            .to_owned(),
    ];
    if let Some(refusal) = &bookings.first_refusal {
        notes.push(format!("first refused booking: {refusal}"));
    }
    if let Some(other) = &race.first_other {
        notes.push(format!("first unexpected race answer: {other}"));
    }
    Section {
        scenario: "booking",
        title: "booking: bookings/s, availability search and the one-slot race".to_owned(),
        settings: vec![
            format!(
                "fixtures: {CONSULTANTS} consultants covering SW × {SLOTS_EACH} open 90-minute \
                 home-measurement slots 3 h apart; one more consultant with {ROUNDS} slots for \
                 the race"
            ),
            "services: auth-service, appointment-service and gateway-service (release), fresh \
             databases / Redis prefixes; guests (no token) through the gateway, rate limits \
             raised by configuration"
                .to_owned(),
            format!(
                "bookings: {CLIENTS} concurrent guests for {}; availability: {} ({} connections, \
                 {} each); race: {RACERS} guests released together by a barrier per round",
                stats::show_duration(s.duration),
                s.tool.describe(),
                s.show_connections(),
                stats::show_duration(s.duration)
            ),
        ],
        design: vec![
            "A booking validates the request, then in one transaction takes the slot (`UPDATE \
             time_slots SET status = 'BOOKED' WHERE id = $1 AND status = 'OPEN'`), inserts the \
             booking with its snapshots and blocked range (the exclusion constraint on \
             (consultant, blocks) for active bookings is the guarantee), its history and \
             `booking.created` in the outbox, and bumps the availability cache generation. A losing \
             racer's update finds the slot taken (or the constraint refuses it) → 409 \
             `SLOT_UNAVAILABLE` with nothing written."
                .to_owned(),
        ],
        table,
        verdicts,
        notes,
        json: json!({
            "bookings": {
                "done": bookings.done,
                "perSecond": bookings.rate(),
                "p50Ms": bookings.latencies.p50().map(|d| d.as_secs_f64() * 1000.0),
                "p99Ms": bookings.latencies.p99().map(|d| d.as_secs_f64() * 1000.0),
                "refused": bookings.refused,
            },
            "availability": availability
                .iter()
                .map(|r| support::load_json("availability search", r))
                .collect::<Vec<_>>(),
            "race": {
                "rounds": race.rounds,
                "exactRounds": race.exact_rounds,
                "created": race.created,
                "conflicts": race.conflicts,
                "racerBookings": racer_bookings,
                "overlappingActiveBookings": overlapping,
            },
        }),
        curves: vec![Curve::of("availability search", availability)],
    }
}
