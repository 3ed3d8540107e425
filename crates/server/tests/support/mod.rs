//! The harness of the whole-server tests: a server run in-process on port 0 from a
//! configuration file, with a test clock, and a small REST client that authenticates with
//! the admin token the server's first start wrote.

#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_engine::TestClock;
use worklane_server::{run_with, Config, RunOptions};
use worklane_store::testing::wait_until;

/// The configuration file: the store, processing woken only by commits and the clock,
/// the admin token's file, then `rest` (rules, queues...). When `rest` has an `[auth]`
/// table, the token's file goes into it.
pub fn file_text(store_url: &str, rest: &str) -> String {
    let token = format!(
        "bootstrap_token_file = \"{}\"\n",
        token_file(store_url).display()
    );
    let rest = match rest.find("[auth]\n") {
        Some(at) => format!("{}[auth]\n{token}{}", &rest[..at], &rest[at + 7..]),
        None => format!("[auth]\n{token}{rest}"),
    };
    format!("[store]\nurl = \"{store_url}\"\n[processing]\npoll_interval = \"1h\"\n{rest}")
}

/// Where the first start writes the admin token of the store at `store_url`: one file
/// per store, so nodes sharing a store find the token whichever of them made it.
pub fn token_file(store_url: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    store_url.hash(&mut h);
    std::env::temp_dir().join(format!("wl-admin-{:016x}.token", h.finish()))
}

/// A client that sends `token` as its bearer token.
pub fn client(token: &str) -> reqwest::Client {
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    auth.set_sensitive(true);
    let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, auth)]);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

pub struct Server {
    pub base: String,
    /// Sends the admin token.
    pub http: reqwest::Client,
    /// The admin token.
    pub token: String,
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The configuration file (what a reload reads again).
    pub file: std::path::PathBuf,
}

impl Server {
    pub async fn start(store_url: &str, clock: &TestClock, rest: &str) -> Self {
        Self::start_node(store_url, clock, "solo", rest).await
    }

    /// One of several nodes sharing the store at `store_url`.
    pub async fn start_node(store_url: &str, clock: &TestClock, node: &str, rest: &str) -> Self {
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
            node_id: Some(node.into()),
        };
        let done = tokio::spawn(run_with(cfg, listener, shutdown.clone(), options));
        // The first start writes the token before it serves; a later one finds it there.
        let token_file = token_file(store_url);
        wait_until(
            "the admin token file",
            Duration::from_secs(10),
            async || token_file.exists(),
        )
        .await;
        let token = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_owned();
        Self {
            base,
            http: client(&token),
            token,
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
        self.call_with(&self.http, method, path, body).await
    }

    /// [`Server::call`] with another client (another token, or none).
    pub async fn call_with(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = http.request(method, format!("{}{path}", self.base));
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
