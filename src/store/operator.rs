//! Operators, their roles and their sessions.

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, ts};

/// What an operator may do on the dashboard. Ordered: each role may do all that the roles
/// before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads every page but the operators and the audit trail; posts nothing but signing
    /// out and ending their own sessions.
    Viewer,
    /// Everything but managing operators (and settings).
    Operator,
    /// Everything.
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// Operator names: 1 to 100 letters, digits and `. _ @ -` (they appear in logs, the audit
/// trail and URLs).
pub fn valid_operator_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c))
}

/// A password for a new or reset operator, shown once: 32 random bytes, base64url.
pub fn generate_password() -> String {
    crate::domain::RandomToken::generate().expose().to_owned()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    /// Argon2id PHC string; never shown.
    pub password_hash: String,
    pub role: String,
    pub disabled_at: Option<String>,
    pub created_at: String,
    /// The username the operator last signed in with Microsoft as; None until they do.
    pub microsoft_username: Option<String>,
    /// The `oid` of the Microsoft identity the operator is tied to.
    pub microsoft_oid: Option<String>,
}

impl OperatorRow {
    /// Whether the operator has a password (one created by a sign-in with Microsoft has
    /// none until an owner resets it).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }

    /// The stored role; a value the schema's check would refuse reads as the least one.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub operator_id: String,
    pub operator_name: String,
    pub role: String,
    pub csrf_token: String,
    pub public_id: Option<String>,
    pub last_seen_at: Option<String>,
    pub expires_at: String,
}

/// One of an operator's sessions, as "Your sessions" lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionView {
    pub public_id: String,
    pub address: String,
    pub user_agent: String,
    pub created_at: String,
    pub last_seen_at: String,
}

/// Where a session was opened from.
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub operator_id: &'a str,
    pub csrf_token: &'a str,
    pub address: &'a str,
    pub user_agent: &'a str,
}

/// Why a change to operators was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorChangeError {
    #[error("there is no operator {0}")]
    NotFound(String),
    #[error("an operator named {0} already exists")]
    Exists(String),
    /// Removing, disabling or demoting the last enabled owner would leave nobody able to
    /// manage operators.
    #[error("{0} is the last owner: make another operator an owner first")]
    LastOwner(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OperatorChangeError {
    fn from(e: sqlx::Error) -> Self {
        OperatorChangeError::Store(e.into())
    }
}

const OPERATOR_COLUMNS: &str =
    "id, name, password_hash, role, disabled_at, created_at, microsoft_username, microsoft_oid";

/// A person Microsoft vouched for, as far as operators are concerned: the ID token's `tid`
/// and `oid`, which never change, and the username, which may.
#[derive(Debug, Clone, Copy)]
pub struct MicrosoftIdentity<'a> {
    pub tenant: &'a str,
    pub object_id: &'a str,
    pub username: Option<&'a str>,
}

/// Which operator a sign-in with Microsoft is.
#[derive(Debug)]
pub enum MicrosoftOperator {
    /// The operator tied to this identity: found by it, or tied to it now.
    Admitted { operator: OperatorRow, how: Tied },
    /// The operator tied to (or registered for) this identity is disabled.
    Disabled(OperatorRow),
    /// An operator has this username but is tied to another Microsoft identity (the
    /// username was renamed or given to someone else since).
    NameTaken(String),
}

/// How a sign-in with Microsoft found its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tied {
    /// Tied to this identity by an earlier sign-in.
    Before,
    /// An operator an owner registered under this username, tied now.
    Registered,
    /// A new viewer, created now.
    Created,
}

impl Store {
    /// Creates an owner, or replaces the password of an existing operator (returns false) and
    /// ends every session of theirs: a password is reset because it may be known to someone
    /// else, who may be signed in with it. The bootstrap path (the demo, the first operator):
    /// an operator created here is an owner; an existing one keeps their role.
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
            "insert into operator (id, name, password_hash, role, created_at, updated_at) values ($1, $2, $3, 'owner', $4, $4) \
             on conflict (name) do update set password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(name)
        .bind(password_hash)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(existing.is_none())
    }

    /// Adds an operator with `role`; refuses a name that is taken.
    pub async fn add_operator(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<OperatorRow, OperatorChangeError> {
        let id = Uuid::new_v4().to_string();
        let inserted = sqlx::query(
            "insert into operator (id, name, password_hash, role, created_at, updated_at) values ($1, $2, $3, $4, $5, $5) \
             on conflict (name) do nothing",
        )
        .bind(&id)
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(ts(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(OperatorChangeError::Exists(name.to_owned()));
        }
        self.operator_by_name(name)
            .await?
            .ok_or_else(|| OperatorChangeError::NotFound(name.to_owned()))
    }

    /// The operator a sign-in with Microsoft is: the one tied to its `tid` and `oid`; else,
    /// at the first sign-in only, one an owner registered under its username (tied now,
    /// keeping its role); else a new viewer named after the username, without a password.
    pub async fn operator_for_microsoft(
        &self,
        who: &MicrosoftIdentity<'_>,
        now: OffsetDateTime,
    ) -> Result<MicrosoftOperator, StoreError> {
        let now = ts(now);
        let mut tx = self.pool.begin().await?;
        // The write first, so that SQLite takes the write lock before anything is read: two
        // first sign-ins of one person at once cannot both create an operator.
        let tied: Option<String> = sqlx::query_scalar(
            "update operator set microsoft_username = coalesce($3, microsoft_username), updated_at = $4 \
             where microsoft_tenant = $1 and microsoft_oid = $2 returning id",
        )
        .bind(who.tenant)
        .bind(who.object_id)
        .bind(who.username)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let by_id_sql = format!("select {OPERATOR_COLUMNS} from operator where id = $1");
        let by_id = |id: String| sqlx::query_as::<_, OperatorRow>(&by_id_sql).bind(id);
        if let Some(id) = tied {
            let operator = by_id(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            return Ok(if operator.disabled_at.is_some() {
                MicrosoftOperator::Disabled(operator)
            } else {
                MicrosoftOperator::Admitted {
                    operator,
                    how: Tied::Before,
                }
            });
        }
        // A username that cannot be an operator's name (Entra allows characters ours do
        // not) names no registered operator; the new one is named by its object id.
        let name = who
            .username
            .filter(|u| valid_operator_name(u))
            .unwrap_or(who.object_id);
        // Usernames are case-insensitive at Microsoft: `Alice@Contoso.com` is the
        // `alice@contoso.com` an owner registered.
        let registered: Option<OperatorRow> = sqlx::query_as(&format!(
            "select {OPERATOR_COLUMNS} from operator where lower(name) = lower($1) \
             order by name = $1 desc limit 1"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let (id, how) = match registered {
            Some(row) if row.microsoft_oid.is_some() => {
                return Ok(MicrosoftOperator::NameTaken(row.name));
            }
            Some(row) if row.disabled_at.is_some() => {
                return Ok(MicrosoftOperator::Disabled(row));
            }
            Some(row) => {
                sqlx::query(
                    "update operator set microsoft_tenant = $2, microsoft_oid = $3, \
                     microsoft_username = $4, updated_at = $5 where id = $1",
                )
                .bind(&row.id)
                .bind(who.tenant)
                .bind(who.object_id)
                .bind(who.username)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                (row.id, Tied::Registered)
            }
            None => {
                let id = Uuid::new_v4().to_string();
                sqlx::query(
                    "insert into operator (id, name, password_hash, role, created_at, updated_at, \
                     microsoft_tenant, microsoft_oid, microsoft_username) \
                     values ($1, $2, '', 'viewer', $3, $3, $4, $5, $6)",
                )
                .bind(&id)
                .bind(name)
                .bind(&now)
                .bind(who.tenant)
                .bind(who.object_id)
                .bind(who.username)
                .execute(&mut *tx)
                .await?;
                (id, Tied::Created)
            }
        };
        let operator = by_id(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(MicrosoftOperator::Admitted { operator, how })
    }

    /// Every operator, by name.
    pub async fn list_operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {OPERATOR_COLUMNS} from operator order by name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether any enabled owner exists (the CLI makes the first operator one).
    pub async fn has_owner(&self) -> Result<bool, StoreError> {
        // A count, not `exists`: SQLite answers that with an integer, PostgreSQL a bool.
        let owners: i64 = sqlx::query_scalar(
            "select count(*) from (select 1 from operator \
             where role = 'owner' and disabled_at is null limit 1) as owner",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(owners > 0)
    }

    /// The operator named `name`, enabled or not.
    pub async fn operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {OPERATOR_COLUMNS} from operator where name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sets a new password and ends the operator's sessions.
    pub async fn reset_operator_password(
        &self,
        name: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), OperatorChangeError> {
        let mut tx = self.pool.begin().await?;
        let changed =
            sqlx::query("update operator set password_hash = $2, updated_at = $3 where name = $1")
                .bind(name)
                .bind(password_hash)
                .bind(ts(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(OperatorChangeError::NotFound(name.to_owned()));
        }
        end_sessions_of(&mut tx, name).await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(())
    }

    /// Disables an operator and ends their sessions at once; never the last enabled owner.
    pub async fn disable_operator(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<(), OperatorChangeError> {
        let mut tx = self.pool.begin().await?;
        // The write first, so that SQLite takes the write lock before the owner count is
        // read: two owners disabling each other at once cannot both pass the check.
        let changed = sqlx::query(
            "update operator set disabled_at = coalesce(disabled_at, $2), updated_at = $2 where name = $1",
        )
        .bind(name)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(OperatorChangeError::NotFound(name.to_owned()));
        }
        if owners_left(&mut tx).await? == 0 {
            return Err(OperatorChangeError::LastOwner(name.to_owned()));
        }
        end_sessions_of(&mut tx, name).await?;
        tx.commit().await?;
        self.sessions_changed();
        Ok(())
    }

    /// Lets a disabled operator sign in again.
    pub async fn enable_operator(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<(), OperatorChangeError> {
        let changed =
            sqlx::query("update operator set disabled_at = null, updated_at = $2 where name = $1")
                .bind(name)
                .bind(ts(now))
                .execute(&self.pool)
                .await?
                .rows_affected();
        if changed == 0 {
            return Err(OperatorChangeError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Changes an operator's role; never demotes the last enabled owner.
    pub async fn set_operator_role(
        &self,
        name: &str,
        role: Role,
        now: OffsetDateTime,
    ) -> Result<(), OperatorChangeError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query("update operator set role = $2, updated_at = $3 where name = $1")
            .bind(name)
            .bind(role.as_str())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(OperatorChangeError::NotFound(name.to_owned()));
        }
        if owners_left(&mut tx).await? == 0 {
            return Err(OperatorChangeError::LastOwner(name.to_owned()));
        }
        tx.commit().await?;
        self.sessions_changed();
        Ok(())
    }

    /// Removes an operator (their sessions go with them); never the last enabled owner.
    pub async fn remove_operator(&self, name: &str) -> Result<(), OperatorChangeError> {
        let mut tx = self.pool.begin().await?;
        end_sessions_of(&mut tx, name).await?;
        let removed = sqlx::query("delete from operator where name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(OperatorChangeError::NotFound(name.to_owned()));
        }
        if owners_left(&mut tx).await? == 0 {
            return Err(OperatorChangeError::LastOwner(name.to_owned()));
        }
        tx.commit().await?;
        self.sessions_changed();
        Ok(())
    }

    pub async fn create_session(
        &self,
        session: &NewSession<'_>,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("delete from operator_session where expires_at < $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "insert into operator_session (id_hash, operator_id, csrf_token, created_at, expires_at, \
             public_id, last_seen_at, address, user_agent) values ($1, $2, $3, $4, $5, $6, $4, $7, $8)",
        )
        .bind(session.id_hash)
        .bind(session.operator_id)
        .bind(session.csrf_token)
        .bind(ts(now))
        .bind(ts(expires_at))
        .bind(Uuid::new_v4().simple().to_string())
        .bind(session.address)
        .bind(session.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session with this id hash, of an enabled operator.
    pub async fn session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRow>, StoreError> {
        let now_ts = ts(now);
        // Cached for at most SESSION_TTL (cache.rs); its own expiry still counts.
        if let Some(row) = self.caches.sessions.get(id_hash)
            && row.expires_at > now_ts
        {
            return Ok(Some((*row).clone()));
        }
        let start = self.caches.sessions.read_start();
        let row: Option<SessionRow> = sqlx::query_as(
            "select operator.id as operator_id, operator.name as operator_name, operator.role, \
             operator_session.csrf_token, operator_session.public_id, operator_session.last_seen_at, \
             operator_session.expires_at \
             from operator_session join operator on operator.id = operator_session.operator_id \
             where operator_session.id_hash = $1 and operator_session.expires_at > $2 \
             and operator.disabled_at is null",
        )
        .bind(id_hash)
        .bind(now_ts)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = &row {
            self.caches
                .sessions
                .insert(id_hash.to_owned(), Arc::new(row.clone()), start);
        }
        Ok(row)
    }

    /// Records that the session was used now.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("update operator_session set last_seen_at = $2 where id_hash = $1")
            .bind(id_hash)
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        // The cached row would say it was seen long ago, and ask for another touch.
        self.sessions_changed();
        Ok(())
    }

    /// The live sessions of one operator, most recently used first.
    pub async fn sessions_of(
        &self,
        operator_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionView>, StoreError> {
        Ok(sqlx::query_as(
            "select coalesce(public_id, '') as public_id, address, user_agent, created_at, \
             coalesce(last_seen_at, created_at) as last_seen_at from operator_session \
             where operator_id = $1 and expires_at > $2 order by last_seen_at desc",
        )
        .bind(operator_id)
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends one session of `operator_id` (another operator's session id ends nothing).
    pub async fn end_own_session(
        &self,
        operator_id: &str,
        public_id: &str,
    ) -> Result<bool, StoreError> {
        let ended =
            sqlx::query("delete from operator_session where operator_id = $1 and public_id = $2")
                .bind(operator_id)
                .bind(public_id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0;
        self.sessions_changed();
        Ok(ended)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("delete from operator_session where id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        self.sessions_changed();
        Ok(())
    }
}

async fn end_sessions_of(tx: &mut sqlx::AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "delete from operator_session where operator_id in (select id from operator where name = $1)",
    )
    .bind(name)
    .execute(tx)
    .await?;
    Ok(())
}

async fn owners_left(tx: &mut sqlx::AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from operator where role = 'owner' and disabled_at is null")
        .fetch_one(tx)
        .await
}
