//! `cargo run --release -p worklane-capture-db --example bench -- --rows 100000`: the
//! dbcp benchmark without the worklane binary.

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: worklane_capture_db::bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worklane_capture_db::bench::run(Cli::parse().args).await
}
