//! `content`: the content service's expensive write, an image upload. A release-built
//! content-service (its own fresh database, the local media backend in the work directory) is
//! sent the same 4000×3000 JPEG (generated here, ~2 MB) as `POST /v1/uploads`, straight to the
//! service with an admin's internal token as the gateway would mint it, by 1, 2 and 4 concurrent
//! clients in turn; each upload is decoded, EXIF-oriented, resized into three WebP variants on
//! the blocking pool and stored with its row and event. Reported: uploads/s and latency
//! p50/p99 per concurrency. DESIGN.md §7 sets no budget for it: the figures are quoted.
//!
//! Then the publishing side's hot reads against the same service: 60 published blog posts and a
//! CMS page are created through the admin API, and `GET /v1/blog?limit=20` (the first page of the
//! public list) and `GET /v1/pages/{slug}` are loaded with the shared HTTP load generator at the
//! configured connections, as an anonymous visitor's request arrives from the gateway. Both are
//! served from the Redis response cache after the first request. Reported: req/s, p50, p99.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use auth_client::{InternalClaims, InternalKeys, Role};
use serde_json::json;

use super::Ctx;
use super::support::{self, Launch, Service};
use crate::load::{LoadResult, Target};
use crate::report::{Curve, Section, Table};
use crate::stats::{self, Latencies};

super::scenario!(
    "content",
    "upload + resize throughput of a 4000×3000 JPEG into three WebP variants; blog list \
            and page read latency"
);

/// Concurrent uploading clients, one run each.
const CONCURRENCY: [usize; 3] = [1, 2, 4];
/// The photo's size.
const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

/// One run's figures.
struct UploadRun {
    clients: usize,
    uploads: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Latencies,
}

impl UploadRun {
    fn rate(&self) -> f64 {
        self.uploads as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// A photo-like 4000×3000 JPEG (gradients and texture, so it compresses like a photo).
fn photo() -> Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 32;
        image::Rgb([
            ((x * 255 / WIDTH) as u8).wrapping_add(noise as u8),
            ((y * 255 / HEIGHT) as u8).wrapping_add(noise as u8),
            (((x + y) / 31 % 256) as u8).wrapping_add(noise as u8),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Jpeg)?;
    Ok(out.into_inner())
}

/// A multipart body with the photo as `file`: (content type, body).
fn multipart(jpeg: &[u8]) -> (String, bytes::Bytes) {
    let boundary = "lomash-bench-boundary-7f3a9c";
    let mut body = Vec::with_capacity(jpeg.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"kitchen.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(jpeg);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        bytes::Bytes::from(body),
    )
}

/// An admin's internal token, as the gateway mints it after a sign-in with the second factor
/// (the development key pair, which the service under test verifies with).
fn admin_token(keys: &InternalKeys, admin: uuid::Uuid, session: uuid::Uuid) -> Result<String> {
    keys.mint(
        InternalClaims::user("gateway", admin, Role::Admin, session)
            .with_amr(vec!["pwd".to_owned(), "otp".to_owned()]),
    )
    .map_err(|e| anyhow::anyhow!("cannot mint an internal token: {e}"))
}

async fn upload(
    client: &reqwest::Client,
    url: &str,
    token: String,
    content_type: &str,
    body: bytes::Bytes,
) -> Result<serde_json::Value> {
    let response = client
        .post(url)
        .header("x-internal-token", token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    if status != 201 {
        bail!("POST /v1/uploads answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

async fn run_clients(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    duration: Duration,
    content_type: &str,
    body: &bytes::Bytes,
) -> Result<UploadRun> {
    let keys = InternalKeys::development();
    let admin = uuid::Uuid::now_v7();
    let session = uuid::Uuid::now_v7();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (client, url, keys, stop) =
            (client.clone(), url.to_owned(), keys.clone(), stop.clone());
        let (content_type, body) = (content_type.to_owned(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failures = 0usize;
            // Bounded: stops at the deadline (an upload in flight finishes first).
            while !stop.load(Ordering::Relaxed) {
                let token = admin_token(&keys, admin, session)?;
                let begun = Instant::now();
                match upload(&client, &url, token, &content_type, body.clone()).await {
                    Ok(_) => {
                        samples.push(u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX))
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, "upload failed");
                        if failures > 10 {
                            bail!("more than 10 uploads failed; the last: {error:#}");
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((samples, failures))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut s, f) = worker.await.context("an upload client panicked")??;
        samples.append(&mut s);
        failures += f;
    }
    let elapsed = started.elapsed();
    Ok(UploadRun {
        clients,
        uploads: samples.len(),
        failures,
        elapsed,
        latencies: Latencies::from_samples(samples),
    })
}

async fn run_scenario(ctx: &Ctx) -> Result<Section> {
    let s = &ctx.settings;
    support::require(ctx, &["content-service"])?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let bus = support::bus(ctx, "content");
    let media_dir = s.work_dir.join(format!("content-media-{}", ctx.suffix));
    let service = support::start(
        ctx,
        &client,
        &bus,
        Launch::health("content")
            .env("MEDIA_STORAGE", "local")
            .env("MEDIA_LOCAL_DIR", &media_dir.display().to_string())
            .env("BLOG_SCHEDULE_INTERVAL_SECS", "0"),
    )
    .await?;
    let (base, content) = (service.base.clone(), &service.process);

    let jpeg = tokio::task::spawn_blocking(photo)
        .await
        .context("step `photo`")??;
    let (content_type, body) = multipart(&jpeg);
    let url = format!("{base}/v1/uploads");
    // One upload first: it must succeed with the expected variants before anything is timed.
    let keys = InternalKeys::development();
    let first = upload(
        &client,
        &url,
        admin_token(&keys, uuid::Uuid::now_v7(), uuid::Uuid::now_v7())?,
        &content_type,
        body.clone(),
    )
    .await
    .context("step `first upload`")?;
    if first["width"] != json!(WIDTH) || first["variants"]["thumb"].is_null() {
        bail!("step `first upload`: unexpected answer {first}");
    }
    println!(
        "  a {WIDTH}×{HEIGHT} JPEG of {} bytes uploads with its variants",
        stats::thousands(jpeg.len() as u64)
    );

    let mut runs = Vec::new();
    for clients in CONCURRENCY {
        content.check_alive()?;
        println!(
            "  {clients} concurrent uploader(s), {} ...",
            stats::show_duration(s.duration)
        );
        let run = run_clients(&client, &url, clients, s.duration, &content_type, &body)
            .await
            .with_context(|| format!("step `uploads ×{clients}`"))?;
        println!(
            "    {:.2} uploads/s, p50 {}, p99 {}, {} failed",
            run.rate(),
            stats::latency(run.latencies.p50()),
            stats::latency(run.latencies.p99()),
            run.failures
        );
        runs.push(run);
    }
    content.check_alive()?;
    let _ = std::fs::remove_dir_all(&media_dir);

    let reads = publishing_reads(ctx, &client, &service)
        .await
        .context("step `publishing reads`")?;
    let mut section = section(s.duration, jpeg.len(), &runs);
    add_reads(&mut section, ctx, &reads);
    Ok(section)
}

/// Blog posts created for the list benchmark (more than one page of 20).
const POSTS: usize = 60;

/// One read benchmark's figures.
struct ReadRun {
    label: &'static str,
    path: String,
    /// One per connection count.
    results: Vec<LoadResult>,
}

/// An admin `POST` with a JSON body; the answer's JSON (201/200 expected).
async fn admin_post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let response = client
        .post(url)
        .header("x-internal-token", token)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    if status != 200 && status != 201 {
        bail!("POST {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Internal tokens that outlive a long run (the development key pair, as the gateway's).
pub(super) fn dev_keys() -> Result<InternalKeys> {
    InternalKeys::from_pem(
        auth_client::DEV_PUBLIC_KEY_PEM,
        Some(auth_client::DEV_PRIVATE_KEY_PEM),
        3600 * 24,
    )
    .map_err(|e| anyhow::anyhow!("development keys: {e}"))
}

/// Creates and publishes `posts` blog posts and an about page at the content service `base`
/// (as an admin, straight to the service); returns the page's slug.
pub(super) async fn publish_fixtures(
    client: &reqwest::Client,
    base: &str,
    posts: usize,
) -> Result<String> {
    let keys = dev_keys()?;
    let admin = admin_token(&keys, uuid::Uuid::now_v7(), uuid::Uuid::now_v7())?;
    let paragraph = "Solid oak doors, soft-close hinges and a quartz worktop make a kitchen \
                     that lasts. ";
    for i in 0..posts {
        let post = admin_post(
            client,
            &format!("{base}/v1/blog"),
            &admin,
            &json!({
                "title": format!("Kitchen journal {i}"),
                "excerpt": "Ideas from our designers.",
                "content": format!("# Entry {i}\n\n{}", paragraph.repeat(40)),
                "tags": ["kitchens", if i % 2 == 0 { "oak" } else { "paint" }],
                "category": "inspiration",
            }),
        )
        .await?;
        let id = post["id"].as_str().unwrap_or_default().to_owned();
        admin_post(
            client,
            &format!("{base}/v1/blog/{id}/publish"),
            &admin,
            &json!({}),
        )
        .await?;
    }
    let page = admin_post(
        client,
        &format!("{base}/v1/pages"),
        &admin,
        &json!({
            "pageType": "ABOUT",
            "title": "About Lomash Wood",
            "blocks": [
                {"type": "RICH_TEXT", "markdown": paragraph.repeat(20)},
                {"type": "IMAGE", "url": "https://cdn.example.com/team.webp", "alt": "Our team"},
                {"type": "FAQ_LIST", "items": [{"question": "Do you fit?", "answer": "Yes, always."}]},
                {"type": "CTA", "text": "Book a visit", "link": "/book-appointment"}
            ],
            "seo": {"title": "About us", "description": "Who we are"}
        }),
    )
    .await?;
    let page_id = page["id"].as_str().unwrap_or_default().to_owned();
    admin_post(
        client,
        &format!("{base}/v1/pages/{page_id}/publish"),
        &admin,
        &json!({}),
    )
    .await?;
    Ok(page["slug"].as_str().unwrap_or_default().to_owned())
}

/// Creates and publishes the posts and the page, then loads the two public reads.
async fn publishing_reads(
    ctx: &Ctx,
    client: &reqwest::Client,
    service: &Service,
) -> Result<Vec<ReadRun>> {
    let base = &service.base;
    let keys = dev_keys()?;
    let slug = publish_fixtures(client, base, POSTS).await?;
    println!("  {POSTS} blog posts and a page published");

    let visitor = keys
        .mint(InternalClaims::anonymous("gateway"))
        .map_err(|e| anyhow::anyhow!("cannot mint an internal token: {e}"))?;
    let mut runs = Vec::new();
    for (label, path) in [
        (
            "blog list (first page of 20)",
            "/v1/blog?limit=20".to_owned(),
        ),
        ("page read", format!("/v1/pages/{slug}")),
    ] {
        let target = Target {
            headers: vec![("x-internal-token".to_owned(), visitor.clone())],
            ..Target::get(
                label,
                service.port,
                path.clone(),
                service.process.tree(),
                vec![],
            )
        };
        let results = support::sweep(ctx, &target, &[&service.process]).await?;
        if let Some(result) = results.iter().find(|r| !r.clean()) {
            bail!(
                "GET {path}: {} non-2xx, {} errors at {} connections (first: {:?})",
                result.non_2xx,
                result.errors,
                result.connections,
                result.first_error
            );
        }
        runs.push(ReadRun {
            label,
            path,
            results,
        });
    }
    Ok(runs)
}

/// Appends the read benchmarks to the section: a note per run (the table's columns are the
/// uploads') and their JSON.
fn add_reads(section: &mut Section, ctx: &Ctx, reads: &[ReadRun]) {
    let settings = ctx.settings.load(0);
    section.settings.push(format!(
        "reads: {} concurrent keep-alive connections, {} measured after {} warm-up, {}",
        ctx.settings.show_connections(),
        stats::show_duration(settings.duration),
        stats::show_duration(settings.warmup),
        settings.tool.describe()
    ));
    section.design.push(
        "Public blog list and page reads: 60 published posts and a four-block page, read as an \
         anonymous visitor through the internal token the gateway would mint. Both answers come \
         from the Redis response cache (namespace `public`, versioned; every admin write bumps \
         the version), so a read is a token check, two Redis round trips and the body."
            .to_owned(),
    );
    for read in reads {
        for result in &read.results {
            section.notes.push(format!(
                "GET {} ({}), {} connections: {} req/s, p50 {}, p99 {}",
                read.path,
                read.label,
                result.connections,
                stats::rate(result.rps),
                stats::latency(result.p50()),
                stats::latency(result.p99()),
            ));
        }
        section.curves.push(Curve::of(read.label, &read.results));
    }
    if let serde_json::Value::Object(map) = &mut section.json {
        map.insert(
            "reads".to_owned(),
            serde_json::Value::Array(
                reads
                    .iter()
                    .map(|r| json!({"label": r.label, "path": r.path, "results": r.results}))
                    .collect(),
            ),
        );
    }
}

fn section(duration: Duration, jpeg_bytes: usize, runs: &[UploadRun]) -> Section {
    let mut table = Table::new(&[
        "uploaders",
        "uploads",
        "failed",
        "uploads/s",
        "p50",
        "p99",
        "max",
    ]);
    for run in runs {
        table.row(vec![
            run.clients.to_string(),
            run.uploads.to_string(),
            run.failures.to_string(),
            format!("{:.2}", run.rate()),
            stats::latency(run.latencies.p50()),
            stats::latency(run.latencies.p99()),
            stats::latency(run.latencies.max()),
        ]);
    }
    let json_runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            json!({
                "uploaders": run.clients,
                "uploads": run.uploads,
                "failed": run.failures,
                "uploadsPerSecond": run.rate(),
                "p50Ms": run.latencies.p50().map(|d| d.as_secs_f64() * 1000.0),
                "p99Ms": run.latencies.p99().map(|d| d.as_secs_f64() * 1000.0),
            })
        })
        .collect();
    Section {
        scenario: "content",
        title: "content: upload + resize of a 4000×3000 JPEG; blog list and page reads".to_owned(),
        settings: vec![
            format!("each run: {} per concurrency level", stats::show_duration(duration)),
            format!("photo: {WIDTH}×{HEIGHT} JPEG, {} bytes", stats::thousands(jpeg_bytes as u64)),
            "service: content-service (release), local media backend, MEDIA_RESIZE_CONCURRENCY=2 (default)".to_owned(),
        ],
        design: vec![
            "Each upload is sniffed, decoded with decoder limits, EXIF-oriented and resized \
             (CatmullRom, cascading) into 1920/800/300 px lossy WebP variants (quality 80) on \
             tokio's blocking pool, at most two at a time; the original and the variants are \
             written to the local media directory and the row and its `media.uploaded` event \
             committed in one transaction. The clients post straight to the service with an \
             admin's internal token, as the gateway forwards it."
                .to_owned(),
        ],
        table,
        verdicts: Vec::new(),
        notes: vec![
            "DESIGN.md §7 sets no budget for uploads; the figures are quoted in issue 8. The \
             load generator shares the two cores with the service, and resizing is CPU-bound, \
             so more uploaders than cores only queue."
                .to_owned(),
        ],
        json: json!({ "jpegBytes": jpeg_bytes, "runs": json_runs }),
        curves: Vec::new(),
    }
}
