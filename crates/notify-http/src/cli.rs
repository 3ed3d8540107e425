//! `worklane notifications ...`: thin clients of the notifications API of a running
//! server.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

/// Lists, resends and replays HTTP notifications of a running server.
#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8035", env = "WORKLANE_SERVER")]
    pub server: String,
    #[command(subcommand)]
    pub command: NotificationsCommand,
}

/// The notification commands.
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Lists a target's deliveries (oldest first).
    List(ListArgs),
    /// Shows one delivery with its body and every attempt (status code, latency, error).
    Show(DeliveryArgs),
    /// Sends one delivery again (same GUID and body), whatever its status.
    Resend(DeliveryArgs),
    /// Notifies a target again of every event from a sequence number on.
    Replay(ReplayArgs),
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The target's id.
    pub target: String,
    /// Only `pending`, `held`, `delivered` or `failed` ones.
    #[arg(long)]
    pub status: Option<String>,
    /// Only the notifications of this task (brokerId).
    #[arg(long)]
    pub task: Option<i64>,
    /// Start after this delivery id (the `nextAfter` of the previous page).
    #[arg(long)]
    pub after: Option<i64>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Names one delivery.
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    pub target: String,
    pub id: i64,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub target: String,
    /// The first event sequence number to notify again.
    #[arg(long)]
    pub from_seq: i64,
}

/// Runs a notification command with `client` (which carries the caller's credentials)
/// and prints the server's JSON answer.
pub async fn run(args: NotificationsArgs, client: &reqwest::Client) -> anyhow::Result<()> {
    let out = execute(&args, client).await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Runs a notification command with `client` and returns the server's JSON answer.
pub async fn execute(
    args: &NotificationsArgs,
    client: &reqwest::Client,
) -> anyhow::Result<serde_json::Value> {
    let base = format!("{}/api/v1/notifications", args.server.trim_end_matches('/'));
    let seg = |s: &str| url_segment(s);
    let req = match &args.command {
        NotificationsCommand::List(a) => {
            let mut q: Vec<(&str, String)> = vec![("limit", a.limit.to_string())];
            if let Some(s) = &a.status {
                q.push(("status", s.clone()));
            }
            if let Some(t) = a.task {
                q.push(("brokerId", t.to_string()));
            }
            if let Some(x) = a.after {
                q.push(("after", x.to_string()));
            }
            client
                .get(format!("{base}/{}/deliveries", seg(&a.target)))
                .query(&q)
        }
        NotificationsCommand::Show(a) => {
            client.get(format!("{base}/{}/deliveries/{}", seg(&a.target), a.id))
        }
        NotificationsCommand::Resend(a) => client.post(format!(
            "{base}/{}/deliveries/{}/resend",
            seg(&a.target),
            a.id
        )),
        NotificationsCommand::Replay(a) => client
            .post(format!("{base}/{}/replay", seg(&a.target)))
            .json(&serde_json::json!({ "fromSeq": a.from_seq })),
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.server))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!(
            "{}: {} {}",
            status,
            body["code"].as_str().unwrap_or("ERROR"),
            body["message"].as_str().unwrap_or("")
        );
    }
    Ok(body)
}

/// Percent-encodes a path segment (target ids are plain, but be safe).
fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
