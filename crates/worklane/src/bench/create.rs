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
    /// Server processes sharing the store (PostgreSQL only). With more than one, the
    /// clients first load one node alone, then every node (clients spread evenly), and
    /// the ratio of the two rates is reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: u16,
    /// A configuration file for the servers, e.g. examples/rules/worklane.toml to create
    /// through its business rules (every task is a motor claim by fax).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Run the servers without authentication (`auth.mode = "off"`): the baseline of what
    /// checking each request's token costs.
    #[arg(long)]
    pub no_auth: bool,
}

async fn load(
    token: &str,
    bases: &[String],
    phase: &str,
    clients: usize,
    n: usize,
    bar: &ProgressBar,
) -> anyhow::Result<(Vec<Duration>, Vec<i64>, Duration)> {
    let http = super::client(token)?
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, next, base, bar, phase) = (
            http.clone(),
            next.clone(),
            bases[c % bases.len()].clone(),
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
                let body = serde_json::json!({"captureId": format!("{phase}-{i}"), "priority": (i % 100) as i64, "channel": "Fax", "data": {"i": i.to_string(), "claimType": "motor", "amount": (1000 + i % 50_000).to_string()}});
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

/// One measured phase: its rate and what it cost.
struct Phase {
    rate: f64,
    ids: Vec<i64>,
}

/// Measures `n` creates from `clients` clients spread over `nodes`, and prints the rate,
/// latencies and CPU time per create (servers together, and the clients).
async fn measure(
    nodes: &[ServerProcess],
    phase: &str,
    clients: usize,
    n: usize,
    bar: &ProgressBar,
) -> anyhow::Result<Phase> {
    let bases: Vec<String> = nodes.iter().map(|s| s.base.clone()).collect();
    let servers_cpu = || -> Option<f64> { nodes.iter().map(ServerProcess::cpu_seconds).sum() };
    let me = std::process::id();
    let before = servers_cpu().zip(super::cpu_seconds(me));
    let (lat, ids, took) = load(&nodes[0].token, &bases, phase, clients, n, bar).await?;
    let cpu = before
        .zip(servers_cpu().zip(super::cpu_seconds(me)))
        .map(|((s0, c0), (s1, c1))| (s1 - s0, c1 - c0));
    let rate = n as f64 / took.as_secs_f64();
    let (p50, p99, p999) = percentiles(lat);
    bar.suspend(|| {
        println!(
            "{phase}: created {n} tasks on {} node(s) in {:.2}s: {rate:.0} tasks/s",
            nodes.len(),
            took.as_secs_f64()
        );
        println!("  latency ms: p50 {p50:.2}  p99 {p99:.2}  p99.9 {p999:.2}");
        if let Some((server_cpu, client_cpu)) = cpu {
            let per = |cpu: f64| cpu * 1e6 / n as f64;
            println!(
                "  CPU per create: server {:.0} µs ({:.2} cores busy), clients {:.0} µs",
                per(server_cpu),
                server_cpu / took.as_secs_f64(),
                per(client_cpu)
            );
        }
    });
    Ok(Phase { rate, ids })
}

pub async fn run(args: CreateArgs) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    if args.nodes > 1 && url.starts_with("sqlite") {
        bail!("--nodes needs a store several processes share: use --store postgres");
    }
    println!(
        "bench create: store {}, {} clients, {} tasks, {} node(s), authentication {}",
        worklane_store::redact_url(&url),
        args.clients,
        args.tasks,
        args.nodes,
        if args.no_auth { "off" } else { "on" }
    );
    let mut nodes = Vec::new();
    for _ in 0..args.nodes {
        nodes.push(ServerProcess::start_opts(&url, args.config.as_deref(), !args.no_auth).await?);
    }
    let phases = if args.nodes > 1 { 2 } else { 1 };
    let bar = ProgressBar::new((args.warmup + args.tasks * phases) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")?,
    );
    bar.set_message("warm-up");
    let bases: Vec<String> = nodes.iter().map(|s| s.base.clone()).collect();
    let (_, mut acked, _) = load(
        &nodes[0].token,
        &bases,
        "warmup",
        args.clients,
        args.warmup,
        &bar,
    )
    .await?;
    bar.set_message("measuring");
    let mut rates = Vec::new();
    if args.nodes > 1 {
        let one = measure(&nodes[..1], "one-node", args.clients, args.tasks, &bar).await?;
        acked.extend(one.ids);
        rates.push(one.rate);
    }
    let all = measure(&nodes, "bench", args.clients, args.tasks, &bar).await?;
    acked.extend(all.ids);
    bar.finish_and_clear();
    if let Some(one) = rates.first() {
        println!(
            "{} nodes / 1 node: {:.2} ({:.0} vs {one:.0} tasks/s)",
            args.nodes,
            all.rate / one,
            all.rate
        );
    }
    for (i, server) in nodes.iter().enumerate() {
        if let Some((now, peak)) = server.rss_mib() {
            println!("server {i} RSS: {now:.1} MiB (peak {peak:.1} MiB)");
        }
    }

    // Durability: SIGKILL the servers, then look for every acknowledged task in the store.
    for server in nodes {
        server.kill9().await?;
    }
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
    let acked: Vec<_> = acked.into_iter().map(BrokerId).collect();
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
