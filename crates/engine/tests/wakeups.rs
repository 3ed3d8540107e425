//! Wake-ups across processes: two engines on one PostgreSQL database stand for two nodes.
//! A commit on one wakes the other's readers through LISTEN/NOTIFY, without polling.

use async_trait::async_trait;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worklane_domain::{ActionMeta, Command, Event, NewTask};
use worklane_engine::{Consumer, EngineOptions, EventHandler};
use worklane_store::testing::fresh_postgres_url;

mod support;

struct Collect(tokio::sync::mpsc::UnboundedSender<i64>);

#[async_trait]
impl EventHandler for Collect {
    async fn handle(&mut self, events: &[Event]) -> anyhow::Result<()> {
        for e in events {
            let _ = self.0.send(e.seq);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_commit_on_one_node_wakes_the_readers_of_another() {
    let url = fresh_postgres_url().await.unwrap();
    let (a, _wa) = support::node(&url, EngineOptions::default()).await;
    let (b, _wb) = support::node(&url, EngineOptions::default()).await;
    // B's consumer polls once an hour: only a wake-up can bring it A's events.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let consumer = Consumer::new(b.clone(), "wake-test").poll_interval(Duration::from_secs(3600));
    let c = cancel.clone();
    let run = tokio::spawn(async move {
        let mut handler = Collect(tx);
        consumer.run(&mut handler, c).await;
    });
    let mut wake = b.subscribe();
    // Let the consumer reach its wait (it has read the empty log once).
    tokio::task::yield_now().await;

    let mut seqs = Vec::new();
    for i in 0..3 {
        let new = NewTask {
            capture_point_id: "A".into(),
            ..Default::default()
        };
        let o = a
            .execute(Command::create(new, ActionMeta::default()))
            .await
            .unwrap();
        seqs.push(o.event.unwrap().seq);
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("event {i} of node A never reached node B"))
            .unwrap();
        assert_eq!(got, seqs[i]);
    }
    tokio::time::timeout(Duration::from_secs(10), wake.wait_for(|s| *s >= seqs[2]))
        .await
        .expect("B's watched seq follows A's commits")
        .unwrap();
    cancel.cancel();
    run.await.unwrap();
}
