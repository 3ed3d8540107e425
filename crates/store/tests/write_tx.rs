//! One write transaction on both stores: what it writes is what its later reads see, even
//! where the store holds writes back until the next read or the commit (SQLite), and the
//! keys it draws follow one another whether or not they are read from the tables.

use jiff::SignedDuration;
use std::sync::Arc;
use worklane_domain::{
    action, Action, ActionMeta, BrokerId, NewEvent, NewTask, Offer, Status, Task, TaskFields,
    Timestamp,
};
use worklane_store::{DueShare, Holding, Store, WriteTx};

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// A new task as a create makes it.
fn task(id: BrokerId, capture_id: &str) -> Task {
    action::create(&new_task(capture_id), id, &ActionMeta::default(), now()).task
}

fn new_task(capture_id: &str) -> NewTask {
    NewTask {
        capture_point_id: "W".into(),
        fields: TaskFields {
            capture_id: Some(capture_id.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Creates tasks with these captureIds in `tx`: their ids and their events' seqs.
async fn create(tx: &mut dyn WriteTx, capture_ids: &[String]) -> (Vec<BrokerId>, Vec<i64>) {
    let ids = tx.alloc_ids(capture_ids.len()).await.unwrap();
    let mut parts = Vec::new();
    for (id, capture_id) in ids.iter().zip(capture_ids) {
        let tr = action::create(&new_task(capture_id), *id, &ActionMeta::default(), now());
        parts.push((tr.event, tr.task));
    }
    let tasks: Vec<Task> = parts.iter().map(|(_, t)| t.clone()).collect();
    let seqs = tx
        .append_events(parts)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    tx.put_tasks(&tasks.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    (ids, seqs)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn consecutive(v: &[i64]) -> bool {
    v.windows(2).all(|w| w[1] == w[0] + 1)
}

async fn reads_see_the_transactions_own_writes(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    let (ids, seqs) = create(&mut *tx, &names("a", 3)).await;
    // Loaded by brokerId and by captureId in the same transaction, before any commit.
    let by_id = tx.load(&ids, &[]).await.unwrap();
    assert_eq!(by_id.len(), 3);
    let cap = [("W".to_owned(), "a-1".to_owned())];
    let by_cap = tx.load(&[], &cap).await.unwrap();
    assert_eq!(by_cap.len(), 1);
    assert_eq!(by_cap[0].broker_id, ids[1]);
    // More keys after a read, then more than one statement's worth of rows (400 a
    // statement): keys go on from where they were, and nothing is written twice.
    let (more_ids, more_seqs) = create(&mut *tx, &names("b", 900)).await;
    let all_ids: Vec<i64> = ids.iter().chain(&more_ids).map(|i| i.0).collect();
    let all_seqs: Vec<i64> = seqs.iter().chain(&more_seqs).copied().collect();
    assert!(consecutive(&all_ids), "{all_ids:?}");
    assert!(consecutive(&all_seqs));
    // Nothing is visible outside the transaction until it commits.
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    tx.commit().await.unwrap();

    let events = store.events_after(0, 1000).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), all_seqs);
    for id in [ids[0], more_ids[899]] {
        assert!(store.get_task(id).await.unwrap().is_some(), "{id:?}");
    }
    // The next transaction draws after what was committed.
    let mut tx = store.begin().await.unwrap();
    let (next_ids, next_seqs) = create(&mut *tx, &names("c", 1)).await;
    assert!(next_ids[0].0 > *all_ids.last().unwrap());
    assert!(next_seqs[0] > *all_seqs.last().unwrap());
    tx.commit().await.unwrap();
}

async fn a_transaction_dropped_leaves_nothing(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    let (ids, _) = create(&mut *tx, &names("gone", 2)).await;
    // Writes still held back when the transaction ends uncommitted.
    drop(tx);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    assert!(store.get_task(ids[0]).await.unwrap().is_none());
    let mut tx = store.begin().await.unwrap();
    create(&mut *tx, &names("kept", 1)).await;
    tx.commit().await.unwrap();
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
}

async fn writes_sent_ahead_land_before_what_follows(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    let (ids, _) = create(&mut *tx, &names("ahead", 2)).await;
    // Sent without waiting; the read after it and a dropped transaction both wait.
    tx.flush().await.unwrap();
    assert_eq!(tx.load(&ids, &[]).await.unwrap().len(), 2);
    create(&mut *tx, &names("ahead-more", 1)).await;
    tx.flush().await.unwrap();
    drop(tx);
    assert!(store.get_task(ids[0]).await.unwrap().is_none());
    let mut tx = store.begin().await.unwrap();
    let (ids, _) = create(&mut *tx, &names("ahead", 2)).await;
    tx.flush().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 2);
    assert!(store.get_task(ids[1]).await.unwrap().is_some());
}

async fn a_write_sent_ahead_that_fails_fails_the_transaction(store: Arc<dyn Store>) {
    let key = vec![("req-1".to_owned(), "\"first\"".to_owned())];
    let mut tx = store.begin().await.unwrap();
    tx.record_results(&key, now()).await.unwrap();
    tx.commit().await.unwrap();
    // The same idempotency key again: refused where the write lands, with the flush
    // (PostgreSQL) or at the read after it (SQLite).
    let mut tx = store.begin().await.unwrap();
    let dup = vec![("req-1".to_owned(), "\"second\"".to_owned())];
    let landed = async {
        tx.record_results(&dup, now()).await?;
        tx.flush().await?;
        tx.stored_results(&["req-1".to_owned()]).await
    }
    .await;
    assert!(landed.is_err(), "{landed:?}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let kept = tx.stored_results(&["req-1".to_owned()]).await.unwrap();
    assert_eq!(kept, key);
}

async fn writes_beyond_one_statements_parameters_all_land(store: Arc<dyn Store>) {
    // 3,000 tasks and their events (on PostgreSQL an array a column), and 25,000
    // idempotency results of three parameters each: more parameters than PostgreSQL takes
    // in one statement (65,535), so the writes held back go in more than one.
    let mut tx = store.begin().await.unwrap();
    let (ids, seqs) = create(&mut *tx, &names("wide", 3000)).await;
    let results: Vec<(String, String)> = (0..25_000)
        .map(|i| (format!("key-{i}"), format!("{{\"n\":{i}}}")))
        .collect();
    tx.record_results(&results, now()).await.unwrap();
    tx.commit().await.unwrap();
    let events = store.events_after(0, 5000).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    for id in [ids[0], ids[1499], ids[2999]] {
        let t = store.get_task(id).await.unwrap().expect("written");
        assert_eq!(t.broker_id, id);
    }
    let keys = ["key-0", "key-9999", "key-24999"].map(String::from);
    let mut tx = store.begin().await.unwrap();
    let mut stored = tx.stored_results(&keys).await.unwrap();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("key-0".into(), "{\"n\":0}".into()),
            ("key-24999".into(), "{\"n\":24999}".into()),
            ("key-9999".into(), "{\"n\":9999}".into()),
        ]
    );
}

async fn a_row_written_twice_without_a_read_between_keeps_the_second(store: Arc<dyn Store>) {
    // New tasks written, then one written again and another deleted, with no read
    // between: each later write wins, as if each had gone at once. 3,000 of them: on
    // PostgreSQL one statement part writes them all, and the two written again are among
    // those still waiting.
    let mut tx = store.begin().await.unwrap();
    let ids = tx.alloc_ids(3000).await.unwrap();
    let mut tasks: Vec<Task> = ids
        .iter()
        .map(|id| task(*id, &format!("twice-{}", id.0)))
        .collect();
    tx.put_tasks(&tasks.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    let (first, gone) = (ids[2999], ids[2998]);
    tasks[2999].priority = 7;
    tasks[2999].queue = Some("later".into());
    tx.put_tasks(&[&tasks[2999]]).await.unwrap();
    tx.delete_tasks(&[gone]).await.unwrap();
    tx.commit().await.unwrap();
    let kept = store.get_task(first).await.unwrap().expect("written");
    assert_eq!((kept.priority, kept.queue.as_deref()), (7, Some("later")));
    assert!(store.get_task(gone).await.unwrap().is_none());
    assert!(store.get_task(ids[0]).await.unwrap().is_some());
}

/// Commits `n` Queued tasks, each due for reprioritization at `due` of its brokerId.
async fn put_due(
    store: &Arc<dyn Store>,
    n: usize,
    due: impl Fn(i64) -> Timestamp,
) -> Vec<BrokerId> {
    let mut tx = store.begin().await.unwrap();
    let ids = tx.alloc_ids(n).await.unwrap();
    let tasks: Vec<Task> = ids
        .iter()
        .map(|id| {
            let mut t = task(*id, &format!("due-{}", id.0));
            t.status = Status::Queued;
            t.reprioritize_date_time = Some(due(id.0));
            t
        })
        .collect();
    tx.put_tasks(&tasks.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn due_tasks_are_claimed_share_by_share(store: Arc<dyn Store>) {
    // 40 Queued tasks due at seven times: each share's claim takes its own, the longest
    // due first, and the shares together take each task once.
    let ids = put_due(&store, 40, |id| now() - SignedDuration::from_mins(id % 7)).await;
    let mut taken = Vec::new();
    for share in DueShare::all() {
        let mut tx = store.begin().await.unwrap();
        let claimed = tx.claim_due(now(), 100, Some(share)).await.unwrap();
        assert!(!claimed.is_empty(), "share {} has due tasks", share.index());
        assert!(claimed.iter().all(|t| share.holds(t.broker_id)));
        let due: Vec<_> = claimed.iter().map(|t| t.reprioritize_date_time).collect();
        assert!(
            due.windows(2).all(|w| w[0] <= w[1]),
            "the longest due first"
        );
        taken.extend(claimed.iter().map(|t| t.broker_id));
        // Released before the next claims, which skip rows still locked.
        tx.commit().await.unwrap();
    }
    taken.sort();
    assert_eq!(taken, ids, "every due task, in one share only");
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_due(now(), 100, None).await.unwrap().len(), 40);
    let longest = ids.iter().filter(|id| id.0 % 7 == 6).count();
    let early = tx.claim_due(now() - SignedDuration::from_mins(6), 100, None);
    assert_eq!(early.await.unwrap().len(), longest, "only what is due");
    assert!(DueShare::new(DueShare::COUNT).is_none());
}

/// `tasks` changed by an update setting `priority` and `category`: the events and the
/// tasks as they are after it.
fn updated(tasks: &[Task], priority: i32, category: &str) -> (Vec<(NewEvent, Task)>, Vec<Task>) {
    let fields = TaskFields {
        priority: Some(i64::from(priority)),
        category: Some(category.to_owned()),
        ..Default::default()
    };
    let parts: Vec<(NewEvent, Task)> = tasks
        .iter()
        .map(|t| {
            let tr = action::decide(
                t,
                &Action::Update(fields.clone()),
                &ActionMeta::default(),
                now(),
            )
            .unwrap();
            (tr.event, tr.task)
        })
        .collect();
    let after = parts.iter().map(|(_, t)| t.clone()).collect();
    (parts, after)
}

/// Each task as the store holds it, and the task its newest event carries.
async fn stored(store: &Arc<dyn Store>, ids: &[BrokerId]) -> Vec<(Task, Task)> {
    let mut out = Vec::new();
    for id in ids {
        let row = store.get_task(*id).await.unwrap().expect("written");
        let events = store.task_events(*id).await.unwrap();
        out.push((row, events.last().expect("an event").task.clone()));
    }
    out
}

async fn tasks_written_with_their_events_are_stored_as_the_events_carry_them(
    store: Arc<dyn Store>,
) {
    // captureIds a task's JSON must escape, one of them holding the text that marks
    // where an event's body carries its task.
    let capture_ids = [
        "plain".to_owned(),
        "quote \" and \\ backslash".to_owned(),
        "ünïcödé ✓ 日本".to_owned(),
        ",\"task\":{\"brokerId\":1}".to_owned(),
    ];
    let mut tx = store.begin().await.unwrap();
    let (ids, _) = create(&mut *tx, &capture_ids).await;
    tx.commit().await.unwrap();
    // The events and the task rows of one write, whose rows take their JSON from the
    // snapshots the events carry (`Bodies`): the same tasks in the same order, in another
    // order, a part only, and two events for each task (the row holds the second).
    for (round, shape) in ["same", "reversed", "part", "twice"]
        .into_iter()
        .enumerate()
    {
        let mut tx = store.begin().await.unwrap();
        let loaded = tx.load(&ids, &[]).await.unwrap();
        let priority = 10 + round as i32;
        let (mut parts, mut after) = updated(&loaded, priority, shape);
        if shape == "twice" {
            let (more, again) = updated(&after, priority + 100, "again");
            parts.extend(more);
            after = again;
        }
        tx.append_events(parts).await.unwrap();
        let mut write: Vec<&Task> = after.iter().collect();
        match shape {
            "reversed" => write.reverse(),
            "part" => write.truncate(2),
            _ => {}
        }
        tx.put_tasks(&write).await.unwrap();
        tx.commit().await.unwrap();
        for (i, (row, carried)) in stored(&store, &ids).await.into_iter().enumerate() {
            assert_eq!(carried, after[i], "{shape}: the event carries the task");
            assert_eq!(carried.capture_id, capture_ids[i]);
            if write.iter().any(|t| t.broker_id == ids[i]) {
                assert_eq!(row, after[i], "{shape}: the row holds the task written");
            } else {
                assert_ne!(
                    row.priority, priority,
                    "{shape}: a task not written is unchanged"
                );
            }
        }
    }
}

async fn events_appended_in_parts_after_a_claim_are_read_in_order(store: Arc<dyn Store>) {
    // Ten due tasks claimed, then their events appended a few at a time, each part sent
    // before the next is decided, as a reprioritization pass does: every append's seqs
    // above the last one's, and a later transaction's above them all.
    put_due(&store, 10, |_| now()).await;
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_due(now(), 100, None).await.unwrap();
    assert_eq!(claimed.len(), 10);
    let mut seqs = Vec::new();
    for part in claimed[..6].chunks(3) {
        let (events, after) = updated(part, 50, "ahead");
        seqs.extend(
            tx.append_events(events)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq),
        );
        tx.put_tasks(&after.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        tx.flush().await.unwrap();
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    tx.commit().await.unwrap();
    // A reader of the log finds them in order, then the later one.
    let mut tx = store.begin().await.unwrap();
    let (_, later) = create(&mut *tx, &names("after-ahead", 1)).await;
    tx.commit().await.unwrap();
    assert!(later[0] > seqs[5]);
    let read: Vec<i64> = store
        .events_after(seqs[0] - 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let want: Vec<i64> = seqs.iter().chain(&later).copied().collect();
    assert_eq!(read, want);
}

/// Sorted, to compare counts whichever way the store read them.
fn sorted(mut v: Vec<Holding>) -> Vec<Holding> {
    v.sort_by(|a, b| (&a.agent, &a.channel).cmp(&(&b.agent, &b.channel)));
    v
}

async fn holdings_are_counted_alike_for_few_agents_and_for_many(store: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    let (ids, _) = create(&mut *tx, &names("held", 7)).await;
    let mut tasks = tx.load(&ids, &[]).await.unwrap();
    tasks.sort_by_key(|t| t.broker_id);
    // a-1: two offers on voice, one Assigned task on email; a-2: one Assigned task with
    // no channel; a-3 (not asked for): one offer; the last task is held by nobody.
    let holders = [
        ("a-1", Some("voice"), true),
        ("a-1", Some("voice"), true),
        ("a-1", Some("email"), false),
        ("a-2", None, false),
        ("a-3", Some("voice"), true),
    ];
    for (t, (agent, channel, offered)) in tasks.iter_mut().zip(holders) {
        t.channel = channel.map(str::to_owned);
        if offered {
            t.status = Status::Distributed;
            t.offer = Some(Offer {
                id: format!("{}-1", t.broker_id.0),
                agent: agent.into(),
                offered_date_time: now(),
                expires_date_time: now() + SignedDuration::from_secs(30),
            });
        } else {
            t.status = Status::Assigned;
            t.assigned_to_user = Some(agent.into());
        }
    }
    tx.put_tasks(&tasks.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let want = vec![
        Holding {
            agent: "a-1".into(),
            channel: Some("email".into()),
            tasks: 1,
        },
        Holding {
            agent: "a-1".into(),
            channel: Some("voice".into()),
            tasks: 2,
        },
        Holding {
            agent: "a-2".into(),
            channel: None,
            tasks: 1,
        },
    ];
    let mut tx = store.begin().await.unwrap();
    let few = ["a-1".to_owned(), "a-2".to_owned()];
    assert_eq!(sorted(tx.holdings(&few).await.unwrap()), want);
    // A dispatcher pass asks for every Ready agent: counted from whole indexes, and
    // still only for the agents asked about.
    let mut many = names("idle", 100);
    many.extend(few);
    assert_eq!(sorted(tx.holdings(&many).await.unwrap()), want);
}

worklane_store::store_suite!(
    holdings_are_counted_alike_for_few_agents_and_for_many,
    reads_see_the_transactions_own_writes,
    a_transaction_dropped_leaves_nothing,
    writes_sent_ahead_land_before_what_follows,
    a_write_sent_ahead_that_fails_fails_the_transaction,
    writes_beyond_one_statements_parameters_all_land,
    a_row_written_twice_without_a_read_between_keeps_the_second,
    due_tasks_are_claimed_share_by_share,
    tasks_written_with_their_events_are_stored_as_the_events_carry_them,
    events_appended_in_parts_after_a_claim_are_read_in_order
);
