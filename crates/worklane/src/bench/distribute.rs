//! `worklane bench distribute`: distribution through real server processes. Seeds a store
//! with Distributed tasks waiting in one queue, then measures over REST: the latency of
//! `next` (pull), sustained pull assignments, sustained push assignments (offer over the
//! agent's SSE channel + accept), and the server's RSS with every agent connected.

use super::{median, percentiles, store_url, ServerProcess};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worklane_domain::{action, decide, Action, ActionMeta, BrokerId, NewTask, QueueType, Task};

#[derive(Debug, Args)]
pub struct DistributeArgs {
    /// `sqlite` (a new file), `postgres` (a new database on the local server) or a store URL.
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Tasks waiting in the queue before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Agents, each connected to its SSE channel for the RSS reading.
    #[arg(long, default_value_t = 1_000)]
    pub agents: usize,
    /// Pulls timed one at a time (the latency figure).
    #[arg(long, default_value_t = 2_000)]
    pub pulls: usize,
    /// Assignments in each throughput phase (pull, then push).
    #[arg(long, default_value_t = 20_000)]
    pub assignments: usize,
    /// Concurrent agents in the throughput phases.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Server processes sharing the store (PostgreSQL only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub nodes: u16,
    /// Times each throughput phase runs (the median is reported, with every run): single
    /// runs of one binary spread up to 1.5x on a two-core machine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub rounds: u16,
}

const CONFIG: &str = r#"
[[queue]]
id = "work"
when = "true"
mode = "pull"
requires = "'pull' in agent.groups"

[[queue]]
id = "offers"
when = "false"
mode = "push"
requires = "'push' in agent.groups"
offer_timeout = "60s"
"#;

/// A Distributed task in `queue`, priority spread so the queue order matters.
fn waiting(i: usize, queue: &str, now: jiff::Timestamp) -> anyhow::Result<Task> {
    let fields = serde_json::from_value(serde_json::json!({
        "priority": (i * 7919 % 1000) as i64,
        "channel": "Email",
        "data": {"i": i.to_string()},
    }))?;
    let new = NewTask {
        capture_point_id: "bench".into(),
        fields,
        hold: false,
        on_duplicate: Default::default(),
    };
    let mut t = action::create(&new, BrokerId(1), &ActionMeta::default(), now).task;
    t.status = worklane_domain::Status::Queued;
    let m = ActionMeta::default();
    let d = decide(
        &t,
        &Action::Distribute {
            distribution_id: "bench".into(),
            distribution_point_id: "bench".into(),
        },
        &m,
        now,
    )?;
    let e = decide(
        &d.task,
        &Action::Enqueue {
            queue: Some(queue.to_owned()),
            queue_type: QueueType::InteractionQueue,
            queue_target: None,
        },
        &m,
        now,
    )?;
    Ok(e.task)
}

/// Writes `n` waiting tasks into `queue`, 20,000 a transaction.
async fn seed(
    store: &Arc<dyn worklane_store::Store>,
    n: usize,
    queue: &str,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let template: Vec<Task> = (0..1000)
        .map(|i| waiting(i, queue, now))
        .collect::<Result<_, _>>()?;
    super::seed_tasks(&**store, n, &template, |id| format!("{queue}-{id}"), bar).await
}

async fn post(
    http: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut r = http.post(url);
    if !body.is_null() {
        r = r.json(&body);
    }
    let r = r.send().await?;
    let code = r.status().as_u16();
    Ok((code, r.json().await.unwrap_or_default()))
}

/// Completes an assigned task, freeing the agent's slot.
async fn complete(http: &reqwest::Client, base: &str, t: &serde_json::Value) -> anyhow::Result<()> {
    let id = t["brokerId"].as_i64().context("brokerId")?;
    let (code, v) = post(
        http,
        format!("{base}/api/v1/tasks/{id}/complete"),
        serde_json::Value::Null,
    )
    .await?;
    if code != 200 {
        bail!("complete answered {code}: {v}");
    }
    Ok(())
}

/// Every run's rate, in order: "1234 / 1301 / 1187".
fn runs(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Pulls (then completes) by `clients` agents until `n` assignments; returns the rate.
async fn pull_rate(
    http: &reqwest::Client,
    bases: &[String],
    clients: usize,
    n: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, next, base) = (http.clone(), next.clone(), bases[c % bases.len()].clone());
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let (code, t) = post(
                    &http,
                    format!("{base}/api/v1/agents/a{c}/next"),
                    serde_json::Value::Null,
                )
                .await?;
                if code != 200 {
                    bail!("next answered {code}: {t}");
                }
                complete(&http, &base, &t).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Push: `clients` agents listen on their SSE channel and accept every offer, until `n`
/// offers are accepted; returns the rate.
async fn push_rate(
    http: &reqwest::Client,
    bases: &[String],
    clients: usize,
    n: usize,
) -> anyhow::Result<f64> {
    let accepted = Arc::new(AtomicUsize::new(0));
    // Channels first, so no offer is missed; then Ready.
    let mut streams = Vec::new();
    for c in 0..clients {
        let base = &bases[c % bases.len()];
        let r = http
            .get(format!("{base}/api/v1/agents/p{c}/stream"))
            .send()
            .await?;
        streams.push((c, base.clone(), r));
    }
    let started = Instant::now();
    for c in 0..clients {
        let base = &bases[c % bases.len()];
        post(
            http,
            format!("{base}/api/v1/agents/p{c}/state"),
            serde_json::json!({"state": "Ready"}),
        )
        .await?;
    }
    // The phase ends with the n-th accepted offer: agents still waiting on their channel
    // then would wait for a keep-alive.
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(None::<Instant>);
    let done_tx = Arc::new(done_tx);
    let mut set = tokio::task::JoinSet::new();
    for (_, base, mut resp) in streams {
        let (http, accepted, done_tx) = (http.clone(), accepted.clone(), done_tx.clone());
        set.spawn(async move {
            let mut buf = String::new();
            while accepted.load(Ordering::Relaxed) < n {
                let Some(chunk) = resp.chunk().await? else {
                    bail!("an agent channel ended");
                };
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if !block.contains("event: TaskOffered") {
                        continue;
                    }
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let e: serde_json::Value = serde_json::from_str(data.trim())?;
                    let Some(offer) = e["task"]["offer"]["id"].as_str() else {
                        continue;
                    };
                    let (code, t) = post(
                        &http,
                        format!("{base}/api/v1/offers/{offer}/accept"),
                        serde_json::Value::Null,
                    )
                    .await?;
                    if code != 200 {
                        bail!("accept answered {code}: {t}");
                    }
                    complete(&http, &base, &t).await?;
                    if accepted.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        done_tx.send_replace(Some(Instant::now()));
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    let ended = loop {
        tokio::select! {
            r = done_rx.wait_for(Option::is_some) => {
                break r?.expect("waited for it");
            }
            Some(r) = set.join_next() => r??,
        }
    };
    set.abort_all();
    Ok(n as f64 / ended.duration_since(started).as_secs_f64())
}

pub async fn run(args: DistributeArgs) -> anyhow::Result<()> {
    if args.nodes > 1 && args.store == "sqlite" {
        bail!("several nodes share a PostgreSQL store only");
    }
    let url = store_url(&args.store).await?;
    let store = worklane_store::connect(&url).await?;
    let rounds = usize::from(args.rounds);
    // Offers still open when a round ends go back to the queue (the agents leave Ready).
    let push_tasks = rounds * (args.assignments + args.clients);
    let bar = ProgressBar::new((args.tasks + push_tasks) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")?,
    );
    bar.set_message("seeding waiting tasks");
    seed(&store, args.tasks, "work", &bar).await?;
    seed(&store, push_tasks, "offers", &bar).await?;
    super::analyze(&*store, &url).await?;
    bar.finish_and_clear();
    drop(store);

    let dir = std::env::temp_dir().join(format!(
        "wl-bench-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_microsecond()
    ));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("worklane.toml");
    std::fs::write(&config, CONFIG)?;
    let mut nodes = Vec::new();
    for _ in 0..args.nodes {
        nodes.push(ServerProcess::start_with(&url, Some(&config)).await?);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let http = super::client(&nodes[0].token)?
        .pool_max_idle_per_host(args.clients.max(64))
        .build()?;
    // Agents: a0.. pull (room for every pull), p0.. take offers.
    let agents = args.agents.max(args.clients);
    for i in 0..agents {
        let base = &bases[i % bases.len()];
        let (code, v) = post(
            &http,
            format!("{base}/api/v1/agents"),
            serde_json::json!({"id": format!("a{i}"), "groups": ["pull"], "capacity": {"*": 100}}),
        )
        .await?;
        if code != 201 {
            bail!("creating an agent answered {code}: {v}");
        }
        post(
            &http,
            format!("{base}/api/v1/agents/a{i}/state"),
            serde_json::json!({"state": "Ready"}),
        )
        .await?;
    }
    for c in 0..args.clients {
        let base = &bases[c % bases.len()];
        post(
            &http,
            format!("{base}/api/v1/agents"),
            serde_json::json!({"id": format!("p{c}"), "groups": ["push"], "capacity": {"*": 100}}),
        )
        .await?;
    }

    // Latency of next, one at a time, spread over the agents.
    let mut lat = Vec::with_capacity(args.pulls);
    for i in 0..args.pulls {
        let base = &bases[i % bases.len()];
        let agent = format!("a{}", i % agents);
        let t = Instant::now();
        let (code, v) = post(
            &http,
            format!("{base}/api/v1/agents/{agent}/next"),
            serde_json::Value::Null,
        )
        .await?;
        lat.push(t.elapsed());
        if code != 200 {
            bail!("next answered {code}: {v}");
        }
    }
    let (p50, p99, p999) = percentiles(lat);
    let backend = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    println!(
        "next ({backend}, {} queued, {} node(s)): p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms over {} pulls, over REST",
        args.tasks, args.nodes, args.pulls
    );

    let mut pulls = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        pulls.push(pull_rate(&http, &bases, args.clients, args.assignments).await?);
    }
    println!(
        "pull ({backend}, {} node(s), {} agents at once): {:.0} assignments/s (next, complete; median of {})",
        args.nodes,
        args.clients,
        median(pulls.clone()),
        runs(&pulls)
    );
    let mut pushes = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        pushes.push(push_rate(&http, &bases, args.clients, args.assignments).await?);
        // Offers made to a channel this round closed would wait for their timeout.
        for c in 0..args.clients {
            let (code, v) = post(
                &http,
                format!("{}/api/v1/agents/p{c}/state", bases[c % bases.len()]),
                serde_json::json!({"state": "NotReady", "reason": "bench round over"}),
            )
            .await?;
            if code != 200 {
                bail!("NotReady answered {code}: {v}");
            }
        }
    }
    println!(
        "push ({backend}, {} node(s), {} agents at once): {:.0} assignments/s (offer over SSE, accept, complete; median of {})",
        args.nodes,
        args.clients,
        median(pushes.clone()),
        runs(&pushes)
    );

    // RSS with every agent's channel open.
    let mut channels = Vec::new();
    for i in 0..agents {
        let base = &bases[i % bases.len()];
        channels.push(
            http.get(format!("{base}/api/v1/agents/a{i}/stream"))
                .send()
                .await
                .context("opening an agent channel")?,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, n) in nodes.iter().enumerate() {
        if let Some((rss, peak)) = n.rss_mib() {
            println!(
                "rss node {i}: {rss:.0} MiB now, {peak:.0} MiB peak, with {} tasks waiting and {} agent channels open",
                args.tasks, channels.len()
            );
        }
    }
    drop(channels);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
