use super::*;
use jiff::SignedDuration;
use worklane_domain::{action, ActionMeta, BrokerId, NewTask, Status, Task, TaskFields, Timestamp};

/// Two departments, three processes, one calendar with holidays (as examples/rules).
pub(crate) const BACK_OFFICE: &str = include_str!("../../../examples/rules/worklane.toml");

fn config(text: &str) -> RulesConfig {
    toml::from_str(text).expect("the test configuration parses")
}

pub(crate) fn back_office() -> RuleSet {
    RuleSet::new(&config(BACK_OFFICE)).expect("the back office configuration is valid")
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) fn task(cp: &str, fields: serde_json::Value, now: Timestamp) -> Task {
    let fields: TaskFields = serde_json::from_value(fields).unwrap();
    let new = NewTask {
        capture_point_id: cp.into(),
        fields,
        hold: false,
        on_duplicate: Default::default(),
    };
    action::create(&new, BrokerId(1), &ActionMeta::default(), now).task
}

/// Applies a decision as the engine would.
fn apply(t: &Task, d: Decision, now: Timestamp) -> Task {
    let (action, reason) = d.into_action();
    let meta = ActionMeta {
        reason,
        ..Default::default()
    };
    worklane_domain::decide(t, &action, &meta, now)
        .expect("the decision is allowed")
        .task
}

/// Monday 2026-11-30 10:00 London (GMT).
const MONDAY: &str = "2026-11-30T10:00:00Z";

#[test]
fn a_fax_claim_is_classified_into_motor_with_the_structure() {
    let rules = back_office();
    let now = ts(MONDAY);
    let t = task(
        "fax",
        serde_json::json!({"channel": "Fax", "data": {"claimType": "motor", "amount": "25000"}}),
        now,
    );
    let Decision::Classify(c) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!("classified")
    };
    assert_eq!(c.process_id.as_deref(), Some("motor"));
    assert_eq!(c.department_id.as_deref(), Some("claims"));
    assert_eq!(c.tenant_id.as_deref(), Some("acme"));
    assert_eq!(c.solution_id.as_deref(), Some("prod"));
    assert_eq!(c.contract_id.as_deref(), Some("motor-2026"));
    assert_eq!(c.fields.category.as_deref(), Some("NewClaim"));
    assert_eq!(c.fields.business_value, Some(500));
    let t = apply(&t, Decision::Classify(c), now);
    assert_eq!(t.status, Status::Captured);
    assert_eq!(
        t.business_calendar_id.as_deref(),
        Some("uk"),
        "the department's calendar"
    );

    let Decision::Prioritize(p) = rules.prioritize(&t, now, &mut Trace::off()) else {
        panic!("prioritized")
    };
    let t = apply(&t, Decision::Prioritize(p), now);
    assert_eq!(t.status, Status::Queued);
    // 100 from the process, then big-motor adds the business value the process set
    // (25000 / 100 = 250).
    assert_eq!(t.business_value, Some(250));
    assert_eq!(t.priority, 350);
    assert_eq!(t.data.get("flag").map(String::as_str), Some("big"));
    // 3 business days after Monday: Thursday's closing time, 17:30 London.
    assert_eq!(t.due_date_time, Some(ts("2026-12-03T17:30:00Z")));
    assert_eq!(t.reprioritize_date_time, Some(ts("2026-11-30T10:15:00Z")));
}

#[test]
fn later_rules_override_earlier_ones_and_scopes_run_in_order() {
    let rules = RuleSet::new(&config(
        r#"
[[department]]
id = "d"
[[process]]
id = "p1"
department = "d"
[[process]]
id = "p2"
department = "d"
[[rule]]
id = "process-scope"
phase = "classification"
scope = "process:p2"
compute = { category = "category + '>process'" }
[[rule]]
id = "department-scope"
phase = "classification"
scope = "department:d"
compute = { category = "category + '>department'" }
[[rule]]
id = "first"
phase = "classification"
set = { processId = "p1", category = "global" }
[[rule]]
id = "second"
phase = "classification"
when = "processId == 'p1'"
set = { processId = "p2" }
[[rule]]
id = "capture-point"
phase = "classification"
scope = "capture_point:cp"
compute = { category = "category + '>cp'" }
"#,
    ))
    .unwrap();
    let now = ts(MONDAY);
    let t = task("cp", serde_json::json!({}), now);
    let mut trace = Trace::on();
    let Decision::Classify(c) = rules.classify(&t, now, &mut trace) else {
        panic!()
    };
    assert_eq!(c.process_id.as_deref(), Some("p2"));
    assert_eq!(
        c.fields.category.as_deref(),
        Some("global>cp>department>process")
    );
    let order: Vec<&str> = trace.phases[0]
        .steps
        .iter()
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "rule:first",
            "rule:second",
            "rule:capture-point",
            "rule:department-scope",
            "rule:process-scope"
        ]
    );
}

#[test]
fn later_rules_see_every_kind_of_attribute_earlier_ones_set() {
    let rules = RuleSet::new(&config(
        r#"
[[department]]
id = "d"
[[process]]
id = "p"
department = "d"
priority = "5"
[[rule]]
id = "sets"
phase = "classification"
set = { processId = "p", ext = { productType = "premium" }, data = { k = "v" } }
compute = { businessValue = "7" }
[[rule]]
id = "reads"
phase = "classification"
when = 'processId == "p" && ext.productType == "premium" && ext["productType"] == "premium" && data.k == "v" && data["k"] == "v" && data.orig == "o" && size(data) == 2 && businessValue == 7'
set = { category = "seen" }
[[rule]]
id = "department-from-the-process"
phase = "classification"
scope = "department:d"
when = 'category == "seen"'
compute = { "data.k" = "data.k + '2'" }
[[rule]]
id = "raise"
phase = "prioritization"
when = "priority == 5"
compute = { priority = "priority + 1" }
[[rule]]
id = "raise-again"
phase = "prioritization"
scope = "process:p"
when = "priority == 6"
compute = { priority = "priority * 10" }
"#,
    ))
    .unwrap();
    let now = ts(MONDAY);
    let t = task("cp", serde_json::json!({"data": {"orig": "o"}}), now);
    let d = rules.classify(&t, now, &mut Trace::off());
    let Decision::Classify(c) = &d else {
        panic!("classified: {d:?}")
    };
    assert_eq!(c.fields.category.as_deref(), Some("seen"));
    assert_eq!(c.fields.data.get("k").map(String::as_str), Some("v2"));
    assert_eq!(c.fields.business_value, Some(7));
    let t = apply(&t, d, now);
    // The rules add to the task's own data.
    assert_eq!(t.data.get("orig").map(String::as_str), Some("o"));
    let Decision::Prioritize(p) = rules.prioritize(&t, now, &mut Trace::off()) else {
        panic!("prioritized")
    };
    assert_eq!(p.fields.priority, Some(60));
}

#[test]
fn no_process_is_error_held_with_a_reason() {
    let rules = back_office();
    let now = ts(MONDAY);
    let t = task("fax", serde_json::json!({"channel": "Email"}), now);
    let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!()
    };
    assert!(e.contains("no process"), "{e}");
    let t = apply(&t, Decision::ErrorHold(e), now);
    assert_eq!(t.status, Status::ErrorHeld);

    let t = task("fax", serde_json::json!({"processId": "nope"}), now);
    let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!()
    };
    assert!(e.contains("\"nope\" names no configured process"), "{e}");
}

#[test]
fn a_failing_rule_error_holds_with_its_id_and_error() {
    let rules = back_office();
    let now = ts(MONDAY);
    // amount is not a number: the rule's compute fails.
    let t = task(
        "fax",
        serde_json::json!({"channel": "Fax", "data": {"claimType": "motor", "amount": "lots"}}),
        now,
    );
    let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!()
    };
    assert!(
        e.starts_with("rule \"fax-motor\" failed: compute.businessValue"),
        "{e}"
    );
}

/// One classification rule over `when`, setting processId "p" (of department "d").
fn one_rule(when: &str, compute: &str) -> RuleSet {
    let text = format!(
        r#"
[[department]]
id = "d"
[[process]]
id = "p"
department = "d"
[[rule]]
id = "r"
phase = "classification"
when = '{when}'
set = {{ processId = "p" }}
compute = {{ {compute} }}
"#
    );
    RuleSet::new(&config(&text)).expect("the rule compiles")
}

#[test]
fn ext_and_data_read_by_name_or_as_maps_agree() {
    let now = ts(MONDAY);
    let t = task(
        "web",
        serde_json::json!({"ext": {"customerSegment": "gold", "sourceDueDateTime": "2026-12-01T09:00:00Z"}, "data": {"a": "x"}}),
        now,
    );
    // Read by qualified name, as maps (has, in, size, index), and unset ext is null.
    let rules = one_rule(
        r#"data.a == "x" && has(data.a) && !has(data.b) && "a" in data && size(data) == 1 && data["a"] == "x" && ext.customerSegment == "gold" && ext["customerSegment"] == "gold" && ext.productType == null && has(ext.productType) && ext.sourceDueDateTime < timestamp("2026-12-02T00:00:00Z")"#,
        r#""data.seen" = "data.a + ext.customerSegment""#,
    );
    let Decision::Classify(c) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!("classified")
    };
    assert_eq!(c.process_id.as_deref(), Some("p"));
    assert_eq!(c.fields.data.get("seen").map(String::as_str), Some("xgold"));

    // A missing data key and an ext name that does not exist are errors, not null.
    for when in ["data.b == \"x\"", "ext.nothing == null"] {
        let rules = one_rule(when, "");
        let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
            panic!("{when}: error held")
        };
        assert!(e.starts_with("rule \"r\" failed: when"), "{when}: {e}");
    }
}

#[test]
fn computed_values_of_every_kind_reach_their_attributes() {
    let now = ts(MONDAY);
    let t = task("web", serde_json::json!({"data": {"n": "7"}}), now);
    let rules = one_rule(
        "true",
        r#"priority = "int(data.n) * 2", businessValue = "3.0", category = "'C' + data.n", "ext.productType" = "'car'", dueDateTime = "now + duration('1h')", "data.m" = "int(data.n) + 1""#,
    );
    let Decision::Classify(c) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!("classified")
    };
    let f = &c.fields;
    assert_eq!(f.priority, Some(14));
    assert_eq!(f.business_value, Some(3));
    assert_eq!(f.category.as_deref(), Some("C7"));
    assert_eq!(f.ext.product_type.as_deref(), Some("car"));
    assert_eq!(f.due_date_time, Some(ts("2026-11-30T11:00:00Z")));
    assert_eq!(f.data.get("m").map(String::as_str), Some("8"));

    // Out of range or of the wrong type: the rule fails, naming the attribute.
    for (compute, what) in [
        (
            r#"priority = "5000000000""#,
            "priority: 5000000000 is out of range",
        ),
        (r#"category = "1 == 1""#, "compute.category"),
        (r#"channel = "'x' * 2""#, "compute.channel"),
    ] {
        let rules = one_rule("true", compute);
        let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
            panic!("{compute}: error held")
        };
        assert!(
            e.starts_with("rule \"r\" failed: ") && e.contains(what),
            "{compute}: {e}"
        );
    }
}

#[test]
fn outside_the_process_or_contract_window_is_rejected() {
    let rules = back_office();
    let t0 = ts("2027-02-01T10:00:00Z");
    let t = task(
        "fax",
        serde_json::json!({"processId": "motor", "data": {"amount": "1"}}),
        t0,
    );
    let Decision::Reject(reason) = rules.classify(&t, t0, &mut Trace::off()) else {
        panic!()
    };
    assert!(
        reason.contains("process \"motor\" is not active since"),
        "{reason}"
    );

    let rules = RuleSet::new(&config(
        r#"
[[department]]
id = "d"
[[contract]]
id = "c"
active_from = "2030-01-01T00:00:00Z"
[[process]]
id = "p"
department = "d"
contract = "c"
"#,
    ))
    .unwrap();
    let t = task("x", serde_json::json!({"processId": "p"}), t0);
    let Decision::Reject(reason) = rules.classify(&t, t0, &mut Trace::off()) else {
        panic!()
    };
    assert!(
        reason.contains("contract \"c\" is not active before"),
        "{reason}"
    );
    let t = apply(&t, Decision::Reject(reason), t0);
    assert_eq!(t.status, Status::Rejected);
}

#[test]
fn reprioritization_raises_priority_up_to_the_cap() {
    let rules = back_office();
    let mut now = ts(MONDAY);
    let t = task(
        "fax",
        serde_json::json!({"channel": "Fax", "data": {"claimType": "motor", "amount": "100"}}),
        now,
    );
    let mut t = apply(&t, rules.classify(&t, now, &mut Trace::off()), now);
    t = apply(&t, rules.prioritize(&t, now, &mut Trace::off()), now);
    assert_eq!(t.priority, 100);
    let mut seen = vec![t.priority];
    // A simulated week at the scheduler's pace: each reprioritization when it comes due.
    let end = now + SignedDuration::from_hours(24 * 7);
    while let Some(next) = t.reprioritize_date_time.filter(|n| *n <= end) {
        assert!(next > now, "the next time is after the last");
        now = next;
        let Some(d) = rules.next_step(&t, now, &mut Trace::off()) else {
            panic!("due")
        };
        assert!(matches!(d, Decision::Reprioritize(_)));
        t = apply(&t, d, now);
        seen.push(t.priority);
    }
    assert_eq!(seen[1], 110);
    assert_eq!(*seen.last().unwrap(), 500, "capped by max_priority");
    assert_eq!(seen.len(), 4 * 24 * 7 + 1);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn business_reprioritization_follows_open_hours() {
    let rules = back_office();
    // Friday 16:30: one business hour later is Monday 09:30 (Friday closes at 17:00).
    let now = ts("2026-12-04T16:30:00Z");
    let t = task(
        "web",
        serde_json::json!({"data": {"claimType": "home"}}),
        now,
    );
    let t = apply(&t, rules.classify(&t, now, &mut Trace::off()), now);
    assert_eq!(t.process_id.as_deref(), Some("home"));
    let t = apply(&t, rules.prioritize(&t, now, &mut Trace::off()), now);
    assert_eq!(t.reprioritize_date_time, Some(ts("2026-12-07T09:30:00Z")));
    // 8 business hours: 30 min on Friday, then 7.5 h on Monday.
    assert_eq!(t.due_date_time, Some(ts("2026-12-07T16:30:00Z")));
    assert!(
        rules.next_step(&t, now, &mut Trace::off()).is_none(),
        "not due yet"
    );
    let at = ts("2026-12-07T09:30:00Z");
    let t = apply(&t, rules.next_step(&t, at, &mut Trace::off()).unwrap(), at);
    assert_eq!(t.priority, 55, "still more than 2 business hours to go");
    let at = ts("2026-12-07T15:00:00Z");
    let t = apply(&t, rules.reprioritize(&t, at, &mut Trace::off()), at);
    assert_eq!(t.priority, 155, "due within 2 business hours");
}

#[test]
fn a_due_expression_gives_the_due_date_and_a_given_due_date_is_kept() {
    let rules = back_office();
    let now = ts(MONDAY);
    let t = task(
        "mail",
        serde_json::json!({"category": "Invoice", "data": {"payBy": "2026-12-15T00:00:00Z"}}),
        now,
    );
    let t = apply(&t, rules.classify(&t, now, &mut Trace::off()), now);
    let q = apply(&t, rules.prioritize(&t, now, &mut Trace::off()), now);
    assert_eq!(q.due_date_time, Some(ts("2026-12-15T00:00:00Z")));
    assert_eq!(
        q.reprioritize_date_time, None,
        "invoice is never reprioritized"
    );

    let mut given = t.clone();
    given.due_date_time = Some(ts("2026-12-01T00:00:00Z"));
    let q = apply(
        &given,
        rules.prioritize(&given, now, &mut Trace::off()),
        now,
    );
    assert_eq!(q.due_date_time, Some(ts("2026-12-01T00:00:00Z")));
}

#[test]
fn configuration_errors_name_their_keys() {
    let err = RuleSet::new(&config(
        r#"
[[department]]
id = "d"
calendar = "nowhere"
[[process]]
id = "p"
department = "missing"
priority = "1 +"
due = "3 business weeks"
reprioritize_every = "soon"
[[rule]]
id = "r"
phase = "classification"
scope = "queue:x"
when = "unknownVar == 1"
set = { status = "Queued" }
compute = { priority = "(((((((((((((((((((((((((1)))))))))))))))))))))))))" }
"#,
    ))
    .unwrap_err();
    let all = err.to_string();
    for expected in [
        "department[d].calendar: no calendar \"nowhere\"",
        "process[p].department: no department \"missing\"",
        "process[p].priority:",
        "process[p].due:",
        "process[p].reprioritize_every:",
        "rule[r].scope:",
        "rule[r].when: unknown variable \"unknownVar\"",
        "rule[r].set: \"status\" is not an attribute rules may set",
        "rule[r].compute.priority: the expression nests brackets more than",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in {all}");
    }
}

#[test]
fn a_condition_that_is_not_a_bool_is_an_error() {
    let rules = one_rule("priority", "");
    let now = ts(MONDAY);
    let t = task("x", serde_json::json!({}), now);
    let Decision::ErrorHold(e) = rules.classify(&t, now, &mut Trace::off()) else {
        panic!()
    };
    assert!(
        e.contains("rule \"r\" failed: when gave a value of type int where a bool is needed"),
        "{e}"
    );
}

#[test]
fn without_rules_processing_keeps_the_task_as_given() {
    let rules = RuleSet::default();
    let now = ts(MONDAY);
    let t = task("x", serde_json::json!({"priority": 7}), now);
    assert_eq!(
        rules.classify(&t, now, &mut Trace::off()),
        Decision::Classify(Default::default())
    );
    let t = apply(&t, rules.classify(&t, now, &mut Trace::off()), now);
    let t = apply(&t, rules.prioritize(&t, now, &mut Trace::off()), now);
    assert_eq!((t.status, t.priority), (Status::Queued, 7));
}

#[test]
fn explain_shows_each_phase_the_outcome_and_the_curve() {
    let rules = back_office();
    let now = ts(MONDAY);
    let t = task(
        "fax",
        serde_json::json!({"channel": "Fax", "ext": {"customerSegment": "gold"}, "data": {"claimType": "motor", "amount": "100"}}),
        now,
    );
    let e = rules.explain(&t, now, SignedDuration::from_hours(1));
    let phases: Vec<&str> = e.phases.iter().map(|p| p.phase).collect();
    assert_eq!(phases, ["classification", "prioritization"]);
    let fax = &e.phases[0].steps[0];
    assert_eq!(fax.source, "rule:fax-motor");
    assert!(fax.matched);
    assert_eq!(fax.set["processId"], "motor");
    assert!(e.phases[0]
        .steps
        .iter()
        .any(|s| s.source == "rule:claims-segment" && s.matched));
    assert_eq!(e.outcome.status, Status::Queued);
    assert_eq!(e.outcome.queue.as_deref(), Some("motor-claims"));
    assert_eq!(e.outcome.priority, 300, "100, +200 for gold");
    let curve: Vec<i32> = e.curve.iter().map(|p| p.priority).collect();
    assert_eq!(
        curve,
        [310, 320, 330, 340],
        "four reprioritizations in the hour"
    );
    assert_eq!(e.curve[0].at, ts("2026-11-30T10:15:00Z"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the amount, priority rises monotonically and never passes the cap.
        #[test]
        fn reprioritization_never_passes_the_cap(amount in 0u32..1_000_000, steps in 1usize..60) {
            let rules = back_office();
            let mut now = ts(MONDAY);
            let t = task("fax", serde_json::json!({"processId": "motor", "data": {"amount": amount.to_string()}}), now);
            let mut t = apply(&t, rules.classify(&t, now, &mut Trace::off()), now);
            t = apply(&t, rules.prioritize(&t, now, &mut Trace::off()), now);
            let first = t.priority;
            for _ in 0..steps {
                now = t.reprioritize_date_time.unwrap();
                let before = t.priority;
                t = apply(&t, rules.reprioritize(&t, now, &mut Trace::off()), now);
                prop_assert!(t.priority >= before.min(500));
                prop_assert!(t.priority <= first.max(500) + i32::try_from(amount / 100).unwrap());
            }
        }
    }
}
