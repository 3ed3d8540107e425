//! A whole server in-process on port 0, with a test clock: what the binary runs, without
//! starting the executable.

mod support;

use std::time::Duration;
use support::Server;
use worklane_engine::{Clock, TestClock};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url, wait_until};

const TARGET: &str = r#"
[[notification_target]]
id = "crm"
uri = "http://127.0.0.1:9/never-called"
start_at = "now"
"#;

async fn status_of(server: &Server, id: i64) -> String {
    let (_, t) = server.task(id).await;
    t["status"].as_str().unwrap().to_owned()
}

/// Activation is a decision on the injected clock: a task waits as New until the test
/// moves the clock past its activationDateTime, then processing queues it at once (the
/// poll interval is an hour, so only the clock can have woken it).
async fn activation_follows_the_test_clock(store_url: String) {
    let clock = TestClock::at_default();
    let server = Server::start(&store_url, &clock, TARGET).await;
    let activation = clock.now() + jiff::SignedDuration::from_mins(30);
    let r = server
        .http
        .post(format!("{}/api/v1/tasks", server.base))
        .json(&serde_json::json!({"captureId": "later", "activationDateTime": activation.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let id = created["brokerId"].as_i64().unwrap();
    assert_eq!(
        created["createdDateTime"],
        clock.now().to_string(),
        "created at the clock's time"
    );
    let now_task = server
        .http
        .post(format!("{}/api/v1/tasks", server.base))
        .json(&serde_json::json!({"captureId": "now"}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let now_id = now_task["brokerId"].as_i64().unwrap();
    wait_until(
        "the active task queued",
        Duration::from_secs(10),
        async || status_of(&server, now_id).await == "Queued",
    )
    .await;
    assert_eq!(status_of(&server, id).await, "New", "not active yet");

    clock.advance(Duration::from_secs(29 * 60));
    // Nothing may move a minute early; the processor has had its wake-up from the clock.
    tokio::task::yield_now().await;
    assert_eq!(status_of(&server, id).await, "New");
    clock.advance(Duration::from_secs(60));
    wait_until(
        "activated task queued",
        Duration::from_secs(10),
        async || status_of(&server, id).await == "Queued",
    )
    .await;

    // Health names every part the supervisor runs.
    let (code, health) = server.get("/healthz").await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["components"]["processing"]["state"], "running");
    assert_eq!(health["components"]["notify:crm"]["state"], "running");
    assert_eq!(health["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn sqlite_activation_follows_the_test_clock() {
    activation_follows_the_test_clock(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_activation_follows_the_test_clock() {
    activation_follows_the_test_clock(fresh_postgres_url().await.unwrap()).await;
}

/// The state `/healthz` shows for a component.
async fn state_of(server: &Server, component: &str) -> String {
    let (_, h) = server.get("/healthz").await;
    h["components"][component]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Two nodes on one PostgreSQL with the same notification target: it runs on one node,
/// the other stands by; a clean stop hands it over at once; a holder that stops renewing
/// (here: the lease taken by a node that then vanishes) is taken over once its lease has
/// expired on the clock, never before.
#[tokio::test]
async fn a_notification_target_runs_on_one_node_and_fails_over() {
    let url = fresh_postgres_url().await.unwrap();
    let clock = TestClock::at_default();
    let a = Server::start_node(&url, &clock, "node-a", TARGET).await;
    let b = Server::start_node(&url, &clock, "node-b", TARGET).await;
    let store = worklane_store::connect(&url).await.unwrap();
    wait_until(
        "one node holds the target",
        Duration::from_secs(10),
        async || {
            let (sa, sb) = (
                state_of(&a, "notify:crm").await,
                state_of(&b, "notify:crm").await,
            );
            matches!(
                (sa.as_str(), sb.as_str()),
                ("running", "standby") | ("standby", "running")
            )
        },
    )
    .await;
    let (holder, _) = store.lease_holder("notify:crm").await.unwrap().unwrap();
    let (running, standby) = if holder == "node-a" { (a, b) } else { (b, a) };
    assert_eq!(state_of(&running, "notify:crm").await, "running");
    // Renewals keep it where it is while the clock moves on. Before each step the test
    // waits until the lease outlives it: the holder's renewal has run, not merely been due.
    for _ in 0..6 {
        let step = Duration::from_secs(4);
        wait_until(
            "the lease outlives the next step",
            Duration::from_secs(10),
            async || {
                let (_, expires) = store.lease_holder("notify:crm").await.unwrap().unwrap();
                expires > clock.now() + step
            },
        )
        .await;
        clock.advance(step);
        tokio::task::yield_now().await;
    }
    assert_eq!(state_of(&standby, "notify:crm").await, "standby");
    assert_eq!(state_of(&running, "notify:crm").await, "running");

    // A clean stop gives the lease up: the other node takes over without the clock moving.
    running.stop().await;
    wait_until(
        "the standby took over",
        Duration::from_secs(10),
        async || state_of(&standby, "notify:crm").await == "running",
    )
    .await;
    let survivor = standby;

    // A node that took the lease and died: the survivor loses it at its next renewal and
    // waits until the dead node's lease has expired on the clock.
    let survivor_name = store.lease_holder("notify:crm").await.unwrap().unwrap().0;
    store
        .release_lease("notify:crm", &survivor_name)
        .await
        .unwrap();
    let now = clock.now();
    let ghost_until = now + jiff::SignedDuration::from_secs(15);
    assert!(store
        .acquire_lease("notify:crm", "ghost", now, ghost_until)
        .await
        .unwrap());
    clock.advance(Duration::from_secs(5));
    wait_until(
        "the survivor stood down",
        Duration::from_secs(10),
        async || state_of(&survivor, "notify:crm").await == "standby",
    )
    .await;
    clock.advance(Duration::from_secs(5));
    tokio::task::yield_now().await;
    assert_eq!(
        state_of(&survivor, "notify:crm").await,
        "standby",
        "the ghost's lease still holds"
    );
    clock.advance(Duration::from_secs(6));
    wait_until(
        "the survivor took over the expired lease",
        Duration::from_secs(10),
        async || state_of(&survivor, "notify:crm").await == "running",
    )
    .await;
    assert_eq!(
        store.lease_holder("notify:crm").await.unwrap().unwrap().0,
        survivor_name
    );
    survivor.stop().await;
    assert!(
        store.lease_holder("notify:crm").await.unwrap().is_none(),
        "released on stop"
    );
}
