//! `worklane users ...` and `worklane tokens ...`: people and API tokens on a running
//! server (SPEC 10), through its admin routes.

use crate::client::{segment, Client};
use crate::exit::Failure;
use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal};

const ROLES: [&str; 4] = ["admin", "supervisor", "agent", "integration"];

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub remote: crate::credentials::Remote,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password is asked for on a terminal, else read from the first line
    /// of standard input. An agent user's id is its agent's id (created when missing).
    Add {
        id: String,
        #[arg(long, value_parser = ["admin", "supervisor", "agent"])]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Disable a user: it can no longer sign in.
    Disable { id: String },
    /// Enable a disabled user.
    Enable { id: String },
    /// Set a new password (asked for, or read from standard input).
    Reset { id: String },
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub remote: crate::credentials::Remote,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make an API token. Its secret is printed this once, alone on standard output.
    Create {
        /// A unique name: letters, digits, `.`, `_` and `-`.
        name: String,
        #[arg(long, value_parser = ROLES)]
        role: String,
        /// The agent an agent token acts as.
        #[arg(long)]
        agent: Option<String>,
        /// The capture point an integration token is bound to.
        #[arg(long)]
        capture_point_id: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke { name: String },
}

/// Asks for a password on a terminal (without echo), else reads standard input's first
/// line.
fn read_password() -> Result<String, Failure> {
    let p = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ")
            .map_err(|e| Failure::usage(format!("reading the password: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("reading the password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if p.is_empty() {
        return Err(Failure::usage("no password given"));
    }
    Ok(p)
}

/// Runs a users command; the error carries the exit code.
pub async fn users(args: UsersArgs) -> Result<(), Failure> {
    let c = Client::new(&args.remote)?;
    let user = |id: &str| format!("/api/v1/users/{}", segment(id));
    let value = match &args.command {
        UsersCommand::Add { id, role, name } => {
            let body = json!({"id": id, "role": role, "name": name, "password": read_password()?});
            c.send(Method::POST, "/api/v1/users", Some(body)).await?
        }
        UsersCommand::List => c.send(Method::GET, "/api/v1/users", None).await?,
        UsersCommand::Disable { id } | UsersCommand::Enable { id } => {
            let disabled = matches!(args.command, UsersCommand::Disable { .. });
            c.send(
                Method::PATCH,
                &user(id),
                Some(json!({"disabled": disabled})),
            )
            .await?
        }
        UsersCommand::Reset { id } => {
            let body = json!({"password": read_password()?});
            c.send(Method::PATCH, &user(id), Some(body)).await?
        }
    };
    match (&value, args.json) {
        (Value::Array(rows), false) => println!(
            "{}",
            table(rows, &["id", "name", "role", "disabled", "updatedDateTime"])
        ),
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
    }
    Ok(())
}

/// Runs a tokens command; the error carries the exit code.
pub async fn tokens(args: TokensArgs) -> Result<(), Failure> {
    let c = Client::new(&args.remote)?;
    match &args.command {
        TokensCommand::Create {
            name,
            role,
            agent,
            capture_point_id,
        } => {
            let body = json!({"name": name, "role": role, "agent": agent, "capturePointId": capture_point_id});
            let v = c.send(Method::POST, "/api/v1/tokens", Some(body)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                eprintln!("token {name:?} ({role}) made; it is shown this once:");
                println!("{}", v["token"].as_str().unwrap_or_default());
            }
        }
        TokensCommand::List => {
            let v = c.send(Method::GET, "/api/v1/tokens", None).await?;
            match (&v, args.json) {
                (Value::Array(rows), false) => println!(
                    "{}",
                    table(
                        rows,
                        &[
                            "name",
                            "hint",
                            "role",
                            "agent",
                            "capturePointId",
                            "lastUsedDateTime",
                            "revokedDateTime"
                        ]
                    )
                ),
                _ => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            }
        }
        TokensCommand::Revoke { name } => {
            c.send(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", segment(name)),
                None,
            )
            .await?;
            eprintln!("token {name:?} revoked");
        }
    }
    Ok(())
}

fn table(rows: &[Value], columns: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(columns);
    for r in rows {
        t.add_row(columns.iter().map(|c| match &r[*c] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }));
    }
    t
}
