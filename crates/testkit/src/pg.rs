//! A fresh PostgreSQL database per test, so tests never see each other's events.
//!
//! `DATABASE_URL` names the server (default `postgres://postgres@127.0.0.1:5432/trellis`);
//! each call creates `trellis_test_<uuid>` on it. `scripts/test` drops leftovers before a
//! run, so a crashed test leaves nothing behind for long.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The default server for development and tests.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/trellis";

/// The server URL from the environment, or the default.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Creates an empty database and returns its URL.
///
/// # Panics
/// When the server cannot be reached: tests need it (run `scripts/setup`).
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("trellis_test_{}", uuid::Uuid::now_v7().simple());
    let admin = with_database(&server, "postgres");
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("cannot reach PostgreSQL at {admin} ({e}); run scripts/setup first")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    with_database(&server, &name)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/trellis", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432/trellis?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
    }
}
