//! PostgreSQL writers side by side (no lock shared by every write): a reader never steps
//! past an event that commits late, and two writers never decide on one task or one
//! captureId at once. Each test holds transactions open by hand to force the orders that
//! concurrent nodes only sometimes produce.

use std::time::Duration;
use worklane_domain::{action, ActionMeta, BrokerId, NewTask, Task, TaskFields, Timestamp};
use worklane_store::testing::{fresh_postgres_url, poll_until};
use worklane_store::WriteTx;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn new_task(id: i64, capture_id: &str) -> (worklane_domain::NewEvent, Task) {
    let new = NewTask {
        capture_point_id: "A".into(),
        fields: TaskFields {
            capture_id: Some(capture_id.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = action::create(&new, BrokerId(id), &ActionMeta::default(), now());
    (tr.event, tr.task)
}

/// Writes a new task and its event in `tx`; returns the event's seq.
async fn write(tx: &mut dyn WriteTx, capture_id: &str) -> i64 {
    let id = tx.alloc_ids(1).await.unwrap()[0];
    let (event, task) = new_task(id.0, capture_id);
    tx.put_tasks(&[&task]).await.unwrap();
    tx.append_events(vec![(event, task)]).await.unwrap()[0].seq
}

/// Transactions of this database waiting for a lock.
async fn waiting(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN \
         (SELECT pid FROM pg_stat_activity WHERE datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reader_never_steps_past_an_event_that_commits_late() {
    let url = fresh_postgres_url().await.unwrap();
    let store = worklane_store::connect(&url).await.unwrap();
    let mut early = store.begin().await.unwrap();
    let first = write(&mut *early, "early").await;
    let mut late = store.begin().await.unwrap();
    let second = write(&mut *late, "late").await;
    assert!(second > first);
    late.commit().await.unwrap();
    // The later seq is committed, the earlier one may still commit: nothing is readable
    // yet, or a reader would move past `first` and never see it.
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
    // Nor is it the log's end for a reader starting there ("from now on").
    assert_eq!(store.last_seq().await.unwrap(), 0);
    early.commit().await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), second);
    let seqs: Vec<i64> = store
        .events_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [first, second]);

    // A transaction that rolls back holds readers back only while it is open.
    let mut gone = store.begin().await.unwrap();
    write(&mut *gone, "gone").await;
    let mut kept = store.begin().await.unwrap();
    let third = write(&mut *kept, "kept").await;
    kept.commit().await.unwrap();
    assert!(store.events_after(second, 100).await.unwrap().is_empty());
    drop(gone);
    let seqs = poll_until(Duration::from_secs(10), async || {
        store.events_after(second, 100).await.unwrap().len() == 1
    })
    .await;
    assert!(
        seqs,
        "the rolled-back transaction stopped holding readers back"
    );
    assert_eq!(store.events_after(second, 100).await.unwrap()[0].seq, third);
}

#[tokio::test]
async fn a_task_or_a_capture_id_is_decided_by_one_writer_at_a_time() {
    let url = fresh_postgres_url().await.unwrap();
    let store = worklane_store::connect(&url).await.unwrap();
    let other = worklane_store::connect(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let cap = vec![("A".to_owned(), "claim-1".to_owned())];

    // Two writers about to create the same captureId: the second waits for the first,
    // then finds its task.
    let mut first = store.begin().await.unwrap();
    assert!(first.load(&[], &cap).await.unwrap().is_empty());
    let second = tokio::spawn({
        let cap = cap.clone();
        async move {
            let mut tx = other.begin().await.unwrap();
            let found = tx.load(&[], &cap).await.unwrap();
            (tx, found)
        }
    });
    assert!(
        poll_until(Duration::from_secs(10), async || waiting(&pool).await > 0).await,
        "the second writer waits for the captureId"
    );
    write(&mut *first, "claim-1").await;
    first.commit().await.unwrap();
    let (second_tx, found) = second.await.unwrap();
    assert_eq!(
        found.len(),
        1,
        "the second writer sees the first one's task"
    );
    let id = found[0].broker_id;
    drop(second_tx);

    // Two writers changing one task: the second loads it only once the first committed,
    // and so sees the first one's change.
    let other = worklane_store::connect(&url).await.unwrap();
    let mut first = store.begin().await.unwrap();
    let mut task = first.load(&[id], &[]).await.unwrap().remove(0);
    let second = tokio::spawn(async move {
        let mut tx = other.begin().await.unwrap();
        let found = tx.load(&[id], &[]).await.unwrap();
        (tx, found)
    });
    assert!(
        poll_until(Duration::from_secs(10), async || waiting(&pool).await > 0).await,
        "the second writer waits for the task"
    );
    task.version += 1;
    first.put_tasks(&[&task]).await.unwrap();
    first.commit().await.unwrap();
    let (_tx, found) = second.await.unwrap();
    assert_eq!(found[0].version, task.version);
}
