//! The binary end to end: durability across kill -9, graceful SIGTERM, configuration errors.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use worklane_store::testing::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_worklane");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server without authentication (allowed on its loopback listener): the tests that
/// use it are about durability and shutdown.
fn start(store: &str, port: u16) -> Child {
    serve(store, port)
        .env("WORKLANE_AUTH__MODE", "off")
        .spawn()
        .unwrap()
}

/// A server with authentication on, as installed: its first start writes the admin token
/// into `dir`, its working directory, where the CLI run from there finds it.
fn start_in(dir: &std::path::Path, store: &str, port: u16) -> Child {
    serve(store, port).current_dir(dir).spawn().unwrap()
}

fn serve(store: &str, port: u16) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--store",
        store,
    ])
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

async fn wait_healthy(base: &str) {
    let http = reqwest::Client::new();
    let url = format!("{base}/healthz");
    wait_until(
        "the server to be healthy",
        Duration::from_secs(60),
        || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
}

/// Waits until the server holds at least `n` tasks.
async fn wait_for_tasks(base: &str, n: usize) {
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/tasks?limit=1000");
    wait_until("tasks to be created", Duration::from_secs(60), || async {
        let Ok(r) = http.get(&url).send().await else {
            return false;
        };
        let page: Value = r.json().await.unwrap_or_default();
        page["tasks"].as_array().is_some_and(|t| t.len() >= n)
    })
    .await;
}

/// Creates tasks from `clients` concurrent clients until `stop`; returns the acknowledged
/// (brokerId, captureId) pairs.
async fn create_until(base: String, clients: usize, stop: Arc<AtomicBool>) -> Vec<(i64, String)> {
    let http = reqwest::Client::new();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        set.spawn(async move {
            let mut acked = vec![];
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let cid = format!("k{c}-{i}");
                match http
                    .post(format!("{base}/api/v1/tasks"))
                    .json(&json!({"captureId": cid}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        acked.push((v["brokerId"].as_i64().unwrap(), cid));
                    }
                    _ => break,
                }
            }
            acked
        });
    }
    let mut all = vec![];
    while let Some(r) = set.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

async fn all_tasks(base: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut out = vec![];
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/tasks?limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        out.extend(page["tasks"].as_array().unwrap().iter().cloned());
        match page["nextAfter"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn acknowledged_creates_survive_kill_9() {
    let store = worklane_store::testing::fresh_sqlite_url();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&store, port);
    wait_healthy(&base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(create_until(base.clone(), 16, stop.clone()));
    // Kill in the middle of the stream, once a good number has been acknowledged.
    wait_for_tasks(&base, 500).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked = load.await.unwrap();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&store, port);
    wait_healthy(&base).await;
    let tasks = all_tasks(&base).await;
    let stored: HashSet<(i64, String)> = tasks
        .iter()
        .map(|t| {
            (
                t["brokerId"].as_i64().unwrap(),
                t["captureId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for a in &acked {
        assert!(stored.contains(a), "acknowledged task {a:?} lost");
    }
    let capture_ids: HashSet<_> = tasks
        .iter()
        .map(|t| t["captureId"].as_str().unwrap())
        .collect();
    assert_eq!(capture_ids.len(), tasks.len(), "no task doubled");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let store = worklane_store::testing::fresh_sqlite_url();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&store, port);
    wait_healthy(&base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(create_until(base.clone(), 8, stop.clone()));
    wait_for_tasks(&base, 50).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let acked = load.await.unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start(&store, port);
    wait_healthy(&base).await;
    let stored: HashSet<i64> = all_tasks(&base)
        .await
        .iter()
        .map(|t| t["brokerId"].as_i64().unwrap())
        .collect();
    assert!(acked.iter().all(|(id, _)| stored.contains(id)));
    server.kill().unwrap();
    server.wait().unwrap();
}

fn check(file_text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("w.toml");
    std::fs::write(&f, file_text).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["config", "check", f.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

#[test]
fn config_check_names_the_bad_key() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../worklane.example.toml"
    ))
    .unwrap();
    let (code, text) = check(&example, &[]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = check("[server]\nlisten = \"nowhere\"\n", &[]);
    assert_eq!(code, 5, "{text}");
    assert!(text.contains("server.listen"), "{text}");
    let (code, text) = check("[server]\nlisen = \"127.0.0.1:1\"\n", &[]);
    assert_eq!(code, 5);
    assert!(text.contains("lisen"), "{text}");
    let (code, text) = check("[store]\nurl = \"mysql://x\"\n", &[]);
    assert_eq!(code, 5);
    assert!(text.contains("store.url"), "{text}");
    let (code, text) = check("[store]\nmax_batch = \"many\"\n", &[]);
    assert_eq!(code, 5);
    assert!(text.contains("max_batch"), "{text}");
    // Environment overrides the file, and is validated the same way.
    let (code, text) = check("", &[("WORKLANE_SERVER__LISTEN", "bad")]);
    assert_eq!(code, 5);
    assert!(text.contains("server.listen"), "{text}");
    let (code, text) = check("", &[("WORKLANE_STORE__URL", "postgres://u:secret@h/db")]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("secret"), "password redacted: {text}");
}

/// An `odbc:` source is accepted by a build with the `odbc` feature; a build without it
/// (the default) refuses it naming the key and how to build one that has it.
#[test]
fn config_check_of_an_odbc_source_as_this_build_allows() {
    let file = r#"
        [[capture_point]]
        id = "DB1"
        kind = "database"
        url = "odbc:DSN=crm;UID=u;PWD=secret"
        captureQuerySql = "select caseId \"ExternalId\" from cases"
    "#;
    let (code, text) = check(file, &[]);
    if worklane_capture_db::source::ODBC_AVAILABLE {
        assert_eq!(code, 0, "{text}");
    } else {
        assert_eq!(code, 5, "{text}");
        assert!(text.contains("DB1.url: ODBC sources need"), "{text}");
        assert!(
            text.contains("cargo build --release --features odbc"),
            "{text}"
        );
    }
    assert!(!text.contains("secret"), "{text}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["config", "check", "--help"],
        vec!["task", "--help"],
        vec!["task", "create", "--help"],
        vec!["task", "list", "--help"],
        vec!["task", "assign", "--help"],
        vec!["bench", "create", "--help"],
        vec!["bench", "read", "--help"],
        vec!["bench", "rules", "--help"],
        vec!["bench", "distribute", "--help"],
        vec!["agents", "--help"],
        vec!["agents", "create", "--help"],
        vec!["agents", "state", "--help"],
        vec!["agents", "next", "--help"],
        vec!["rules", "--help"],
        vec!["rules", "test", "--help"],
        vec!["rules", "explain", "--help"],
        vec!["rules", "reload", "--help"],
        vec!["rules", "diff", "--help"],
        vec!["users", "--help"],
        vec!["users", "add", "--help"],
        vec!["tokens", "--help"],
        vec!["tokens", "create", "--help"],
        vec!["notifications", "list", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(BIN)
        .args(["task", "get", "1", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "unreachable server");
    let out = Command::new(BIN)
        .args(["no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `worklane rules test` explains offline from the example configuration, as text and as
/// JSON; a bad task file is a usage error naming what is wrong.
#[test]
fn rules_test_explains_a_task_offline() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let config = format!("{root}/examples/rules/worklane.toml");
    let task = format!("{root}/examples/rules/fax-motor-claim.json");
    let at = "2026-11-30T10:00:00Z";
    let out = Command::new(BIN)
        .args([
            "rules", "test", &task, "--config", &config, "--at", at, "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"]["status"], "Queued");
    assert_eq!(v["outcome"]["processId"], "motor");
    assert_eq!(v["outcome"]["queue"], "motor-claims");
    // 100 from the process, +200 for a gold customer, +250 business value (big-motor).
    assert_eq!(v["outcome"]["priority"], 550);
    assert_eq!(v["outcome"]["dueDateTime"], "2026-12-03T17:30:00Z");
    assert_eq!(
        v["curve"][0],
        json!({"at": "2026-11-30T10:15:00Z", "priority": 550}),
        "the cap stops a rise, it does not lower"
    );

    let out = Command::new(BIN)
        .args(["rules", "test", &task, "--config", &config, "--at", at])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "✓ rule:fax-motor (global)  businessValue=500 category=NewClaim processId=motor"
        ),
        "{text}"
    );
    assert!(text.contains("outcome: Queued  process motor"), "{text}");

    let bad = std::env::temp_dir().join(format!("wl-bad-task-{}.json", std::process::id()));
    std::fs::write(&bad, r#"{"priority": "high"}"#).unwrap();
    let out = Command::new(BIN)
        .args(["rules", "test", bad.to_str().unwrap(), "--config", &config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("priority"));
}

/// `worklane agents ...` against a running server with authentication on, the CLI run
/// where the server wrote its admin token: create, list, update, state, next, and the exit
/// code of a refusal.
#[tokio::test]
async fn agents_commands_manage_agents_on_a_server() {
    let port = free_port();
    let store = worklane_store::testing::fresh_sqlite_url();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), &store, port);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--server", &base])
            .current_dir(dir.path())
            .env_remove("WORKLANE_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "agents",
        "create",
        "ann",
        "--name",
        "Ann",
        "--skill",
        "motor=4",
        "--capacity",
        "*=2",
        "--group",
        "claims",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["skills"]["motor"], 4);
    assert_eq!(v["capacity"]["*"], 2);
    let (code, _, err) = run(&["agents", "create", "ann"]);
    assert_eq!(code, Some(3), "a refusal: {err}");
    assert!(err.contains("AGENT_EXISTS"), "{err}");
    let (code, _, err) = run(&["agents", "create", "bob", "--skill", "motor"]);
    assert_eq!(code, Some(2), "a usage error: {err}");
    let (code, out, _) = run(&["agents", "update", "ann", "--skill", "home=2"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["skills"], json!({"home": 2}));
    assert_eq!(v["groups"], json!(["claims"]), "options not given stay");
    let (code, out, _) = run(&["agents", "state", "ann", "NotReady", "--reason", "lunch"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["state"].as_str(), v["reason"].as_str()),
        (Some("NotReady"), Some("lunch"))
    );
    let (code, out, _) = run(&["agents", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("ann") && out.contains("NotReady") && out.contains("lunch"),
        "{out}"
    );
    let (code, _, err) = run(&["agents", "next", "ann"]);
    assert_eq!(code, Some(3), "not Ready: {err}");
    assert!(err.contains("AGENT_NOT_AVAILABLE"), "{err}");
    run(&["agents", "state", "ann", "Ready"]);
    let (code, out, err) = run(&["agents", "next", "ann"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty() && err.contains("no task"), "{out}{err}");

    // People and tokens: an agent user (ann exists, so it is joined), and an agent token
    // that sees ann's work only.
    let with_stdin = |args: &[&str], input: &str, token: Option<&str>| {
        use std::io::Write;
        let mut c = Command::new(BIN);
        c.args(args)
            .args(["--server", &base])
            .current_dir(dir.path())
            .env_remove("WORKLANE_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            c.env("WORKLANE_TOKEN", t);
        }
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = with_stdin(
        &["users", "add", "ann", "--role", "agent", "--json"],
        "correct horse battery\n",
        None,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["role"].as_str()),
        (Some("ann"), Some("agent"))
    );
    assert!(
        !out.contains("correct horse") && !out.contains("argon2"),
        "{out}"
    );
    let (code, _, err) = with_stdin(&["users", "add", "cy", "--role", "admin"], "short\n", None);
    assert_eq!(code, Some(3), "a password too short is refused: {err}");
    let (code, out, _) = run(&["users", "disable", "ann"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\"disabled\": true"), "{out}");
    let (code, out, _) = run(&["users", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("ann") && out.contains("agent"), "{out}");

    let (code, secret, err) = run(&[
        "tokens", "create", "ann-desk", "--role", "agent", "--agent", "ann",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let secret = secret.trim().to_owned();
    assert!(
        secret.starts_with("wl_"),
        "the secret alone on stdout: {secret}"
    );
    let (code, out, _) = run(&["tokens", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("ann-desk") && out.contains("bootstrap-admin"),
        "{out}"
    );
    assert!(!out.contains(&secret), "a list never shows a secret");
    // The agent's token: it reads ann, not the list of agents (exit 3, FORBIDDEN).
    let (code, out, err) = with_stdin(&["agents", "get", "ann"], "", Some(&secret));
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = with_stdin(&["agents", "list"], "", Some(&secret));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("403") && err.contains("FORBIDDEN"), "{err}");
    let (code, _, _) = run(&["tokens", "revoke", "ann-desk"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = with_stdin(&["agents", "get", "ann"], "", Some(&secret));
    assert_eq!(code, Some(3), "revoked: {err}");
    assert!(
        err.contains("401") && err.contains("UNAUTHENTICATED"),
        "{err}"
    );
    // Without any credential (not run where the token file is): 401.
    let out = Command::new(BIN)
        .args(["agents", "list", "--server", &base])
        .env_remove("WORKLANE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNAUTHENTICATED"));
    let _ = server.kill();
    let _ = server.wait();
}
