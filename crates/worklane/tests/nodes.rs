//! Two server processes on one PostgreSQL store: a notification target or a database
//! capture point configured on both runs on one; killing that node with SIGKILL hands it
//! to the other, and nothing is lost or doubled.

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
            // Failover is the subject here, on a loopback listener; authentication is
            // tested in crates/server/tests/access.rs and by the CLI tests.
            .env("WORKLANE_AUTH__MODE", "off")
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

    /// A component's state on `/healthz` (empty while the node does not answer).
    async fn state_of(&self, component: &str) -> String {
        let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await else {
            return String::new();
        };
        let v: Value = r.json().await.unwrap_or_default();
        v["components"][component]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every task's captureId, all pages.
    async fn capture_ids(&self, http: &reqwest::Client) -> Vec<String> {
        let mut out = vec![];
        let mut after = String::new();
        loop {
            let r = http
                .get(format!("{}/api/v1/tasks?limit=1000{after}", self.base))
                .send()
                .await
                .unwrap();
            let page: Value = r.json().await.unwrap();
            for t in page["tasks"].as_array().unwrap() {
                out.push(t["captureId"].as_str().unwrap().to_owned());
            }
            match page["nextAfter"].as_str() {
                Some(n) => after = format!("&after={n}"),
                None => return out,
            }
        }
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

/// Starts two nodes on `store` with `config` and waits until `component` runs on one and
/// stands by on the other; returns (holder, the other).
async fn start_pair(config: &std::path::Path, store: &str, component: &str) -> (Node, Node) {
    let a = Node::start(config, store, "node-a");
    let b = Node::start(config, store, "node-b");
    wait_until(
        "one node runs the component, the other stands by",
        Duration::from_secs(60),
        async || {
            let (sa, sb) = (a.state_of(component).await, b.state_of(component).await);
            matches!(
                (sa.as_str(), sb.as_str()),
                ("running", "standby") | ("standby", "running")
            )
        },
    )
    .await;
    if a.state_of(component).await == "running" {
        (a, b)
    } else {
        (b, a)
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
    let (mut holder, survivor) = start_pair(&config, &store, "notify:crm").await;

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
    assert_eq!(survivor.state_of("notify:crm").await, "running");
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

/// Rows inserted into the source as `new`, `from..to`.
async fn insert_cases(source: &sqlx::SqlitePool, from: usize, to: usize) {
    for i in from..to {
        sqlx::query("INSERT INTO cases (caseId) VALUES ($1)")
            .bind(format!("case-{i}"))
            .execute(source)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_database_capture_point_fails_over_when_its_node_is_killed() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use std::str::FromStr;
    let store = fresh_postgres_url().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.db");
    let source = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::from_str(&format!("sqlite://{}", source_path.display()))
                .unwrap()
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
        )
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE cases (caseId TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'new', \
         caseTrackingId TEXT)",
    )
    .execute(&source)
    .await
    .unwrap();
    let config = dir.path().join("worklane.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [server]
            lease_ttl = "3s"
            [[capture_point]]
            id = "DB1"
            kind = "database"
            url = "sqlite://{}"
            poll_interval = "100ms"
            batch_size = 10
            check_if_captured = true
            captureQuerySql = "select caseId \"ExternalId\" from cases where status = 'new'"
            capturedUpdateSql = "update cases set status = 'submitted', caseTrackingId = ?'InteractionId' where caseId = ?'ExternalId'"
            "#,
            source_path.display()
        ),
    )
    .unwrap();
    let (mut holder, survivor) = start_pair(&config, &store, "database:DB1").await;
    let http = reqwest::Client::new();
    insert_cases(&source, 0, 50).await;
    wait_until(
        "the holder captured some",
        Duration::from_secs(30),
        async || survivor.capture_ids(&http).await.len() >= 10,
    )
    .await;
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    insert_cases(&source, 50, 80).await;
    wait_until("every row captured", Duration::from_secs(60), async || {
        survivor.capture_ids(&http).await.len() >= 80
    })
    .await;
    assert_eq!(survivor.state_of("database:DB1").await, "running");
    let ids = survivor.capture_ids(&http).await;
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (80, 80),
        "each row captured once"
    );
    // Rows the holder captured but had not marked when it died are marked by the
    // survivor's next polls (their tasks found by check_if_captured), which may come after
    // the last new row is captured.
    let unmarked = async || -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE status <> 'submitted'")
            .fetch_one(&source)
            .await
            .unwrap()
    };
    wait_until("every row marked", Duration::from_secs(30), async || {
        unmarked().await == 0
    })
    .await;
    assert_eq!(unmarked().await, 0, "every row marked captured");
}

/// A reader of the log through one node's `GET /api/v1/events`, paging on from where it
/// stands while writers are still busy (the way a consumer reads): every seq it got, in
/// the order it got them, and each event's (brokerId, task version).
async fn read_log(
    http: reqwest::Client,
    base: String,
    done: Arc<std::sync::atomic::AtomicBool>,
    total: Arc<std::sync::atomic::AtomicI64>,
) -> Vec<(i64, i64, i64)> {
    use std::sync::atomic::Ordering;
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = http
            .get(format!("{base}/api/v1/events?after={after}&limit=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            got.push((
                e["seq"].as_i64().unwrap(),
                e["task"]["brokerId"].as_i64().unwrap(),
                e["task"]["version"].as_i64().unwrap(),
            ));
        }
        after = page["last"].as_i64().unwrap();
        // Once the writers are done, read until the log's end as the store counts it.
        if done.load(Ordering::SeqCst) && got.len() as i64 >= total.load(Ordering::SeqCst) {
            return got;
        }
    }
}

#[tokio::test]
async fn writers_on_two_nodes_side_by_side_and_every_reader_sees_every_event_once_in_order() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let store = fresh_postgres_url().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worklane.toml");
    std::fs::write(&config, "").unwrap();
    let a = Node::start(&config, &store, "node-a");
    let b = Node::start(&config, &store, "node-b");
    let http = reqwest::Client::new();
    for n in [&a, &b] {
        wait_until("the node answers", Duration::from_secs(60), async || {
            n.state_of("processing").await == "running"
        })
        .await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicI64::new(i64::MAX));
    let readers: Vec<_> = [&a, &b]
        .iter()
        .map(|n| {
            tokio::spawn(read_log(
                http.clone(),
                n.base.clone(),
                done.clone(),
                total.clone(),
            ))
        })
        .collect();

    // Eight writers per node. Each creates tasks on its node, and changes every task it
    // made on the other node too, so both nodes write the same tasks at once.
    let nodes = Arc::new([a.base.clone(), b.base.clone()]);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16usize {
        let (http, nodes) = (http.clone(), nodes.clone());
        writers.spawn(async move {
            let (mine, other) = (&nodes[w % 2], &nodes[(w + 1) % 2]);
            for i in 0..15 {
                let r = http
                    .post(format!("{mine}/api/v1/tasks"))
                    .json(&json!({"captureId": format!("w{w}-{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let id = r.json::<Value>().await.unwrap()["brokerId"]
                    .as_i64()
                    .unwrap();
                for (k, base) in [mine, other, mine, other].into_iter().enumerate() {
                    let r = http
                        .patch(format!("{base}/api/v1/tasks/{id}"))
                        .json(&json!({"data": {"step": k.to_string()}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            }
        });
    }
    // The same captureIds created on both nodes at once: one task each, never two.
    for i in 0..20 {
        let (ra, rb) = tokio::join!(
            http.post(format!("{}/api/v1/tasks", a.base))
                .json(&json!({"captureId": format!("both-{i}")}))
                .send(),
            http.post(format!("{}/api/v1/tasks", b.base))
                .json(&json!({"captureId": format!("both-{i}")}))
                .send(),
        );
        let mut codes = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
        codes.sort_unstable();
        assert_eq!(codes, [201, 409], "both-{i}: one create wins, one is told");
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }

    // Every event the log will ever hold is committed now: count it in the store itself.
    let pool = sqlx::PgPool::connect(&store).await.unwrap();
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM events ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    total.store(seqs.len() as i64, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let ids = a.capture_ids(&http).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "a captureId was created twice");
    assert_eq!(ids.len(), 16 * 15 + 20);

    for (node, reader) in ["a", "b"].into_iter().zip(readers) {
        let got = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("the reader reached the end of the log")
            .unwrap();
        let got_seqs: Vec<i64> = got.iter().map(|e| e.0).collect();
        assert_eq!(
            got_seqs, seqs,
            "node {node}'s reader: every event once, in seq order"
        );
        // Each task's events in the order its versions were made.
        let mut last_version: HashMap<i64, i64> = HashMap::new();
        for (seq, id, version) in got {
            let prev = last_version.insert(id, version).unwrap_or(0);
            assert!(
                version > prev,
                "node {node}: task {id} version {version} at seq {seq} after {prev}"
            );
        }
    }
}

impl Node {
    async fn post(&self, http: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let r = http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the node answers.
    async fn ready(&self) {
        wait_until("the node answers", Duration::from_secs(60), async || {
            reqwest::get(format!("{}/healthz", self.base)).await.is_ok()
        })
        .await;
    }

    async fn count(&self, http: &reqwest::Client, status: &str) -> usize {
        let mut n = 0;
        let mut after = String::new();
        loop {
            let page: Value = http
                .get(format!(
                    "{}/api/v1/tasks?status={status}&limit=1000{after}",
                    self.base
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            n += page["tasks"].as_array().unwrap().len();
            match page["nextAfter"].as_str() {
                Some(a) => after = format!("&after={a}"),
                None => return n,
            }
        }
    }
}

/// Creates `n` tasks, spread over `nodes`, 32 at a time.
async fn create_many(nodes: &[&Node], http: &reqwest::Client, n: usize, prefix: &str) {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let node = nodes[i % nodes.len()];
            async move { node.create(http, &format!("{prefix}-{i}")).await }
        })
        .await;
}

#[tokio::test]
async fn a_hundred_agents_on_two_nodes_pull_ten_thousand_tasks_each_exactly_once() {
    let store = fresh_postgres_url().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worklane.toml");
    std::fs::write(
        &config,
        "[[queue]]\nid = \"work\"\nwhen = \"true\"\nmode = \"pull\"\n",
    )
    .unwrap();
    let a = Node::start(&config, &store, "node-a");
    let b = Node::start(&config, &store, "node-b");
    a.ready().await;
    b.ready().await;
    let http = reqwest::Client::new();
    const TASKS: usize = 10_000;
    const AGENTS: usize = 100;
    create_many(&[&a, &b], &http, TASKS, "t").await;
    for i in 0..AGENTS {
        let node = if i % 2 == 0 { &a } else { &b };
        let id = format!("agent-{i}");
        let (code, v) = node.post(&http, "/api/v1/agents", json!({"id": id})).await;
        assert_eq!(code, 201, "{v}");
        let (code, v) = node
            .post(
                &http,
                &format!("/api/v1/agents/{id}/state"),
                json!({"state": "Ready"}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }
    // Every agent pulls, completes, and pulls again, half of them on each node, until the
    // queue is empty.
    let taken: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let agents = (0..AGENTS).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let (http, taken) = (&http, taken.clone());
        async move {
            let id = format!("agent-{i}");
            loop {
                let (code, t) = node
                    .post(http, &format!("/api/v1/agents/{id}/next"), Value::Null)
                    .await;
                match code {
                    200 => {
                        assert_eq!(t["assignedToUser"], id.as_str(), "{t}");
                        let bid = t["brokerId"].as_i64().unwrap();
                        taken.lock().unwrap().push((id.clone(), bid));
                        let (code, t) = node
                            .post(
                                http,
                                &format!("/api/v1/tasks/{bid}/complete"),
                                json!({"resultCode": "done"}),
                            )
                            .await;
                        assert_eq!(code, 200, "{t}");
                    }
                    204 => return,
                    other => panic!("next answered {other}: {t}"),
                }
            }
        }
    });
    futures::future::join_all(agents).await;
    let taken = taken.lock().unwrap().clone();
    let distinct: HashSet<i64> = taken.iter().map(|(_, b)| *b).collect();
    assert_eq!(taken.len(), TASKS, "every pull got a task of its own");
    assert_eq!(distinct.len(), TASKS, "no task was assigned twice");
    let per_agent: HashMap<&str, usize> = taken.iter().fold(HashMap::new(), |mut m, (a, _)| {
        *m.entry(a.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_agent.len(), AGENTS, "every agent worked");
    assert_eq!(a.count(&http, "Completed").await, TASKS);
    assert_eq!(b.count(&http, "Distributed").await, 0);
}

#[tokio::test]
async fn offers_of_a_killed_node_return_to_the_queue_after_their_timeout() {
    let store = fresh_postgres_url().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worklane.toml");
    std::fs::write(
        &config,
        "[[queue]]\nid = \"work\"\nwhen = \"true\"\nmode = \"push\"\noffer_timeout = \"2s\"\n",
    )
    .unwrap();
    let mut a = Node::start(&config, &store, "node-a");
    a.ready().await;
    let http = reqwest::Client::new();
    for i in 0..5 {
        let id = format!("agent-{i}");
        a.post(&http, "/api/v1/agents", json!({"id": id})).await;
        a.post(
            &http,
            &format!("/api/v1/agents/{id}/state"),
            json!({"state": "Ready"}),
        )
        .await;
    }
    create_many(&[&a], &http, 5, "k").await;
    // Node A offers all five (one per agent); nobody answers; A dies.
    wait_until("five offers", Duration::from_secs(30), async || {
        let page: Value = http
            .get(format!("{}/api/v1/events?limit=1000", a.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page.to_string().matches("\"TaskOffered\"").count() >= 5
    })
    .await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let b = Node::start(&config, &store, "node-b");
    b.ready().await;
    // B returns each offer once it times out (TaskReturned) and offers the task again.
    let returned = async || {
        let page: Value = http
            .get(format!("{}/api/v1/events?limit=1000", b.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let returned: HashSet<i64> = events
            .iter()
            .filter(|e| e["eventType"] == "TaskReturned" && e["reason"] == "offer timed out")
            .map(|e| e["brokerId"].as_i64().unwrap())
            .collect();
        returned.len()
    };
    wait_until(
        "every offer returned",
        Duration::from_secs(30),
        async || returned().await == 5,
    )
    .await;
    // Never two live offers for one task: each task holds at most one, by construction
    // of the row, and the ones re-offered name one agent.
    for t in http
        .get(format!("{}/api/v1/tasks?limit=100", b.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["tasks"]
        .as_array()
        .unwrap()
    {
        assert_eq!(t["status"], "Distributed", "{t}");
    }
}
