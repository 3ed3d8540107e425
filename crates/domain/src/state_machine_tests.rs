//! Every action from every status, against the table of SPEC section 2.

use crate::*;
use Status::*;

fn now() -> Timestamp {
    "2026-01-02T03:04:05Z".parse().unwrap()
}

fn task_in(status: Status) -> Task {
    let new = NewTask {
        capture_point_id: "CP".into(),
        ..Default::default()
    };
    let mut t = action::create(&new, BrokerId(7), &ActionMeta::default(), now()).task;
    t.status = status;
    if status == Distributed {
        t.distribution_id = Some("D1".into());
        t.queue = Some("q".into());
    }
    t
}

/// Expected result of each action from each status: Ok(new status) or Err(code).
fn expected(action: &Action, from: Status) -> Result<Status, ErrorCode> {
    let movable = [New, NewHeld, Captured, Queued, Distributed, Held, ErrorHeld];
    match action {
        Action::Update(_) => Ok(from),
        Action::Hold => match from {
            New | Captured | Queued | Distributed => Ok(Held),
            _ => Err(ErrorCode::CannotHoldAssignedTask),
        },
        Action::Resume => match from {
            NewHeld | ErrorHeld => Ok(New),
            Held => Ok(Queued),
            _ => Err(ErrorCode::CannotResumeTask),
        },
        Action::Restart if movable.contains(&from) => Ok(New),
        Action::Restart => Err(ErrorCode::CannotRestartTask),
        Action::Cancel if movable.contains(&from) => Ok(Canceled),
        Action::Cancel => Err(ErrorCode::CannotCancelCompletedTask),
        Action::Complete if from.is_final() => Err(ErrorCode::CannotCompleteTask),
        Action::Complete => Ok(Completed),
        Action::Assign { .. } if matches!(from, Queued | Distributed) => Ok(Assigned),
        Action::Assign { .. } => Err(ErrorCode::CannotAssignTask),
        _ => unreachable!(),
    }
}

#[test]
fn every_action_from_every_status() {
    let actions = [
        Action::Update(TaskFields {
            category: Some("Followup".into()),
            ..Default::default()
        }),
        Action::Hold,
        Action::Resume,
        Action::Restart,
        Action::Cancel,
        Action::Complete,
        Action::Assign {
            user: "agent1".into(),
        },
    ];
    let mut checked = 0;
    for action in &actions {
        for from in Status::ALL {
            let task = task_in(from);
            let got = decide(&task, action, &ActionMeta::default(), now());
            match (expected(action, from), got) {
                (Ok(want), Ok(tr)) => {
                    assert_eq!(tr.task.status, want, "{} from {from}", action.name());
                    assert_eq!(tr.task.version, task.version + 1);
                    assert!(!tr.deleted);
                }
                (Err(code), Err(e)) => {
                    assert_eq!(e.code, code, "{} from {from}", action.name());
                    assert!(e.parameters.contains(&"BrokerId=7".to_owned()), "{e:?}");
                }
                (want, got) => panic!("{} from {from}: want {want:?}, got {got:?}", action.name()),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 11);
}

#[test]
fn each_action_emits_its_event() {
    let cases = [
        (Action::Hold, New, EventType::TaskHeld),
        (Action::Resume, Held, EventType::TaskResumed),
        (Action::Restart, Queued, EventType::TaskRestarted),
        (Action::Cancel, New, EventType::TaskCanceled),
        (Action::Complete, Assigned, EventType::TaskCompleted),
        (
            Action::Assign { user: "a".into() },
            Queued,
            EventType::TaskAssigned,
        ),
        (
            Action::Classify(Classification::default()),
            New,
            EventType::TaskCaptured,
        ),
        (
            Action::Prioritize(Prioritization {
                fields: TaskFields {
                    priority: Some(5.into()),
                    ..Default::default()
                },
                reprioritize_date_time: None,
            }),
            Captured,
            EventType::TaskQueued,
        ),
        (
            Action::ErrorHold {
                error: "no rule".into(),
            },
            Captured,
            EventType::TaskErrorHeld,
        ),
        (
            Action::Distribute {
                distribution_id: "d".into(),
                distribution_point_id: "dp".into(),
            },
            Queued,
            EventType::TaskDistributed,
        ),
        (Action::Reject, Captured, EventType::TaskRejected),
        (Action::Stop, Completed, EventType::TaskStopped),
    ];
    for (action, from, ev) in cases {
        let tr = decide(&task_in(from), &action, &ActionMeta::default(), now()).unwrap();
        assert_eq!(tr.event.event_type, ev);
    }
}

#[test]
fn hold_revokes_distribution_and_resume_clears_hold() {
    let t = task_in(Distributed);
    let held = decide(&t, &Action::Hold, &ActionMeta::default(), now())
        .unwrap()
        .task;
    assert_eq!(held.distribution_id, None);
    assert_eq!(held.queue, None);
    assert_eq!(held.held_date_time, Some(now()));
    let resumed = decide(&held, &Action::Resume, &ActionMeta::default(), now())
        .unwrap()
        .task;
    assert_eq!(resumed.status, Queued);
    assert_eq!(resumed.held_date_time, None);
}

#[test]
fn create_defaults_capture_id_to_broker_id_and_honours_hold() {
    let new = NewTask {
        capture_point_id: "CP".into(),
        hold: true,
        ..Default::default()
    };
    let tr = action::create(&new, BrokerId(42), &ActionMeta::default(), now());
    assert_eq!(tr.task.capture_id, "42");
    assert_eq!(tr.task.status, NewHeld);
    assert_eq!(tr.event.event_type, EventType::TaskCreated);
}

#[test]
fn update_changes_only_given_attributes() {
    let t = task_in(Queued);
    let fields = TaskFields {
        priority: Some(9),
        data: [("k".to_owned(), "v".to_owned())].into(),
        ..Default::default()
    };
    let tr = decide(&t, &Action::Update(fields), &ActionMeta::default(), now()).unwrap();
    assert_eq!(tr.task.priority, 9);
    assert_eq!(tr.task.data["k"], "v");
    assert_eq!(tr.task.channel, t.channel);
    assert_eq!(tr.event.changes, vec!["priority", "data.k"]);
}

#[test]
fn validation_names_the_attribute() {
    let long = "x".repeat(65);
    let cases: Vec<(TaskFields, &str)> = vec![
        (
            TaskFields {
                capture_id: Some(long.clone()),
                ..Default::default()
            },
            "captureId",
        ),
        (
            TaskFields {
                process_id: Some("p".repeat(17)),
                ..Default::default()
            },
            "processId",
        ),
        (
            TaskFields {
                channel: Some("c".repeat(33)),
                ..Default::default()
            },
            "channel",
        ),
        (
            TaskFields {
                priority: Some(1 << 31),
                ..Default::default()
            },
            "priority",
        ),
        (
            TaskFields {
                priority: Some(-(1 << 31)),
                ..Default::default()
            },
            "priority",
        ),
        (
            TaskFields {
                business_value: Some(i64::MAX),
                ..Default::default()
            },
            "businessValue",
        ),
        (
            TaskFields {
                ext: Ext {
                    customer_id: Some(long),
                    ..Default::default()
                },
                ..Default::default()
            },
            "ext.customerID",
        ),
        (
            TaskFields {
                data: [("k".to_owned(), "v".repeat(256))].into(),
                ..Default::default()
            },
            "data.k",
        ),
    ];
    for (fields, attr) in cases {
        let e = fields.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidFormat);
        assert_eq!(e.parameters, vec![attr.to_owned()], "{e}");
    }
    // The bounds themselves are accepted.
    let ok = TaskFields {
        priority: Some(i64::from(i32::MAX)),
        business_value: Some(i64::from(i32::MIN) + 1),
        capture_id: Some("c".repeat(64)),
        ..Default::default()
    };
    ok.validate().unwrap();
}

#[test]
fn status_and_event_names_round_trip() {
    for s in Status::ALL {
        assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
    }
    for e in EventType::ALL {
        assert_eq!(e.as_str().parse::<EventType>().unwrap(), e);
    }
}

#[test]
fn ext_names_match_the_accessors() {
    let ext = Ext::default();
    let names: Vec<&str> = ext
        .strings()
        .iter()
        .map(|(n, _)| *n)
        .chain(ext.timestamps().iter().map(|(n, _)| *n))
        .collect();
    assert_eq!(names, Ext::NAMES);
}

fn offer(id: &str, agent: &str, expires: &str) -> Offer {
    Offer {
        id: id.into(),
        agent: agent.into(),
        offered_date_time: now(),
        expires_date_time: expires.parse().unwrap(),
    }
}

fn in_queue() -> Task {
    let mut t = task_in(Distributed);
    t.queue_type = Some(QueueType::InteractionQueue);
    t
}

#[test]
fn an_offer_is_accepted_once_and_only_while_live() {
    let m = ActionMeta::default();
    let o = offer("7-2", "ann", "2026-01-02T03:05:00Z");
    let offered = decide(&in_queue(), &Action::Offer(o.clone()), &m, now()).unwrap();
    assert_eq!(offered.event.event_type, EventType::TaskOffered);
    assert_eq!(offered.event.agent.as_deref(), Some("ann"));
    let t = offered.task;
    // A second offer while one is live is refused: one live offer per task.
    let again = decide(
        &t,
        &Action::Offer(offer("7-3", "bob", "2026-01-02T03:05:00Z")),
        &m,
        now(),
    );
    assert_eq!(again.unwrap_err().code, ErrorCode::InvalidTransition);
    // A wrong id, or the right one too late.
    let wrong = decide(
        &t,
        &Action::Accept {
            offer_id: "7-9".into(),
        },
        &m,
        now(),
    );
    assert_eq!(wrong.unwrap_err().code, ErrorCode::OfferNotFound);
    let late: Timestamp = "2026-01-02T03:05:00Z".parse().unwrap();
    let late = decide(
        &t,
        &Action::Accept {
            offer_id: "7-2".into(),
        },
        &m,
        late,
    );
    assert_eq!(late.unwrap_err().code, ErrorCode::OfferNotFound);
    let ok = decide(
        &t,
        &Action::Accept {
            offer_id: "7-2".into(),
        },
        &m,
        now(),
    )
    .unwrap();
    assert_eq!(ok.task.status, Assigned);
    assert_eq!(ok.task.assigned_to_user.as_deref(), Some("ann"));
    assert_eq!(ok.task.offer, None);
    assert_eq!(ok.event.event_type, EventType::TaskAssigned);
    let twice = decide(
        &ok.task,
        &Action::Accept {
            offer_id: "7-2".into(),
        },
        &m,
        now(),
    );
    assert_eq!(twice.unwrap_err().code, ErrorCode::OfferNotFound);
}

#[test]
fn a_return_keeps_the_task_in_its_queue_and_names_the_agent() {
    let m = ActionMeta::default();
    let mut t = in_queue();
    t.offer = Some(offer("7-2", "ann", "2026-01-02T03:05:00Z"));
    let r = decide(&t, &Action::Return { offer_id: None }, &m, now()).unwrap();
    assert_eq!(r.event.event_type, EventType::TaskReturned);
    assert_eq!(r.event.agent.as_deref(), Some("ann"));
    assert_eq!(
        (r.task.status, r.task.queue.as_deref()),
        (Distributed, Some("q"))
    );
    assert_eq!(r.task.distribution_id.as_deref(), Some("D1"));
    assert_eq!(r.task.offer, None);
    // Hold revokes the offer; its event names who lost it.
    let h = decide(&t, &Action::Hold, &m, now()).unwrap();
    assert_eq!(
        (h.task.offer.clone(), h.event.agent.as_deref()),
        (None, Some("ann"))
    );
}

#[test]
fn enqueue_transfer_and_finish() {
    let m = ActionMeta::default();
    let mut assigned = task_in(Assigned);
    assigned.assigned_to_user = Some("ann".into());
    let wb = Action::Enqueue {
        queue: None,
        queue_type: QueueType::AgentWorkbin,
        queue_target: Some("bob".into()),
    };
    let moved = decide(&assigned, &wb, &m, now()).unwrap();
    assert_eq!(moved.task.status, Distributed);
    assert_eq!(moved.task.assigned_to_user, None);
    assert_eq!(moved.event.event_type, EventType::TaskDistributedQueue);
    assert_eq!(
        moved.event.agent.as_deref(),
        Some("ann"),
        "the agent that lost it"
    );
    // A workbin needs its target; an interaction queue its id.
    let no_target = Action::Enqueue {
        queue: None,
        queue_type: QueueType::PlaceWorkbin,
        queue_target: None,
    };
    assert_eq!(
        decide(&assigned, &no_target, &m, now()).unwrap_err().code,
        ErrorCode::InvalidFormat
    );
    let to = decide(
        &assigned,
        &Action::Transfer { user: "cid".into() },
        &m,
        now(),
    )
    .unwrap();
    assert_eq!(to.task.assigned_to_user.as_deref(), Some("cid"));
    let from_queued = decide(
        &task_in(Queued),
        &Action::Transfer { user: "cid".into() },
        &m,
        now(),
    );
    assert_eq!(from_queued.unwrap_err().code, ErrorCode::CannotAssignTask);
    let done = decide(
        &assigned,
        &Action::Finish {
            result_code: Some("PAID".into()),
        },
        &m,
        now(),
    )
    .unwrap();
    assert_eq!(done.task.status, Completed);
    assert_eq!(done.task.ext.result_code.as_deref(), Some("PAID"));
    assert!(done.event.changes.contains(&"ext.resultCode".to_owned()));
}

#[test]
fn capacity_buckets_and_busy() {
    let mut p = AgentProfile::default();
    p.capacity.insert("Email".into(), 2);
    p.capacity.insert("*".into(), 1);
    let a = Agent::new("ann".into(), p, now());
    let mut load = Load::default();
    assert!(a.has_room(&load, Some("Email")) && a.has_room(&load, Some("Fax")));
    load.add("*");
    assert!(!a.has_room(&load, Some("Fax")) && !a.has_room(&load, None));
    assert!(a.has_room(&load, Some("Email")));
    load.add("Email");
    load.add("Email");
    assert!(!a.has_any_room(&load));
    let mut ready = a.clone();
    ready.state = AgentState::Ready;
    assert_eq!(ready.shown_state(&load), "Busy");
    // Without "*", a channel not named is not taken at all.
    let mut p = AgentProfile::default();
    p.capacity.insert("Email".into(), 1);
    let only_email = Agent::new("bob".into(), p, now());
    assert_eq!(only_email.bucket(Some("Fax")), None);
    // An empty capacity is one task of any channel.
    let one = Agent::new("cid".into(), AgentProfile::default(), now());
    assert!(one.has_room(&Load::default(), Some("Fax")));
    assert!(Offer::task_of("12-3") == Some(BrokerId(12)) && Offer::task_of("x-1").is_none());
}
