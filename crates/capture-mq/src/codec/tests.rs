//! Round trips for every message, the lenient reading cases, and arbitrary input.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use worklane_domain::{ActionMeta, BrokerId, Ext, QueueType, Status, Task, TaskFields};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn paris() -> Codec {
    Codec::new(TimeZone::get("Europe/Paris").unwrap(), Limits::default())
}

fn meta() -> ActionMeta {
    ActionMeta {
        actor: Some("bpm-7".into()),
        reason: Some("customer called <again> & again".into()),
        action_date_time: Some(ts("2024-03-01T10:00:00Z")),
        ..Default::default()
    }
}

fn full_ext() -> Ext {
    Ext {
        customer_id: Some("C-1".into()),
        customer_segment: Some("gold".into()),
        product_type: Some("DSL".into()),
        product_subtype: Some("PremiumDSL".into()),
        result_code: Some("ok".into()),
        source_process_type: Some("Order".into()),
        source_process_subtype: Some("Return".into()),
        source_tenant: Some("T1".into()),
        source_first_created_date_time: Some(ts("2024-01-01T00:00:00Z")),
        source_created_date_time: Some(ts("2024-01-02T00:00:00Z")),
        source_due_date_time: Some(ts("2024-07-01T12:30:00Z")),
    }
}

fn full_fields() -> TaskFields {
    TaskFields {
        capture_id: Some("case-1".into()),
        tenant_id: Some("ten".into()),
        solution_id: Some("sol".into()),
        department_id: Some("dep".into()),
        process_id: Some("proc".into()),
        contract_id: Some("con".into()),
        business_calendar_id: Some("cal".into()),
        channel: Some("Email".into()),
        category: Some("Followup".into()),
        priority: Some(-5),
        business_value: Some(2_000_000_000),
        activation_date_time: Some(ts("2024-03-02T08:00:00Z")),
        due_date_time: Some(ts("2024-03-03T08:00:00Z")),
        expiration_date_time: Some(ts("2024-04-01T00:00:00Z")),
        reprioritize_date_time: Some(ts("2024-03-02T09:00:00Z")),
        ext: full_ext(),
        data: BTreeMap::from([
            ("OrderNo".into(), "42".into()),
            ("note".into(), "a&b".into()),
        ]),
    }
}

fn inbound_samples() -> Vec<Inbound> {
    let target = Target {
        broker_id: Some(BrokerId(17)),
        capture_id: None,
    };
    let by_capture = Target {
        broker_id: None,
        capture_id: Some("case-1".into()),
    };
    let mut update = full_fields();
    update.capture_id = None;
    let act = |kind, target: &Target| {
        Inbound::Action(TaskAction {
            kind,
            target: target.clone(),
            meta: meta(),
        })
    };
    vec![
        Inbound::CreateTask(CreateTask {
            meta: meta(),
            fields: full_fields(),
            hold: true,
        }),
        Inbound::CreateTask(CreateTask::default()),
        act(ActionKind::Update(update), &target),
        act(
            ActionKind::Update(TaskFields {
                priority: Some(3),
                ..Default::default()
            }),
            &by_capture,
        ),
        act(ActionKind::Complete, &target),
        act(ActionKind::Hold, &by_capture),
        act(ActionKind::Resume, &target),
        act(ActionKind::Restart, &target),
        act(ActionKind::Cancel, &by_capture),
        act(ActionKind::GetTaskInfo, &target),
        Inbound::Ping,
    ]
}

#[test]
fn every_inbound_message_round_trips() {
    let c = paris();
    let mut names = std::collections::BTreeSet::new();
    for msg in inbound_samples() {
        let xml = c.render_inbound(&msg);
        let back = c
            .parse_inbound(xml.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(back, msg, "{xml}");
        names.insert(msg.message_name());
    }
    assert_eq!(names.len(), Inbound::NAMES.len());
}

#[test]
fn create_task_is_written_with_the_seed_spelling_in_local_time() {
    let xml = paris().render_inbound(&inbound_samples()[0]);
    assert!(xml.starts_with("<GTLMessages>\n  <CreateTask>\n    <CaptureId>case-1</CaptureId>"));
    assert!(
        xml.contains("<ActionDateTime>2024-03-01T11:00:00</ActionDateTime>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Ext>\n") && xml.contains("<Data>\n") && xml.contains("<Hold>true</Hold>")
    );
    assert!(xml.contains("<Reason>customer called &lt;again&gt; &amp; again</Reason>"));
    let update = paris().render_inbound(&inbound_samples()[2]);
    assert!(
        update.contains("<ext>\n") && update.contains("<data>\n"),
        "{update}"
    );
}

fn task() -> Task {
    Task {
        broker_id: BrokerId(17),
        capture_id: "case-1".into(),
        capture_point_id: "MQ1".into(),
        distribution_id: Some("D-9".into()),
        distribution_point_id: Some("DP1".into()),
        tenant_id: Some("ten".into()),
        solution_id: Some("sol".into()),
        department_id: None,
        process_id: Some("proc".into()),
        contract_id: Some("con".into()),
        business_calendar_id: Some("cal".into()),
        channel: Some("Email".into()),
        category: Some("Followup".into()),
        status: Status::Assigned,
        priority: 7,
        business_value: Some(100),
        created_date_time: ts("2024-03-01T10:00:00Z"),
        held_date_time: Some(ts("2024-03-01T10:01:00Z")),
        distributed_date_time: Some(ts("2024-03-01T10:02:00Z")),
        assigned_date_time: Some(ts("2024-03-01T10:03:00Z")),
        completed_date_time: Some(ts("2024-03-01T10:04:00Z")),
        activation_date_time: Some(ts("2024-03-01T10:05:00Z")),
        due_date_time: Some(ts("2024-03-01T10:06:00Z")),
        expiration_date_time: Some(ts("2024-03-01T10:07:00Z")),
        reprioritize_date_time: Some(ts("2024-03-01T10:08:00Z")),
        assigned_to_user: Some("agent1".into()),
        queue: Some("Q".into()),
        queue_type: Some(QueueType::AgentWorkbin),
        queue_target: Some("agent1".into()),
        offer: None,
        ext: full_ext(),
        data: BTreeMap::from([("OrderNo".into(), "42".into())]),
        error: Some("no rule matched".into()),
        version: 3,
    }
}

fn outbound_samples() -> Vec<Outbound> {
    let t = task();
    let mut v: Vec<Outbound> = NoticeKind::ALL
        .into_iter()
        .map(|kind| {
            Outbound::Notice(Notice {
                kind,
                broker_id: t.broker_id,
                capture_id: t.capture_id.clone(),
                capture_point_id: t.capture_point_id.clone(),
                distribution_id: t.distribution_id.clone(),
                distribution_point_id: t.distribution_point_id.clone(),
                actor: Some("agent1".into()),
                reason: Some("done".into()),
                event_date_time: ts("2024-03-01T12:00:00Z"),
                details: Details::of_task(kind, &t),
            })
        })
        .collect();
    v.push(Outbound::Error(ErrorMessage {
        message: "no task with BrokerId 9".into(),
        code: "TASK_NOT_FOUND".into(),
        parameters: vec!["BrokerId=9".into(), "x".into()],
    }));
    v.push(Outbound::Pong);
    v
}

#[test]
fn every_outbound_message_round_trips() {
    let c = paris();
    let samples = outbound_samples();
    let names: std::collections::BTreeSet<_> = samples.iter().map(Outbound::name).collect();
    assert_eq!(names.len(), OUTBOUND_NAMES.len());
    for msg in samples {
        let xml = c.render_outbound(&msg);
        let back = c
            .parse_outbound(xml.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(back, msg, "{xml}");
    }
}

#[test]
fn outbound_messages_carry_what_the_seed_lists() {
    let c = Codec::utc();
    let s = outbound_samples();
    let xml = |i: usize| c.render_outbound(&s[i]);
    let created = xml(0);
    assert!(created.contains("<DistributionId>D-9</DistributionId>"));
    assert!(created.contains("<EventDateTime>2024-03-01T12:00:00</EventDateTime>"));
    assert!(!created.contains("status"), "{created}");
    let updated = xml(1);
    assert!(updated.contains("<status>Assigned</status>") && updated.contains("<ext>\n"));
    assert!(
        updated.contains("<actor>agent1</actor>\n  </TaskUpdated>"),
        "{updated}"
    );
    assert!(xml(3).contains("<QueueType>AgentWorkbin</QueueType>"));
    assert!(xml(4).contains("<AssignedToUser>agent1</AssignedToUser>"));
    assert!(xml(7).contains("<Error>no rule matched</Error>"));
    assert!(xml(8).ends_with("</TaskResumed>\n</GTLMessages>\n"));
    let info = xml(13);
    assert!(
        info.contains("<Ext>\n") && info.contains("<Data>\n") && info.contains("<Queue>Q</Queue>")
    );
    assert_eq!(xml(15), "<GTLMessages>\n  <Pong></Pong>\n</GTLMessages>\n");
    let error = xml(14);
    assert!(error.contains("<Code>TASK_NOT_FOUND</Code>\n    <Parameter>BrokerId=9</Parameter>"));
}

#[test]
fn reads_leniently() {
    let c = Codec::utc();
    let xml = "<?xml version=\"1.0\"?>\n<gtlmessages><createtask>\
        <CAPTUREID>  case-9 \n</CAPTUREID><Priority> 4 </Priority><ext><CustomerId>x</CustomerId></ext>\
        <DATA><Key1> v </Key1></DATA><hold>TRUE</hold><dueDateTime>2024-01-01T10:00:00+02:00</dueDateTime>\
        <channel></channel></CreateTask></GTLMessages>";
    let Inbound::CreateTask(m) = c.parse_inbound(xml.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(m.fields.capture_id.as_deref(), Some("case-9"));
    assert_eq!(m.fields.priority, Some(4));
    assert_eq!(m.fields.ext.customer_id.as_deref(), Some("x"));
    assert_eq!(m.fields.data.get("Key1").map(String::as_str), Some("v"));
    assert_eq!(m.fields.due_date_time, Some(ts("2024-01-01T08:00:00Z")));
    assert_eq!(m.fields.channel, None);
    assert!(m.hold);
    let ping = c
        .parse_inbound(b"<GTLMessages><ping/></GTLMessages>")
        .unwrap();
    assert_eq!(ping, Inbound::Ping);
    let ns = "<m:GTLMessages xmlns:m=\"urn:x\"><m:HoldTask><m:BrokerId>5</m:BrokerId></m:HoldTask></m:GTLMessages>";
    assert!(matches!(
        c.parse_inbound(ns.as_bytes()).unwrap(),
        Inbound::Action(_)
    ));
}

fn refusal(xml: &str) -> DomainError {
    Codec::utc().parse_inbound(xml.as_bytes()).unwrap_err()
}

#[test]
fn refuses_with_invalid_format_naming_the_attribute_and_task() {
    let e = refusal("<GTLMessages><UpdateTask><CaptureId>c1</CaptureId><priority>high</priority></UpdateTask></GTLMessages>");
    assert_eq!(e.code, worklane_domain::ErrorCode::InvalidFormat);
    assert_eq!(
        e.parameters,
        vec!["CaptureId=c1".to_owned(), "priority".to_owned()]
    );
    let e = refusal("<GTLMessages><HoldTask><Actor>x</Actor></HoldTask></GTLMessages>");
    assert_eq!(e.parameters, vec!["BrokerId".to_owned()]);
    let e = refusal("<GTLMessages><CreateTask><status>New</status></CreateTask></GTLMessages>");
    assert_eq!(e.parameters, vec!["status".to_owned()]);
    let e = refusal("<GTLMessages><CreateTask><BrokerId>3</BrokerId></CreateTask></GTLMessages>");
    assert_eq!(
        e.parameters,
        vec!["BrokerId=3".to_owned(), "BrokerId".to_owned()]
    );
    let e =
        refusal("<GTLMessages><CompleteTask><BrokerId>-3</BrokerId></CompleteTask></GTLMessages>");
    assert!(e.parameters.contains(&"BrokerId".to_owned()));
    let e = refusal("<GTLMessages><CreateTask><Hold>maybe</Hold></CreateTask></GTLMessages>");
    assert_eq!(e.parameters, vec!["Hold".to_owned()]);
    let e = refusal("<GTLMessages><CreateTask><priority>1</priority><Priority>2</Priority></CreateTask></GTLMessages>");
    assert_eq!(e.parameters, vec!["Priority".to_owned()]);
    let e = refusal(
        "<GTLMessages><CreateTask><Ext><colour>red</colour></Ext></CreateTask></GTLMessages>",
    );
    assert_eq!(e.parameters, vec!["ext.colour".to_owned()]);
    for doc in [
        "<Other><Ping/></Other>",
        "<GTLMessages/>",
        "<GTLMessages><Ping/><Ping/></GTLMessages>",
        "<GTLMessages><Explode/></GTLMessages>",
        "not xml at all",
    ] {
        assert_eq!(
            refusal(doc).parameters,
            vec!["GTLMessages".to_owned()],
            "{doc}"
        );
    }
}

#[test]
fn the_size_limit_is_configurable() {
    let c = Codec::new(
        TimeZone::UTC,
        Limits {
            max_bytes: 40,
            max_depth: 16,
        },
    );
    assert!(c
        .parse_inbound(b"<GTLMessages><Ping/></GTLMessages>")
        .is_ok());
    let long = format!("<GTLMessages><Ping>{}</Ping></GTLMessages>", " ".repeat(40));
    assert!(c
        .parse_inbound(long.as_bytes())
        .unwrap_err()
        .message
        .contains("bytes long"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let c = Codec::utc();
        let _ = c.parse_inbound(&bytes);
        let _ = c.parse_outbound(&bytes);
    }

    #[test]
    fn mangled_messages_never_panic(cut in 0usize..600, junk in "[<>&/;a-zA-Z#0-9 ]{0,20}") {
        let c = Codec::utc();
        let xml = c.render_inbound(&inbound_samples()[0]);
        let cut = cut.min(xml.len());
        let mut s = xml.as_bytes()[..cut].to_vec();
        s.extend_from_slice(junk.as_bytes());
        s.extend_from_slice(&xml.as_bytes()[cut..]);
        let _ = c.parse_inbound(&s);
    }

    #[test]
    fn any_text_value_round_trips(v in "\\PC{1,40}") {
        let c = Codec::utc();
        let v = v.trim().to_owned();
        prop_assume!(!v.is_empty());
        let msg = Inbound::Action(TaskAction {
            kind: ActionKind::Hold,
            target: Target { broker_id: Some(BrokerId(1)), capture_id: None },
            meta: ActionMeta { reason: Some(v.clone()), ..Default::default() },
        });
        let back = c.parse_inbound(c.render_inbound(&msg).as_bytes()).unwrap();
        prop_assert_eq!(back, msg);
    }
}
