//! Conformance of [`Retention`], run against every store implementation: what pruning
//! removes, what it keeps, and the rows left in each table afterwards.

use std::sync::Arc;
use std::time::Duration;
use worklane_domain::*;
use worklane_store::*;

const DAY: Duration = Duration::from_secs(86_400);

/// `days` days into the tests' time.
fn at(days: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + days * 86_400).unwrap()
}

/// A policy pruning every kind after `days` days.
fn after(days: u32) -> RetentionPolicy {
    RetentionPolicy {
        events: Some(DAY * days),
        idempotency: Some(DAY * days),
        deliveries: Some(DAY * days),
    }
}

/// Rows of `table`, counted on a connection of the test's own.
async fn count(url: &str, table: &str) -> i64 {
    // `table` is one of this file's constants.
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
    }
}

/// Writes `n` new tasks and their events, decided at `when`; returns the events' seqs.
async fn events_at(s: &Arc<dyn Store>, n: usize, when: Timestamp) -> Vec<i64> {
    let mut tx = s.begin().await.unwrap();
    let ids = tx.alloc_ids(n).await.unwrap();
    let mut rows = Vec::new();
    for id in ids {
        let new = NewTask {
            capture_point_id: "A".into(),
            ..Default::default()
        };
        let tr = action::create(&new, id, &ActionMeta::default(), when);
        rows.push((tr.event, tr.task));
    }
    let tasks: Vec<Task> = rows.iter().map(|(_, t)| t.clone()).collect();
    tx.put_tasks(&tasks.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    let seqs = tx
        .append_events(rows)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    tx.commit().await.unwrap();
    seqs
}

async fn seqs(s: &Arc<dyn Store>) -> Vec<i64> {
    s.events_after(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

async fn old_events_are_pruned_and_recent_ones_kept(s: Arc<dyn Store>, url: String) {
    let old = events_at(&s, 3, at(0)).await;
    let recent = events_at(&s, 2, at(10)).await;
    assert_eq!(count(&url, "events").await, 5);
    // Nothing is old enough yet.
    let r = s.prune(&after(30), at(11), 100).await.unwrap();
    assert_eq!(r, PruneReport::default());
    // Kept forever: nothing goes, however old.
    let r = s
        .prune(&RetentionPolicy::default(), at(400), 100)
        .await
        .unwrap();
    assert_eq!(r, PruneReport::default());
    assert_eq!(count(&url, "events").await, 5);

    let r = s.prune(&after(7), at(11), 100).await.unwrap();
    assert_eq!(r.events, 3);
    assert!(!r.more);
    assert_eq!(count(&url, "events").await, 2);
    assert_eq!(seqs(&s).await, recent);
    assert!(old.iter().all(|o| !recent.contains(o)));
    // The tasks (live state) stay; their history starts later.
    assert_eq!(s.list_tasks(&TaskQuery::default()).await.unwrap().len(), 5);
}

async fn events_a_reader_still_needs_are_kept(s: Arc<dyn Store>, url: String) {
    let e = events_at(&s, 6, at(0)).await;
    // No reader: nothing committed is needed (PostgreSQL still keeps what may commit).
    assert!(s.retained_from().await.unwrap() > e[5]);

    // A consumer has handled up to e[2] (inclusive): it reads e[3] next.
    s.save_cursor("mq:MQ1", e[2], at(0)).await.unwrap();
    s.save_cursor("dbcp:DB1", e[4], at(0)).await.unwrap();
    assert_eq!(s.retained_from().await.unwrap(), e[3]);
    // A notification target's position is a cursor too; one at the start holds all.
    s.start_delivery_cursor("notify:t", false, at(0))
        .await
        .unwrap();
    assert_eq!(s.retained_from().await.unwrap(), 1);
    s.save_cursor("notify:t", e[5], at(0)).await.unwrap();
    assert_eq!(s.retained_from().await.unwrap(), e[3]);
    // A pending delivery may have to render its body from its event again.
    s.enqueue_deliveries(
        &[NewDelivery {
            target: "t".into(),
            seq: e[1],
            broker_id: 1,
            event_type: "TaskCreated".into(),
            guid: "g".into(),
            created_at: at(0),
            body: Vec::new(),
        }],
        at(0),
    )
    .await
    .unwrap();
    assert_eq!(s.retained_from().await.unwrap(), e[1]);
    // A replay asked for reads the log again from its first event.
    s.request_replay("t", e[0], at(0)).await.unwrap();
    assert_eq!(s.retained_from().await.unwrap(), e[0]);

    let none = RetentionPolicy {
        events: Some(DAY),
        ..Default::default()
    };
    assert_eq!(s.prune(&none, at(30), 100).await.unwrap().events, 0);
    assert_eq!(count(&url, "events").await, 6);

    // Replay carried out and the delivery delivered: the consumers' positions remain.
    s.record_deliveries(
        DeliveryRecords {
            replay: Some(("t", e[0])),
            ..Default::default()
        },
        at(0),
    )
    .await
    .unwrap();
    let d = s.claim_deliveries("t", at(30), at(31), 10).await.unwrap();
    assert_eq!(d.len(), 1);
    s.finish_attempts(
        &[AttemptResult {
            delivery_id: d[0].id,
            attempted_at: at(30),
            status_code: Some(200),
            latency_us: 1,
            error: None,
            outcome: AttemptOutcome::Delivered,
        }],
        at(30),
    )
    .await
    .unwrap();
    assert_eq!(s.retained_from().await.unwrap(), e[3]);
    let r = s.prune(&none, at(30), 100).await.unwrap();
    assert_eq!(
        r.events, 3,
        "only events below the lowest needed position go"
    );
    assert_eq!(seqs(&s).await, e[3..].to_vec());
    assert_eq!(count(&url, "events").await, 3);
}

async fn the_batch_limit_is_respected_and_more_reported(s: Arc<dyn Store>, url: String) {
    events_at(&s, 5, at(0)).await;
    let mut tx = s.begin().await.unwrap();
    let keys: Vec<(String, String)> = (0..3).map(|i| (format!("k{i}"), "{}".into())).collect();
    tx.record_results(&keys, at(0)).await.unwrap();
    tx.commit().await.unwrap();

    let r = s.prune(&after(1), at(2), 2).await.unwrap();
    assert_eq!((r.events, r.idempotency, r.more), (2, 2, true));
    assert_eq!(count(&url, "events").await, 3);
    assert_eq!(count(&url, "requests").await, 1);
    let r = s.prune(&after(1), at(2), 2).await.unwrap();
    assert_eq!((r.events, r.idempotency, r.more), (2, 1, true));
    let r = s.prune(&after(1), at(2), 2).await.unwrap();
    assert_eq!((r.events, r.idempotency, r.more), (1, 0, false));
    assert_eq!(count(&url, "events").await, 0);
    assert_eq!(count(&url, "requests").await, 0);
}

async fn idempotency_records_are_pruned_by_age(s: Arc<dyn Store>, url: String) {
    for (key, day) in [("old-1", 0), ("old-2", 1), ("new", 9)] {
        let mut tx = s.begin().await.unwrap();
        tx.record_results(&[(key.into(), "{}".into())], at(day))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(count(&url, "requests").await, 3);
    let policy = RetentionPolicy {
        idempotency: Some(DAY * 7),
        ..Default::default()
    };
    let r = s.prune(&policy, at(10), 100).await.unwrap();
    assert_eq!(r.idempotency, 2);
    assert_eq!(count(&url, "requests").await, 1);
    let mut tx = s.begin().await.unwrap();
    let keys = ["old-1".into(), "old-2".into(), "new".into()];
    let left = tx.stored_results(&keys).await.unwrap();
    assert_eq!(left, [("new".to_owned(), "{}".to_owned())]);
}

fn recorded(seq: i64, outcome: Option<AttemptOutcome>, held: bool) -> RecordedDelivery {
    RecordedDelivery {
        delivery: NewDelivery {
            target: "t".into(),
            seq,
            broker_id: seq,
            event_type: "TaskCreated".into(),
            guid: format!("g{seq}"),
            created_at: at(0),
            body: b"{}".to_vec(),
        },
        attempt: outcome.map(|outcome| AttemptResult {
            delivery_id: 0,
            attempted_at: at(0),
            status_code: Some(503),
            latency_us: 1,
            error: Some("boom".into()),
            outcome,
        }),
        held,
    }
}

async fn write(s: &Arc<dyn Store>, new: &[RecordedDelivery], when: Timestamp) -> u64 {
    s.record_deliveries(
        DeliveryRecords {
            new,
            ..Default::default()
        },
        when,
    )
    .await
    .unwrap()
}

async fn finished_deliveries_go_with_their_bodies_and_attempts(s: Arc<dyn Store>, url: String) {
    let rows = [
        recorded(1, Some(AttemptOutcome::Delivered), false),
        recorded(2, Some(AttemptOutcome::Failed), false),
        recorded(3, Some(AttemptOutcome::Retry(at(20))), false),
        recorded(4, None, true),
        recorded(5, None, false),
    ];
    assert_eq!(write(&s, &rows, at(0)).await, 5);
    // A delivered one written recently stays.
    write(
        &s,
        &[recorded(6, Some(AttemptOutcome::Delivered), false)],
        at(9),
    )
    .await;
    // The delivered one has no body; failed, pending and held have one; failed and
    // pending have an attempt row.
    assert_eq!(count(&url, "deliveries").await, 6);
    assert_eq!(count(&url, "delivery_bodies").await, 4);
    assert_eq!(count(&url, "delivery_attempts").await, 2);

    let policy = RetentionPolicy {
        deliveries: Some(DAY * 7),
        ..Default::default()
    };
    let r = s.prune(&policy, at(10), 100).await.unwrap();
    assert_eq!(r.deliveries, 2);
    assert_eq!(count(&url, "deliveries").await, 4);
    assert_eq!(count(&url, "delivery_bodies").await, 3);
    assert_eq!(count(&url, "delivery_attempts").await, 1);
    let left: Vec<(i64, DeliveryStatus)> = s
        .list_deliveries(&DeliveryQuery {
            target: "t".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|d| (d.seq, d.status))
        .collect();
    assert_eq!(
        left,
        [
            (3, DeliveryStatus::Pending),
            (4, DeliveryStatus::Held),
            (5, DeliveryStatus::Pending),
            (6, DeliveryStatus::Delivered),
        ]
    );
    // Pending and held ones are never pruned, however old.
    let r = s.prune(&policy, at(400), 100).await.unwrap();
    assert_eq!(r.deliveries, 1);
    assert_eq!(count(&url, "deliveries").await, 3);
}

/// Each test against a fresh SQLite store and a fresh PostgreSQL store, with the store's
/// URL for counting rows.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let url = worklane_store::testing::fresh_sqlite_url();
                    super::$name(worklane_store::connect(&url).await.unwrap(), url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let url = worklane_store::testing::fresh_postgres_url().await.unwrap();
                    super::$name(worklane_store::connect(&url).await.unwrap(), url).await;
                }
            )*
        }
    };
}

suite!(
    old_events_are_pruned_and_recent_ones_kept,
    events_a_reader_still_needs_are_kept,
    the_batch_limit_is_respected_and_more_reported,
    idempotency_records_are_pruned_by_age,
    finished_deliveries_go_with_their_bodies_and_attempts,
);
