//! Redeliveries without a message id, and a connection that drops (over both
//! transports).

#[macro_use]
mod common;

use async_trait::async_trait;
use common::{unique_config, unique_config_on, Proto, Rig};
use std::process::Command;
use std::sync::Arc;
use worklane_capture_mq::codec::{NoticeKind, Outbound};
use worklane_capture_mq::semantics::Semantics;
use worklane_capture_mq::transport::{Acknowledge, Incoming, TransportError};
use worklane_capture_mq::MqConfig;
use worklane_engine::{Engine, EngineOptions};

/// Semantics are driven directly here: acknowledging is the transport's business.
struct NoAck;

#[async_trait]
impl Acknowledge for NoAck {
    async fn ack(&self) -> Result<(), TransportError> {
        Ok(())
    }
}

fn delivery(body: &str, redelivered: bool) -> Incoming {
    Incoming {
        body: body.as_bytes().to_vec(),
        message_id: None,
        correlation_id: Some("c-1".into()),
        redelivered,
        acker: Box::new(NoAck),
    }
}

#[tokio::test]
async fn a_redelivered_create_without_message_id_is_recognised_by_its_capture_id() {
    for check_if_captured in [false, true] {
        let store = worklane_store::connect(&worklane_store::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let (engine, _w) = Engine::start(store, EngineOptions::default())
            .await
            .unwrap();
        let mut cfg = MqConfig::new("R1");
        cfg.check_if_captured = check_if_captured;
        let semantics = Semantics::new(engine.clone(), Arc::new(cfg.resolve().unwrap()));
        let body = "<GTLMessages><CreateTask><CaptureId>r-1</CaptureId></CreateTask></GTLMessages>";
        let first = semantics.respond(&delivery(body, false)).await.unwrap();
        let again = semantics.respond(&delivery(body, true)).await.unwrap();
        assert_eq!(first, again, "answered as the first time");
        assert_eq!(first[0].correlation_id.as_deref(), Some("c-1"));
        let tasks = engine
            .tasks()
            .list_tasks(&Default::default())
            .await
            .unwrap();
        assert_eq!(
            tasks.len(),
            1,
            "no second task (check_if_captured = {check_if_captured})"
        );
    }
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn the_capture_point_reconnects_after_the_broker_drops_it(p: Proto) {
    let mut cfg = unique_config_on("RC1", p);
    // RabbitMQ 3.x cannot close an AMQP 1.0 connection from its CLI: over AMQP 1.0 the
    // capture point reaches the broker through a relay whose connections are cut.
    let relay = common::Relay::start().await;
    if p == Proto::Amqp10 {
        cfg.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", relay.port);
    }
    let mut rig = Rig::start(cfg).await;
    assert_eq!(
        rig.client.ask("<GTLMessages><Ping/></GTLMessages>").await,
        Outbound::Pong
    );
    match p {
        Proto::Amqp10 => assert!(relay.cut() > 0, "the capture point used the relay"),
        Proto::Amqp091 => {
            // Close every connection of this capture point (named after its unique input
            // queue).
            let listing = rabbitmqctl(&[
                "list_connections",
                "-q",
                "--no-table-headers",
                "pid",
                "client_properties",
            ]);
            let pids: Vec<&str> = listing
                .lines()
                .filter(|l| l.contains(&rig.cfg.input_queue))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            assert!(
                !pids.is_empty(),
                "the capture point's connections are listed:\n{listing}"
            );
            for pid in pids {
                rabbitmqctl(&["close_connection", pid, "test drops the connection"]);
            }
        }
    }
    let body = "<GTLMessages><CreateTask><CaptureId>after</CaptureId></CreateTask></GTLMessages>";
    rig.client.send(body, Some("after-reconnect"), None).await;
    loop {
        let r = rig.client.recv().await;
        if r.correlation_id.as_deref() == Some("after-reconnect") {
            let Outbound::Notice(n) = r.parse() else {
                panic!("{}", r.body)
            };
            assert_eq!(n.kind, NoticeKind::TaskCreated);
            break;
        }
        // The Ping's acknowledgement may have been cut off with the connection: it is
        // then delivered and answered again (at least once).
        assert_eq!(
            r.parse(),
            Outbound::Pong,
            "only a repeated Pong may come first"
        );
    }
    rig.finish().await;
}

both_transports!(the_capture_point_reconnects_after_the_broker_drops_it);

/// AMQP 0-9-1 only: AMQP 1.0 cannot declare queues, so its queues must exist.
#[tokio::test]
async fn a_deleted_output_queue_is_declared_again_and_nothing_is_lost() {
    use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::{FieldTable, ShortString};
    let mut rig = Rig::start(unique_config("RC2")).await;
    assert_eq!(
        rig.client.ask("<GTLMessages><Ping/></GTLMessages>").await,
        Outbound::Pong
    );
    let out = rig.cfg.output_queue.clone();
    rig.client
        .channel
        .queue_delete(
            ShortString::from(out.as_str()),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    rig.client
        .send(
            "<GTLMessages><Ping/></GTLMessages>",
            Some("after-delete"),
            None,
        )
        .await;
    // Only the capture point can have declared it again (the client does not).
    let conn = &rig.client.conn;
    common::wait_until(20, "the answer on a re-declared output queue", || async {
        let probe = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        let found = probe
            .queue_declare(
                ShortString::from(out.as_str()),
                passive,
                FieldTable::default(),
            )
            .await;
        let _ = probe.close(200, "probe".into()).await;
        matches!(found, Ok(q) if q.message_count() == 1)
    })
    .await;
    let mut reader = common::Client::connect(&rig.cfg, &out).await;
    let r = reader.recv().await;
    assert_eq!(r.correlation_id.as_deref(), Some("after-delete"));
    assert_eq!(r.parse(), Outbound::Pong);
    rig.finish().await;
}
