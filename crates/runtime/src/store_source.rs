//! The in-process source of single-node mode: the store's `$all`, with the consumer's
//! checkpoint in PostgreSQL (`consumer_checkpoints`) and dead letters in `dead_letters`.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgPool;
use trellis_kernel::{
    AllSubscription, EventStore, GlobalPosition, RecordedEvent, SubscriptionOptions,
};

use crate::source::{EventSource, SourceError};

/// Follows `$all` for one named consumer.
pub struct StoreSource<S: ?Sized> {
    subscription: AllSubscription<S>,
    pool: PgPool,
    name: String,
}

impl<S: EventStore + ?Sized> StoreSource<S> {
    /// Resumes `name` from its stored checkpoint (or the start of the log).
    ///
    /// # Errors
    /// When the checkpoint cannot be read.
    pub async fn resume(
        store: Arc<S>,
        pool: PgPool,
        name: &str,
        options: SubscriptionOptions,
    ) -> Result<Self, SourceError> {
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT global_position FROM consumer_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&pool)
                .await
                .map_err(|e| SourceError::from_error("reading checkpoint", e))?;
        Ok(Self {
            subscription: AllSubscription::new(store, checkpoint.map(GlobalPosition), options),
            pool,
            name: name.to_owned(),
        })
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventSource for StoreSource<S> {
    async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, SourceError> {
        self.subscription
            .next_batch()
            .await
            .map_err(|e| SourceError::from_error("reading $all", e))
    }

    async fn ack(&mut self) -> Result<(), SourceError> {
        let Some(position) = self.subscription.checkpoint() else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO consumer_checkpoints (name, global_position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET global_position = EXCLUDED.global_position, \
             updated_at = now()",
        )
        .bind(&self.name)
        .bind(position.0)
        .execute(&self.pool)
        .await
        .map_err(|e| SourceError::from_error("writing checkpoint", e))?;
        Ok(())
    }

    async fn dead_letter(&mut self, event: &RecordedEvent, error: &str) -> Result<(), SourceError> {
        sqlx::query(
            "INSERT INTO dead_letters (consumer, event_id, global_position, event_type, error) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&self.name)
        .bind(event.event_id.as_uuid())
        .bind(event.global_position.0)
        .bind(&event.event_type)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(|e| SourceError::from_error("writing dead letter", e))?;
        Ok(())
    }

    async fn lag(&mut self) -> Option<u64> {
        // Positions are not dense, so this is an upper bound; it is exact at zero.
        let position = self.subscription.checkpoint()?.0;
        let head: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&self.pool)
            .await
            .ok()?;
        head.map(|h| u64::try_from(h - position).unwrap_or(0))
    }
}
