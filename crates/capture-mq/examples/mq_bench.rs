//! Runs the MQ benchmark until `worklane bench mq` exposes it:
//! `cargo run --release -p worklane-capture-mq --example mq_bench -- --messages 20000`

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: worklane_capture_mq::bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worklane_capture_mq::bench::run(Cli::parse().args).await
}
