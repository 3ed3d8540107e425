//! Two server processes on one PostgreSQL store: a notification target configured on both
//! runs on one; killing that node with SIGKILL hands it to the other, and every
//! notification still arrives, with the same GUID when it is sent twice.

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worklane_store::testing::{fresh_postgres_url, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_worklane");

/// (captureId, ETag) of every POST the receiver got.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: String) -> &'static str {
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        let cid = v["captureId"].as_str().unwrap_or_default().to_owned();
        let etag = headers
            .get("etag")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.lock().unwrap().push((cid, etag));
        "ok"
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(config: &std::path::Path, store: &str, name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--store", store])
            .env("WORKLANE_SERVER__NODE_ID", name)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn target_state(&self) -> String {
        let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await else {
            return String::new();
        };
        let v: Value = r.json().await.unwrap_or_default();
        v["components"]["notify:crm"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn create(&self, http: &reqwest::Client, cid: &str) {
        let r = http
            .post(format!("{}/api/v1/tasks", self.base))
            .json(&json!({"captureId": cid}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_notification_target_fails_over_when_its_node_is_killed() {
    let store = fresh_postgres_url().await.unwrap();
    let (hook, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worklane.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [server]
            lease_ttl = "3s"
            [[notification_target]]
            id = "crm"
            uri = "{hook}"
            start_at = "beginning"
            [notification_target.filter]
            event_types = ["TaskCreated"]
            "#
        ),
    )
    .unwrap();
    let a = Node::start(&config, &store, "node-a");
    let b = Node::start(&config, &store, "node-b");
    wait_until(
        "one node runs the target, the other stands by",
        Duration::from_secs(60),
        async || {
            let (sa, sb) = (a.target_state().await, b.target_state().await);
            matches!(
                (sa.as_str(), sb.as_str()),
                ("running", "standby") | ("standby", "running")
            )
        },
    )
    .await;
    let (mut holder, survivor) = if a.target_state().await == "running" {
        (a, b)
    } else {
        (b, a)
    };

    let http = reqwest::Client::new();
    for i in 0..40 {
        survivor.create(&http, &format!("before-{i}")).await;
    }
    wait_until(
        "the holder delivered some",
        Duration::from_secs(30),
        async || seen.lock().unwrap().len() >= 10,
    )
    .await;
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    for i in 0..40 {
        survivor.create(&http, &format!("after-{i}")).await;
    }
    wait_until(
        "every notification delivered",
        Duration::from_secs(60),
        async || {
            let got: HashSet<String> = seen
                .lock()
                .unwrap()
                .iter()
                .map(|(c, _)| c.clone())
                .collect();
            got.len() == 80
        },
    )
    .await;
    assert_eq!(survivor.target_state().await, "running");
    // A notification sent twice (in flight when its node died) kept its GUID, so the
    // receiver sees one notification per task.
    let seen = seen.lock().unwrap().clone();
    let mut guid_of: HashMap<String, String> = HashMap::new();
    for (cid, etag) in &seen {
        assert!(!etag.is_empty(), "every POST carries its GUID");
        let first = guid_of.entry(cid.clone()).or_insert_with(|| etag.clone());
        assert_eq!(first, etag, "{cid} came twice with different GUIDs");
    }
    assert_eq!(guid_of.len(), 80);
    drop(survivor);
}
