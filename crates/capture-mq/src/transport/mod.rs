//! The broker seam: what the capture point needs from a message broker. Two
//! implementations: [`AmqpTransport`] (AMQP 0-9-1, RabbitMQ) and [`Amqp1Transport`]
//! (AMQP 1.0: IBM MQ, Azure Service Bus, ActiveMQ Artemis, Solace, RabbitMQ's plugin);
//! others (NATS JetStream, Kafka) can be added beside them.

mod amqp;
mod amqp1;

pub use amqp::AmqpTransport;
pub use amqp1::Amqp1Transport;

use std::sync::Arc;

/// Which protocol a capture point speaks to its broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// AMQP 0-9-1 (RabbitMQ): `transport = "amqp-0-9-1"`, the default for `amqp://` URLs.
    Amqp091,
    /// AMQP 1.0: `transport = "amqp-1.0"`, the default for `amqp1://` and `amqp1s://` URLs.
    Amqp10,
}

impl TransportKind {
    /// The names the `transport` key accepts.
    pub const NAMES: [&'static str; 2] = ["amqp-0-9-1", "amqp-1.0"];

    /// The kind a `transport` value names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "amqp-0-9-1" | "amqp091" | "amqp-0.9.1" => Some(Self::Amqp091),
            "amqp-1.0" | "amqp10" | "amqp1" | "amqp-1-0" => Some(Self::Amqp10),
            _ => None,
        }
    }

    /// The kind a URL implies when no `transport` is given.
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("amqp1://") || url.starts_with("amqp1s://") {
            Self::Amqp10
        } else {
            Self::Amqp091
        }
    }

    /// The protocol's name as the `transport` key writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Amqp091 => "amqp-0-9-1",
            Self::Amqp10 => "amqp-1.0",
        }
    }

    /// A transport of this kind for the broker at `url`, naming its connections `name`.
    pub fn open(self, url: &str, name: &str) -> Arc<dyn Transport> {
        match self {
            Self::Amqp091 => Arc::new(AmqpTransport::new(url).with_name(name)),
            Self::Amqp10 => Arc::new(Amqp1Transport::new(url).with_name(name)),
        }
    }
}

use async_trait::async_trait;

/// Why the broker did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("AMQP 1.0: {0}")]
    Amqp1(String),
    /// The broker refused to take responsibility for a published message.
    #[error("the broker did not accept a message for queue {0:?}")]
    Nacked(String),
    /// The broker could not route a message (its queue does not exist).
    #[error("the broker returned a message for queue {queue:?}: {reply}")]
    Returned { queue: String, reply: String },
    /// The broker did not confirm a message in time.
    #[error("the broker did not confirm a message for queue {0:?} in time")]
    Unconfirmed(String),
    /// The subscription ended (connection or channel closed).
    #[error("the subscription to {0:?} ended")]
    Closed(String),
}

/// A message to publish: persistent, `application/xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    pub queue: String,
    pub body: Vec<u8>,
    /// The request's correlation, so a client with many requests in flight can match.
    pub correlation_id: Option<String>,
    pub message_id: Option<String>,
    /// Extra string headers (the reason a message was moved to the error queue).
    pub headers: Vec<(String, String)>,
}

/// A consumed message; acknowledge it once what it asked for is durable.
pub struct Incoming {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The broker delivered it before (to us, or to a consumer that died).
    pub redelivered: bool,
    pub acker: Box<dyn Acknowledge>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("bytes", &self.body.len())
            .field("message_id", &self.message_id)
            .field("correlation_id", &self.correlation_id)
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

impl Incoming {
    /// The correlation an answer carries: the correlation id, else the message id.
    pub fn correlation(&self) -> Option<&str> {
        self.correlation_id
            .as_deref()
            .or(self.message_id.as_deref())
    }
}

/// Settles one consumed message with the broker.
#[async_trait]
pub trait Acknowledge: Send + Sync {
    /// The message is done: the broker forgets it.
    async fn ack(&self) -> Result<(), TransportError>;
}

/// A stream of consumed messages.
#[async_trait]
pub trait Subscription: Send {
    /// The next message; `None` or an error when the subscription ended.
    async fn next(&mut self) -> Option<Result<Incoming, TransportError>>;
    /// Stops consuming; unacknowledged messages go back to the queue.
    async fn close(self: Box<Self>);
}

/// A message broker.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// Declares durable queues that are missing.
    async fn declare(&self, queues: &[&str]) -> Result<(), TransportError>;
    /// Publishes persistent messages in order and returns once the broker has confirmed
    /// every one of them.
    async fn publish(&self, messages: Vec<Outgoing>) -> Result<(), TransportError>;
    /// Consumes `queue`, with at most `prefetch` messages unacknowledged at once.
    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, TransportError>;
}
