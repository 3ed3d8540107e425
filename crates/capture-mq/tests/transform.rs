//! Transformations (SPEC section 12) with the example scripts in `examples/mq/transform/`,
//! over both transports: every inbound message kind in the order system's own format,
//! answers and notifications in its format, a failing transformation answered
//! INVALID_FORMAT (in GTLMessages) and kept on the error queue.

#[macro_use]
mod common;

use common::{unique_config_on, Proto, Received, Rig};
use std::path::PathBuf;
use worklane_capture_mq::codec::Outbound;
use worklane_capture_mq::MqConfig;
use worklane_domain::{Action, ActionMeta, TaskRef};
use worklane_engine::{Command, Processor};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/mq/transform")
}

fn transformed(id: &str, p: Proto) -> MqConfig {
    let mut cfg = unique_config_on(id, p);
    cfg.inbound_transform = Some(examples().join("order-in.rhai"));
    cfg.outbound_transform = Some(examples().join("order-out.rhai"));
    cfg
}

fn event(kind: &str, order: &str, inner: &str) -> String {
    format!("<OrderEvent type=\"{kind}\"><OrderNumber>{order}</OrderNumber>{inner}</OrderEvent>")
}

/// The `event` attribute of an `<OrderStatus>` answer.
fn event_of(r: &Received) -> String {
    assert!(r.body.starts_with("<OrderStatus "), "{}", r.body);
    let start = r.body.find("event=\"").expect("an event attribute") + 7;
    let end = start + r.body[start..].find('"').unwrap();
    r.body[start..end].to_owned()
}

async fn ask(rig: &mut Rig, body: &str) -> Received {
    let id = uuid::Uuid::new_v4().to_string();
    rig.client.send(body, Some(&id), None).await;
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some(id.as_str()), "{}", r.body);
    r
}

async fn every_inbound_kind_goes_through_the_transformation(p: Proto) {
    let mut rig = Rig::start(transformed("TR1", p)).await;
    let placed = std::fs::read_to_string(examples().join("order-placed.xml")).unwrap();
    let r = ask(&mut rig, &placed).await;
    assert_eq!(event_of(&r), "TaskCreated");
    assert!(r.body.contains("order=\"4711\""), "{}", r.body);
    assert!(r.body.contains("<By>jdoe</By>"), "{}", r.body);
    let task = rig
        .engine
        .tasks()
        .list_tasks(&Default::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(task.capture_id, "order-4711");
    assert_eq!(task.priority, 8);
    assert_eq!(task.process_id.as_deref(), Some("SAP-SD"));
    assert_eq!(task.ext.customer_id.as_deref(), Some("C-1001"));
    assert_eq!(task.data["CustomerName"], "ACME & Sons");
    assert_eq!(task.data["Currency"], "EUR");

    let changed = std::fs::read_to_string(examples().join("order-changed.xml")).unwrap();
    let r = ask(&mut rig, &changed).await;
    assert_eq!(event_of(&r), "TaskUpdated");
    assert!(r.body.contains("<Urgency>5</Urgency>"), "{}", r.body);
    let steps = [
        ("status", "TaskInfo"),
        ("blocked", "TaskHeld"),
        ("released", "TaskResumed"),
        ("reopened", "TaskRestarted"),
        ("shipped", "TaskCompleted"),
        ("withdrawn", "Error"),
        ("heartbeat", "Pong"),
    ];
    for (kind, answer) in steps {
        let r = ask(&mut rig, &event(kind, "4711", "<Clerk>ops</Clerk>")).await;
        assert_eq!(event_of(&r), answer, "{kind}: {}", r.body);
        if answer == "Error" {
            assert!(
                r.body.contains("code=\"CANNOT_CANCEL_COMPLETED_TASK\""),
                "{}",
                r.body
            );
        }
    }
    // A refusal of the engine is answered in the order system's format too.
    let r = ask(&mut rig, &event("blocked", "9999", "")).await;
    assert_eq!(event_of(&r), "Error");
    assert!(r.body.contains("code=\"TASK_NOT_FOUND\""), "{}", r.body);
    assert!(
        r.body.contains("<Concerns>CaptureId=order-9999</Concerns>"),
        "{}",
        r.body
    );
    rig.finish().await;
}

async fn notifications_are_sent_in_the_source_systems_format(p: Proto) {
    let mut rig = Rig::start(transformed("TR2", p)).await;
    let r = ask(&mut rig, &event("placed", "100", "<Urgency>low</Urgency>")).await;
    assert_eq!(event_of(&r), "TaskCreated");
    let id = rig
        .engine
        .tasks()
        .list_tasks(&Default::default())
        .await
        .unwrap()[0]
        .broker_id;
    Processor::new(rig.engine.clone())
        .step(jiff::Timestamp::now())
        .await
        .unwrap();
    let meta = ActionMeta {
        reason: Some("supervisor".into()),
        request_id: Some("rest-1".into()),
        ..Default::default()
    }
    .defaulted("REST");
    rig.engine
        .execute(Command::act(
            TaskRef::Broker(id),
            Action::Assign { user: "ann".into() },
            meta,
        ))
        .await
        .unwrap();
    let r = rig.client.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("rest-1"));
    assert_eq!(event_of(&r), "TaskAssigned");
    assert!(r.body.contains("order=\"100\""), "{}", r.body);
    assert!(
        r.body.contains("<AssignedTo>ann</AssignedTo>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("<By>REST</By>"), "{}", r.body);
    rig.finish().await;
}

async fn a_failing_transformation_is_answered_invalid_format_and_kept(p: Proto) {
    let cfg = transformed("TR3", p);
    let mut rig = Rig::start(cfg.clone()).await;
    let mut errors = common::Client::connect(&cfg, &cfg.error_queue).await;
    let unknown = std::fs::read_to_string(examples().join("order-unknown.xml")).unwrap();
    let cases = [
        unknown.as_str(),
        "<Invoice><No>1</No></Invoice>",
        "<OrderEvent type=\"placed\"><Urgency>high</Urgency></OrderEvent>",
        "<OrderEvent type=\"placed\"><OrderNumber>7</OrderNumber><Urgency>asap</Urgency></OrderEvent>",
        "not XML at all",
    ];
    for (i, body) in cases.iter().enumerate() {
        let mid = format!("bad-{i}");
        rig.client.send(body, Some(&mid), None).await;
        let answer = rig.client.recv().await;
        assert_eq!(answer.correlation_id.as_deref(), Some(mid.as_str()));
        // In GTLMessages: the message's own format is unknown.
        let Outbound::Error(e) = answer.parse() else {
            panic!("{}", answer.body)
        };
        assert_eq!(e.code, "INVALID_FORMAT", "{}", answer.body);
        assert!(e.message.contains("order-in.rhai"), "{}", e.message);
        let kept = errors.recv().await;
        assert_eq!(kept.body, *body);
        assert_eq!(kept.message_id.as_deref(), Some(mid.as_str()));
        let reason = kept
            .headers
            .iter()
            .find(|(k, _)| k == "x-worklane-error")
            .expect("reason header");
        assert!(reason.1.contains("inbound transformation"), "{reason:?}");
    }
    assert!(rig
        .engine
        .tasks()
        .list_tasks(&Default::default())
        .await
        .unwrap()
        .is_empty());
    // Still serving, and nothing is left to come back.
    let r = ask(&mut rig, &event("heartbeat", "", "")).await;
    assert_eq!(event_of(&r), "Pong");
    let (client, cfg) = rig.stop().await;
    assert_eq!(client.count(&cfg.input_queue).await, 0);
    errors.delete_queues(&cfg).await;
    client.delete_queues(&cfg).await;
}

both_transports!(
    every_inbound_kind_goes_through_the_transformation,
    notifications_are_sent_in_the_source_systems_format,
    a_failing_transformation_is_answered_invalid_format_and_kept,
);

#[test]
fn a_broken_script_is_refused_at_start_up_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("wl-tr-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("broken.rhai");
    std::fs::write(
        &script,
        "let doc = element(\"GTLMessages\");\nlet = 3;\ndoc\n",
    )
    .unwrap();
    let mut cfg = MqConfig::new("TR4");
    cfg.inbound_transform = Some(script.clone());
    let err = cfg.validate().unwrap_err();
    assert!(err.starts_with("inbound_transform: "), "{err}");
    assert!(
        err.contains(&format!("{}:2:", script.display())),
        "names file and line: {err}"
    );
    cfg.inbound_transform = Some(dir.join("missing.rhai"));
    let err = cfg.validate().unwrap_err();
    assert!(err.contains("missing.rhai"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_examples_convert_both_ways_by_hand() {
    use worklane_capture_mq::cli::{transform, TransformArgs};
    let dir = examples();
    for (file, reads_as) in [
        ("order-placed.xml", "<CreateTask>"),
        ("order-changed.xml", "<UpdateTask>"),
        ("order-status.xml", "<GetTaskInfo>"),
        ("order-blocked.xml", "<HoldTask>"),
    ] {
        let out = transform(TransformArgs {
            input: dir.join(file),
            inbound: Some(dir.join("order-in.rhai")),
            outbound: None,
            time_limit_ms: 100,
        })
        .unwrap();
        assert!(out.contains(reads_as), "{file}: {out}");
    }
    let err = transform(TransformArgs {
        input: dir.join("order-unknown.xml"),
        inbound: Some(dir.join("order-in.rhai")),
        outbound: None,
        time_limit_ms: 100,
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("teleported"), "{err:#}");
    let out = transform(TransformArgs {
        input: dir.join("../CreateTask.xml"),
        inbound: None,
        outbound: Some(dir.join("order-out.rhai")),
        time_limit_ms: 100,
    });
    // A request is not an outbound message.
    assert!(out.is_err());
    let gtl = dir.join("task-assigned.xml");
    let out = transform(TransformArgs {
        input: gtl,
        inbound: None,
        outbound: Some(dir.join("order-out.rhai")),
        time_limit_ms: 100,
    })
    .unwrap();
    assert!(
        out.starts_with("<OrderStatus event=\"TaskAssigned\" order=\"4711\""),
        "{out}"
    );
}
