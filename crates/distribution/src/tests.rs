use crate::{DistributionConfig, Mode, QueueConfig, Queues};
use worklane_domain::{Agent, AgentProfile, BrokerId, NewTask, Task, Timestamp};

fn now() -> Timestamp {
    "2026-01-05T10:00:00Z".parse().unwrap()
}

fn queues(toml_text: &str) -> Result<Queues, crate::QueueError> {
    #[derive(serde::Deserialize)]
    struct File {
        queue: Vec<QueueConfig>,
    }
    let f: File = toml::from_str(toml_text).unwrap();
    Queues::new(&f.queue, DistributionConfig::default())
}

fn task(json: serde_json::Value) -> Task {
    let new = NewTask {
        capture_point_id: "cp".into(),
        fields: serde_json::from_value(json).unwrap(),
        hold: false,
        on_duplicate: Default::default(),
    };
    worklane_domain::action::create(&new, BrokerId(1), &Default::default(), now()).task
}

const QUEUES: &str = r#"
[[queue]]
id = "motor"
processes = ["motor-claims"]
requires = "agent.skills.motor >= 3"
mode = "push"
offer_timeout = "45s"

[[queue]]
id = "big"
when = "priority >= 100"
requires = "task.priority <= agent.skills.limit * 100"
mode = "pull"

[[queue]]
id = "rest"
when = "true"
"#;

#[test]
fn a_task_enters_its_process_queue_then_the_first_whose_when_holds() {
    let q = queues(QUEUES).unwrap();
    let mut t = task(serde_json::json!({"priority": 500}));
    t.process_id = Some("motor-claims".into());
    assert_eq!(q.route(&t, None, now()).unwrap().unwrap().id, "motor");
    // The process's own `queue` wins.
    assert_eq!(
        q.route(&t, Some("rest"), now()).unwrap().unwrap().id,
        "rest"
    );
    t.process_id = None;
    assert_eq!(q.route(&t, None, now()).unwrap().unwrap().id, "big");
    let low = task(serde_json::json!({"priority": 1}));
    assert_eq!(q.route(&low, None, now()).unwrap().unwrap().id, "rest");
    let e = q.route(&low, Some("nowhere"), now()).unwrap_err();
    assert!(e.contains("\"nowhere\""), "{e}");
}

#[test]
fn modes_timeouts_and_requires() {
    let q = queues(QUEUES).unwrap();
    let motor = q.get("motor").unwrap();
    assert_eq!(motor.mode, Mode::Push);
    assert_eq!(motor.offer_timeout.as_secs(), 45);
    assert_eq!(q.get("rest").unwrap().mode, Mode::Both);
    assert_eq!(q.get("rest").unwrap().offer_timeout.as_secs(), 30);

    let mut p = AgentProfile::default();
    p.skills.insert("motor".into(), 3);
    p.skills.insert("limit".into(), 2);
    let a = Agent::new("ann".into(), p, now());
    assert_eq!(motor.admits(&a, now()).unwrap(), Some(true));
    let big = q.get("big").unwrap();
    assert_eq!(big.admits(&a, now()).unwrap(), None, "depends on the task");
    assert!(big
        .may_take(&a, &task(serde_json::json!({"priority": 200})), now())
        .unwrap());
    assert!(!big
        .may_take(&a, &task(serde_json::json!({"priority": 201})), now())
        .unwrap());
    let novice = Agent::new("bob".into(), AgentProfile::default(), now());
    assert_eq!(motor.admits(&novice, now()).unwrap(), Some(false));
}

#[test]
fn bad_configurations_name_their_key() {
    let e = queues("[[queue]]\nid = \"a\"\n[[queue]]\nid = \"a\"\n").unwrap_err();
    assert_eq!(e.key, "queue[1].id");
    let e = queues(
        "[[queue]]\nid = \"a\"\nprocesses = [\"p\"]\n[[queue]]\nid = \"b\"\nprocesses = [\"p\"]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("already in queue \"a\""), "{e}");
    let e = queues("[[queue]]\nid = \"a\"\nrequires = \"skills.x > 1\"\n").unwrap_err();
    assert_eq!(e.key, "queue \"a\".requires");
    let e = queues("[[queue]]\nid = \"a\"\noffer_timeout = \"2d\"\n").unwrap_err();
    assert_eq!(e.key, "queue \"a\".offer_timeout");
    let bad: Result<QueueConfig, _> = toml::from_str("id = \"a\"\nmode = \"shove\"\n");
    assert!(bad.unwrap_err().to_string().contains("shove"));
}
