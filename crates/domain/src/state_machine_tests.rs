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
