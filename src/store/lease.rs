//! Leases on background jobs (migration 20261201000011_job_lease.sql): of the instances
//! sharing a database, the one holding a job's lease does it.

use time::OffsetDateTime;

use super::{Store, StoreError, ts};

impl Store {
    /// Takes the lease on `job` for `holder` until `until`, if nobody holds it at `now` or
    /// `holder` does already (a renewal). Returns whether `holder` holds it now.
    pub async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "insert into job_lease (name, holder, until) values ($1, $2, $3) \
             on conflict (name) do update set holder = excluded.holder, until = excluded.until \
             where job_lease.until <= $4 or job_lease.holder = excluded.holder",
        )
        .bind(job)
        .bind(holder)
        .bind(ts(until))
        .bind(ts(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_until_the_lease_runs_out() {
        // One connection: each in-memory connection is a database of its own.
        let options = crate::store::DatabaseOptions {
            max_connections: 1,
            ..Default::default()
        };
        let store = Store::connect_with("sqlite::memory:", &options)
            .await
            .expect("store");
        let t0 = time::macros::datetime!(2026-12-01 10:00 UTC);
        let minute = Duration::minutes(1);
        assert!(
            store
                .take_lease("purge", "a", t0, t0 + minute)
                .await
                .unwrap()
        );
        // Another instance cannot take it while it runs...
        let later = t0 + Duration::seconds(30);
        assert!(
            !store
                .take_lease("purge", "b", later, later + minute)
                .await
                .unwrap()
        );
        // ...its holder can renew it...
        assert!(
            store
                .take_lease("purge", "a", later, later + minute)
                .await
                .unwrap()
        );
        // ...and once it has run out (the holder died), another takes it over.
        let expired = later + minute;
        assert!(
            store
                .take_lease("purge", "b", expired, expired + minute)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_lease("purge", "a", expired, expired + minute)
                .await
                .unwrap()
        );
        // Jobs are leased independently.
        assert!(
            store
                .take_lease("other", "a", expired, expired + minute)
                .await
                .unwrap()
        );
    }
}
