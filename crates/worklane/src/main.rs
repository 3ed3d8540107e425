//! The `worklane` binary: loads configuration, starts telemetry and calls the library parts.

mod bench;
mod cli;
mod client;
mod components;
mod config;
mod exit;
mod serve;
mod telemetry;

use clap::Parser;
use cli::{BenchCommand, Cli, Command, ConfigCommand, DbcpCommand, MqCommand, ServeArgs};
use exit::Failure;

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(cli));
    if let Err(f) = result {
        eprintln!("worklane: {}", f.message);
        std::process::exit(f.code);
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Config(ConfigCommand::Check { file }) => {
            let cfg =
                config::Config::load(Some(&file)).map_err(|e| Failure::config(e.to_string()))?;
            println!(
                "{}: ok ({} capture points, {} notification targets, store {})",
                file.display(),
                cfg.capture_point.len(),
                cfg.notification_target.len(),
                worklane_store::redact_url(&cfg.store.url)
            );
            Ok(())
        }
        Command::Task(args) => client::run(args).await,
        Command::Openapi => {
            let doc = worklane_api::openapi::document();
            println!(
                "{}",
                doc.to_pretty_json()
                    .map_err(|e| Failure::failed(e.to_string()))?
            );
            Ok(())
        }
        Command::Mq(MqCommand::Send(a)) => Ok(worklane_capture_mq::cli::send(a).await?),
        Command::Mq(MqCommand::Listen(a)) => Ok(worklane_capture_mq::cli::listen(a).await?),
        Command::Dbcp(DbcpCommand::Check(a)) => {
            telemetry::init("text", "warn");
            worklane_capture_db::cli::check(a)
                .await
                .map_err(|e| Failure::config(format!("{e:#}")))
        }
        Command::Notifications(a) => worklane_notify_http::cli::run(a)
            .await
            .map_err(|e| Failure::refused(format!("{e:#}"))),
        Command::Bench(b) => {
            telemetry::init("text", "warn");
            match b {
                BenchCommand::Create(a) => bench::create::run(a).await?,
                BenchCommand::Read(a) => bench::read::run(a).await?,
                BenchCommand::Mq(a) => worklane_capture_mq::bench::run(a).await?,
                BenchCommand::Dbcp(a) => worklane_capture_db::bench::run(a).await?,
                BenchCommand::Notify(a) => worklane_notify_http::bench::run(a).await?,
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut cfg =
        config::Config::load(args.config.as_deref()).map_err(|e| Failure::config(e.to_string()))?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(s) = args.store {
        cfg.store.url = s;
    }
    if args.log_json {
        cfg.log.format = "json".into();
    }
    cfg.validate().map_err(|e| Failure::config(e.to_string()))?;
    telemetry::init(&cfg.log.format, &cfg.log.level);
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {}: {e}", cfg.server.listen)))?;
    let shutdown = serve::shutdown_on_signals();
    serve::run(cfg, listener, shutdown)
        .await
        .map_err(Failure::from)
}
