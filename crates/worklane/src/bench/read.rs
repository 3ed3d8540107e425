//! Reads against a large SQLite store: get by brokerId, the first page of Queued tasks by
//! priority, and the server's RSS.

use super::{percentiles, store_url, ServerProcess};
use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use std::time::{Duration, Instant};
use worklane_domain::{
    Action, ActionMeta, BrokerId, Classification, Command, NewTask, TaskFields, TaskRef,
};
use worklane_engine::{Engine, EngineOptions};

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// `sqlite` (a new file), `postgres`, or a store URL (reused as is when it has tasks).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Tasks to seed.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// The share of seeded tasks that are Queued (the others are held).
    #[arg(long, default_value_t = 0.5)]
    pub queued_fraction: f64,
    /// Gets by brokerId to measure.
    #[arg(long, default_value_t = 20_000)]
    pub gets: usize,
    /// First-page listings to measure.
    #[arg(long, default_value_t = 2_000)]
    pub pages: usize,
}

async fn seed(url: &str, n: usize, queued_fraction: f64) -> anyhow::Result<i64> {
    let store = worklane_store::connect(url).await?;
    // Seeding goes through the engine like every write, in batches as large as the
    // seeding rounds.
    let (engine, writer) = Engine::start(
        store.clone(),
        EngineOptions {
            max_batch: 2000,
            ..Default::default()
        },
    )
    .await?;
    let existing = store.last_seq().await?;
    if existing > 0 {
        println!("store already has events; not seeding");
        let first = store.list_tasks(&Default::default()).await?;
        return Ok(first.first().map_or(1, |t| t.broker_id.0));
    }
    let bar = ProgressBar::new(n as u64).with_style(ProgressStyle::with_template(
        "seeding {bar:40} {pos}/{len} {per_sec} eta {eta}",
    )?);
    let mut rng = rand::thread_rng();
    let batch = 2000;
    let mut first_id = None;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let mut cmds = Vec::with_capacity(k);
        let mut queued = Vec::with_capacity(k);
        for i in 0..k {
            let q = rng.gen_bool(queued_fraction);
            queued.push(q);
            let fields = TaskFields {
                capture_id: Some(format!("seed-{}", done + i)),
                priority: Some(rng.gen_range(0..1000)),
                channel: Some("Email".into()),
                data: [("Region".to_owned(), "North".to_owned())].into(),
                ..Default::default()
            };
            let new = NewTask {
                capture_point_id: "SEED".into(),
                fields,
                hold: !q,
                ..Default::default()
            };
            cmds.push(Command::create(new, ActionMeta::default()));
        }
        let created =
            futures::future::join_all(cmds.into_iter().map(|c| engine.execute_result(c))).await;
        let mut moves = Vec::new();
        for (r, q) in created.into_iter().zip(queued) {
            let id = r?.map_err(|e| anyhow::anyhow!(e))?.task.broker_id;
            first_id.get_or_insert(id.0);
            if q {
                let t = TaskRef::Broker(id);
                moves.push(Command::act(
                    t.clone(),
                    Action::Classify(Classification::default()),
                    ActionMeta::default(),
                ));
                moves.push(Command::act(
                    t,
                    Action::Prioritize(Default::default()),
                    ActionMeta::default(),
                ));
            }
        }
        for r in
            futures::future::join_all(moves.into_iter().map(|c| engine.execute_result(c))).await
        {
            r?.map_err(|e| anyhow::anyhow!(e))?;
        }
        done += k;
        bar.inc(k as u64);
    }
    bar.finish_and_clear();
    drop(engine);
    writer.await?;
    Ok(first_id.unwrap_or(1))
}

pub async fn run(args: ReadArgs) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    println!(
        "bench read: store {}, {} tasks",
        worklane_store::redact_url(&url),
        args.tasks
    );
    let t = Instant::now();
    let first = seed(&url, args.tasks, args.queued_fraction).await?;
    println!("seeded in {:.1}s", t.elapsed().as_secs_f64());
    let server = ServerProcess::start(&url).await?;
    let http = super::client(&server.token)?.build()?;
    let mut rng = rand::thread_rng();
    let last = first + args.tasks as i64 - 1;
    let mut get_lat = Vec::with_capacity(args.gets);
    for _ in 0..args.gets {
        let id = BrokerId(rng.gen_range(first..=last));
        let t = Instant::now();
        let r = http
            .get(format!("{}/api/v1/tasks/{id}", server.base))
            .send()
            .await?;
        let ok = r.status().is_success();
        let _ = r.bytes().await?;
        get_lat.push(t.elapsed());
        if !ok {
            bail!("get {id} failed");
        }
    }
    let mut page_lat: Vec<Duration> = Vec::with_capacity(args.pages);
    for _ in 0..args.pages {
        let t = Instant::now();
        let r = http
            .get(format!(
                "{}/api/v1/tasks?status=Queued&sort=priority&limit=50",
                server.base
            ))
            .send()
            .await?;
        let ok = r.status().is_success();
        let _ = r.bytes().await?;
        page_lat.push(t.elapsed());
        if !ok {
            bail!("listing failed");
        }
    }
    let (g50, g99, g999) = percentiles(get_lat);
    let (p50, p99, p999) = percentiles(page_lat);
    println!(
        "get by brokerId ({} requests) ms: p50 {g50:.3}  p99 {g99:.3}  p99.9 {g999:.3}",
        args.gets
    );
    println!("first page of Queued by priority, 50 tasks ({} requests) ms: p50 {p50:.3}  p99 {p99:.3}  p99.9 {p999:.3}", args.pages);
    if let Some((now, peak)) = server.rss_mib() {
        println!("server RSS: {now:.1} MiB (peak {peak:.1} MiB)");
    }
    server.kill9().await?;
    Ok(())
}
