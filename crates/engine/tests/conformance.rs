//! The write path's conformance suite: the engine deciding batches of commands inside
//! one write transaction, and what the store then reads back, on every store backend.

use std::sync::Arc;
use worklane_domain::*;
use worklane_store::*;

/// One batch decided and committed in one transaction, as the engine's writer does it.
async fn execute(
    s: &dyn Store,
    batch: Vec<Command>,
    now: Timestamp,
) -> Result<Vec<CommandResult>, StoreError> {
    worklane_engine::commit_batch(s, &batch, now).await
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn new_task(cp: &str, capture_id: Option<&str>, on_duplicate: OnDuplicate) -> NewTask {
    NewTask {
        capture_point_id: cp.into(),
        fields: TaskFields {
            capture_id: capture_id.map(Into::into),
            ..Default::default()
        },
        hold: false,
        on_duplicate,
    }
}

async fn create(s: &dyn Store, n: NewTask) -> CommandResult {
    execute(s, vec![Command::create(n, ActionMeta::default())], now())
        .await
        .unwrap()
        .remove(0)
}

async fn act(s: &dyn Store, id: BrokerId, action: Action) -> CommandResult {
    execute(
        s,
        vec![Command::act(
            TaskRef::Broker(id),
            action,
            ActionMeta::default(),
        )],
        now(),
    )
    .await
    .unwrap()
    .remove(0)
}

async fn create_get_and_find(s: Arc<dyn Store>) {
    let o = create(&*s, new_task("CP1", Some("c-1"), OnDuplicate::Allow))
        .await
        .unwrap();
    assert!(o.task.broker_id.0 > 0);
    let ev = o.event.unwrap();
    assert_eq!(ev.event_type, EventType::TaskCreated);
    assert_eq!(s.get_task(o.task.broker_id).await.unwrap().unwrap(), o.task);
    let by_capture = TaskRef::Capture {
        capture_point_id: "CP1".into(),
        capture_id: "c-1".into(),
    };
    assert_eq!(
        s.find_task(&by_capture).await.unwrap().unwrap().broker_id,
        o.task.broker_id
    );
    let other_cp = TaskRef::Capture {
        capture_point_id: "CP2".into(),
        capture_id: "c-1".into(),
    };
    assert!(s.find_task(&other_cp).await.unwrap().is_none());
    // Without a captureId, it is the brokerId as text.
    let o2 = create(&*s, new_task("CP1", None, OnDuplicate::Allow))
        .await
        .unwrap();
    assert_eq!(o2.task.capture_id, o2.task.broker_id.to_string());
    assert!(o2.task.broker_id > o.task.broker_id);
}

async fn duplicates(s: Arc<dyn Store>) {
    let first = create(&*s, new_task("CP", Some("dup"), OnDuplicate::Refuse))
        .await
        .unwrap();
    let e = create(&*s, new_task("CP", Some("dup"), OnDuplicate::Refuse))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TaskAlreadyCaptured);
    assert!(e
        .parameters
        .contains(&format!("BrokerId={}", first.task.broker_id)));
    let again = create(
        &*s,
        new_task("CP", Some("dup"), OnDuplicate::ReturnExisting),
    )
    .await
    .unwrap();
    assert_eq!(again.task.broker_id, first.task.broker_id);
    assert!(again.event.is_none());
    // Another capture point may use the same captureId; so may a point that does not check.
    create(&*s, new_task("CP9", Some("dup"), OnDuplicate::Refuse))
        .await
        .unwrap();
    create(&*s, new_task("CP", Some("dup"), OnDuplicate::Allow))
        .await
        .unwrap();
}

async fn actions_and_events(s: Arc<dyn Store>) {
    let id = create(&*s, new_task("CP", None, OnDuplicate::Allow))
        .await
        .unwrap()
        .task
        .broker_id;
    act(&*s, id, Action::Hold).await.unwrap();
    let e = act(&*s, id, Action::Hold).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::CannotHoldAssignedTask);
    act(&*s, id, Action::Resume).await.unwrap();
    act(
        &*s,
        id,
        Action::Assign {
            user: "agent".into(),
        },
    )
    .await
    .unwrap();
    act(&*s, id, Action::Complete).await.unwrap();
    let e = act(&*s, id, Action::Cancel).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::CannotCancelCompletedTask);
    let missing = act(&*s, BrokerId(999_999), Action::Hold).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::TaskNotFound);
    let history = s.task_events(id).await.unwrap();
    let types: Vec<_> = history.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::TaskCreated,
            EventType::TaskHeld,
            EventType::TaskResumed,
            EventType::TaskAssigned,
            EventType::TaskCompleted
        ]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(history.last().unwrap().task.status, Status::Completed);
    // Stop deletes the task; its history stays.
    act(&*s, id, Action::Stop).await.unwrap();
    assert!(s.get_task(id).await.unwrap().is_none());
    assert_eq!(
        s.task_events(id).await.unwrap().last().unwrap().event_type,
        EventType::TaskStopped
    );
}

async fn batch_is_one_transaction_with_independent_results(s: Arc<dyn Store>) {
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.push(Command::create(
            new_task("B", Some(&format!("b{i}")), OnDuplicate::Refuse),
            ActionMeta::default(),
        ));
    }
    batch.push(Command::create(
        new_task("B", Some("b1"), OnDuplicate::Refuse),
        ActionMeta::default(),
    ));
    batch.push(Command::act(
        TaskRef::Broker(BrokerId(123_456_789)),
        Action::Hold,
        ActionMeta::default(),
    ));
    let results = execute(&*s, batch, now()).await.unwrap();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 50);
    assert_eq!(
        results[50].as_ref().unwrap_err().code,
        ErrorCode::TaskAlreadyCaptured
    );
    assert_eq!(
        results[51].as_ref().unwrap_err().code,
        ErrorCode::TaskNotFound
    );
    let ids: std::collections::HashSet<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|o| o.task.broker_id)
        .collect();
    assert_eq!(ids.len(), 50);
}

async fn events_after_and_cursors(s: Arc<dyn Store>) {
    let start = s.last_seq().await.unwrap();
    for _ in 0..5 {
        create(&*s, new_task("E", None, OnDuplicate::Allow))
            .await
            .unwrap();
    }
    let evs = s.events_after(start, 3).await.unwrap();
    assert_eq!(evs.len(), 3);
    let rest = s.events_after(evs[2].seq, 100).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(s.last_seq().await.unwrap(), rest[1].seq);
    assert_eq!(s.cursor("c").await.unwrap(), 0);
    s.save_cursor("c", 7, now()).await.unwrap();
    s.save_cursor("c", 9, now()).await.unwrap();
    assert_eq!(s.cursor("c").await.unwrap(), 9);
}

async fn idempotent_commands_replay(s: Arc<dyn Store>) {
    let cmd = Command::create(
        new_task("I", Some("i1"), OnDuplicate::Allow),
        ActionMeta::default(),
    )
    .idempotent("I:msg-1");
    let first = execute(&*s, vec![cmd.clone()], now())
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let second = execute(&*s, vec![cmd], now())
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(second.replayed);
    assert_eq!(second.task, first.task);
    assert_eq!(second.event, first.event);
    let tasks = s
        .list_tasks(&TaskQuery {
            capture_point_id: Some("I".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    // A refusal is replayed too.
    let bad = Command::act(
        TaskRef::Broker(BrokerId(987_654)),
        Action::Hold,
        ActionMeta::default(),
    )
    .idempotent("I:msg-2");
    let r1 = execute(&*s, vec![bad.clone()], now())
        .await
        .unwrap()
        .remove(0);
    let r2 = execute(&*s, vec![bad], now()).await.unwrap().remove(0);
    assert_eq!(r1, r2);
}

async fn listing_filters_and_pages(s: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for p in [5, 1, 5, 9, 3] {
        let o = create(&*s, new_task("L", None, OnDuplicate::Allow))
            .await
            .unwrap();
        act(
            &*s,
            o.task.broker_id,
            Action::Classify(Classification {
                process_id: Some("proc".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        act(
            &*s,
            o.task.broker_id,
            Action::Prioritize(Prioritization {
                fields: TaskFields {
                    priority: Some(p.into()),
                    ..Default::default()
                },
                reprioritize_date_time: None,
            }),
        )
        .await
        .unwrap();
        ids.push((p, o.task.broker_id));
    }
    act(&*s, ids[4].1, Action::Assign { user: "u1".into() })
        .await
        .unwrap();
    let q = |after, order| TaskQuery {
        status: Some(Status::Queued),
        capture_point_id: Some("L".into()),
        order,
        after,
        limit: 2,
        ..Default::default()
    };
    let p1 = s.list_tasks(&q(None, TaskOrder::Priority)).await.unwrap();
    assert_eq!(p1.iter().map(|t| t.priority).collect::<Vec<_>>(), [9, 5]);
    let last = p1.last().unwrap();
    let p2 = s
        .list_tasks(&q(
            Some(PageAfter {
                broker_id: last.broker_id,
                priority: last.priority,
            }),
            TaskOrder::Priority,
        ))
        .await
        .unwrap();
    assert_eq!(p2.iter().map(|t| t.priority).collect::<Vec<_>>(), [5, 1]);
    assert_eq!(p2[0].broker_id, ids[2].1);
    let by_id = s.list_tasks(&q(None, TaskOrder::BrokerId)).await.unwrap();
    assert_eq!(by_id[0].broker_id, ids[0].1);
    let assigned = s
        .list_tasks(&TaskQuery {
            assigned_to_user: Some("u1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(assigned.len(), 1);
    let by_process = s
        .list_tasks(&TaskQuery {
            process_id: Some("proc".into()),
            capture_point_id: Some("L".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_process.len(), 5);
    // A task classified again leaves its old process's listing for its new one's.
    let other = TaskFields {
        process_id: Some("other".into()),
        ..Default::default()
    };
    act(&*s, ids[0].1, Action::Update(other)).await.unwrap();
    for (process, n) in [("proc", 4), ("other", 1)] {
        let found = s
            .list_tasks(&TaskQuery {
                process_id: Some(process.into()),
                capture_point_id: Some("L".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), n, "{process}");
    }
}

/// A listing by due date finds live and finished tasks alike (PostgreSQL reads them from
/// two partial indexes), and neither later ones nor undated ones.
async fn listing_by_due_date_spans_live_and_finished(s: Arc<dyn Store>) {
    let t = Timestamp::from_second(1_900_000_000).unwrap();
    let hour = jiff::SignedDuration::from_hours(1);
    let mut ids = Vec::new();
    for (due, finish) in [
        (Some(t - hour * 2), None),
        (Some(t - hour), Some(Action::Complete)),
        (Some(t - hour * 3), Some(Action::Cancel)),
        (Some(t + hour), None),
        (Some(t + hour), Some(Action::Complete)),
        (None, None),
        (None, Some(Action::Cancel)),
    ] {
        let mut n = new_task("DUE", None, OnDuplicate::Allow);
        n.fields.due_date_time = due;
        let id = create(&*s, n).await.unwrap().task.broker_id;
        if let Some(a) = finish {
            if matches!(a, Action::Complete) {
                // A new task is assigned once it has been held and resumed.
                act(&*s, id, Action::Hold).await.unwrap();
                act(&*s, id, Action::Resume).await.unwrap();
                let user = "agent".into();
                act(&*s, id, Action::Assign { user }).await.unwrap();
            }
            act(&*s, id, a).await.unwrap();
        }
        ids.push(id);
    }
    // This test's tasks due before `due_before` (live or finished) or overdue at
    // `overdue_at` (live only).
    let due = |due_before, overdue_at| TaskQuery {
        capture_point_id: Some("DUE".into()),
        due_before,
        overdue_at,
        ..Default::default()
    };
    let found = s.list_tasks(&due(Some(t), None)).await.unwrap();
    let mut found: Vec<BrokerId> = found.iter().map(|t| t.broker_id).collect();
    found.sort_unstable();
    assert_eq!(found, ids[..3]);
    // Overdue: live tasks only.
    let overdue = s.list_tasks(&due(None, Some(t))).await.unwrap();
    assert_eq!(
        overdue.iter().map(|t| t.broker_id).collect::<Vec<_>>(),
        [ids[0]]
    );
    // A live task's due date moved later leaves both listings.
    let later = TaskFields {
        due_date_time: Some(t + hour * 5),
        ..Default::default()
    };
    act(&*s, ids[0], Action::Update(later)).await.unwrap();
    for q in [due(None, Some(t)), due(Some(t - hour * 2), None)] {
        let found = s.list_tasks(&q).await.unwrap();
        let found: Vec<BrokerId> = found.iter().map(|t| t.broker_id).collect();
        assert_eq!(
            found,
            if q.due_before.is_some() {
                vec![ids[2]]
            } else {
                vec![]
            }
        );
    }
}

async fn processing_queries(s: Arc<dyn Store>) {
    let later: Timestamp = "2099-01-01T00:00:00Z".parse().unwrap();
    let mut n = new_task("P", None, OnDuplicate::Allow);
    n.fields.activation_date_time = Some(later);
    let waiting = create(&*s, n).await.unwrap().task;
    let ready = create(&*s, new_task("P", None, OnDuplicate::Allow))
        .await
        .unwrap()
        .task;
    let todo: Vec<_> = s
        .tasks_to_process(now(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.broker_id)
        .collect();
    assert!(todo.contains(&ready.broker_id));
    assert!(!todo.contains(&waiting.broker_id));
    assert_eq!(s.next_activation(now()).await.unwrap(), Some(later));
    let todo_later = s.tasks_to_process(later, 100).await.unwrap();
    assert!(todo_later.iter().any(|t| t.broker_id == waiting.broker_id));
    // Expiration.
    let mut e = new_task("P", None, OnDuplicate::Allow);
    e.fields.expiration_date_time = Some("2000-01-01T00:00:00Z".parse().unwrap());
    let exp = create(&*s, e).await.unwrap().task;
    assert!(s
        .tasks_expired(now(), 10)
        .await
        .unwrap()
        .iter()
        .all(|t| t.broker_id != exp.broker_id));
    act(&*s, exp.broker_id, Action::Cancel).await.unwrap();
    assert!(s
        .tasks_expired(now(), 10)
        .await
        .unwrap()
        .iter()
        .any(|t| t.broker_id == exp.broker_id));
}

/// Commands of one batch see the effects of the commands before them.
async fn batch_sees_its_own_changes(s: Arc<dyn Store>) {
    let cap = |cid: &str| TaskRef::Capture {
        capture_point_id: "W".into(),
        capture_id: cid.into(),
    };
    let m = ActionMeta::default;
    let batch = vec![
        Command::create(new_task("W", Some("w1"), OnDuplicate::Refuse), m()),
        Command::act(cap("w1"), Action::Hold, m()),
        Command::create(new_task("W", Some("w1"), OnDuplicate::Refuse), m()),
        Command::create(new_task("W", Some("w1"), OnDuplicate::ReturnExisting), m()),
        Command::act(
            cap("w1"),
            Action::Update(TaskFields {
                capture_id: Some("w2".into()),
                ..Default::default()
            }),
            m(),
        ),
        Command::act(cap("w1"), Action::Resume, m()),
        Command::act(cap("w2"), Action::Resume, m()),
        Command::create(new_task("W", None, OnDuplicate::Allow), m()).idempotent("W:k1"),
        Command::create(new_task("W", None, OnDuplicate::Allow), m()).idempotent("W:k1"),
        Command::act(cap("w2"), Action::Cancel, m()),
        Command::act(cap("w2"), Action::Stop, m()),
        Command::act(cap("w2"), Action::Hold, m()),
    ];
    let r = execute(&*s, batch, now()).await.unwrap();
    let id = r[0].as_ref().unwrap().task.broker_id;
    assert_eq!(r[1].as_ref().unwrap().task.status, Status::Held);
    assert_eq!(
        r[2].as_ref().unwrap_err().code,
        ErrorCode::TaskAlreadyCaptured
    );
    assert_eq!(r[3].as_ref().unwrap().task.broker_id, id);
    assert!(r[3].as_ref().unwrap().event.is_none());
    assert_eq!(r[4].as_ref().unwrap().task.capture_id, "w2");
    assert_eq!(
        r[5].as_ref().unwrap_err().code,
        ErrorCode::TaskNotFound,
        "w1 is gone after the update"
    );
    assert_eq!(r[6].as_ref().unwrap().task.status, Status::Queued);
    let (k1, k1_again) = (r[7].as_ref().unwrap(), r[8].as_ref().unwrap());
    assert_eq!(k1.task.broker_id, k1_again.task.broker_id);
    assert!(k1_again.replayed && !k1.replayed);
    assert_eq!(k1.event, k1_again.event);
    assert_eq!(
        r[11].as_ref().unwrap_err().code,
        ErrorCode::TaskNotFound,
        "stopped in the batch"
    );
    // What the batch wrote is what it answered.
    assert!(s.get_task(id).await.unwrap().is_none());
    let history = s.task_events(id).await.unwrap();
    let types: Vec<_> = history.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::TaskCreated,
            EventType::TaskHeld,
            EventType::TaskUpdated,
            EventType::TaskResumed,
            EventType::TaskCanceled,
            EventType::TaskStopped
        ]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    let seqs: Vec<i64> = r
        .iter()
        .filter_map(|x| x.as_ref().ok()?.event.as_ref().map(|e| e.seq))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "events in command order: {seqs:?}"
    );
    // A later batch replays the key from the store.
    let again = execute(
        &*s,
        vec![Command::create(new_task("W", None, OnDuplicate::Allow), m()).idempotent("W:k1")],
        now(),
    )
    .await
    .unwrap();
    assert_eq!(again[0].as_ref().unwrap().task.broker_id, k1.task.broker_id);
    assert!(again[0].as_ref().unwrap().replayed);
}

/// `ActOnBest` picks, inside the transaction, the best matching task: highest priority,
/// then earliest due date (none last), then oldest; never one an earlier command of the
/// batch took; and sees tasks the batch itself made ready.
async fn act_on_best_picks_the_best_task_in_order(s: Arc<dyn Store>) {
    let t0 = now();
    let queued = |cid: &str, priority: i32, due: Option<Timestamp>| {
        let mut n = new_task("B", Some(cid), OnDuplicate::Refuse);
        n.fields.priority = Some(i64::from(priority));
        n.fields.due_date_time = due;
        let r = TaskRef::Capture {
            capture_point_id: "B".into(),
            capture_id: cid.into(),
        };
        vec![
            Command::create(n, ActionMeta::default()),
            Command::act(
                r.clone(),
                Action::Classify(Classification::default()),
                ActionMeta::default(),
            ),
            Command::act(
                r,
                Action::Prioritize(Default::default()),
                ActionMeta::default(),
            ),
        ]
    };
    let mut setup = Vec::new();
    setup.extend(queued("low-undue", 5, None));
    setup.extend(queued(
        "low-due",
        5,
        Some(t0 + jiff::SignedDuration::from_hours(1)),
    ));
    setup.extend(queued("high", 9, None));
    setup.extend(queued(
        "low-due-later",
        5,
        Some(t0 + jiff::SignedDuration::from_hours(2)),
    ));
    for r in execute(&*s, setup, t0).await.unwrap() {
        r.unwrap();
    }
    let assign = |user: &str| {
        Command::act_on_best(
            Selection::status(Status::Queued),
            Action::Assign { user: user.into() },
            ActionMeta::default(),
        )
    };
    let r = execute(&*s, vec![assign("a1"), assign("a2")], t0)
        .await
        .unwrap();
    let picked: Vec<&str> = r
        .iter()
        .map(|x| x.as_ref().unwrap().task.capture_id.as_str())
        .collect();
    assert_eq!(picked, ["high", "low-due"]);
    assert_eq!(
        r[0].as_ref().unwrap().task.assigned_to_user.as_deref(),
        Some("a1")
    );

    // A task made ready earlier in the same batch competes with the stored ones.
    let mut batch = queued("urgent", 50, None);
    batch.push(assign("a3"));
    batch.push(assign("a4"));
    batch.push(assign("a5"));
    batch.push(assign("a6"));
    let r = execute(&*s, batch, t0).await.unwrap();
    let picked: Vec<String> = r[3..6]
        .iter()
        .map(|x| x.as_ref().unwrap().task.capture_id.clone())
        .collect();
    assert_eq!(picked, ["urgent", "low-due-later", "low-undue"]);
    assert_eq!(
        r[6].as_ref().unwrap_err().code,
        ErrorCode::TaskNotFound,
        "none left"
    );
    // The store holds what the batch answered.
    let assigned = s
        .list_tasks(&TaskQuery {
            status: Some(Status::Assigned),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(assigned.len(), 5);

    // A selection narrowed to a queue finds nothing in another.
    let mut sel = Selection::status(Status::Assigned);
    sel.queue = Some("nowhere".into());
    let r = execute(
        &*s,
        vec![Command::act_on_best(
            sel,
            Action::Complete,
            ActionMeta::default(),
        )],
        t0,
    )
    .await
    .unwrap();
    assert_eq!(r[0].as_ref().unwrap_err().code, ErrorCode::TaskNotFound);
}

/// The console's figures follow every write: the backlog by status, queue and process
/// (several changes of one task in one batch count once), throughput per 15 minutes with
/// SLA attainment, finish and handle times, and archiving; folding changes no figure.
/// Overdue tasks in all queues.
async fn overdue(s: &dyn Store, now: Timestamp) -> i64 {
    s.overdue(now).await.unwrap().iter().map(|(_, n)| n).sum()
}

async fn figures_follow_the_writes(s: Arc<dyn Store>) {
    let t0: Timestamp = "2026-12-01T09:01:00Z".parse().unwrap();
    let at = |mins: i64| t0 + jiff::SignedDuration::from_mins(mins);
    let with_due = |due: Timestamp| NewTask {
        capture_point_id: "CP".into(),
        fields: TaskFields {
            process_id: Some("claims".into()),
            due_date_time: Some(due),
            ..Default::default()
        },
        hold: false,
        on_duplicate: OnDuplicate::Allow,
    };
    let mut ids = Vec::new();
    for due in [at(60), at(10), at(60)] {
        let r = execute(
            &*s,
            vec![Command::create(with_due(due), ActionMeta::default())],
            t0,
        )
        .await
        .unwrap();
        ids.push(r[0].as_ref().unwrap().task.broker_id);
    }
    // One batch: held, resumed and assigned; the task moves groups three times.
    let cmd = |id, a| Command::act(TaskRef::Broker(id), a, ActionMeta::default());
    let assign = |id| cmd(id, Action::Assign { user: "ann".into() });
    let r = execute(
        &*s,
        vec![
            cmd(ids[0], Action::Hold),
            cmd(ids[0], Action::Resume),
            assign(ids[0]),
            cmd(ids[1], Action::Hold),
            cmd(ids[1], Action::Resume),
            assign(ids[1]),
        ],
        at(5),
    )
    .await
    .unwrap();
    assert!(r.iter().all(Result::is_ok));
    // On time (due at +60), and late (due at +10), in the period that starts at 09:15.
    execute(&*s, vec![cmd(ids[0], Action::Complete)], at(20))
        .await
        .unwrap();
    execute(&*s, vec![cmd(ids[1], Action::Complete)], at(25))
        .await
        .unwrap();

    let backlog = |s: Arc<dyn Store>| async move {
        let mut b: Vec<(String, Option<String>, i64)> = s
            .backlog()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.tasks != 0)
            .map(|c| (c.status, c.process_id, c.tasks))
            .collect();
        b.sort();
        b
    };
    let claims = || Some("claims".to_owned());
    let expected = vec![
        ("Completed".to_owned(), claims(), 2),
        ("New".to_owned(), claims(), 1),
    ];
    assert_eq!(backlog(s.clone()).await, expected);
    let periods = s.periods(at(-60), at(120)).await.unwrap();
    let first = Period {
        start_us: "2026-12-01T09:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_microsecond(),
        created: 3,
        ..Period::default()
    };
    let min = 60_000_000;
    let second = Period {
        start_us: first.start_us + PERIOD_MICROS,
        completed: 2,
        completed_due: 2,
        completed_on_time: 1,
        finish_us: 20 * min + 25 * min,
        handle_us: 15 * min + 20 * min,
        handled: 2,
        ..Period::default()
    };
    assert_eq!(periods, vec![first, second]);
    // Late: the open task due at +60 is overdue from then on, not before.
    assert_eq!(overdue(&*s, at(59)).await, 0);
    assert_eq!(overdue(&*s, at(61)).await, 1);
    // Later periods count it from the counters, folded or not.
    assert_eq!(overdue(&*s, at(90)).await, 1);

    assert!(s.fold().await.unwrap() > 0);
    assert_eq!(backlog(s.clone()).await, expected);
    assert_eq!(
        s.periods(at(-60), at(120)).await.unwrap(),
        vec![first, second]
    );
    assert_eq!(s.fold().await.unwrap(), 0);
    assert_eq!(overdue(&*s, at(90)).await, 1);
    // A new due date moves the task's count: no longer late.
    let later = TaskFields {
        due_date_time: Some(at(300)),
        ..Default::default()
    };
    execute(&*s, vec![cmd(ids[2], Action::Update(later))], at(31))
        .await
        .unwrap();
    assert_eq!(overdue(&*s, at(90)).await, 0);
    assert_eq!(overdue(&*s, at(301)).await, 1);

    // Archiving takes a task out of the backlog.
    execute(&*s, vec![cmd(ids[0], Action::Stop)], at(30))
        .await
        .unwrap();
    assert_eq!(
        backlog(s.clone()).await,
        vec![
            ("Completed".to_owned(), claims(), 1),
            ("New".to_owned(), claims(), 1)
        ]
    );
}

worklane_store::store_suite!(
    figures_follow_the_writes,
    create_get_and_find,
    duplicates,
    actions_and_events,
    batch_is_one_transaction_with_independent_results,
    events_after_and_cursors,
    idempotent_commands_replay,
    listing_filters_and_pages,
    listing_by_due_date_spans_live_and_finished,
    processing_queries,
    batch_sees_its_own_changes,
    act_on_best_picks_the_best_task_in_order
);
