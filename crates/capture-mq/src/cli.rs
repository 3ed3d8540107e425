//! `worklane mq send`, `worklane mq listen` and `worklane mq transform`: try the protocol
//! and a capture point's transformations by hand.

use crate::codec::{Codec, Limits};
use crate::transform::{Direction, Transform, TransformLimits};
use crate::transport::{AmqpTransport, Outgoing, Transport};
use anyhow::Context;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties};
use std::path::PathBuf;
use std::time::Duration;

/// Where the capture point's queues are.
#[derive(Clone, clap::Args)]
pub struct QueueArgs {
    /// The AMQP broker.
    #[arg(
        long,
        env = "WORKLANE_MQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub url: String,
    /// The capture point's input queue.
    #[arg(long, default_value = "GTLIn")]
    pub input_queue: String,
    /// The capture point's output queue.
    #[arg(long, default_value = "GTLOut")]
    pub output_queue: String,
}

impl std::fmt::Debug for QueueArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueArgs")
            .field("url", &worklane_store::redact_url(&self.url))
            .field("input_queue", &self.input_queue)
            .field("output_queue", &self.output_queue)
            .finish()
    }
}

/// `mq send --capture-point ID FILE...`
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The capture point the messages are for (its queues come from the configuration
    /// when one is given, else from the flags below).
    #[arg(long)]
    pub capture_point: String,
    #[command(flatten)]
    pub queues: QueueArgs,
    /// XML files, each one GTLMessages document.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `mq listen`
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub queues: QueueArgs,
    /// Read this queue instead of the output queue (e.g. the error queue, GTLError).
    #[arg(long)]
    pub queue: Option<String>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop when no message came for this many seconds.
    #[arg(long)]
    pub idle_timeout: Option<u64>,
}

/// `mq transform --in FILE --inbound SCRIPT` (or `--outbound SCRIPT`)
#[derive(Debug, Clone, clap::Args)]
pub struct TransformArgs {
    /// The document to transform: the source system's own message for `--inbound`, a
    /// GTLMessages document for `--outbound`.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// An inbound transformation (the source system's format → GTLMessages).
    #[arg(long, value_name = "SCRIPT", required_unless_present = "outbound")]
    pub inbound: Option<PathBuf>,
    /// An outbound transformation (GTLMessages → the source system's format).
    #[arg(long, value_name = "SCRIPT", conflicts_with = "inbound")]
    pub outbound: Option<PathBuf>,
    /// The longest the transformation may run, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub time_limit_ms: u64,
}

/// Runs a transformation on one file and prints the result. An inbound result is read as
/// the capture point would read it, and an outbound input must be a GTLMessages answer or
/// notification: either failure is the error (what the capture point would answer
/// INVALID_FORMAT for), and the process exits non-zero.
pub fn transform(args: TransformArgs) -> anyhow::Result<String> {
    let (script, direction) = match (&args.inbound, &args.outbound) {
        (Some(s), _) => (s, Direction::Inbound),
        (None, Some(s)) => (s, Direction::Outbound),
        (None, None) => {
            anyhow::bail!("name a transformation: --inbound SCRIPT or --outbound SCRIPT")
        }
    };
    let limits = TransformLimits {
        document: Limits::default(),
        time: Duration::from_millis(args.time_limit_ms.max(1)),
    };
    let t = Transform::load(script, direction, limits).map_err(anyhow::Error::msg)?;
    let input =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let codec = Codec::utc();
    if direction == Direction::Outbound {
        codec.parse_outbound(&input).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a GTLMessages answer or notification: {e}",
                args.input.display()
            )
        })?;
    }
    let out = t.apply(&input)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    if direction == Direction::Inbound {
        match codec.parse_inbound(&out) {
            Ok(m) => eprintln!("reads as {}", m.message_name()),
            Err(e) => anyhow::bail!("{text}\nthe result is not a GTLMessages request: {e}"),
        }
    }
    Ok(text)
}

/// Publishes each file to the input queue (persistent, confirmed, with a fresh message
/// id) and prints the ids, which the answers on the output queue carry as correlation.
pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let transport = AmqpTransport::new(args.queues.url.clone());
    transport
        .declare(&[&args.queues.input_queue])
        .await
        .context("declaring the input queue")?;
    let codec = Codec::utc();
    for file in &args.files {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if let Err(e) = codec.parse_inbound(&body) {
            // Sent anyway: trying the error path is a reason to use this command.
            eprintln!("warning: {} will be refused: {e}", file.display());
        }
        let id = uuid::Uuid::new_v4().to_string();
        transport
            .publish(vec![Outgoing {
                queue: args.queues.input_queue.clone(),
                body,
                message_id: Some(id.clone()),
                ..Default::default()
            }])
            .await
            .with_context(|| format!("sending {}", file.display()))?;
        println!(
            "sent {} to {} (capture point {}) as message id {id}",
            file.display(),
            args.queues.input_queue,
            args.capture_point
        );
    }
    Ok(())
}

/// Prints every message of the output queue (or `--queue`) as it arrives, with its
/// correlation id and headers, and acknowledges it.
pub async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| args.queues.output_queue.clone());
    let conn = Connection::connect(&args.queues.url, ConnectionProperties::default())
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                worklane_store::redact_url(&args.queues.url)
            )
        })?;
    let ch = conn.create_channel().await?;
    ch.queue_declare(
        ShortString::from(queue.as_str()),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("declaring {queue}"))?;
    let mut consumer = ch
        .basic_consume(
            ShortString::from(queue.as_str()),
            ShortString::from("worklane-mq-listen"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!("listening on {queue} (Ctrl-C to stop)");
    let mut seen = 0;
    while args.count.is_none_or(|n| seen < n) {
        let next = match args.idle_timeout {
            Some(s) => match tokio::time::timeout(Duration::from_secs(s), consumer.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => tokio::select! {
                n = consumer.next() => n,
                _ = tokio::signal::ctrl_c() => break,
            },
        };
        let Some(delivery) = next else { break };
        let d = delivery?;
        let p = &d.properties;
        let mut line = format!("--- {} bytes", d.data.len());
        if let Some(c) = p.correlation_id() {
            line.push_str(&format!(" correlation_id={c}"));
        }
        if let Some(m) = p.message_id() {
            line.push_str(&format!(" message_id={m}"));
        }
        if let Some(h) = p.headers() {
            for (k, v) in h.inner() {
                let v = match v {
                    AMQPValue::LongString(s) => s.to_string(),
                    other => format!("{other:?}"),
                };
                line.push_str(&format!(" {k}={v:?}"));
            }
        }
        println!("{line}\n{}", String::from_utf8_lossy(&d.data).trim_end());
        d.acker.ack(BasicAckOptions::default()).await?;
        seen += 1;
    }
    let _ = conn.close(200, "listen done".into()).await;
    Ok(())
}
