//! Delivery against real local receivers: retries, Retry-After, timeouts, final
//! failures, redirects, order per task, a dead target beside a healthy one, a restart.
//!
//! Retry times are on the engine's test clock: a test moves it to make a retry due, and
//! with the targets' backoff of [`BACKOFF`] a test that forgot to would time out.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::*;
use worklane_domain::{Action, BrokerId};
use worklane_store::DeliveryStatus;

const T: Duration = Duration::from_secs(20);

#[tokio::test]
async fn retries_are_byte_identical_with_the_guid_in_body_and_etag() {
    let rx = http_receiver().await;
    rx.behave(|_, n| {
        if n < 2 {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "crm",
        &rx.url,
        "http_custom_headers = { \"X-Api-Key\" = \"k-123\" }\n\
         [events.TaskCreated]\nnotify_params = [\"brokerId\", \"captureId\"]\n\
         notify_custom = { source = \"worklane\" }\n",
    ));
    let id = wl.create("case-1").await;
    // Each failure's retry comes due when the clock reaches it: the first after at most
    // BACKOFF, the second after at most twice that.
    wl.pending_after("crm", 1).await;
    wl.advance(BACKOFF);
    wl.pending_after("crm", 2).await;
    wl.advance(2 * BACKOFF);
    wait_for("delivered", T, || wl.all_delivered("crm", 1)).await;
    assert_eq!(rx.count(), 3);
    let got = rx.got();
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every retry byte-identical"
    );
    let body = &got[0].json;
    assert_eq!(body["event_id"], "TaskCreated");
    assert_eq!(body["brokerId"], id.0);
    assert_eq!(body["captureId"], "case-1");
    assert_eq!(body["source"], "worklane");
    let guid = body["message_guid"].as_str().unwrap();
    for r in &got {
        assert_eq!(r.headers["etag"], guid);
        assert_eq!(r.headers["x-api-key"], "k-123");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let d = &wl.deliveries("crm").await[0];
    assert_eq!(d.guid, guid);
    let attempts = wl
        .engine
        .deliveries()
        .delivery_attempts(d.id)
        .await
        .unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    assert!(attempts.iter().all(|a| a.latency_us > 0));
    assert!(attempts[0].error.as_deref().unwrap().contains("500"));
    wl.stop().await;
}

/// Retry-After, in seconds or as an HTTP date, replaces the backoff: the retry is stored
/// for exactly that time on the clock (the backoff would be at most [`BACKOFF`], jittered).
#[tokio::test]
async fn retry_after_is_honoured() {
    let mut wl = Worklane::fresh().await;
    let rx = http_receiver().await;
    // Four minutes after the clock's start, as a receiver whose clock agrees would say.
    let date = httpdate::fmt_http_date((wl.now() + jiff::SignedDuration::from_mins(4)).into());
    rx.behave(move |_, n| match n {
        0 => Reply::RetryAfter(429, 120),
        1 => Reply::RetryAt(503, date.clone()),
        _ => Reply::Status(200),
    });
    wl.notify(target("t", &rx.url, ""));
    wl.create("c").await;
    let d = wl.pending_after("t", 1).await;
    let tried = d.last_attempt_at.unwrap();
    assert_eq!(tried, wl.now());
    assert_eq!(
        d.next_attempt_at,
        tried + jiff::SignedDuration::from_secs(120)
    );
    wl.advance(Duration::from_secs(120));
    let d = wl.pending_after("t", 2).await;
    assert_eq!(
        d.next_attempt_at,
        d.last_attempt_at.unwrap() + jiff::SignedDuration::from_secs(120),
        "the date is four minutes after the clock's start, two after this attempt"
    );
    wl.advance(Duration::from_secs(120));
    wait_for("delivered", T, || wl.all_delivered("t", 1)).await;
    assert_eq!(rx.count(), 3);
    wl.stop().await;
}

/// The point of the test clock: a failed attempt's retry waits for the clock, not for real
/// time, and comes as soon as the clock reaches it.
#[tokio::test]
async fn a_retry_waits_for_the_clock_and_comes_once_it_is_moved() {
    let rx = http_receiver().await;
    rx.behave(|r, _| {
        if r.json["captureId"] == "retried" {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let mut wl = Worklane::fresh().await;
    wl.notify(target("t", &rx.url, ""));
    let id = wl.create("retried").await;
    let d = wl.pending_after("t", 1).await;
    let now = wl.now();
    assert_eq!(d.last_attempt_at, Some(now));
    assert_eq!(d.last_status_code, Some(503));
    // The retry policy's jitter: a random point in the upper half of the backoff.
    let wait = d.next_attempt_at.duration_since(now);
    let full = jiff::SignedDuration::try_from(BACKOFF).unwrap();
    assert!(
        wait >= full / 2 && wait <= full,
        "next attempt {wait:?} after the failure"
    );

    let tries = |task: BrokerId| {
        rx.got()
            .iter()
            .filter(|r| r.json["brokerId"] == task.0)
            .count()
    };
    // Give the claims their chances: another task's notification, resent, is due at
    // once; the claim that takes it would take the retry too, were it due.
    let other = wl.create("other").await;
    let other_delivered = || async {
        wl.deliveries("t")
            .await
            .into_iter()
            .find(|d| d.broker_id == other.0 && d.status == DeliveryStatus::Delivered)
    };
    wait_for("the other delivered", T, || async {
        other_delivered().await.is_some()
    })
    .await;
    let other_id = other_delivered().await.unwrap().id;
    // The clock standing still, then a second short of the retry's time.
    let short = d.next_attempt_at - jiff::SignedDuration::from_secs(1);
    for (sent, at) in [(2, now), (3, short)] {
        wl.clock.set(at);
        wl.engine
            .deliveries()
            .resend_delivery("t", other_id, wl.now())
            .await
            .unwrap()
            .unwrap();
        wait_for("the resend claimed, sent and recorded", T, || async {
            tries(other) == sent && other_delivered().await.is_some()
        })
        .await;
        assert_eq!(tries(id), 1, "retried at {at} before its time");
    }

    rx.behave(|_, _| Reply::Status(200));
    wl.advance(Duration::from_secs(1));
    wait_until("the retry", T, || tries(id) == 2).await;
    wait_for("delivered", T, || wl.all_delivered("t", 2)).await;
    wl.stop().await;
}

#[tokio::test]
async fn timeouts_are_retried_and_unlisted_4xx_fail_for_good_until_resent() {
    let slow = http_receiver().await;
    slow.behave(|_, n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    });
    let strict = http_receiver().await;
    strict.behave(|_, n| {
        if n == 0 {
            Reply::Status(404)
        } else {
            Reply::Status(204)
        }
    });
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "slow",
        &slow.url,
        "http_response_timeout = \"300ms\"\n",
    ));
    wl.notify(target("strict", &strict.url, ""));
    wl.create("c").await;
    wl.pending_after("slow", 1).await;
    wl.advance(BACKOFF);
    wait_for("slow delivered after a timeout", T, || {
        wl.all_delivered("slow", 1)
    })
    .await;
    let d = &wl.deliveries("slow").await[0];
    let attempts = wl
        .engine
        .deliveries()
        .delivery_attempts(d.id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status_code, None);
    assert!(attempts[0].latency_us >= 300_000);
    assert!(
        attempts[0].error.as_deref().unwrap().contains("timed out"),
        "{:?}",
        attempts[0].error
    );

    wait_for("404 final", T, || async {
        wl.deliveries("strict")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let failed = wl.deliveries("strict").await.remove(0);
    assert_eq!((failed.attempts, failed.last_status_code), (1, Some(404)));
    assert_eq!(strict.count(), 1, "a 404 is not retried unless listed");
    // Resent by hand: same GUID and body.
    let resent = wl
        .engine
        .deliveries()
        .resend_delivery("strict", failed.id, wl.now());
    resent.await.unwrap().unwrap();
    wait_for("resent and delivered", T, || wl.all_delivered("strict", 1)).await;
    let got = strict.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    wl.stop().await;
}

#[tokio::test]
async fn listed_codes_are_retried_and_redirects_not_followed() {
    let rx = http_receiver().await;
    let elsewhere = http_receiver().await;
    let loc = elsewhere.url.clone();
    rx.behave(move |_, n| match n {
        0 => Reply::Status(404),
        _ => Reply::Redirect(302, loc.clone()),
    });
    let mut wl = Worklane::fresh().await;
    wl.notify(target("t", &rx.url, "http_retry_applies_to = [\"404\"]\n"));
    wl.create("c").await;
    wl.pending_after("t", 1).await;
    wl.advance(BACKOFF);
    wait_for("302 final", T, || async {
        wl.deliveries("t")
            .await
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
    })
    .await;
    let d = wl.deliveries("t").await.remove(0);
    assert_eq!((d.attempts, d.last_status_code), (2, Some(302)));
    assert_eq!(elsewhere.count(), 0, "redirect not followed");
    wl.stop().await;
}

#[tokio::test]
async fn a_dead_target_does_not_delay_a_healthy_one() {
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    wl.notify(target(
        "dead",
        &dead_url(),
        "http_connection_pool_size = 4\nhttp_retry_max_attempts = 1000\n",
    ));
    wl.notify(target("live", &rx.url, "http_connection_pool_size = 4\n"));
    for i in 0..100 {
        wl.create(&format!("c{i}")).await;
    }
    wait_for("the live target got everything", T, || {
        wl.all_delivered("live", 100)
    })
    .await;
    wait_for("the dead target's backlog complete", T, || async {
        wl.deliveries("dead").await.len() == 100
    })
    .await;
    let dead = wl.deliveries("dead").await;
    assert!(dead.iter().all(|d| d.status == DeliveryStatus::Pending));
    wait_for("refused attempts recorded", T, || async {
        let d = wl.deliveries("dead").await;
        d.iter().any(|d| d.attempts > 0)
    })
    .await;
    let tried = wl
        .deliveries("dead")
        .await
        .into_iter()
        .find(|d| d.attempts > 0)
        .unwrap();
    let a = wl
        .engine
        .deliveries()
        .delivery_attempts(tried.id)
        .await
        .unwrap();
    assert_eq!(a[0].status_code, None);
    assert!(a[0].error.is_some());
    wl.stop().await;
}

#[tokio::test]
async fn a_tasks_events_arrive_in_order_even_across_retries() {
    let rx = http_receiver().await;
    // Every task's first notification fails once; its later ones must wait for it.
    let failed_once = std::sync::Mutex::new(std::collections::HashSet::new());
    rx.behave(move |r, _| {
        let id = r.json["brokerId"].as_i64().unwrap();
        if failed_once.lock().unwrap().insert(id) {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let mut wl = Worklane::fresh().await;
    wl.notify(target("t", &rx.url, "http_connection_pool_size = 16\n"));
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(wl.create(&format!("c{i}")).await);
    }
    for round in 0..4 {
        for id in &ids {
            wl.update(*id, "round", &round.to_string()).await;
        }
    }
    // Each task's first failed and waits for its retry time, the later ones behind it.
    wait_for(
        "every notification stored behind its task's failure",
        T,
        || async {
            let d = wl.deliveries("t").await;
            d.len() == 50
                && d.iter().all(|d| d.status == DeliveryStatus::Pending)
                && d.iter().filter(|d| d.attempts == 1).count() == 10
        },
    )
    .await;
    assert_eq!(rx.count(), 10, "only the first of each task went out");
    wl.advance(BACKOFF);
    wait_for("all delivered", T, || wl.all_delivered("t", 50)).await;
    let mut delivered: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut failed_first: HashMap<i64, i64> = HashMap::new();
    for r in rx.got() {
        let id = r.json["brokerId"].as_i64().unwrap();
        let seq = r.json["seq"].as_i64().unwrap();
        if let std::collections::hash_map::Entry::Vacant(e) = failed_first.entry(id) {
            e.insert(seq);
            continue;
        }
        delivered.entry(id).or_default().push(seq);
    }
    for id in &ids {
        let seqs = &delivered[&id.0];
        assert_eq!(seqs.len(), 5, "task {id}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "task {id} out of order: {seqs:?}"
        );
        assert_eq!(
            seqs[0], failed_first[&id.0],
            "the failed one came first again"
        );
    }
    wl.stop().await;
}

#[tokio::test]
async fn a_restart_with_retries_pending_delivers_everything_with_the_same_guids() {
    let rx = http_receiver().await;
    rx.behave(|_, _| Reply::Status(503));
    let url = worklane_store::testing::fresh_sqlite_url();
    let mut wl = Worklane::start(&url).await;
    wl.notify(target("t", &rx.url, ""));
    let mut ids: Vec<BrokerId> = Vec::new();
    for i in 0..20 {
        ids.push(wl.create(&format!("c{i}")).await);
    }
    wait_until("every notification tried", T, || {
        let got = rx.got();
        ids.iter()
            .all(|id| got.iter().any(|r| r.json["brokerId"] == id.0))
    })
    .await;
    let mut first_seen: HashMap<i64, (String, axum::body::Bytes)> = HashMap::new();
    for r in rx.got() {
        let id = r.json["brokerId"].as_i64().unwrap();
        first_seen.entry(id).or_insert((
            r.json["message_guid"].as_str().unwrap().into(),
            r.body.clone(),
        ));
    }
    let clock = wl.clock.clone();
    wl.stop().await;

    rx.behave(|_, _| Reply::Status(200));
    let before = rx.count();
    let mut wl = Worklane::start_with(&url, clock).await;
    // The stored ones come due; those not recorded before the stop are read again.
    wl.advance(BACKOFF);
    wl.notify(target("t", &rx.url, ""));
    wait_for("all delivered after the restart", T, || {
        wl.all_delivered("t", 20)
    })
    .await;
    let after: Vec<_> = rx
        .got()
        .into_iter()
        .skip(before)
        .filter(|r| r.headers.contains_key("etag"))
        .collect();
    for id in &ids {
        let (guid, body) = &first_seen[&id.0];
        let ok: Vec<_> = after
            .iter()
            .filter(|r| r.json["brokerId"] == id.0)
            .collect();
        assert!(!ok.is_empty(), "task {id} delivered after the restart");
        for r in ok {
            assert_eq!(r.headers["etag"], guid.as_str());
            assert_eq!(&r.body, body, "byte-identical across the restart");
        }
    }
    wl.stop().await;
}

#[tokio::test]
async fn a_crash_before_recording_sends_again_with_the_same_guids() {
    let rx = http_receiver().await;
    // The first event's notification hangs; the others are answered at once.
    rx.behave(|r, _| {
        if r.json["seq"] == 1 {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    });
    let url = worklane_store::testing::fresh_sqlite_url();
    let mut wl = Worklane::start(&url).await;
    wl.notify(target("t", &rx.url, "http_response_timeout = \"60s\"\n"));
    for i in 0..10 {
        wl.create(&format!("c{i}")).await;
    }
    wait_for("nine recorded, one in flight", T, || async {
        rx.count() == 10 && wl.deliveries("t").await.len() == 9
    })
    .await;
    let hanging = rx.got().into_iter().find(|r| r.json["seq"] == 1).unwrap();
    // The position waits just before the one notification not recorded.
    assert_eq!(wl.engine.events().cursor("notify:t").await.unwrap(), 0);
    let clock = wl.clock.clone();
    wl.crash().await;

    rx.behave(|_, _| Reply::Status(200));
    let mut wl = Worklane::start_with(&url, clock).await;
    wl.notify(target("t", &rx.url, ""));
    wait_for("all delivered after the crash", T, || {
        wl.all_delivered("t", 10)
    })
    .await;
    let again: Vec<Received> = rx.got().into_iter().skip(10).collect();
    assert_eq!(again.len(), 1, "only the unrecorded one is sent again");
    assert_eq!(again[0].json["seq"], 1);
    assert_eq!(
        again[0].headers["etag"], hanging.headers["etag"],
        "same GUID"
    );
    assert_eq!(again[0].body, hanging.body, "byte-identical body");
    wl.stop().await;
}

/// A task with more notifications than its lane holds: the rest are stored held behind
/// its first (in flight, here hanging), written before it is; after a crash the first
/// is read again and every one still goes out once, in order, behind it.
#[tokio::test]
async fn a_busy_tasks_overflow_is_held_behind_its_first_even_across_a_crash() {
    let rx = http_receiver().await;
    let url = worklane_store::testing::fresh_sqlite_url();
    let mut wl = Worklane::start(&url).await;
    let extra = 120;
    let busy = wl.busy_task(extra).await;
    let other = wl.create("other").await;
    let first_seq = 1;
    rx.behave(move |r, _| {
        if r.json["seq"] == first_seq {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    });
    // Every event is in the log before the target starts: one read holds them all.
    wl.notify(target("t", &rx.url, "http_response_timeout = \"60s\"\n"));
    let total = extra + 2;
    wait_for(
        "the overflow held in the store, the other task delivered",
        T,
        || async {
            let d = wl.deliveries("t").await;
            d.len() == total - 1
                && d.iter().any(|d| {
                    d.broker_id == other.0 && d.status == worklane_store::DeliveryStatus::Delivered
                })
        },
    )
    .await;
    let got = rx.got();
    assert!(
        got.iter()
            .all(|r| r.json["brokerId"] != busy.0 || r.json["seq"] == first_seq),
        "nothing of the busy task went out beside its first"
    );
    let held: Vec<_> = wl
        .deliveries("t")
        .await
        .into_iter()
        .filter(|d| d.broker_id == busy.0)
        .collect();
    assert_eq!(held.len(), extra);
    assert!(held
        .iter()
        .all(|d| d.status == worklane_store::DeliveryStatus::Held));
    // As the API lists them.
    assert_eq!(serde_json::to_value(&held[0]).unwrap()["status"], "held");
    let hanging = got
        .iter()
        .find(|r| r.json["seq"] == first_seq)
        .unwrap()
        .clone();
    let clock = wl.clock.clone();
    wl.crash().await;

    rx.behave(|_, _| Reply::Status(200));
    let before = rx.count();
    let mut wl = Worklane::start_with(&url, clock).await;
    wl.notify(target("t", &rx.url, ""));
    wait_for("all delivered after the crash", T, || {
        wl.all_delivered("t", total)
    })
    .await;
    let again: Vec<Received> = rx
        .got()
        .into_iter()
        .skip(before)
        .filter(|r| r.json["brokerId"] == busy.0)
        .collect();
    let seqs: Vec<i64> = again
        .iter()
        .map(|r| r.json["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), extra + 1, "each once: {seqs:?}");
    assert_eq!(seqs[0], first_seq, "the first goes first");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert_eq!(
        again[0].headers["etag"], hanging.headers["etag"],
        "same GUID"
    );
    wl.stop().await;
}

/// Without a crash: the first is answered, the held ones are released by its record and
/// go out from the store, in order.
#[tokio::test]
async fn a_busy_task_past_its_lane_is_delivered_in_order() {
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    wl.busy_task(150).await;
    wl.notify(target("t", &rx.url, ""));
    wait_for("all delivered", T, || wl.all_delivered("t", 151)).await;
    let seqs: Vec<i64> = rx
        .got()
        .iter()
        .map(|r| r.json["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 151, "each once");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    // Past the lane's room they went out from the store, stored with their bodies.
    let store = wl.engine.deliveries().clone();
    let mut from_store = 0;
    for d in wl.deliveries("t").await {
        if !store
            .get_delivery(d.id)
            .await
            .unwrap()
            .unwrap()
            .body
            .is_empty()
        {
            from_store += 1;
        }
    }
    assert!(
        from_store >= 150 - 64,
        "{from_store} went out from the store"
    );
    wl.stop().await;
}

#[tokio::test]
async fn contact_processed_sends_one_message_per_finished_task() {
    let rx = http_receiver().await;
    let mut wl = Worklane::fresh().await;
    wl.notify(target("ocs", &rx.url, "format = \"contact-processed\"\n"));
    let a = wl.create("a").await;
    let b = wl.create("b").await;
    wl.update(a, "Other1", "x").await;
    wl.act(a, Action::Complete).await;
    wl.act(b, Action::Cancel).await;
    wait_for("two messages", T, || wl.all_delivered("ocs", 2)).await;
    let got = rx.got();
    assert_eq!(got.len(), 2);
    let by_id: HashMap<i64, &serde_json::Value> = got
        .iter()
        .map(|r| (r.json["GSW_RECORD_HANDLE"].as_i64().unwrap(), &r.json))
        .collect();
    let m = by_id[&a.0];
    assert_eq!(m["GSW_MESSAGE"], "ContactProcessed");
    assert_eq!(m["GSW_RECORD_STATUS"], "Completed");
    assert_eq!(m["GSW_CHAIN_ID"], "a");
    assert_eq!(m["Other1"], "x");
    let ts = m["GSW_TIMESTAMP"].as_str().unwrap();
    assert!(
        ts.len() > 4 && ts.as_bytes()[ts.len() - 4] == b'.',
        "epoch dot millis: {ts}"
    );
    assert_eq!(
        got[0].headers["etag"],
        got[0].json["GSW_MESSAGE_GUID"].as_str().unwrap()
    );
    assert_eq!(by_id[&b.0]["GSW_RECORD_STATUS"], "Canceled");
    wl.stop().await;
}
