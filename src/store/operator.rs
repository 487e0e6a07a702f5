//! Operators and their sessions.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, ts};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    /// Argon2id PHC string; never shown.
    pub password_hash: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub operator_id: String,
    pub operator_name: String,
    pub csrf_token: String,
}

impl Store {
    /// Creates an operator, or replaces the password of an existing one (returns false) and
    /// ends every session of theirs: a password is reset because it may be known to someone
    /// else, who may be signed in with it.
    pub async fn upsert_operator(
        &self,
        name: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A password reset ends that operator's sessions. This write comes first so that
        // SQLite takes the write lock at once: a transaction that reads first and writes
        // later fails with "database is locked" when another writer got in between.
        sqlx::query(
            "delete from operator_session where operator_id in (select id from operator where name = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let existing: Option<String> =
            sqlx::query_scalar("select id from operator where name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "insert into operator (id, name, password_hash, created_at, updated_at) values ($1, $2, $3, $4, $4) \
             on conflict (name) do update set password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(name)
        .bind(password_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(existing.is_none())
    }

    pub async fn operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        Ok(
            sqlx::query_as("select id, name, password_hash from operator where name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn create_session(
        &self,
        id_hash: &str,
        operator_id: &str,
        csrf_token: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("delete from operator_session where expires_at < $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "insert into operator_session (id_hash, operator_id, csrf_token, created_at, expires_at) values ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(operator_id)
        .bind(csrf_token)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRow>, StoreError> {
        Ok(sqlx::query_as(
            "select operator.id as operator_id, operator.name as operator_name, operator_session.csrf_token \
             from operator_session join operator on operator.id = operator_session.operator_id \
             where operator_session.id_hash = $1 and operator_session.expires_at > $2",
        )
        .bind(id_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("delete from operator_session where id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
