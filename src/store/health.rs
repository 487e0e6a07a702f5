//! What the readiness probe and the metrics ask of the database: whether its file is still
//! there, and a few grouped counts (whether its schema is current: `schema.rs`).

use time::OffsetDateTime;

use super::{Store, StoreError, parse_ts};

/// Figures for the metrics, read in one go.
#[derive(Debug, Clone, Default)]
pub struct HealthFigures {
    /// Tenants by status (`TenantStatus::as_str`); statuses with none are absent.
    pub tenants: Vec<(String, i64)>,
    /// The earliest scheduled check, due or not.
    pub oldest_due: Option<OffsetDateTime>,
    /// Webhook deliveries by status: pending, succeeded, failed.
    pub deliveries: Vec<(String, i64)>,
}

impl Store {
    /// Whether the database file is still where it was opened, and writable. Open
    /// connections keep working on a deleted file (and one opened read-write keeps writing
    /// after a `chmod`), so a query alone would not notice that the next start would fail
    /// or that writes are going nowhere.
    pub fn database_file_ok(&self) -> bool {
        if self.dialect != super::Dialect::Sqlite {
            return true;
        }
        let Ok(options) =
            sqlx::sqlite::SqliteConnectOptions::try_from(&*self.pool.connect_options())
        else {
            return true;
        };
        let path = options.get_filename();
        let name = path.to_string_lossy();
        if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
            return true;
        }
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && !m.permissions().readonly())
    }

    /// Tenants by status, the earliest scheduled check and deliveries by status: three
    /// grouped queries, each served by an index or a small table.
    pub async fn health_figures(&self) -> Result<HealthFigures, StoreError> {
        let tenants = sqlx::query_as("select status, count(*) from tenant group by status")
            .fetch_all(&self.pool)
            .await?;
        let oldest: Option<String> = sqlx::query_scalar(
            "select min(next_verify_at) from tenant where next_verify_at is not null",
        )
        .fetch_one(&self.pool)
        .await?;
        let deliveries =
            sqlx::query_as("select status, count(*) from webhook_delivery group by status")
                .fetch_all(&self.pool)
                .await?;
        Ok(HealthFigures {
            tenants,
            oldest_due: oldest.as_deref().and_then(parse_ts),
            deliveries,
        })
    }
}
