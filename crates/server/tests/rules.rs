//! Business rules through the real server on both stores, with a test clock: the example
//! back office classifies and prioritizes, reprioritizes as the clock moves, explains,
//! reloads (a bad file is refused and the rules in force stay), previews a change, and
//! archives finished tasks.

mod support;

use support::{file_text, Server};

use serde_json::{json, Value};
use std::time::Duration;
use worklane_engine::{Clock, TestClock};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url, wait_until};

const EXAMPLE: &str = include_str!("../../../examples/rules/worklane.toml");

fn fax_claim(capture_id: &str, amount: &str) -> Value {
    json!({"capturePointId": "fax", "captureId": capture_id, "channel": "Fax",
           "data": {"claimType": "motor", "amount": amount}})
}

async fn rules_through_the_server(store_url: String) {
    // Monday 2026-11-30 10:00 London.
    let clock = TestClock::new("2026-11-30T10:00:00Z".parse().unwrap());
    let s = Server::start(&store_url, &clock, EXAMPLE).await;

    // Classification and prioritization by the example's rules.
    let id = s.create(fax_claim("F1", "25000")).await;
    let t = s.wait_status(id, "Queued").await;
    assert_eq!(t["processId"], "motor");
    assert_eq!(t["departmentId"], "claims");
    assert_eq!(t["tenantId"], "acme");
    assert_eq!(t["contractId"], "motor-2026");
    assert_eq!(t["businessCalendarId"], "uk");
    assert_eq!(t["category"], "NewClaim");
    assert_eq!(t["businessValue"], 250);
    assert_eq!(t["priority"], 350);
    assert_eq!(t["dueDateTime"], "2026-12-03T17:30:00Z");
    assert_eq!(t["reprioritizeDateTime"], "2026-11-30T10:15:00Z");

    // No process: ErrorHeld with the reason.
    let lost = s
        .create(json!({"captureId": "E1", "channel": "Email"}))
        .await;
    let t = s.wait_status(lost, "ErrorHeld").await;
    assert!(t["error"].as_str().unwrap().contains("no process"), "{t}");

    // Reprioritization when the clock reaches it, recorded as TaskUpdated by `rules`.
    clock.advance(Duration::from_secs(15 * 60));
    wait_until("reprioritized", Duration::from_secs(10), async || {
        s.task(id).await.1["priority"] == 360
    })
    .await;
    let t = s.task(id).await.1;
    assert_eq!(t["reprioritizeDateTime"], "2026-11-30T10:30:00Z");
    let (_, events) = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/tasks/{id}/events"),
            None,
        )
        .await;
    let events = events
        .as_array()
        .cloned()
        .unwrap_or_else(|| events["events"].as_array().cloned().unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["eventType"], "TaskUpdated", "{last}");
    assert_eq!(last["origin"], "rules");
    let updates = events
        .iter()
        .filter(|e| e["eventType"] == "TaskUpdated")
        .count();
    assert_eq!(updates, 1, "reprioritized once for its due time");

    // Explain: a task in the body, and a stored task with its curve.
    let (code, e) = s
        .post("/api/v1/rules/explain", Some(json!({"channel": "Fax", "ext": {"customerSegment": "gold"}, "data": {"claimType": "motor", "amount": "100"}})))
        .await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["phases"][0]["phase"], "classification");
    assert_eq!(e["phases"][0]["steps"][0]["source"], "rule:fax-motor");
    assert_eq!(e["outcome"]["status"], "Queued");
    assert_eq!(e["outcome"]["queue"], "motor-claims");
    assert_eq!(e["outcome"]["priority"], 300);
    let (code, e) = s
        .post(
            &format!("/api/v1/rules/explain?brokerId={id}&hours=1"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{e}");
    let curve: Vec<i64> = e["curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(curve, [370, 380, 390, 400]);
    let (code, e) = s.post("/api/v1/rules/explain", None).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["outcome"]["status"], "ErrorHeld", "no process: {e}");
    // A what-if on a stored task: its attributes changed first, nothing stored.
    let (code, e) = s
        .post(
            &format!("/api/v1/rules/explain?brokerId={id}"),
            Some(json!({"priority": 490})),
        )
        .await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["curve"][0]["priority"], 500, "capped: {e}");
    assert_eq!(s.task(id).await.1["priority"], 360, "nothing stored");
    // A diff needs a configuration, and refuses one that is not TOML.
    let (code, e) = s.post("/api/v1/rules/diff", None).await;
    assert_eq!(
        (code, e["code"].as_str()),
        (400, Some("INVALID_FORMAT")),
        "{e}"
    );
    let r = s
        .http
        .post(format!("{}/api/v1/rules/diff", s.base))
        .body("[[process]\nid =")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // Diff: a new queue for motor claims, previewed on the live tasks, nothing applied.
    let changed = EXAMPLE.replace("queue = \"motor-claims\"", "queue = \"motor-fast\"");
    let r = s
        .http
        .post(format!("{}/api/v1/rules/diff", s.base))
        .header("content-type", "application/toml")
        .body(changed.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["compared"], 2, "{d}");
    assert_eq!(d["queue"], 1, "{d}");
    assert_eq!(d["process"], 0, "{d}");
    assert_eq!(d["examples"][0]["brokerId"], id);
    assert_eq!(d["examples"][0]["new"], "motor-fast");

    // Reload: a bad file is refused with its problems and the rules in force stay.
    std::fs::write(
        &s.file,
        file_text(
            &store_url,
            &EXAMPLE.replace("priority = \"100\"", "priority = \"100 +\""),
        ),
    )
    .unwrap();
    let (code, e) = s.post("/api/v1/rules/reload", None).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["code"], "RULES_INVALID");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("the rules in force stay"));
    assert!(
        e["parameters"]
            .to_string()
            .contains("process[motor].priority"),
        "{e}"
    );
    let kept = s.create(fax_claim("F2", "100")).await;
    assert_eq!(s.wait_status(kept, "Queued").await["priority"], 100);
    // A good file is put in force.
    std::fs::write(
        &s.file,
        file_text(
            &store_url,
            &EXAMPLE.replace("priority = \"100\"", "priority = \"150\""),
        ),
    )
    .unwrap();
    let (code, summary) = s.post("/api/v1/rules/reload", None).await;
    assert_eq!(code, 200, "{summary}");
    assert_eq!(
        summary,
        json!({"departments": 2, "processes": 3, "rules": 6})
    );
    let after = s.create(fax_claim("F3", "100")).await;
    assert_eq!(s.wait_status(after, "Queued").await["priority"], 150);

    // Archiving: a finished task expires 30 days later (archive_after) and leaves the
    // live table with TaskStopped; its events stay in the log.
    let (code, done) = s
        .post(&format!("/api/v1/tasks/{after}/complete"), None)
        .await;
    assert_eq!(code, 200, "{done}");
    let exp: jiff::Timestamp = done["expirationDateTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(exp, clock.now() + jiff::SignedDuration::from_hours(24 * 30));
    clock.advance(Duration::from_secs(30 * 24 * 3600));
    wait_until("archived", Duration::from_secs(10), async || {
        s.task(after).await.0 == 404
    })
    .await;
    let (_, events) = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/tasks/{after}/events"),
            None,
        )
        .await;
    assert!(events.to_string().contains("TaskStopped"), "{events}");
    s.stop().await;
}

#[tokio::test]
async fn sqlite_rules_through_the_server() {
    rules_through_the_server(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_rules_through_the_server() {
    rules_through_the_server(fresh_postgres_url().await.unwrap()).await;
}
