//! Shares of the due tasks, so that workers claiming at once claim apart.

use worklane_domain::BrokerId;

/// One of [`DueShare::COUNT`] parts of the due tasks, by brokerId (its remainder by the
/// count; brokerIds are positive). Workers that claim due tasks at once each take a share
/// of their own, so none steps over the rows another holds locked (PostgreSQL migration
/// 0022 says what that cost). Workers of two nodes that take the same share skip each
/// other's rows, as every claim does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueShare(u8);

impl DueShare {
    /// How many shares there are. PostgreSQL's index of due times holds each row's share
    /// (migration 0022), so this number is part of the schema.
    pub const COUNT: u8 = 4;

    /// Share `i`, for `i` below [`DueShare::COUNT`] (None otherwise).
    pub fn new(i: u8) -> Option<Self> {
        (i < Self::COUNT).then_some(Self(i))
    }

    /// Every share, in order.
    pub fn all() -> impl Iterator<Item = Self> {
        (0..Self::COUNT).map(Self)
    }

    /// This share's remainder of a brokerId divided by [`DueShare::COUNT`].
    pub fn index(self) -> u8 {
        self.0
    }

    /// Whether task `id` belongs to this share: the claims' rule (`broker_id % COUNT`).
    pub fn holds(self, id: BrokerId) -> bool {
        id.0 % i64::from(Self::COUNT) == i64::from(self.0)
    }

    /// The condition a claim of `share` adds to its query (none without one), `$3` being
    /// the share's index.
    pub(crate) fn filter(share: Option<Self>) -> &'static str {
        share.map_or("", |_| CONDITION)
    }
}

/// A task's share spelt as PostgreSQL's index of due times spells it (migration 0022).
const CONDITION: &str = " AND broker_id % 4 = $3";
const _: () = assert!(DueShare::COUNT == 4, "CONDITION and migration 0022 say 4");
