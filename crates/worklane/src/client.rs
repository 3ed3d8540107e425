//! `worklane task ...`: a thin client of the REST API that prints tables or JSON.

use crate::cli::{Audit, TaskArgs, TaskAttrs, TaskCommand};
use crate::credentials::Remote;
use crate::exit::Failure;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Map, Value};

/// Runs a task command; the error carries the exit code.
pub async fn run(args: TaskArgs) -> Result<(), Failure> {
    let c = Client::new(&args.remote)?;
    let (value, kind) = match args.command {
        TaskCommand::Create {
            attrs,
            capture_point_id,
            hold,
            audit,
        } => {
            let mut body = attrs_json(&attrs)?;
            if let Some(cp) = capture_point_id {
                body.insert("capturePointId".into(), cp.into());
            }
            if hold {
                body.insert("hold".into(), true.into());
            }
            add_audit(&mut body, &audit);
            (
                c.send(
                    reqwest::Method::POST,
                    "/api/v1/tasks",
                    Some(Value::Object(body)),
                )
                .await?,
                Kind::Task,
            )
        }
        TaskCommand::Get { broker_id } => (
            c.send(
                reqwest::Method::GET,
                &format!("/api/v1/tasks/{broker_id}"),
                None,
            )
            .await?,
            Kind::Task,
        ),
        TaskCommand::List {
            status,
            capture_point_id,
            capture_id,
            process_id,
            queue,
            assigned_to_user,
            sort,
            limit,
            after,
        } => {
            let params: Vec<(&str, Option<String>)> = vec![
                ("status", status),
                ("capturePointId", capture_point_id),
                ("captureId", capture_id),
                ("processId", process_id),
                ("queue", queue),
                ("assignedToUser", assigned_to_user),
                ("sort", sort),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ];
            let q: Vec<(&str, String)> = params
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            let qs = serde_urlencoded::to_string(&q).map_err(|e| Failure::usage(e.to_string()))?;
            (
                c.send(reqwest::Method::GET, &format!("/api/v1/tasks?{qs}"), None)
                    .await?,
                Kind::Page,
            )
        }
        TaskCommand::Update {
            broker_id,
            attrs,
            audit,
        } => {
            let mut body = attrs_json(&attrs)?;
            add_audit(&mut body, &audit);
            (
                c.send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/tasks/{broker_id}"),
                    Some(Value::Object(body)),
                )
                .await?,
                Kind::Task,
            )
        }
        TaskCommand::Hold { broker_id, audit } => {
            (c.action(broker_id, "hold", &audit).await?, Kind::Task)
        }
        TaskCommand::Resume { broker_id, audit } => {
            (c.action(broker_id, "resume", &audit).await?, Kind::Task)
        }
        TaskCommand::Restart { broker_id, audit } => {
            (c.action(broker_id, "restart", &audit).await?, Kind::Task)
        }
        TaskCommand::Cancel { broker_id, audit } => {
            (c.action(broker_id, "cancel", &audit).await?, Kind::Task)
        }
        TaskCommand::Complete { broker_id, audit } => {
            (c.action(broker_id, "complete", &audit).await?, Kind::Task)
        }
        TaskCommand::Assign {
            broker_id,
            user,
            audit,
        } => {
            let mut body = Map::new();
            body.insert("assignedToUser".into(), user.into());
            add_audit(&mut body, &audit);
            (
                c.send(
                    reqwest::Method::POST,
                    &format!("/api/v1/tasks/{broker_id}/assign"),
                    Some(Value::Object(body)),
                )
                .await?,
                Kind::Task,
            )
        }
        TaskCommand::Events { broker_id } => (
            c.send(
                reqwest::Method::GET,
                &format!("/api/v1/tasks/{broker_id}/events"),
                None,
            )
            .await?,
            Kind::Events,
        ),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        println!("{}", render(&value, kind));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Task,
    Page,
    Events,
}

/// A path segment: unreserved characters as they are, every other byte %-encoded.
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server `remote` names, sending its token.
    pub(crate) fn new(remote: &Remote) -> Result<Self, Failure> {
        let http = remote.auth.client(std::time::Duration::from_secs(300))?;
        Ok(Self {
            http,
            base: remote.server.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `body` as it is, with its content type.
    pub(crate) async fn send_text(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Result<Value, Failure> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        Self::answer(&self.base, req).await
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::answer(&self.base, req).await
    }

    async fn answer(base: &str, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::unreachable(format!("{base}: {e}")))?;
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let msg = format!(
            "{} {}: {}{}",
            status.as_u16(),
            value["code"].as_str().unwrap_or("ERROR"),
            value["message"].as_str().unwrap_or(""),
            match value["parameters"].as_array() {
                Some(p) if !p.is_empty() => format!(
                    " ({})",
                    p.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            }
        );
        Err(if status.is_client_error() {
            Failure::refused(msg)
        } else {
            Failure::unreachable(msg)
        })
    }

    async fn action(&self, id: i64, action: &str, audit: &Audit) -> Result<Value, Failure> {
        let mut body = Map::new();
        add_audit(&mut body, audit);
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/tasks/{id}/{action}"),
            Some(Value::Object(body)),
        )
        .await
    }
}

fn add_audit(body: &mut Map<String, Value>, a: &Audit) {
    if let Some(v) = &a.actor {
        body.insert("actor".into(), v.clone().into());
    }
    if let Some(v) = &a.reason {
        body.insert("reason".into(), v.clone().into());
    }
}

fn pairs(list: &[String], what: &str) -> Result<Map<String, Value>, Failure> {
    let mut m = Map::new();
    for kv in list {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("--{what} {kv:?}: expected KEY=VALUE")))?;
        m.insert(k.to_owned(), v.into());
    }
    Ok(m)
}

fn attrs_json(a: &TaskAttrs) -> Result<Map<String, Value>, Failure> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("captureId", a.capture_id.clone().map(Into::into));
    put("channel", a.channel.clone().map(Into::into));
    put("category", a.category.clone().map(Into::into));
    put("priority", a.priority.map(Into::into));
    put("businessValue", a.business_value.map(Into::into));
    put("tenantId", a.tenant_id.clone().map(Into::into));
    put("processId", a.process_id.clone().map(Into::into));
    put("departmentId", a.department_id.clone().map(Into::into));
    put("activationDateTime", a.activation.clone().map(Into::into));
    put("dueDateTime", a.due.clone().map(Into::into));
    put("expirationDateTime", a.expiration.clone().map(Into::into));
    if !a.data.is_empty() {
        m.insert("data".into(), Value::Object(pairs(&a.data, "data")?));
    }
    if !a.ext.is_empty() {
        m.insert("ext".into(), Value::Object(pairs(&a.ext, "ext")?));
    }
    Ok(m)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(v: &Value, kind: Kind) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    match kind {
        Kind::Task => {
            t.set_header(["attribute", "value"]);
            if let Some(obj) = v.as_object() {
                for (k, val) in obj {
                    if !val.is_null() && val != &json!({}) {
                        t.add_row([k.clone(), cell(val)]);
                    }
                }
            }
        }
        Kind::Page => {
            t.set_header([
                "brokerId",
                "captureId",
                "capturePoint",
                "status",
                "priority",
                "process",
                "assignedTo",
                "due",
            ]);
            for task in v["tasks"].as_array().into_iter().flatten() {
                t.add_row(
                    [
                        "brokerId",
                        "captureId",
                        "capturePointId",
                        "status",
                        "priority",
                        "processId",
                        "assignedToUser",
                        "dueDateTime",
                    ]
                    .map(|k| cell(&task[k])),
                );
            }
            if let Some(next) = v["nextAfter"].as_str() {
                return format!("{t}\nmore: --after {next}");
            }
        }
        Kind::Events => {
            t.set_header([
                "seq",
                "event",
                "when",
                "actor",
                "reason",
                "status",
                "requestId",
            ]);
            for e in v.as_array().into_iter().flatten() {
                t.add_row([
                    cell(&e["seq"]),
                    cell(&e["eventType"]),
                    cell(&e["eventDateTime"]),
                    cell(&e["actor"]),
                    cell(&e["reason"]),
                    cell(&e["task"]["status"]),
                    cell(&e["requestId"]),
                ]);
            }
        }
    }
    t.to_string()
}
