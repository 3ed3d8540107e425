//! `worklane agents ...`: agents on a running server (SPEC 9), through its REST API.

use crate::client::Client;
use crate::exit::Failure;
use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Map, Value};

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    pub remote: crate::credentials::Remote,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AgentsCommand,
}

/// An agent's profile; on update, only the options given change.
#[derive(Debug, Args, Default)]
pub struct Profile {
    #[arg(long)]
    pub name: Option<String>,
    /// A group the agent belongs to (repeat for more; replaces the groups on update).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// A skill and its level 0..10, as `name=level` (repeat for more).
    #[arg(long = "skill", value_parser = pair)]
    pub skills: Vec<(String, u64)>,
    /// How many tasks of a channel at once, as `channel=n`; `*=n` for every other channel.
    #[arg(long = "capacity", value_parser = pair)]
    pub capacity: Vec<(String, u64)>,
    #[arg(long)]
    pub place: Option<String>,
    /// A place group (repeat for more).
    #[arg(long = "place-group")]
    pub place_groups: Vec<String>,
}

fn pair(s: &str) -> Result<(String, u64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not name=number"))?;
    let n = v
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} in {s:?} is not a whole number"))?;
    Ok((k.trim().to_owned(), n))
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create an agent (LoggedOut until it sets its state).
    Create {
        id: String,
        #[command(flatten)]
        profile: Profile,
    },
    /// List agents.
    List {
        /// Only agents in this state: Ready, NotReady or LoggedOut.
        #[arg(long)]
        state: Option<String>,
        /// Agents after this id (the last of the previous page).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Show one agent, with its load.
    Get { id: String },
    /// Change an agent's profile: the options given replace what it has.
    Update {
        id: String,
        #[command(flatten)]
        profile: Profile,
    },
    /// Set an agent's state: Ready, NotReady or LoggedOut. Leaving Ready returns its offers.
    State {
        id: String,
        state: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pull: assign the agent the best task it may take (exit 0 and nothing printed when
    /// there is none).
    Next { id: String },
    /// The agent's live offers.
    Offers { id: String },
    /// Accept an offer.
    Accept { offer_id: String },
    /// Reject an offer: the task goes back to its queue.
    Reject { offer_id: String },
}

fn profile_json(p: &Profile, update: bool) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(n) = &p.name {
        m.insert("name".into(), n.clone().into());
    }
    if let Some(n) = &p.place {
        m.insert("place".into(), n.clone().into());
    }
    let lists = [("groups", &p.groups), ("placeGroups", &p.place_groups)];
    for (k, v) in lists {
        if !update || !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [("skills", &p.skills), ("capacity", &p.capacity)] {
        if !update || !v.is_empty() {
            let map: Map<String, Value> = v.iter().map(|(n, l)| (n.clone(), json!(l))).collect();
            m.insert(k.into(), Value::Object(map));
        }
    }
    m
}

/// Runs an agents command; the error carries the exit code.
pub async fn run(args: AgentsArgs) -> Result<(), Failure> {
    use reqwest::Method;
    let c = Client::new(&args.remote)?;
    let enc = crate::client::segment;
    let value = match &args.command {
        AgentsCommand::Create { id, profile } => {
            let mut body = profile_json(profile, false);
            body.insert("id".into(), id.clone().into());
            c.send(Method::POST, "/api/v1/agents", Some(Value::Object(body)))
                .await?
        }
        AgentsCommand::List {
            state,
            after,
            limit,
        } => {
            let q: Vec<(&str, String)> = [
                ("state", state.clone()),
                ("after", after.clone()),
                ("limit", limit.map(|l| l.to_string())),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
            let qs = serde_urlencoded::to_string(&q).map_err(|e| Failure::usage(e.to_string()))?;
            c.send(Method::GET, &format!("/api/v1/agents?{qs}"), None)
                .await?
        }
        AgentsCommand::Get { id } => {
            c.send(Method::GET, &format!("/api/v1/agents/{}", enc(id)), None)
                .await?
        }
        AgentsCommand::Update { id, profile } => {
            c.send(
                Method::PATCH,
                &format!("/api/v1/agents/{}", enc(id)),
                Some(Value::Object(profile_json(profile, true))),
            )
            .await?
        }
        AgentsCommand::State { id, state, reason } => {
            c.send(
                Method::POST,
                &format!("/api/v1/agents/{}/state", enc(id)),
                Some(json!({"state": state, "reason": reason})),
            )
            .await?
        }
        AgentsCommand::Next { id } => {
            c.send(
                Method::POST,
                &format!("/api/v1/agents/{}/next", enc(id)),
                None,
            )
            .await?
        }
        AgentsCommand::Offers { id } => {
            c.send(
                Method::GET,
                &format!("/api/v1/agents/{}/offers", enc(id)),
                None,
            )
            .await?
        }
        AgentsCommand::Accept { offer_id } | AgentsCommand::Reject { offer_id } => {
            let verb = if matches!(args.command, AgentsCommand::Accept { .. }) {
                "accept"
            } else {
                "reject"
            };
            c.send(
                Method::POST,
                &format!("/api/v1/offers/{}/{verb}", enc(offer_id)),
                None,
            )
            .await?
        }
    };
    if value.is_null() {
        // 204: no task waiting for the agent.
        eprintln!("no task is waiting for the agent");
        return Ok(());
    }
    match (&value, args.json) {
        (Value::Array(agents), false) if matches!(args.command, AgentsCommand::List { .. }) => {
            println!("{}", table(agents));
        }
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
    }
    Ok(())
}

fn table(agents: &[Value]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["id", "name", "state", "reason", "load", "skills", "groups"]);
    let compact = |v: &Value| match v {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Array(a) if a.is_empty() => String::new(),
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for a in agents {
        t.add_row([
            compact(&a["id"]),
            compact(&a["name"]),
            compact(&a["shownState"]),
            compact(&a["reason"]),
            compact(&a["load"]),
            compact(&a["skills"]),
            compact(&a["groups"]),
        ]);
    }
    t
}
