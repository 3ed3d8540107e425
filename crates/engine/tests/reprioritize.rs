//! The scheduler on many nodes: two engines on one PostgreSQL (and two concurrent passes
//! on one SQLite engine) reprioritize each due task exactly once for its due time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use worklane_domain::{ActionMeta, Command, EventType, NewTask, TaskFields};
use worklane_engine::{Clock, Engine, EngineOptions, Processor, Rules, TestClock};
use worklane_rules::{RuleSet, RulesConfig};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url};

mod support;

const RULES: &str = r#"
[[department]]
id = "ops"
[[process]]
id = "p"
department = "ops"
priority = "10"
reprioritize_every = "15m"
reprioritize = "priority + 1"
[[rule]]
id = "all"
phase = "classification"
set = { processId = "p" }
"#;

fn rules() -> Rules {
    let cfg: RulesConfig = toml::from_str(RULES).unwrap();
    Rules::new(RuleSet::new(&cfg).unwrap())
}

async fn engine(url: &str, clock: &TestClock) -> (Engine, tokio::task::JoinHandle<()>) {
    let options = EngineOptions {
        clock: clock.shared(),
        rules: rules(),
        process_on_create: true,
        ..Default::default()
    };
    support::node(url, options).await
}

/// `tasks` due three times, reprioritized by passes of `batch` (above the engine's chunk
/// of 512, a pass decides one chunk while the store writes the one before).
async fn each_due_task_once(url: String, nodes: usize, tasks: usize, batch: u32) {
    let clock = TestClock::at_default();
    let mut engines = Vec::new();
    for _ in 0..nodes {
        engines.push(engine(&url, &clock).await);
    }
    let first = &engines[0].0;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..tasks {
        let first = first.clone();
        let new = NewTask {
            capture_point_id: "cp".into(),
            fields: TaskFields {
                capture_id: Some(format!("t{i}")),
                ..Default::default()
            },
            hold: false,
            on_duplicate: Default::default(),
        };
        creates.spawn(async move {
            let out = first
                .execute(Command::create(new, ActionMeta::default()))
                .await
                .unwrap();
            assert_eq!(out.task.status.as_str(), "New");
        });
    }
    creates.join_all().await;
    let start = clock.now();
    // Three due times in a row; every node runs two passes at once at each.
    for round in 1..=3 {
        clock.advance(Duration::from_secs(15 * 60));
        let now = clock.now();
        let mut passes = tokio::task::JoinSet::new();
        for (e, _) in &engines {
            for _ in 0..2 {
                let p = Processor::new(e.clone()).batch(batch);
                passes.spawn(async move {
                    let mut n = 0;
                    loop {
                        let done = p.step(now).await.unwrap();
                        if done == 0 {
                            return n;
                        }
                        n += done;
                    }
                });
            }
        }
        let total: usize = passes.join_all().await.into_iter().sum();
        assert_eq!(total, tasks, "round {round}: one reprioritization per task");
        let due = first.tasks().tasks_to_reprioritize(now, 10).await.unwrap();
        assert!(due.is_empty(), "round {round}: nothing left due");
    }
    let mut updates: HashMap<i64, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let page = first.events().events_after(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if e.event_type == EventType::TaskUpdated {
                assert_eq!(e.origin.as_deref(), Some("rules"));
                *updates.entry(e.broker_id.0).or_default() += 1;
            }
        }
    }
    assert_eq!(updates.len(), tasks);
    assert!(updates.values().all(|n| *n == 3), "three updates per task");
    let t = first
        .tasks()
        .get_task(worklane_domain::BrokerId(*updates.keys().next().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.priority, 13);
    assert_eq!(
        t.reprioritize_date_time,
        Some(start + jiff::SignedDuration::from_mins(60))
    );
    let handles: Vec<_> = engines.into_iter().map(|(e, w)| (Arc::new(e), w)).collect();
    for (e, w) in handles {
        drop(e);
        w.await.unwrap();
    }
}

#[tokio::test]
async fn postgres_two_nodes_reprioritize_each_due_task_once() {
    each_due_task_once(fresh_postgres_url().await.unwrap(), 2, 300, 64).await;
}

#[tokio::test]
async fn postgres_two_nodes_reprioritize_in_chunks_each_due_task_once() {
    each_due_task_once(fresh_postgres_url().await.unwrap(), 2, 1500, 2048).await;
}

#[tokio::test]
async fn sqlite_concurrent_passes_reprioritize_each_due_task_once() {
    each_due_task_once(fresh_sqlite_url(), 1, 300, 64).await;
}

#[tokio::test]
async fn sqlite_passes_in_chunks_reprioritize_each_due_task_once() {
    each_due_task_once(fresh_sqlite_url(), 1, 1500, 2048).await;
}
