//! The REST API end to end, on both stores: every rule of SPEC section 2, errors, listing,
//! the event log and SSE, health, metrics and OpenAPI.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_api::{metrics_handle, router, serve, ApiOptions, AppState, AppStateParts};
use worklane_domain::Command;
use worklane_domain::{Action, ActionMeta, BrokerId, Classification, Status, TaskRef, Timestamp};
use worklane_engine::{Engine, EngineOptions, Processor};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url};

struct TestApp {
    base: String,
    http: reqwest::Client,
    engine: Engine,
    shutdown: CancellationToken,
}

impl TestApp {
    async fn start(store_url: &str) -> Self {
        let store = worklane_store::connect(store_url).await.unwrap();
        let (engine, _writer) = Engine::start(store, EngineOptions::default())
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let state = AppState::new(AppStateParts {
            reload: None,
            agent_channels: Default::default(),
            engine: engine.clone(),
            metrics: metrics_handle(),
            shutdown: shutdown.clone(),
            health: Default::default(),
            // SPEC 2's rules are the subject here; who may call is tested by the role
            // matrix (crates/server/tests/access.rs) and the fuzzer (tests/fuzz.rs).
            auth: worklane_api::auth::Auth::new(worklane_api::auth::AuthMode::Off),
        });
        let app = router(
            state,
            &ApiOptions {
                max_body_bytes: 64 * 1024,
            },
            axum::Router::new(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, app, shutdown.clone()));
        Self {
            base,
            http: reqwest::Client::new(),
            engine,
            shutdown,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as is, with `content_type` when given; answers the status, the body as
    /// JSON (Null when it is not JSON) and the response's Content-Type.
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value, String) {
        let mut r = self
            .http
            .request(method, self.url(path))
            .body(body.to_owned());
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        let r = r.send().await.unwrap();
        let s = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (s, r.json().await.unwrap_or(Value::Null), ct)
    }

    async fn create(&self, body: Value) -> i64 {
        let (s, v) = self.post("/api/v1/tasks", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["brokerId"].as_i64().unwrap()
    }

    async fn status_of(&self, id: i64) -> String {
        self.get(&format!("/api/v1/tasks/{id}")).await.1["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn internal(&self, id: i64, action: Action) {
        self.engine
            .execute(Command::act(
                TaskRef::Broker(BrokerId(id)),
                action,
                ActionMeta::default(),
            ))
            .await
            .unwrap();
    }

    /// Drives a new task into `status` (REST where the API can, the engine for internal steps).
    async fn task_in(&self, status: Status) -> i64 {
        use Status::*;
        let hold = status == NewHeld;
        let id = self.create(json!({"hold": hold})).await;
        let classify = || Action::Classify(Classification::default());
        let prioritize = || Action::Prioritize(Default::default());
        match status {
            New | NewHeld => {}
            Captured => self.internal(id, classify()).await,
            Rejected => {
                self.internal(id, classify()).await;
                self.internal(id, Action::Reject).await;
            }
            ErrorHeld => {
                self.internal(
                    id,
                    Action::ErrorHold {
                        error: "no rule matched".into(),
                    },
                )
                .await
            }
            _ => {
                self.internal(id, classify()).await;
                self.internal(id, prioritize()).await;
                match status {
                    Queued => {}
                    Distributed | Assigned | Completed => {
                        let dist = Action::Distribute {
                            distribution_id: format!("d{id}"),
                            distribution_point_id: "DP".into(),
                        };
                        self.internal(id, dist).await;
                        if status != Distributed {
                            self.post(
                                &format!("/api/v1/tasks/{id}/assign"),
                                json!({"assignedToUser": "agent1"}),
                            )
                            .await;
                        }
                        if status == Completed {
                            self.post(&format!("/api/v1/tasks/{id}/complete"), json!({}))
                                .await;
                        }
                    }
                    Held => {
                        self.post(&format!("/api/v1/tasks/{id}/hold"), json!({}))
                            .await;
                    }
                    Canceled => {
                        self.post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
                            .await;
                    }
                    _ => unreachable!(),
                }
            }
        }
        assert_eq!(self.status_of(id).await, status.as_str());
        id
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// SPEC section 2: (action, from) → Ok(new status) or Err((http status, code)).
fn rule(action: &str, from: Status) -> Result<&'static str, (u16, &'static str)> {
    use Status::*;
    let movable = [New, NewHeld, Captured, Queued, Distributed, Held, ErrorHeld];
    match action {
        "hold" if matches!(from, New | Captured | Queued | Distributed) => Ok("Held"),
        "hold" => Err((409, "CANNOT_HOLD_ASSIGNED_TASK")),
        "resume" if matches!(from, NewHeld | ErrorHeld) => Ok("New"),
        "resume" if from == Held => Ok("Queued"),
        "resume" => Err((409, "CANNOT_RESUME_TASK")),
        "restart" if movable.contains(&from) => Ok("New"),
        "restart" => Err((409, "CANNOT_RESTART_TASK")),
        "cancel" if movable.contains(&from) => Ok("Canceled"),
        "cancel" => Err((409, "CANNOT_CANCEL_COMPLETED_TASK")),
        "complete" if from.is_final() => Err((409, "CANNOT_COMPLETE_TASK")),
        "complete" => Ok("Completed"),
        "assign" if matches!(from, Queued | Distributed) => Ok("Assigned"),
        "assign" => Err((409, "CANNOT_ASSIGN_TASK")),
        _ => unreachable!(),
    }
}

async fn every_action_from_every_status(app: TestApp) {
    for action in ["hold", "resume", "restart", "cancel", "complete", "assign"] {
        for from in Status::ALL {
            let id = app.task_in(from).await;
            let body = if action == "assign" {
                json!({"assignedToUser": "a2"})
            } else {
                json!({"actor": "sup", "reason": "test"})
            };
            let (s, v) = app
                .post(&format!("/api/v1/tasks/{id}/{action}"), body)
                .await;
            match rule(action, from) {
                Ok(to) => {
                    assert_eq!(s, StatusCode::OK, "{action} from {from}: {v}");
                    assert_eq!(v["status"], to, "{action} from {from}");
                }
                Err((code, name)) => {
                    assert_eq!(s.as_u16(), code, "{action} from {from}: {v}");
                    assert_eq!(v["code"], name, "{action} from {from}");
                    assert!(v["parameters"]
                        .as_array()
                        .unwrap()
                        .contains(&json!(format!("BrokerId={id}"))));
                    assert_eq!(
                        app.status_of(id).await,
                        from.as_str(),
                        "a refusal changes nothing"
                    );
                }
            }
        }
    }
    // Update is allowed from any status and changes only the given attributes.
    for from in Status::ALL {
        let id = app.task_in(from).await;
        let r = app
            .http
            .patch(app.url(&format!("/api/v1/tasks/{id}")))
            .json(&json!({"category": "Followup", "data": {"k": "v"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "update from {from}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["category"], "Followup");
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(v["status"], from.as_str());
    }
    // Every action on a missing task: 404 TASK_NOT_FOUND.
    for action in ["hold", "resume", "restart", "cancel", "complete"] {
        let (s, v) = app
            .post(&format!("/api/v1/tasks/99999999/{action}"), json!({}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["code"], "TASK_NOT_FOUND");
        assert_eq!(v["parameters"][0], "BrokerId=99999999");
    }
    let r = app
        .http
        .patch(app.url("/api/v1/tasks/99999999"))
        .json(&json!({"priority": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn create_and_get(app: TestApp) {
    let r = app
        .http
        .post(app.url("/api/v1/tasks"))
        .header("x-request-id", "req-123")
        .json(&json!({
            "captureId": "case-1", "channel": "Fax", "category": "Claim", "priority": 7,
            "businessValue": 100, "processId": "P1", "dueDateTime": "2030-01-02T10:00:00+02:00",
            "ext": {"customerID": "C9", "sourceCreatedDateTime": "2029-12-31T23:00:00Z"},
            "data": {"Region": "North"}, "actor": "crm", "reason": "new claim"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["x-request-id"], "req-123");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let t: Value = r.json().await.unwrap();
    assert_eq!(loc, format!("/api/v1/tasks/{}", t["brokerId"]));
    assert_eq!(t["status"], "New");
    assert_eq!(t["capturePointId"], "REST");
    assert_eq!(t["dueDateTime"], "2030-01-02T08:00:00Z", "UTC on output");
    assert_eq!(t["ext"]["customerID"], "C9");
    let (s, got) = app.get(&loc).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, t);
    // The event carries the request's id and the actor.
    let (_, evs) = app.get(&format!("{loc}/events")).await;
    assert_eq!(evs[0]["eventType"], "TaskCreated");
    assert_eq!(evs[0]["requestId"], "req-123");
    assert_eq!(evs[0]["actor"], "crm");
    assert_eq!(evs[0]["reason"], "new claim");
    // Without a captureId it is the brokerId; a generated request id is echoed.
    let r = app
        .http
        .post(app.url("/api/v1/tasks"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["captureId"], t["brokerId"].to_string());
}

async fn duplicate_create_is_refused_with_the_existing_id(app: TestApp) {
    let id = app
        .create(json!({"captureId": "dup-1", "capturePointId": "CRM"}))
        .await;
    let (s, v) = app
        .post(
            "/api/v1/tasks",
            json!({"captureId": "dup-1", "capturePointId": "CRM"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["code"], "TASK_ALREADY_CAPTURED");
    assert!(
        v["parameters"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("BrokerId={id}"))),
        "{v}"
    );
    // The create is REST's request, made in CRM's name.
    let (_, evs) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
    assert_eq!(evs[0]["origin"], "REST");
    assert_eq!(evs[0]["actor"], "CRM");
    // Same captureId in another capture point is another task.
    app.create(json!({"captureId": "dup-1", "capturePointId": "OTHER"}))
        .await;
}

async fn bad_input_names_the_field(app: TestApp) {
    let cases = [
        (json!({"captureId": "x".repeat(65)}), "captureId"),
        (json!({"priority": 2147483648_i64}), "priority"),
        (json!({"businessValue": -2147483648_i64}), "businessValue"),
        (json!({"dueDateTime": "tomorrow"}), "dueDateTime"),
        (json!({"channel": "c".repeat(33)}), "channel"),
        (json!({"data": {"k": "v".repeat(256)}}), "data.k"),
        (
            json!({"ext": {"productType": "p".repeat(65)}}),
            "ext.productType",
        ),
        (json!({"priority": "high"}), "priority"),
        (
            json!({"capturePointId": "a-very-long-capture-point"}),
            "capturePointId",
        ),
        (json!({"prority": 1}), "prority"),
    ];
    for (body, field) in cases {
        let (s, v) = app.post("/api/v1/tasks", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["code"], "INVALID_FORMAT", "{body}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let r = app
        .http
        .post(app.url("/api/v1/tasks"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "INVALID_FORMAT");
    let big = json!({"data": {"k": "v".repeat(100 * 1024)}});
    let (s, v) = app.post("/api/v1/tasks", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["code"], "PAYLOAD_TOO_LARGE");
    let (s, v) = app.get("/api/v1/tasks/abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "INVALID_FORMAT");
    let (s, v) = app.get("/api/v1/tasks?status=Sleeping").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("status"));
    let (s, _) = app.get("/api/v1/tasks?limit=abc").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = app.post("/api/v1/tasks/1/assign", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("assignedToUser"),
        "{v}"
    );
    // Nothing of the refused requests was written.
    let (_, page) = app.get("/api/v1/tasks").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 0);
}

async fn processing_waits_for_activation(app: TestApp) {
    let later = Timestamp::now() + Duration::from_secs(3600);
    let ready = app.create(json!({})).await;
    let waiting = app
        .create(json!({"activationDateTime": later.to_string()}))
        .await;
    let processor = Processor::new(app.engine.clone());
    processor.step(Timestamp::now()).await.unwrap();
    assert_eq!(app.status_of(ready).await, "Queued");
    assert_eq!(app.status_of(waiting).await, "New");
    // Processing decides on the engine's clock, against the task as it loads it: a pass
    // queues the task once its activation is behind that clock.
    let past = Timestamp::now() - Duration::from_secs(1);
    app.internal(
        waiting,
        Action::Update(worklane_domain::TaskFields {
            activation_date_time: Some(past),
            ..Default::default()
        }),
    )
    .await;
    processor.step(Timestamp::now()).await.unwrap();
    assert_eq!(app.status_of(waiting).await, "Queued");
    let (_, evs) = app.get(&format!("/api/v1/tasks/{ready}/events")).await;
    let types: Vec<_> = evs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["TaskCreated", "TaskCaptured", "TaskQueued"]);
    assert_eq!(evs[1]["actor"], "processor");
}

async fn listing_filters_and_pages(app: TestApp) {
    let processor = Processor::new(app.engine.clone());
    let mut ids = vec![];
    for (i, p) in [3, 9, 1, 9, 5].into_iter().enumerate() {
        ids.push(app.create(json!({"priority": p, "processId": if i % 2 == 0 { "even" } else { "odd" }, "capturePointId": "LIST"})).await);
    }
    processor.step(Timestamp::now()).await.unwrap();
    let (_, p1) = app
        .get("/api/v1/tasks?status=Queued&capturePointId=LIST&sort=priority&limit=2")
        .await;
    let prios: Vec<_> = p1["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(prios, [9, 9]);
    assert_eq!(p1["tasks"][0]["brokerId"], ids[1], "ties: oldest first");
    let after = p1["nextAfter"].as_str().unwrap();
    let (_, p2) = app
        .get(&format!(
            "/api/v1/tasks?status=Queued&capturePointId=LIST&sort=priority&limit=2&after={after}"
        ))
        .await;
    let prios: Vec<_> = p2["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(prios, [5, 3]);
    let after = p2["nextAfter"].as_str().unwrap();
    let (_, p3) = app
        .get(&format!(
            "/api/v1/tasks?status=Queued&capturePointId=LIST&sort=priority&limit=2&after={after}"
        ))
        .await;
    assert_eq!(p3["tasks"].as_array().unwrap().len(), 1);
    assert!(p3.get("nextAfter").is_none());
    let (_, odd) = app.get("/api/v1/tasks?processId=odd").await;
    assert_eq!(odd["tasks"].as_array().unwrap().len(), 2);
    app.post(
        &format!("/api/v1/tasks/{}/assign", ids[0]),
        json!({"assignedToUser": "mia"}),
    )
    .await;
    let (_, mine) = app.get("/api/v1/tasks?assignedToUser=mia").await;
    assert_eq!(mine["tasks"][0]["brokerId"], ids[0]);
    let (_, by_cid) = app
        .get(&format!(
            "/api/v1/tasks?capturePointId=LIST&captureId={}",
            ids[2]
        ))
        .await;
    assert_eq!(by_cid["tasks"][0]["brokerId"], ids[2]);
}

async fn event_log_pages_and_streams(app: TestApp) {
    let id = app.create(json!({})).await;
    app.post(&format!("/api/v1/tasks/{id}/hold"), json!({}))
        .await;
    app.post(&format!("/api/v1/tasks/{id}/cancel"), json!({}))
        .await;
    let (_, page) = app.get("/api/v1/events?after=0&limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let last = page["last"].as_i64().unwrap();
    let (_, rest) = app.get(&format!("/api/v1/events?after={last}")).await;
    assert_eq!(rest["events"][0]["eventType"], "TaskCanceled");
    // SSE: resume after the first event with Last-Event-ID, read the next two.
    let first = page["events"][0]["seq"].as_i64().unwrap();
    let mut resp = app
        .http
        .get(app.url("/api/v1/events/stream"))
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches("\n\n").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("event: TaskHeld"), "{text}");
    assert!(text.contains("event: TaskCanceled"), "{text}");
    assert!(!text.contains("event: TaskCreated"), "{text}");
    // A new event reaches the open stream.
    app.create(json!({"captureId": "live"})).await;
    while !text.contains("\"captureId\":\"live\"") {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("live event in time")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn health_metrics_openapi(app: TestApp) {
    let (s, v) = app.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    app.create(json!({})).await;
    let m = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("worklane_http_requests_total"), "{m}");
    let (s, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/tasks"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/tasks/{brokerId}/assign"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Task"].is_object());
    let (s, v) = app.get("/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "NOT_FOUND");
}

/// A store that stops answering (its PostgreSQL database dropped under the server):
/// `/healthz` answers 503 in the standard error body, and nothing of the store's error
/// (the database's name, the server's message) reaches the caller.
#[tokio::test]
async fn health_of_a_lost_store_is_store_unavailable_without_details() {
    use sqlx::{Connection, Executor};
    let url = fresh_postgres_url().await.unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let app = TestApp::start(&url).await;
    let (s, v) = app.get("/healthz").await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("ok")));

    let mut admin = sqlx::PgConnection::connect(&worklane_store::testing::postgres_admin_url())
        .await
        .unwrap();
    // FORCE ends the server's open connections, so the next check must connect anew.
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();

    let (s, v) = app.get("/healthz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        v,
        json!({"code": "STORE_UNAVAILABLE", "message": "the store does not answer", "parameters": []})
    );
    let text = v.to_string();
    assert!(!text.contains(&name) && !text.contains("exist"), "{text}");
}

/// Asserts the standard error body with `status` and `code`; answers its message.
fn error_shape(got: &(StatusCode, Value, String), status: StatusCode, code: &str) -> String {
    let (s, v, ct) = got;
    assert_eq!(*s, status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert!(v["parameters"].is_array(), "{v}");
    v["message"].as_str().unwrap().to_owned()
}

/// The body of create and update is required: an empty one would write an empty
/// TaskUpdated event. An action's body stays optional.
async fn missing_body_is_refused_on_create_and_update(app: TestApp) {
    use reqwest::Method;
    let json = Some("application/json");
    for ct in [None, json] {
        let got = app.raw(Method::POST, "/api/v1/tasks", ct, "").await;
        let m = error_shape(&got, StatusCode::BAD_REQUEST, "INVALID_FORMAT");
        assert!(m.contains("body"), "{m}");
    }
    let id = app.create(json!({})).await;
    let path = format!("/api/v1/tasks/{id}");
    let got = app.raw(Method::PATCH, &path, json, " ").await;
    error_shape(&got, StatusCode::BAD_REQUEST, "INVALID_FORMAT");
    let events = app.get(&format!("/api/v1/tasks/{id}/events")).await.1;
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let (s, v, _) = app
        .raw(Method::POST, &format!("{path}/hold"), None, "")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Only `application/json` bodies (parameters allowed) are read; anything else is 415.
async fn body_must_be_application_json(app: TestApp) {
    use reqwest::Method;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let got = app.raw(Method::POST, "/api/v1/tasks", Some(ct), "{}").await;
        error_shape(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
    let got = app.raw(Method::POST, "/api/v1/tasks", None, "{}").await;
    error_shape(
        &got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    for ct in ["application/json; charset=utf-8", "Application/JSON"] {
        let (s, v, _) = app.raw(Method::POST, "/api/v1/tasks", Some(ct), "{}").await;
        assert_eq!(s, StatusCode::CREATED, "{ct}: {v}");
    }
}

/// One JSON value, with each key once: trailing data and duplicate keys are refused.
async fn trailing_data_and_duplicate_keys_are_refused(app: TestApp) {
    use reqwest::Method;
    let json = Some("application/json");
    let got = app
        .raw(
            Method::POST,
            "/api/v1/tasks",
            json,
            r#"{"captureId":"a"}{"x":1}"#,
        )
        .await;
    error_shape(&got, StatusCode::BAD_REQUEST, "INVALID_FORMAT");
    for (body, key) in [
        (r#"{"priority":1,"priority":9}"#, "priority"),
        (r#"{"data":{"k":"a","k":"b"}}"#, "\"k\""),
    ] {
        let got = app.raw(Method::POST, "/api/v1/tasks", json, body).await;
        let m = error_shape(&got, StatusCode::BAD_REQUEST, "INVALID_FORMAT");
        assert!(m.contains("duplicate") && m.contains(key), "{m}");
    }
    let (_, page) = app.get("/api/v1/tasks").await;
    assert_eq!(page["tasks"].as_array().unwrap().len(), 0);
}

/// Path ids are plain decimal digits; a path that is not UTF-8 is a 400 in the error shape.
async fn path_ids_are_plain_digits(app: TestApp) {
    let id = app.create(json!({})).await;
    for bad in [
        format!("+{id}"),
        format!("%20{id}"),
        format!("{id}%20"),
        "-1".into(),
        "0".into(),
    ] {
        let (s, v) = app.get(&format!("/api/v1/tasks/{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["code"], "INVALID_FORMAT", "{bad}");
    }
    let (s, _) = app.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let got = app
        .raw(reqwest::Method::GET, "/api/v1/tasks/%FF%FE", None, "")
        .await;
    error_shape(&got, StatusCode::BAD_REQUEST, "INVALID_FORMAT");
}

/// Characters XML cannot carry are refused in every string attribute; an identifier
/// refuses every control character.
async fn characters_xml_cannot_carry_are_refused(app: TestApp) {
    for (body, field) in [
        (json!({"captureId": "a\u{1}b"}), "captureId"),
        (json!({"captureId": "a\tb"}), "captureId"),
        (json!({"captureId": "a\u{FFFE}"}), "captureId"),
        (json!({"captureId": "a\u{FFFF}"}), "captureId"),
        (json!({"category": "x\u{0}"}), "category"),
        (json!({"data": {"k": "v\u{1B}"}}), "data.k"),
        (json!({"reason": "r\u{FFFF}"}), "reason"),
        (
            json!({"capturePointId": "c\u{7}", "actor": "a"}),
            "capturePointId",
        ),
    ] {
        let (s, v) = app.post("/api/v1/tasks", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(field), "{v}");
    }
    // Text attributes keep the whitespace XML carries.
    app.create(json!({"reason": "line one\nline two\ttab", "data": {"k": "a\r\nb"}}))
        .await;
}

/// Every answer keeps the error shape: 405, and a long input is not echoed in full.
async fn errors_keep_their_shape_and_stay_short(app: TestApp) {
    use reqwest::Method;
    let got = app.raw(Method::DELETE, "/api/v1/tasks", None, "").await;
    error_shape(&got, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let got = app.raw(Method::PUT, "/api/v1/tasks/1", None, "").await;
    error_shape(&got, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    let long = "9".repeat(50_000);
    // An unknown attribute's name is quoted in the message.
    let mut body = serde_json::Map::new();
    body.insert(long.clone(), json!(1));
    let (s, v) = app.post("/api/v1/tasks", Value::Object(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.chars().count() <= 201 && m.ends_with('…'), "{m}");
    let (s, v) = app.get(&format!("/api/v1/tasks?status={long}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().chars().count() <= 201, "{v}");
}

/// Too many or too large headers are answered 431 in the error shape, not hyper's empty body.
async fn oversized_headers_keep_the_error_shape(app: TestApp) {
    let answer = |r: reqwest::RequestBuilder| async move {
        let r = r.send().await.unwrap();
        let s = r.status();
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        (s, r.json::<Value>().await.unwrap_or(Value::Null), ct)
    };
    let mut many = app.http.get(app.url("/api/v1/tasks"));
    for i in 0..150 {
        many = many.header(format!("x-h{i}"), "v");
    }
    let got = answer(many).await;
    error_shape(
        &got,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "HEADERS_TOO_LARGE",
    );
    let big = app
        .http
        .get(app.url("/api/v1/tasks"))
        .header("x-big", "b".repeat(100 * 1024));
    let got = answer(big).await;
    error_shape(
        &got,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "HEADERS_TOO_LARGE",
    );
    // The connection pool still works afterwards.
    let (s, _) = app.get("/api/v1/tasks").await;
    assert_eq!(s, StatusCode::OK);
}

/// Every `$ref` in `v` names a schema of the document.
fn assert_refs_resolve(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                assert!(doc["components"]["schemas"][name].is_object(), "{r}");
            }
            m.values().for_each(|x| assert_refs_resolve(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| assert_refs_resolve(doc, x)),
        _ => {}
    }
}

/// The document states what the server does: limits, timestamp formats, closed flat
/// bodies, which bodies are required, and every status each route answers.
async fn the_document_tells_the_truth(app: TestApp) {
    let (_, doc) = app.get("/api/v1/openapi.json").await;
    assert_refs_resolve(&doc, &doc);
    assert!(!doc.to_string().contains("allOf"));
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let param = |o: &Value, name: &str| {
        o["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    for path in ["/api/v1/tasks", "/api/v1/events"] {
        let limit = param(&op(path, "get"), "limit");
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&json!(1), &json!(1000))
        );
    }
    // Values the document allows are accepted: integers with a zero fraction, either
    // cursor form in either order (a bare brokerId in priority order names a task).
    let id = app.create(json!({"priority": 7.0})).await;
    let (_, t) = app.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(t["priority"], 7);
    for q in [
        format!("sort=brokerId&after=7:{id}"),
        format!("sort=priority&after={id}"),
    ] {
        let (s, v) = app.get(&format!("/api/v1/tasks?{q}")).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
    }
    let (s, v) = app.get("/api/v1/tasks?sort=priority&after=99999999").await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::NOT_FOUND, &json!("TASK_NOT_FOUND"))
    );
    let (s, _) = app.get("/api/v1/tasks?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        param(&op("/api/v1/tasks", "get"), "dueBefore")["format"],
        "date-time"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Task"]["properties"]["createdDateTime"]["format"],
        "date-time"
    );
    assert_eq!(
        schemas["Event"]["properties"]["eventDateTime"]["format"],
        "date-time"
    );
    for body in ["CreateTaskBody", "UpdateTaskBody"] {
        let b = &schemas[body];
        assert_eq!(b["additionalProperties"], false, "{body}");
        for attr in ["captureId", "reason", "actor", "actionDateTime", "data"] {
            assert!(b["properties"][attr].is_object(), "{body}.{attr}");
        }
        let due = b["properties"]["dueDateTime"].to_string();
        assert!(due.contains("date-time"), "{due}");
    }
    assert!(schemas["CreateTaskBody"]["properties"]["hold"].is_object());
    // Required bodies where the server requires them; an action's body is optional.
    for (path, method, required) in [
        ("/api/v1/tasks", "post", true),
        ("/api/v1/tasks/{brokerId}", "patch", true),
        ("/api/v1/tasks/{brokerId}/assign", "post", true),
        ("/api/v1/tasks/{brokerId}/{action}", "post", false),
    ] {
        let body = &op(path, method)["requestBody"];
        assert_eq!(
            body["required"].as_bool().unwrap_or(false),
            required,
            "{path}"
        );
        assert!(body["content"]["application/json"]["schema"]["$ref"].is_string());
    }
    let statuses = |path: &str, method: &str| -> Vec<String> {
        op(path, method)["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let with_body = ["400", "413", "415", "503"];
    for (path, method) in [
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/{brokerId}", "patch"),
        ("/api/v1/tasks/{brokerId}/assign", "post"),
        ("/api/v1/tasks/{brokerId}/{action}", "post"),
    ] {
        let got = statuses(path, method);
        for s in with_body {
            assert!(got.contains(&s.to_owned()), "{method} {path}: {got:?}");
        }
    }
    for (path, method) in [
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks/{brokerId}", "get"),
        ("/api/v1/tasks/{brokerId}/events", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/stream", "get"),
    ] {
        assert!(statuses(path, method).contains(&"400".to_owned()), "{path}");
    }
}

macro_rules! on_both_stores {
    ($($name:ident),*) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::TestApp::start(&super::fresh_sqlite_url()).await).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::TestApp::start(&super::fresh_postgres_url().await.unwrap()).await).await; } )*
        }
    };
}

on_both_stores!(
    every_action_from_every_status,
    create_and_get,
    duplicate_create_is_refused_with_the_existing_id,
    bad_input_names_the_field,
    processing_waits_for_activation,
    listing_filters_and_pages,
    event_log_pages_and_streams,
    health_metrics_openapi,
    missing_body_is_refused_on_create_and_update,
    body_must_be_application_json,
    trailing_data_and_duplicate_keys_are_refused,
    path_ids_are_plain_digits,
    characters_xml_cannot_carry_are_refused,
    errors_keep_their_shape_and_stay_short,
    the_document_tells_the_truth,
    oversized_headers_keep_the_error_shape
);
