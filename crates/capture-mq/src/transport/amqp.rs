//! AMQP 0-9-1 (RabbitMQ) through lapin: durable queues, persistent messages, publisher
//! confirms, a prefetch window. Publishing reconnects lazily after a failure; the
//! capture point re-subscribes with backoff.

use super::{Acknowledge, Incoming, Outgoing, Subscription, Transport, TransportError};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

/// Persistent delivery mode (AMQP 0-9-1 `delivery-mode = 2`).
const PERSISTENT: u8 = 2;
/// How long to wait for the broker to confirm a message before treating it as not sent
/// (a half-dead connection must not hang the capture point or its shutdown).
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A broker reached over AMQP 0-9-1.
pub struct AmqpTransport {
    url: String,
    /// The connection name the broker shows (management UI, `rabbitmqctl`).
    name: String,
    /// The publishing connection, opened on first use and again after a failure.
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("url", &worklane_store::redact_url(&self.url))
            .field("name", &self.name)
            .finish()
    }
}

impl AmqpTransport {
    /// A transport for the broker at `url` (`amqp://user:pass@host:port/vhost`); nothing
    /// is opened until first use.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: "worklane".to_owned(),
            publisher: Mutex::new(None),
        }
    }

    /// Names the connections, so operators can tell them apart in the broker.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let props = ConnectionProperties::default().with_connection_name(self.name.as_str().into());
        Ok(Connection::connect(&self.url, props).await?)
    }

    /// The confirming publish channel, (re)opened when missing or closed.
    async fn publish_channel(&self) -> Result<Channel, TransportError> {
        let mut guard = self.publisher.lock().await;
        if let Some((conn, ch)) = guard.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        if let Some((conn, _)) = guard.take() {
            let _ = conn.close(200, "reconnecting".into()).await;
        }
        let conn = self.connect().await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *guard = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Forgets the publishing connection after a failure, so the next publish opens a
    /// fresh one; the old one is closed in the background (it may be half dead).
    async fn drop_publisher(&self) {
        if let Some((conn, _)) = self.publisher.lock().await.take() {
            tokio::spawn(async move {
                let close = conn.close(200, "publish failed".into());
                let _ = tokio::time::timeout(CONFIRM_TIMEOUT, close).await;
            });
        }
    }

    /// Sends every message first, in order, then waits for the confirms together (one
    /// round trip for the whole batch). Returns the indices of messages the broker could
    /// not route.
    async fn send_confirmed(&self, messages: &[Outgoing]) -> Result<Vec<usize>, TransportError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let ch = self.publish_channel().await?;
        let mut confirms = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = ch
                .basic_publish(
                    ShortString::from(""),
                    ShortString::from(m.queue.as_str()),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &m.body,
                    properties(m),
                )
                .await?;
            confirms.push(confirm);
        }
        let mut returned = Vec::new();
        for (i, confirm) in confirms.into_iter().enumerate() {
            let c = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
                .await
                .map_err(|_| TransportError::Unconfirmed(messages[i].queue.clone()))??;
            if c.is_nack() {
                return Err(TransportError::Nacked(messages[i].queue.clone()));
            }
            if c.take_message().is_some() {
                returned.push(i);
            }
        }
        Ok(returned)
    }
}

fn properties(m: &Outgoing) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(ShortString::from("application/xml"))
        .with_content_encoding(ShortString::from("utf-8"));
    if let Some(c) = &m.correlation_id {
        p = p.with_correlation_id(ShortString::from(c.as_str()));
    }
    if let Some(id) = &m.message_id {
        p = p.with_message_id(ShortString::from(id.as_str()));
    }
    if !m.headers.is_empty() {
        let mut t = FieldTable::default();
        for (k, v) in &m.headers {
            t.insert(
                ShortString::from(k.as_str()),
                AMQPValue::LongString(v.as_str().into()),
            );
        }
        p = p.with_headers(t);
    }
    p
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn declare(&self, queues: &[&str]) -> Result<(), TransportError> {
        let conn = self.connect().await?;
        let ch = conn.create_channel().await?;
        let result = async {
            for q in queues {
                ch.queue_declare(
                    ShortString::from(*q),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            }
            Ok::<_, TransportError>(())
        }
        .await;
        let _ = conn.close(200, "declared".into()).await;
        result
    }

    async fn publish(&self, messages: Vec<Outgoing>) -> Result<(), TransportError> {
        let returned = match self.send_confirmed(&messages).await {
            Ok(r) => r,
            Err(e) => {
                self.drop_publisher().await;
                return Err(e);
            }
        };
        if returned.is_empty() {
            return Ok(());
        }
        // A queue went missing (deleted by an operator): declare it and send what came
        // back once more. Returned messages were delivered nowhere, so nothing doubles.
        let again: Vec<Outgoing> = returned.into_iter().map(|i| messages[i].clone()).collect();
        let queues: std::collections::BTreeSet<&str> =
            again.iter().map(|m| m.queue.as_str()).collect();
        self.declare(&queues.into_iter().collect::<Vec<_>>())
            .await?;
        match self.send_confirmed(&again).await?.first() {
            None => Ok(()),
            Some(&i) => Err(TransportError::Returned {
                queue: again[i].queue.clone(),
                reply: "NO_ROUTE after declaring the queue".to_owned(),
            }),
        }
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, TransportError> {
        let conn = self.connect().await?;
        let ch = conn.create_channel().await?;
        ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let tag = format!("worklane-{}", uuid::Uuid::new_v4().simple());
        let consumer = ch
            .basic_consume(
                ShortString::from(queue),
                ShortString::from(tag.as_str()),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Box::new(AmqpSubscription {
            conn,
            consumer,
            queue: queue.to_owned(),
        }))
    }
}

struct AmqpSubscription {
    conn: Connection,
    consumer: lapin::Consumer,
    queue: String,
}

struct AmqpAcker(lapin::Acker);

#[async_trait]
impl Acknowledge for AmqpAcker {
    async fn ack(&self) -> Result<(), TransportError> {
        self.0.ack(BasicAckOptions::default()).await?;
        Ok(())
    }
}

#[async_trait]
impl Subscription for AmqpSubscription {
    async fn next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let delivery = match self.consumer.next().await {
            None => return Some(Err(TransportError::Closed(self.queue.clone()))),
            Some(Err(e)) => return Some(Err(e.into())),
            Some(Ok(d)) => d,
        };
        let p = &delivery.properties;
        Some(Ok(Incoming {
            message_id: p.message_id().as_ref().map(|s| s.to_string()),
            correlation_id: p.correlation_id().as_ref().map(|s| s.to_string()),
            redelivered: delivery.redelivered,
            body: delivery.data,
            acker: Box::new(AmqpAcker(delivery.acker)),
        }))
    }

    async fn close(self: Box<Self>) {
        // Closing the connection hands unacknowledged messages back to the queue.
        let _ = self.conn.close(200, "capture point stopping".into()).await;
    }
}
