//! Attributes a source system may set, on create and on update, with their validation.

use crate::error::DomainError;
use crate::task::{Ext, Task};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The ext attributes a source may set: the same fixed set as [`Ext`].
pub type ExtFields = Ext;

/// Length limits of SPEC section 1, in characters.
pub mod limits {
    pub const CAPTURE_ID: usize = 64;
    pub const CAPTURE_POINT_ID: usize = 16;
    pub const DISTRIBUTION_ID: usize = 64;
    pub const SHORT_ID: usize = 16;
    pub const CHANNEL: usize = 32;
    pub const USER: usize = 64;
    pub const QUEUE: usize = 255;
    pub const EXT: usize = 64;
    pub const DATA_KEY: usize = 64;
    pub const DATA_VALUE: usize = 255;
    pub const TEXT: usize = 255;
}

/// Checks a string attribute's length, and that it has only characters XML 1.0 can carry:
/// attributes travel in MQ XML messages, and a control character or a noncharacter
/// (U+FFFE, U+FFFF) accepted by one channel would make the task impossible to announce on
/// another. Nothing is ever truncated.
pub fn check_len(attribute: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if let Some(c) = value.chars().find(|&c| !xml_char(c)) {
        return Err(DomainError::invalid(
            attribute,
            format!(
                "contains the character U+{:04X}, which XML cannot carry",
                c as u32
            ),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(DomainError::invalid(
            attribute,
            format!("is {n} characters long, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// A character of XML 1.0's `Char` production (tab, newline and carriage return are the
/// only control characters it allows; Rust strings never hold surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Checks an Integer attribute: -2^31 < v < 2^31 (seed 001, "Data Types").
pub fn check_int(attribute: &str, value: i64) -> Result<i32, DomainError> {
    if value <= i64::from(i32::MIN) || value > i64::from(i32::MAX) {
        return Err(DomainError::invalid(
            attribute,
            format!("{value} is out of range (-2^31 < value < 2^31)"),
        ));
    }
    Ok(value as i32)
}

/// An optional integer that may be written with a zero fraction (`5.0`): JSON does not
/// tell integers from other numbers, and JSON Schema's `integer` (the OpenAPI document's
/// type) includes `5.0`, so refusing it would refuse input the document allows.
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format_args!("{v} is out of range")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // Beyond ±2^53 an f64 is no longer exact; check_int refuses far smaller values.
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(Some(v as i64))
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(V)
}

/// The attributes a source system may give on CreateTask or UpdateTask; absent means
/// "not given" (on update: unchanged).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_calendar_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(
        default,
        deserialize_with = "integral",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<i64>,
    #[serde(
        default,
        deserialize_with = "integral",
        skip_serializing_if = "Option::is_none"
    )]
    pub business_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reprioritize_date_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Ext::is_empty")]
    pub ext: ExtFields,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

/// Invokes `$m!` with the optional attributes of [`TaskFields`] (all but captureId, ext
/// and data), then `$e!` with those of its ext: one list for the methods that go through
/// them all.
macro_rules! optional_attributes {
    ($m:ident, $e:ident) => {
        $m!(
            tenant_id,
            solution_id,
            department_id,
            process_id,
            contract_id,
            business_calendar_id,
            channel,
            category,
            priority,
            business_value,
            activation_date_time,
            due_date_time,
            expiration_date_time,
            reprioritize_date_time
        );
        $e!(
            customer_id,
            customer_segment,
            product_type,
            product_subtype,
            result_code,
            source_process_type,
            source_process_subtype,
            source_tenant,
            source_first_created_date_time,
            source_created_date_time,
            source_due_date_time
        );
    };
}

impl TaskFields {
    /// Refuses the first attribute over its length or out of range, naming it.
    pub fn validate(&self) -> Result<(), DomainError> {
        use limits::*;
        let strings: [(&str, &Option<String>, usize); 9] = [
            ("captureId", &self.capture_id, CAPTURE_ID),
            ("tenantId", &self.tenant_id, SHORT_ID),
            ("solutionId", &self.solution_id, SHORT_ID),
            ("departmentId", &self.department_id, SHORT_ID),
            ("processId", &self.process_id, SHORT_ID),
            ("contractId", &self.contract_id, SHORT_ID),
            ("businessCalendarId", &self.business_calendar_id, SHORT_ID),
            ("channel", &self.channel, CHANNEL),
            ("category", &self.category, CHANNEL),
        ];
        for (name, value, max) in strings {
            if let Some(v) = value {
                check_len(name, v, max)?;
            }
        }
        if let Some(id) = &self.capture_id {
            if id.trim().is_empty() {
                return Err(DomainError::invalid("captureId", "must not be empty"));
            }
            // An identifier is matched exactly by other systems: a tab or newline in it
            // (which XML could carry) is always a mistake of the sender.
            if let Some(c) = id.chars().find(|c| c.is_control()) {
                return Err(DomainError::invalid(
                    "captureId",
                    format!("contains the control character U+{:04X}", c as u32),
                ));
            }
        }
        if let Some(p) = self.priority {
            check_int("priority", p)?;
        }
        if let Some(v) = self.business_value {
            check_int("businessValue", v)?;
        }
        for (name, value) in self.ext.strings() {
            if let Some(v) = value {
                check_len(&format!("ext.{name}"), v, EXT)?;
            }
        }
        for (key, value) in &self.data {
            if key.trim().is_empty() {
                return Err(DomainError::invalid(
                    "data",
                    "a custom attribute has an empty name",
                ));
            }
            check_len(&format!("data.{key}"), key, DATA_KEY)?;
            check_len(&format!("data.{key}"), value, DATA_VALUE)?;
        }
        Ok(())
    }

    /// True when no attribute is given.
    pub fn is_empty(&self) -> bool {
        self == &TaskFields::default()
    }

    /// Fills the attributes not given here from `defaults` (a capture point's defaults).
    pub fn with_defaults(mut self, defaults: &TaskFields) -> Self {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = defaults.$f.clone(); } )* };
        }
        macro_rules! fill_ext {
            ($($f:ident),*) => { $( if self.ext.$f.is_none() { self.ext.$f = defaults.ext.$f.clone(); } )* };
        }
        optional_attributes!(fill, fill_ext);
        for (k, v) in &defaults.data {
            self.data.entry(k.clone()).or_insert_with(|| v.clone());
        }
        self
    }

    /// Takes every attribute `later` gives in place of this one's, keeping the rest (as
    /// `later.with_defaults(self)` would, captureId aside, without copying what `later`
    /// leaves alone).
    pub fn set_from(&mut self, later: &TaskFields) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f.clone_from(&later.$f); } )* };
        }
        macro_rules! take_ext {
            ($($f:ident),*) => { $( if later.ext.$f.is_some() { self.ext.$f.clone_from(&later.ext.$f); } )* };
        }
        optional_attributes!(take, take_ext);
        if later.capture_id.is_some() {
            self.capture_id.clone_from(&later.capture_id);
        }
        for (k, v) in &later.data {
            self.data.insert(k.clone(), v.clone());
        }
    }

    /// Writes the given attributes into `task` (validated before) and returns the names of
    /// those whose value changed.
    pub fn apply_to(&self, task: &mut Task) -> Vec<String> {
        let mut changed = Vec::new();
        macro_rules! set {
            ($name:literal, $src:expr, $dst:expr) => {
                if let Some(v) = &$src {
                    if $dst.as_ref() != Some(v) {
                        $dst = Some(v.clone());
                        changed.push($name.to_owned());
                    }
                }
            };
        }
        if let Some(id) = &self.capture_id {
            if &task.capture_id != id {
                task.capture_id = id.clone();
                changed.push("captureId".to_owned());
            }
        }
        set!("tenantId", self.tenant_id, task.tenant_id);
        set!("solutionId", self.solution_id, task.solution_id);
        set!("departmentId", self.department_id, task.department_id);
        set!("processId", self.process_id, task.process_id);
        set!("contractId", self.contract_id, task.contract_id);
        set!(
            "businessCalendarId",
            self.business_calendar_id,
            task.business_calendar_id
        );
        set!("channel", self.channel, task.channel);
        set!("category", self.category, task.category);
        if let Some(p) = self.priority {
            let p = p as i32;
            if task.priority != p {
                task.priority = p;
                changed.push("priority".to_owned());
            }
        }
        if let Some(v) = self.business_value {
            let v = Some(v as i32);
            if task.business_value != v {
                task.business_value = v;
                changed.push("businessValue".to_owned());
            }
        }
        set!(
            "activationDateTime",
            self.activation_date_time,
            task.activation_date_time
        );
        set!("dueDateTime", self.due_date_time, task.due_date_time);
        set!(
            "expirationDateTime",
            self.expiration_date_time,
            task.expiration_date_time
        );
        set!(
            "reprioritizeDateTime",
            self.reprioritize_date_time,
            task.reprioritize_date_time
        );
        let e = &self.ext;
        set!("ext.customerID", e.customer_id, task.ext.customer_id);
        set!(
            "ext.customerSegment",
            e.customer_segment,
            task.ext.customer_segment
        );
        set!("ext.productType", e.product_type, task.ext.product_type);
        set!(
            "ext.productSubtype",
            e.product_subtype,
            task.ext.product_subtype
        );
        set!("ext.resultCode", e.result_code, task.ext.result_code);
        set!(
            "ext.sourceProcessType",
            e.source_process_type,
            task.ext.source_process_type
        );
        set!(
            "ext.sourceProcessSubtype",
            e.source_process_subtype,
            task.ext.source_process_subtype
        );
        set!("ext.sourceTenant", e.source_tenant, task.ext.source_tenant);
        set!(
            "ext.sourceFirstCreatedDateTime",
            e.source_first_created_date_time,
            task.ext.source_first_created_date_time
        );
        set!(
            "ext.sourceCreatedDateTime",
            e.source_created_date_time,
            task.ext.source_created_date_time
        );
        set!(
            "ext.sourceDueDateTime",
            e.source_due_date_time,
            task.ext.source_due_date_time
        );
        for (k, v) in &self.data {
            if task.data.get(k) != Some(v) {
                task.data.insert(k.clone(), v.clone());
                changed.push(format!("data.{k}"));
            }
        }
        changed
    }
}

/// What a create does when its capture point already has a task with that captureId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnDuplicate {
    /// Duplicate checking is off: create another task.
    #[default]
    Allow,
    /// `checkIfCaptured`: refuse with TASK_ALREADY_CAPTURED.
    Refuse,
    /// Idempotent capture (database capture point): answer with the existing task.
    ReturnExisting,
}

/// A CreateTask request, validated by [`NewTask::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    pub capture_point_id: String,
    pub fields: TaskFields,
    #[serde(default)]
    pub hold: bool,
    #[serde(default)]
    pub on_duplicate: OnDuplicate,
}

impl NewTask {
    pub fn validate(&self) -> Result<(), DomainError> {
        check_capture_point_id(&self.capture_point_id)?;
        self.fields.validate()
    }
}

/// A capture point's id: not blank, at most 16 characters XML can carry.
pub fn check_capture_point_id(id: &str) -> Result<(), DomainError> {
    if id.trim().is_empty() {
        return Err(DomainError::invalid("capturePointId", "must not be empty"));
    }
    check_len("capturePointId", id, limits::CAPTURE_POINT_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_len_refuses_what_xml_cannot_carry() {
        for bad in ["a\u{0}", "\u{1F}", "x\u{FFFE}", "\u{FFFF}y", "\u{B}"] {
            let e = check_len("reason", bad, 10).unwrap_err();
            assert!(
                e.message.starts_with("reason: contains the character U+"),
                "{e:?}"
            );
        }
        for good in [
            "tab\there",
            "a\r\nb",
            "\u{7F}",
            "\u{FFFD}",
            "\u{10FFFF}",
            "é",
        ] {
            check_len("reason", good, 10).unwrap();
        }
    }

    #[test]
    fn integers_may_have_a_zero_fraction() {
        let f: TaskFields =
            serde_json::from_str(r#"{"priority": 5.0, "businessValue": -3}"#).unwrap();
        assert_eq!((f.priority, f.business_value), (Some(5), Some(-3)));
        for bad in [
            r#"{"priority": 5.5}"#,
            r#"{"priority": "5"}"#,
            r#"{"priority": 1e300}"#,
        ] {
            assert!(serde_json::from_str::<TaskFields>(bad).is_err(), "{bad}");
        }
        let f: TaskFields = serde_json::from_str(r#"{"priority": null}"#).unwrap();
        assert_eq!(f.priority, None);
    }

    #[test]
    fn capture_id_refuses_every_control_character() {
        for bad in ["a\tb", "a\nb", "a\u{85}"] {
            let f = TaskFields {
                capture_id: Some(bad.to_owned()),
                ..TaskFields::default()
            };
            assert_eq!(f.validate().unwrap_err().parameters, vec!["captureId"]);
        }
    }
}
