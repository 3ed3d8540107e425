//! The GTLMessages XML protocol (seed 001, SPEC section 4), pure: inbound messages are
//! parsed leniently (element names in any case, values trimmed, DateTime in the capture
//! point's time zone or with an explicit offset), outbound ones are written exactly with
//! the seed's spelling. Hard limits guard the parser: message size, nesting depth, no
//! DOCTYPE, no entity expansion.

mod datetime;
mod fields;
mod inbound;
mod outbound;
mod tree;
mod writer;

pub use inbound::{ActionKind, CreateTask, Inbound, Target, TaskAction};
pub use outbound::{Details, ErrorMessage, Notice, NoticeKind, Outbound, OUTBOUND_NAMES};
pub use tree::Limits;

pub(crate) use fields::{fold, set_ext_attribute, set_task_attribute};
pub(crate) use tree::{parse as parse_tree, Element};
pub(crate) use writer::{escape_into, is_xml_name};

use jiff::tz::TimeZone;
use worklane_domain::{DomainError, Timestamp};

/// Reads and writes messages for one capture point: its time zone and limits.
#[derive(Debug, Clone)]
pub struct Codec {
    time_zone: TimeZone,
    limits: Limits,
}

impl Codec {
    /// A codec writing and reading DateTime in `time_zone`, parsing within `limits`.
    pub fn new(time_zone: TimeZone, limits: Limits) -> Self {
        Self { time_zone, limits }
    }

    /// UTC and the default limits.
    pub fn utc() -> Self {
        Self::new(TimeZone::UTC, Limits::default())
    }

    /// The time zone DateTime values are read and written in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// Parses an inbound message; every failure is INVALID_FORMAT naming what is wrong.
    pub fn parse_inbound(&self, bytes: &[u8]) -> Result<Inbound, DomainError> {
        inbound::parse(bytes, &self.limits, &self.time_zone)
    }

    /// Writes an inbound message (what a source system would send).
    pub fn render_inbound(&self, msg: &Inbound) -> String {
        inbound::render(msg, &self.time_zone)
    }

    /// Writes an outbound message.
    pub fn render_outbound(&self, msg: &Outbound) -> String {
        outbound::render(msg, &self.time_zone)
    }

    /// Reads an outbound message back.
    pub fn parse_outbound(&self, bytes: &[u8]) -> Result<Outbound, DomainError> {
        outbound::parse(bytes, &self.limits, &self.time_zone)
    }

    /// A DateTime value as this capture point writes it.
    pub fn format_time(&self, t: Timestamp) -> String {
        datetime::format(t, &self.time_zone)
    }
}

#[cfg(test)]
mod tests;
