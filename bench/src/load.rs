//! HTTP load: N keep-alive connections, closed loop, for a fixed time.
//!
//! Two drivers give the same [`LoadResult`]:
//! - `own` (default): this process, one task per connection on a hyper HTTP/1.1 client
//!   connection; each sends a request, reads the whole response, records the latency and sends
//!   the next. Every latency is kept, so p50/p99 are exact. Only responses that started after the
//!   warm-up and completed before the end count; a connection the server closes is reopened (a
//!   failed request counts as an error, a connection closed between requests does not).
//! - `wrk`: the well-known C tool, `wrk -t<threads> -c<connections> -d<duration> --latency`, its
//!   `Requests/sec` and latency distribution parsed from its output.
//!
//! Both are closed-loop: latencies are those the connections saw (no coordinated-omission
//! correction), and the same driver is used for every target of a comparison.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use crate::machine::{CpuProbe, CpuUse};
use crate::stats::Latencies;

/// Which load generator drives the HTTP scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// The built-in closed-loop generator (exact percentiles).
    Own,
    /// wrk (apt-get install wrk).
    Wrk,
}

impl Tool {
    /// Its name in the report.
    pub fn describe(self) -> &'static str {
        match self {
            Tool::Own => {
                "lomash-bench's own closed-loop HTTP/1.1 generator (hyper, exact percentiles)"
            }
            Tool::Wrk => "wrk (closed loop, its --latency distribution)",
        }
    }
}

/// The run length and concurrency, the same for every target of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct LoadSettings {
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// The measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// wrk's threads (`-t`); the own generator runs on the runtime's threads.
    pub threads: usize,
    /// The driver.
    pub tool: Tool,
}

/// One request of a load whose requests differ (see [`Target::vary`]).
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET`, `POST`.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub body: Option<Bytes>,
    /// Extra headers of this request only (on top of the target's).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The kind of request it is in a mixed profile: its answers are also counted apart, under
    /// this label ([`LoadResult::by_label`]).
    pub label: Option<&'static str>,
}

impl Req {
    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            label: None,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post(path: impl Into<String>, body: Bytes) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            body: Some(body),
            headers: Vec::new(),
            label: None,
        }
    }

    /// Labelled as a request of kind `label` (see [`Req::label`]).
    pub fn labelled(mut self, label: &'static str) -> Self {
        self.label = Some(label);
        self
    }

    /// With one more header (a value that is not a valid header value is left out).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), value));
        }
        self
    }
}

/// Builds the n-th request of a run (`n` counts across all connections, from 0) sent on
/// connection `connection`.
pub type RequestFn = Arc<dyn Fn(u64, usize) -> Req + Send + Sync>;

/// What to load: `GET http://127.0.0.1:<port><path>` with `headers` — or `POST` with `body`, or
/// whatever `vary` builds for each request.
#[derive(Clone, Default)]
pub struct Target {
    /// Its name in the report.
    pub label: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Path and query (with `vary`: only shown).
    pub path: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// A JSON body: every request is `POST path` with it.
    pub body: Option<Bytes>,
    /// Each request built by this instead (own generator only): varied paths defeat a response
    /// cache keyed by the query, and mixed profiles send different requests.
    pub vary: Option<RequestFn>,
    /// The processes serving it directly (the proxy, or the upstream for a direct run).
    pub target_pids: Vec<i32>,
    /// The upstream's processes when `target_pids` is a proxy.
    pub upstream_pids: Vec<i32>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("body", &self.body.as_ref().map(Bytes::len))
            .field("vary", &self.vary.is_some())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// `GET path` on 127.0.0.1:`port`, the CPU of `target_pids` (and `upstream_pids` behind it)
    /// measured.
    pub fn get(
        label: impl Into<String>,
        port: u16,
        path: impl Into<String>,
        target_pids: Vec<i32>,
        upstream_pids: Vec<i32>,
    ) -> Self {
        Self {
            label: label.into(),
            port,
            path: path.into(),
            target_pids,
            upstream_pids,
            ..Self::default()
        }
    }

    /// The request sent as the n-th of the run on `connection`.
    fn request(&self, n: u64, connection: usize) -> Req {
        match (&self.vary, &self.body) {
            (Some(vary), _) => vary(n, connection),
            (None, Some(body)) => Req::post(self.path.clone(), body.clone()),
            (None, None) => Req::get(self.path.clone()),
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadResult {
    /// Concurrent connections of the run.
    pub connections: usize,
    /// Responses counted in the measured window.
    pub requests: u64,
    /// Measured seconds.
    pub seconds: f64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Largest latency, ms (own generator only).
    pub max_ms: Option<f64>,
    /// Failed requests (connect, I/O, timeout).
    pub errors: u64,
    /// Responses by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses that were not 2xx.
    pub non_2xx: u64,
    /// Every 2xx answer of the run, warm-up and the requests in flight at the end included
    /// (what the server accepted; own generator only).
    pub all_2xx: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// The first body of each non-2xx status (up to [`SAMPLE_BODY_BYTES`]), to tell one 503
    /// from another (own generator only).
    pub sample_bodies: BTreeMap<u16, String>,
    /// The answers of each kind of labelled request ([`Req::label`]), counted as above.
    pub by_label: BTreeMap<String, LabelResult>,
    /// CPU use during the run.
    pub cpu: CpuUse,
}

/// The answers of one kind of request in a mixed run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LabelResult {
    /// Responses counted in the measured window.
    pub requests: u64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Largest latency, ms.
    pub max_ms: Option<f64>,
    /// Responses by status.
    pub statuses: BTreeMap<u16, u64>,
}

impl LabelResult {
    fn of(samples: Vec<u64>, statuses: BTreeMap<u16, u64>) -> Self {
        let latencies = Latencies::from_samples(samples);
        Self {
            requests: latencies.len() as u64,
            p50_ms: ms(latencies.p50()),
            p99_ms: ms(latencies.p99()),
            max_ms: ms(latencies.max()),
            statuses,
        }
    }
}

/// How much of a non-2xx body is kept as its sample.
pub const SAMPLE_BODY_BYTES: usize = 400;

impl LoadResult {
    /// The figures of a measured window: `samples` (latencies in ns) and `statuses` of the
    /// answers counted in it, over `seconds`.
    pub fn measured(
        samples: Vec<u64>,
        statuses: BTreeMap<u16, u64>,
        seconds: f64,
        cpu: CpuUse,
    ) -> Self {
        let latencies = Latencies::from_samples(samples);
        let requests = latencies.len() as u64;
        let non_2xx = statuses
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum();
        Self {
            requests,
            seconds,
            rps: requests as f64 / seconds.max(f64::EPSILON),
            p50_ms: ms(latencies.p50()),
            p99_ms: ms(latencies.p99()),
            max_ms: ms(latencies.max()),
            statuses,
            non_2xx,
            cpu,
            ..Self::default()
        }
    }

    /// p50 as a duration.
    pub fn p50(&self) -> Option<Duration> {
        duration(self.p50_ms)
    }

    /// p99 as a duration.
    pub fn p99(&self) -> Option<Duration> {
        duration(self.p99_ms)
    }

    /// Largest latency as a duration.
    pub fn max(&self) -> Option<Duration> {
        duration(self.max_ms)
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "{} req/s, p50 {}, p99 {}, {} non-2xx, {} errors",
            crate::stats::rate(self.rps),
            crate::stats::latency(self.p50()),
            crate::stats::latency(self.p99()),
            self.non_2xx,
            self.errors
        )
    }

    /// Whether every counted response was 2xx and nothing failed.
    pub fn clean(&self) -> bool {
        self.errors == 0 && self.non_2xx == 0 && self.requests > 0
    }
}

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `settings` against `target`.
pub async fn run(target: &Target, settings: &LoadSettings) -> Result<LoadResult> {
    let result = match settings.tool {
        Tool::Own => run_own(target, settings).await,
        Tool::Wrk if target.vary.is_some() || target.body.is_some() => bail!(
            "{}: wrk sends one fixed GET here; this run needs the own generator (--tool own)",
            target.label
        ),
        Tool::Wrk => run_wrk(target, settings).await,
    }?;
    Ok(LoadResult {
        connections: settings.connections,
        ..result
    })
}

/// A latency in milliseconds (as results keep them) as a duration.
pub fn duration(ms: Option<f64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_secs_f64(ms / 1000.0))
}

fn ms(value: Option<Duration>) -> Option<f64> {
    value.map(|d| d.as_secs_f64() * 1000.0)
}

fn self_pid() -> Option<i32> {
    i32::try_from(std::process::id()).ok()
}

// ---------------------------------------------------------------------------------------------
// The own generator

#[derive(Default)]
struct ConnStats {
    samples: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    all_2xx: u64,
    errors: u64,
    first_error: Option<String>,
    sample_bodies: BTreeMap<u16, String>,
    by_label: BTreeMap<&'static str, (Vec<u64>, BTreeMap<u16, u64>)>,
}

impl ConnStats {
    fn error(&mut self, error: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

/// What every connection of a run shares.
struct Shared {
    addr: SocketAddr,
    target: Target,
    headers: HeaderMap,
    counter: AtomicU64,
    measure_from: Instant,
    end: Instant,
}

async fn run_own(target: &Target, settings: &LoadSettings) -> Result<LoadResult> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, target.port));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&format!("127.0.0.1:{}", target.port))?,
    );
    headers.insert(header::USER_AGENT, HeaderValue::from_static("lomash-bench"));
    for (name, value) in &target.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).with_context(|| format!("header {name}"))?,
            HeaderValue::from_str(value).with_context(|| format!("value of header {name}"))?,
        );
    }

    // Connect everything first, so connection set-up is not part of the measurement.
    let mut senders = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        senders.push(
            connect(addr).await.with_context(|| {
                format!("cannot open a connection to {} ({addr})", target.label)
            })?,
        );
    }

    let probe = CpuProbe::start(&target.target_pids, &target.upstream_pids, self_pid());
    let measure_from = Instant::now() + settings.warmup;
    let shared = Arc::new(Shared {
        addr,
        target: target.clone(),
        headers,
        counter: AtomicU64::new(0),
        measure_from,
        end: measure_from + settings.duration,
    });
    let mut tasks = JoinSet::new();
    for (connection, sender) in senders.into_iter().enumerate() {
        tasks.spawn(connection_loop(Arc::clone(&shared), connection, sender));
    }
    let mut all = ConnStats::default();
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load connection task failed")?;
        all.samples.extend(stats.samples);
        for (status, count) in stats.statuses {
            *all.statuses.entry(status).or_default() += count;
        }
        all.all_2xx += stats.all_2xx;
        all.errors += stats.errors;
        if all.first_error.is_none() {
            all.first_error = stats.first_error;
        }
        for (status, body) in stats.sample_bodies {
            all.sample_bodies.entry(status).or_insert(body);
        }
        for (label, (samples, statuses)) in stats.by_label {
            let (all_samples, all_statuses) = all.by_label.entry(label).or_default();
            all_samples.extend(samples);
            for (status, count) in statuses {
                *all_statuses.entry(status).or_default() += count;
            }
        }
    }
    let cpu = probe.finish();
    Ok(LoadResult {
        errors: all.errors,
        all_2xx: all.all_2xx,
        first_error: all.first_error,
        sample_bodies: all.sample_bodies,
        by_label: all
            .by_label
            .into_iter()
            .map(|(label, (samples, statuses))| {
                (label.to_owned(), LabelResult::of(samples, statuses))
            })
            .collect(),
        ..LoadResult::measured(
            all.samples,
            all.statuses,
            settings.duration.as_secs_f64(),
            cpu,
        )
    })
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .context("connect timed out")??;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The n-th request of the run and its label.
fn build_request(
    shared: &Shared,
    connection: usize,
) -> Result<(Request<Full<Bytes>>, Option<&'static str>)> {
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let req = shared.target.request(n, connection);
    let label = req.label;
    let mut request = Request::new(Full::new(req.body.clone().unwrap_or_default()));
    *request.method_mut() = req.method;
    *request.uri_mut() = req
        .path
        .parse()
        .with_context(|| format!("bad path {}", req.path))?;
    let headers = request.headers_mut();
    *headers = shared.headers.clone();
    if req.body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in req.headers {
        headers.insert(name, value);
    }
    Ok((request, label))
}

async fn connection_loop(
    shared: Arc<Shared>,
    connection: usize,
    sender: SendRequest<Full<Bytes>>,
) -> ConnStats {
    let (measure_from, end) = (shared.measure_from, shared.end);
    let mut stats = ConnStats {
        samples: Vec::with_capacity(8192),
        ..ConnStats::default()
    };
    let mut sender = Some(sender);
    while Instant::now() < end {
        let mut current = match sender.take() {
            Some(current) => current,
            None => match connect(shared.addr).await {
                Ok(fresh) => fresh,
                Err(error) => {
                    if Instant::now() >= measure_from {
                        stats.error(format!("connect: {error:#}"));
                    }
                    sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // A connection the server closed between requests (keep-alive limits) is reopened
        // without counting an error.
        if current.ready().await.is_err() {
            continue;
        }
        let (request, label) = match build_request(&shared, connection) {
            Ok(built) => built,
            Err(error) => {
                stats.error(format!("{error:#}"));
                return stats;
            }
        };
        let sent = Instant::now();
        let outcome = timeout(REQUEST_TIMEOUT, async {
            let response = current.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<(u16, Bytes), hyper::Error>((status, body))
        })
        .await;
        let done = Instant::now();
        let counted = sent >= measure_from && done <= end;
        match outcome {
            Ok(Ok((status, body))) => {
                if (200..300).contains(&status) {
                    stats.all_2xx += 1;
                } else if counted {
                    stats.sample_bodies.entry(status).or_insert_with(|| {
                        let end = body.len().min(SAMPLE_BODY_BYTES);
                        String::from_utf8_lossy(&body[..end]).into_owned()
                    });
                }
                if counted {
                    let nanos = u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX);
                    stats.samples.push(nanos);
                    *stats.statuses.entry(status).or_default() += 1;
                    if let Some(label) = label {
                        let (samples, statuses) = stats.by_label.entry(label).or_default();
                        samples.push(nanos);
                        *statuses.entry(status).or_default() += 1;
                    }
                }
                sender = Some(current);
            }
            Ok(Err(error)) => {
                if counted {
                    stats.error(error.to_string());
                }
            }
            Err(_) => {
                if sent >= measure_from {
                    stats.error(format!("no response within {}s", REQUEST_TIMEOUT.as_secs()));
                }
            }
        }
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// wrk

async fn run_wrk(target: &Target, settings: &LoadSettings) -> Result<LoadResult> {
    let wrk = crate::procs::find_program("wrk", &["/usr/bin/wrk"])
        .context("wrk is not installed (apt-get install -y wrk), or use --tool own")?;
    let url = format!("http://127.0.0.1:{}{}", target.port, target.path);
    let whole_seconds = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
    let wrk_run = |seconds: u64| {
        let mut command = tokio::process::Command::new(&wrk);
        command
            .arg(format!("-t{}", settings.threads.max(1)))
            .arg(format!("-c{}", settings.connections))
            .arg(format!("-d{seconds}s"))
            .arg(format!("--timeout={}s", REQUEST_TIMEOUT.as_secs()))
            .arg("--latency");
        for (name, value) in &target.headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command.arg(&url).kill_on_drop(true);
        command
    };
    if !settings.warmup.is_zero() {
        let seconds = whole_seconds(settings.warmup);
        let _ = timeout(Duration::from_secs(seconds + 30), wrk_run(seconds).output()).await;
    }
    let seconds = whole_seconds(settings.duration);
    let probe = CpuProbe::start(&target.target_pids, &target.upstream_pids, None);
    let output = timeout(Duration::from_secs(seconds + 30), wrk_run(seconds).output())
        .await
        .context("wrk did not finish in time")?
        .context("cannot run wrk")?;
    let cpu = probe.finish();
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let parsed = parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))?;
    let mut statuses = BTreeMap::new();
    if parsed.requests > parsed.non_2xx {
        statuses.insert(200, parsed.requests - parsed.non_2xx);
    }
    Ok(LoadResult {
        requests: parsed.requests,
        seconds: parsed.seconds,
        rps: parsed.rps,
        p50_ms: Some(parsed.p50_ms),
        p99_ms: Some(parsed.p99_ms),
        max_ms: None,
        errors: parsed.socket_errors,
        statuses,
        non_2xx: parsed.non_2xx,
        first_error: (parsed.socket_errors > 0).then(|| "wrk reported socket errors".to_owned()),
        cpu,
        ..LoadResult::default()
    })
}

#[derive(Debug, PartialEq)]
struct WrkOutput {
    requests: u64,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: u64,
}

/// `1.23ms`, `456.78us`, `1.02s`, `2.00m` → milliseconds.
fn wrk_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        _ => return None,
    })
}

fn parse_wrk(text: &str) -> Option<WrkOutput> {
    let mut requests = None;
    let mut seconds = None;
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => p50 = wrk_duration_ms(value),
            ["99%", value] => p99 = wrk_duration_ms(value),
            ["Requests/sec:", value] => rps = value.parse().ok(),
            [count, "requests", "in", elapsed, ..] => {
                requests = count.parse().ok();
                seconds = elapsed
                    .trim_end_matches(',')
                    .strip_suffix('s')
                    .and_then(|s| s.parse().ok());
            }
            ["Non-2xx", "or", "3xx", "responses:", count] => non_2xx = count.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    Some(WrkOutput {
        requests: requests?,
        seconds: seconds?,
        rps: rps?,
        p50_ms: p50?,
        p99_ms: p99?,
        non_2xx,
        socket_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/v1/products
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  456.00us  12.34ms   89.00%
    Req/Sec    25.00k     1.00k   27.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.40ms
     90%    1.80ms
     99%    3.05ms
  497512 requests in 10.01s, 60.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:  49751.20
Transfer/sec:      6.00MB
";

    #[test]
    fn wrk_output_is_read() {
        let parsed = parse_wrk(WRK).expect("parses");
        assert_eq!(
            parsed,
            WrkOutput {
                requests: 497_512,
                seconds: 10.01,
                rps: 49_751.2,
                p50_ms: 0.812,
                p99_ms: 3.05,
                non_2xx: 12,
                socket_errors: 3,
            }
        );
        assert!(parse_wrk("nonsense").is_none());
        assert_eq!(wrk_duration_ms("1.02s"), Some(1020.0));
        assert_eq!(wrk_duration_ms("7"), None);
    }

    /// A local HTTP/1.1 server answering every request with `answer(method, path, body)`.
    async fn serve(answer: fn(&Method, &str, &[u8]) -> u16) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |r: Request<hyper::body::Incoming>| async move {
                            let method = r.method().clone();
                            let path = r.uri().to_string();
                            let body = r.into_body().collect().await?.to_bytes();
                            let mut response =
                                http::Response::new(Full::new(Bytes::from_static(b"{}")));
                            *response.status_mut() =
                                http::StatusCode::from_u16(answer(&method, &path, &body))
                                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                            Ok::<_, hyper::Error>(response)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (port, server)
    }

    fn quick(connections: usize) -> LoadSettings {
        LoadSettings {
            connections,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            threads: 1,
            tool: Tool::Own,
        }
    }

    #[tokio::test]
    async fn a_post_body_is_sent_with_every_request() {
        let (port, server) = serve(|method, _, body| {
            if method == Method::POST && body == br#"{"a":1}"# {
                202
            } else {
                400
            }
        })
        .await;
        let target = Target {
            body: Some(Bytes::from_static(br#"{"a":1}"#)),
            ..Target::get("post", port, "/track", vec![], vec![])
        };
        let result = run(&target, &quick(3)).await.expect("runs");
        server.abort();
        assert!(result.clean(), "{result:?}");
        assert_eq!(result.statuses.get(&202).copied(), Some(result.requests));
        // Warm-up answers count as accepted too.
        assert!(result.all_2xx > result.requests, "{result:?}");
        // wrk cannot send it.
        let wrk = LoadSettings {
            tool: Tool::Wrk,
            ..quick(1)
        };
        assert!(run(&target, &wrk).await.is_err());
    }

    #[tokio::test]
    async fn varied_requests_differ_and_bad_answers_are_counted() {
        // Odd request numbers are refused, so about half the answers are not 2xx.
        let (port, server) = serve(|_, path, _| {
            let n: u64 = path
                .rsplit('=')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            if n.is_multiple_of(2) { 200 } else { 404 }
        })
        .await;
        let target = Target {
            vary: Some(Arc::new(|n, _| Req::get(format!("/v1/products?n={n}")))),
            ..Target::get("varied", port, "/v1/products?n=<n>", vec![], vec![])
        };
        let result = run(&target, &quick(2)).await.expect("runs");
        server.abort();
        let ok = result.statuses.get(&200).copied().unwrap_or(0);
        let refused = result.statuses.get(&404).copied().unwrap_or(0);
        assert!(ok > 0 && refused > 0, "{result:?}");
        assert_eq!(result.non_2xx, refused);
        assert!(!result.clean());
    }

    #[tokio::test]
    async fn the_own_generator_measures_a_local_server() {
        let (port, server) = serve(|_, _, _| 200).await;
        let target = Target {
            headers: vec![("authorization".into(), "Bearer x".into())],
            ..Target::get("test", port, "/v1/products", vec![], vec![])
        };
        let settings = LoadSettings {
            connections: 4,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            threads: 1,
            tool: Tool::Own,
        };
        let result = run(&target, &settings).await.expect("runs");
        server.abort();
        assert!(result.requests > 0, "{result:?}");
        assert!(result.clean(), "{result:?}");
        assert_eq!(result.statuses.get(&200).copied(), Some(result.requests));
        assert!(result.p50_ms.is_some() && result.p99_ms >= result.p50_ms);
    }
}
