//! Create over REST with concurrent clients; then SIGKILL the server and check that every
//! acknowledged task is in the store.

use super::{percentiles, store_url, ServerProcess};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worklane_domain::BrokerId;
use worklane_store::{TaskOrder, TaskQuery};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// `sqlite` (a new file), `postgres` (a new database on the local server) or a store URL.
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Tasks to create (after the warm-up).
    #[arg(long, default_value_t = 50_000)]
    pub tasks: usize,
    /// Creates before measuring.
    #[arg(long, default_value_t = 2_000)]
    pub warmup: usize,
}

async fn load(
    base: &str,
    phase: &str,
    clients: usize,
    n: usize,
    bar: &ProgressBar,
) -> anyhow::Result<(Vec<Duration>, Vec<i64>, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, next, base, bar, phase) = (
            http.clone(),
            next.clone(),
            base.to_owned(),
            bar.clone(),
            phase.to_owned(),
        );
        workers.spawn(async move {
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let body = serde_json::json!({"captureId": format!("{phase}-{i}"), "priority": (i % 100) as i64, "channel": "Email", "data": {"i": i.to_string()}});
                let t = Instant::now();
                let r = http.post(format!("{base}/api/v1/tasks")).json(&body).send().await?;
                if r.status() != reqwest::StatusCode::CREATED {
                    bail!("create answered {}", r.status());
                }
                let v: serde_json::Value = r.json().await?;
                lat.push(t.elapsed());
                ids.push(v["brokerId"].as_i64().context("brokerId in the answer")?);
                bar.inc(1);
            }
            Ok::<_, anyhow::Error>((lat, ids))
        });
    }
    let mut lat = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    while let Some(r) = workers.join_next().await {
        let (l, i) = r??;
        lat.extend(l);
        ids.extend(i);
    }
    Ok((lat, ids, started.elapsed()))
}

pub async fn run(args: CreateArgs) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    println!(
        "bench create: store {}, {} clients, {} tasks",
        worklane_store::redact_url(&url),
        args.clients,
        args.tasks
    );
    let server = ServerProcess::start(&url).await?;
    let bar = ProgressBar::new((args.warmup + args.tasks) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")?,
    );
    bar.set_message("warm-up");
    let (_, warm_ids, _) = load(&server.base, "warmup", args.clients, args.warmup, &bar).await?;
    bar.set_message("measuring");
    let cpu_before = server.cpu_seconds();
    let (lat, ids, took) = load(&server.base, "bench", args.clients, args.tasks, &bar).await?;
    let cpu = cpu_before.zip(server.cpu_seconds()).map(|(a, b)| b - a);
    bar.finish_and_clear();
    let rate = args.tasks as f64 / took.as_secs_f64();
    let (p50, p99, p999) = percentiles(lat);
    let rss = server.rss_mib();
    println!(
        "created {} tasks in {:.2}s: {rate:.0} tasks/s",
        args.tasks,
        took.as_secs_f64()
    );
    println!("latency ms: p50 {p50:.2}  p99 {p99:.2}  p99.9 {p999:.2}");
    if let Some(cpu) = cpu {
        println!(
            "server CPU: {:.0} µs per create ({:.2} cores busy)",
            cpu * 1e6 / args.tasks as f64,
            cpu / took.as_secs_f64()
        );
    }
    if let Some((now, peak)) = rss {
        println!("server RSS: {now:.1} MiB (peak {peak:.1} MiB)");
    }

    // Durability: SIGKILL the server, then look for every acknowledged task in the store.
    server.kill9().await?;
    let store = worklane_store::connect(&url).await?;
    let mut found = HashSet::new();
    let mut after = None;
    loop {
        let page = store
            .list_tasks(&TaskQuery {
                order: TaskOrder::BrokerId,
                after,
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(worklane_store::PageAfter {
            broker_id: last.broker_id,
            priority: last.priority,
        });
        found.extend(page.iter().map(|t| t.broker_id));
    }
    let acked: Vec<_> = warm_ids.iter().chain(&ids).map(|&i| BrokerId(i)).collect();
    let lost = acked.iter().filter(|id| !found.contains(id)).count();
    println!(
        "after kill -9: {} acknowledged, {} in the store, {lost} lost",
        acked.len(),
        found.len()
    );
    if lost > 0 {
        bail!("{lost} acknowledged tasks were lost");
    }
    Ok(())
}
