//! Test rig: a capture point on a fresh SQLite store, with unique queue names on the
//! local RabbitMQ, and a client that plays the source system, over AMQP 0-9-1 or over
//! AMQP 1.0 (RabbitMQ's plugin) as the capture point's transport is configured. Queues are
//! declared and counted over AMQP 0-9-1 either way (AMQP 1.0 cannot declare queues).

#![allow(dead_code)]

use fe2o3_amqp::types::messaging::{Body, Data, Header, Message, MessageId, Properties};
use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Value};
use worklane_capture_mq::transport::TransportKind;

/// Runs each named `async fn NAME(p: Proto)` once per transport, as the tests
/// `NAME::amqp_0_9_1` and `NAME::amqp_1_0`.
#[allow(unused_macros)]
macro_rules! both_transports {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn amqp_0_9_1() {
                    super::$name(super::common::Proto::Amqp091).await
                }
                #[tokio::test]
                async fn amqp_1_0() {
                    super::$name(super::common::Proto::Amqp10).await
                }
            }
        )*
    };
}

/// The transport a test runs over.
pub type Proto = TransportKind;

/// Queue names no other test uses, on the transport `proto`.
pub fn unique_config_on(id: &str, proto: Proto) -> MqConfig {
    let mut cfg = unique_config(id);
    cfg.transport = Some(proto.name().to_owned());
    cfg
}

fn proto_of(cfg: &MqConfig) -> Proto {
    cfg.transport
        .as_deref()
        .and_then(TransportKind::from_name)
        .unwrap_or_else(|| TransportKind::from_url(&cfg.url))
}

/// The source system's AMQP 1.0 side: a sender to the input queue, a receiver.
struct V10 {
    conn: fe2o3_amqp::connection::ConnectionHandle<()>,
    session: fe2o3_amqp::session::SessionHandle<()>,
    sender: tokio::sync::Mutex<fe2o3_amqp::Sender>,
    receiver: fe2o3_amqp::Receiver,
}

impl V10 {
    async fn connect(input: &str, read_queue: &str) -> Self {
        let mut conn = fe2o3_amqp::Connection::builder()
            .container_id(format!("test-client-{}", uuid::Uuid::new_v4().simple()))
            .open("amqp://guest:guest@127.0.0.1:5672")
            .await
            .unwrap();
        let mut session = fe2o3_amqp::Session::begin(&mut conn).await.unwrap();
        // Durable termini: RabbitMQ's plugin declares the (durable) queues it is given.
        let durable = fe2o3_amqp::types::messaging::TerminusDurability::Configuration;
        let sender = fe2o3_amqp::Sender::builder()
            .name(format!("test-sender-{}", uuid::Uuid::new_v4().simple()))
            .target(
                fe2o3_amqp::types::messaging::Target::builder()
                    .address(input)
                    .durable(durable.clone())
                    .build(),
            )
            .attach(&mut session)
            .await
            .unwrap();
        let receiver = fe2o3_amqp::Receiver::builder()
            .name(format!("test-reader-{}", uuid::Uuid::new_v4().simple()))
            .source(
                fe2o3_amqp::types::messaging::Source::builder()
                    .address(read_queue)
                    .durable(durable)
                    .build(),
            )
            .attach(&mut session)
            .await
            .unwrap();
        Self {
            conn,
            session,
            sender: tokio::sync::Mutex::new(sender),
            receiver,
        }
    }
}

fn id_text(id: &MessageId) -> String {
    match id {
        MessageId::String(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

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
    v10: Option<V10>,
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
        let v10 = match proto_of(cfg) {
            Proto::Amqp10 => Some(V10::connect(&cfg.input_queue, read_queue).await),
            Proto::Amqp091 => None,
        };
        // Over AMQP 1.0 this consumer reads a queue of its own that nothing feeds.
        let read_queue = match v10 {
            Some(_) => format!("wl-test-{}-unused", uuid::Uuid::new_v4().simple()),
            None => read_queue.to_owned(),
        };
        if v10.is_some() {
            channel
                .queue_declare(
                    ShortString::from(read_queue.as_str()),
                    QueueDeclareOptions {
                        auto_delete: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        let read_queue = read_queue.as_str();
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
            v10,
        }
    }

    /// Publishes a request (persistent, confirmed).
    pub async fn send(&self, body: &str, message_id: Option<&str>, correlation_id: Option<&str>) {
        if let Some(v10) = &self.v10 {
            let props = Properties {
                message_id: message_id.map(|m| MessageId::String(m.to_owned())),
                correlation_id: correlation_id.map(|c| MessageId::String(c.to_owned())),
                ..Default::default()
            };
            let message = Message::builder()
                .header(Header::builder().durable(true).build())
                .properties(props)
                .data(Binary::from(body.as_bytes().to_vec()))
                .build();
            let outcome = v10.sender.lock().await.send(message).await.unwrap();
            assert!(outcome.is_accepted(), "{outcome:?}");
            return;
        }
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
        if let Some(v10) = &mut self.v10 {
            let d =
                tokio::time::timeout(Duration::from_secs(30), v10.receiver.recv::<Body<Value>>())
                    .await
                    .expect("no message within 30 s")
                    .expect("reader failed");
            v10.receiver.accept(&d).await.unwrap();
            let m = d.into_message();
            let p = m.properties.clone().unwrap_or_default();
            let headers = m
                .application_properties
                .as_ref()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                SimpleValue::String(s) => s.clone(),
                                other => format!("{other:?}"),
                            };
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = match m.body {
                Body::Data(d) => d.into_iter().flat_map(|Data(b)| b.into_vec()).collect(),
                other => panic!("not a data body: {other:?}"),
            };
            return Received {
                body: String::from_utf8(body).unwrap(),
                correlation_id: p.correlation_id.as_ref().map(id_text),
                message_id: p.message_id.as_ref().map(id_text),
                content_type: p.content_type.as_ref().map(|s| s.to_string()),
                persistent: m.header.as_ref().is_some_and(|h| h.durable),
                headers,
            };
        }
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

    /// Sends a request and returns the answer. Bounded as a whole: a send or an accept
    /// that never completes fails the test instead of hanging it (seen once on AMQP 1.0).
    pub async fn ask(&mut self, body: &str) -> Outbound {
        let id = uuid::Uuid::new_v4().to_string();
        let r = tokio::time::timeout(Duration::from_secs(60), async {
            self.send(body, Some(&id), None).await;
            self.recv().await
        })
        .await
        .expect("no answer within 60 s (send, receive and accept)");
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

    /// Closes the AMQP 1.0 side, if any: its reader stops taking messages.
    async fn close_v10(&mut self) {
        if let Some(mut v) = self.v10.take() {
            let _ = v.receiver.close().await;
            let _ = v.sender.into_inner().close().await;
            let _ = v.session.end().await;
            let _ = v.conn.close().await;
        }
    }

    /// Disconnects, so the queue it read is left for another reader.
    pub async fn close(mut self) {
        self.close_v10().await;
        self.conn.close(200, "client done".into()).await.unwrap();
    }

    /// Closes the AMQP 1.0 side, if any, then deletes the queues.
    pub async fn delete_queues(mut self, cfg: &MqConfig) {
        self.close_v10().await;
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

/// A TCP relay to the local broker whose connections the test can cut, as a network
/// failure would (RabbitMQ 3.x cannot close an AMQP 1.0 connection from its CLI).
pub struct Relay {
    pub port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect("127.0.0.1:5672")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                held.lock().unwrap().push(relay.abort_handle());
            }
        });
        Self {
            port,
            conns,
            accept,
        }
    }

    /// Drops every connection made so far (both sockets close).
    pub fn cut(&self) -> usize {
        let mut conns = self.conns.lock().unwrap();
        for c in conns.iter() {
            c.abort();
        }
        let n = conns.len();
        conns.clear();
        n
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
