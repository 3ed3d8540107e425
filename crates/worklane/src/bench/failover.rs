//! Failover of a part that runs once in a cluster: two nodes share a PostgreSQL store and
//! a notification target; the node running it is killed with SIGKILL, and the time until
//! the other delivers a task created just after the kill is measured. A new node then
//! takes the dead one's place and the next round starts.

use super::{store_url, ServerProcess};
use anyhow::{bail, Context};
use axum::extract::State;
use clap::Args;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// `postgres` (a new database on the local server) or a PostgreSQL URL.
    #[arg(long, default_value = "postgres")]
    pub store: String,
    /// The nodes' `server.lease_ttl` (seconds, at least 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=300))]
    pub lease_ttl: u64,
    /// Nodes killed one after the other.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

/// When the receiver first got each captureId.
type Received = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver() -> anyhow::Result<(String, Received)> {
    async fn hook(State(seen): State<Received>, body: String) -> &'static str {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Some(cid) = v["captureId"].as_str() {
            seen.lock()
                .expect("receiver lock")
                .entry(cid.to_owned())
                .or_insert_with(Instant::now);
        }
        "ok"
    }
    let seen: Received = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

/// Waits until `cond` holds, for at most `limit` (the tests' poll, which checks every
/// 20 ms: the figures are rounded to it).
async fn until<F, Fut>(what: &str, limit: Duration, cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if !worklane_store::testing::poll_until(limit, cond).await {
        bail!("timed out waiting for {what}");
    }
    Ok(())
}

const PART: &str = "notify:bench";

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    if url.starts_with("sqlite") {
        bail!("failover needs a store several processes share: use --store postgres");
    }
    let (hook, seen) = receiver().await?;
    let dir = std::env::temp_dir().join(format!("worklane-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("worklane.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlease_ttl = \"{}s\"\n\n[[notification_target]]\nid = \"bench\"\nuri = \"{hook}\"\n\
             start_at = \"beginning\"\n[notification_target.filter]\nevent_types = [\"TaskCreated\"]\n",
            args.lease_ttl
        ),
    )?;
    println!(
        "bench failover: store {}, lease_ttl {}s, {} rounds",
        worklane_store::redact_url(&url),
        args.lease_ttl,
        args.rounds
    );
    let mut nodes = vec![
        ServerProcess::start_with(&url, Some(&config)).await?,
        ServerProcess::start_with(&url, Some(&config)).await?,
    ];
    let http = super::client(&nodes[0].token)?.build()?;
    let mut took = Vec::new();
    for round in 0..args.rounds {
        // One node runs the target, the other stands by.
        let limit = Duration::from_secs(args.lease_ttl * 4 + 30);
        until("one node running the target", limit, async || {
            let a = nodes[0].state_of(&http, PART).await;
            let b = nodes[1].state_of(&http, PART).await;
            matches!(
                (a.as_deref(), b.as_deref()),
                (Some("running"), Some("standby")) | (Some("standby"), Some("running"))
            )
        })
        .await?;
        let holder = if nodes[0].state_of(&http, PART).await.as_deref() == Some("running") {
            0
        } else {
            1
        };
        let survivor_base = nodes[1 - holder].base.clone();
        let create = |cid: String| {
            let (http, base) = (http.clone(), survivor_base.clone());
            async move {
                let r = http
                    .post(format!("{base}/api/v1/tasks"))
                    .json(&serde_json::json!({ "captureId": cid }))
                    .send()
                    .await?;
                if r.status() != reqwest::StatusCode::CREATED {
                    bail!("create answered {}", r.status());
                }
                Ok::<_, anyhow::Error>(())
            }
        };
        let before = format!("before-{round}");
        create(before.clone()).await?;
        until("the holder delivering", limit, async || {
            seen.lock().expect("receiver lock").contains_key(&before)
        })
        .await?;

        let dead = nodes.remove(holder);
        let killed = Instant::now();
        dead.kill9().await?;
        let after = format!("after-{round}");
        create(after.clone()).await?;
        until("the survivor delivering", limit, async || {
            seen.lock().expect("receiver lock").contains_key(&after)
        })
        .await?;
        let t = seen.lock().expect("receiver lock")[&after].duration_since(killed);
        println!(
            "round {round}: delivered by the other node {:.2}s after the kill",
            t.as_secs_f64()
        );
        took.push(t);
        nodes.push(
            ServerProcess::start_with(&url, Some(&config))
                .await
                .context("starting a replacement node")?,
        );
    }
    took.sort_unstable();
    let median = took[took.len() / 2];
    println!(
        "failover (kill -9 to the first delivery by the other node): median {:.2}s, max {:.2}s, lease_ttl {}s",
        median.as_secs_f64(),
        took.last().map_or(0.0, Duration::as_secs_f64),
        args.lease_ttl
    );
    for n in nodes {
        n.kill9().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
