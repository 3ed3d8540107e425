//! Test rig: a capture point on a fresh SQLite store, with unique queue names on the
//! local RabbitMQ, and a client that plays the source system.

#![allow(dead_code)]

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worklane_capture_mq::codec::{Codec, Outbound};
use worklane_capture_mq::MqConfig;
use worklane_engine::{Engine, EngineOptions};

pub fn amqp_url() -> String {
    std::env::var("WORKLANE_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Queue names no other test uses.
pub fn unique_config(id: &str) -> MqConfig {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut cfg = MqConfig::new(id);
    cfg.url = amqp_url();
    cfg.input_queue = format!("wl-test-{tag}-in");
    cfg.output_queue = format!("wl-test-{tag}-out");
    cfg.error_queue = format!("wl-test-{tag}-err");
    cfg
}

/// A message read from a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub body: String,
    pub correlation_id: Option<String>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub persistent: bool,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn parse(&self) -> Outbound {
        Codec::utc()
            .parse_outbound(self.body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// The source system's side: publishes requests, reads a queue.
pub struct Client {
    pub conn: Connection,
    pub channel: Channel,
    input: String,
    reader: lapin::Consumer,
}

pub async fn declare(channel: &Channel, queue: &str) {
    channel
        .queue_declare(
            ShortString::from(queue),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
}

impl Client {
    /// Connects, declares the capture point's queues and reads `read_queue`.
    pub async fn connect(cfg: &MqConfig, read_queue: &str) -> Self {
        let conn = Connection::connect(&cfg.url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for q in [&cfg.input_queue, &cfg.output_queue, &cfg.error_queue] {
            declare(&channel, q).await;
        }
        let reader = channel
            .basic_consume(
                ShortString::from(read_queue),
                ShortString::from(format!("reader-{}", uuid::Uuid::new_v4()).as_str()),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self {
            conn,
            channel,
            input: cfg.input_queue.clone(),
            reader,
        }
    }

    /// Publishes a request (persistent, confirmed).
    pub async fn send(&self, body: &str, message_id: Option<&str>, correlation_id: Option<&str>) {
        let mut p = BasicProperties::default().with_delivery_mode(2);
        if let Some(m) = message_id {
            p = p.with_message_id(ShortString::from(m));
        }
        if let Some(c) = correlation_id {
            p = p.with_correlation_id(ShortString::from(c));
        }
        let confirm = self
            .channel
            .basic_publish(
                ShortString::from(""),
                ShortString::from(self.input.as_str()),
                BasicPublishOptions::default(),
                body.as_bytes(),
                p,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }

    /// The next message, waiting at most 30 s.
    pub async fn recv(&mut self) -> Received {
        let d = tokio::time::timeout(Duration::from_secs(30), self.reader.next())
            .await
            .expect("no message within 30 s")
            .expect("reader ended")
            .expect("reader failed");
        let p = &d.properties;
        let headers = p
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            lapin::types::AMQPValue::LongString(s) => s.to_string(),
                            other => format!("{other:?}"),
                        };
                        (k.to_string(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Received {
            body: String::from_utf8(d.data).unwrap(),
            correlation_id: p.correlation_id().as_ref().map(|s| s.to_string()),
            message_id: p.message_id().as_ref().map(|s| s.to_string()),
            content_type: p.content_type().as_ref().map(|s| s.to_string()),
            persistent: *p.delivery_mode() == Some(2),
            headers,
        }
    }

    /// Sends a request and returns the answer.
    pub async fn ask(&mut self, body: &str) -> Outbound {
        let id = uuid::Uuid::new_v4().to_string();
        self.send(body, Some(&id), None).await;
        let r = self.recv().await;
        assert_eq!(
            r.correlation_id.as_deref(),
            Some(id.as_str()),
            "answer to another request: {}",
            r.body
        );
        r.parse()
    }

    /// Ready messages in `queue`.
    pub async fn count(&self, queue: &str) -> u32 {
        let q = self
            .channel
            .queue_declare(
                ShortString::from(queue),
                QueueDeclareOptions {
                    passive: true,
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        q.message_count()
    }

    pub async fn delete_queues(&self, cfg: &MqConfig) {
        for q in [&cfg.input_queue, &cfg.output_queue, &cfg.error_queue] {
            let _ = self
                .channel
                .queue_delete(ShortString::from(q.as_str()), QueueDeleteOptions::default())
                .await;
        }
    }
}

/// A running capture point and its client.
pub struct Rig {
    pub engine: Engine,
    pub cfg: MqConfig,
    pub client: Client,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Rig {
    pub async fn start(cfg: MqConfig) -> Self {
        let store = worklane_store::connect(&worklane_store::testing::fresh_sqlite_url())
            .await
            .unwrap();
        let (engine, _writer) = Engine::start(store, EngineOptions::default())
            .await
            .unwrap();
        Self::start_with(engine, cfg).await
    }

    /// Starts the capture point on an existing engine (a restart).
    pub async fn start_with(engine: Engine, cfg: MqConfig) -> Self {
        let client = Client::connect(&cfg, &cfg.output_queue).await;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(worklane_capture_mq::run(
            engine.clone(),
            cfg.clone(),
            cancel.clone(),
        ));
        Self {
            engine,
            cfg,
            client,
            cancel,
            task,
        }
    }

    /// Stops the capture point (drained) and returns the client.
    pub async fn stop(self) -> (Client, MqConfig) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
        (self.client, self.cfg)
    }

    /// Stops and removes the queues.
    pub async fn finish(self) {
        let (client, cfg) = self.stop().await;
        client.delete_queues(&cfg).await;
    }
}

/// Polls `cond` until it holds, failing after `secs`.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    worklane_store::testing::wait_until(what, Duration::from_secs(secs), cond).await;
}
