use crate::{Condition, Scope};
use worklane_domain::{Agent, AgentProfile, Timestamp};

fn now() -> Timestamp {
    "2026-01-05T10:00:00Z".parse().unwrap()
}

fn agent() -> Agent {
    let mut p = AgentProfile::default();
    p.skills.insert("motor".into(), 4);
    p.groups.push("claims".into());
    p.capacity.insert("email".into(), 2);
    Agent::new("ann".into(), p, now())
}

fn task(priority: i32) -> worklane_domain::Task {
    let new = worklane_domain::NewTask {
        capture_point_id: "cp".into(),
        fields: serde_json::from_value(serde_json::json!({
            "priority": priority, "channel": "email", "data": {"amount": "700"}
        }))
        .unwrap(),
        hold: false,
        on_duplicate: Default::default(),
    };
    worklane_domain::action::create(
        &new,
        worklane_domain::BrokerId(1),
        &Default::default(),
        now(),
    )
    .task
}

#[test]
fn requires_reads_agent_and_task() {
    let a = agent();
    let check = |src: &str, prio: i32| {
        Condition::compile(src, Scope::AgentAndTask)
            .unwrap()
            .holds(&a, Some(&task(prio)), now())
            .unwrap()
    };
    assert!(check("agent.skills.motor >= 3", 0));
    assert!(!check("agent.skills.motor >= 5", 0));
    // A skill the agent lacks is level 0.
    assert!(!check("agent.skills.home >= 1", 0));
    assert!(check("agent.skills.home == 0", 0));
    assert!(check("'claims' in agent.groups && agent.id == 'ann'", 0));
    assert!(check(
        "size(agent.skills) == 1 && agent.capacity.email == 2",
        0
    ));
    assert!(check("task.priority > 5 && task.channel == 'email'", 9));
    assert!(!check("task.priority > 5", 1));
    assert!(check(
        "task.data.amount == '700' && has(task.data.amount)",
        0
    ));
    assert!(check("agent.name == null", 0));
}

#[test]
fn requires_says_whether_it_reads_the_task() {
    let c = Condition::compile("agent.skills.motor >= 3", Scope::AgentAndTask).unwrap();
    assert!(!c.reads_task());
    assert!(c.holds(&agent(), None, now()).unwrap());
    let c = Condition::compile("task.priority > agent.skills.motor", Scope::AgentAndTask).unwrap();
    assert!(c.reads_task());
}

#[test]
fn unknown_variables_and_non_bools_are_refused() {
    let e = Condition::compile("skills.motor > 1", Scope::AgentAndTask).unwrap_err();
    assert!(e.contains("unknown variable \"skills\""), "{e}");
    let e = Condition::compile("agent.bogus", Scope::Task).unwrap_err();
    assert!(e.contains("unknown variable \"agent\""), "{e}");
    let c = Condition::compile("agent.skills.motor", Scope::AgentAndTask).unwrap();
    let e = c.holds(&agent(), None, now()).unwrap_err();
    assert!(e.contains("where a bool is needed"), "{e}");
}

#[test]
fn when_reads_the_task_by_name() {
    let c = Condition::compile("channel == 'email' && priority >= 3", Scope::Task).unwrap();
    assert!(c.holds_for_task(&task(3), now()).unwrap());
    assert!(!c.holds_for_task(&task(2), now()).unwrap());
}
