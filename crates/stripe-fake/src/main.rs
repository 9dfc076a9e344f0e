//! `stripe-fake`: the Stripe stand-in as a process (what `cargo xtask up` runs when no
//! `STRIPE_SECRET_KEY` is given), and a command that sends one signed webhook event.
//!
//! ```text
//! stripe-fake serve --port 12111 [--webhook-url URL --webhook-secret whsec_...]
//! stripe-fake send-webhook --type payment_intent.succeeded --id pi_... \
//!     --url http://127.0.0.1:3000/v1/webhooks/stripe --secret whsec_... [--api http://127.0.0.1:12111/]
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stripe_fake::{FakeStripe, WebhookTarget, objects, webhook};

#[derive(Parser)]
#[command(
    name = "stripe-fake",
    about = "A Stripe API stand-in for local runs and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the fake Stripe API (the default).
    Serve(ServeArgs),
    /// Send one correctly signed webhook event.
    SendWebhook(SendArgs),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, env = "STRIPE_FAKE_PORT", default_value_t = 12111)]
    port: u16,
    /// Where the `/_fake/events` control delivers the events it makes.
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The webhook signing secret.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
}

#[derive(clap::Args)]
struct SendArgs {
    /// The event type, e.g. `payment_intent.succeeded`.
    #[arg(long = "type")]
    event_type: String,
    /// The PaymentIntent (or refund) id the event is about.
    #[arg(long)]
    id: String,
    /// The webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:3000/v1/webhooks/stripe")]
    url: String,
    /// The signing secret.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET")]
    secret: String,
    /// A running fake to take the object's current state from (and to move it into the state
    /// the event reports); without one the event carries a fixture object with this id.
    #[arg(long)]
    api: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("stripe-fake: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli
            .command
            .unwrap_or(Command::Serve(ServeArgs::parse_default()))
        {
            Command::Serve(args) => serve(args).await,
            Command::SendWebhook(args) => send(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stripe-fake: {error:#}");
            ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    /// The defaults and environment, as if `serve` had been given no flags.
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::parse_from(["stripe-fake"]).args
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let webhook = match (args.webhook_url, args.webhook_secret) {
        (Some(url), Some(secret)) => Some(WebhookTarget { url, secret }),
        _ => None,
    };
    let fake = FakeStripe::serve(listener, webhook).await?;
    tracing::info!(base_url = %fake.base_url(), "fake Stripe listening");
    tokio::select! {
        () = fake_wait(fake) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn fake_wait(fake: FakeStripe) {
    fake.wait().await;
}

async fn send(args: SendArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let event = match &args.api {
        Some(api) => {
            let url = format!("{}/_fake/events", api.trim_end_matches('/'));
            let response = client
                .post(url)
                .json(
                    &serde_json::json!({"type": args.event_type, "id": args.id, "deliver": false}),
                )
                .send()
                .await?;
            if !response.status().is_success() {
                anyhow::bail!(
                    "the fake answered {}: {}",
                    response.status(),
                    response.text().await?
                );
            }
            response.json::<serde_json::Value>().await?
        }
        None => {
            // Without a running fake only PaymentIntent events can be made up from a fixture.
            if !args.event_type.starts_with("payment_intent.") {
                anyhow::bail!("--api is needed to send {} events", args.event_type);
            }
            let mut intent = objects::payment_intent(0, "gbp", serde_json::json!({}), None, None);
            intent["id"] = serde_json::json!(args.id);
            objects::event(&args.event_type, intent)
        }
    };
    let status = webhook::deliver(&client, &args.url, &args.secret, &event).await?;
    println!(
        "{} {} → {}",
        event["type"].as_str().unwrap_or_default(),
        event["id"].as_str().unwrap_or_default(),
        status
    );
    if !status.is_success() {
        anyhow::bail!("the endpoint answered {status}");
    }
    Ok(())
}
