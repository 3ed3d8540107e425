//! The OpenAPI document, generated from the handlers' annotations, then corrected where the
//! generator cannot say what the server does (see [`document`]).

use crate::{access, agents, auth, error, events, rules, session, stats, tasks};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use worklane_domain::fields::limits;

#[derive(OpenApi)]
#[openapi(
    info(title = "Worklane", description = "Workload distribution server: tasks, actions and their events."),
    paths(
        tasks::create_task, tasks::get_task, tasks::list_tasks, tasks::update_task,
        tasks::task_action, tasks::complete_task, tasks::assign_task, tasks::task_events,
        events::list_events, events::stream_events,
        rules::explain, rules::reload, rules::diff,
        agents::create_agent, agents::list_agents, agents::get_agent, agents::update_agent,
        agents::set_state, agents::next, agents::offers, agents::stream, agents::accept,
        agents::reject, agents::transfer, agents::workbin,
        access::create_user, access::list_users, access::update_user,
        access::create_token, access::list_tokens, access::revoke_token,
        session::sign_in, session::current, session::sign_out,
        stats::get_stats,
    ),
    components(schemas(
        error::ErrorBody, tasks::CreateTaskBody, tasks::UpdateTaskBody, tasks::ActionBody,
        tasks::AssignBody, tasks::CompleteBody, tasks::TaskPage, events::EventPage,
        rules::ExplainBody, rules::RulesSummary, rules::RulesDiff, rules::DiffExample,
        worklane_domain::Task, worklane_domain::Event, worklane_domain::TaskFields,
        agents::CreateAgentBody, agents::StateBody, agents::TransferBody, agents::TransferToQueue,
        agents::TransferToAgent, agents::WorkbinBody,
        agents::OfferView, worklane_domain::AgentView, worklane_domain::AgentPatch,
        worklane_domain::AgentProfile, worklane_domain::Agent, worklane_domain::AgentState,
        worklane_domain::Offer, worklane_domain::Role,
        access::CreateUserBody, access::UpdateUserBody, access::UserView,
        access::CreateTokenBody, access::TokenView, access::NewTokenView,
        session::SignInBody, session::SessionView,
        stats::StatsView, stats::Backlog, stats::GroupCount, stats::Window, stats::PeriodCount,
    )),
    tags((name = "tasks"), (name = "events"), (name = "rules"), (name = "agents"), (name = "access"), (name = "stats"))
)]
struct ApiDoc;

/// The OpenAPI document as a value (also used by `worklane openapi`).
///
/// Two corrections to what utoipa generates, so the document states what the server
/// accepts:
/// - every timestamp (`jiff::Timestamp`, named through the domain's alias) comes out as a
///   reference to a plain `String` schema; it becomes an inline `format: date-time` string,
///   which is what the server parses (RFC 3339);
/// - bodies built from `TaskFields` plus envelope attributes come out as `allOf` over a
///   schema with `additionalProperties: false`, which by the document's own rules refuses
///   `hold`, `reason`... ; they are flattened into one closed object, as the server reads
///   them (unknown attributes are refused);
/// - request strings get the domain's limits (`maxLength` from [`limits`], a `pattern`
///   refusing what XML cannot carry, non-blank identifiers) and integers the protocol's
///   range, so a value the document allows is one the server accepts;
/// - an optional body (`Option<ActionBody>`) comes out as `oneOf: [null, ActionBody]`, but
///   optional means "may be absent": a JSON `null` body is refused like any non-object.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    schemas.remove("String");
    inline_timestamps(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for op in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in op.values_mut() {
                if let Some(schema) =
                    op.pointer_mut("/requestBody/content/application~1json/schema")
                {
                    drop_null_alternative(schema);
                }
            }
        }
    }
    constrain_path_ids(&mut doc);
    list_time_zones(&mut doc);
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    let snapshot = schemas.clone();
    for schema in schemas.values_mut() {
        flatten_all_of(schema, &snapshot);
    }
    for name in [
        "TaskFields",
        "CreateTaskBody",
        "ExplainBody",
        "UpdateTaskBody",
        "ActionBody",
        "AssignBody",
        "CompleteBody",
        "Ext",
        "CreateAgentBody",
        "AgentPatch",
        "StateBody",
        "TransferToQueue",
        "TransferToAgent",
        "WorkbinBody",
        "CreateUserBody",
        "CreateTokenBody",
    ] {
        if let Some(props) = schemas
            .get_mut(name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            constrain(props);
        }
    }
    one_target(schemas);
    token_roles(schemas);
    secure(&mut doc);
    serde_json::from_value(doc).expect("the corrected document is still an OpenAPI document")
}

/// A new token's attributes depend on its role: an agent token names its agent, an
/// integration token may name a capture point, the others name neither (or null).
fn token_roles(schemas: &mut Map<String, Value>) {
    let Some(props) = schemas
        .get("CreateTokenBody")
        .and_then(|s| s.get("properties"))
        .cloned()
    else {
        return;
    };
    let name = json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]{1,64}$"});
    let nothing = json!({"type": "null"});
    let variant = |roles: &[&str], agent: Value, cp: Value, required: &[&str]| {
        json!({"type": "object", "additionalProperties": false, "required": required,
               "properties": {"name": name, "role": {"type": "string", "enum": roles},
                              "agent": agent, "capturePointId": cp}})
    };
    let string = |key: &str| {
        let mut s = props[key].clone();
        // The generator says `["string", "null"]`; the agent is required on an agent token.
        s["type"] = json!("string");
        s
    };
    schemas.insert(
        "CreateTokenBody".into(),
        json!({"oneOf": [
            variant(&["agent"], string("agent"), nothing.clone(), &["name", "role", "agent"]),
            variant(&["integration"], nothing.clone(), props["capturePointId"].clone(), &["name", "role"]),
            variant(&["admin", "supervisor"], nothing.clone(), nothing, &["name", "role"]),
        ]}),
    );
}

/// Every route but the public ones takes a bearer token: the scheme, and the 401 and 403
/// each may answer.
fn secure(doc: &mut Value) {
    let error = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Ok(m) = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                else {
                    continue;
                };
                if auth::rule(&m, path) == auth::Allow::Public {
                    continue;
                }
                op["security"] = json!([{"bearer": []}]);
                if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    r.entry("401").or_insert_with(|| {
                        error("UNAUTHENTICATED: no bearer token, or an unknown or revoked one")
                    });
                    r.entry("403").or_insert_with(|| {
                        error("FORBIDDEN: the caller's role, or its scope (an agent's own tasks, an integration's capture point), does not reach this")
                    });
                    r.entry("429").or_insert_with(|| {
                        error("TOO_MANY_REQUESTS: too many failed authentications from this address, or requests from this caller; Retry-After says when to try again")
                    });
                }
            }
        }
    }
    doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer", "description": "an API token (SPEC 10)"}});
}

/// A workbin is one of the four workbin types (an interaction queue is a transfer).
fn one_target(schemas: &mut Map<String, Value>) {
    if let Some(p) = schemas
        .get_mut("WorkbinBody")
        .and_then(|w| w.pointer_mut("/properties/queueType"))
    {
        *p = json!({"type": "string", "enum": ["AgentWorkbin", "AgentGroupWorkbin", "PlaceWorkbin", "PlaceGroupWorkbin"]});
    }
}

const TIMESTAMP_REF: &str = "#/components/schemas/String";

fn inline_timestamps(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("$ref").and_then(Value::as_str) == Some(TIMESTAMP_REF) {
                m.remove("$ref");
                m.insert("type".into(), "string".into());
                m.insert("format".into(), "date-time".into());
            }
            m.values_mut().for_each(inline_timestamps);
        }
        Value::Array(a) => a.iter_mut().for_each(inline_timestamps),
        _ => {}
    }
}

/// Characters XML 1.0 can carry (what `fields::check_len` accepts), as an ECMA-262 class.
const XML_TEXT: &str = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]";
/// No control character at all (captureId).
const NO_CONTROL: &str = r"[^\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF]";

/// Adds the domain's limits to the string and integer properties of a request schema.
fn constrain(props: &mut Map<String, Value>) {
    let text = format!("^{XML_TEXT}*$");
    // Identifiers that must not be blank: one character that is not whitespace.
    let blank_free =
        |class: &str| format!(r"^{class}*[^\s\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF]{class}*$");
    for (name, prop) in props.iter_mut() {
        let (max, pattern) = match name.as_str() {
            "captureId" => (limits::CAPTURE_ID, blank_free(NO_CONTROL)),
            "capturePointId" => (limits::CAPTURE_POINT_ID, blank_free(XML_TEXT)),
            "assignedToUser" => (limits::USER, blank_free(XML_TEXT)),
            "tenantId" | "solutionId" | "departmentId" | "processId" | "contractId"
            | "businessCalendarId" => (limits::SHORT_ID, text.clone()),
            "channel" | "category" => (limits::CHANNEL, text.clone()),
            "actor" | "reason" => (limits::TEXT, text.clone()),
            "customerID"
            | "customerSegment"
            | "productSubtype"
            | "productType"
            | "resultCode"
            | "sourceProcessSubtype"
            | "sourceProcessType"
            | "sourceTenant" => (limits::EXT, text.clone()),
            "id" | "agent" => (
                limits::USER,
                format!("^{}+$", worklane_domain::agent::AGENT_ID_CLASS),
            ),
            "place" => (limits::USER, blank_free(NO_CONTROL)),
            "name" => (limits::TEXT, text.clone()),
            "queue" | "queueTarget" => (limits::QUEUE, blank_free(XML_TEXT)),
            "groups" | "placeGroups" => {
                prop["items"] = json!({"type": "string", "maxLength": limits::USER, "pattern": blank_free(NO_CONTROL)});
                continue;
            }
            "skills" | "capacity" => {
                let max = if name == "skills" {
                    worklane_domain::agent::MAX_SKILL as u32
                } else {
                    worklane_domain::agent::MAX_CAPACITY
                };
                prop["additionalProperties"] =
                    json!({"type": "integer", "minimum": 0, "maximum": max});
                prop["propertyNames"] = json!({
                    "type": "string",
                    "maxLength": limits::USER,
                    "pattern": blank_free(NO_CONTROL),
                });
                continue;
            }
            "priority" | "businessValue" => {
                // -2^31 < v < 2^31 (`fields::check_int`).
                prop["minimum"] = json!(i64::from(i32::MIN) + 1);
                prop["maximum"] = json!(i32::MAX);
                continue;
            }
            "data" => {
                prop["additionalProperties"] =
                    json!({"type": "string", "maxLength": limits::DATA_VALUE, "pattern": text});
                prop["propertyNames"] = json!({
                    "type": "string",
                    "maxLength": limits::DATA_KEY,
                    "pattern": blank_free(XML_TEXT),
                });
                continue;
            }
            _ => continue,
        };
        prop["maxLength"] = json!(max);
        prop["pattern"] = json!(pattern);
    }
}

/// Agent ids and offer ids in paths: what the server accepts.
fn constrain_path_ids(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let agent = json!({"type": "string", "minLength": 1, "maxLength": limits::USER,
        "pattern": format!("^{}+$", worklane_domain::agent::AGENT_ID_CLASS)});
    let offer = json!({"type": "string", "pattern": "^[1-9][0-9]{0,17}-[0-9]{1,18}$"});
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for p in params {
                let name = p["name"].as_str().unwrap_or_default().to_owned();
                if p["in"] != "path" {
                    continue;
                }
                if name == "id"
                    && (path.starts_with("/api/v1/agents/") || path.starts_with("/api/v1/users/"))
                {
                    p["schema"] = agent.clone();
                } else if name == "offerId" {
                    p["schema"] = offer.clone();
                }
            }
        }
    }
}

/// `timeZone` parameters list the IANA names the server knows (its bundled database), so a
/// name the document allows is one the server takes.
fn list_time_zones(doc: &mut Value) {
    let names: Vec<Value> = jiff::tz::db()
        .available()
        .map(|n| Value::String(n.as_str().to_owned()))
        .collect();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for p in params.iter_mut().filter(|p| p["name"] == "timeZone") {
            p["schema"] = json!({"type": "string", "enum": names});
        }
    }
}

/// `oneOf: [{type: null}, S]` becomes `S`.
fn drop_null_alternative(schema: &mut Value) {
    let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    let mut rest = alternatives
        .iter()
        .filter(|a| a.get("type") != Some(&Value::from("null")));
    if let (Some(only), None) = (rest.next(), rest.next()) {
        *schema = only.clone();
    }
}

/// Replaces `allOf` over object schemas (inline or references to `schemas`) with one
/// object holding all their properties and required names, closed when any part is.
fn flatten_all_of(schema: &mut Value, schemas: &Map<String, Value>) {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array).cloned() else {
        return;
    };
    let mut properties = Map::new();
    let mut required: Vec<Value> = vec![];
    let mut closed = false;
    for part in &parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix("#/components/schemas/")
                .and_then(|name| schemas.get(name))
                .unwrap_or(part),
            None => part,
        };
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            properties.extend(p.clone());
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
        closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
    }
    let m = schema
        .as_object_mut()
        .expect("a schema with allOf is an object");
    m.remove("allOf");
    m.insert("type".into(), "object".into());
    m.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        m.insert("required".into(), Value::Array(required));
    }
    if closed {
        m.insert("additionalProperties".into(), Value::Bool(false));
    }
}

pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(document())
}
