//! The event feed: followers that start at different positions, read at different paces,
//! or follow another node's commits each see every event once, in seq order.

use std::time::Duration;
use worklane_domain::{ActionMeta, Command, NewTask};
use worklane_engine::{Engine, EngineOptions, Follower};
use worklane_store::testing::{fresh_postgres_url, fresh_sqlite_url};

mod support;

async fn create(e: &Engine, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    for _ in 0..n {
        let new = NewTask {
            capture_point_id: "feed".into(),
            ..Default::default()
        };
        let o = e
            .execute(Command::create(new, ActionMeta::default()))
            .await
            .unwrap();
        seqs.push(o.event.unwrap().seq);
    }
    seqs
}

/// Reads from `f` until it has handed out `want` (a test fails rather than hangs).
async fn read(f: &mut Follower, want: &[i64]) -> Vec<i64> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < want.len() {
            let events = f.next().await.unwrap();
            got.extend(events.iter().map(|e| e.seq));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("followed {got:?}, waiting for {want:?}"));
    got
}

async fn followers(url: String) {
    let (e, _w) = support::node(&url, EngineOptions::default()).await;
    let before = create(&e, 3).await;
    // From the start of the log (the store), and from now (the feed).
    let mut from_start = e.feed().follow(0);
    let mut from_now = e.feed().follow(*before.last().unwrap());
    let mut slow = e.feed().follow(0);
    assert_eq!(read(&mut from_start, &before).await, before);

    let after = create(&e, 5).await;
    assert_eq!(read(&mut from_now, &after).await, after);
    assert_eq!(read(&mut from_start, &after).await, after);
    assert_eq!(from_now.position(), *after.last().unwrap());

    // A follower that did not read while 300 commits went by (more than the feed keeps
    // for it): everything once, in order.
    let many = create(&e, 300).await;
    let all: Vec<i64> = before.iter().chain(&after).chain(&many).copied().collect();
    assert_eq!(read(&mut slow, &all).await, all);
    assert_eq!(read(&mut from_now, &many).await, many);
}

#[tokio::test]
async fn sqlite_followers_see_every_event_once_in_order() {
    followers(fresh_sqlite_url()).await;
}

#[tokio::test]
async fn postgres_followers_see_every_event_once_in_order() {
    followers(fresh_postgres_url().await.unwrap()).await;
}

/// Two engines on one PostgreSQL database stand for two nodes: a follower of one sees
/// the other's commits.
#[tokio::test]
async fn a_follower_sees_another_nodes_commits() {
    let url = fresh_postgres_url().await.unwrap();
    let (a, _wa) = support::node(&url, EngineOptions::default()).await;
    let (b, _wb) = support::node(&url, EngineOptions::default()).await;
    let mut f = b.feed().follow(0);
    let seqs = create(&a, 4).await;
    assert_eq!(read(&mut f, &seqs).await, seqs);
}
