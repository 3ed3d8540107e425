//! `worklane bench console`: the web console against a large store through a real server
//! process, signed in with a session cookie as a browser is. Measures the task list's
//! first page (and other views) against the REST listing of the same page (the baseline:
//! the same query without rendering), the dashboard and `/api/v1/stats`, and whether live
//! updates keep up: the event stream a page follows while tasks are created as fast as
//! the server takes them, and the page's refresh latency meanwhile.

use super::{percentiles, store_url, ServerProcess};
use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worklane_domain::{action, decide, Action, ActionMeta, BrokerId, NewTask, QueueType, Task};

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// `sqlite` (a new file), `postgres` (a new database on the local server) or a store URL.
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Tasks in the store before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Requests timed per view.
    #[arg(long, default_value_t = 200)]
    pub pages: usize,
    /// Tasks created over REST in the live phase.
    #[arg(long, default_value_t = 10_000)]
    pub creates: usize,
    /// Concurrent creating clients in the live phase.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
}

const CONFIG: &str = r#"
[[queue]]
id = "work"
when = "true"
mode = "pull"

[[queue]]
id = "claims"
when = "false"
mode = "pull"
"#;

const PASSWORD: &str = "bench-supervisor-password";

/// A seeded task: in one of two queues, five processes and four capture points, due
/// between two days ago and two days ahead; a fifth held, a fifth completed.
fn seeded(i: usize, now: jiff::Timestamp) -> anyhow::Result<Task> {
    let due = now + jiff::SignedDuration::from_mins((i as i64 * 37) % 5760 - 2880);
    let fields = serde_json::from_value(serde_json::json!({
        "priority": (i * 7919 % 1000) as i64,
        "processId": format!("p{}", i % 5),
        "dueDateTime": due.to_string(),
        "data": {"customer": format!("customer {i}")},
    }))?;
    let new = NewTask {
        capture_point_id: format!("cp{}", i % 4),
        fields,
        hold: false,
        on_duplicate: Default::default(),
    };
    let m = ActionMeta::default();
    let mut t = action::create(&new, BrokerId(1), &m, now).task;
    t.status = worklane_domain::Status::Queued;
    let t = decide(
        &t,
        &Action::Distribute {
            distribution_id: "bench".into(),
            distribution_point_id: "bench".into(),
        },
        &m,
        now,
    )?
    .task;
    let queue = if i.is_multiple_of(3) {
        "claims"
    } else {
        "work"
    };
    let t = decide(
        &t,
        &Action::Enqueue {
            queue: Some(queue.into()),
            queue_type: QueueType::InteractionQueue,
            queue_target: None,
        },
        &m,
        now,
    )?
    .task;
    Ok(match i % 5 {
        0 => decide(&t, &Action::Hold, &m, now)?.task,
        1 => {
            let a = decide(&t, &Action::Assign { user: "a1".into() }, &m, now)?.task;
            decide(&a, &Action::Complete, &m, now)?.task
        }
        _ => t,
    })
}

async fn seed(url: &str, n: usize) -> anyhow::Result<()> {
    let store = worklane_store::connect(url).await?;
    let bar = ProgressBar::new(n as u64).with_style(ProgressStyle::with_template(
        "seeding {bar:40} {pos}/{len} {per_sec} eta {eta}",
    )?);
    let now = jiff::Timestamp::now();
    let template: Vec<Task> = (0..1000)
        .map(|i| seeded(i, now))
        .collect::<Result<_, _>>()?;
    super::seed_tasks(&*store, n, &template, |id| format!("c-{id}"), &bar).await?;
    bar.finish_and_clear();
    Ok(())
}

/// Times `n` sequential GETs of `path` (after a few to warm up); (median, p99) in ms.
async fn time_view(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let started = Instant::now();
        let r = http.get(format!("{base}{path}")).send().await?;
        let code = r.status();
        let body = r.bytes().await?;
        if !code.is_success() {
            bail!("{path} answered {code}: {}", String::from_utf8_lossy(&body));
        }
        if i >= 5 {
            samples.push(started.elapsed());
        }
    }
    let (p50, p99, _) = percentiles(samples);
    Ok((p50, p99))
}

/// A client that sends the session cookie of `user`, signed in over the API.
async fn session_client(base: &str, user: &str) -> anyhow::Result<reqwest::Client> {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"user": user, "password": PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("signing in answered {}", r.status());
    }
    let cookie = r
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .context("no session cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    seed(&url, args.tasks).await?;
    let dir = std::env::temp_dir().join(format!(
        "wl-bench-console-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_microsecond()
    ));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("worklane.toml");
    std::fs::write(&config, CONFIG)?;
    let server = ServerProcess::start_with(&url, Some(&config)).await?;
    let base = server.base.clone();
    let admin = super::client(&server.token)?
        .pool_max_idle_per_host(args.clients.max(64))
        .build()?;
    let r = admin
        .post(format!("{base}/api/v1/users"))
        .json(&serde_json::json!({"id": "bench-sup", "role": "supervisor", "password": PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("creating the supervisor answered {}", r.status());
    }
    let browser = session_client(&base, "bench-sup").await?;

    println!(
        "console, {} tasks in {}, {} requests per view (ms, signed in with a session)",
        args.tasks,
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        args.pages
    );
    let (json50, json99) = time_view(&browser, &base, "/api/v1/tasks?limit=50", args.pages).await?;
    println!("  baseline: REST listing, first 50      median {json50:7.2}  p99 {json99:7.2}");
    for (name, path) in [
        ("task list, first page", "/console/tasks"),
        (
            "task list, by priority",
            "/console/tasks?status=Distributed&sort=priority",
        ),
        ("task list, one queue", "/console/tasks?queue=claims"),
        ("task list, overdue", "/console/tasks?overdue=on"),
        (
            "task list, captureId prefix",
            "/console/tasks?captureIdPrefix=c-99",
        ),
        ("task page", "/console/tasks/500000"),
        ("queues", "/console/queues"),
        ("dashboard", "/console/dashboard"),
        ("GET /api/v1/stats", "/api/v1/stats"),
    ] {
        let path = if name == "task page" {
            format!("/console/tasks/{}", (args.tasks / 2).max(1))
        } else {
            path.to_owned()
        };
        let (p50, p99) = time_view(&browser, &base, &path, args.pages).await?;
        let ratio = if name == "task list, first page" {
            format!("  ({:.2}x the baseline)", p50 / json50)
        } else {
            String::new()
        };
        println!("  {name:<35} median {p50:7.2}  p99 {p99:7.2}{ratio}");
    }

    // Live: the stream a page follows, while tasks are created as fast as the server
    // takes them; the page refreshes once a second meanwhile, as its script does.
    let store = worklane_store::connect(&url).await?;
    let start_seq = store.last_seq().await?;
    let seen = Arc::new(AtomicI64::new(start_seq));
    let delivered = Arc::new(AtomicUsize::new(0));
    let stream = browser
        .get(format!("{base}/api/v1/events/stream?after={start_seq}"))
        .send()
        .await?;
    if !stream.status().is_success() {
        bail!("the event stream answered {}", stream.status());
    }
    let reader = {
        let (seen, delivered) = (seen.clone(), delivered.clone());
        tokio::spawn(async move {
            let mut body = stream.bytes_stream();
            let mut carry = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                carry.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(at) = carry.find('\n') {
                    let line: String = carry.drain(..=at).collect();
                    if let Some(id) = line.strip_prefix("id:") {
                        if let Ok(id) = id.trim().parse::<i64>() {
                            seen.store(id, Ordering::Relaxed);
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut creators = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (http, next, base, n) = (admin.clone(), next.clone(), base.clone(), args.creates);
        creators.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let r = http
                    .post(format!("{base}/api/v1/tasks"))
                    .json(&serde_json::json!({"capturePointId": "live", "processId": "p1"}))
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("create answered {}", r.status());
                }
            }
            anyhow::Ok(())
        });
    }
    let mut refreshes = vec![];
    while !creators.is_empty() {
        tokio::select! {
            done = creators.join_next() => { done.context("a creator")???; }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let t = Instant::now();
                browser.get(format!("{base}/console/tasks")).send().await?.bytes().await?;
                refreshes.push(t.elapsed());
            }
        }
    }
    let created_in = started.elapsed();
    let last = store.last_seq().await?;
    let caught_up = Instant::now();
    while seen.load(Ordering::Relaxed) < last {
        if caught_up.elapsed() > Duration::from_secs(60) {
            bail!("the stream did not catch up within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lag = caught_up.elapsed();
    reader.abort();
    let events = (last - start_seq) as f64;
    let n = delivered.load(Ordering::Relaxed);
    let (r50, r99, _) = percentiles(refreshes);
    println!(
        "  live: {} creates in {:.1} s made {events:.0} events ({:.0}/s); the stream delivered {n} \
         ({:.0}/s), caught up {:.0} ms after the last create",
        args.creates,
        created_in.as_secs_f64(),
        events / created_in.as_secs_f64(),
        n as f64 / (created_in + lag).as_secs_f64(),
        lag.as_secs_f64() * 1000.0
    );
    println!("  live: task list refresh under that load  median {r50:7.2}  p99 {r99:7.2}");
    drop(server);
    Ok(())
}
