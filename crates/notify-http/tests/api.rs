//! The notifications API, driven through the CLI client against a real local server.

mod support;

use std::time::Duration;
use support::*;
use worklane_notify_http::cli::{
    execute, DeliveryArgs, ListArgs, NotificationsArgs, NotificationsCommand, ReplayArgs,
};

const T: Duration = Duration::from_secs(20);

/// Serves the API until the returned handle is awaited after cancelling `stop` (the
/// server holds an engine handle, which must go before the engine can drain).
async fn serve(
    engine: worklane_engine::Engine,
    targets: &[worklane_notify_http::NotificationTargetConfig],
    stop: tokio_util::sync::CancellationToken,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().nest(
        "/api/v1",
        worklane_notify_http::api::router(engine, targets),
    );
    let h = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap()
    });
    (url, h)
}

fn args(server: &str, command: NotificationsCommand) -> NotificationsArgs {
    NotificationsArgs {
        server: server.into(),
        command,
    }
}

fn list(target: &str, status: Option<&str>) -> NotificationsCommand {
    NotificationsCommand::List(ListArgs {
        target: target.into(),
        status: status.map(Into::into),
        task: None,
        after: None,
        limit: 100,
    })
}

#[tokio::test]
async fn list_show_resend_and_replay() {
    let rx = http_receiver().await;
    rx.behave(|_, n| {
        if n < 2 {
            Reply::Status(400)
        } else {
            Reply::Status(200)
        }
    });
    let mut wl = Worklane::fresh().await;
    let cfg = target("t", &rx.url, "");
    wl.notify(cfg.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let (server, api) = serve(wl.engine.clone(), &[cfg], stop.clone()).await;
    wl.create("a").await;
    wl.create("b").await;
    wait_for("both failed", T, || async {
        let d = wl.deliveries("t").await;
        d.len() == 2
            && d.iter()
                .all(|d| d.status == worklane_store::DeliveryStatus::Failed)
    })
    .await;

    let page = execute(
        &args(&server, list("t", Some("failed"))),
        &Default::default(),
    )
    .await
    .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["lastStatusCode"], 400);
    let id = items[0]["id"].as_i64().unwrap();

    let show = NotificationsCommand::Show(DeliveryArgs {
        target: "t".into(),
        id,
    });
    let detail = execute(&args(&server, show), &Default::default())
        .await
        .unwrap();
    assert_eq!(detail["attempts"][0]["statusCode"], 400);
    assert!(detail["attempts"][0]["latencyUs"].as_i64().unwrap() > 0);
    assert_eq!(detail["body"]["message_guid"], detail["guid"]);

    let resend = NotificationsCommand::Resend(DeliveryArgs {
        target: "t".into(),
        id,
    });
    let r = execute(&args(&server, resend), &Default::default())
        .await
        .unwrap();
    assert_eq!(r["status"], "pending");
    wait_for("resent one delivered", T, || async {
        wl.engine
            .deliveries()
            .get_delivery(id)
            .await
            .unwrap()
            .unwrap()
            .status
            == worklane_store::DeliveryStatus::Delivered
    })
    .await;

    // Delivered at its first attempt: stored without its body, shown rendered again,
    // byte for byte what was sent, with the delivering attempt.
    wl.create("c").await;
    wait_for("c delivered", T, || async {
        let d = wl.deliveries("t").await;
        d.len() == 3 && d[2].status == worklane_store::DeliveryStatus::Delivered
    })
    .await;
    let c = wl.deliveries("t").await.remove(2);
    let show = NotificationsCommand::Show(DeliveryArgs {
        target: "t".into(),
        id: c.id,
    });
    let detail = execute(&args(&server, show), &Default::default())
        .await
        .unwrap();
    let sent = rx
        .got()
        .into_iter()
        .find(|r| r.json["message_guid"] == c.guid.as_str())
        .unwrap();
    assert_eq!(detail["body"], sent.json);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["statusCode"], 200);
    assert!(attempts[0].get("id").is_none());

    // Replay from the first event: every notification goes out again, same GUIDs and
    // bodies (c's rendered again from its event).
    let replay = NotificationsCommand::Replay(ReplayArgs {
        target: "t".into(),
        from_seq: 1,
    });
    let r = execute(&args(&server, replay), &Default::default())
        .await
        .unwrap();
    assert_eq!(r["reset"], 3);
    wait_for("replayed", T, || async {
        wl.all_delivered("t", 3).await
            && rx
                .got()
                .iter()
                .filter(|r| r.json["message_guid"] == c.guid.as_str())
                .count()
                == 2
    })
    .await;
    let got = rx.got();
    let guids: std::collections::HashSet<String> = got
        .iter()
        .map(|r| r.json["message_guid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(guids.len(), 3);
    let c_bodies: Vec<_> = got
        .iter()
        .filter(|r| r.json["message_guid"] == c.guid.as_str())
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        c_bodies[0], c_bodies[1],
        "a resent body is the one first sent"
    );

    // Errors have the API's shape.
    let missing = NotificationsCommand::Show(DeliveryArgs {
        target: "t".into(),
        id: 999_999,
    });
    let e = execute(&args(&server, missing), &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("404") && e.contains("DELIVERY_NOT_FOUND"), "{e}");
    // Held (a busy task's notifications behind its one in flight) is a filter too.
    let held = execute(&args(&server, list("t", Some("held"))), &Default::default())
        .await
        .unwrap();
    assert_eq!(held["items"].as_array().map(Vec::len), Some(0), "{held}");
    let bad = execute(&args(&server, list("t", Some("lost"))), &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("INVALID_FORMAT"), "{bad}");
    stop.cancel();
    api.await.unwrap();
    wl.stop().await;
}

/// A store failure answers 500 INTERNAL_ERROR with a generic message: the store's own
/// error (here SQLite's, naming the table) stays in the server's log.
#[tokio::test]
async fn store_failure_answers_internal_error_without_details() {
    use sqlx::{Connection, Executor};
    let wl = Worklane::fresh().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (server, api) = serve(wl.engine.clone(), &[], stop.clone()).await;
    let mut c = sqlx::SqliteConnection::connect(&wl.url).await.unwrap();
    c.execute("DROP TABLE delivery_attempts").await.unwrap();
    c.execute("DROP TABLE deliveries").await.unwrap();
    c.close().await.unwrap();

    let r = reqwest::get(format!("{server}/api/v1/notifications/t/deliveries"))
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "code": "INTERNAL_ERROR",
            "message": "internal error; the server's log has the details",
            "parameters": [],
        })
    );
    stop.cancel();
    api.await.unwrap();
    wl.stop().await;
}

#[tokio::test]
async fn replay_notifies_events_from_before_the_target_existed() {
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    let a = wl.create("a").await;
    wl.create("b").await;
    // A target that starts at the end of the log does not see the old events...
    let mut cfg = target("late", &rx.url, "");
    cfg.start_at = worklane_notify_http::StartAt::Now;
    wl.notify(cfg);
    wait_for("cursor created", T, || async {
        wl.engine.events().cursor("notify:late").await.unwrap() > 0
    })
    .await;
    wl.update(a, "k", "v").await;
    wait_for("the new event only", T, || wl.all_delivered("late", 1)).await;
    // ...until it is replayed from the first event.
    wl.engine
        .deliveries()
        .request_replay("late", 1, wl.now())
        .await
        .unwrap();
    wait_for("old events delivered", T, || wl.all_delivered("late", 3)).await;
    assert_eq!(
        rx.count(),
        4,
        "the update's notification went out twice (replayed)"
    );
    wl.stop().await;
}

/// Every answer of the notifications API is in the error shape: a bad delivery id, a
/// path that is not UTF-8, a method the route does not have, a body that is not JSON; a
/// replay for a target that is not configured is 404 and starts nothing.
#[tokio::test]
async fn bad_requests_answer_in_the_error_shape() {
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    let cfg = target("t", &rx.url, "");
    wl.notify(cfg.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let (server, api) = serve(wl.engine.clone(), &[cfg], stop.clone()).await;
    let http = reqwest::Client::new();
    let base = format!("{server}/api/v1/notifications");
    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{ct}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], code, "{v}");
        assert!(
            v["parameters"].is_array() && v["message"].is_string(),
            "{v}"
        );
    };
    for bad in ["abc", "+1", "%201", "0", "99999999999999999999"] {
        let r = http.get(format!("{base}/t/deliveries/{bad}")).send();
        check(r.await.unwrap(), 400, "INVALID_FORMAT").await;
        let r = http
            .post(format!("{base}/t/deliveries/{bad}/resend"))
            .send();
        check(r.await.unwrap(), 400, "INVALID_FORMAT").await;
    }
    let r = http.get(format!("{base}/%FF/deliveries")).send();
    check(r.await.unwrap(), 400, "INVALID_FORMAT").await;
    let r = http.delete(format!("{base}/t/replay")).send();
    check(r.await.unwrap(), 405, "METHOD_NOT_ALLOWED").await;
    let r = http
        .post(format!("{base}/t/replay"))
        .header("content-type", "text/plain")
        .body(r#"{"fromSeq":1}"#)
        .send();
    check(r.await.unwrap(), 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let r = http
        .post(format!("{base}/nope/replay"))
        .json(&serde_json::json!({"fromSeq": 1}))
        .send();
    check(r.await.unwrap(), 404, "TARGET_NOT_FOUND").await;
    assert!(wl.deliveries("nope").await.is_empty());
    let r = http
        .post(format!("{base}/t/replay"))
        .json(&serde_json::json!({"fromSeq": 1}))
        .send();
    assert_eq!(r.await.unwrap().status().as_u16(), 202);
    let long = "x".repeat(10_000);
    let r = http
        .get(format!("{base}/t/deliveries?status={long}"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().chars().count() <= 201, "{v}");
    stop.cancel();
    api.await.unwrap();
    wl.stop().await;
}
