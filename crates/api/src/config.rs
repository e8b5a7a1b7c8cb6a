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
    /// HMAC key for access tokens (`TRELLIS_JWT_SECRET`); at least 32 bytes.
    pub jwt_secret: Secret,
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access-token lifetime: short, since only refresh tokens are revocable.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// Longest `?min_version=` wait.
    pub max_read_wait: Duration,
    /// Kafka brokers (`KAFKA_BROKERS`), checked by `/readyz`; `None` in single-node mode.
    pub kafka_brokers: Option<String>,
    /// Login attempts per account per minute (`TRELLIS_LOGIN_LIMIT_ACCOUNT`).
    pub login_limit_per_account: u32,
    /// Login attempts per client address per minute (`TRELLIS_LOGIN_LIMIT_IP`).
    pub login_limit_per_ip: u32,
    /// Expensive requests (password hashing today; recommendations and uploads later) per user
    /// per minute (`TRELLIS_EXPENSIVE_LIMIT_USER`).
    pub expensive_limit_per_user: u32,
}

/// A configuration value is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
            jwt_secret: Secret::new("trellis-development-secret-change-me-0123456789"),
            issuer: "trellis".into(),
            audience: "trellis-api".into(),
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            max_read_wait: Duration::from_secs(5),
            kafka_brokers: None,
            login_limit_per_account: 10,
            login_limit_per_ip: 50,
            expensive_limit_per_user: 60,
        }
    }
}

impl ApiConfig {
    /// Defaults, then the file named by `TRELLIS_CONFIG` (`KEY=value` lines, `#` comments),
    /// then the environment: `TRELLIS_LISTEN`, `TRELLIS_SIGNUP`, `TRELLIS_JWT_SECRET`,
    /// `TRELLIS_ACCESS_TTL_SECONDS`, `TRELLIS_REFRESH_TTL_SECONDS`, `TRELLIS_LOGIN_LIMIT_ACCOUNT`,
    /// `TRELLIS_LOGIN_LIMIT_IP`, `TRELLIS_EXPENSIVE_LIMIT_USER`, `KAFKA_BROKERS`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad variable or file.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = match std::env::var("TRELLIS_CONFIG") {
            Ok(path) => std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                name: "TRELLIS_CONFIG",
                reason: format!("cannot read {path}: {e}"),
            })?,
            Err(_) => String::new(),
        };
        let from_file: std::collections::HashMap<String, String> = file
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .or_else(|| from_file.get(name).cloned())
        })
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
        if let Some(secret) = lookup("TRELLIS_JWT_SECRET") {
            if secret.len() < 32 {
                return Err(ConfigError::Invalid {
                    name: "TRELLIS_JWT_SECRET",
                    reason: "must be at least 32 bytes".into(),
                });
            }
            config.jwt_secret = Secret::new(secret);
        }
        config.kafka_brokers = lookup("KAFKA_BROKERS").filter(|b| !b.trim().is_empty());
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
        ] {
            if let Some(value) = lookup(name) {
                let seconds: u64 = value.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "must be a whole number of seconds".into(),
                })?;
                *slot = Duration::from_secs(seconds.max(1));
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

    #[test]
    fn environment_overrides_defaults_and_bad_values_name_the_variable() {
        let config = ApiConfig::from_lookup(|n| match n {
            "TRELLIS_LISTEN" => Some("127.0.0.1:9999".into()),
            "TRELLIS_SIGNUP" => Some("closed".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert!(!config.signup_open);
        let err = ApiConfig::from_lookup(|n| (n == "TRELLIS_JWT_SECRET").then(|| "short".into()))
            .unwrap_err();
        assert!(err.to_string().contains("TRELLIS_JWT_SECRET"));
    }
}
