//! The read side as services use it: the pool the read models live in, and read-your-writes
//! (a read that must see a write waits until the projections it reads have applied it).

use std::time::Duration;

use dcp_projections::{
    current_shapes, GlobalLogReader, LogCursor, ProjectionProgress, StoredEvent, UnknownEvents,
};
use sqlx::PgPool;

use crate::errors::{ErrorCode, ServiceError};

/// How long a read waits for a read model before giving up.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Projections read by the users API (and auth).
pub const USERS: &[&str] = &["users"];
/// Projections read when authenticating.
pub const SESSIONS: &[&str] = &["sessions", "users"];
/// The audit log.
pub const AUDIT: &[&str] = &["audit_log"];
/// Docker operations.
pub const OPERATIONS: &[&str] = &["operations"];
/// The platform's records of containers.
pub const CONTAINERS: &[&str] = &["containers"];
/// Registered hosts.
pub const HOSTS: &[&str] = &["hosts"];
/// Wizards.
pub const WIZARDS: &[&str] = &["wizards"];

/// Why a read could not be made to see a write.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("the change was recorded at position {0} but the read model has not caught up yet; retry the read with x-dcp-min-position")]
    Lagging(i64),
    #[error("no event at position {0}")]
    NoSuchPosition(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ServiceError for SettleError {
    fn code(&self) -> ErrorCode {
        match self {
            SettleError::Lagging(_) => ErrorCode::ReadModelLagging,
            SettleError::NoSuchPosition(_) => ErrorCode::Validation,
            SettleError::Database(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        matches!(self, SettleError::NoSuchPosition(_)).then(|| "x-dcp-min-position".into())
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            SettleError::Lagging(position) => Some(serde_json::json!({ "position": position })),
            _ => None,
        }
    }
}

/// What a service meets reading or writing the store: the database away, a read model that
/// has not caught up, or an unexpected failure. Each service's error has it as one variant
/// (`Store`), with the conversions [`store_failures!`](crate::store_failures) writes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Settle(#[from] SettleError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            StoreError::Settle(error) => error.code(),
            StoreError::Database(error) => error.code(),
            StoreError::Internal(error) => error.code(),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            StoreError::Settle(error) => error.field(),
            _ => None,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            StoreError::Settle(error) => error.details(),
            _ => None,
        }
    }
}

/// The conversions into a service error with a `Store(StoreError)` variant, so `?` takes a
/// database error, a read model that lags or an unexpected failure as they come.
#[macro_export]
macro_rules! store_failures {
    ($error:ty) => {
        impl From<sqlx::Error> for $error {
            fn from(error: sqlx::Error) -> Self {
                Self::Store(error.into())
            }
        }

        impl From<$crate::read_models::SettleError> for $error {
            fn from(error: $crate::read_models::SettleError) -> Self {
                Self::Store(error.into())
            }
        }

        impl From<anyhow::Error> for $error {
            fn from(error: anyhow::Error) -> Self {
                Self::Store(error.into())
            }
        }
    };
}

/// The read models' pool and how far each projection has got: cheap to clone.
#[derive(Clone)]
pub struct ReadModels {
    pool: PgPool,
    progress: ProjectionProgress,
}

impl ReadModels {
    pub fn new(pool: PgPool, progress: ProjectionProgress) -> Self {
        ReadModels { pool, progress }
    }

    /// The pool the read models (and the event store) live in.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Every event of one aggregate, in order and in current shapes (upcast); `None` when it
    /// has none. An event this build cannot read is an error: a past rebuilt without it
    /// would mislead.
    pub async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> anyhow::Result<Option<Vec<StoredEvent>>> {
        let events =
            GlobalLogReader::aggregate_events(&self.pool, aggregate_type, aggregate_id).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let shaped = match current_shapes(&events, UnknownEvents::Fail)
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            std::borrow::Cow::Owned(shaped) => Some(shaped),
            std::borrow::Cow::Borrowed(_) => None,
        };
        Ok(Some(shaped.unwrap_or(events)))
    }

    /// Waits until `projections` have applied `cursor`; its position, if there was one.
    pub async fn settle(
        &self,
        cursor: Option<LogCursor>,
        projections: &[&str],
    ) -> Result<Option<i64>, SettleError> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        if self
            .progress
            .wait_for(projections, cursor, SETTLE_TIMEOUT)
            .await?
        {
            return Ok(Some(cursor.position));
        }
        Err(SettleError::Lagging(cursor.position))
    }

    /// Waits until `projections` have applied every event committed so far.
    pub async fn settle_to_head(&self, projections: &[&str]) -> Result<(), SettleError> {
        let head = GlobalLogReader::head(&self.pool).await?;
        self.settle(head, projections).await.map(|_| ())
    }

    /// Waits until `projections` have applied the event at `position` (a client's
    /// `X-Dcp-Min-Position`); 0 waits for nothing.
    pub async fn settle_at(&self, position: i64, projections: &[&str]) -> Result<(), SettleError> {
        if position == 0 {
            return Ok(());
        }
        let cursor = GlobalLogReader::cursor_of(&self.pool, position)
            .await?
            .ok_or(SettleError::NoSuchPosition(position))?;
        self.settle(Some(cursor), projections).await.map(|_| ())
    }
}
