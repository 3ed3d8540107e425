//! `worklane bench rules`: how fast the business rules decide (in-process, one core), and
//! how fast the scheduler reprioritizes a store full of due tasks.

use super::{median, store_url};
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};
use worklane_domain::{action, decide, ActionMeta, BrokerId, NewTask, Status, Task, TaskFields};
use worklane_engine::{Engine, EngineOptions, Processor, Rules};
use worklane_rules::{RuleSet, RulesConfig, Trace};

/// The example back office (examples/rules), built into the binary so the bench needs no
/// file.
const EXAMPLE: &str = include_str!("../../../../examples/rules/worklane.toml");

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// `sqlite` (a new file), `postgres` (a new database on the local server), a store URL,
    /// or `none` to measure evaluation only.
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Classifications plus prioritizations to time in-process.
    #[arg(long, default_value_t = 1_000_000)]
    pub evals: usize,
    /// Due tasks the scheduler reprioritizes.
    #[arg(long, default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Rounds of the in-process measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

fn rule_set() -> anyhow::Result<RuleSet> {
    let cfg: RulesConfig = toml::from_str(EXAMPLE).context("the example rules")?;
    RuleSet::new(&cfg).map_err(|e| anyhow::anyhow!("the example rules: {e}"))
}

/// A mix of the example's inputs: motor claims by fax, home claims from the web (some
/// gold customers), invoices.
fn tasks(n: usize, now: jiff::Timestamp) -> Vec<Task> {
    (0..n)
        .map(|i| {
            let fields = match i % 4 {
                0 | 1 => serde_json::json!({"channel": "Fax", "data": {"claimType": "motor", "amount": (1000 + i * 37 % 90_000).to_string()}}),
                2 => serde_json::json!({"data": {"claimType": "home"}, "ext": {"customerSegment": if i % 8 == 2 { "gold" } else { "silver" }}}),
                _ => serde_json::json!({"category": "Invoice", "data": {"payBy": "2026-12-20T00:00:00Z"}}),
            };
            let fields: TaskFields = serde_json::from_value(fields).expect("bench fields");
            let cp = if i % 4 == 2 { "web" } else { "fax" };
            let new = NewTask {
                capture_point_id: cp.into(),
                fields,
                hold: false,
                on_duplicate: Default::default(),
            };
            action::create(&new, BrokerId(i as i64 + 1), &ActionMeta::default(), now).task
        })
        .collect()
}

fn apply(t: &Task, d: worklane_rules::Decision, now: jiff::Timestamp) -> Task {
    let (a, reason) = d.into_action();
    let meta = ActionMeta {
        reason,
        ..Default::default()
    };
    decide(t, &a, &meta, now)
        .map(|tr| tr.task)
        .unwrap_or_else(|_| t.clone())
}

/// Classification then prioritization of each task, on this thread.
fn eval_rate(rules: &RuleSet, input: &[Task], n: usize, now: jiff::Timestamp) -> f64 {
    let started = Instant::now();
    let mut queued = 0usize;
    for i in 0..n {
        let t = &input[i % input.len()];
        let c = rules.classify(t, now, &mut Trace::off());
        let t = apply(t, c, now);
        if t.status == Status::Captured {
            let p = rules.prioritize(&t, now, &mut Trace::off());
            queued += usize::from(matches!(p, worklane_rules::Decision::Prioritize(_)));
        }
    }
    assert!(queued > n / 2, "the bench's tasks are classified");
    n as f64 / started.elapsed().as_secs_f64()
}

pub async fn run(args: RulesArgs) -> anyhow::Result<()> {
    let rules = rule_set()?;
    let now: jiff::Timestamp = "2026-11-30T10:00:00Z".parse()?;
    let input = tasks(64, now);
    let evals = args.evals.max(1);
    let rounds = args.rounds.max(1);
    // One core: this thread alone.
    let rates: Vec<f64> = (0..rounds)
        .map(|_| eval_rate(&rules, &input, evals, now))
        .collect();
    println!(
        "rules: {:.0} classifications+prioritizations/s on one core (median of {rounds}; each is one classification and one prioritization: {:.0} decisions/s)",
        median(rates.clone()),
        2.0 * median(rates)
    );
    if args.store == "none" {
        return Ok(());
    }
    reprioritize(&args, rules, now).await
}

/// Seeds `tasks` Queued tasks already due for reprioritization straight into the store,
/// then times the scheduler until none is due.
async fn reprioritize(
    args: &RulesArgs,
    rules: RuleSet,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    let url = store_url(&args.store).await?;
    let store = worklane_store::connect(&url).await?;
    let rules = std::sync::Arc::new(rules);
    let bar = ProgressBar::new(args.tasks as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} {per_sec} {msg}",
    )?);
    bar.set_message("seeding due tasks");
    let template = tasks(64, now - jiff::SignedDuration::from_hours(1));
    let mut queued = Vec::with_capacity(template.len());
    for t in &template {
        let then = t.created_date_time;
        let c = apply(t, rules.classify(t, then, &mut Trace::off()), then);
        let mut q = apply(&c, rules.prioritize(&c, then, &mut Trace::off()), then);
        if q.status == Status::Queued {
            // Due now, whatever the process says.
            q.reprioritize_date_time = Some(now - jiff::SignedDuration::from_secs(1));
            queued.push(q);
        }
    }
    let mut left = args.tasks;
    while left > 0 {
        let n = left.min(20_000);
        let mut tx = store.begin().await?;
        let ids = tx.alloc_ids(n).await?;
        let batch: Vec<Task> = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| {
                let mut t = queued[i % queued.len()].clone();
                t.broker_id = id;
                t.capture_id = format!("bench-{}", id.0);
                t
            })
            .collect();
        let refs: Vec<&Task> = batch.iter().collect();
        tx.put_tasks(&refs).await?;
        tx.commit().await?;
        left -= n;
        bar.inc(n as u64);
    }
    super::analyze(&*store, &url).await?;
    bar.set_position(0);
    bar.set_message("reprioritizing");
    let clock = worklane_engine::TestClock::new(now);
    let options = EngineOptions {
        clock: clock.shared(),
        rules: Rules::new(rules),
        ..Default::default()
    };
    let (engine, writer) = Engine::start(store.clone(), options).await?;
    let processor = Processor::new(engine.clone()).batch(4096);
    let started = Instant::now();
    let mut done = 0usize;
    loop {
        let n = processor.step(now).await.context("a scheduler pass")?;
        if n == 0 {
            break;
        }
        done += n;
        bar.set_position(done as u64);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let due = engine.tasks().tasks_to_reprioritize(now, 1).await?;
    if !due.is_empty() || done < args.tasks {
        bail!(
            "{} reprioritized of {}; still due: {}",
            done,
            args.tasks,
            due.len()
        );
    }
    println!(
        "reprioritize ({}): {} due tasks in {:.1} s ({:.0} tasks/s), one TaskUpdated each",
        store.backend(),
        done,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    drop(processor);
    drop(engine);
    tokio::time::timeout(Duration::from_secs(60), writer).await??;
    Ok(())
}
