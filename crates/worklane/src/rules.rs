//! `worklane rules ...`: test rules offline, explain a task on a server, reload, diff.

use crate::cli::{RulesArgs, RulesCommand};
use crate::client::Client;
use crate::exit::Failure;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use worklane_domain::Timestamp;
use worklane_server::config::Config;

/// The largest task file read, in bytes.
const MAX_TASK_BYTES: u64 = 1024 * 1024;

fn read_task(path: &Path) -> Result<Map<String, Value>, Failure> {
    let mut text = String::new();
    let name = path.display().to_string();
    let read = if name == "-" {
        std::io::stdin()
            .take(MAX_TASK_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_TASK_BYTES).read_to_string(&mut text))
    };
    read.map_err(|e| Failure::usage(format!("{name}: {e}")))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure::usage(format!(
            "{name}: the task must be a JSON object"
        ))),
        Err(e) => Err(Failure::usage(format!("{name}: {e}"))),
    }
}

fn parse_at(at: Option<&str>) -> Result<Option<Timestamp>, Failure> {
    at.map(|s| {
        s.parse::<Timestamp>().map_err(|e| {
            Failure::usage(format!(
                "--at {s:?}: {e} (RFC 3339, e.g. 2026-12-01T09:00:00Z)"
            ))
        })
    })
    .transpose()
}

/// Runs a rules command; the error carries the exit code.
pub async fn run(args: RulesArgs) -> Result<(), Failure> {
    let value = match args.command {
        RulesCommand::Test {
            task,
            config,
            at,
            hours,
        } => {
            let cfg = Config::load(Some(&config)).map_err(|e| Failure::config(e.to_string()))?;
            let now = parse_at(at.as_deref())?.unwrap_or_else(Timestamp::now);
            let raw = read_task(&task)?;
            let t = worklane_api::rules::task_from_body(raw, now)
                .map_err(|e| Failure::usage(format!("{}: {}", task.display(), e.body.message)))?;
            let horizon = jiff::SignedDuration::from_hours(hours.into());
            serde_json::to_value(cfg.rules.explain(&t, now, horizon))
                .map_err(|e| Failure::failed(e.to_string()))?
        }
        RulesCommand::Explain {
            task,
            broker_id,
            at,
            hours,
        } => {
            let c = Client::new(&args.remote)?;
            let mut q = format!("?hours={hours}");
            if let Some(id) = broker_id {
                q.push_str(&format!("&brokerId={id}"));
            }
            if let Some(at) = parse_at(at.as_deref())? {
                q.push_str(&format!("&at={}", at.to_string().replace('+', "%2B")));
            }
            let body = match &task {
                Some(p) => serde_json::to_string(&read_task(p)?).expect("JSON serializes"),
                None => String::new(),
            };
            c.send_text(
                &format!("/api/v1/rules/explain{q}"),
                "application/json",
                body,
            )
            .await?
        }
        RulesCommand::Reload => {
            let c = Client::new(&args.remote)?;
            let v = c
                .send(reqwest::Method::POST, "/api/v1/rules/reload", None)
                .await?;
            if !args.json {
                println!(
                    "rules reloaded: {} departments, {} processes, {} rules",
                    v["departments"], v["processes"], v["rules"]
                );
                return Ok(());
            }
            v
        }
        RulesCommand::Diff { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            let c = Client::new(&args.remote)?;
            let v = c
                .send_text("/api/v1/rules/diff", "application/toml", text)
                .await?;
            if !args.json {
                print_diff(&v);
                return Ok(());
            }
            v
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON serializes")
        );
    } else {
        print_explanation(&value);
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_explanation(v: &Value) {
    println!("at {}", text(&v["at"]));
    for phase in v["phases"].as_array().into_iter().flatten() {
        println!("{}", text(&phase["phase"]));
        for step in phase["steps"].as_array().into_iter().flatten() {
            let mark = if step.get("error").is_some() {
                "✗"
            } else if step["matched"] == Value::Bool(true) {
                "✓"
            } else {
                "·"
            };
            let scope = step
                .get("scope")
                .map(|s| format!(" ({})", text(s)))
                .unwrap_or_default();
            let set: Vec<String> = step["set"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect();
            println!(
                "  {mark} {}{scope}  {}",
                text(&step["source"]),
                set.join(" ")
            );
            if let Some(e) = step.get("error") {
                println!("      error: {}", text(e));
            }
        }
    }
    let o = &v["outcome"];
    println!(
        "outcome: {}  process {}  department {}  queue {}",
        text(&o["status"]),
        text(&o["processId"]),
        text(&o["departmentId"]),
        text(&o["queue"])
    );
    println!(
        "  priority {}  businessValue {}  due {}  next reprioritization {}",
        text(&o["priority"]),
        text(&o["businessValue"]),
        text(&o["dueDateTime"]),
        text(&o["reprioritizeDateTime"])
    );
    if !o["error"].is_null() {
        println!("  why: {}", text(&o["error"]));
    }
    let curve = v["curve"].as_array().cloned().unwrap_or_default();
    if !curve.is_empty() {
        println!("priority curve:");
        for p in curve {
            println!("  {}  {}", text(&p["at"]), text(&p["priority"]));
        }
    }
}

fn print_diff(v: &Value) {
    println!(
        "{} live tasks compared; with the new rules {} would change process, {} queue, {} priority, {} due date",
        v["compared"], v["process"], v["queue"], v["priority"], v["dueDateTime"]
    );
    for e in v["examples"].as_array().into_iter().flatten() {
        println!(
            "  task {} ({}): {} {} -> {}",
            e["brokerId"],
            text(&e["captureId"]),
            text(&e["attribute"]),
            text(&e["now"]),
            text(&e["new"])
        );
    }
    println!("nothing was applied");
}
