//! Runs the notification benchmark without the binary:
//! `cargo run --release -p worklane-notify-http --example bench -- --runs 3`.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: worklane_notify_http::bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worklane_notify_http::bench::run(Cli::parse().args).await
}
