//! Leases: parts that must run once in a cluster (a database capture point's poller, a
//! notification target's sender, the coming scheduler) hold a named lease in the store.
//! One holder at a time; the holder renews it well before it expires, and another node
//! takes it over once it has expired (its holder died or lost the store).

use crate::{micros, StoreError};
use async_trait::async_trait;
use worklane_domain::Timestamp;

/// Named leases, one holder each.
#[async_trait]
pub trait Leases: Send + Sync + std::fmt::Debug + 'static {
    /// Takes or renews the lease `name` for `holder` until `until`. True when `holder`
    /// holds it now: it was free, expired at `now`, or already `holder`'s.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Gives the lease up, when `holder` holds it (a clean stop: another node may take it
    /// over at once).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Who holds `name` and until when, expired or not (None when nobody ever did or it
    /// was released).
    async fn lease_holder(&self, name: &str) -> Result<Option<(String, Timestamp)>, StoreError>;
}

macro_rules! impl_leases {
    ($ty:ty) => {
        #[async_trait]
        impl Leases for $ty {
            async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: Timestamp,
                until: Timestamp,
            ) -> Result<bool, StoreError> {
                // One statement: the conditional update is the whole decision, so two
                // nodes racing for a free or expired lease cannot both win.
                let row: Option<(String,)> = sqlx::query_as(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(micros(until))
                .bind(micros(now))
                .fetch_optional(&mut *self.write().acquire().await?)
                .await?;
                Ok(row.is_some_and(|(h,)| h == holder))
            }

            async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&mut *self.write().acquire().await?)
                    .await?;
                Ok(())
            }

            async fn lease_holder(
                &self,
                name: &str,
            ) -> Result<Option<(String, Timestamp)>, StoreError> {
                let row: Option<(String, i64)> =
                    sqlx::query_as("SELECT holder, expires_at FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.read())
                        .await?;
                Ok(row
                    .map(|(h, us)| (h, Timestamp::from_microsecond(us).unwrap_or(Timestamp::MAX))))
            }
        }
    };
}

impl_leases!(crate::SqliteStore);
impl_leases!(crate::PostgresStore);
