//! Typed configuration of the edge, layered: defaults, then `TRELLIS_*` environment variables.
//! Secrets are wrapped so that `Debug` never prints them.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A secret value; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Settings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where to listen (`TRELLIS_LISTEN`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Whether anyone may create an organization (`TRELLIS_SIGNUP=closed` turns it off).
    pub signup_open: bool,
    /// HMAC key for access tokens (`TRELLIS_JWT_SECRET`); at least 32 random bytes. Required:
    /// without it `serve` refuses to start unless `TRELLIS_DEV_MODE=1`, which signs with a
    /// random key made for this process (tokens die with it) and logs a warning.
    pub jwt_secret: Secret,
    /// The key before the last rotation (`TRELLIS_JWT_PREVIOUS_SECRET`): tokens it signed are
    /// still accepted until `jwt_previous_until`, so a rotation logs nobody out.
    pub jwt_previous_secret: Option<Secret>,
    /// End of the previous key's grace period: process start plus
    /// `TRELLIS_JWT_PREVIOUS_GRACE_SECONDS` (default one hour).
    pub jwt_previous_until: Option<std::time::SystemTime>,
    /// True when the secret was made up for this process (`TRELLIS_DEV_MODE=1`, no secret).
    pub ephemeral_secret: bool,
    /// Bearer token of the platform operator (`TRELLIS_OPS_TOKEN`, at least 32 bytes): the only
    /// credential for `/metrics` and `/v1/ops/*`. Unset, those routes answer 404.
    pub ops_token: Option<Secret>,
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access-token lifetime: short, since only refresh tokens are revocable.
    pub access_ttl: Duration,
    /// Refresh-token lifetime (sliding: each rotation extends it, up to `session_max_ttl`).
    pub refresh_ttl: Duration,
    /// Absolute lifetime of a login session however often it is refreshed
    /// (`TRELLIS_SESSION_MAX_SECONDS`, default 30 days).
    pub session_max_ttl: Duration,
    /// Longest `?min_version=` wait.
    pub max_read_wait: Duration,
    /// Kafka brokers (`KAFKA_BROKERS`), checked by `/readyz`; `None` in single-node mode.
    pub kafka_brokers: Option<String>,
    /// Failed logins of one account (from clients it never logged in from) before each further
    /// attempt waits, doubling (`TRELLIS_LOGIN_LIMIT_ACCOUNT`); see `login_guard`.
    pub login_limit_per_account: u32,
    /// Failed logins per client address per 15 minutes before that address is refused
    /// (`TRELLIS_LOGIN_LIMIT_IP`).
    pub login_limit_per_ip: u32,
    /// Open live-event streams per user (`TRELLIS_LIVE_STREAMS_PER_USER`).
    pub live_streams_per_user: u32,
    /// How often an open live-event stream re-checks its token, session and user
    /// (`TRELLIS_LIVE_RECHECK_SECONDS`).
    pub live_recheck: Duration,
    /// Connection limits and timeouts of the listener.
    pub connections: ConnectionLimits,
    /// Expensive requests (password hashing today; recommendations and uploads later) per user
    /// per minute (`TRELLIS_EXPENSIVE_LIMIT_USER`).
    pub expensive_limit_per_user: u32,
    /// Commands (requests that may append events) per user per minute
    /// (`TRELLIS_WRITE_LIMIT_USER`, default 120).
    pub write_limit_per_user: u32,
    /// Whether outgoing webhooks may be registered for loopback, private and link-local
    /// addresses (`TRELLIS_WEBHOOKS_ALLOW_PRIVATE=1`; development and tests only).
    pub webhooks_allow_private: bool,
}

/// Limits of the listener against slow or greedy clients.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to read a request's headers (`TRELLIS_HEADER_READ_TIMEOUT_SECONDS`, default 10).
    pub header_read_timeout: Duration,
    /// A connection with no bytes in either direction for this long is closed
    /// (`TRELLIS_IDLE_TIMEOUT_SECONDS`, default 60; live streams send a keep-alive every 15 s).
    pub idle_timeout: Duration,
    /// Open connections in total (`TRELLIS_MAX_CONNECTIONS`, default 4096).
    pub max_connections: usize,
    /// Open connections per client address (`TRELLIS_MAX_CONNECTIONS_PER_IP`, default 128).
    pub max_connections_per_ip: usize,
    /// Longest time one request may take (`TRELLIS_REQUEST_TIMEOUT_SECONDS`, default 30).
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_ip: 128,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Whether a yes/no setting is on: `1`, `true` or `yes` (one reading for every flag).
pub fn is_on(value: &str) -> bool {
    matches!(value.trim(), "1" | "true" | "yes")
}

/// A random 32-byte key, base64: the signing key of a development process or a test.
fn random_secret() -> Secret {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Refuses keys that are short or obviously not random (a repeated character, a
/// placeholder): an HMAC key is only as strong as its guessability.
fn check_secret(name: &'static str, secret: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name,
        reason: reason.into(),
    };
    if secret.len() < 32 {
        return Err(invalid(
            "must be at least 32 random bytes (e.g. `openssl rand -base64 32`)",
        ));
    }
    let distinct = secret
        .bytes()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let lower = secret.to_ascii_lowercase();
    if distinct < 12
        || ["change", "secret", "password", "example"]
            .iter()
            .any(|w| lower.contains(w))
    {
        return Err(invalid(
            "does not look random: use 32 random bytes (e.g. `openssl rand -base64 32`)",
        ));
    }
    Ok(())
}

/// The process's settings, layered once for the whole binary: the file named by
/// `TRELLIS_CONFIG` (`KEY=value` lines, `#` comments) under the environment. `trellis serve`
/// reads its own settings (`KAFKA_BROKERS`, `TRELLIS_TOPIC_PREFIX`) through the same layers
/// as the API, so a value in the file means the same thing to both.
///
/// Hand-rolled rather than `config` or `figment`: the file is the same `KEY=value` format as
/// the environment (so one name means one thing everywhere, and `compose.yaml`'s
/// `env_file` reads it too), there are no nested sections to merge, and each value is parsed
/// and checked where it is used with a message naming the key; a layering crate would add
/// its own types and formats for two lookups.
#[derive(Clone, Default)]
pub struct Settings {
    file: std::collections::HashMap<String, String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: names only.
        f.debug_struct("Settings")
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Settings {
    /// Reads `TRELLIS_CONFIG`'s file, if set.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read.
    pub fn from_env() -> Result<Self, ConfigError> {
        let text = match std::env::var("TRELLIS_CONFIG") {
            Ok(path) => std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                name: "TRELLIS_CONFIG",
                reason: format!("cannot read {path}: {e}"),
            })?,
            Err(_) => String::new(),
        };
        Ok(Self::from_file_text(&text))
    }

    /// Settings from a file's text (for tests).
    pub fn from_file_text(text: &str) -> Self {
        let file = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Self { file }
    }

    /// A setting: the environment's value, else the file's.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
    }
}

/// A configuration value is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name} is not set: {reason}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What to do.
        reason: String,
    },
    /// A variable does not parse.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            signup_open: true,
            // Random per value: the default is for tests, and nothing shipped knows it.
            // `from_lookup` refuses to run without a configured key.
            jwt_secret: random_secret(),
            jwt_previous_secret: None,
            jwt_previous_until: None,
            ephemeral_secret: true,
            ops_token: None,
            issuer: "trellis".into(),
            audience: "trellis-api".into(),
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(14 * 24 * 3600),
            session_max_ttl: Duration::from_secs(30 * 24 * 3600),
            max_read_wait: Duration::from_secs(5),
            kafka_brokers: None,
            login_limit_per_account: 5,
            login_limit_per_ip: 50,
            live_streams_per_user: 5,
            live_recheck: Duration::from_secs(5),
            connections: ConnectionLimits::default(),
            expensive_limit_per_user: 60,
            write_limit_per_user: 120,
            webhooks_allow_private: false,
        }
    }
}

impl ApiConfig {
    /// Defaults, then the file named by `TRELLIS_CONFIG` (`KEY=value` lines, `#` comments),
    /// then the environment: `TRELLIS_LISTEN`, `TRELLIS_SIGNUP`, `TRELLIS_JWT_SECRET`,
    /// `TRELLIS_ACCESS_TTL_SECONDS`, `TRELLIS_REFRESH_TTL_SECONDS`, `TRELLIS_LOGIN_LIMIT_ACCOUNT`,
    /// `TRELLIS_LOGIN_LIMIT_IP`, `TRELLIS_EXPENSIVE_LIMIT_USER`, `TRELLIS_WRITE_LIMIT_USER`,
    /// the connection limits and secrets named on [`ApiConfig`]'s fields, `KAFKA_BROKERS`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad variable or file.
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings = Settings::from_env()?;
        Self::from_lookup(|name| settings.get(name))
    }

    /// As [`Self::from_env`], reading variables through `lookup` (for tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(listen) = lookup("TRELLIS_LISTEN") {
            config.listen =
                listen
                    .parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                        name: "TRELLIS_LISTEN",
                        reason: e.to_string(),
                    })?;
        }
        if let Some(signup) = lookup("TRELLIS_SIGNUP") {
            config.signup_open = match signup.as_str() {
                "open" => true,
                "closed" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "TRELLIS_SIGNUP",
                        reason: "must be open or closed".into(),
                    });
                }
            };
        }
        let dev_mode = lookup("TRELLIS_DEV_MODE").is_some_and(|v| is_on(&v));
        match lookup("TRELLIS_JWT_SECRET").filter(|s| !s.is_empty()) {
            Some(secret) => {
                check_secret("TRELLIS_JWT_SECRET", &secret)?;
                config.jwt_secret = Secret::new(secret);
                config.ephemeral_secret = false;
            }
            None if dev_mode => {
                tracing::warn!(
                    "TRELLIS_DEV_MODE=1 and no TRELLIS_JWT_SECRET: access tokens are signed \
                     with a random key of this process (never do this in production)"
                );
            }
            None => {
                return Err(ConfigError::Missing {
                    name: "TRELLIS_JWT_SECRET",
                    reason: "set it to 32 random bytes (e.g. `openssl rand -base64 \
                             32`), or TRELLIS_DEV_MODE=1 for a throwaway development key"
                        .into(),
                });
            }
        }
        if let Some(previous) = lookup("TRELLIS_JWT_PREVIOUS_SECRET").filter(|s| !s.is_empty()) {
            check_secret("TRELLIS_JWT_PREVIOUS_SECRET", &previous)?;
            let grace = match lookup("TRELLIS_JWT_PREVIOUS_GRACE_SECONDS") {
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name: "TRELLIS_JWT_PREVIOUS_GRACE_SECONDS",
                    reason: "must be a whole number of seconds".into(),
                })?,
                None => 3600,
            };
            config.jwt_previous_secret = Some(Secret::new(previous));
            config.jwt_previous_until =
                Some(std::time::SystemTime::now() + Duration::from_secs(grace));
        }
        if let Some(token) = lookup("TRELLIS_OPS_TOKEN").filter(|s| !s.is_empty()) {
            check_secret("TRELLIS_OPS_TOKEN", &token)?;
            config.ops_token = Some(Secret::new(token));
        }
        config.kafka_brokers = lookup("KAFKA_BROKERS").filter(|b| !b.trim().is_empty());
        config.webhooks_allow_private =
            lookup("TRELLIS_WEBHOOKS_ALLOW_PRIVATE").is_some_and(|v| is_on(&v));
        for (name, slot) in [
            (
                "TRELLIS_LOGIN_LIMIT_ACCOUNT",
                &mut config.login_limit_per_account,
            ),
            ("TRELLIS_LOGIN_LIMIT_IP", &mut config.login_limit_per_ip),
            (
                "TRELLIS_EXPENSIVE_LIMIT_USER",
                &mut config.expensive_limit_per_user,
            ),
            ("TRELLIS_WRITE_LIMIT_USER", &mut config.write_limit_per_user),
            (
                "TRELLIS_LIVE_STREAMS_PER_USER",
                &mut config.live_streams_per_user,
            ),
        ] {
            if let Some(value) = lookup(name) {
                *slot = value.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "must be a whole number".into(),
                })?;
            }
        }
        for (name, slot) in [
            ("TRELLIS_ACCESS_TTL_SECONDS", &mut config.access_ttl),
            ("TRELLIS_REFRESH_TTL_SECONDS", &mut config.refresh_ttl),
            ("TRELLIS_SESSION_MAX_SECONDS", &mut config.session_max_ttl),
            ("TRELLIS_LIVE_RECHECK_SECONDS", &mut config.live_recheck),
            (
                "TRELLIS_HEADER_READ_TIMEOUT_SECONDS",
                &mut config.connections.header_read_timeout,
            ),
            (
                "TRELLIS_IDLE_TIMEOUT_SECONDS",
                &mut config.connections.idle_timeout,
            ),
            (
                "TRELLIS_REQUEST_TIMEOUT_SECONDS",
                &mut config.connections.request_timeout,
            ),
        ] {
            if let Some(value) = lookup(name) {
                let seconds: u64 = value.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "must be a whole number of seconds".into(),
                })?;
                *slot = Duration::from_secs(seconds.max(1));
            }
        }
        for (name, slot) in [
            (
                "TRELLIS_MAX_CONNECTIONS",
                &mut config.connections.max_connections,
            ),
            (
                "TRELLIS_MAX_CONNECTIONS_PER_IP",
                &mut config.connections.max_connections_per_ip,
            ),
        ] {
            if let Some(value) = lookup(name) {
                let n: usize = value.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "must be a whole number".into(),
                })?;
                *slot = n.max(1);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let config = ApiConfig::default();
        assert!(!format!("{config:?}").contains("change-me"));
    }

    const KEY: &str = "q3VvR0xN8b2kT5yW1zA7cE4fH6jL9mP0sU/dG+iK=";

    #[test]
    fn environment_overrides_defaults_and_bad_values_name_the_variable() {
        let config = ApiConfig::from_lookup(|n| match n {
            "TRELLIS_LISTEN" => Some("127.0.0.1:9999".into()),
            "TRELLIS_SIGNUP" => Some("closed".into()),
            "TRELLIS_JWT_SECRET" => Some(KEY.into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert!(!config.signup_open);
        let err = ApiConfig::from_lookup(|n| (n == "TRELLIS_JWT_SECRET").then(|| "short".into()))
            .unwrap_err();
        assert!(err.to_string().contains("TRELLIS_JWT_SECRET"));
    }

    #[test]
    fn without_a_secret_the_edge_refuses_to_start_unless_in_development_mode() {
        let err = ApiConfig::from_lookup(|_| None).unwrap_err();
        assert!(
            err.to_string().contains("TRELLIS_JWT_SECRET is not set"),
            "{err}"
        );
        let dev =
            ApiConfig::from_lookup(|n| (n == "TRELLIS_DEV_MODE").then(|| "1".into())).unwrap();
        assert!(dev.ephemeral_secret);
        // Each development process makes its own key: nothing in the source signs tokens.
        let other =
            ApiConfig::from_lookup(|n| (n == "TRELLIS_DEV_MODE").then(|| "1".into())).unwrap();
        assert_ne!(dev.jwt_secret.expose(), other.jwt_secret.expose());
        assert!(!dev.jwt_secret.expose().contains("change-me"));
    }

    #[test]
    fn the_file_fills_what_the_environment_leaves_and_never_prints_values() {
        let settings = Settings::from_file_text(
            "# a comment\nTRELLIS_TEST_ONLY_KEY = from-file\nKAFKA_BROKERS=k:9092\n",
        );
        assert_eq!(
            settings.get("TRELLIS_TEST_ONLY_KEY").as_deref(),
            Some("from-file")
        );
        assert_eq!(settings.get("TRELLIS_TEST_ONLY_MISSING"), None);
        assert!(!format!("{settings:?}").contains("k:9092"));
    }

    #[test]
    fn weak_secrets_are_refused() {
        for weak in [
            "a".repeat(40),
            "trellis-development-secret-change-me-0123456789".into(),
            "0123456789012345678901234567890123".into(),
        ] {
            let err = ApiConfig::from_lookup(|n| (n == "TRELLIS_JWT_SECRET").then(|| weak.clone()))
                .unwrap_err();
            assert!(
                err.to_string().contains("TRELLIS_JWT_SECRET"),
                "{weak}: {err}"
            );
        }
        let ok = ApiConfig::from_lookup(|n| (n == "TRELLIS_JWT_SECRET").then(|| KEY.into()));
        assert!(ok.is_ok());
    }
}
