//! Every inbound message and every refusal code against the real RabbitMQ, over both
//! transports (AMQP 0-9-1, and AMQP 1.0 through RabbitMQ's plugin).

#[macro_use]
mod common;

use common::{unique_config_on, wait_until, Proto, Rig};
use worklane_capture_mq::codec::{ErrorMessage, Notice, NoticeKind, Outbound};
use worklane_domain::{Action, ActionMeta, BrokerId, Status, TaskRef};
use worklane_engine::{Command, Processor};

fn msg(name: &str, inner: &str) -> String {
    format!("<GTLMessages><{name}>{inner}</{name}></GTLMessages>")
}

fn notice(o: Outbound) -> Notice {
    match o {
        Outbound::Notice(n) => n,
        other => panic!("expected a notification, got {other:?}"),
    }
}

fn error(o: Outbound) -> ErrorMessage {
    match o {
        Outbound::Error(e) => e,
        other => panic!("expected Error, got {other:?}"),
    }
}

async fn create_task_is_answered_with_its_correlation_and_defaults(p: Proto) {
    let mut cfg = unique_config_on("MQ1", p);
    cfg.defaults.insert(
        "channel".into(),
        worklane_capture_mq::config::DefaultValue::Text("Email".into()),
    );
    let mut rig = Rig::start(cfg).await;
    let body = msg(
        "CreateTask",
        "<CaptureId>case-1</CaptureId><Reason>new order</Reason><priority>5</priority>\
         <Ext><customerID>C9</customerID></Ext><Data><OrderNo>42</OrderNo></Data>",
    );
    rig.client.send(&body, Some("m-1"), Some("corr-1")).await;
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("corr-1"));
    assert_eq!(r.content_type.as_deref(), Some("application/xml"));
    assert!(r.persistent);
    let n = notice(r.parse());
    assert_eq!(n.kind, NoticeKind::TaskCreated);
    assert_eq!(n.capture_id, "case-1");
    assert_eq!(n.capture_point_id, "MQ1");
    assert_eq!(
        n.actor.as_deref(),
        Some("MQ1"),
        "Actor defaults to the capture point's id"
    );
    assert_eq!(n.reason.as_deref(), Some("new order"));
    let task = rig
        .engine
        .tasks()
        .get_task(n.broker_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.status, Status::New);
    assert_eq!(task.channel.as_deref(), Some("Email"));
    assert_eq!(task.priority, 5);
    assert_eq!(task.ext.customer_id.as_deref(), Some("C9"));
    assert_eq!(task.data["OrderNo"], "42");
    let events = rig.engine.events().task_events(n.broker_id).await.unwrap();
    assert_eq!(events[0].request_id.as_deref(), Some("corr-1"));

    // Without a correlation id, the message id correlates; CaptureId defaults to BrokerId.
    rig.client
        .send(&msg("CreateTask", "<Hold>true</Hold>"), Some("m-2"), None)
        .await;
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("m-2"));
    let n = notice(r.parse());
    assert_eq!(n.capture_id, n.broker_id.to_string());
    let task = rig
        .engine
        .tasks()
        .get_task(n.broker_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.status, Status::NewHeld);
    rig.finish().await;
}

async fn check_if_captured_refuses_a_second_capture_id(p: Proto) {
    let mut cfg = unique_config_on("MQ2", p);
    cfg.check_if_captured = true;
    let mut rig = Rig::start(cfg).await;
    let body = msg("CreateTask", "<CaptureId>dup</CaptureId>");
    let first = notice(rig.client.ask(&body).await);
    let e = error(rig.client.ask(&body).await);
    assert_eq!(e.code, "TASK_ALREADY_CAPTURED");
    assert_eq!(e.parameters[0], "CaptureId=dup");
    assert!(e
        .parameters
        .contains(&format!("BrokerId={}", first.broker_id)));
    rig.finish().await;
}

async fn duplicates_are_allowed_when_not_checked(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ3", p)).await;
    let body = msg("CreateTask", "<CaptureId>twice</CaptureId>");
    let a = notice(rig.client.ask(&body).await);
    let b = notice(rig.client.ask(&body).await);
    assert_ne!(a.broker_id, b.broker_id);
    rig.finish().await;
}

async fn update_task_changes_the_given_attributes(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ4", p)).await;
    let created = notice(
        rig.client
            .ask(&msg(
                "CreateTask",
                "<CaptureId>u1</CaptureId><category>A</category>",
            ))
            .await,
    );
    let updated = notice(
        rig.client
            .ask(&msg(
                "UpdateTask",
                "<CaptureId>u1</CaptureId><Actor>clerk</Actor><priority>9</priority>\
                 <ext><productType>DSL</productType></ext><data><Colour>red</Colour></data>",
            ))
            .await,
    );
    assert_eq!(updated.kind, NoticeKind::TaskUpdated);
    assert_eq!(updated.broker_id, created.broker_id);
    assert_eq!(updated.actor.as_deref(), Some("clerk"));
    assert_eq!(updated.details.priority, Some(9));
    assert_eq!(updated.details.category.as_deref(), Some("A"));
    assert_eq!(updated.details.status, Some(Status::New));
    assert_eq!(updated.details.ext.product_type.as_deref(), Some("DSL"));
    assert_eq!(updated.details.data["Colour"], "red");

    // By BrokerId with a CaptureId: the CaptureId is changed.
    let by_id = format!(
        "<BrokerId>{}</BrokerId><CaptureId>u1-new</CaptureId>",
        created.broker_id
    );
    let renamed = notice(rig.client.ask(&msg("UpdateTask", &by_id)).await);
    assert_eq!(renamed.capture_id, "u1-new");

    let e = error(
        rig.client
            .ask(&msg(
                "UpdateTask",
                "<CaptureId>nope</CaptureId><priority>1</priority>",
            ))
            .await,
    );
    assert_eq!(
        (e.code.as_str(), e.parameters.clone()),
        ("TASK_NOT_FOUND", vec!["CaptureId=nope".to_owned()])
    );
    let e = error(
        rig.client
            .ask(&msg("UpdateTask", "<BrokerId>999999</BrokerId>"))
            .await,
    );
    assert_eq!(
        (e.code.as_str(), e.parameters.clone()),
        ("TASK_NOT_FOUND", vec!["BrokerId=999999".to_owned()])
    );
    rig.finish().await;
}

async fn every_action_and_its_refusal(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ5", p)).await;
    let c = &mut rig.client;
    let id = notice(
        c.ask(&msg("CreateTask", "<CaptureId>life</CaptureId>"))
            .await,
    )
    .broker_id;
    let by_id = format!("<BrokerId>{id}</BrokerId>");
    let act = |name: &str| msg(name, &by_id);

    assert_eq!(
        notice(c.ask(&act("HoldTask")).await).kind,
        NoticeKind::TaskHeld
    );
    let e = error(c.ask(&act("HoldTask")).await);
    assert_eq!(e.code, "CANNOT_HOLD_ASSIGNED_TASK");
    assert_eq!(e.parameters[0], format!("BrokerId={id}"));
    assert_eq!(
        notice(c.ask(&act("ResumeTask")).await).kind,
        NoticeKind::TaskResumed
    );
    assert_eq!(
        error(c.ask(&act("ResumeTask")).await).code,
        "CANNOT_RESUME_TASK"
    );
    assert_eq!(
        notice(c.ask(&act("RestartTask")).await).kind,
        NoticeKind::TaskRestarted
    );

    let info = notice(
        c.ask(&msg("GetTaskInfo", "<CaptureId>life</CaptureId>"))
            .await,
    );
    assert_eq!(info.kind, NoticeKind::TaskInfo);
    assert_eq!(info.broker_id, id);
    assert_eq!(info.details.status, Some(Status::New));

    let done = notice(
        c.ask(&msg(
            "CompleteTask",
            &format!("{by_id}<Reason>all done</Reason>"),
        ))
        .await,
    );
    assert_eq!(
        (done.kind, done.reason.as_deref()),
        (NoticeKind::TaskCompleted, Some("all done"))
    );
    assert_eq!(
        error(c.ask(&act("CompleteTask")).await).code,
        "CANNOT_COMPLETE_TASK"
    );
    assert_eq!(
        error(c.ask(&act("RestartTask")).await).code,
        "CANNOT_RESTART_TASK"
    );
    assert_eq!(
        error(c.ask(&act("CancelTask")).await).code,
        "CANNOT_CANCEL_COMPLETED_TASK"
    );

    let other = notice(c.ask(&msg("CreateTask", "<CaptureId>c2</CaptureId>")).await);
    assert_eq!(
        notice(c.ask(&msg("CancelTask", "<CaptureId>c2</CaptureId>")).await).kind,
        NoticeKind::TaskCanceled
    );
    let info = notice(
        c.ask(&msg(
            "GetTaskInfo",
            &format!("<BrokerId>{}</BrokerId>", other.broker_id),
        ))
        .await,
    );
    assert_eq!(info.details.status, Some(Status::Canceled));

    let e = error(
        c.ask(&msg("GetTaskInfo", "<CaptureId>ghost</CaptureId>"))
            .await,
    );
    assert_eq!(
        (e.code.as_str(), e.parameters.clone()),
        ("TASK_NOT_FOUND", vec!["CaptureId=ghost".to_owned()])
    );
    for name in [
        "CompleteTask",
        "HoldTask",
        "ResumeTask",
        "RestartTask",
        "CancelTask",
    ] {
        let e = error(c.ask(&msg(name, "<BrokerId>424242</BrokerId>")).await);
        assert_eq!(e.code, "TASK_NOT_FOUND", "{name}");
    }
    assert_eq!(
        c.ask("<GTLMessages><Ping></Ping></GTLMessages>").await,
        Outbound::Pong
    );
    rig.finish().await;
}

async fn hold_of_an_assigned_task_is_refused(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ6", p)).await;
    let id = notice(
        rig.client
            .ask(&msg("CreateTask", "<CaptureId>a1</CaptureId>"))
            .await,
    )
    .broker_id;
    Processor::new(rig.engine.clone())
        .step(jiff::Timestamp::now())
        .await
        .unwrap();
    rig.engine
        .execute(Command::act(
            TaskRef::Broker(id),
            Action::Assign {
                user: "agent7".into(),
            },
            ActionMeta::default().defaulted("REST"),
        ))
        .await
        .unwrap();
    let assigned = notice(rig.client.recv().await.parse());
    assert_eq!(assigned.kind, NoticeKind::TaskAssigned);
    let e = error(
        rig.client
            .ask(&msg("HoldTask", "<CaptureId>a1</CaptureId>"))
            .await,
    );
    assert_eq!(e.code, "CANNOT_HOLD_ASSIGNED_TASK");
    assert!(e.parameters.contains(&"Status=Assigned".to_owned()));
    rig.finish().await;
}

async fn invalid_values_are_refused_naming_task_and_attribute(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ7", p)).await;
    // A value the parser cannot read: INVALID_FORMAT, and the original to the error queue.
    let e = error(
        rig.client
            .ask(&msg(
                "CreateTask",
                "<CaptureId>x1</CaptureId><priority>high</priority>",
            ))
            .await,
    );
    assert_eq!(e.code, "INVALID_FORMAT");
    assert_eq!(
        e.parameters,
        vec!["CaptureId=x1".to_owned(), "priority".to_owned()]
    );
    // A value over its length: refused by the domain, named the same way.
    let long = "x".repeat(33);
    let e = error(
        rig.client
            .ask(&msg(
                "CreateTask",
                &format!("<CaptureId>x2</CaptureId><channel>{long}</channel>"),
            ))
            .await,
    );
    assert_eq!(e.code, "INVALID_FORMAT");
    assert_eq!(
        e.parameters,
        vec!["CaptureId=x2".to_owned(), "channel".to_owned()]
    );
    let id = notice(
        rig.client
            .ask(&msg("CreateTask", "<CaptureId>x3</CaptureId>"))
            .await,
    )
    .broker_id;
    let update = format!("<BrokerId>{id}</BrokerId><category>{long}</category>");
    let e = error(rig.client.ask(&msg("UpdateTask", &update)).await);
    assert_eq!(
        e.parameters,
        vec![format!("BrokerId={id}"), "category".to_owned()]
    );
    let tasks = rig
        .engine
        .tasks()
        .list_tasks(&Default::default())
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1, "only the valid CreateTask made a task");
    rig.finish().await;
}

async fn lenient_input_is_accepted(p: Proto) {
    let mut cfg = unique_config_on("MQ8", p);
    cfg.timezone = "Europe/Paris".into();
    let mut rig = Rig::start(cfg).await;
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gtlmessages>\n  <createTASK>\n\
        <CAPTUREID>\n   spaced-1  \n</CAPTUREID>\n<DueDateTime> 2030-06-01T12:00:00 </DueDateTime>\n\
        <activationDateTime>2030-05-01T08:00:00Z</activationDateTime>\n\
        <EXT><CustomerId> c-7 </CustomerId></EXT><data><K> v </K></data>\n</createtask></GTLMESSAGES>";
    let n = notice(rig.client.ask(body).await);
    let task = rig
        .engine
        .tasks()
        .get_task(n.broker_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.capture_id, "spaced-1");
    assert_eq!(
        task.due_date_time.unwrap().to_string(),
        "2030-06-01T10:00:00Z"
    );
    assert_eq!(
        task.activation_date_time.unwrap().to_string(),
        "2030-05-01T08:00:00Z"
    );
    assert_eq!(task.ext.customer_id.as_deref(), Some("c-7"));
    assert_eq!(task.data["K"], "v");
    // Written back in the capture point's time zone.
    let r = {
        rig.client
            .send(
                &msg("GetTaskInfo", "<captureid>spaced-1</captureid>"),
                Some("i-1"),
                None,
            )
            .await;
        rig.client.recv().await
    };
    assert!(
        r.body
            .contains("<dueDateTime>2030-06-01T12:00:00</dueDateTime>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<activationDateTime>2030-05-01T10:00:00</activationDateTime>"),
        "{}",
        r.body
    );
    rig.finish().await;
}

async fn poison_messages_are_answered_and_moved_to_the_error_queue(p: Proto) {
    let cfg = unique_config_on("MQ9", p);
    let mut rig = Rig::start(cfg.clone()).await;
    let mut errors = common::Client::connect(&cfg, &cfg.error_queue).await;
    let cases: [&[u8]; 4] = [
        b"this is not XML",
        b"<!DOCTYPE x [<!ENTITY a \"b\">]><GTLMessages><Ping/></GTLMessages>",
        b"<GTLMessages><Shutdown/></GTLMessages>",
        &[0xff, 0xfe, 0x00],
    ];
    for (i, body) in cases.iter().enumerate() {
        let mid = format!("poison-{i}");
        let body = String::from_utf8_lossy(body).into_owned();
        rig.client.send(&body, Some(&mid), None).await;
        let answer = rig.client.recv().await;
        assert_eq!(answer.correlation_id.as_deref(), Some(mid.as_str()));
        let e = error(answer.parse());
        assert_eq!(e.code, "INVALID_FORMAT");
        assert_eq!(e.parameters, vec!["GTLMessages".to_owned()]);
        let kept = errors.recv().await;
        assert_eq!(kept.body, body);
        assert_eq!(kept.message_id.as_deref(), Some(mid.as_str()));
        let reason = kept
            .headers
            .iter()
            .find(|(k, _)| k == "x-worklane-error")
            .expect("reason header");
        assert!(reason.1.starts_with("INVALID_FORMAT"), "{reason:?}");
    }
    // Still serving, and nothing is left to come back.
    assert_eq!(
        rig.client.ask("<GTLMessages><Ping/></GTLMessages>").await,
        Outbound::Pong
    );
    let (client, cfg) = rig.stop().await;
    assert_eq!(client.count(&cfg.input_queue).await, 0);
    client.delete_queues(&cfg).await;
}

async fn a_repeated_message_id_is_answered_identically_and_applied_once(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ10", p)).await;
    let body = msg("CreateTask", "<CaptureId>once</CaptureId>");
    rig.client.send(&body, Some("same-id"), None).await;
    let first = rig.client.recv().await;
    rig.client.send(&body, Some("same-id"), None).await;
    let second = rig.client.recv().await;
    assert_eq!(first, second);
    let hold = msg("HoldTask", "<CaptureId>once</CaptureId>");
    rig.client.send(&hold, Some("hold-id"), None).await;
    let first = rig.client.recv().await;
    rig.client.send(&hold, Some("hold-id"), None).await;
    let second = rig.client.recv().await;
    assert_eq!(
        first, second,
        "a replayed hold is not refused as already held"
    );
    let tasks = rig
        .engine
        .tasks()
        .list_tasks(&Default::default())
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    rig.finish().await;
}

async fn outside_changes_are_notified_and_own_requests_are_not_repeated(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ11", p)).await;
    let created = notice(
        rig.client
            .ask(&msg("CreateTask", "<CaptureId>n1</CaptureId>"))
            .await,
    );
    let id = created.broker_id;
    // Another capture point's task changes: not ours to tell.
    let other = rig
        .engine
        .execute(Command::create(
            worklane_domain::NewTask {
                capture_point_id: "OTHER".into(),
                ..Default::default()
            },
            ActionMeta::default().defaulted("OTHER"),
        ))
        .await
        .unwrap();
    Processor::new(rig.engine.clone())
        .step(jiff::Timestamp::now())
        .await
        .unwrap();
    let sup = || {
        ActionMeta {
            reason: Some("supervisor".into()),
            request_id: Some("rest-9".into()),
            ..Default::default()
        }
        .defaulted("REST")
    };
    rig.engine
        .execute(Command::act(
            TaskRef::Broker(other.task.broker_id),
            Action::Hold,
            sup(),
        ))
        .await
        .unwrap();
    rig.engine
        .execute(Command::act(
            TaskRef::Broker(id),
            Action::Assign { user: "ann".into() },
            sup(),
        ))
        .await
        .unwrap();
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("rest-9"));
    let n = notice(r.parse());
    assert_eq!((n.kind, n.broker_id), (NoticeKind::TaskAssigned, id));
    assert_eq!(n.details.assigned_to_user.as_deref(), Some("ann"));
    assert_eq!(n.actor.as_deref(), Some("REST"));
    rig.engine
        .execute(Command::act(TaskRef::Broker(id), Action::Complete, sup()))
        .await
        .unwrap();
    assert_eq!(
        notice(rig.client.recv().await.parse()).kind,
        NoticeKind::TaskCompleted
    );
    rig.finish().await;
}

async fn switched_off_messages_are_not_sent(p: Proto) {
    let mut cfg = unique_config_on("MQ12", p);
    cfg.notifications = Some(vec!["TaskCreated".into(), "Error".into()]);
    let mut rig = Rig::start(cfg).await;
    let a = notice(
        rig.client
            .ask(&msg("CreateTask", "<CaptureId>s1</CaptureId>"))
            .await,
    );
    Processor::new(rig.engine.clone())
        .step(jiff::Timestamp::now())
        .await
        .unwrap();
    let assign = rig
        .engine
        .execute(Command::act(
            TaskRef::Broker(a.broker_id),
            Action::Assign { user: "u".into() },
            ActionMeta::default().defaulted("REST"),
        ))
        .await
        .unwrap();
    let seq = assign.event.unwrap().seq;
    let store = rig.engine.events().clone();
    wait_until(20, "the notifications to pass the assignment", || {
        let store = store.clone();
        async move { store.cursor("mq:MQ12").await.unwrap() >= seq }
    })
    .await;
    // Neither TaskAssigned nor Pong nor TaskCompleted arrives; the next message is this Error.
    rig.client
        .send("<GTLMessages><Ping/></GTLMessages>", Some("p"), None)
        .await;
    rig.client
        .send(
            &msg(
                "CompleteTask",
                &format!("<BrokerId>{}</BrokerId>", a.broker_id),
            ),
            Some("c"),
            None,
        )
        .await;
    rig.client
        .send(
            &msg("CancelTask", "<CaptureId>s1</CaptureId>"),
            Some("x"),
            None,
        )
        .await;
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("x"));
    assert_eq!(error(r.parse()).code, "CANNOT_CANCEL_COMPLETED_TASK");
    let task = rig
        .engine
        .tasks()
        .get_task(BrokerId(a.broker_id.0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.status, Status::Completed);
    rig.finish().await;
}

async fn notifications_resume_after_a_restart_without_loss_or_repeat(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ13", p)).await;
    let id = notice(
        rig.client
            .ask(&msg("CreateTask", "<CaptureId>r1</CaptureId>"))
            .await,
    )
    .broker_id;
    let rest = || ActionMeta::default().defaulted("REST");
    let engine = rig.engine.clone();
    engine
        .execute(Command::act(TaskRef::Broker(id), Action::Hold, rest()))
        .await
        .unwrap();
    assert_eq!(
        notice(rig.client.recv().await.parse()).kind,
        NoticeKind::TaskHeld
    );
    let (client, cfg) = rig.stop().await;
    client.close().await;

    // Changed while the capture point is down: told once it is back, and only that.
    engine
        .execute(Command::act(TaskRef::Broker(id), Action::Resume, rest()))
        .await
        .unwrap();
    let mut rig = Rig::start_with(engine, cfg).await;
    let n = notice(rig.client.recv().await.parse());
    assert_eq!((n.kind, n.broker_id), (NoticeKind::TaskResumed, id));
    assert_eq!(
        rig.client.ask("<GTLMessages><Ping/></GTLMessages>").await,
        Outbound::Pong
    );
    rig.finish().await;
}

async fn every_change_the_engine_can_make_elsewhere_is_notified(p: Proto) {
    let mut rig = Rig::start(unique_config_on("MQ14", p)).await;
    let rest = || ActionMeta::default().defaulted("REST");
    let e = rig.engine.clone();
    let act = |id: BrokerId, action: Action| Command::act(TaskRef::Broker(id), action, rest());
    let new = worklane_domain::NewTask {
        capture_point_id: "MQ14".into(),
        ..Default::default()
    };
    let a = e
        .execute(Command::create(new.clone(), rest()))
        .await
        .unwrap()
        .task
        .broker_id;
    // A change by the business rules (a reprioritization) stays inside Worklane: not
    // announced unless `announce_rule_updates` is on.
    let by_rules = worklane_domain::TaskFields {
        priority: Some(9),
        ..Default::default()
    };
    let rules = ActionMeta::default().defaulted("rules");
    e.execute(Command::act(
        TaskRef::Broker(a),
        Action::Update(by_rules),
        rules,
    ))
    .await
    .unwrap();
    let update = worklane_domain::TaskFields {
        priority: Some(3),
        ..Default::default()
    };
    e.execute(act(a, Action::Update(update))).await.unwrap();
    e.execute(act(a, Action::Hold)).await.unwrap();
    e.execute(act(a, Action::Resume)).await.unwrap();
    e.execute(act(a, Action::Restart)).await.unwrap();
    e.execute(act(
        a,
        Action::ErrorHold {
            error: "no rule matched".into(),
        },
    ))
    .await
    .unwrap();
    e.execute(act(a, Action::Cancel)).await.unwrap();
    let b = e
        .execute(Command::create(new, rest()))
        .await
        .unwrap()
        .task
        .broker_id;
    e.execute(act(b, Action::Reject)).await.unwrap();
    let expected = [
        NoticeKind::TaskCreated,
        NoticeKind::TaskUpdated,
        NoticeKind::TaskHeld,
        NoticeKind::TaskResumed,
        NoticeKind::TaskRestarted,
        NoticeKind::TaskErrorHeld,
        NoticeKind::TaskCanceled,
        NoticeKind::TaskCreated,
        NoticeKind::TaskRejected,
    ];
    for kind in expected {
        let n = notice(rig.client.recv().await.parse());
        assert_eq!(n.kind, kind);
        assert_eq!(n.actor.as_deref(), Some("REST"));
        if kind == NoticeKind::TaskErrorHeld {
            assert_eq!(n.details.error.as_deref(), Some("no rule matched"));
        }
        if kind == NoticeKind::TaskUpdated {
            assert_eq!(n.details.priority, Some(3));
        }
    }
    rig.finish().await;
}

async fn works_the_same_on_postgresql(p: Proto) {
    let url = worklane_store::testing::fresh_postgres_url().await.unwrap();
    let store = worklane_store::connect(&url).await.unwrap();
    let (engine, _writer) =
        worklane_engine::Engine::start(store, worklane_engine::EngineOptions::default())
            .await
            .unwrap();
    let mut cfg = unique_config_on("PG1", p);
    cfg.check_if_captured = true;
    let mut rig = Rig::start_with(engine, cfg).await;
    let body = msg("CreateTask", "<CaptureId>pg-1</CaptureId>");
    rig.client.send(&body, Some("pg-m1"), None).await;
    let first = rig.client.recv().await;
    rig.client.send(&body, Some("pg-m1"), None).await;
    assert_eq!(
        rig.client.recv().await,
        first,
        "a redelivery is answered identically"
    );
    assert_eq!(notice(first.parse()).kind, NoticeKind::TaskCreated);
    let e = error(rig.client.ask(&body).await);
    assert_eq!(e.code, "TASK_ALREADY_CAPTURED");
    let n = notice(
        rig.client
            .ask(&msg("HoldTask", "<CaptureId>pg-1</CaptureId>"))
            .await,
    );
    assert_eq!(n.kind, NoticeKind::TaskHeld);
    rig.finish().await;
}

both_transports!(
    create_task_is_answered_with_its_correlation_and_defaults,
    check_if_captured_refuses_a_second_capture_id,
    duplicates_are_allowed_when_not_checked,
    update_task_changes_the_given_attributes,
    every_action_and_its_refusal,
    hold_of_an_assigned_task_is_refused,
    invalid_values_are_refused_naming_task_and_attribute,
    lenient_input_is_accepted,
    poison_messages_are_answered_and_moved_to_the_error_queue,
    a_repeated_message_id_is_answered_identically_and_applied_once,
    outside_changes_are_notified_and_own_requests_are_not_repeated,
    switched_off_messages_are_not_sent,
    notifications_resume_after_a_restart_without_loss_or_repeat,
    every_change_the_engine_can_make_elsewhere_is_notified,
    works_the_same_on_postgresql,
);
