//! Conformance of [`DeliveryStore`], run against every store implementation.

use std::sync::Arc;
use worklane_domain::*;
use worklane_store::*;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn row(target: &str, seq: i64, broker_id: i64) -> NewDelivery {
    NewDelivery {
        target: target.into(),
        seq,
        broker_id,
        event_type: "TaskCreated".into(),
        guid: format!("guid-{target}-{seq}"),
        created_at: at(0),
        body: format!("{{\"seq\":{seq}}}").into_bytes(),
    }
}

fn result(id: i64, outcome: AttemptOutcome, code: Option<i64>) -> AttemptResult {
    AttemptResult {
        delivery_id: id,
        attempted_at: at(1),
        status_code: code,
        latency_us: 1234,
        error: (outcome != AttemptOutcome::Delivered).then(|| "boom".to_owned()),
        outcome,
    }
}

/// Writes `new` rows and releases the held deliveries of `release` (target t's tasks), in
/// one transaction; returns how many rows were added.
async fn write(s: &Arc<dyn Store>, new: &[RecordedDelivery], release: &[i64]) -> u64 {
    s.record_deliveries(
        DeliveryRecords {
            new,
            release: (!release.is_empty()).then_some(("t", release)),
            ..Default::default()
        },
        at(2),
    )
    .await
    .unwrap()
}

/// `target`'s deliveries (of one task when given), up to 1,000.
async fn listed(s: &Arc<dyn Store>, target: &str, broker_id: Option<i64>) -> Vec<Delivery> {
    s.list_deliveries(&DeliveryQuery {
        target: target.into(),
        broker_id,
        limit: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn enqueue_is_idempotent_per_event(s: Arc<dyn Store>) {
    let rows: Vec<_> = (1..=2500).map(|i| row("t", i, i)).collect();
    assert_eq!(s.enqueue_deliveries(&rows, at(0)).await.unwrap(), 2500);
    // Re-reading the log after a crash adds nothing and keeps the first GUID.
    let mut again = rows[..10].to_vec();
    again[0].guid = "other".into();
    assert_eq!(s.enqueue_deliveries(&again, at(0)).await.unwrap(), 0);
    // The same event for another target is another delivery.
    assert_eq!(
        s.enqueue_deliveries(&[row("u", 1, 1)], at(0))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 2500);
    let first = s
        .list_deliveries(&DeliveryQuery {
            target: "t".into(),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first[0].guid, "guid-t-1");
    assert!(first[0].body.is_empty(), "listings leave bodies out");
    let one = s.get_delivery(first[0].id).await.unwrap().unwrap();
    assert_eq!(one.body, b"{\"seq\":1}");
    assert_eq!(first[0].created_at, at(0));
    assert_eq!(first[0].status, DeliveryStatus::Pending);
}

async fn claims_respect_lease_and_task_order(s: Arc<dyn Store>) {
    // Task 1 has three events, task 2 one.
    let rows = vec![
        row("t", 1, 1),
        row("t", 2, 2),
        row("t", 3, 1),
        row("t", 4, 1),
    ];
    s.enqueue_deliveries(&rows, at(0)).await.unwrap();
    let claimed = s.claim_deliveries("t", at(1), at(60), 10).await.unwrap();
    let seqs: Vec<_> = claimed.iter().map(|d| d.seq).collect();
    assert_eq!(
        seqs,
        [1, 2],
        "only each task's oldest pending delivery is due"
    );
    // Leased rows are not claimed again before the lease ends.
    assert!(s
        .claim_deliveries("t", at(2), at(60), 10)
        .await
        .unwrap()
        .is_empty());
    // Seq 1 fails and is retried later: task 1 stays blocked until then.
    let id1 = claimed[0].id;
    let id2 = claimed[1].id;
    s.finish_attempts(
        &[
            result(id1, AttemptOutcome::Retry(at(30)), Some(500)),
            result(id2, AttemptOutcome::Delivered, Some(200)),
        ],
        at(2),
    )
    .await
    .unwrap();
    assert!(s
        .claim_deliveries("t", at(3), at(60), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.next_delivery_due("t").await.unwrap(), Some(at(0)));
    let retry = s.claim_deliveries("t", at(31), at(90), 10).await.unwrap();
    assert_eq!(retry.iter().map(|d| d.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(retry[0].body, b"{\"seq\":1}", "claims carry the body");
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].last_status_code, Some(500));
    // A final failure unblocks the task's next notification.
    s.finish_attempts(&[result(id1, AttemptOutcome::Failed, Some(404))], at(32))
        .await
        .unwrap();
    let next = s.claim_deliveries("t", at(33), at(90), 10).await.unwrap();
    assert_eq!(next.iter().map(|d| d.seq).collect::<Vec<_>>(), [3]);
    // A restart releases leases: the in-flight delivery is due again at once.
    assert_eq!(s.release_deliveries("t", at(34)).await.unwrap(), 1);
    let again = s.claim_deliveries("t", at(34), at(90), 10).await.unwrap();
    assert_eq!(again.iter().map(|d| d.seq).collect::<Vec<_>>(), [3]);

    let attempts = s.delivery_attempts(id1).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        [Some(500), Some(404)]
    );
    assert_eq!(attempts[0].latency_us, 1234);
    assert_eq!(attempts[0].error.as_deref(), Some("boom"));
    let d1 = s.get_delivery(id1).await.unwrap().unwrap();
    assert_eq!(d1.status, DeliveryStatus::Failed);
    assert_eq!(
        s.get_delivery(id2).await.unwrap().unwrap().status,
        DeliveryStatus::Delivered
    );
    let failed = s
        .list_deliveries(&DeliveryQuery {
            target: "t".into(),
            status: Some(DeliveryStatus::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.iter().map(|d| d.id).collect::<Vec<_>>(), [id1]);
    let of_task = s
        .list_deliveries(&DeliveryQuery {
            target: "t".into(),
            broker_id: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_task.len(), 3);
}

fn recorded(seq: i64, broker_id: i64, outcome: Option<AttemptOutcome>) -> RecordedDelivery {
    RecordedDelivery {
        delivery: row("t", seq, broker_id),
        attempt: outcome.map(|o| {
            result(
                0,
                o,
                Some(if o == AttemptOutcome::Delivered {
                    200
                } else {
                    503
                }),
            )
        }),
        held: false,
    }
}

async fn record_writes_first_attempts_with_the_position(s: Arc<dyn Store>) {
    s.start_delivery_cursor("notify:t", false, at(0))
        .await
        .unwrap();
    let new = vec![
        recorded(1, 1, Some(AttemptOutcome::Delivered)),
        recorded(2, 2, Some(AttemptOutcome::Retry(at(30)))),
        // Task 2's next one waits behind its retry.
        recorded(3, 2, None),
        recorded(4, 4, Some(AttemptOutcome::Failed)),
    ];
    let records = DeliveryRecords {
        new: &new,
        results: &[],
        cursor: Some(("notify:t", 4)),
        replay: None,
        release: None,
    };
    assert_eq!(s.record_deliveries(records, at(2)).await.unwrap(), 4);
    assert_eq!(s.cursor("notify:t").await.unwrap(), 4);
    // Recorded again after a crash: nothing added, the first record stands.
    assert_eq!(s.record_deliveries(records, at(3)).await.unwrap(), 0);

    let all = s
        .list_deliveries(&DeliveryQuery {
            target: "t".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let by_seq = |seq: i64| all.iter().find(|d| d.seq == seq).unwrap().clone();
    let delivered = by_seq(1);
    assert_eq!(
        (
            delivered.status,
            delivered.attempts,
            delivered.last_status_code
        ),
        (DeliveryStatus::Delivered, 1, Some(200))
    );
    assert_eq!(delivered.last_latency_us, Some(1234));
    let full = s.get_delivery(delivered.id).await.unwrap().unwrap();
    assert!(
        full.body.is_empty(),
        "a delivered notification is stored without its body"
    );
    let attempts = s.delivery_attempts(delivered.id).await.unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the delivering attempt is read off the delivery"
    );
    assert_eq!((attempts[0].id, attempts[0].status_code), (None, Some(200)));

    let retry = by_seq(2);
    assert_eq!((retry.status, retry.attempts), (DeliveryStatus::Pending, 1));
    assert_eq!(retry.next_attempt_at, at(30));
    assert_eq!(
        s.get_delivery(retry.id).await.unwrap().unwrap().body,
        b"{\"seq\":2}"
    );
    let attempts = s.delivery_attempts(retry.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].id.is_some());
    assert_eq!(attempts[0].error.as_deref(), Some("boom"));
    assert_eq!(
        (by_seq(3).status, by_seq(3).attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(by_seq(4).status, DeliveryStatus::Failed);

    // What the store knows of a run of events: which are there, which tasks wait.
    let known = s.known_deliveries("t", 2, 9, &[1, 2, 4, 7]).await.unwrap();
    assert_eq!(known.existing, [2, 3, 4].into_iter().collect());
    assert_eq!(known.pending_tasks, [2].into_iter().collect());
    assert!(s.known_deliveries("u", 1, 9, &[2]).await.unwrap() == KnownDeliveries::default());
    let upto_one = s.known_deliveries("t", 0, 1, &[1]).await.unwrap();
    assert_eq!(
        upto_one.existing,
        [1].into_iter().collect(),
        "bounds are inclusive"
    );

    // Task 2 in order: the retry when due, then what waited behind it.
    assert!(s
        .claim_deliveries("t", at(10), at(60), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = s.claim_deliveries("t", at(31), at(90), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
    s.finish_attempts(
        &[result(retry.id, AttemptOutcome::Delivered, Some(204))],
        at(32),
    )
    .await
    .unwrap();
    let attempts = s.delivery_attempts(retry.id).await.unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(503), Some(204)]);
    let next = s.claim_deliveries("t", at(33), at(90), 10).await.unwrap();
    assert_eq!(next.iter().map(|d| d.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(next[0].body, b"{\"seq\":3}");
    s.finish_attempts(
        &[result(next[0].id, AttemptOutcome::Delivered, Some(200))],
        at(34),
    )
    .await
    .unwrap();
    // Rows, none pending: nothing waits.
    let known = s.known_deliveries("t", 1, 9, &[1, 2, 4]).await.unwrap();
    assert_eq!(known.existing, [1, 2, 3, 4].into_iter().collect());
    assert!(known.pending_tasks.is_empty());
}

async fn resend_and_replay(s: Arc<dyn Store>) {
    let rows: Vec<_> = (1..=4).map(|i| row("t", i, i)).collect();
    s.enqueue_deliveries(&rows, at(0)).await.unwrap();
    let claimed = s.claim_deliveries("t", at(1), at(60), 10).await.unwrap();
    let done: Vec<_> = claimed
        .iter()
        .map(|d| result(d.id, AttemptOutcome::Failed, Some(400)))
        .collect();
    s.finish_attempts(&done, at(2)).await.unwrap();
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 0);
    // Resend one: pending again with its GUID, a fresh budget.
    let d = s
        .resend_delivery("t", claimed[0].id, at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.status, d.attempts, d.guid.as_str()),
        (DeliveryStatus::Pending, 0, "guid-t-1")
    );
    assert!(s
        .resend_delivery("other", claimed[0].id, at(3))
        .await
        .unwrap()
        .is_none());
    // Replay from seq 3: a request for the notifier (the earliest wins), which carries it
    // out in one of its writes: rows 3 and 4 pending again, the request gone.
    assert_eq!(s.request_replay("t", 3, at(4)).await.unwrap(), 2);
    assert_eq!(s.request_replay("t", 5, at(4)).await.unwrap(), 2);
    assert_eq!(
        s.delivery_backlog("t").await.unwrap(),
        1,
        "nothing reset yet"
    );
    assert_eq!(s.replay_request("t").await.unwrap(), Some(3));
    assert_eq!(
        s.replay_request("t").await.unwrap(),
        Some(3),
        "kept until carried out"
    );
    let carried = DeliveryRecords {
        cursor: Some(("notify:t", 2)),
        replay: Some(("t", 3)),
        ..Default::default()
    };
    s.record_deliveries(carried, at(5)).await.unwrap();
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 3);
    assert_eq!(s.replay_request("t").await.unwrap(), None);
    assert_eq!(s.cursor("notify:t").await.unwrap(), 2);
    // A request that came meanwhile for an earlier seq stays for the next round.
    s.request_replay("t", 1, at(6)).await.unwrap();
    s.record_deliveries(carried, at(7)).await.unwrap();
    assert_eq!(s.replay_request("t").await.unwrap(), Some(1));
}

async fn delivery_cursor_starts_once(s: Arc<dyn Store>) {
    let n = NewTask {
        capture_point_id: "CP".into(),
        fields: TaskFields::default(),
        hold: false,
        on_duplicate: OnDuplicate::Allow,
    };
    // One task and its event, written through the write port as the engine would.
    let mut tx = s.begin().await.unwrap();
    let id = tx.alloc_ids(1).await.unwrap()[0];
    let tr = worklane_domain::action::create(&n, id, &ActionMeta::default(), at(0));
    tx.put_tasks(&[&tr.task]).await.unwrap();
    tx.append_events(vec![(tr.event, tr.task)]).await.unwrap();
    tx.commit().await.unwrap();
    let last = s.last_seq().await.unwrap();
    assert!(last > 0);
    assert_eq!(
        s.start_delivery_cursor("notify:a", true, at(0))
            .await
            .unwrap(),
        last
    );
    assert_eq!(
        s.start_delivery_cursor("notify:b", false, at(0))
            .await
            .unwrap(),
        0
    );
    // Once it exists, the position is kept whatever is asked.
    s.save_cursor("notify:b", 1, at(1)).await.unwrap();
    assert_eq!(
        s.start_delivery_cursor("notify:b", true, at(2))
            .await
            .unwrap(),
        1
    );
}

/// The attempt that delivered a notification is kept on its row; a resend or replay
/// keeps it in the history before the row's next attempt takes its place.
async fn resend_and_replay_keep_the_delivering_attempt(s: Arc<dyn Store>) {
    let new = vec![
        recorded(1, 1, Some(AttemptOutcome::Delivered)),
        recorded(2, 2, Some(AttemptOutcome::Delivered)),
    ];
    write(&s, &new, &[]).await;
    let all = listed(&s, "t", None).await;
    let id_of = |seq: i64| all.iter().find(|d| d.seq == seq).unwrap().id;
    let (one, two) = (id_of(1), id_of(2));
    // Resent, then delivered again: both deliveries are in its history, oldest first.
    s.resend_delivery("t", one, at(3)).await.unwrap().unwrap();
    let kept = s.delivery_attempts(one).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].id.is_some(), "stored as an attempt row");
    assert_eq!(
        (
            kept[0].attempted_at,
            kept[0].status_code,
            kept[0].latency_us
        ),
        (at(1), Some(200), 1234)
    );
    let again = s.claim_deliveries("t", at(4), at(60), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    let mut second = result(one, AttemptOutcome::Delivered, Some(204));
    second.attempted_at = at(5);
    s.finish_attempts(&[second], at(5)).await.unwrap();
    let history = s.delivery_attempts(one).await.unwrap();
    let codes: Vec<_> = history
        .iter()
        .map(|a| (a.attempted_at, a.status_code))
        .collect();
    assert_eq!(codes, [(at(1), Some(200)), (at(5), Some(204))]);
    // Resending it again while pending keeps nothing twice.
    s.resend_delivery("t", one, at(6)).await.unwrap().unwrap();
    s.resend_delivery("t", one, at(6)).await.unwrap().unwrap();
    assert_eq!(s.delivery_attempts(one).await.unwrap().len(), 2);
    // A replay does the same for every delivered row it makes pending again.
    s.record_deliveries(
        DeliveryRecords {
            replay: Some(("t", 2)),
            ..Default::default()
        },
        at(7),
    )
    .await
    .unwrap();
    let kept = s.delivery_attempts(two).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].id.is_some(), kept[0].status_code),
        (true, Some(200))
    );
}

/// A notification of task `broker_id` held behind its task's one in flight.
fn held(seq: i64, broker_id: i64) -> RecordedDelivery {
    RecordedDelivery {
        held: true,
        ..recorded(seq, broker_id, None)
    }
}

/// (seq, status) of each delivery of target t (of one task when given), by seq.
async fn statuses(s: &Arc<dyn Store>, broker_id: Option<i64>) -> Vec<(i64, DeliveryStatus)> {
    let mut out: Vec<_> = listed(s, "t", broker_id)
        .await
        .iter()
        .map(|d| (d.seq, d.status))
        .collect();
    out.sort_unstable_by_key(|&(seq, _)| seq);
    out
}

/// Held deliveries wait, unclaimable, for the write that releases their task; start-up's
/// release of leases leaves them held.
async fn held_deliveries_wait_for_their_release(s: Arc<dyn Store>) {
    // Task 7's first notification is in flight; its next two are held behind it, and a
    // task 8 notification is pending as usual.
    write(&s, &[held(2, 7), held(3, 7), recorded(4, 8, None)], &[]).await;
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 3);
    let claimed = s.claim_deliveries("t", at(5), at(60), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.seq).collect::<Vec<_>>(), [4]);
    assert_eq!(
        s.release_deliveries("t", at(6)).await.unwrap(),
        1,
        "only the lease"
    );
    assert_eq!(
        s.claim_deliveries("t", at(7), at(60), 10)
            .await
            .unwrap()
            .len(),
        1,
        "task 8's again; task 7's still held"
    );
    assert_eq!(
        statuses(&s, Some(7)).await,
        [(2, DeliveryStatus::Held), (3, DeliveryStatus::Held)]
    );
    // Releasing another task changes nothing.
    write(&s, &[], &[8]).await;
    assert!(s
        .claim_deliveries("t", at(8), at(60), 10)
        .await
        .unwrap()
        .is_empty());
    // The write that records the first one releases them: due now, in order.
    write(&s, &[recorded(1, 7, Some(AttemptOutcome::Delivered))], &[7]).await;
    let claimed = s.claim_deliveries("t", at(9), at(60), 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.seq).collect::<Vec<_>>(),
        [2],
        "the oldest of the task first"
    );
    assert_eq!(claimed[0].body, b"{\"seq\":2}", "held with its body");
    assert_eq!(
        statuses(&s, Some(7)).await,
        [
            (1, DeliveryStatus::Delivered),
            (2, DeliveryStatus::Pending),
            (3, DeliveryStatus::Pending)
        ]
    );
}

/// A held delivery is not due at any time: long after the next attempt it carries (the
/// time it was stored) it is still not claimed, yet it counts in the backlog, a new
/// notification of its task waits behind it, and listings show it as held.
async fn held_deliveries_are_never_due(s: Arc<dyn Store>) {
    write(&s, &[held(2, 7), held(3, 7)], &[]).await;
    let rows = listed(&s, "t", None).await;
    assert!(
        rows.iter()
            .all(|d| d.status == DeliveryStatus::Held && d.next_attempt_at == at(2)),
        "{rows:?}"
    );
    let much_later = at(1_000_000);
    assert!(s
        .claim_deliveries("t", much_later, at(1_000_060), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.next_delivery_due("t").await.unwrap(), None, "none due");
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 2);
    let known = s.known_deliveries("t", 4, 4, &[7, 8]).await.unwrap();
    assert_eq!(known.pending_tasks, [7].into_iter().collect());
    // A pending notification of the task stored behind them without releasing them
    // (a write that does not record the one they wait for) waits for them.
    write(&s, &[recorded(4, 7, None)], &[]).await;
    assert!(
        s.claim_deliveries("t", much_later, at(1_000_060), 10)
            .await
            .unwrap()
            .is_empty(),
        "a pending delivery waits behind its task's held ones"
    );
    assert_eq!(s.next_delivery_due("t").await.unwrap(), Some(at(2)));
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 3);
    let with_status = |status| {
        let s = s.clone();
        async move {
            s.list_deliveries(&DeliveryQuery {
                target: "t".into(),
                status: Some(status),
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|d| d.seq)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(with_status(DeliveryStatus::Held).await, [2, 3]);
    assert_eq!(with_status(DeliveryStatus::Pending).await, [4]);
    // Released: the task's oldest goes first.
    write(&s, &[], &[7]).await;
    let claimed = s
        .claim_deliveries("t", much_later, at(1_000_060), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(with_status(DeliveryStatus::Held).await, Vec::<i64>::new());
}

/// Delivered notifications of any batch size (SQLite writes them in statements of a few
/// fixed sizes), of two targets in one write, each written once.
async fn delivered_batches_of_any_size_are_written_whole(s: Arc<dyn Store>) {
    let delivered = |target: &str, seqs: std::ops::RangeInclusive<i64>| -> Vec<RecordedDelivery> {
        seqs.map(|i| {
            let mut r = recorded(i, i, Some(AttemptOutcome::Delivered));
            r.delivery.target = target.into();
            r.delivery.guid = format!("guid-{target}-{i}");
            r
        })
        .collect()
    };
    // 256 + 32 + 3 * 4 + 3.
    let mut first = delivered("t", 1..=303);
    first.extend(delivered("u", 1..=5));
    assert_eq!(write(&s, &first, &[]).await, 308);
    // Overlapping the first: only the new ones are added.
    assert_eq!(write(&s, &delivered("t", 290..=310), &[]).await, 7);
    let all = listed(&s, "t", None).await;
    let mut seqs: Vec<i64> = all.iter().map(|d| d.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=310).collect::<Vec<_>>());
    let d = all.iter().find(|d| d.seq == 300).unwrap();
    assert_eq!(
        (d.status, d.attempts, d.guid.as_str(), d.broker_id),
        (DeliveryStatus::Delivered, 1, "guid-t-300", 300)
    );
    assert_eq!(
        (d.last_status_code, d.last_latency_us, d.last_attempt_at),
        (Some(200), Some(1234), Some(at(1)))
    );
    assert_eq!(
        (d.event_type.as_str(), d.created_at),
        ("TaskCreated", at(0))
    );
    assert_eq!(s.delivery_backlog("t").await.unwrap(), 0);
    assert_eq!(listed(&s, "u", None).await.len(), 5);
}

worklane_store::store_suite!(
    held_deliveries_wait_for_their_release,
    held_deliveries_are_never_due,
    resend_and_replay_keep_the_delivering_attempt,
    delivered_batches_of_any_size_are_written_whole,
    enqueue_is_idempotent_per_event,
    claims_respect_lease_and_task_order,
    resend_and_replay,
    record_writes_first_attempts_with_the_position,
    delivery_cursor_starts_once
);

/// Migration 0004 on a store an older release left, whose held rows were pending with a
/// next attempt of 9999-12-30: they become held and are released as ever, the other rows
/// stay as they were. The store is brought to 0003 by a migrator over a copy of
/// migrations 0001 to 0003, given its rows with raw SQL, then opened as usual (which
/// applies 0004).
mod held_migration {
    use super::*;
    use std::str::FromStr;

    /// The next attempt older releases stored held rows with (9999-12-30T00:00:00Z).
    const OLD_HELD_NEXT_ATTEMPT: i64 = 253_402_128_000_000_000;

    fn us(secs: i64) -> i64 {
        at(secs).as_microsecond()
    }

    /// The migrations of `backend` before 0004, in a directory of their own.
    fn before_0004(backend: &str) -> tempfile::TempDir {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "0004" {
                std::fs::copy(&path, dir.path().join(name)).unwrap();
            }
        }
        dir
    }

    /// A delivery row as an older release wrote it.
    struct OldRow {
        seq: i64,
        broker_id: i64,
        status: &'static str,
        attempts: i64,
        next_attempt_at: i64,
        /// Stored for all but a delivered one.
        body: bool,
    }

    /// Task 7: delivered, then two held behind its one in flight; task 8: a retry.
    fn old_rows() -> [OldRow; 4] {
        let row = |seq, broker_id, status, attempts, next_attempt_at| OldRow {
            seq,
            broker_id,
            status,
            attempts,
            next_attempt_at,
            body: status != "delivered",
        };
        [
            row(1, 7, "delivered", 1, us(1)),
            row(2, 7, "pending", 0, OLD_HELD_NEXT_ATTEMPT),
            row(3, 7, "pending", 0, OLD_HELD_NEXT_ATTEMPT),
            row(4, 8, "pending", 1, us(30)),
        ]
    }

    /// Brings the database of `$pool` (a SQLite or PostgreSQL pool) to migration 0003,
    /// writes [`old_rows`] and closes the pool.
    macro_rules! old_store {
        ($pool:expr, $backend:literal) => {{
            let pool = $pool;
            let dir = before_0004($backend);
            sqlx::migrate::Migrator::new(dir.path())
                .await
                .unwrap()
                .run(&pool)
                .await
                .unwrap();
            for r in old_rows() {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO deliveries (target, seq, broker_id, event_type, guid, \
                     created_at, status, attempts, next_attempt_at, leased, updated_at) \
                     VALUES ('t', $1, $2, 'TaskUpdated', $3, $4, $5, $6, $7, FALSE, $8) \
                     RETURNING id",
                )
                .bind(r.seq)
                .bind(r.broker_id)
                .bind(format!("guid-t-{}", r.seq))
                .bind(us(0))
                .bind(r.status)
                .bind(r.attempts)
                .bind(r.next_attempt_at)
                .bind(us(3))
                .fetch_one(&pool)
                .await
                .unwrap();
                if r.body {
                    sqlx::query("INSERT INTO delivery_bodies (id, body) VALUES ($1, $2)")
                        .bind(id)
                        .bind(format!("{{\"seq\":{}}}", r.seq).into_bytes())
                        .execute(&pool)
                        .await
                        .unwrap();
                }
            }
            pool.close().await;
        }};
    }

    #[tokio::test]
    async fn sqlite() {
        let url = worklane_store::testing::fresh_sqlite_url();
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        old_store!(
            sqlx::SqlitePool::connect_with(opts).await.unwrap(),
            "sqlite"
        );
        converted(worklane_store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres() {
        let url = worklane_store::testing::fresh_postgres_url().await.unwrap();
        old_store!(sqlx::PgPool::connect(&url).await.unwrap(), "postgres");
        converted(worklane_store::connect(&url).await.unwrap()).await;
    }

    async fn converted(s: Arc<dyn Store>) {
        assert_eq!(
            statuses(&s, None).await,
            [
                (1, DeliveryStatus::Delivered),
                (2, DeliveryStatus::Held),
                (3, DeliveryStatus::Held),
                (4, DeliveryStatus::Pending)
            ]
        );
        let next: Vec<_> = listed(&s, "t", None)
            .await
            .iter()
            .map(|d| (d.seq, d.next_attempt_at))
            .collect();
        assert!(
            next.contains(&(2, at(3))) && next.contains(&(3, at(3))),
            "held rows carry the time they were stored: {next:?}"
        );
        assert!(next.contains(&(4, at(30))), "{next:?}");
        assert_eq!(s.next_delivery_due("t").await.unwrap(), Some(at(30)));
        assert_eq!(s.delivery_backlog("t").await.unwrap(), 3);
        let claimed = s.claim_deliveries("t", at(100), at(160), 10).await.unwrap();
        assert_eq!(claimed.iter().map(|d| d.seq).collect::<Vec<_>>(), [4]);
        // The write that records task 7's notification in flight releases them.
        write(&s, &[], &[7]).await;
        let claimed = s.claim_deliveries("t", at(101), at(160), 10).await.unwrap();
        assert_eq!(claimed.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(claimed[0].body, b"{\"seq\":2}");
    }
}
