//! Credentials: argon2id password hashes, JWT access tokens, opaque rotating refresh tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::ApiConfig;
use crate::error::ApiError;

/// The password policy: 12 to 128 characters, not all of one kind, and not guessable: the
/// `zxcvbn` estimator (Dropbox's, with its lists of common and breached passwords, names
/// and words, keyboard patterns, repeats and sequences, and the user's own `context` such as
/// their e-mail address and name) must score it 3 of 4 or better (more than 10^8 guesses). Returns what is wrong.
pub fn check_password_policy(password: &str, context: &[&str]) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < 12 {
        return Err("must be at least 12 characters");
    }
    if len > 128 {
        return Err("must be at most 128 characters");
    }
    let kinds = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err("must mix at least two of lowercase, uppercase, digits and symbols");
    }
    // The whole context values and their words ("ada.lovelace@example.com" also gives "ada"
    // and "lovelace"), so a password built from the user's own name is recognised.
    let mut inputs = vec!["trellis"];
    for value in context {
        inputs.push(value);
        inputs.extend(
            value
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 3),
        );
    }
    if u8::from(zxcvbn::zxcvbn(password, &inputs).score()) < 3 {
        return Err(
            "is too easy to guess (a common password, a pattern, or your own name or address); \
             a few unrelated words work well",
        );
    }
    Ok(())
}

/// Hashing, verifying or signing failed: a bug or a broken runtime, never the user's input.
#[derive(Debug, thiserror::Error)]
#[error("credential processing failed: {0}")]
pub struct CredentialError(String);

impl From<CredentialError> for ApiError {
    fn from(error: CredentialError) -> Self {
        ApiError::internal(error)
    }
}

/// Hashes a password with argon2id (default parameters, random salt), off the async threads.
///
/// # Errors
/// Internal errors only.
pub async fn hash_password(password: String) -> Result<String, CredentialError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CredentialError(e.to_string()))
    })
    .await
    .map_err(|e| CredentialError(e.to_string()))?
}

/// A hash of a password nobody has, verified when the e-mail is unknown so that unknown
/// e-mails and wrong passwords take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks a password against a stored hash (or the dummy), off the async threads.
///
/// # Errors
/// Internal errors only; a mismatch is `Ok(false)`.
pub async fn verify_password(
    password: String,
    hash: Option<String>,
) -> Result<bool, CredentialError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return Ok(false);
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && ok)
    })
    .await
    .map_err(|e| CredentialError(e.to_string()))?
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Organization id.
    pub org: Uuid,
    /// Roles at issue time (re-checked against the read model on each request).
    pub roles: Vec<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// The login session (refresh-token family) the token belongs to: revoking the session
    /// (logout, password change, deactivation) ends its access tokens too.
    pub sid: Uuid,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs an access token (HS256).
///
/// # Errors
/// Internal errors only.
pub fn issue_access_token(
    config: &ApiConfig,
    user_id: Uuid,
    organization_id: Uuid,
    session_id: Uuid,
    roles: Vec<String>,
) -> Result<String, CredentialError> {
    let iat = now_secs();
    let claims = Claims {
        sub: user_id,
        org: organization_id,
        sid: session_id,
        roles,
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        exp: iat + config.access_ttl.as_secs(),
        iat,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
    )
    .map_err(|e| CredentialError(e.to_string()))
}

/// Verifies an access token: HS256 only (so `alg: none` and key confusion are refused), the
/// current key (or the previous one during its grace period), issuer and audience, not
/// expired (no leeway), not issued in the future, and a lifetime (`exp - iat`) no longer
/// than this deployment issues: a token minted with a stolen key cannot outlive the
/// access-token lifetime either.
///
/// # Errors
/// [`ApiError::Unauthorized`] for anything wrong.
pub fn verify_access_token(config: &ApiConfig, token: &str) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let decode = |secret: &str| {
        jsonwebtoken::decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .map(|data| data.claims)
    };
    let claims = match decode(config.jwt_secret.expose()) {
        Ok(claims) => claims,
        Err(error)
            if matches!(
                error.kind(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature
            ) =>
        {
            let in_grace = config
                .jwt_previous_until
                .is_some_and(|until| SystemTime::now() < until);
            match (&config.jwt_previous_secret, in_grace) {
                (Some(previous), true) => {
                    decode(previous.expose()).map_err(|_| ApiError::Unauthorized)?
                }
                _ => return Err(ApiError::Unauthorized),
            }
        }
        Err(_) => return Err(ApiError::Unauthorized),
    };
    let lifetime = claims.exp.saturating_sub(claims.iat);
    if claims.iat > now_secs() + 5 || lifetime > config.access_ttl.as_secs() {
        return Err(ApiError::Unauthorized);
    }
    Ok(claims)
}

/// A new opaque refresh token (256 random bits) and the hash that is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_policy_wants_length_and_variety() {
        assert!(check_password_policy("short1A", &[]).is_err());
        assert!(check_password_policy("alllowercaseletters", &[]).is_err());
        assert!(check_password_policy("correct horse battery staple", &[]).is_ok());
        assert!(check_password_policy(&"aB1".repeat(50), &[]).is_err());
    }

    #[test]
    fn common_sequential_and_personal_passwords_are_refused() {
        for weak in [
            "password1234",
            "aaaaaaaaaaa1",
            "Password123!",
            "qwertyuiop12",
            "123456789abc",
        ] {
            assert!(check_password_policy(weak, &[]).is_err(), "{weak}");
        }
        let me = ["ada.lovelace@example.com", "Ada Lovelace"];
        for personal in ["Lovelace2024!", "ada.lovelace@example.com"] {
            assert!(check_password_policy(personal, &me).is_err(), "{personal}");
        }
    }

    #[test]
    fn tokens_from_another_key_issuer_or_audience_or_alg_none_are_refused() {
        let config = ApiConfig::default();
        let user = Uuid::now_v7();
        let token = issue_access_token(
            &config,
            user,
            Uuid::now_v7(),
            Uuid::now_v7(),
            vec!["admin".into()],
        )
        .unwrap();
        assert_eq!(verify_access_token(&config, &token).unwrap().sub, user);

        let other_key = ApiConfig {
            jwt_secret: crate::config::Secret::new("x".repeat(40)),
            ..config.clone()
        };
        assert!(verify_access_token(&other_key, &token).is_err());
        let other_aud = ApiConfig {
            audience: "someone-else".into(),
            ..config.clone()
        };
        assert!(verify_access_token(&other_aud, &token).is_err());

        // alg: none, same claims, no signature.
        let payload = token.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
        );
        assert!(verify_access_token(&config, &none).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let config = ApiConfig {
            access_ttl: std::time::Duration::from_secs(0),
            ..ApiConfig::default()
        };
        let token = issue_access_token(
            &config,
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            vec![],
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(verify_access_token(&config, &token).is_err());
    }

    fn sign(config: &ApiConfig, claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(config.jwt_secret.expose().as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn tokens_living_longer_than_the_deployment_issues_are_refused() {
        let config = ApiConfig::default();
        let iat = now_secs();
        let mut claims = Claims {
            sub: Uuid::now_v7(),
            org: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            roles: vec![],
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            exp: iat + config.access_ttl.as_secs(),
            iat,
        };
        assert!(verify_access_token(&config, &sign(&config, &claims)).is_ok());
        claims.exp = iat + 365 * 24 * 3600;
        assert!(verify_access_token(&config, &sign(&config, &claims)).is_err());
        claims.exp = iat + 600;
        claims.iat = iat + 300; // issued in the future
        assert!(verify_access_token(&config, &sign(&config, &claims)).is_err());
    }

    #[test]
    fn the_previous_key_is_accepted_only_during_its_grace_period() {
        let old = ApiConfig::default();
        let token =
            issue_access_token(&old, Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), vec![])
                .unwrap();
        let mut rotated = ApiConfig {
            jwt_previous_secret: Some(old.jwt_secret.clone()),
            jwt_previous_until: Some(SystemTime::now() + std::time::Duration::from_secs(60)),
            ..ApiConfig::default()
        };
        assert!(verify_access_token(&rotated, &token).is_ok());
        rotated.jwt_previous_until = Some(SystemTime::now() - std::time::Duration::from_secs(1));
        assert!(verify_access_token(&rotated, &token).is_err());
        rotated.jwt_previous_secret = None;
        assert!(verify_access_token(&rotated, &token).is_err());
    }
}
