//! How the seed's names meet the task model: which column of a source row sets which
//! task attribute (SPEC section 5, "Capture"), and what value a `?'Name'` parameter
//! takes from a row, a task and an error.

use crate::source::Row;
use crate::value::Value;
use jiff::tz::TimeZone;
use worklane_domain::{BrokerId, DomainError, Task, TaskFields};

/// The attribute name a column or parameter means: camelCase as in SPEC section 1, or
/// the same with a capital first letter (the seed's `Priority`, `DueDateTime`).
fn camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Task attributes a source may set, in their camelCase spelling (the ext ones are
/// [`worklane_domain::Ext::NAMES`]).
pub(crate) const TASK_SETTABLE: [&str; 15] = [
    "captureId",
    "tenantId",
    "solutionId",
    "departmentId",
    "processId",
    "contractId",
    "businessCalendarId",
    "channel",
    "category",
    "priority",
    "businessValue",
    "activationDateTime",
    "dueDateTime",
    "expirationDateTime",
    "reprioritizeDateTime",
];

/// Every attribute a source may set: the task's and the ext ones.
fn settable_names() -> impl Iterator<Item = &'static str> {
    TASK_SETTABLE
        .iter()
        .chain(worklane_domain::Ext::NAMES.iter())
        .copied()
}

/// Attributes the server owns: readable as parameters, never set from a row.
const SERVER_OWNED: [&str; 16] = [
    "brokerId",
    "capturePointId",
    "distributionId",
    "distributionPointId",
    "status",
    "createdDateTime",
    "heldDateTime",
    "distributedDateTime",
    "assignedDateTime",
    "completedDateTime",
    "assignedToUser",
    "queue",
    "queueType",
    "queueTarget",
    "error",
    "version",
];

/// Parameter names with a meaning of their own (seed 000).
pub const INTERACTION_ID: &str = "InteractionId";
pub const EXTERNAL_ID: &str = "ExternalId";
pub const ERROR_CODE: &str = "ErrorCode";
pub const ERROR_DESCRIPTION: &str = "ErrorDescription";
pub const QUEUE: &str = "Queue";

/// The settable attribute a column name means, matched without regard to case.
fn settable(column: &str) -> Option<&'static str> {
    settable_names().find(|a| a.eq_ignore_ascii_case(column))
}

/// Whether `name`, as a parameter, is one of the task's attributes or the seed's special
/// names (any other name is a row column or a custom data key).
pub fn is_known_parameter(name: &str) -> bool {
    let c = camel(name);
    settable_names().any(|a| a == c)
        || SERVER_OWNED.contains(&c.as_str())
        || [
            INTERACTION_ID,
            EXTERNAL_ID,
            ERROR_CODE,
            ERROR_DESCRIPTION,
            QUEUE,
        ]
        .iter()
        .any(|s| camel(s) == c)
}

/// A parameter name that looks like a known one but is spelled in a case the seed does
/// not use (`?'externalid'`): almost certainly a typo. Returns the intended spelling.
pub fn near_miss(name: &str) -> Option<String> {
    if is_known_parameter(name) {
        return None;
    }
    let specials = [
        INTERACTION_ID,
        EXTERNAL_ID,
        ERROR_CODE,
        ERROR_DESCRIPTION,
        QUEUE,
    ];
    settable_names()
        .chain(SERVER_OWNED.iter().copied())
        .chain(specials)
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| k.to_string())
}

/// Sets one settable attribute of `fields` from a value.
fn set_field(
    fields: &mut TaskFields,
    attr: &'static str,
    v: &Value,
    tz: &TimeZone,
) -> Result<(), DomainError> {
    let text = || v.to_attribute_text();
    let ts = |name: &str| v.to_timestamp(name, tz);
    let e = &mut fields.ext;
    match attr {
        "captureId" => fields.capture_id = text(),
        "tenantId" => fields.tenant_id = text(),
        "solutionId" => fields.solution_id = text(),
        "departmentId" => fields.department_id = text(),
        "processId" => fields.process_id = text(),
        "contractId" => fields.contract_id = text(),
        "businessCalendarId" => fields.business_calendar_id = text(),
        "channel" => fields.channel = text(),
        "category" => fields.category = text(),
        "priority" => fields.priority = v.to_int("priority")?,
        "businessValue" => fields.business_value = v.to_int("businessValue")?,
        "activationDateTime" => fields.activation_date_time = ts("activationDateTime")?,
        "dueDateTime" => fields.due_date_time = ts("dueDateTime")?,
        "expirationDateTime" => fields.expiration_date_time = ts("expirationDateTime")?,
        "reprioritizeDateTime" => fields.reprioritize_date_time = ts("reprioritizeDateTime")?,
        "customerID" => e.customer_id = text(),
        "customerSegment" => e.customer_segment = text(),
        "productType" => e.product_type = text(),
        "productSubtype" => e.product_subtype = text(),
        "resultCode" => e.result_code = text(),
        "sourceProcessType" => e.source_process_type = text(),
        "sourceProcessSubtype" => e.source_process_subtype = text(),
        "sourceTenant" => e.source_tenant = text(),
        "sourceFirstCreatedDateTime" => {
            e.source_first_created_date_time = ts("ext.sourceFirstCreatedDateTime")?
        }
        "sourceCreatedDateTime" => e.source_created_date_time = ts("ext.sourceCreatedDateTime")?,
        "sourceDueDateTime" => e.source_due_date_time = ts("ext.sourceDueDateTime")?,
        _ => {}
    }
    Ok(())
}

/// What a captured row asks for: the task's attributes (SPEC section 5): `ExternalId` →
/// captureId, a settable attribute's name in any case → that attribute, any other
/// column → a custom data attribute. `InteractionId` is ignored: brokerIds are generated.
pub fn fields_for_capture(row: &Row, tz: &TimeZone) -> Result<TaskFields, DomainError> {
    let mut fields = TaskFields::default();
    for (column, value) in &row.columns {
        if column.eq_ignore_ascii_case(INTERACTION_ID) {
            continue;
        }
        apply_column(&mut fields, column, value, tz)?;
    }
    fields.validate()?;
    Ok(fields)
}

fn apply_column(
    fields: &mut TaskFields,
    column: &str,
    value: &Value,
    tz: &TimeZone,
) -> Result<(), DomainError> {
    if column.eq_ignore_ascii_case(EXTERNAL_ID) {
        set_field(fields, "captureId", value, tz)
    } else if let Some(attr) = settable(column) {
        set_field(fields, attr, value, tz)
    } else {
        if let Some(text) = value.to_attribute_text() {
            fields.data.insert(column.to_owned(), text);
        }
        Ok(())
    }
}

/// Which task a source-update row names, and the change it asks for (SPEC section 5,
/// "Source updates").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateTarget {
    Broker(BrokerId),
    Capture(String),
}

/// Reads a source-update row: `InteractionId` finds the task when present (then
/// `ExternalId` is a captureId change); otherwise `ExternalId` does.
pub fn update_from_row(
    row: &Row,
    tz: &TimeZone,
) -> Result<(UpdateTarget, TaskFields), DomainError> {
    let interaction = row.get_ci(INTERACTION_ID).filter(|v| !v.is_null());
    let external = row.get_ci(EXTERNAL_ID).filter(|v| !v.is_null());
    let target = match (interaction, external) {
        (Some(v), _) => {
            let id = v
                .to_int(INTERACTION_ID)?
                .filter(|&i| i > 0)
                .ok_or_else(|| DomainError::invalid(INTERACTION_ID, "is not a positive integer"))?;
            UpdateTarget::Broker(BrokerId(id))
        }
        (None, Some(v)) => UpdateTarget::Capture(v.to_attribute_text().unwrap_or_default()),
        (None, None) => {
            return Err(DomainError::invalid(
                "InteractionId",
                "the row names no task: it needs an InteractionId or ExternalId column",
            ))
        }
    };
    let mut fields = TaskFields::default();
    for (column, value) in &row.columns {
        if column.eq_ignore_ascii_case(INTERACTION_ID) {
            continue;
        }
        if column.eq_ignore_ascii_case(EXTERNAL_ID) && matches!(target, UpdateTarget::Capture(_)) {
            continue;
        }
        apply_column(&mut fields, column, value, tz)?;
    }
    fields.validate()?;
    Ok((target, fields))
}

/// Everything a statement's parameters may be taken from.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    pub row: Option<&'a Row>,
    pub task: Option<&'a Task>,
    /// ErrorCode and ErrorDescription, for the error statements.
    pub error: Option<(i64, &'a str)>,
    /// `?'Queue'` when it differs from the task's own `queue` (queuedUpdateSql).
    pub queue: Option<&'a str>,
}

impl Context<'_> {
    /// The value bound for parameter `name`: the special names first, then a column of
    /// the row, then a task attribute, then a custom data key (exact case); NULL when
    /// none has it.
    pub fn value(&self, name: &str) -> Value {
        let c = camel(name);
        if let Some((code, descr)) = self.error {
            if c == "errorCode" {
                return Value::Int(code);
            }
            if c == "errorDescription" {
                return Value::Text(descr.to_owned());
            }
        }
        if c == "interactionId" {
            if let Some(t) = self.task {
                return Value::Int(t.broker_id.0);
            }
            return self
                .row
                .and_then(|r| r.get_ci(INTERACTION_ID))
                .cloned()
                .unwrap_or(Value::Null);
        }
        if c == "externalId" {
            // A source-update row may name its task by InteractionId only: then the
            // task's captureId is the ExternalId.
            if let Some(v) = self
                .row
                .and_then(|r| r.get_ci(EXTERNAL_ID))
                .filter(|v| !v.is_null())
            {
                return v.clone();
            }
            return self
                .task
                .map_or(Value::Null, |t| Value::Text(t.capture_id.clone()));
        }
        if c == "queue" {
            if let Some(q) = self.queue {
                return Value::Text(q.to_owned());
            }
        }
        if let Some(v) = self.row.and_then(|r| r.get(name)) {
            return v.clone();
        }
        if let Some(t) = self.task {
            if let Some(v) = task_attribute(t, &c) {
                return v;
            }
            if let Some(v) = t.data.get(name) {
                return Value::Text(v.clone());
            }
        }
        Value::Null
    }
}

/// A task attribute by its camelCase name.
fn task_attribute(t: &Task, camel_name: &str) -> Option<Value> {
    let s = |v: &Option<String>| Value::from(v.clone());
    let e = &t.ext;
    Some(match camel_name {
        "brokerId" => Value::Int(t.broker_id.0),
        "captureId" => Value::Text(t.capture_id.clone()),
        "capturePointId" => Value::Text(t.capture_point_id.clone()),
        "distributionId" => s(&t.distribution_id),
        "distributionPointId" => s(&t.distribution_point_id),
        "tenantId" => s(&t.tenant_id),
        "solutionId" => s(&t.solution_id),
        "departmentId" => s(&t.department_id),
        "processId" => s(&t.process_id),
        "contractId" => s(&t.contract_id),
        "businessCalendarId" => s(&t.business_calendar_id),
        "channel" => s(&t.channel),
        "category" => s(&t.category),
        "status" => Value::Text(t.status.as_str().to_owned()),
        "priority" => Value::Int(i64::from(t.priority)),
        "businessValue" => Value::from(t.business_value.map(i64::from)),
        "createdDateTime" => Value::Timestamp(t.created_date_time),
        "heldDateTime" => Value::from(t.held_date_time),
        "distributedDateTime" => Value::from(t.distributed_date_time),
        "assignedDateTime" => Value::from(t.assigned_date_time),
        "completedDateTime" => Value::from(t.completed_date_time),
        "activationDateTime" => Value::from(t.activation_date_time),
        "dueDateTime" => Value::from(t.due_date_time),
        "expirationDateTime" => Value::from(t.expiration_date_time),
        "reprioritizeDateTime" => Value::from(t.reprioritize_date_time),
        "assignedToUser" => s(&t.assigned_to_user),
        "queue" => s(&t.queue),
        "queueType" => Value::from(t.queue_type.map(|q| q.as_str())),
        "queueTarget" => s(&t.queue_target),
        "error" => s(&t.error),
        "version" => Value::Int(t.version),
        "customerID" => s(&e.customer_id),
        "customerSegment" => s(&e.customer_segment),
        "productType" => s(&e.product_type),
        "productSubtype" => s(&e.product_subtype),
        "resultCode" => s(&e.result_code),
        "sourceProcessType" => s(&e.source_process_type),
        "sourceProcessSubtype" => s(&e.source_process_subtype),
        "sourceTenant" => s(&e.source_tenant),
        "sourceFirstCreatedDateTime" => Value::from(e.source_first_created_date_time),
        "sourceCreatedDateTime" => Value::from(e.source_created_date_time),
        "sourceDueDateTime" => Value::from(e.source_due_date_time),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cols: &[(&str, Value)]) -> Row {
        Row {
            columns: cols
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn seed_capture_columns_map_as_spec_section_5_says() {
        let r = row(&[
            ("ExternalId", Value::Text("C-1".into())),
            ("ReceivedAt", Value::Text("2026-01-02 03:04:05".into())),
            ("Priority", Value::Int(7)),
            ("Status", Value::Text("new".into())),
            ("dueDateTime", Value::Text("2026-02-01T00:00:00Z".into())),
            ("CUSTOMERID", Value::Text("K9".into())),
            ("Note", Value::Null),
        ]);
        let f = fields_for_capture(&r, &TimeZone::UTC).expect("maps");
        assert_eq!(f.capture_id.as_deref(), Some("C-1"));
        assert_eq!(f.priority, Some(7));
        assert_eq!(f.ext.customer_id.as_deref(), Some("K9"));
        assert_eq!(
            f.due_date_time.map(|t| t.to_string()).as_deref(),
            Some("2026-02-01T00:00:00Z")
        );
        // Server-owned names and unknown columns become custom data; NULLs are left out.
        assert_eq!(f.data.get("Status").map(String::as_str), Some("new"));
        assert_eq!(
            f.data.get("ReceivedAt").map(String::as_str),
            Some("2026-01-02 03:04:05")
        );
        assert!(!f.data.contains_key("Note"));
    }

    #[test]
    fn a_bad_value_names_its_attribute() {
        let r = row(&[
            ("ExternalId", Value::Text("C-1".into())),
            ("Priority", Value::Text("high".into())),
        ]);
        let e = fields_for_capture(&r, &TimeZone::UTC).expect_err("refused");
        assert_eq!(e.parameters, ["priority"]);
        let long = "x".repeat(65);
        let r = row(&[("ExternalId", Value::Text(long))]);
        assert_eq!(
            fields_for_capture(&r, &TimeZone::UTC)
                .expect_err("too long")
                .parameters,
            ["captureId"]
        );
    }

    #[test]
    fn update_rows_name_their_task_by_interaction_id_first() {
        let r = row(&[
            ("InteractionId", Value::Text("12".into())),
            ("ExternalId", Value::Text("NEW".into())),
            ("Priority", Value::Int(3)),
        ]);
        let (t, f) = update_from_row(&r, &TimeZone::UTC).expect("reads");
        assert_eq!(t, UpdateTarget::Broker(BrokerId(12)));
        assert_eq!(f.capture_id.as_deref(), Some("NEW"));
        let r = row(&[
            ("ExternalId", Value::Text("C-1".into())),
            ("Priority", Value::Int(3)),
        ]);
        let (t, f) = update_from_row(&r, &TimeZone::UTC).expect("reads");
        assert_eq!(t, UpdateTarget::Capture("C-1".into()));
        assert_eq!(f.capture_id, None);
        assert!(update_from_row(&row(&[("Priority", Value::Int(3))]), &TimeZone::UTC).is_err());
    }

    #[test]
    fn parameter_names_resolve_in_order() {
        let r = row(&[
            ("ExternalId", Value::Text("C-1".into())),
            ("Extra", Value::Int(4)),
        ]);
        let ctx = Context {
            row: Some(&r),
            error: Some((3, "dup")),
            ..Context::default()
        };
        assert_eq!(ctx.value("ExternalId"), Value::Text("C-1".into()));
        assert_eq!(ctx.value("ErrorCode"), Value::Int(3));
        assert_eq!(ctx.value("errorDescription"), Value::Text("dup".into()));
        assert_eq!(ctx.value("Extra"), Value::Int(4));
        assert_eq!(ctx.value("InteractionId"), Value::Null);
        assert_eq!(ctx.value("Nothing"), Value::Null);
    }

    #[test]
    fn known_names_and_near_misses() {
        assert!(is_known_parameter("Priority"));
        assert!(is_known_parameter("priority"));
        assert!(is_known_parameter("InteractionId"));
        assert!(is_known_parameter("CustomerID"));
        assert!(!is_known_parameter("PRIORITY"));
        assert_eq!(near_miss("PRIORITY").as_deref(), Some("priority"));
        assert_eq!(near_miss("externalid").as_deref(), Some("ExternalId"));
        assert_eq!(near_miss("caseNote"), None);
    }
}
