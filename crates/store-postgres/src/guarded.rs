//! Transactions that survive cancellation.
//!
//! sqlx 0.8's `begin()` has a cancellation hole: if the future is dropped after `BEGIN` was
//! sent but before the reply, its rollback guard sees a transaction depth of zero and queues
//! nothing, so the connection goes back to the pool *inside* a transaction. Every later
//! statement on it then runs in that transaction and is never committed: appends "succeed"
//! and vanish, row locks are held forever, and the open transaction id pins the snapshot
//! xmin that `$all` readers wait behind (ADR 0001), stalling every consumer. Futures are
//! dropped routinely (a client disconnects, a task is aborted, a `select!` loses), so all
//! Trellis transactions go through [`GuardedConnection`]: unless the holder says the work
//! finished, the connection is closed instead of being returned, and PostgreSQL rolls back.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

/// A pooled connection that is closed, not reused, if dropped before [`Self::finish`].
pub struct GuardedConnection {
    conn: PoolConnection<Postgres>,
    finished: bool,
}

impl GuardedConnection {
    /// Takes a connection from the pool.
    ///
    /// # Errors
    /// When the pool cannot provide one.
    pub async fn acquire(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: pool.acquire().await?,
            finished: false,
        })
    }

    /// The work on this connection ended cleanly (committed or rolled back): it may go back
    /// to the pool.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for GuardedConnection {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for GuardedConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for GuardedConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}
