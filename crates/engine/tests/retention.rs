//! The retention part on a running engine with a test clock: time is moved, never waited
//! for, and what a pass prunes is read back from the store.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::{ActionMeta, Command, NewTask};
use worklane_engine::{Engine, EngineOptions, Retention, TestClock};
use worklane_store::testing::wait_until;
use worklane_store::{RetentionPolicy, Store};

const DAY: Duration = Duration::from_secs(86_400);

fn week_of_events() -> RetentionPolicy {
    RetentionPolicy {
        events: Some(DAY * 7),
        ..Default::default()
    }
}

async fn create(engine: &Engine) {
    let new = NewTask {
        capture_point_id: "A".into(),
        ..Default::default()
    };
    engine
        .execute(Command::create(new, ActionMeta::default()))
        .await
        .unwrap();
}

async fn events(engine: &Engine) -> usize {
    engine.events().events_after(0, 10_000).await.unwrap().len()
}

async fn start(store: Arc<dyn Store>) -> (Engine, TestClock) {
    let clock = TestClock::at_default();
    let options = EngineOptions {
        clock: clock.shared(),
        ..Default::default()
    };
    let (engine, _writer) = Engine::start(store, options).await.unwrap();
    (engine, clock)
}

/// A step prunes what is older than the policy at the clock's time, in as many batches
/// as it takes, and keeps the rest.
async fn a_step_prunes_what_the_clock_makes_old(store: Arc<dyn Store>) {
    let (engine, clock) = start(store).await;
    for _ in 0..5 {
        create(&engine).await;
    }
    clock.advance(DAY * 8);
    create(&engine).await;
    assert_eq!(events(&engine).await, 6);

    let retention = Retention::new(engine.clone(), week_of_events(), 2, Duration::from_secs(60));
    // A week after the first events nothing is old yet.
    let r = retention
        .step(engine.now() - jiff::SignedDuration::from_hours(25))
        .await
        .unwrap();
    assert_eq!(r.events, 0);
    // Five old events in batches of two: one step takes them all.
    let r = retention.step(engine.now()).await.unwrap();
    assert_eq!((r.events, r.more), (5, false));
    assert_eq!(events(&engine).await, 1);
}

/// The running part waits its interval on the engine's clock, then prunes.
async fn the_running_part_prunes_each_interval_of_the_clock(store: Arc<dyn Store>) {
    let (engine, clock) = start(store).await;
    for _ in 0..3 {
        create(&engine).await;
    }
    clock.advance(DAY * 8);
    let retention = Retention::new(
        engine.clone(),
        week_of_events(),
        100,
        Duration::from_secs(60),
    );
    let cancel = CancellationToken::new();
    let run = tokio::spawn(retention.run(cancel.clone()));
    // Nothing goes before an interval has passed on the clock.
    tokio::task::yield_now().await;
    assert_eq!(events(&engine).await, 3);
    wait_until("a retention pass", Duration::from_secs(10), || {
        // Each look moves the clock a whole interval on: the pass comes by the clock.
        clock.advance(Duration::from_secs(60));
        let engine = engine.clone();
        async move { events(&engine).await == 0 }
    })
    .await;
    cancel.cancel();
    run.await.unwrap();
}

worklane_store::store_suite!(
    a_step_prunes_what_the_clock_makes_old,
    the_running_part_prunes_each_interval_of_the_clock
);
