//! A whole server in-process on port 0, with a test clock: what the binary runs, without
//! starting the executable.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_engine::{Clock, TestClock};
use worklane_server::{run_with, Config, RunOptions};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url, wait_until};

struct Server {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(store_url: &str, clock: &TestClock) -> Self {
        let cfg = Config::from_toml(&format!(
            r#"
            [store]
            url = "{store_url}"
            [processing]
            poll_interval = "1h"
            [[notification_target]]
            id = "crm"
            uri = "http://127.0.0.1:9/never-called"
            start_at = "now"
            "#
        ))
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let options = RunOptions {
            clock: clock.shared(),
        };
        let done = tokio::spawn(run_with(cfg, listener, shutdown.clone(), options));
        Self {
            base,
            http: reqwest::Client::new(),
            shutdown,
            done,
        }
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn status_of(&self, id: i64) -> String {
        let (_, t) = self.get(&format!("/api/v1/tasks/{id}")).await;
        t["status"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.done.await.unwrap().unwrap();
    }
}

/// Activation is a decision on the injected clock: a task waits as New until the test
/// moves the clock past its activationDateTime, then processing queues it at once (the
/// poll interval is an hour, so only the clock can have woken it).
async fn activation_follows_the_test_clock(store_url: String) {
    let clock = TestClock::at_default();
    let server = Server::start(&store_url, &clock).await;
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
        async || server.status_of(now_id).await == "Queued",
    )
    .await;
    assert_eq!(server.status_of(id).await, "New", "not active yet");

    clock.advance(Duration::from_secs(29 * 60));
    // Nothing may move a minute early; the processor has had its wake-up from the clock.
    tokio::task::yield_now().await;
    assert_eq!(server.status_of(id).await, "New");
    clock.advance(Duration::from_secs(60));
    wait_until(
        "activated task queued",
        Duration::from_secs(10),
        async || server.status_of(id).await == "Queued",
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
