//! `worklane bench notify`: delivery throughput against a local receiver versus a plain
//! reqwest loop POSTing the same bodies with the same concurrency, and the memory a large
//! backlog for a dead target takes.

use crate::config::NotificationTargetConfig;
use crate::format::Renderer;
use anyhow::Context as _;
use axum::http::StatusCode;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use worklane_domain::{ActionMeta, NewTask, OnDuplicate, TaskFields, Timestamp};
use worklane_engine::{Command, Engine, EngineOptions};

/// Options of the notification benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Events (tasks created) per throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// http_connection_pool_size, and the baseline's concurrency.
    #[arg(long, default_value_t = 64)]
    pub pool_size: usize,
    /// Throughput runs; medians are reported (0 skips them).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Pending notifications for the dead-target memory run (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub pending: usize,
    /// Runs the receiver inside the benchmark's own process (by default it is a child
    /// process, as a real receiver is another program).
    #[arg(long)]
    pub in_process_receiver: bool,
}

/// Set in the environment of the receiver child process the benchmark starts.
const RECEIVER_ENV: &str = "WORKLANE_BENCH_NOTIFY_RECEIVER";

/// Runs the benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if std::env::var_os(RECEIVER_ENV).is_some() {
        return serve_receiver().await;
    }
    let dir = std::env::temp_dir().join(format!("worklane-bench-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, &args).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<()> {
    // First, while the process's heap is fresh: RSS is the server's, not what the
    // throughput runs' baseline bodies left behind in the allocator.
    if args.pending > 0 {
        memory_run(dir, args).await?;
    }
    if args.runs == 0 {
        return Ok(());
    }
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for r in 0..args.runs {
        let run = throughput_run(dir, r, args).await?;
        let (a, b) = (run.ours, run.raw);
        println!(
            "run {}: worklane {:.0} deliveries/s, raw baseline {:.0} POSTs/s, ratio {:.2}; \
             CPU µs per request (sender + receiver): worklane {:.1} + {:.1}, baseline {:.1} + {:.1}",
            r + 1,
            a,
            b,
            a / b,
            run.ours_cpu.0,
            run.ours_cpu.1,
            run.raw_cpu.0,
            run.raw_cpu.1,
        );
        ours.push(a);
        raw.push(b);
    }
    let (mo, mr) = (median(&mut ours), median(&mut raw));
    println!(
        "notify throughput ({} events, pool {}): median worklane {:.0} deliveries/s, median raw {:.0} POSTs/s, ratio {:.2} (targets: >= 10000/s, >= 0.70)",
        args.events, args.pool_size, mo, mr, mo / mr
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A local receiver that answers 200 to every POST to `/hook` and counts them; `GET
/// /count` tells the count.
fn receiver_app(count: Arc<AtomicUsize>) -> axum::Router {
    let c = count.clone();
    axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move |_body: axum::body::Bytes| {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::Relaxed);
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/count",
            axum::routing::get(move || async move { count.load(Ordering::Relaxed).to_string() }),
        )
}

/// The receiver child process: prints its address, serves until its stdin closes (the
/// benchmark has ended, or died).
async fn serve_receiver() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let app = receiver_app(Arc::new(AtomicUsize::new(0)));
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stdin_closed.await;
        })
        .await?;
    Ok(())
}

/// Where the benchmark's receiver runs.
enum Receiver {
    InProcess {
        url: String,
        count: Arc<AtomicUsize>,
        stop: CancellationToken,
    },
    Child {
        url: String,
        count_url: String,
        client: reqwest::Client,
        /// Killed when dropped.
        child: tokio::process::Child,
    },
}

impl Receiver {
    async fn start(in_process: bool) -> anyhow::Result<Self> {
        if in_process {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}/hook", listener.local_addr()?);
            let count = Arc::new(AtomicUsize::new(0));
            let app = receiver_app(count.clone());
            let stop = CancellationToken::new();
            let s = stop.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(s.cancelled_owned())
                    .await;
            });
            return Ok(Self::InProcess { url, count, stop });
        }
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .env(RECEIVER_ENV, "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the receiver process")?;
        let stdout = child.stdout.take().context("receiver stdout")?;
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line)
            .await?;
        let addr = line.trim();
        anyhow::ensure!(!addr.is_empty(), "the receiver process did not start");
        Ok(Self::Child {
            url: format!("http://{addr}/hook"),
            count_url: format!("http://{addr}/count"),
            client: reqwest::Client::new(),
            child,
        })
    }

    fn url(&self) -> &str {
        match self {
            Self::InProcess { url, .. } | Self::Child { url, .. } => url,
        }
    }

    /// CPU time the receiver has used so far (zero when it runs in our process: then
    /// ours includes it).
    fn cpu(&self) -> Duration {
        match self {
            Self::InProcess { .. } => Duration::ZERO,
            Self::Child { child, .. } => child
                .id()
                .map_or(Duration::ZERO, |p| cpu_time(&p.to_string())),
        }
    }

    /// POSTs received so far.
    async fn count(&self) -> anyhow::Result<usize> {
        match self {
            Self::InProcess { count, .. } => Ok(count.load(Ordering::Relaxed)),
            Self::Child {
                count_url, client, ..
            } => Ok(client.get(count_url).send().await?.text().await?.parse()?),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Self::InProcess { stop, .. } = self {
            stop.cancel();
        }
    }
}

async fn start_engine(url: &str) -> anyhow::Result<(Engine, tokio::task::JoinHandle<()>)> {
    let store = worklane_store::connect(url).await?;
    Ok(Engine::start(store, EngineOptions::default()).await?)
}

/// Creates `n` tasks (one TaskCreated event each), many at a time.
async fn create_tasks(engine: &Engine, n: usize) -> anyhow::Result<()> {
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let engine = engine.clone();
            async move {
                let fields = TaskFields {
                    capture_id: Some(format!("bench-{i}")),
                    channel: Some("Email".into()),
                    ..Default::default()
                };
                let new = NewTask {
                    capture_point_id: "BENCH".into(),
                    fields,
                    hold: false,
                    on_duplicate: OnDuplicate::Allow,
                };
                engine
                    .execute(Command::create(
                        new,
                        ActionMeta::default().defaulted("BENCH"),
                    ))
                    .await
            }
        })
        .buffer_unordered(1024);
    while let Some(r) = results.next().await {
        r.context("creating a task")?;
    }
    Ok(())
}

fn target(id: &str, uri: &str, pool: usize) -> anyhow::Result<NotificationTargetConfig> {
    let cfg: NotificationTargetConfig = serde_json::from_value(serde_json::json!({
        "id": id,
        "uri": uri,
        "http_connection_pool_size": pool,
        "http_retry_max_attempts": 1000,
        "start_at": "beginning",
    }))?;
    cfg.validate().map_err(anyhow::Error::msg)?;
    Ok(cfg)
}

async fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One run: Worklane's rate, then the raw baseline's, on the same bodies.
async fn throughput_run(dir: &std::path::Path, r: usize, args: &BenchArgs) -> anyhow::Result<Run> {
    let url = format!(
        "sqlite://{}",
        dir.join(format!("throughput-{r}.db")).display()
    );
    let (engine, writer) = start_engine(&url).await?;
    create_tasks(&engine, args.events).await?;
    let rx = Receiver::start(args.in_process_receiver).await?;
    let cfg = target("bench", rx.url(), args.pool_size)?;

    let cancel = CancellationToken::new();
    let cpu_start = Cpu::now(&rx);
    let started = Instant::now();
    let notifier = tokio::spawn(crate::run(engine.clone(), cfg.clone(), cancel.clone()));
    let store = engine.deliveries().clone();
    let n = args.events;
    wait_for(
        "every notification delivered",
        Duration::from_secs(600),
        async || Ok(rx.count().await? >= n && store.delivery_backlog("bench").await? == 0),
    )
    .await?;
    let ours = n as f64 / started.elapsed().as_secs_f64();
    let ours_cpu = Cpu::now(&rx).per_request_since(cpu_start, n);
    cancel.cancel();
    notifier.await??;

    // The same bodies, POSTed by a plain client with the same concurrency.
    let renderer = Renderer::new(&cfg);
    let mut bodies = Vec::with_capacity(n);
    let mut after = 0;
    loop {
        let events = engine.events().events_after(after, 5000).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        let now = Timestamp::now();
        bodies.extend(events.iter().filter_map(|e| {
            let guid = uuid::Uuid::new_v4().to_string();
            renderer.render(e, &guid, now).map(|b| (guid, b))
        }));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.pool_size)
        .tcp_nodelay(true)
        .build()?;
    let before = rx.count().await?;
    let cpu_start = Cpu::now(&rx);
    // A task of the runtime, as the notifier's sender is (not the main thread's block_on,
    // which would give the baseline a thread of its own).
    let elapsed = tokio::spawn(plain_client_loop(
        client,
        rx.url().to_owned(),
        bodies,
        args.pool_size,
    ))
    .await??;
    let posted = rx.count().await? - before;
    let raw = posted as f64 / elapsed.as_secs_f64();
    let raw_cpu = Cpu::now(&rx).per_request_since(cpu_start, posted);
    drop(rx);
    drop(engine);
    drop(store);
    let _ = writer.await;
    Ok(Run {
        ours,
        raw,
        ours_cpu,
        raw_cpu,
    })
}

/// What one throughput run measured: rates, and CPU µs per request (ours, receiver's).
struct Run {
    ours: f64,
    raw: f64,
    ours_cpu: (f64, f64),
    raw_cpu: (f64, f64),
}

/// POSTs every body with at most `concurrency` in flight; returns how long it took.
async fn plain_client_loop(
    client: reqwest::Client,
    url: String,
    bodies: Vec<(String, Vec<u8>)>,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut sends = futures::stream::iter(bodies)
        .map(|(guid, body)| {
            client
                .post(&url)
                .header("content-type", "application/json")
                .header("etag", guid)
                .body(body)
                .send()
        })
        .buffer_unordered(concurrency);
    while let Some(resp) = sends.next().await {
        let resp = resp?;
        anyhow::ensure!(
            resp.status().is_success(),
            "baseline POST answered {}",
            resp.status()
        );
        resp.bytes().await?;
    }
    Ok(started.elapsed())
}

/// User plus system CPU time of process `pid` (`self` for ours), from `/proc`; zero where
/// there is none.
fn cpu_time(pid: &str) -> Duration {
    // Clock ticks: USER_HZ, fixed at 100 in Linux's user ABI.
    const TICK: Duration = Duration::from_millis(10);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u32 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u32>().ok())
        .sum();
    TICK * ticks
}

/// CPU used by us and the receiver during a phase.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    ours: Duration,
    receiver: Duration,
}

impl Cpu {
    fn now(rx: &Receiver) -> Self {
        Self {
            ours: cpu_time("self"),
            receiver: rx.cpu(),
        }
    }

    /// Microseconds of CPU per request since `start`, ours and the receiver's.
    fn per_request_since(self, start: Self, n: usize) -> (f64, f64) {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        (
            per(self.ours - start.ours),
            per(self.receiver - start.receiver),
        )
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A dead target with `pending` notifications: the backlog stays in the store, not in
/// memory.
async fn memory_run(dir: &std::path::Path, args: &BenchArgs) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", dir.join("pending.db").display());
    let (engine, writer) = start_engine(&url).await?;
    // A port nobody listens on: every attempt is refused and retried later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg = target(
        "dead",
        &format!("http://127.0.0.1:{port}/hook"),
        args.pool_size,
    )?;
    let cancel = CancellationToken::new();
    let notifier = tokio::spawn(crate::run(engine.clone(), cfg, cancel.clone()));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (peak, cancel) = (peak.clone(), cancel.clone());
        tokio::spawn(async move {
            while !cancel.is_cancelled() {
                peak.fetch_max(rss_kib() as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    create_tasks(&engine, args.pending).await?;
    let store = engine.deliveries().clone();
    let n = args.pending as i64;
    wait_for(
        "every notification pending",
        Duration::from_secs(1800),
        async || {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(store.delivery_backlog("dead").await? >= n)
        },
    )
    .await?;
    let filled = started.elapsed();
    // Let the sender churn through retries of the whole backlog for a while.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let backlog = store.delivery_backlog("dead").await?;
    let now_rss = rss_kib();
    cancel.cancel();
    notifier.await??;
    sampler.await?;
    println!(
        "notify memory (target down): {backlog} pending notifications (filled in {:.0} s); RSS now {:.0} MB, peak {:.0} MB (target: < 200 MB)",
        filled.as_secs_f64(),
        now_rss as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    drop(engine);
    drop(store);
    let _ = writer.await;
    Ok(())
}
