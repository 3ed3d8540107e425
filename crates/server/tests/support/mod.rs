//! The harness of the whole-server tests: a server run in-process on port 0 from a
//! configuration file, with a test clock, and a small REST client.

#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_engine::TestClock;
use worklane_server::{run_with, Config, RunOptions};
use worklane_store::testing::wait_until;

/// The configuration file: the store, processing woken only by commits and the clock,
/// then `rest` (rules, queues...).
pub fn file_text(store_url: &str, rest: &str) -> String {
    format!("[store]\nurl = \"{store_url}\"\n[processing]\npoll_interval = \"1h\"\n{rest}")
}

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The configuration file (what a reload reads again).
    pub file: std::path::PathBuf,
}

impl Server {
    pub async fn start(store_url: &str, clock: &TestClock, rest: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wl-server-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("worklane.toml");
        std::fs::write(&file, file_text(store_url, rest)).unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let options = RunOptions {
            clock: clock.shared(),
            node_id: Some("solo".into()),
        };
        let done = tokio::spawn(run_with(cfg, listener, shutdown.clone(), options));
        Self {
            base,
            http: reqwest::Client::new(),
            shutdown,
            done,
            file,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, body).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn task(&self, id: i64) -> (u16, Value) {
        self.get(&format!("/api/v1/tasks/{id}")).await
    }

    pub async fn create(&self, body: Value) -> i64 {
        let (code, t) = self.post("/api/v1/tasks", Some(body)).await;
        assert_eq!(code, 201, "{t}");
        t["brokerId"].as_i64().unwrap()
    }

    pub async fn wait_status(&self, id: i64, status: &str) -> Value {
        wait_until(
            &format!("task {id} {status}"),
            Duration::from_secs(10),
            async || self.task(id).await.1["status"] == status,
        )
        .await;
        self.task(id).await.1
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.done.await.unwrap().unwrap();
    }
}
