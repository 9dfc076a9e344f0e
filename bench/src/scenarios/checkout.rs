//! `checkout`: the paying path of seed 001 flow 4. Release-built product-service and
//! order-payment-service (fresh databases, one shared exchange) and the `stripe-fake` binary
//! standing in for Stripe. Straight to the service with internal tokens as the gateway mints
//! them:
//! 1. **orders**: concurrent customers place single-line orders (`POST /v1/orders` with an
//!    `Idempotency-Key`: re-priced and reserved at product over HTTP, stored with snapshots and
//!    `order.created`) for the run's duration → orders/s and latency;
//! 2. **intents**: a PaymentIntent for each order (`POST /v1/payments/create-intent`, one call to
//!    the fake Stripe each) → intents/s and latency;
//! 3. **webhooks**: each intent succeeds at the fake and its `payment_intent.succeeded` event,
//!    signed just before sending, is delivered concurrently (`POST /v1/webhooks/stripe`:
//!    signature check, event recorded once, payment + order + gap-free invoice + outbox in one
//!    transaction) → webhooks/s and handling latency p50/p99.
//!
//! DESIGN.md §7 sets no budget for checkout; the figures are quoted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use auth_client::{InternalClaims, InternalKeys, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Ctx;
use super::support::{self, Launch};
use crate::report::{Section, Table};
use crate::stats::{self, Latencies};

super::scenario!(
    "checkout",
    "orders/s through POST /v1/orders, then PaymentIntents and signed Stripe webhooks: webhook handling p50/p99"
);

/// Concurrent customers / webhook deliveries.
const CLIENTS: usize = 8;
/// Products in the catalogue (orders spread over them, so stock rows are not one hot spot).
pub(super) const PRODUCTS: usize = 20;
/// Webhooks delivered at most (the orders phase decides how many there are).
const MAX_PAYMENTS: usize = 2_000;
/// The webhook signing secret the service and the deliveries share.
const SECRET: &str = "whsec_bench_checkout";

/// One measured phase.
struct Phase {
    name: &'static str,
    done: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Latencies,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Nanoseconds since `begun` (what `Latencies` holds).
fn nanos(begun: Instant) -> u64 {
    u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn customer_token(keys: &InternalKeys, user: Uuid, session: Uuid) -> Result<String> {
    keys.mint(InternalClaims::user(
        "gateway",
        user,
        Role::Customer,
        session,
    ))
    .map_err(|e| anyhow::anyhow!("cannot mint an internal token: {e}"))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: String,
    key: Option<&str>,
    headers: &[(&str, String)],
    body: String,
) -> Result<(u16, String)> {
    let mut request = client
        .post(url)
        .header("x-internal-token", token)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Inserts `count` published kitchen products with a million in stock each into product's
/// database at `db_url`; returns their ids.
pub(super) async fn stocked_products(db_url: &str, count: usize) -> Result<Vec<Uuid>> {
    let catalogue = sqlx::PgPool::connect(db_url)
        .await
        .context("step `catalogue`")?;
    let mut products = Vec::new();
    for i in 0..count {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO products (id, sku, title, slug, category, price_pence, status, images)
             VALUES ($1, $2, $3, $4, 'KITCHEN', $5, 'PUBLISHED', '[]')",
        )
        .bind(id)
        .bind(format!("BENCH-{i:03}"))
        .bind(format!("Bench kitchen unit {i}"))
        .bind(format!("bench-kitchen-unit-{i}"))
        .bind(49_900 + i as i64 * 100)
        .execute(&catalogue)
        .await
        .context("step `catalogue`")?;
        sqlx::query("INSERT INTO stock_items (id, product_id, on_hand) VALUES ($1, $2, 1000000)")
            .bind(Uuid::now_v7())
            .bind(id)
            .execute(&catalogue)
            .await
            .context("step `catalogue`")?;
        products.push(id);
    }
    catalogue.close().await;
    Ok(products)
}

/// A one-line order of `product`.
pub(super) fn order_body(product: Uuid) -> String {
    json!({
        "items": [{"productId": product, "quantity": 1}],
        "email": "bench@example.com",
        "shippingAddress": {"fullName": "Bench Shopper", "line1": "1 Oak Lane", "city": "Leeds",
                            "postcode": "LS1 4AP", "country": "GB"},
        "shippingMethod": "STANDARD"
    })
    .to_string()
}

/// Phase 1: customers place orders until `duration` is up. Returns the phase and the placed
/// `(orderId, userId, sessionId)`.
async fn place_orders(
    client: &reqwest::Client,
    base: &str,
    products: &[Uuid],
    duration: Duration,
) -> Result<(Phase, Vec<(String, Uuid, Uuid)>)> {
    let keys = InternalKeys::development();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let (client, keys, stop) = (client.clone(), keys.clone(), stop.clone());
        let url = format!("{base}/v1/orders");
        let products = products.to_vec();
        workers.push(tokio::spawn(async move {
            let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
            let mut samples = Vec::new();
            let mut placed = Vec::new();
            let mut failures = 0usize;
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let product = products[n % products.len()];
                n += CLIENTS;
                let key = Uuid::now_v7().to_string();
                let begun = Instant::now();
                let token = customer_token(&keys, user, session)?;
                match post(&client, &url, token, Some(&key), &[], order_body(product)).await {
                    Ok((201, text)) => {
                        samples.push(nanos(begun));
                        let order: Value = serde_json::from_str(&text)?;
                        let id = order["id"].as_str().unwrap_or_default().to_owned();
                        placed.push((id, user, session));
                    }
                    Ok((status, text)) => {
                        failures += 1;
                        tracing::warn!(status, %text, "order refused");
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, "order failed");
                    }
                }
                if failures > 20 {
                    bail!("more than 20 orders failed");
                }
            }
            Ok::<_, anyhow::Error>((samples, placed, failures))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let (mut samples, mut placed, mut failures) = (Vec::new(), Vec::new(), 0);
    for worker in workers {
        let (mut s, mut p, f) = worker.await.context("an ordering client panicked")??;
        samples.append(&mut s);
        placed.append(&mut p);
        failures += f;
    }
    let elapsed = started.elapsed();
    Ok((
        Phase {
            name: "place order (POST /v1/orders)",
            done: samples.len(),
            failures,
            elapsed,
            latencies: Latencies::from_samples(samples),
        },
        placed,
    ))
}

/// Runs `job` over `items` with [`CLIENTS`] concurrent workers; times each call.
async fn drain<T, F, Fut>(name: &'static str, items: Vec<T>, job: F) -> Result<(Phase, Vec<String>)>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String>> + Send,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(items)));
    let job = Arc::new(job);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (queue, job) = (queue.clone(), job.clone());
        workers.push(tokio::spawn(async move {
            let (mut samples, mut outputs, mut failures) = (Vec::new(), Vec::new(), 0usize);
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(item) = next else { break };
                let begun = Instant::now();
                match job(item).await {
                    Ok(output) => {
                        samples.push(nanos(begun));
                        outputs.push(output);
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, "{name} failed");
                    }
                }
            }
            (samples, outputs, failures)
        }));
    }
    let (mut samples, mut outputs, mut failures) = (Vec::new(), Vec::new(), 0);
    for worker in workers {
        let (mut s, mut o, f) = worker.await.context("a worker panicked")?;
        samples.append(&mut s);
        outputs.append(&mut o);
        failures += f;
    }
    let elapsed = started.elapsed();
    Ok((
        Phase {
            name,
            done: samples.len(),
            failures,
            elapsed,
            latencies: Latencies::from_samples(samples),
        },
        outputs,
    ))
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    support::require(
        ctx,
        &["product-service", "order-payment-service", "stripe-fake"],
    )?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let bus = support::bus(ctx, "checkout");
    let (stripe, stripe_base) = support::start_stripe(ctx, &client).await?;
    let product = support::start(ctx, &client, &bus, Launch::ready("product")).await?;
    let order_payment = support::start(
        ctx,
        &client,
        &bus,
        support::order_payment(&product.base, &stripe_base, SECRET),
    )
    .await?;
    let order_base = order_payment.base.clone();
    let product_db_url = product
        .database_url
        .clone()
        .context("product has a database")?;
    let procs = [&product.process, &order_payment.process, &stripe];

    // A catalogue with ample stock.
    let products = stocked_products(&product_db_url, PRODUCTS).await?;

    println!(
        "  {CLIENTS} customers placing orders, {} ...",
        stats::show_duration(s.duration)
    );
    let (orders, placed) = place_orders(&client, &order_base, &products, s.duration)
        .await
        .context("step `orders`")?;
    println!(
        "    {} orders/s, p50 {}, p99 {}, {} failed",
        stats::rate(orders.rate()),
        stats::latency(orders.latencies.p50()),
        stats::latency(orders.latencies.p99()),
        orders.failures
    );

    let payable: Vec<(String, Uuid, Uuid)> = placed.into_iter().take(MAX_PAYMENTS).collect();
    println!("  creating {} PaymentIntents ...", payable.len());
    let keys = InternalKeys::development();
    let (intents, intent_ids) = {
        let (client, url) = (
            client.clone(),
            format!("{order_base}/v1/payments/create-intent"),
        );
        drain(
            "create PaymentIntent (POST /v1/payments/create-intent)",
            payable,
            move |(order, user, session)| {
                let (client, url, keys) = (client.clone(), url.clone(), keys.clone());
                async move {
                    let token = customer_token(&keys, user, session)?;
                    let key = Uuid::now_v7().to_string();
                    let body = json!({ "orderId": order }).to_string();
                    match post(&client, &url, token, Some(&key), &[], body).await? {
                        (201, text) => {
                            let created: Value = serde_json::from_str(&text)?;
                            Ok(created["paymentIntentId"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned())
                        }
                        (status, text) => bail!("create-intent answered {status}: {text}"),
                    }
                }
            },
        )
        .await
        .context("step `intents`")?
    };
    println!(
        "    {} intents/s, p50 {}, p99 {}, {} failed",
        stats::rate(intents.rate()),
        stats::latency(intents.latencies.p50()),
        stats::latency(intents.latencies.p99()),
        intents.failures
    );

    // The customers pay: each intent succeeds at the fake, which hands back the event (not
    // delivered by it: the timed deliveries below sign and send them).
    let mut events = Vec::with_capacity(intent_ids.len());
    for id in &intent_ids {
        let response = client
            .post(format!("{stripe_base}_fake/events"))
            .json(&json!({"type": "payment_intent.succeeded", "id": id, "deliver": false}))
            .send()
            .await
            .context("step `events`")?;
        if !response.status().is_success() {
            bail!("step `events`: the fake answered {}", response.status());
        }
        events.push(response.json::<Value>().await.context("step `events`")?);
    }

    println!(
        "  delivering {} signed payment_intent.succeeded webhooks ...",
        events.len()
    );
    let anonymous = keys_anonymous()?;
    let (webhooks, outcomes) = {
        let (client, url) = (client.clone(), format!("{order_base}/v1/webhooks/stripe"));
        drain(
            "webhook payment_intent.succeeded (POST /v1/webhooks/stripe)",
            events,
            move |event| {
                let (client, url, token) = (client.clone(), url.clone(), anonymous.clone());
                async move {
                    // Signed at sending time, as Stripe does (the tolerance is five minutes).
                    let signed = stripe_fake::sign(&event, SECRET);
                    match post(
                        &client,
                        &url,
                        token,
                        None,
                        &[("stripe-signature", signed.signature)],
                        signed.body,
                    )
                    .await?
                    {
                        (200, text) => {
                            let answer: Value = serde_json::from_str(&text)?;
                            Ok(answer["outcome"].as_str().unwrap_or_default().to_owned())
                        }
                        (status, text) => bail!("webhook answered {status}: {text}"),
                    }
                }
            },
        )
        .await
        .context("step `webhooks`")?
    };
    let applied = outcomes.iter().filter(|o| *o == "APPLIED").count();
    println!(
        "    {} webhooks/s, p50 {}, p99 {}, {} applied, {} failed",
        stats::rate(webhooks.rate()),
        stats::latency(webhooks.latencies.p50()),
        stats::latency(webhooks.latencies.p99()),
        applied,
        webhooks.failures
    );
    for child in procs {
        child.check_alive()?;
    }
    if applied != webhooks.done {
        bail!(
            "step `webhooks`: only {applied} of {} webhooks were applied",
            webhooks.done
        );
    }
    Ok(section(s.duration, &[orders, intents, webhooks]))
}

fn keys_anonymous() -> Result<String> {
    InternalKeys::development()
        .mint(InternalClaims::anonymous("gateway"))
        .map_err(|e| anyhow::anyhow!("cannot mint an internal token: {e}"))
}

fn section(duration: Duration, phases: &[Phase]) -> Section {
    let mut table = Table::new(&["step", "done", "failed", "per second", "p50", "p99", "max"]);
    for phase in phases {
        table.row(vec![
            phase.name.to_owned(),
            phase.done.to_string(),
            phase.failures.to_string(),
            stats::rate(phase.rate()),
            stats::latency(phase.latencies.p50()),
            stats::latency(phase.latencies.p99()),
            stats::latency(phase.latencies.max()),
        ]);
    }
    let json_phases: Vec<Value> = phases
        .iter()
        .map(|phase| {
            json!({
                "step": phase.name,
                "done": phase.done,
                "failed": phase.failures,
                "perSecond": phase.rate(),
                "p50Ms": phase.latencies.p50().map(|d| d.as_secs_f64() * 1000.0),
                "p99Ms": phase.latencies.p99().map(|d| d.as_secs_f64() * 1000.0),
            })
        })
        .collect();
    Section {
        scenario: "checkout",
        title: "checkout: orders/s and Stripe webhook handling".to_owned(),
        settings: vec![
            format!("orders: {CLIENTS} concurrent customers for {}", stats::show_duration(duration)),
            format!("intents and webhooks: {CLIENTS} concurrent, one per placed order (at most {MAX_PAYMENTS})"),
            "services: product-service and order-payment-service (release), stripe-fake (release) for Stripe".to_owned(),
        ],
        design: vec![
            "An order is re-priced and reserved at product over HTTP, then stored with its \
             snapshots, history and `order.created` in one transaction. A PaymentIntent is one \
             call to the (fake) Stripe behind the Idempotency-Key record. A webhook is \
             signature-checked (HMAC-SHA256, 300 s tolerance), recorded once by event id, and \
             applied in one transaction: payment SUCCEEDED, order CONFIRMED/PAID with history, \
             an invoice numbered from the per-year counter row (a row lock every payment takes \
             in turn), and `payment.succeeded` in the outbox."
                .to_owned(),
        ],
        table,
        verdicts: Vec::new(),
        notes: vec![
            "DESIGN.md §7 sets no budget for checkout; the figures are quoted in issue 7. The \
             load generator, both services, the fake Stripe, Postgres and RabbitMQ share the \
             two cores."
                .to_owned(),
        ],
        json: json!({ "phases": json_phases }),
        curves: Vec::new(),
    }
}
