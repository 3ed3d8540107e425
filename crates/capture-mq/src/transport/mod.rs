//! The broker seam: what the capture point needs from a message broker, so brokers other
//! than AMQP 0-9-1 (AMQP 1.0, NATS JetStream, Kafka, IBM MQ) can be added beside
//! [`AmqpTransport`].

mod amqp;

pub use amqp::AmqpTransport;

use async_trait::async_trait;

/// Why the broker did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("AMQP: {0}")]
    Amqp(#[from] lapin::Error),
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
