//! The web console through the real server (SPEC 11): in a real browser (Debian's
//! headless Chromium driven over WebDriver by chromedriver, both installed by
//! `.ci/deps.d/chromium.sh`) a supervisor signs in, filters, holds two tasks in bulk and
//! reads their history; an agent goes Ready, receives an offer without reloading, accepts
//! and completes it; the dashboard then shows the completion. Screenshots of each page go
//! to `target/tmp/console-screenshots/`. Without a browser, every page is also checked for
//! every role: its own roles get it, the others a refusal page, strangers the sign-in.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{client, Server};
use worklane_engine::TestClock;
use worklane_store::testing::fresh_sqlite_url;

const CONFIG: &str = r#"
[[queue]]
id = "desk"
when = "true"
mode = "both"
offer_timeout = "2m"
"#;

const SUE: &str = "supervisor-password";
const ANN: &str = "agent-ann-password";

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn driver() -> Driver {
    let bin = std::env::var("WORKLANE_CHROMEDRIVER").unwrap_or("/usr/bin/chromedriver".into());
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{bin} cannot start ({e}): install Debian's chromium and chromium-driver (.ci/deps.d/chromium.sh)")
        });
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver answers /status once it listens.
    worklane_store::testing::wait_until("chromedriver to listen", Duration::from_secs(20), || {
        let status = format!("{url}/status");
        async move { reqwest::get(&status).await.is_ok() }
    })
    .await;
    Driver { child, url }
}

async fn browser(d: &Driver) -> Client {
    let chromium = std::env::var("WORKLANE_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1280,800",
                     "--force-device-scale-factor=1"]
        }
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a Chromium session");
    // A script that waits for the server fails in seconds, not WebDriver's default 30.
    c.update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
        Some(Duration::from_secs(5)),
        Some(Duration::from_secs(20)),
        None,
    ))
    .await
    .unwrap();
    c
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot of the whole page (the window grows to the page's height for it, then
/// returns to 1280×800).
async fn screenshot(c: &Client, name: &str) {
    // At 1280×800 nothing scrolls sideways.
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fits,
        Value::Bool(true),
        "{name} scrolls sideways at 1280×800"
    );
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(800) as u32;
    c.set_window_size(1280, height.clamp(800, 4000) + 140)
        .await
        .unwrap();
    let png = c.screenshot().await.unwrap();
    c.set_window_size(1280, 800).await.unwrap();
    let path = shots().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Runs `js` (a function body returning a boolean) until it returns true.
async fn until(c: &Client, what: &str, js: &str) {
    let met = worklane_store::testing::poll_until(Duration::from_secs(20), async || {
        c.execute(js, vec![]).await.unwrap() == Value::Bool(true)
    })
    .await;
    if !met {
        let body = c
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap_or_default();
        panic!("waited 20 s for {what}; the page says:\n{body}");
    }
}

async fn sign_in(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    type_into(c, "#user", user).await;
    type_into(c, "#password", password).await;
    c.find(Locator::Css("#sign-in button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        c,
        "the first page after sign-in",
        "return !location.pathname.endsWith('/login') && document.readyState === 'complete'",
    )
    .await;
}

async fn sign_out(c: &Client) {
    // Every request below must be answered at once: left pages' streams are closed.
    let probe = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch('/healthz').then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .expect("the browser has a connection free");
    assert_eq!(probe, json!(200));
    c.find(Locator::Css("[data-sign-out]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        c,
        "the sign-in page",
        "return location.pathname === '/console/login'",
    )
    .await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The users and tasks of the scenario: supervisor sue, agent ann (capacity 2), and
/// three tasks routed to queue `desk`.
async fn world(s: &Server) -> (i64, i64, i64) {
    for body in [
        json!({"id": "sue", "role": "supervisor", "password": SUE}),
        json!({"id": "ann", "role": "agent", "password": ANN}),
    ] {
        let (code, v) = s.post("/api/v1/users", Some(body)).await;
        assert_eq!(code, 201, "{v}");
    }
    let (code, v) = s
        .call(
            reqwest::Method::PATCH,
            "/api/v1/agents/ann",
            Some(json!({"capacity": {"*": 2}, "groups": ["claims"]})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let mut ids = vec![];
    // The clock starts at 2026-01-05T09:00Z: fax-1 is overdue already.
    for (cp, cid, due) in [
        ("fax", "fax-1", "2026-01-05T08:30:00Z"),
        ("fax", "fax-2", "2026-01-05T12:00:00Z"),
        ("mail", "mail-1", "2026-01-05T13:00:00Z"),
    ] {
        let id = s
            .create(
                json!({"capturePointId": cp, "captureId": cid, "processId": "claims",
                           "dueDateTime": due,
                           "data": {"customer": format!("customer of {cid}")}}),
            )
            .await;
        s.wait_status(id, "Distributed").await;
        ids.push(id);
    }
    (ids[0], ids[1], ids[2])
}

#[tokio::test]
async fn a_supervisor_and_an_agent_work_in_a_real_browser() {
    let clock = TestClock::at_default();
    let s = Server::start(&fresh_sqlite_url(), &clock, CONFIG).await;
    let (fax1, fax2, mail1) = world(&s).await;
    let d = driver().await;
    let c = browser(&d).await;
    let base = s.base.clone();

    // The supervisor: a console page without a session leads to the sign-in.
    c.goto(&format!("{base}/console/tasks")).await.unwrap();
    until(
        &c,
        "the sign-in page",
        "return location.pathname === '/console/login'",
    )
    .await;
    screenshot(&c, "login").await;
    sign_in(&c, &base, "sue", SUE).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/console/tasks");
    until(
        &c,
        "three tasks listed",
        "return document.querySelectorAll('#rows tr[data-id]').length === 3",
    )
    .await;

    // Filter by captureId: the two faxes.
    type_into(&c, "input[name=captureIdPrefix]", "fax-").await;
    click(&c, ".filters button[type=submit]").await;
    until(&c, "the two faxes", "return document.querySelectorAll('#rows tr[data-id]').length === 2 && location.search.includes('captureIdPrefix=fax-')").await;
    screenshot(&c, "tasks").await;

    // Hold both in bulk: a result per task.
    click(&c, "#select-all").await;
    type_into(&c, "#bulk input[name=reason]", "customer called").await;
    click(&c, "button[data-bulk=hold]").await;
    until(
        &c,
        "two results",
        "return document.querySelectorAll('#bulk-results li.ok').length === 2",
    )
    .await;
    let results = text_of(&c, "#bulk-results").await;
    assert!(results.contains(&format!("Task {fax1}: held")), "{results}");
    assert!(results.contains(&format!("Task {fax2}: held")), "{results}");
    // The list follows: both rows now say Held.
    until(&c, "the rows to show Held", "return Array.from(document.querySelectorAll('#rows tr[data-id] .status')).every(s => s.textContent === 'Held')").await;
    for id in [fax1, fax2] {
        assert_eq!(s.task(id).await.1["status"], "Held");
    }

    // A task's history: who held it and why.
    c.goto(&format!("{base}/console/tasks/{fax1}"))
        .await
        .unwrap();
    let history = text_of(&c, "#history").await;
    assert!(history.contains("TaskHeld"), "{history}");
    assert!(history.contains("user:sue"), "{history}");
    assert!(history.contains("customer called"), "{history}");
    screenshot(&c, "task").await;
    c.goto(&format!("{base}/console/queues")).await.unwrap();
    let queues = text_of(&c, "#queue-table").await;
    assert!(queues.contains("desk"), "{queues}");
    screenshot(&c, "queues").await;
    c.goto(&format!("{base}/console/agents")).await.unwrap();
    screenshot(&c, "agents").await;
    // A supervisor is not an agent: the desktop refuses.
    c.goto(&format!("{base}/console/desktop")).await.unwrap();
    let body = text_of(&c, "main").await;
    assert!(body.contains("FORBIDDEN"), "{body}");
    c.goto(&format!("{base}/console/tasks")).await.unwrap();
    sign_out(&c).await;

    // The agent: Ready, and the offer of the one task not held arrives live.
    sign_in(&c, &base, "ann", ANN).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/console/desktop");
    c.execute("window.notReloaded = true; return true", vec![])
        .await
        .unwrap();
    until(&c, "the channel to open", "return true").await;
    click(&c, "button[name=state][value=Ready]").await;
    until(
        &c,
        "an offer to appear",
        &format!("return !!document.querySelector('[data-offer^=\"{mail1}-\"]')"),
    )
    .await;
    let still = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        still,
        Value::Bool(true),
        "the offer appeared without a reload"
    );
    until(
        &c,
        "the countdown",
        "return /^\\d+:\\d\\d$/.test(document.querySelector('.countdown').textContent)",
    )
    .await;
    screenshot(&c, "desktop-offer").await;
    click(&c, "[data-offer] button[value=accept]").await;
    until(
        &c,
        "the task to be current",
        &format!("return !!document.querySelector('[data-task=\"{mail1}\"]')"),
    )
    .await;
    let data = text_of(&c, &format!("[data-task=\"{mail1}\"]")).await;
    assert!(
        data.contains("customer of mail-1"),
        "the task's data is shown: {data}"
    );
    type_into(
        &c,
        &format!("[data-task=\"{mail1}\"] input[name=resultCode]"),
        "resolved",
    )
    .await;
    screenshot(&c, "desktop-current").await;
    // Seven minutes of work on the server's clock.
    clock.advance(Duration::from_secs(7 * 60));
    click(
        &c,
        &format!("[data-task=\"{mail1}\"] form[data-api$=complete] button"),
    )
    .await;
    until(
        &c,
        "no current task",
        "return document.querySelectorAll('[data-task]').length === 0",
    )
    .await;
    let done = s.task(mail1).await.1;
    assert_eq!(done["status"], "Completed");
    assert_eq!(done["ext"]["resultCode"], "resolved");
    // An agent may not open the supervisor's pages.
    c.goto(&format!("{base}/console/tasks")).await.unwrap();
    let body = text_of(&c, "main").await;
    assert!(body.contains("FORBIDDEN"), "{body}");
    c.goto(&format!("{base}/console/desktop")).await.unwrap();
    sign_out(&c).await;

    // The dashboard shows the completion.
    sign_in(&c, &base, "sue", SUE).await;
    c.goto(&format!("{base}/console/dashboard")).await.unwrap();
    let dash = text_of(&c, "#dashboard").await;
    assert!(dash.contains("completed (1)"), "{dash}");
    assert!(dash.contains("created (3)"), "{dash}");
    assert!(dash.contains("1 completed"), "{dash}");
    assert!(
        dash.contains("100.0 %"),
        "the completion met its due date: {dash}"
    );
    assert!(
        dash.contains("7 min"),
        "handle time, accepted to completed: {dash}"
    );
    screenshot(&c, "dashboard").await;

    c.close().await.unwrap();
    s.stop().await;
}

/// Every page for every role, over plain HTTP with tokens: its roles get 200, other
/// roles a 403 page that says FORBIDDEN, a caller without credentials the sign-in page.
#[tokio::test]
async fn every_page_admits_its_roles_and_refuses_the_others() {
    let clock = TestClock::at_default();
    let s = Server::start(&fresh_sqlite_url(), &clock, CONFIG).await;
    let (fax1, _, _) = world(&s).await;
    let mut who = vec![("admin", s.http.clone())];
    for (name, body) in [
        ("supervisor", json!({"name": "sup", "role": "supervisor"})),
        (
            "agent",
            json!({"name": "ann-desk", "role": "agent", "agent": "ann"}),
        ),
        (
            "integration",
            json!({"name": "crm", "role": "integration", "capturePointId": "fax"}),
        ),
    ] {
        let (code, t) = s.post("/api/v1/tokens", Some(body)).await;
        assert_eq!(code, 201, "{t}");
        who.push((name, client(t["token"].as_str().unwrap())));
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let task = format!("/console/tasks/{fax1}");
    let pages: [(&str, &[&str]); 7] = [
        ("/console/tasks", &["admin", "supervisor"]),
        (&task, &["admin", "supervisor"]),
        ("/console/queues", &["admin", "supervisor"]),
        ("/console/agents", &["admin", "supervisor"]),
        ("/console/dashboard", &["admin", "supervisor"]),
        ("/console/desktop", &["agent"]),
        (
            "/console/login",
            &["admin", "supervisor", "agent", "integration", "nobody"],
        ),
    ];
    for (path, allowed) in pages {
        let url = format!("{}{path}", s.base);
        let r = no_redirects.get(&url).send().await.unwrap();
        if allowed.contains(&"nobody") {
            assert_eq!(r.status(), 200, "{path}");
        } else {
            assert_eq!(r.status(), 303, "{path} without a session");
            let to = r.headers()["location"].to_str().unwrap().to_owned();
            let back: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
            assert_eq!(
                to,
                format!("/console/login?next={back}"),
                "back to the page itself"
            );
        }
        for (role, http) in &who {
            let r = http.get(&url).send().await.unwrap();
            let code = r.status().as_u16();
            let body = r.text().await.unwrap();
            if allowed.contains(role) {
                assert_eq!(code, 200, "{role} {path}: {body}");
                assert!(body.contains("</html>"), "{role} {path}");
            } else {
                assert_eq!(code, 403, "{role} {path}");
                assert!(body.contains("FORBIDDEN"), "{role} {path}: {body}");
            }
        }
    }
    // The dashboard's figures on the API and as gauges: fax-1 was due at 08:30.
    let (code, stats) = s.get("/api/v1/stats?timeZone=Europe/Paris").await;
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["backlog"]["byStatus"]["Distributed"], 3, "{stats}");
    assert_eq!(stats["backlog"]["overdue"], 1, "{stats}");
    assert_eq!(stats["today"]["created"], 3, "{stats}");
    assert_eq!(stats["timeZone"], "Europe/Paris");
    assert_eq!(stats["last24Hours"].as_array().unwrap().len(), 96);
    let (code, bad) = s.get("/api/v1/stats?timeZone=Mars/Olympus").await;
    assert_eq!(
        (code, bad["code"].as_str()),
        (400, Some("INVALID_FORMAT")),
        "{bad}"
    );
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("worklane_tasks_overdue 1"), "{metrics}");
    assert!(
        metrics
            .contains("worklane_tasks{status=\"Distributed\",queue=\"desk\",process=\"claims\"} 3"),
        "{metrics}"
    );
    // Pages run only the console's own script and cannot be framed.
    let r = s
        .http
        .get(format!("{}/console/tasks", s.base))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // The script and style sheet are public, and the start page sends each role home.
    for file in ["app.js", "app.css"] {
        let r = no_redirects
            .get(format!("{}/console/static/{file}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let agent = &who.iter().find(|(r, _)| *r == "agent").unwrap().1;
    let r = agent
        .get(format!("{}/console", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().path(), "/console/desktop");
    // A bad filter is shown as the API names it, with the API's status.
    let r = s
        .http
        .get(format!("{}/console/tasks?status=Bogus", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("INVALID_FORMAT") && body.contains("status"),
        "{body}"
    );
    s.stop().await;
}
