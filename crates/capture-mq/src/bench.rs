//! `worklane bench mq`: CreateTask on the input queue until its TaskCreated is on the
//! output queue, many in flight, on a SQLite store; against a raw echo through the same
//! broker in the same run, over the same protocol (`--transport`): consume, publish a
//! same-size persistent reply confirmed by the broker (AMQP 0-9-1 publisher confirms,
//! AMQP 1.0 an unsettled send settled `accepted`), acknowledge after the confirm. With
//! `--transform`, each round also runs the capture point with the example transformations
//! (`examples/mq/transform/`: the source sends its own `<OrderEvent>` and reads
//! `<OrderStatus>`), and the cost of the transformations is the ratio of the two capture
//! rates. The source side is an AMQP 0-9-1 client either way. Prints rates and ratios.

use crate::codec::Limits;
use crate::transform::{Direction, Transform, TransformLimits, DEFAULT_TIME_LIMIT};
use crate::transport::TransportKind;
use crate::MqConfig;
use anyhow::Context;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use worklane_engine::{Engine, EngineOptions};

/// Options of the MQ benchmark.
#[derive(Clone, clap::Args)]
pub struct BenchArgs {
    /// The AMQP broker.
    #[arg(
        long,
        env = "WORKLANE_MQ_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub url: String,
    /// Messages per measurement.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Requests in flight (sent, not yet answered).
    #[arg(long, default_value_t = 1_000)]
    pub in_flight: usize,
    /// The capture point's (and the echo's) prefetch window.
    #[arg(long, default_value_t = 512)]
    pub prefetch: u16,
    /// Measurements of each kind; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The capture point's transport, and the echo's protocol: amqp-0-9-1 or amqp-1.0.
    #[arg(long, default_value = "amqp-0-9-1")]
    pub transport: String,
    /// Also measure the capture point with the example transformations.
    #[arg(long)]
    pub transform: bool,
}

impl std::fmt::Debug for BenchArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchArgs")
            .field("url", &worklane_store::redact_url(&self.url))
            .field("messages", &self.messages)
            .field("in_flight", &self.in_flight)
            .field("prefetch", &self.prefetch)
            .field("rounds", &self.rounds)
            .field("transport", &self.transport)
            .field("transform", &self.transform)
            .finish()
    }
}

/// Runs the benchmark and prints the rates.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let kind = TransportKind::from_name(&args.transport).with_context(|| {
        format!(
            "--transport {:?}: one of {}",
            args.transport,
            TransportKind::NAMES.join(", ")
        )
    })?;
    println!(
        "mq bench over {}: {} messages per round, {} in flight, prefetch {}, {} rounds{}",
        kind.name(),
        args.messages,
        args.in_flight,
        args.prefetch,
        args.rounds,
        if args.transform {
            ", with transformations"
        } else {
            ""
        }
    );
    if args.transform {
        let (i, o) = transform_cost(2000)?;
        println!(
            "one transformation alone: inbound {} us, outbound {} us per message",
            i.as_micros(),
            o.as_micros()
        );
    }
    let mut echo = Vec::new();
    let mut capture = Vec::new();
    let mut ratios = Vec::new();
    let mut transformed = Vec::new();
    let mut costs = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let e = match kind {
            TransportKind::Amqp091 => echo_rate(&args).await,
            TransportKind::Amqp10 => echo1_rate(&args).await,
        }
        .context("echo baseline")?;
        let c = capture_rate(&args, kind, false)
            .await
            .context("capture point")?;
        print!(
            "round {round}: echo {e:.0} msg/s, capture point {c:.0} msg/s, ratio {:.2}",
            c / e
        );
        echo.push(e);
        capture.push(c);
        ratios.push(c / e);
        if args.transform {
            let t = capture_rate(&args, kind, true)
                .await
                .context("capture point with transformations")?;
            print!(", with transformations {t:.0} msg/s ({:.2} of it)", t / c);
            transformed.push(t);
            costs.push(1.0 - t / c);
        }
        println!();
    }
    let (e, c, r) = (median(&mut echo), median(&mut capture), median(&mut ratios));
    println!(
        "median: raw {} echo {e:.0} msg/s, MQ capture point (SQLite) {c:.0} msg/s, \
         ratio {r:.2} (median of the rounds' ratios; target >= 0.50)",
        kind.name()
    );
    if args.transform {
        let (t, cost) = (median(&mut transformed), median(&mut costs));
        println!(
            "median: with transformations {t:.0} msg/s, cost {:.0}% of the capture rate \
             (median of the rounds' costs; target <= 20%)",
            cost * 100.0
        );
    }
    Ok(())
}

/// An example transformation, compiled.
fn order_transform(direction: Direction) -> anyhow::Result<Transform> {
    let source = match direction {
        Direction::Inbound => ORDER_IN,
        Direction::Outbound => ORDER_OUT,
    };
    let limits = TransformLimits {
        document: Limits::default(),
        time: DEFAULT_TIME_LIMIT,
    };
    Transform::compile("order.rhai", source, direction, limits).map_err(anyhow::Error::msg)
}

/// The time one run of each example transformation takes on one message, alone.
fn transform_cost(n: usize) -> anyhow::Result<(Duration, Duration)> {
    let (inbound, outbound) = (
        order_transform(Direction::Inbound)?,
        order_transform(Direction::Outbound)?,
    );
    let order = sample_order(1).into_bytes();
    let created = "<GTLMessages>\n  <TaskCreated>\n    <BrokerId>17</BrokerId>\n    \
        <CaptureId>order-00000001</CaptureId>\n    <CapturePointId>BENCH</CapturePointId>\n    \
        <Actor>BENCH</Actor>\n    <EventDateTime>2030-06-01T09:30:00</EventDateTime>\n  \
        </TaskCreated>\n</GTLMessages>\n";
    let started = Instant::now();
    for _ in 0..n {
        inbound.apply(&order)?;
    }
    let per_in = started.elapsed() / n as u32;
    let started = Instant::now();
    for _ in 0..n {
        outbound.apply(created.as_bytes())?;
    }
    Ok((per_in, started.elapsed() / n as u32))
}

/// The example transformations, which the transformed rounds run.
const ORDER_IN: &str = include_str!("../../../examples/mq/transform/order-in.rhai");
const ORDER_OUT: &str = include_str!("../../../examples/mq/transform/order-out.rhai");

fn sample_order(i: usize) -> String {
    format!(
        "<OrderEvent type=\"placed\" system=\"SAP-SD\">\n  <OrderNumber>{i:08}</OrderNumber>\n  \
         <Customer id=\"C-{}\" segment=\"gold\"><Name>ACME</Name></Customer>\n  \
         <Urgency>high</Urgency>\n  <Amount currency=\"EUR\">1250.00</Amount>\n</OrderEvent>\n",
        i % 1000
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Queues {
    input: String,
    output: String,
    error: String,
}

impl Queues {
    fn fresh() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            input: format!("wl-bench-{tag}-in"),
            output: format!("wl-bench-{tag}-out"),
            error: format!("wl-bench-{tag}-err"),
        }
    }

    async fn declare(&self, ch: &Channel) -> anyhow::Result<()> {
        for q in [&self.input, &self.output, &self.error] {
            ch.queue_declare(
                ShortString::from(q.as_str()),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }

    async fn delete(&self, ch: &Channel) {
        for q in [&self.input, &self.output, &self.error] {
            let _ = ch
                .queue_delete(ShortString::from(q.as_str()), QueueDeleteOptions::default())
                .await;
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .with_context(|| format!("connecting to {}", worklane_store::redact_url(url)))
}

/// The source side: sends `bodies` to `input` keeping at most `in_flight` unanswered,
/// and counts the answers on `output`, each of which must contain `expect`. Returns
/// messages per second.
async fn drive(
    url: &str,
    q: &Queues,
    bodies: Vec<Vec<u8>>,
    in_flight: usize,
    expect: &[u8],
) -> anyhow::Result<f64> {
    let conn = connect(url).await?;
    let send = conn.create_channel().await?;
    let recv = conn.create_channel().await?;
    let n = bodies.len();
    let window = Arc::new(Semaphore::new(in_flight));
    let mut answers = recv
        .basic_consume(
            ShortString::from(q.output.as_str()),
            ShortString::from("bench-reader"),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let w = window.clone();
    let input = q.input.clone();
    let sender = tokio::spawn(async move {
        for (i, body) in bodies.into_iter().enumerate() {
            w.acquire().await?.forget();
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(format!("b-{i}")));
            // Not waiting for each confirm: a source system streams its requests.
            send.basic_publish(
                ShortString::from(""),
                ShortString::from(input.as_str()),
                BasicPublishOptions::default(),
                &body,
                props,
            )
            .await?;
        }
        anyhow::Ok(())
    });
    let mut got = 0;
    while got < n {
        let d = tokio::time::timeout(Duration::from_secs(60), answers.next())
            .await
            .context("no answer within 60 s")?
            .context("answer stream ended")??;
        anyhow::ensure!(
            d.data.windows(expect.len()).any(|w| w == expect),
            "unexpected answer: {}",
            String::from_utf8_lossy(&d.data)
        );
        got += 1;
        window.add_permits(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    sender.await??;
    let _ = conn.close(200, "bench done".into()).await;
    Ok(n as f64 / elapsed)
}

/// Baseline: consume, publish a same-size persistent reply with confirms, ack after it.
async fn echo_rate(args: &BenchArgs) -> anyhow::Result<f64> {
    let q = Queues::fresh();
    let conn = connect(&args.url).await?;
    let admin = conn.create_channel().await?;
    q.declare(&admin).await?;
    let consume = conn.create_channel().await?;
    consume
        .basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut deliveries = consume
        .basic_consume(
            ShortString::from(q.input.as_str()),
            ShortString::from("bench-echo"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let output = q.output.clone();
    let echo = tokio::spawn(async move {
        loop {
            let d = tokio::select! {
                _ = stop.cancelled() => break,
                d = deliveries.next() => match d { Some(Ok(d)) => d, _ => break },
            };
            let (publish, output) = (publish.clone(), output.clone());
            tokio::spawn(async move {
                let props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type(ShortString::from("application/xml"));
                let confirm = publish
                    .basic_publish(
                        ShortString::from(""),
                        ShortString::from(output.as_str()),
                        BasicPublishOptions::default(),
                        &d.data,
                        props,
                    )
                    .await?
                    .await?;
                if confirm.is_ack() {
                    d.acker.ack(BasicAckOptions::default()).await?;
                }
                anyhow::Ok(())
            });
        }
    });
    let body = sample_create(0).into_bytes();
    let rate = drive(
        &args.url,
        &q,
        vec![body; args.messages],
        args.in_flight,
        b"<CreateTask>",
    )
    .await;
    cancel.cancel();
    let _ = echo.await;
    q.delete(&admin).await;
    let _ = conn.close(200, "bench done".into()).await;
    rate
}

fn sample_create(i: usize) -> String {
    format!(
        "<GTLMessages>\n  <CreateTask>\n    <CaptureId>bench-{i:08}</CaptureId>\n    <channel>Email</channel>\n    <priority>5</priority>\n  </CreateTask>\n</GTLMessages>\n"
    )
}

/// Baseline over AMQP 1.0: receive unsettled, send the same body unsettled, accept the
/// request once the broker accepted the reply.
async fn echo1_rate(args: &BenchArgs) -> anyhow::Result<f64> {
    use fe2o3_amqp::link::receiver::CreditMode;
    use fe2o3_amqp::types::definitions::SenderSettleMode;
    use fe2o3_amqp::types::messaging::{
        Body, Data, Header, Message, Outcome, Source, Target, TerminusDurability,
    };
    use fe2o3_amqp::types::primitives::{Binary, Value};
    let q = Queues::fresh();
    let conn = connect(&args.url).await?;
    let admin = conn.create_channel().await?;
    q.declare(&admin).await?;
    let url = amqp1_address(&args.url)?;
    let mut c1 = fe2o3_amqp::Connection::open("worklane-bench-echo", url.as_str())
        .await
        .context("AMQP 1.0 connection")?;
    let mut session = fe2o3_amqp::Session::begin(&mut c1).await?;
    let mut receiver = fe2o3_amqp::Receiver::builder()
        .name("bench-echo-in")
        .source(
            Source::builder()
                .address(q.input.as_str())
                .durable(TerminusDurability::Configuration)
                .build(),
        )
        .credit_mode(CreditMode::Manual)
        .auto_accept(false)
        .attach(&mut session)
        .await?;
    let mut sender = fe2o3_amqp::Sender::builder()
        .name("bench-echo-out")
        .target(
            Target::builder()
                .address(q.output.as_str())
                .durable(TerminusDurability::Configuration)
                .build(),
        )
        .sender_settle_mode(SenderSettleMode::Unsettled)
        .attach(&mut session)
        .await?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let window = u32::from(args.prefetch);
    let echo = tokio::spawn(async move {
        let disposer = receiver.disposer();
        loop {
            // Credit as the transport grants it: anew once used up.
            if receiver.credit() == 0 && receiver.set_credit(window).await.is_err() {
                break;
            }
            let d = tokio::select! {
                _ = stop.cancelled() => break,
                d = receiver.recv::<Body<Value>>() => match d { Ok(d) => d, Err(_) => break },
            };
            let (info, msg) = d.into_parts();
            let body: Vec<u8> = match msg.body {
                Body::Data(b) => b.into_iter().flat_map(|Data(x)| x.into_vec()).collect(),
                _ => Vec::new(),
            };
            let reply = Message::builder()
                .header(Header::builder().durable(true).build())
                .data(Binary::from(body))
                .build();
            let Ok(fut) = sender.send_batchable(reply).await else {
                break;
            };
            let disposer = disposer.clone();
            tokio::spawn(async move {
                if let Ok(Outcome::Accepted(_)) = fut.await {
                    let _ = disposer.accept(info).await;
                }
            });
        }
        let _ = sender.close().await;
        let _ = receiver.close().await;
    });
    let body = sample_create(0).into_bytes();
    let rate = drive(
        &args.url,
        &q,
        vec![body; args.messages],
        args.in_flight,
        b"<CreateTask>",
    )
    .await;
    cancel.cancel();
    let _ = echo.await;
    let _ = session.end().await;
    let _ = c1.close().await;
    q.delete(&admin).await;
    let _ = conn.close(200, "bench done".into()).await;
    rate
}

/// The benchmark's AMQP 0-9-1 URL as an AMQP 1.0 one (no virtual host path).
fn amqp1_address(url: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url).context("--url")?;
    u.set_path("");
    Ok(u.to_string())
}

/// The capture point on a fresh SQLite store: CreateTask in, TaskCreated out (with
/// `transform`, the order system's OrderEvent in and OrderStatus out).
async fn capture_rate(
    args: &BenchArgs,
    kind: TransportKind,
    transform: bool,
) -> anyhow::Result<f64> {
    let q = Queues::fresh();
    let dir =
        std::env::temp_dir().join(format!("worklane-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let store =
        worklane_store::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let (engine, writer) = Engine::start(store, EngineOptions::default()).await?;
    let conn = connect(&args.url).await?;
    let admin = conn.create_channel().await?;
    q.declare(&admin).await?;
    let mut cfg = MqConfig::new("BENCH");
    cfg.url = args.url.clone();
    cfg.input_queue = q.input.clone();
    cfg.output_queue = q.output.clone();
    cfg.error_queue = q.error.clone();
    cfg.prefetch = args.prefetch;
    cfg.transport = Some(kind.name().to_owned());
    if transform {
        let (inbound, outbound) = (dir.join("order-in.rhai"), dir.join("order-out.rhai"));
        std::fs::write(&inbound, ORDER_IN)?;
        std::fs::write(&outbound, ORDER_OUT)?;
        cfg.inbound_transform = Some(inbound);
        cfg.outbound_transform = Some(outbound);
    }
    let cancel = CancellationToken::new();
    let cp = tokio::spawn(crate::run(engine.clone(), cfg, cancel.clone()));
    // Both runs capture the same tasks: the plain run sends what the inbound
    // transformation makes of the orders, so the difference is the transformations' cost.
    let inbound = order_transform(Direction::Inbound)?;
    let orders = (0..args.messages).map(sample_order);
    let (bodies, expect): (Vec<Vec<u8>>, &[u8]) = if transform {
        (
            orders.map(String::into_bytes).collect(),
            b"event=\"TaskCreated\"",
        )
    } else {
        let gtl = orders
            .map(|o| inbound.apply(o.as_bytes()))
            .collect::<Result<_, _>>()?;
        (gtl, b"<TaskCreated>")
    };
    let rate = drive(&args.url, &q, bodies, args.in_flight, expect).await;
    cancel.cancel();
    cp.await??;
    drop(engine);
    // The writer stops once every engine handle is gone; do not hang the report on it.
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    q.delete(&admin).await;
    let _ = conn.close(200, "bench done".into()).await;
    let _ = std::fs::remove_dir_all(&dir);
    rate
}
