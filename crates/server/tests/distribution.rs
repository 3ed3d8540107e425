//! Distribution through the real server on both stores, with a test clock: the whole
//! path capture → classify → prioritize → distribute → offer or pull → assign → complete,
//! with skills, capacity, rejection, offer timeout, logout, hold, transfer and workbins.

mod support;

use support::Server;

use serde_json::{json, Value};
use std::time::Duration;
use worklane_engine::TestClock;
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url, wait_until};

const EXAMPLE: &str = include_str!("../../../examples/rules/worklane.toml");

const QUEUES: &str = r#"
[distribution]
point_id = "wl-test"

[[queue]]
id = "motor-claims"
requires = "agent.skills.motor >= 3"
mode = "push"
offer_timeout = "30s"

[[queue]]
id = "home-claims"
mode = "pull"

[[queue]]
id = "invoices"
mode = "both"
"#;

impl Server {
    async fn agent(&self, id: &str, skills: Value, capacity: Value) {
        let (code, a) = self
            .post(
                "/api/v1/agents",
                Some(json!({"id": id, "name": id, "skills": skills, "capacity": capacity})),
            )
            .await;
        assert_eq!(code, 201, "{a}");
        assert_eq!(a["state"], "LoggedOut");
    }

    async fn state(&self, id: &str, state: &str) -> Value {
        let (code, a) = self
            .post(
                &format!("/api/v1/agents/{id}/state"),
                Some(json!({"state": state})),
            )
            .await;
        assert_eq!(code, 200, "{a}");
        a
    }

    /// Waits until task `id` is offered to `agent`; returns the offer id.
    async fn offered(&self, id: i64, agent: &str) -> String {
        wait_until(
            &format!("task {id} offered to {agent}"),
            Duration::from_secs(10),
            async || self.task(id).await.1["offer"]["agent"] == agent,
        )
        .await;
        self.task(id).await.1["offer"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn event_types(&self, id: i64) -> Vec<(String, Value)> {
        let (_, events) = self.get(&format!("/api/v1/tasks/{id}/events")).await;
        events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["eventType"].as_str().unwrap().to_owned(), e.clone()))
            .collect()
    }
}

fn fax_claim(capture_id: &str) -> Value {
    json!({"capturePointId": "fax", "captureId": capture_id, "channel": "Fax",
           "data": {"claimType": "motor", "amount": "5000"}})
}

async fn distribution_through_the_server(store_url: String) {
    let clock = TestClock::new("2026-11-30T10:00:00Z".parse().unwrap());
    let s = Server::start(&store_url, &clock, &format!("{EXAMPLE}\n{QUEUES}")).await;

    s.agent("ann", json!({"motor": 4}), json!({"*": 1})).await;
    s.agent("bob", json!({"motor": 2}), json!({})).await;
    s.agent("cid", json!({"motor": 5}), json!({"Fax": 1, "*": 2}))
        .await;
    let (code, e) = s.post("/api/v1/agents", Some(json!({"id": "ann"}))).await;
    assert_eq!((code, e["code"].as_str()), (409, Some("AGENT_EXISTS")));
    let (code, e) = s
        .post(
            "/api/v1/agents",
            Some(json!({"id": "x", "skills": {"motor": 11}})),
        )
        .await;
    assert_eq!(code, 400, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("skills.motor"),
        "{e}"
    );
    s.state("ann", "Ready").await;
    s.state("bob", "Ready").await;

    // Captured, classified, prioritized, routed into the process's queue, and offered to
    // the one Ready agent whose skills the queue requires.
    let f1 = s.create(fax_claim("F1")).await;
    let offer = s.offered(f1, "ann").await;
    let t = s.task(f1).await.1;
    assert_eq!(t["status"], "Distributed");
    assert_eq!(t["queue"], "motor-claims");
    assert_eq!(t["queueType"], "InteractionQueue");
    assert_eq!(t["distributionPointId"], "wl-test");
    let first_distribution = t["distributionId"].clone();
    let (_, ann) = s.get("/api/v1/agents/ann").await;
    assert_eq!(ann["shownState"], "Busy", "{ann}");
    let (_, offers) = s.get("/api/v1/agents/ann/offers").await;
    assert_eq!(offers[0]["offer"]["id"], offer.as_str());
    assert_eq!(s.get("/api/v1/agents/bob/offers").await.1, json!([]));

    // Rejected: back in the queue, and offered again (ann is the only one who may).
    let (code, t) = s
        .post(&format!("/api/v1/offers/{offer}/reject"), None)
        .await;
    assert_eq!(code, 200, "{t}");
    let offer2 = s.offered(f1, "ann").await;
    assert_ne!(offer, offer2);
    // An answered offer is gone.
    let (code, e) = s
        .post(&format!("/api/v1/offers/{offer}/accept"), None)
        .await;
    assert_eq!((code, e["code"].as_str()), (409, Some("OFFER_NOT_FOUND")));

    // Not answered in time: returned when the clock passes the timeout, offered again.
    clock.advance(Duration::from_secs(31));
    wait_until("offer timed out", Duration::from_secs(10), async || {
        s.event_types(f1)
            .await
            .iter()
            .any(|(t, e)| t == "TaskReturned" && e["reason"] == "offer timed out")
    })
    .await;
    let offer3 = s.offered(f1, "ann").await;
    let (code, t) = s
        .post(&format!("/api/v1/offers/{offer3}/accept"), None)
        .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["status"], "Assigned");
    assert_eq!(t["assignedToUser"], "ann");
    let types: Vec<String> = s
        .event_types(f1)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for expected in [
        "TaskCreated",
        "TaskCaptured",
        "TaskQueued",
        "TaskRouteRequested",
        "TaskDistributed",
        "TaskDistributedQueue",
        "TaskOffered",
        "TaskReturned",
        "TaskAssigned",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} missing from {types:?}"
        );
    }
    let (code, t) = s
        .post(
            &format!("/api/v1/tasks/{f1}/complete"),
            Some(json!({"resultCode": "PAID"})),
        )
        .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["status"], "Completed");
    assert_eq!(t["ext"]["resultCode"], "PAID");

    // Pull: the home queue's best task goes to the agent who asks; then there is none.
    let h1 = s
        .create(json!({"capturePointId": "web", "captureId": "H1",
                       "data": {"claimType": "home"}}))
        .await;
    s.wait_status(h1, "Distributed").await;
    let (code, t) = s.post("/api/v1/agents/bob/next", None).await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        (t["brokerId"].as_i64(), t["status"].as_str()),
        (Some(h1), Some("Assigned"))
    );
    assert_eq!(t["assignedToUser"], "bob");
    // bob's capacity (one task) is full.
    let (code, e) = s.post("/api/v1/agents/bob/next", None).await;
    assert_eq!(
        (code, e["code"].as_str()),
        (409, Some("AGENT_NOT_AVAILABLE"))
    );
    s.post(&format!("/api/v1/tasks/{h1}/complete"), None).await;
    let (code, _) = s.post("/api/v1/agents/bob/next", None).await;
    assert_eq!(code, 204);
    let (code, e) = s.post("/api/v1/agents/nobody/next", None).await;
    assert_eq!((code, e["code"].as_str()), (404, Some("AGENT_NOT_FOUND")));

    // Logging out returns the agent's offers.
    let f2 = s.create(fax_claim("F2")).await;
    s.offered(f2, "ann").await;
    s.state("ann", "LoggedOut").await;
    let t = s.task(f2).await.1;
    assert!(t.get("offer").is_none(), "{t}");
    assert!(s
        .event_types(f2)
        .await
        .iter()
        .any(|(t, e)| t == "TaskReturned"
            && e["reason"] == "agent logged out"
            && e["agent"] == "ann"));

    // Hold revokes the offer first; resume distributes again with a new distributionId.
    s.state("cid", "Ready").await;
    s.offered(f2, "cid").await;
    let (code, t) = s.post(&format!("/api/v1/tasks/{f2}/hold"), None).await;
    assert_eq!(code, 200, "{t}");
    assert!(t.get("offer").is_none() && t["queue"].is_null(), "{t}");
    let (_, held) = s.event_types(f2).await.pop().unwrap();
    assert_eq!(
        (held["eventType"].as_str(), held["agent"].as_str()),
        (Some("TaskHeld"), Some("cid"))
    );
    s.post(&format!("/api/v1/tasks/{f2}/resume"), None).await;
    let offer = s.offered(f2, "cid").await;
    let t = s.task(f2).await.1;
    assert_ne!(t["distributionId"], first_distribution);
    s.post(&format!("/api/v1/offers/{offer}/accept"), None)
        .await;

    // Transfer to a queue, pulled from there; to an agent; into a workbin.
    let (code, t) = s
        .post(
            &format!("/api/v1/tasks/{f2}/transfer"),
            Some(json!({"queue": "home-claims"})),
        )
        .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        (t["status"].as_str(), t["queue"].as_str()),
        (Some("Distributed"), Some("home-claims"))
    );
    assert!(t["assignedToUser"].is_null(), "{t}");
    let (code, t) = s.post("/api/v1/agents/bob/next", None).await;
    assert_eq!((code, t["brokerId"].as_i64()), (200, Some(f2)), "{t}");
    let (code, t) = s
        .post(
            &format!("/api/v1/tasks/{f2}/transfer"),
            Some(json!({"agent": "cid"})),
        )
        .await;
    assert_eq!(
        (code, t["assignedToUser"].as_str()),
        (200, Some("cid")),
        "{t}"
    );
    let (code, e) = s
        .post(
            &format!("/api/v1/tasks/{f2}/transfer"),
            Some(json!({"queue": "nowhere"})),
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (422, Some("QUEUE_NOT_FOUND")),
        "{e}"
    );
    let (code, e) = s
        .post(
            &format!("/api/v1/tasks/{f2}/transfer"),
            Some(json!({"agent": "nobody"})),
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (422, Some("AGENT_NOT_FOUND")),
        "{e}"
    );
    let (code, e) = s
        .post(
            &format!("/api/v1/tasks/{f2}/transfer"),
            Some(json!({"queue": "home-claims", "agent": "cid"})),
        )
        .await;
    assert_eq!(code, 400, "{e}");
    let (code, t) = s
        .post(
            &format!("/api/v1/tasks/{f2}/workbin"),
            Some(json!({"queueType": "AgentWorkbin", "queueTarget": "ann"})),
        )
        .await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        (t["queueType"].as_str(), t["queueTarget"].as_str()),
        (Some("AgentWorkbin"), Some("ann"))
    );
    assert_eq!(t["status"], "Distributed");
    // A task in a workbin is neither offered nor pulled from a queue.
    let (code, _) = s.post("/api/v1/agents/cid/next", None).await;
    assert_eq!(code, 204);
    s.stop().await;
}

#[tokio::test]
async fn sqlite_distribution_through_the_server() {
    distribution_through_the_server(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_distribution_through_the_server() {
    distribution_through_the_server(fresh_postgres_url().await.unwrap()).await;
}

/// Reads an SSE response until `want` appears in its text; returns everything read.
async fn read_until(resp: &mut reqwest::Response, want: &str) -> String {
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(want) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "{want:?} not seen in {text}");
    text
}

async fn agent_channel(store_url: String) {
    let clock = TestClock::new("2026-11-30T10:00:00Z".parse().unwrap());
    let s = Server::start(&store_url, &clock, &format!("{EXAMPLE}\n{QUEUES}")).await;
    s.agent("ann", json!({"motor": 4}), json!({})).await;
    s.state("ann", "Ready").await;
    let mut stream = s
        .http
        .get(format!("{}/api/v1/agents/ann/stream", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let f1 = s.create(fax_claim("S1")).await;
    let offer = s.offered(f1, "ann").await;
    let text = read_until(&mut stream, "event: TaskOffered").await;
    assert!(text.contains(&offer), "{text}");
    // The event's id is its seq: resuming after it sees what followed, and only that.
    let seq: i64 = text
        .split("\n\n")
        .find(|block| block.contains("event: TaskOffered"))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("id:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(stream);
    s.post(&format!("/api/v1/offers/{offer}/accept"), None)
        .await;
    let mut resumed = s
        .http
        .get(format!("{}/api/v1/agents/ann/stream", s.base))
        .header("Last-Event-ID", seq.to_string())
        .send()
        .await
        .unwrap();
    let text = read_until(&mut resumed, "event: TaskAssigned").await;
    assert!(!text.contains("event: TaskOffered"), "{text}");
    s.post(&format!("/api/v1/tasks/{f1}/complete"), None).await;
    read_until(&mut resumed, "event: TaskCompleted").await;

    // A dropped channel: past the grace period on the clock, the agent's offers go back
    // and it is NotReady ("disconnected").
    let f2 = s.create(fax_claim("S2")).await;
    s.offered(f2, "ann").await;
    drop(resumed);
    wait_until("disconnected", Duration::from_secs(10), async || {
        clock.advance(Duration::from_secs(31));
        s.get("/api/v1/agents/ann").await.1["reason"] == "disconnected"
    })
    .await;
    let (_, ann) = s.get("/api/v1/agents/ann").await;
    assert_eq!(ann["state"], "NotReady", "{ann}");
    let t = s.task(f2).await.1;
    assert!(t.get("offer").is_none(), "{t}");
    s.stop().await;
}

#[tokio::test]
async fn sqlite_agent_channel() {
    agent_channel(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_agent_channel() {
    agent_channel(fresh_postgres_url().await.unwrap()).await;
}

/// Room for several tasks is filled without waiting for further passes; an agent no push
/// queue admitted is offered work once an update makes it eligible; pulls that arrive
/// together (one group commit) each get a task of their own.
async fn room_rounds_and_pulls_together(store_url: String) {
    let clock = TestClock::new("2026-11-30T10:00:00Z".parse().unwrap());
    let s = Server::start(&store_url, &clock, &format!("{EXAMPLE}\n{QUEUES}")).await;
    s.agent("dee", json!({"motor": 5}), json!({"*": 3})).await;
    s.agent("eve", json!({"motor": 1}), json!({"*": 1})).await;
    s.state("eve", "Ready").await;
    s.state("dee", "Ready").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(s.create(fax_claim(&format!("R{i}"))).await);
    }
    let held = async || {
        let (_, offers) = s.get("/api/v1/agents/dee/offers").await;
        offers.as_array().unwrap().len()
    };
    wait_until(
        "dee holds three offers",
        Duration::from_secs(10),
        async || held().await == 3,
    )
    .await;
    // dee is full; eve (motor 1) may not take motor claims: one task waits unoffered.
    let waiting: Vec<i64> = {
        let mut w = Vec::new();
        for &id in &ids {
            if s.task(id).await.1.get("offer").is_none() {
                w.push(id);
            }
        }
        w
    };
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(held().await, 3);
    // eve's skills change (a new agent version): now a push queue admits her.
    let (code, a) = s
        .call(
            reqwest::Method::PATCH,
            "/api/v1/agents/eve",
            Some(json!({"skills": {"motor": 3}})),
        )
        .await;
    assert_eq!(code, 200, "{a}");
    s.offered(waiting[0], "eve").await;

    // Five pulls at once by five agents over five waiting tasks: five different tasks.
    let mut homes = Vec::new();
    for i in 0..5 {
        let id = s
            .create(
                json!({"capturePointId": "web", "captureId": format!("P{i}"),
                           "data": {"claimType": "home"}}),
            )
            .await;
        s.wait_status(id, "Distributed").await;
        homes.push(id);
        let agent = format!("puller{i}");
        s.agent(&agent, json!({}), json!({"*": 1})).await;
        s.state(&agent, "Ready").await;
    }
    let pulls = (0..5).map(|i| {
        let s = &s;
        async move {
            s.post(&format!("/api/v1/agents/puller{i}/next"), None)
                .await
        }
    });
    let mut got: Vec<i64> = futures::future::join_all(pulls)
        .await
        .into_iter()
        .map(|(code, t)| {
            assert_eq!(code, 200, "{t}");
            assert_eq!(t["status"], "Assigned", "{t}");
            t["brokerId"].as_i64().unwrap()
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, homes);
    s.stop().await;
}

#[tokio::test]
async fn sqlite_room_rounds_and_pulls_together() {
    room_rounds_and_pulls_together(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_room_rounds_and_pulls_together() {
    room_rounds_and_pulls_together(fresh_postgres_url().await.unwrap()).await;
}
