//! Task attributes by name: how a value given as text (an XML element, a configuration
//! key) lands in [`TaskFields`]. Names match without regard to case or underscores, so
//! `priority`, `Priority` and `business_value`/`businessValue` all work.

use super::datetime;
use jiff::tz::TimeZone;
use worklane_domain::fields::check_int;
use worklane_domain::{DomainError, Ext, TaskFields, Timestamp};

/// Folds a name for matching: lower case, no underscores.
pub(crate) fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn int(attribute: &str, value: &str) -> Result<i64, DomainError> {
    let v: i64 = value
        .parse()
        .map_err(|_| DomainError::invalid(attribute, format!("{value:?} is not an Integer")))?;
    check_int(attribute, v)?;
    Ok(v)
}

/// Sets the task attribute `name` (any case) from `value`. `Ok(false)` when the name is
/// not a settable attribute.
pub(crate) fn set_task_attribute(
    fields: &mut TaskFields,
    name: &str,
    value: &str,
    tz: &TimeZone,
) -> Result<bool, DomainError> {
    let s = || Some(value.to_owned());
    let dt = |attr: &str| -> Result<Option<Timestamp>, DomainError> {
        Ok(Some(datetime::parse(attr, value, tz)?))
    };
    match fold(name).as_str() {
        "captureid" => fields.capture_id = s(),
        "tenantid" => fields.tenant_id = s(),
        "solutionid" => fields.solution_id = s(),
        "departmentid" => fields.department_id = s(),
        "processid" => fields.process_id = s(),
        "contractid" => fields.contract_id = s(),
        "businesscalendarid" => fields.business_calendar_id = s(),
        "channel" => fields.channel = s(),
        "category" => fields.category = s(),
        "priority" => fields.priority = Some(int("priority", value)?),
        "businessvalue" => fields.business_value = Some(int("businessValue", value)?),
        "activationdatetime" => fields.activation_date_time = dt("activationDateTime")?,
        "duedatetime" => fields.due_date_time = dt("dueDateTime")?,
        "expirationdatetime" => fields.expiration_date_time = dt("expirationDateTime")?,
        "reprioritizedatetime" => fields.reprioritize_date_time = dt("reprioritizeDateTime")?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Sets the ext attribute `name` (any case) from `value`. `Ok(false)` when unknown.
pub(crate) fn set_ext_attribute(
    ext: &mut Ext,
    name: &str,
    value: &str,
    tz: &TimeZone,
) -> Result<bool, DomainError> {
    let s = || Some(value.to_owned());
    let dt = |attr: &str| -> Result<Option<Timestamp>, DomainError> {
        Ok(Some(datetime::parse(&format!("ext.{attr}"), value, tz)?))
    };
    match fold(name).as_str() {
        "customerid" => ext.customer_id = s(),
        "customersegment" => ext.customer_segment = s(),
        "producttype" => ext.product_type = s(),
        "productsubtype" => ext.product_subtype = s(),
        "resultcode" => ext.result_code = s(),
        "sourceprocesstype" => ext.source_process_type = s(),
        "sourceprocesssubtype" => ext.source_process_subtype = s(),
        "sourcetenant" => ext.source_tenant = s(),
        "sourcefirstcreateddatetime" => {
            ext.source_first_created_date_time = dt("sourceFirstCreatedDateTime")?
        }
        "sourcecreateddatetime" => ext.source_created_date_time = dt("sourceCreatedDateTime")?,
        "sourceduedatetime" => ext.source_due_date_time = dt("sourceDueDateTime")?,
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_values_are_checked() {
        let tz = TimeZone::UTC;
        let mut f = TaskFields::default();
        assert!(set_task_attribute(&mut f, "Priority", "5", &tz).unwrap());
        assert!(set_task_attribute(&mut f, "business_value", "-3", &tz).unwrap());
        assert!(!set_task_attribute(&mut f, "status", "New", &tz).unwrap());
        assert_eq!((f.priority, f.business_value), (Some(5), Some(-3)));
        let e = set_task_attribute(&mut f, "priority", "2147483648", &tz).unwrap_err();
        assert_eq!(e.parameters, vec!["priority".to_owned()]);
        let e = set_task_attribute(&mut f, "priority", "high", &tz).unwrap_err();
        assert_eq!(e.parameters, vec!["priority".to_owned()]);
        let mut ext = Ext::default();
        assert!(set_ext_attribute(&mut ext, "CUSTOMERID", "c1", &tz).unwrap());
        assert_eq!(ext.customer_id.as_deref(), Some("c1"));
    }
}
