//! AMQP 1.0 through fe2o3-amqp, for the brokers back offices run (IBM MQ's AMQP channel,
//! Azure Service Bus, ActiveMQ Artemis, Solace, RabbitMQ's AMQP 1.0 support).
//!
//! The same guarantees as [`super::AmqpTransport`]: answers are sent unsettled and count as
//! sent only once the broker settles them `accepted`; inbound messages arrive unsettled
//! (receiver-settle-mode first, credit of `prefetch` granted whenever the last grant is
//! used up) and are accepted only when the capture point says so; the durable header is set on every message. Publishing
//! reconnects lazily after a failure; the capture point re-subscribes with backoff.
//!
//! Queue names are AMQP 1.0 addresses, used as written (`GTLIn`, `/amq/queue/GTLIn`,
//! `GTL.IN`...), and every link asks for the `queue` capability (point-to-point, not a
//! topic). AMQP 1.0 has no way to declare a queue, so the queues must exist:
//! [`Transport::declare`] does nothing here.

use super::{Acknowledge, Incoming, Outgoing, Subscription, Transport, TransportError};
use async_trait::async_trait;
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::DeliveryInfo;
use fe2o3_amqp::link::receiver::CreditMode;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::{ReceiverSettleMode, SenderSettleMode};
use fe2o3_amqp::types::messaging::{
    ApplicationProperties, Body, Data, Header, Message, MessageId, Outcome, Properties,
};
use fe2o3_amqp::types::messaging::{Source, Target, TerminusDurability};
use fe2o3_amqp::types::primitives::{Array, Binary, SimpleValue, Symbol, Value};
use fe2o3_amqp::{Connection, Receiver, ReceiverDisposer, Sender, Session};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How long to wait for the broker to settle a message before treating it as not sent.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection, a session or a link may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing links, session and connection politely may take; after it they are
/// dropped (the broker then ends them itself).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The idle time-out announced to the broker: a silent peer is taken for dead after it.
const IDLE_TIMEOUT_MS: u32 = 60_000;

/// Everything that can go wrong in fe2o3-amqp, as text (its error types are many).
fn err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Amqp1(format!("{what}: {e}"))
}

/// A broker reached over AMQP 1.0.
pub struct Amqp1Transport {
    url: String,
    name: String,
    publisher: Mutex<Option<Publisher>>,
}

impl std::fmt::Debug for Amqp1Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amqp1Transport")
            .field("url", &worklane_store::redact_url(&self.url))
            .field("name", &self.name)
            .finish()
    }
}

/// One connection and session, with a sender link per address.
struct Publisher {
    conn: Watched,
    session: SessionHandle<()>,
    senders: HashMap<String, Sender>,
}

/// A connection handed to a task that watches it: outcomes of sends and receives in
/// flight do not end when the connection dies, so everything waiting on them also waits
/// on [`Watched::ended`].
struct Watched {
    ended: CancellationToken,
    close: CancellationToken,
}

impl Watched {
    fn new(mut conn: ConnectionHandle<()>) -> Self {
        let (ended, close) = (CancellationToken::new(), CancellationToken::new());
        let (e, c) = (ended.clone(), close.clone());
        tokio::spawn(async move {
            tokio::select! {
                r = conn.on_close() => {
                    tracing::debug!(outcome = ?r, "AMQP 1.0 connection ended");
                }
                _ = c.cancelled() => {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
                }
            }
            e.cancel();
        });
        Self { ended, close }
    }

    fn is_closed(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Closes the connection (in the background).
    fn close(&self) {
        self.close.cancel();
    }
}

/// The broker's address and the connection options the URL gives.
struct Endpoint {
    /// `amqp://host:port` or `amqps://host:port`, without credentials or path.
    address: String,
    /// SASL PLAIN, from the URL's user and password (percent-decoded).
    sasl: Option<SaslProfile>,
    /// The `hostname` of the open frame: `vhost:NAME` when the URL has a path (RabbitMQ's
    /// virtual host), else the host.
    hostname: Option<String>,
}

/// Reads `amqp[s]://user:pass@host:port/vhost` (the `amqp1`/`amqp1s` schemes as well).
fn endpoint(url: &str) -> Result<Endpoint, TransportError> {
    let parsed = url::Url::parse(url).map_err(|e| err("the URL", e))?;
    let scheme = match parsed.scheme() {
        "amqp" | "amqp1" => "amqp",
        "amqps" | "amqp1s" => "amqps",
        other => return Err(err("the URL", format!("unknown scheme {other:?}"))),
    };
    let host = parsed.host_str().ok_or_else(|| err("the URL", "no host"))?;
    let port = parsed
        .port()
        .unwrap_or(if scheme == "amqps" { 5671 } else { 5672 });
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let sasl = (!parsed.username().is_empty()).then(|| SaslProfile::Plain {
        username: decode(parsed.username()),
        password: decode(parsed.password().unwrap_or("")),
    });
    let path = decode(parsed.path().trim_start_matches('/'));
    let hostname = if path.is_empty() {
        None
    } else {
        Some(format!("vhost:{path}"))
    };
    Ok(Endpoint {
        address: format!("{scheme}://{host}:{port}"),
        sasl,
        hostname,
    })
}

impl Amqp1Transport {
    /// A transport for the broker at `url`; nothing is opened until first use.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            name: "worklane".to_owned(),
            publisher: Mutex::new(None),
        }
    }

    /// Names the connections (the container id), so operators can tell them apart.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn connect(&self) -> Result<(Watched, SessionHandle<()>), TransportError> {
        let ep = endpoint(&self.url)?;
        let container = format!("{} {}", self.name, uuid::Uuid::new_v4().simple());
        let mut builder = Connection::builder()
            .container_id(container)
            .idle_time_out(IDLE_TIMEOUT_MS);
        if let Some(h) = ep.hostname.as_deref() {
            builder = builder.hostname(h);
        }
        if let Some(s) = ep.sasl.clone() {
            builder = builder.sasl_profile(s);
        }
        let open = builder.open(ep.address.as_str());
        let mut conn = tokio::time::timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| err("connecting", "timed out"))?
            .map_err(|e| err("connecting", e))?;
        match tokio::time::timeout(OPEN_TIMEOUT, Session::begin(&mut conn)).await {
            Ok(Ok(session)) => Ok((Watched::new(conn), session)),
            Ok(Err(e)) => {
                let _ = conn.close().await;
                Err(err("beginning a session", e))
            }
            Err(_) => {
                let _ = conn.close().await;
                Err(err("beginning a session", "timed out"))
            }
        }
    }

    /// Forgets the publishing connection after a failure; it is closed in the background.
    async fn drop_publisher(&self) {
        if let Some(p) = self.publisher.lock().await.take() {
            tokio::spawn(p.close());
        }
    }

    /// Sends every message in order, then waits for the broker's outcomes together.
    async fn send_settled(&self, messages: Vec<Outgoing>) -> Result<(), TransportError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pending = Vec::with_capacity(messages.len());
        let ended;
        {
            let mut guard = self.publisher.lock().await;
            if guard.as_ref().is_none_or(|p| p.conn.is_closed()) {
                if let Some(old) = guard.take() {
                    tokio::spawn(old.close());
                }
                let (conn, session) = self.connect().await?;
                *guard = Some(Publisher {
                    conn,
                    session,
                    senders: HashMap::new(),
                });
            }
            let p = guard.as_mut().expect("opened above");
            ended = p.conn.ended.clone();
            for m in messages {
                let queue = m.queue.clone();
                let sender = p.sender(&queue, &self.name).await?;
                let fut = sender
                    .send_batchable(message(m))
                    .await
                    .map_err(|e| err(&format!("sending to {queue:?}"), e))?;
                pending.push((queue, fut));
            }
        }
        for (queue, fut) in pending {
            let outcome = tokio::select! {
                o = tokio::time::timeout(CONFIRM_TIMEOUT, fut) => {
                    o.map_err(|_| TransportError::Unconfirmed(queue.clone()))?
                }
                _ = ended.cancelled() => {
                    return Err(err(&format!("sending to {queue:?}"), "the connection ended"));
                }
            };
            match outcome {
                Ok(Outcome::Accepted(_)) => {}
                Ok(other) => {
                    tracing::warn!(queue = %queue, outcome = ?other, "the broker did not accept a message");
                    return Err(TransportError::Nacked(queue));
                }
                Err(e) => return Err(err(&format!("sending to {queue:?}"), e)),
            }
        }
        Ok(())
    }
}

impl Publisher {
    /// The sender link to `address`, attached on first use.
    async fn sender(&mut self, address: &str, name: &str) -> Result<&mut Sender, TransportError> {
        if !self.senders.contains_key(address) {
            let attach = Sender::builder()
                .name(format!(
                    "{name} to {address} {}",
                    uuid::Uuid::new_v4().simple()
                ))
                .target(
                    Target::builder()
                        .address(address)
                        .durable(TerminusDurability::Configuration)
                        .capabilities(queue_capability())
                        .build(),
                )
                .sender_settle_mode(SenderSettleMode::Unsettled)
                .attach(&mut self.session);
            let sender = tokio::time::timeout(OPEN_TIMEOUT, attach)
                .await
                .map_err(|_| err(&format!("attaching to {address:?}"), "timed out"))?
                .map_err(|e| err(&format!("attaching to {address:?}"), e))?;
            self.senders.insert(address.to_owned(), sender);
        }
        Ok(self.senders.get_mut(address).expect("inserted above"))
    }

    async fn close(mut self) {
        if !self.conn.is_closed() {
            let close = async {
                for (_, s) in self.senders.drain() {
                    let _ = s.close().await;
                }
                let _ = self.session.end().await;
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        }
        self.conn.close();
    }
}

/// The `queue` capability on every link's source or target: IBM MQ's AMQP channel and
/// ActiveMQ Artemis take an address without it for a topic; other brokers ignore it.
/// Terminus durability `configuration` goes with it: RabbitMQ 3.x's plugin otherwise
/// takes the queue for a transient one and refuses the (durable) queue that exists.
fn queue_capability() -> Array<Symbol> {
    Array::from(vec![Symbol::from("queue")])
}

/// The AMQP 1.0 message for `m`: durable, one data section, `application/xml`.
fn message(m: Outgoing) -> Message<Data> {
    let mut props = Properties::builder()
        .content_type(Symbol::from("application/xml"))
        .content_encoding(Symbol::from("utf-8"));
    if let Some(id) = m.message_id {
        props = props.message_id(MessageId::String(id));
    }
    if let Some(c) = m.correlation_id {
        props = props.correlation_id(MessageId::String(c));
    }
    let mut builder = Message::builder()
        .header(Header::builder().durable(true).build())
        .properties(props.build());
    if !m.headers.is_empty() {
        let mut app = ApplicationProperties::builder();
        for (k, v) in m.headers {
            app = app.insert(k, SimpleValue::String(v));
        }
        builder = builder.application_properties(app.build());
    }
    builder.data(Binary::from(m.body)).build()
}

/// A message id or correlation id as text.
fn id_text(id: &MessageId) -> String {
    match id {
        MessageId::String(s) => s.clone(),
        MessageId::Ulong(n) => n.to_string(),
        MessageId::Uuid(u) => uuid::Uuid::from_bytes(*u.as_inner()).to_string(),
        MessageId::Binary(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The bytes of a body: its data sections joined, or a string or binary value. Other
/// bodies (sequences, maps...) are not GTLMessages documents: their debug form is kept,
/// so the message is refused and lands on the error queue with something to look at.
fn body_bytes(body: Body<Value>) -> Vec<u8> {
    match body {
        Body::Data(sections) => sections.into_iter().flat_map(|d| d.0.into_vec()).collect(),
        Body::Value(v) => match v.0 {
            Value::String(s) => s.into_bytes(),
            Value::Binary(b) => b.into_vec(),
            other => format!("{other:?}").into_bytes(),
        },
        Body::Sequence(s) => format!("{s:?}").into_bytes(),
        Body::Empty => Vec::new(),
    }
}

#[async_trait]
impl Transport for Amqp1Transport {
    async fn declare(&self, _queues: &[&str]) -> Result<(), TransportError> {
        // AMQP 1.0 cannot declare queues: they must exist (see docs/mq.md).
        Ok(())
    }

    async fn publish(&self, messages: Vec<Outgoing>) -> Result<(), TransportError> {
        let result = self.send_settled(messages).await;
        if result.is_err() {
            self.drop_publisher().await;
        }
        result
    }

    async fn subscribe(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, TransportError> {
        let (conn, mut session) = self.connect().await?;
        let attach = Receiver::builder()
            .name(format!(
                "{} from {queue} {}",
                self.name,
                uuid::Uuid::new_v4().simple()
            ))
            .source(
                Source::builder()
                    .address(queue)
                    .durable(TerminusDurability::Configuration)
                    .capabilities(queue_capability())
                    .build(),
            )
            .receiver_settle_mode(ReceiverSettleMode::First)
            .credit_mode(CreditMode::Manual)
            .auto_accept(false)
            .attach(&mut session);
        let receiver = match tokio::time::timeout(OPEN_TIMEOUT, attach).await {
            Ok(Ok(mut r)) => match r.set_credit(u32::from(prefetch)).await {
                Ok(()) => r,
                Err(e) => {
                    conn.close();
                    return Err(err(&format!("granting credit on {queue:?}"), e));
                }
            },
            failed => {
                conn.close();
                let e = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                return Err(err(&format!("attaching to {queue:?}"), e));
            }
        };
        Ok(Box::new(Amqp1Subscription {
            window: u32::from(prefetch),
            disposer: receiver.disposer(),
            receiver: Some(receiver),
            session,
            conn,
            queue: queue.to_owned(),
        }))
    }
}

struct Amqp1Subscription {
    /// The credit granted at once: `prefetch`.
    window: u32,
    receiver: Option<Receiver>,
    disposer: ReceiverDisposer,
    session: SessionHandle<()>,
    conn: Watched,
    queue: String,
}

struct Amqp1Acker {
    disposer: ReceiverDisposer,
    info: std::sync::Mutex<Option<DeliveryInfo>>,
}

#[async_trait]
impl Acknowledge for Amqp1Acker {
    async fn ack(&self) -> Result<(), TransportError> {
        let info = self.info.lock().expect("not poisoned").take();
        let Some(info) = info else { return Ok(()) };
        tokio::time::timeout(CONFIRM_TIMEOUT, self.disposer.accept(info))
            .await
            .map_err(|_| err("accepting a message", "timed out"))?
            .map_err(|e| err("accepting a message", e))
    }
}

#[async_trait]
impl Subscription for Amqp1Subscription {
    async fn next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let receiver = self.receiver.as_mut()?;
        let what = || format!("the subscription to {:?}", self.queue);
        // Credit is granted anew only once it is used up, so no transfer is in flight when
        // it is: RabbitMQ 3.x's plugin counts credit granted while transfers are in flight
        // twice and sends more than allowed (which the link must refuse). The window is
        // still `prefetch`; the capture point bounds what it processes at once itself.
        if receiver.credit() == 0 {
            if let Err(e) = receiver.set_credit(self.window).await {
                return Some(Err(err(&what(), e)));
            }
        }
        // A connection that ends (the socket closed, the broker closed it) does not always
        // end the link's `recv`: watch the connection too.
        let delivery = tokio::select! {
            d = receiver.recv::<Body<Value>>() => match d {
                Ok(d) => d,
                Err(e) => return Some(Err(err(&what(), e))),
            },
            _ = self.conn.ended.cancelled() => {
                return Some(Err(err(&what(), "the connection ended")));
            }
        };
        let (info, msg) = delivery.into_parts();
        let props = msg.properties.as_ref();
        let redelivered = msg.header.as_ref().is_some_and(|h| h.delivery_count > 0);
        Some(Ok(Incoming {
            message_id: props.and_then(|p| p.message_id.as_ref()).map(id_text),
            correlation_id: props.and_then(|p| p.correlation_id.as_ref()).map(id_text),
            redelivered,
            body: body_bytes(msg.body),
            acker: Box::new(Amqp1Acker {
                disposer: self.disposer.clone(),
                info: std::sync::Mutex::new(Some(info)),
            }),
        }))
    }

    async fn close(mut self: Box<Self>) {
        // The broker hands unsettled messages back to the queue when the link or the
        // connection ends. A dead connection has nothing left to close politely.
        if !self.conn.is_closed() {
            let close = async {
                if let Some(r) = self.receiver.take() {
                    let _ = r.close().await;
                }
                let _ = self.session.end().await;
            };
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        }
        self.conn.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_gives_address_credentials_and_virtual_host() {
        let ep = endpoint("amqp1s://Root%2FKey:a%2Bb%3D@ns.example.net").unwrap();
        assert_eq!(ep.address, "amqps://ns.example.net:5671");
        assert_eq!(ep.hostname, None);
        match ep.sasl {
            Some(SaslProfile::Plain { username, password }) => {
                assert_eq!((username.as_str(), password.as_str()), ("Root/Key", "a+b="));
            }
            other => panic!("{other:?}"),
        }
        let ep = endpoint("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(ep.address, "amqp://127.0.0.1:5672");
        assert_eq!(ep.hostname.as_deref(), Some("vhost:/"));
        let ep = endpoint("amqp1://broker").unwrap();
        assert_eq!(ep.address, "amqp://broker:5672");
        assert!(ep.sasl.is_none());
        assert!(endpoint("http://broker").is_err());
    }

    #[test]
    fn ids_and_bodies_are_read_whatever_their_amqp_type() {
        assert_eq!(id_text(&MessageId::Ulong(7)), "7");
        assert_eq!(id_text(&MessageId::String("m-1".into())), "m-1");
        let data = Body::<Value>::Data(
            vec![
                Data(Binary::from(b"<a>".to_vec())),
                Data(Binary::from(b"</a>".to_vec())),
            ]
            .into(),
        );
        assert_eq!(body_bytes(data), b"<a></a>");
        let text = Body::Value(fe2o3_amqp::types::messaging::AmqpValue(Value::String(
            "<b/>".into(),
        )));
        assert_eq!(body_bytes(text), b"<b/>");
        assert!(body_bytes(Body::Empty).is_empty());
    }
}
