//! Test helper: runs one MQ capture point against a given SQLite store until SIGTERM or
//! Ctrl-C, so tests can kill -9 it mid-stream and start it again. Not the product binary
//! (that is `worklane serve`).

use clap::Parser;
use tokio_util::sync::CancellationToken;
use worklane_capture_mq::MqConfig;
use worklane_engine::{Engine, EngineOptions};

#[derive(Debug, Parser)]
struct Args {
    /// The store, e.g. sqlite:///tmp/x/worklane.db
    #[arg(long)]
    store: String,
    /// The broker.
    #[arg(long)]
    url: String,
    #[arg(long)]
    id: String,
    #[arg(long)]
    input_queue: String,
    #[arg(long)]
    output_queue: String,
    #[arg(long)]
    error_queue: String,
    #[arg(long)]
    check_if_captured: bool,
    /// `amqp-0-9-1` or `amqp-1.0` (by default the URL decides).
    #[arg(long)]
    transport: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut cfg = MqConfig::new(a.id);
    cfg.url = a.url;
    cfg.input_queue = a.input_queue;
    cfg.output_queue = a.output_queue;
    cfg.error_queue = a.error_queue;
    cfg.check_if_captured = a.check_if_captured;
    cfg.transport = a.transport;
    let store = worklane_store::connect(&a.store).await?;
    let (engine, writer) = Engine::start(store, EngineOptions::default()).await?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.cancel();
    });
    worklane_capture_mq::run(engine, cfg, cancel).await?;
    writer.await?;
    Ok(())
}
