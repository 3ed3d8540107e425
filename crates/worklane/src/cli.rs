//! The command line: `worklane serve`, `config check`, task client commands, benchmarks.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Worklane: workload distribution server.
///
/// Exit codes: 0 success; 1 failure; 2 usage error; 3 the server refused the request
/// (4xx: not found, refused action, bad input); 4 the server could not be reached or
/// failed (5xx); 5 invalid configuration.
#[derive(Debug, Parser)]
#[command(name = "worklane", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (REST API, processing, capture points, notifiers).
    Serve(ServeArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with tasks on a running server.
    Task(TaskArgs),
    /// Agents on a running server: create, list, update, set state, pull, answer offers.
    Agents(crate::agents::AgentsArgs),
    /// Users of the console and the API: add, list, disable, enable, reset a password.
    Users(crate::access::UsersArgs),
    /// API tokens: create (the secret is shown once), list, revoke.
    Tokens(crate::access::TokensArgs),
    /// Print the REST API's OpenAPI document.
    Openapi,
    /// Try the MQ Capture Point's protocol by hand.
    #[command(subcommand)]
    Mq(MqCommand),
    /// Database Capture Point tools.
    #[command(subcommand)]
    Dbcp(DbcpCommand),
    /// List, resend and replay HTTP notifications of a running server.
    Notifications(NotificationsCli),
    /// Business rules: test them offline, explain a task, reload, preview a change.
    Rules(RulesArgs),
    /// Measure performance (starts its own server and stores).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `worklane notifications`: the notifier's commands with the caller's credential.
#[derive(Debug, Args)]
pub struct NotificationsCli {
    #[command(flatten)]
    pub auth: crate::credentials::TokenArg,
    #[command(flatten)]
    pub args: worklane_notify_http::cli::NotificationsArgs,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub remote: crate::credentials::Remote,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Show what the rules of a configuration file do to a task, offline: every rule
    /// tried in each phase, the outcome and the priority curve.
    Test {
        /// The task as JSON (a create's attributes, with capturePointId), `-` for stdin.
        task: std::path::PathBuf,
        /// The configuration file whose rules to use.
        #[arg(long, short, env = "WORKLANE_CONFIG", default_value = "worklane.toml")]
        config: std::path::PathBuf,
        /// Evaluate at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Hours of the priority curve to draw.
        #[arg(long, default_value_t = 8)]
        hours: u32,
    },
    /// Ask a running server what its rules do to a task (a JSON file) or a stored task.
    Explain {
        /// The task as JSON (a create's attributes), `-` for stdin.
        #[arg(required_unless_present = "broker_id")]
        task: Option<std::path::PathBuf>,
        /// Explain a stored task instead.
        #[arg(long, conflicts_with = "task")]
        broker_id: Option<i64>,
        /// Evaluate at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Hours of the priority curve to draw.
        #[arg(long, default_value_t = 8)]
        hours: u32,
    },
    /// Make a running server read its configuration file's rules again (as SIGHUP does).
    Reload,
    /// Preview a new configuration on a running server: how many live tasks would change
    /// process, queue, priority or due date. Nothing is applied.
    Diff {
        /// The new configuration file.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum MqCommand {
    /// Put GTLMessages XML files on a capture point's input queue.
    Send {
        /// Take the broker URL and queues of `--capture-point` from this configuration.
        #[arg(long, env = "WORKLANE_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: worklane_capture_mq::cli::SendArgs,
    },
    /// Print what arrives on a capture point's output queue (or another queue).
    Listen {
        /// Take the broker URL and queues of `--capture-point` from this configuration.
        #[arg(long, env = "WORKLANE_CONFIG", requires = "capture_point")]
        config: Option<PathBuf>,
        /// The capture point whose queues to read (with `--config`).
        #[arg(long)]
        capture_point: Option<String>,
        #[command(flatten)]
        args: worklane_capture_mq::cli::ListenArgs,
    },
    /// Run a capture point's transformation on one file and print the result.
    Transform {
        #[command(flatten)]
        args: worklane_capture_mq::cli::TransformArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbcpCommand {
    /// Prepare every statement of the database capture points against their sources.
    Check(worklane_capture_db::cli::CheckArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see worklane.example.toml.
    #[arg(long, env = "WORKLANE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides server.listen).
    #[arg(long)]
    pub listen: Option<String>,
    /// Store URL (overrides store.url): sqlite://FILE or postgres://USER@HOST/DB.
    #[arg(long)]
    pub store: Option<String>,
    /// Log as JSON lines (overrides log.format).
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (and WORKLANE_* variables); names the bad key.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(flatten)]
    pub remote: crate::credentials::Remote,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: TaskCommand,
}

/// Attributes a source may set (SPEC section 1).
#[derive(Debug, Args, Default)]
pub struct TaskAttrs {
    #[arg(long)]
    pub capture_id: Option<String>,
    #[arg(long)]
    pub channel: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
    #[arg(long, allow_hyphen_values = true)]
    pub business_value: Option<i64>,
    #[arg(long)]
    pub tenant_id: Option<String>,
    #[arg(long)]
    pub process_id: Option<String>,
    #[arg(long)]
    pub department_id: Option<String>,
    /// RFC 3339, e.g. 2026-12-01T17:00:00Z.
    #[arg(long)]
    pub activation: Option<String>,
    /// RFC 3339 SLA due time.
    #[arg(long)]
    pub due: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    pub expiration: Option<String>,
    /// A custom attribute, KEY=VALUE (repeatable).
    #[arg(long = "data", value_name = "KEY=VALUE")]
    pub data: Vec<String>,
    /// An ext attribute, NAME=VALUE, e.g. customerID=C1 (repeatable).
    #[arg(long = "ext", value_name = "NAME=VALUE")]
    pub ext: Vec<String>,
}

/// Audit attributes of an action.
#[derive(Debug, Args, Default)]
pub struct Audit {
    #[arg(long)]
    pub actor: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task.
    Create {
        #[command(flatten)]
        attrs: TaskAttrs,
        /// Capture point the task belongs to (default REST).
        #[arg(long)]
        capture_point_id: Option<String>,
        /// Create it NewHeld.
        #[arg(long)]
        hold: bool,
        #[command(flatten)]
        audit: Audit,
    },
    /// Show one task.
    Get { broker_id: i64 },
    /// List tasks.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        capture_point_id: Option<String>,
        #[arg(long)]
        capture_id: Option<String>,
        #[arg(long)]
        process_id: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        assigned_to_user: Option<String>,
        /// brokerId or priority.
        #[arg(long)]
        sort: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        /// The nextAfter cursor of the previous page.
        #[arg(long)]
        after: Option<String>,
    },
    /// Change the given attributes of a task.
    Update {
        broker_id: i64,
        #[command(flatten)]
        attrs: TaskAttrs,
        #[command(flatten)]
        audit: Audit,
    },
    /// Hold a task.
    Hold {
        broker_id: i64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Resume a held task.
    Resume {
        broker_id: i64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Restart a task (classified and prioritized again).
    Restart {
        broker_id: i64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Cancel a task.
    Cancel {
        broker_id: i64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Complete a task.
    Complete {
        broker_id: i64,
        #[command(flatten)]
        audit: Audit,
    },
    /// Assign a Queued or Distributed task to an agent.
    Assign {
        broker_id: i64,
        user: String,
        #[command(flatten)]
        audit: Audit,
    },
    /// Show a task's history.
    Events { broker_id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Create over REST with concurrent clients against a server it starts.
    Create(crate::bench::create::CreateArgs),
    /// The web console: the task list's first page and other views with 1,000,000 tasks
    /// (against the REST listing of the same page), and live updates under load.
    Console(crate::bench::console::ConsoleArgs),
    /// Distribution: `next` latency with a full queue, pull and push assignments/s, RSS
    /// with every agent connected.
    Distribute(crate::bench::distribute::DistributeArgs),
    /// How long a leased part (a notification target) takes to fail over to another node
    /// when its node is killed with SIGKILL (PostgreSQL).
    Failover(crate::bench::failover::FailoverArgs),
    /// Reads on a store seeded with many tasks: get by id, first page by priority, RSS.
    Read(crate::bench::read::ReadArgs),
    /// Business rules: decisions per second in-process, and the scheduler reprioritizing a
    /// store full of due tasks.
    Rules(crate::bench::rules::RulesArgs),
    /// MQ Capture Point end to end against a raw AMQP echo baseline.
    Mq(worklane_capture_mq::bench::BenchArgs),
    /// Database Capture Point capture rate against a plain select-and-update loop.
    Dbcp(worklane_capture_db::bench::BenchArgs),
    /// HTTP notification deliveries against a plain POST loop; RSS with a dead target.
    Notify(worklane_notify_http::bench::BenchArgs),
}
