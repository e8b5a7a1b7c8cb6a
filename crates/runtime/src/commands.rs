//! Running a command and reading your write: the one shape every command use case has.
//!
//! A use case runs a command on an aggregate and answers once the read model its callers
//! query shows the result (bounded by a wait, so a stalled projector delays a response but
//! never hangs it). Which table shows which aggregate is declared once, next to the read
//! model, with [`Shows`]; the use case names the pair by type:
//!
//! ```ignore
//! let written = commands.run::<Skill, DevelopmentCatalog>(id, &command, &metadata).await?;
//! ```

use std::time::Duration;

use sqlx::PgPool;
use trellis_kernel::{
    Aggregate, CommandContext, CommandHandler, EventStore, HandleError, Metadata,
};
use uuid::Uuid;

/// A read model that shows aggregate `A`'s entities with the stream version it applied.
pub trait Shows<A: Aggregate> {
    /// The table (schema-qualified; a code constant, never input).
    const TABLE: &'static str;
    /// Its id column; its `version` column holds the applied stream version.
    const ID_COLUMN: &'static str;
}

/// What a command wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The entity.
    pub id: Uuid,
    /// Stream version after the command (clients pass it as `?min_version=`).
    pub version: u64,
}

/// The command side plus read-your-writes waits.
#[derive(Clone)]
pub struct Commands {
    handler: CommandHandler<dyn EventStore>,
    pool: PgPool,
    max_wait: Duration,
}

impl Commands {
    /// Commands run by `handler`, waits read from `pool` for at most `max_wait`.
    pub fn new(handler: CommandHandler<dyn EventStore>, pool: PgPool, max_wait: Duration) -> Self {
        Self {
            handler,
            pool,
            max_wait,
        }
    }

    /// The command handler.
    pub fn handler(&self) -> &CommandHandler<dyn EventStore> {
        &self.handler
    }

    /// The read models' pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `command` on aggregate `A`'s entity `id`, then waits (bounded) until read model
    /// `R` shows the version it produced.
    ///
    /// # Errors
    /// The aggregate's refusal, or store failures (a failed wait is a store failure too).
    pub async fn run<A, R>(
        &self,
        id: Uuid,
        command: &A::Command,
        metadata: &Metadata,
    ) -> Result<Written, HandleError<A::Error>>
    where
        A: Aggregate,
        R: Shows<A>,
    {
        let context = CommandContext {
            metadata: metadata.clone(),
            ..CommandContext::default()
        };
        let outcome = self.handler.handle::<A>(id, command, &context).await?;
        // A read model that is slow to catch up delays the answer, never fails it: the
        // version returned lets the client wait (`?min_version=`).
        wait_for_version(
            &self.pool,
            R::TABLE,
            R::ID_COLUMN,
            id,
            outcome.version,
            self.max_wait,
        )
        .await
        .map_err(trellis_store_postgres::store_error)?;
        Ok(Written {
            id,
            version: outcome.version,
        })
    }

    /// Whether aggregate `A`'s entity `id` is in the store and belongs to `organization_id`
    /// (the tenant of its first event). Reads one event. A `?min_version=` wait starts only
    /// for such a stream, so an id that names nothing, or another organization's, answers at
    /// once: the time a response takes does not tell whether an id exists.
    ///
    /// # Errors
    /// Store failures.
    pub async fn in_organization<A: Aggregate>(
        &self,
        id: Uuid,
        organization_id: Uuid,
    ) -> Result<bool, trellis_kernel::StoreError> {
        let stream = trellis_kernel::StreamId::new(A::KIND, id)
            .map_err(|e| trellis_kernel::StoreError::Backend(Box::new(e)))?;
        let first = self
            .handler
            .store()
            .read_stream(&stream, 1, trellis_kernel::Direction::Forwards, 1)
            .await?;
        Ok(first.first().is_some_and(|e| {
            e.metadata
                .tenant_id
                .is_some_and(|t| t.as_uuid() == organization_id)
        }))
    }

    /// A read's `?min_version=` wait: when `id` is `organization_id`'s, waits (bounded) until
    /// `R` shows it at `version`; otherwise not found at once (see [`Self::in_organization`]).
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]; store and database failures.
    pub async fn wait_in_organization<A: Aggregate, R: Shows<A>, D: std::error::Error + 'static>(
        &self,
        id: Uuid,
        organization_id: Uuid,
        version: u64,
    ) -> Result<(), crate::UseCaseError<D>> {
        if !self.in_organization::<A>(id, organization_id).await? {
            return Err(crate::UseCaseError::NotFound);
        }
        self.wait::<A, R>(id, version).await?;
        Ok(())
    }

    /// Waits (bounded) until read model `R` shows entity `id` at `version` or later.
    ///
    /// # Errors
    /// Database failures.
    pub async fn wait<A: Aggregate, R: Shows<A>>(
        &self,
        id: Uuid,
        version: u64,
    ) -> Result<bool, sqlx::Error> {
        wait_for_version(
            &self.pool,
            R::TABLE,
            R::ID_COLUMN,
            id,
            version,
            self.max_wait,
        )
        .await
    }
}

/// Polls `table.version` for the row `id_column = id` until it reaches `version`, backing
/// off from 1 ms to 25 ms, for at most `timeout`. `table` and `id_column` are code constants,
/// never input. Returns whether it caught up.
///
/// # Errors
/// Database failures.
pub async fn wait_for_version(
    pool: &PgPool,
    table: &'static str,
    id_column: &'static str,
    id: Uuid,
    version: u64,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let sql = format!("SELECT version FROM {table} WHERE {id_column} = $1");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        let seen: Option<i64> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?;
        if seen.is_some_and(|v| v >= i64::try_from(version).unwrap_or(i64::MAX)) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(25));
    }
}
