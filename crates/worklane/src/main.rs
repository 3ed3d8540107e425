//! The `worklane` binary: loads configuration, starts telemetry and calls the library parts.

mod access;
mod agents;
mod bench;
mod cli;
mod client;
mod credentials;
mod exit;
mod rules;
mod telemetry;

use clap::Parser;
use cli::{BenchCommand, Cli, Command, ConfigCommand, DbcpCommand, MqCommand, ServeArgs};
use exit::Failure;
use worklane_server::{components, config};

// A server allocating many small buffers per request on several threads: mimalloc spends
// markedly less time there than glibc's malloc (about a fifth more notifications per
// second in `worklane bench notify`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
                "{}: ok ({} capture points, {} notification targets, {} calendars, {} departments, {} processes, {} rules, store {})",
                file.display(),
                cfg.capture_point.len(),
                cfg.notification_target.len(),
                cfg.calendars.len(),
                cfg.rules.counts().0,
                cfg.rules.counts().1,
                cfg.rules.counts().2,
                worklane_store::redact_url(&cfg.store.url)
            );
            Ok(())
        }
        Command::Task(args) => client::run(args).await,
        Command::Agents(args) => agents::run(args).await,
        Command::Rules(args) => rules::run(args).await,
        Command::Openapi => {
            let doc = worklane_api::openapi::document();
            println!(
                "{}",
                doc.to_pretty_json()
                    .map_err(|e| Failure::failed(e.to_string()))?
            );
            Ok(())
        }
        Command::Mq(MqCommand::Send { config, mut args }) => {
            if let Some(file) = config {
                args.queues = mq_queues(&file, &args.capture_point)?;
            }
            Ok(worklane_capture_mq::cli::send(args).await?)
        }
        Command::Mq(MqCommand::Listen {
            config,
            capture_point,
            mut args,
        }) => {
            if let (Some(file), Some(cp)) = (config, capture_point) {
                args.queues = mq_queues(&file, &cp)?;
            }
            Ok(worklane_capture_mq::cli::listen(args).await?)
        }
        Command::Mq(MqCommand::Transform { args }) => {
            let out = worklane_capture_mq::cli::transform(args)
                .map_err(|e| Failure::refused(format!("{e:#}")))?;
            print!("{out}");
            Ok(())
        }
        Command::Dbcp(DbcpCommand::Check(a)) => {
            telemetry::init("text", "warn");
            worklane_capture_db::cli::check(a)
                .await
                .map_err(|e| Failure::config(format!("{e:#}")))
        }
        Command::Users(a) => access::users(a).await,
        Command::Tokens(a) => access::tokens(a).await,
        Command::Notifications(a) => {
            let client = a.auth.client(std::time::Duration::from_secs(300))?;
            worklane_notify_http::cli::run(a.args, &client)
                .await
                .map_err(|e| Failure::refused(format!("{e:#}")))
        }
        Command::Bench(b) => {
            telemetry::init("text", "warn");
            match b {
                BenchCommand::Console(a) => bench::console::run(a).await?,
                BenchCommand::Create(a) => bench::create::run(a).await?,
                BenchCommand::Distribute(a) => bench::distribute::run(a).await?,
                BenchCommand::Failover(a) => bench::failover::run(a).await?,
                BenchCommand::Read(a) => bench::read::run(a).await?,
                BenchCommand::Rules(a) => bench::rules::run(a).await?,
                BenchCommand::Mq(a) => worklane_capture_mq::bench::run(a).await?,
                BenchCommand::Dbcp(a) => worklane_capture_db::bench::run(a).await?,
                BenchCommand::Notify(a) => worklane_notify_http::bench::run(a).await?,
            }
            Ok(())
        }
    }
}

/// The broker URL and queues of the MQ capture point `id` in a configuration file.
fn mq_queues(
    file: &std::path::Path,
    id: &str,
) -> Result<worklane_capture_mq::cli::QueueArgs, Failure> {
    let cfg = config::Config::load(Some(file)).map_err(|e| Failure::config(e.to_string()))?;
    let found = cfg.components.iter().find_map(|c| match c {
        components::Component::Mq(c) if c.id == id => Some(Ok(c)),
        components::Component::Database(c) if c.id == id => Some(Err(())),
        _ => None,
    });
    match found {
        Some(Ok(c)) => Ok(worklane_capture_mq::cli::QueueArgs {
            url: c.url.clone(),
            input_queue: c.input_queue.clone(),
            output_queue: c.output_queue.clone(),
        }),
        Some(Err(())) => Err(Failure::config(format!(
            "capture point {id:?} is not an MQ capture point"
        ))),
        None => Err(Failure::config(format!(
            "{}: no capture point {id:?}",
            file.display()
        ))),
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
    cfg.resolve().map_err(|e| Failure::config(e.to_string()))?;
    telemetry::init(&cfg.log.format, &cfg.log.level);
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {}: {e}", cfg.server.listen)))?;
    let shutdown = worklane_server::shutdown_on_signals();
    worklane_server::run(cfg, listener, shutdown)
        .await
        .map_err(Failure::from)
}
