//! People and access through the real server on both stores (SPEC 10): the role matrix,
//! walked route by route with every role, and the scopes that keep an agent to its own
//! tasks and an integration to its capture point.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::{client, Server};
use worklane_engine::{Clock, TestClock};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url};

const CONFIG: &str = r#"
[[queue]]
id = "desk"
when = "true"
mode = "pull"

[[notification_target]]
id = "crm"
uri = "http://127.0.0.1:9/never-called"
start_at = "now"
"#;

/// Who calls: the columns of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Admin,
    Supervisor,
    /// Agent ann, whose task and agent the paths name.
    Ann,
    /// Agent bob: an agent, but not the one the paths name.
    Bob,
    /// An integration bound to capture point `crm`, the capture point of ann's task.
    Crm,
}

const WHO: [Who; 6] = [
    Who::Nobody,
    Who::Bob,
    Who::Crm,
    Who::Ann,
    Who::Supervisor,
    Who::Admin,
];

/// One route and who may call it, as SPEC 10 says: `a`dmin, `s`upervisor, `g` agent ann,
/// `o` the other agent bob, `i` integration, `*` anyone without a token. Paths name ann's
/// task and ann herself, so where bob differs from ann it is the scope that refuses him.
const MATRIX: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "*"),
    ("GET", "/api/v1/openapi.json", "*"),
    ("GET", "/metrics", "as"),
    ("GET", "/api/v1/stats", "as"),
    ("POST", "/api/v1/tasks", "asi"),
    ("GET", "/api/v1/tasks", "asgoi"),
    ("GET", "/api/v1/tasks/{brokerId}", "asgi"),
    ("PATCH", "/api/v1/tasks/{brokerId}", "asgoi"),
    ("GET", "/api/v1/tasks/{brokerId}/events", "asgi"),
    ("POST", "/api/v1/tasks/{brokerId}/complete", "asgoi"),
    ("POST", "/api/v1/tasks/{brokerId}/transfer", "asgoi"),
    ("POST", "/api/v1/tasks/{brokerId}/workbin", "asgoi"),
    ("POST", "/api/v1/tasks/{brokerId}/assign", "asi"),
    ("POST", "/api/v1/tasks/{brokerId}/{action}", "asi"),
    ("POST", "/api/v1/agents", "as"),
    ("GET", "/api/v1/agents", "as"),
    ("GET", "/api/v1/agents/{id}", "asg"),
    ("PATCH", "/api/v1/agents/{id}", "as"),
    ("POST", "/api/v1/agents/{id}/state", "asg"),
    ("POST", "/api/v1/agents/{id}/next", "asg"),
    ("GET", "/api/v1/agents/{id}/offers", "asg"),
    ("GET", "/api/v1/agents/{id}/stream", "asg"),
    ("POST", "/api/v1/offers/{offerId}/accept", "asgo"),
    ("POST", "/api/v1/offers/{offerId}/reject", "asgo"),
    ("GET", "/api/v1/events", "as"),
    ("GET", "/api/v1/events/stream", "as"),
    ("POST", "/api/v1/rules/explain", "as"),
    ("POST", "/api/v1/rules/diff", "as"),
    ("POST", "/api/v1/rules/reload", "a"),
    ("POST", "/api/v1/users", "a"),
    ("GET", "/api/v1/users", "a"),
    ("PATCH", "/api/v1/users/{id}", "a"),
    ("POST", "/api/v1/tokens", "a"),
    ("GET", "/api/v1/tokens", "a"),
    ("DELETE", "/api/v1/tokens/{name}", "a"),
    ("POST", "/api/v1/session", "*"),
    ("GET", "/api/v1/session", "asgoi"),
    ("DELETE", "/api/v1/session", "asgoi"),
    ("GET", "/api/v1/notifications/{target}/deliveries", "as"),
    (
        "GET",
        "/api/v1/notifications/{target}/deliveries/{id}",
        "as",
    ),
    (
        "POST",
        "/api/v1/notifications/{target}/deliveries/{id}/resend",
        "a",
    ),
    ("POST", "/api/v1/notifications/{target}/replay", "a"),
];

/// Routes the OpenAPI document does not list (the matrix covers them all the same).
const UNDOCUMENTED: &[&str] = &[
    "/healthz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/notifications/{target}/deliveries",
    "/api/v1/notifications/{target}/deliveries/{id}",
    "/api/v1/notifications/{target}/deliveries/{id}/resend",
    "/api/v1/notifications/{target}/replay",
];

fn allowed(who: Who, cell: &str) -> bool {
    let letter = match who {
        Who::Nobody => '*',
        Who::Admin => 'a',
        Who::Supervisor => 's',
        Who::Ann => 'g',
        Who::Bob => 'o',
        Who::Crm => 'i',
    };
    cell.contains('*') || cell.contains(letter)
}

/// The setting every test starts from: agents ann and bob, Ready; tokens for each role;
/// one task of capture point `crm` assigned to ann (pulled), one of `fax` in the queue.
struct World {
    s: Server,
    clients: Vec<(Who, reqwest::Client)>,
    ann_task: i64,
    fax_task: i64,
}

impl World {
    async fn new(store_url: &str, clock: &TestClock) -> Self {
        let s = Server::start(store_url, clock, CONFIG).await;
        for id in ["ann", "bob"] {
            let body = json!({"id": id, "capacity": {"*": 5}, "groups": ["claims"]});
            let (code, a) = s.post("/api/v1/agents", Some(body)).await;
            assert_eq!(code, 201, "{a}");
            let (code, a) = s
                .post(
                    &format!("/api/v1/agents/{id}/state"),
                    Some(json!({"state": "Ready"})),
                )
                .await;
            assert_eq!(code, 200, "{a}");
        }
        let mut clients = vec![
            (Who::Nobody, reqwest::Client::new()),
            (Who::Admin, s.http.clone()),
        ];
        for (who, body) in [
            (
                Who::Supervisor,
                json!({"name": "sup", "role": "supervisor"}),
            ),
            (
                Who::Ann,
                json!({"name": "ann-desk", "role": "agent", "agent": "ann"}),
            ),
            (
                Who::Bob,
                json!({"name": "bob-desk", "role": "agent", "agent": "bob"}),
            ),
            (
                Who::Crm,
                json!({"name": "crm", "role": "integration", "capturePointId": "crm"}),
            ),
        ] {
            let (code, t) = s.post("/api/v1/tokens", Some(body)).await;
            assert_eq!(code, 201, "{t}");
            clients.push((who, client(t["token"].as_str().unwrap())));
        }
        let ann_task = s
            .create(json!({"capturePointId": "crm", "captureId": "claim-1"}))
            .await;
        s.wait_status(ann_task, "Distributed").await;
        let w = Self {
            s,
            clients,
            ann_task,
            fax_task: 0,
        };
        let (code, t) = w
            .call(Who::Ann, Method::POST, "/api/v1/agents/ann/next", None)
            .await;
        assert_eq!(code, 200, "{t}");
        assert_eq!(t["brokerId"], ann_task);
        let fax_task =
            w.s.create(json!({"capturePointId": "fax", "captureId": "fax-1"}))
                .await;
        w.s.wait_status(fax_task, "Distributed").await;
        Self { fax_task, ..w }
    }

    fn client(&self, who: Who) -> &reqwest::Client {
        &self.clients.iter().find(|(w, _)| *w == who).unwrap().1
    }

    async fn call(
        &self,
        who: Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.s.call_with(self.client(who), method, path, body).await
    }
}

/// Every route with every role: a role the matrix refuses gets 403 FORBIDDEN, a caller
/// without a token 401 UNAUTHENTICATED with a `WWW-Authenticate` challenge, both in the
/// standard error body; a role it allows gets past both (whatever the route then says of
/// the deliberately unknown attribute its body carries). The matrix lists every operation
/// of the OpenAPI document, so a new route cannot go unchecked.
async fn every_route_enforces_the_matrix(store_url: String) {
    let clock = TestClock::at_default();
    let w = World::new(&store_url, &clock).await;

    let (_, doc) = w
        .call(Who::Nobody, Method::GET, "/api/v1/openapi.json", None)
        .await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = MATRIX
        .iter()
        .filter(|(_, p, _)| !UNDOCUMENTED.contains(p))
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        listed, documented,
        "the matrix lists every documented route"
    );

    // Body-less requests are sent without a body; the others with an attribute no
    // route knows, so that a role that passes is refused by the route (400) instead of
    // changing the task the next role is tried on.
    let nonsense = json!({"matrixProbe": true});
    for (method, path, cell) in MATRIX {
        let concrete = path
            .replace("{brokerId}", &w.ann_task.to_string())
            .replace("{action}", "hold")
            .replace("{offerId}", "no-such-offer")
            .replace("{target}", "crm")
            .replace("{name}", "no-such-token")
            .replace("/users/{id}", "/users/nobody")
            .replace("/deliveries/{id}", "/deliveries/1")
            .replace("{id}", "ann");
        let method: Method = method.parse().unwrap();
        let body = (method == Method::POST || method == Method::PATCH).then(|| nonsense.clone());
        for who in WHO {
            let r = w
                .client(who)
                .request(method.clone(), format!("{}{concrete}", w.s.base));
            let r = match &body {
                Some(b) => r.json(b),
                None => r,
            };
            let r = r.send().await.unwrap();
            let code = r.status().as_u16();
            let challenge = r.headers().get("www-authenticate").cloned();
            // A stream answers with its headers and then waits: the status is enough.
            let value: Value = if concrete.ends_with("/stream") && code == 200 {
                Value::Null
            } else {
                r.json().await.unwrap_or(Value::Null)
            };
            let at = format!("{who:?} {method} {concrete}: {code} {value}");
            if allowed(who, cell) {
                assert!(code != 401 && code != 403, "allowed, but {at}");
            } else if who == Who::Nobody {
                assert_eq!(code, 401, "{at}");
                assert_eq!(value["code"], "UNAUTHENTICATED", "{at}");
                assert!(
                    challenge.is_some_and(|c| c.to_str().unwrap().starts_with("Bearer")),
                    "{at}"
                );
            } else {
                assert_eq!(code, 403, "{at}");
                assert_eq!(value["code"], "FORBIDDEN", "{at}");
                assert!(value["message"].is_string(), "{at}");
            }
        }
    }
    w.s.stop().await;
}

/// An agent sees and acts on its own tasks only, an integration on its capture point's;
/// every action's event records the token that made it; a revoked token stops at once.
async fn scopes_keep_callers_to_their_own_tasks(store_url: String) {
    let clock = TestClock::at_default();
    let w = World::new(&store_url, &clock).await;
    let (ann, fax) = (w.ann_task, w.fax_task);

    // Ann: her task, not the other; her list, whatever she asks for.
    let (code, t) = w
        .call(Who::Ann, Method::GET, &format!("/api/v1/tasks/{ann}"), None)
        .await;
    assert_eq!(
        (code, t["assignedToUser"].as_str()),
        (200, Some("ann")),
        "{t}"
    );
    let (code, e) = w
        .call(Who::Ann, Method::GET, &format!("/api/v1/tasks/{fax}"), None)
        .await;
    assert_eq!((code, e["code"].as_str()), (403, Some("FORBIDDEN")), "{e}");
    let (code, page) = w.call(Who::Ann, Method::GET, "/api/v1/tasks", None).await;
    assert_eq!(code, 200, "{page}");
    let ids: Vec<i64> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["brokerId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![ann]);
    let (code, _) = w
        .call(
            Who::Ann,
            Method::GET,
            "/api/v1/tasks?assignedToUser=bob",
            None,
        )
        .await;
    assert_eq!(code, 403);
    // Acting on another's task is refused inside the transaction and changes nothing.
    let (code, e) = w
        .call(
            Who::Ann,
            Method::POST,
            &format!("/api/v1/tasks/{fax}/complete"),
            None,
        )
        .await;
    assert_eq!((code, e["code"].as_str()), (403, Some("FORBIDDEN")), "{e}");
    assert_eq!(w.s.task(fax).await.1["status"], "Distributed");
    let (code, e) = w
        .call(
            Who::Bob,
            Method::POST,
            &format!("/api/v1/tasks/{ann}/complete"),
            None,
        )
        .await;
    assert_eq!(code, 403, "{e}");
    // Bob may not pull, nor set the state, as ann.
    let (code, _) = w
        .call(Who::Bob, Method::POST, "/api/v1/agents/ann/next", None)
        .await;
    assert_eq!(code, 403);

    // The integration: its capture point's tasks, created as its own.
    let (code, e) = w
        .call(Who::Crm, Method::GET, &format!("/api/v1/tasks/{fax}"), None)
        .await;
    assert_eq!(code, 403, "{e}");
    let (code, e) = w
        .call(
            Who::Crm,
            Method::POST,
            "/api/v1/tasks",
            Some(json!({"capturePointId": "fax", "captureId": "x"})),
        )
        .await;
    assert_eq!((code, e["code"].as_str()), (403, Some("FORBIDDEN")), "{e}");
    let (code, t) = w
        .call(
            Who::Crm,
            Method::POST,
            "/api/v1/tasks",
            Some(json!({"captureId": "claim-2"})),
        )
        .await;
    assert_eq!(
        (code, t["capturePointId"].as_str()),
        (201, Some("crm")),
        "{t}"
    );
    let (code, page) = w
        .call(
            Who::Crm,
            Method::GET,
            "/api/v1/tasks?capturePointId=fax",
            None,
        )
        .await;
    assert_eq!(code, 403, "{page}");
    let (code, e) = w
        .call(
            Who::Crm,
            Method::POST,
            &format!("/api/v1/tasks/{fax}/hold"),
            None,
        )
        .await;
    assert_eq!(code, 403, "{e}");

    // Ann completes her task; the event names her token, and the body's actor beside it.
    let (code, t) = w
        .call(
            Who::Ann,
            Method::POST,
            &format!("/api/v1/tasks/{ann}/complete"),
            Some(json!({"actor": "Ann Smith"})),
        )
        .await;
    assert_eq!(
        (code, t["status"].as_str()),
        (200, Some("Completed")),
        "{t}"
    );
    let (_, events) = w.s.get(&format!("/api/v1/tasks/{ann}/events")).await;
    let completed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "TaskCompleted")
        .cloned()
        .unwrap();
    assert_eq!(
        completed["actor"], "token:ann-desk for Ann Smith",
        "{completed}"
    );

    // Revoked: refused at once on this node.
    let (code, _) =
        w.s.call(Method::DELETE, "/api/v1/tokens/ann-desk", None)
            .await;
    assert_eq!(code, 204);
    let (code, e) = w
        .call(Who::Ann, Method::GET, "/api/v1/agents/ann", None)
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    let (_, list) = w.s.get("/api/v1/tokens").await;
    let desk = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ann-desk")
        .cloned()
        .unwrap();
    assert!(
        desk["revokedDateTime"].is_string() && desk["lastUsedDateTime"].is_string(),
        "{desk}"
    );
    assert!(
        desk.get("token").is_none(),
        "a list never shows a secret: {desk}"
    );

    // A malformed header is 401 too, and says what is wrong.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/tasks", w.s.base))
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("Bearer"), "{e}");
    w.s.stop().await;
}

/// The first start writes one admin token, readable by its owner only; a second start
/// on the same store makes none and leaves the file alone. Users: an agent user is its
/// agent, passwords never come back, and a short one is refused.
async fn first_start_and_users(store_url: String) {
    let clock = TestClock::at_default();
    let s = Server::start(&store_url, &clock, "").await;
    let file = support::token_file(&store_url);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only: {mode:o}");
    }
    let written = std::fs::read_to_string(&file).unwrap();
    s.stop().await;
    let s = Server::start(&store_url, &clock, "").await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        written,
        "not made again"
    );
    let (_, tokens) = s.get("/api/v1/tokens").await;
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    assert_eq!(tokens[0]["name"], "bootstrap-admin");
    assert_eq!(tokens[0]["role"], "admin");

    let (code, u) = s
        .post(
            "/api/v1/users",
            Some(json!({"id": "dee", "name": "Dee", "role": "agent", "password": "a long passphrase"})),
        )
        .await;
    assert_eq!(code, 201, "{u}");
    assert!(
        u.get("password").is_none() && u.get("passwordHash").is_none(),
        "{u}"
    );
    let (code, a) = s.get("/api/v1/agents/dee").await;
    assert_eq!(
        (code, a["name"].as_str()),
        (200, Some("Dee")),
        "an agent user is its agent: {a}"
    );
    let (code, e) = s
        .post(
            "/api/v1/users",
            Some(json!({"id": "eve", "role": "admin", "password": "short"})),
        )
        .await;
    assert_eq!(code, 400, "{e}");
    assert!(
        !e.to_string().contains("short\""),
        "the password is not echoed: {e}"
    );
    let (code, e) = s
        .post(
            "/api/v1/users",
            Some(json!({"id": "dee", "role": "agent", "password": "another passphrase"})),
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (409, Some("USER_EXISTS")),
        "{e}"
    );
    let (code, u) = s
        .call(
            Method::PATCH,
            "/api/v1/users/dee",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!((code, u["disabled"].as_bool()), (200, Some(true)), "{u}");
    let (code, e) = s
        .call(
            Method::PATCH,
            "/api/v1/users/nobody",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (404, Some("USER_NOT_FOUND")),
        "{e}"
    );
    // A token for an agent that does not exist, and a capture point on a role without one.
    let (code, e) = s
        .post(
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "agent", "agent": "ghost"})),
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (422, Some("AGENT_NOT_FOUND")),
        "{e}"
    );
    let (code, _) = s
        .post(
            "/api/v1/tokens",
            Some(json!({"name": "x", "role": "supervisor", "capturePointId": "crm"})),
        )
        .await;
    assert_eq!(code, 400);
    s.stop().await;
}

/// A console session: the cookie sign-in sets, and the CSRF token its answer carries.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(s: &Server, user: &str, password: &str) -> (u16, Value, Option<Session>) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/session", s.base))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let set = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let retry = r.headers().get("retry-after").cloned();
    let mut v: Value = r.json().await.unwrap();
    if let Some(retry) = retry {
        v["retryAfter"] = json!(retry.to_str().unwrap());
    }
    let session = set.map(|c| {
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(!c.contains("Secure"), "not configured: {c}");
        Session {
            cookie: c.split(';').next().unwrap().to_owned(),
            csrf: v["csrfToken"].as_str().unwrap().to_owned(),
        }
    });
    (code, v, session)
}

impl Session {
    async fn call(
        &self,
        s: &Server,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}{path}", s.base))
            .header("cookie", &self.cookie);
        if csrf {
            r = r.header("x-csrf-token", &self.csrf);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }
}

/// Console sessions: sign-in sets an HttpOnly, SameSite=Strict cookie; a state-changing
/// request needs the session's CSRF token; the session ends when idle, at the end of its
/// lifetime, on sign-out and when its user is disabled, all on the test clock; repeated
/// failures lock a name, whether or not it exists, until the lockout has passed.
async fn sessions_sign_in_csrf_expiry_and_throttle(store_url: String) {
    let clock = TestClock::at_default();
    let w = World::new(&store_url, &clock).await;
    let s = &w.s;
    for (id, role) in [("sam", "supervisor"), ("ann", "agent")] {
        let body = json!({"id": id, "role": role, "password": "a long passphrase"});
        let (code, u) = s.post("/api/v1/users", Some(body)).await;
        assert_eq!(code, 201, "{u}");
    }

    let (code, e, none) = sign_in(s, "sam", "wrong password").await;
    assert_eq!(
        (code, e["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    assert!(none.is_none(), "no cookie on failure");
    let (code, v, sam) = sign_in(s, "sam", "a long passphrase").await;
    assert_eq!((code, v["role"].as_str()), (200, Some("supervisor")), "{v}");
    let sam = sam.unwrap();
    let (code, _) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
    assert_eq!(code, 200);
    let (code, me) = sam
        .call(s, Method::GET, "/api/v1/session", None, false)
        .await;
    assert_eq!((code, me["user"].as_str()), (200, Some("sam")), "{me}");
    let create = json!({"captureId": "by-sam"});
    let (code, e) = sam
        .call(
            s,
            Method::POST,
            "/api/v1/tasks",
            Some(create.clone()),
            false,
        )
        .await;
    assert_eq!(
        (code, e["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "no CSRF token: {e}"
    );
    let (code, t) = sam
        .call(s, Method::POST, "/api/v1/tasks", Some(create), true)
        .await;
    assert_eq!(code, 201, "{t}");
    let (_, events) = s
        .get(&format!("/api/v1/tasks/{}/events", t["brokerId"]))
        .await;
    assert_eq!(events[0]["actor"], "user:sam", "{events}");

    // An agent user's session is the agent's: its own agent, not the others.
    let (_, _, ann) = sign_in(s, "ann", "a long passphrase").await;
    let ann = ann.unwrap();
    let (code, _) = ann
        .call(s, Method::GET, "/api/v1/agents/ann", None, false)
        .await;
    assert_eq!(code, 200);
    let (code, _) = ann
        .call(s, Method::GET, "/api/v1/agents/bob", None, false)
        .await;
    assert_eq!(code, 403);

    // Idle: ended after 30 minutes without a request; busy: ended after 12 hours.
    clock.advance(std::time::Duration::from_secs(31 * 60));
    let (code, e) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
    assert_eq!(
        (code, e["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{e}"
    );
    let (_, _, sam) = sign_in(s, "sam", "a long passphrase").await;
    let sam = sam.unwrap();
    for _ in 0..24 {
        clock.advance(std::time::Duration::from_secs(29 * 60));
        let (code, _) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
        assert_eq!(code, 200, "in use, within its lifetime");
    }
    clock.advance(std::time::Duration::from_secs(29 * 60));
    let (code, _) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
    assert_eq!(code, 401, "past 12 hours");

    // Sign-out ends it; disabling the user ends the others.
    let (_, _, sam) = sign_in(s, "sam", "a long passphrase").await;
    let sam = sam.unwrap();
    let (code, _) = sam
        .call(s, Method::DELETE, "/api/v1/session", None, false)
        .await;
    assert_eq!(code, 403, "sign-out changes something: CSRF");
    let (code, _) = sam
        .call(s, Method::DELETE, "/api/v1/session", None, true)
        .await;
    assert_eq!(code, 204);
    let (code, _) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
    assert_eq!(code, 401);
    let (_, _, sam) = sign_in(s, "sam", "a long passphrase").await;
    let sam = sam.unwrap();
    let (code, _) = s
        .call(
            Method::PATCH,
            "/api/v1/users/sam",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = sam.call(s, Method::GET, "/api/v1/tasks", None, false).await;
    assert_eq!(code, 401, "disabled");
    let (code, _, _) = sign_in(s, "sam", "a long passphrase").await;
    assert_eq!(code, 401, "a disabled user cannot sign in");

    // Five failures lock a name, known or not, with the same answer; the lockout passes.
    for name in ["ann", "nobody"] {
        for _ in 0..5 {
            let (code, _, _) = sign_in(s, name, "not the password").await;
            assert_eq!(code, 401);
        }
        let (code, e, _) = sign_in(s, name, "a long passphrase").await;
        assert_eq!(
            (code, e["code"].as_str()),
            (429, Some("TOO_MANY_ATTEMPTS")),
            "{e}"
        );
        assert_eq!(e["retryAfter"], "900", "{e}");
    }
    clock.advance(std::time::Duration::from_secs(15 * 60));
    let (code, _, ann) = sign_in(s, "ann", "a long passphrase").await;
    assert_eq!(code, 200);
    assert!(ann.is_some());
    w.s.stop().await;
}

/// HTTPS on the API's own listener: the configured certificate is served, plain HTTP is
/// not answered, and the session cookie is `Secure`.
#[tokio::test]
async fn the_listener_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let clock = TestClock::at_default();
    let rest = format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert_file.display().to_string(),
        key_file.display().to_string()
    );
    let s = Server::start(&fresh_sqlite_url(), &clock, &rest).await;
    let https = s.base.replace("http://", "https://");
    let trusted = |token: Option<&str>| {
        let mut b = reqwest::Client::builder().add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
        );
        if let Some(t) = token {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
            v.set_sensitive(true);
            b = b.default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::AUTHORIZATION,
                v,
            )]));
        }
        b.build().unwrap()
    };
    let admin = trusted(Some(&s.token));
    let r = admin
        .get(format!("{https}/api/v1/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        s.http
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .is_err(),
        "plain HTTP is not answered"
    );
    let body = json!({"id": "sam", "role": "supervisor", "password": "a long passphrase"});
    let r = admin
        .post(format!("{https}/api/v1/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = trusted(None)
        .post(format!("{https}/api/v1/session"))
        .json(&json!({"user": "sam", "password": "a long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    s.stop().await;
}

/// Rate limits on the test clock: an address that keeps failing to authenticate is
/// refused before any lookup until the minute ends; a caller over its requests a second
/// is refused until the second ends. Both say when to come back.
#[tokio::test]
async fn rate_limits_refuse_floods_until_their_window_ends() {
    let clock = TestClock::at_default();
    let s = Server::start(
        &fresh_sqlite_url(),
        &clock,
        "[auth]\nfailed_auth_per_minute = 10\ncaller_requests_per_second = 5\n",
    )
    .await;
    // Move to the start of a minute, so both windows are whole.
    let into_minute = clock.now().as_second().rem_euclid(60) as u64;
    clock.advance(std::time::Duration::from_secs(60 - into_minute));

    let forged = client("wl_made-up");
    for _ in 0..10 {
        let (code, _) = s
            .call_with(&forged, Method::GET, "/api/v1/tasks", None)
            .await;
        assert_eq!(code, 401);
    }
    let r = forged
        .get(format!("{}/api/v1/tasks", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "TOO_MANY_REQUESTS", "{e}");
    let (code, _) = s.get("/api/v1/tasks").await;
    assert_eq!(code, 429, "the address, whatever it sends");
    let (code, _) = s.get("/healthz").await;
    assert_eq!(code, 200, "public routes stay open");
    clock.advance(std::time::Duration::from_secs(60));

    for i in 0..5 {
        let (code, _) = s.get("/api/v1/tasks").await;
        assert_eq!(code, 200, "request {i}");
    }
    let (code, e) = s.get("/api/v1/tasks").await;
    assert_eq!(
        (code, e["code"].as_str()),
        (429, Some("TOO_MANY_REQUESTS")),
        "{e}"
    );
    clock.advance(std::time::Duration::from_secs(1));
    let (code, _) = s.get("/api/v1/tasks").await;
    assert_eq!(code, 200, "a new second");
    s.stop().await;
}

macro_rules! on_both_stores {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::fresh_sqlite_url()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::fresh_postgres_url().await.unwrap()).await;
            })*
        }
    };
}

on_both_stores!(
    every_route_enforces_the_matrix,
    scopes_keep_callers_to_their_own_tasks,
    first_start_and_users,
    sessions_sign_in_csrf_expiry_and_throttle
);
