//! Identity use cases: sign-up, user registration, deactivation, login, refresh, logout.

use trellis_identity::email_claim::{self, EmailClaim, EmailClaimCommand, EmailClaimError};
use trellis_identity::organization::{Organization, OrganizationCommand};
use trellis_identity::user::{User, UserCommand, UserError};
use trellis_identity::{DisplayName, Email, OrganizationName, Role};
use trellis_kernel::{CommandContext, Direction, Metadata, StreamId};
use uuid::Uuid;

use super::projection::{self, UserRow};
use crate::AppState;
use crate::auth;
use crate::error::{ApiError, from_handle};

/// A validated new user.
pub struct NewUser {
    /// Login address.
    pub email: Email,
    /// Plain password, already checked against the policy.
    pub password: String,
    /// Display name.
    pub display_name: DisplayName,
    /// Roles (at least one).
    pub roles: Vec<Role>,
    /// Manager (checked by [`register_user`]).
    pub manager_id: Option<Uuid>,
}

fn stream(kind: &str, id: Uuid) -> Result<StreamId, ApiError> {
    StreamId::new(kind, id).map_err(ApiError::internal)
}

fn context(metadata: &Metadata) -> CommandContext {
    CommandContext {
        metadata: metadata.clone(),
        ..CommandContext::default()
    }
}

fn user_error(error: UserError) -> ApiError {
    match error {
        UserError::NotFound => ApiError::NotFound,
        UserError::NoRoles => ApiError::field("roles", "needs at least one role"),
        other => ApiError::Conflict(other.to_string()),
    }
}

/// Registers a user in `organization_id`: hashes the password, claims the address within the
/// organization, then writes the user's stream, then waits until the read model shows the
/// user (so the 201 is readable at once).
///
/// # Errors
/// 409 when the address is taken in the organization; 422 for a manager outside it.
pub async fn register_user(
    state: &AppState,
    organization_id: Uuid,
    user: NewUser,
    metadata: &Metadata,
) -> Result<(Uuid, u64), ApiError> {
    if let Some(manager) = user.manager_id {
        let ok = projection::user_by_id(&state.pool, manager)
            .await?
            .is_some_and(|m| m.organization_id == organization_id && m.active);
        if !ok {
            return Err(ApiError::field(
                "manager_id",
                "must be an active user of your organization",
            ));
        }
    }
    // Users registered before per-organization claims (ADR 0009) hold no claim of that kind.
    if !projection::active_users_by_email(&state.pool, user.email.as_str(), Some(organization_id))
        .await?
        .is_empty()
    {
        return Err(email_taken());
    }
    // Hash first: the claim and the user's stream are then written milliseconds apart, and
    // a claim without its user is an orphan only after ORPHAN_AFTER.
    let password_hash = auth::hash_password(user.password).await?;
    let user_id = Uuid::now_v7();
    claim_email(state, organization_id, &user.email, user_id, metadata).await?;
    let command = UserCommand::Register {
        organization_id,
        email: user.email,
        display_name: user.display_name,
        password_hash,
        roles: user.roles,
        manager_id: user.manager_id,
    };
    let version = change_user(state, user_id, command, metadata).await?;
    Ok((user_id, version))
}

fn email_taken() -> ApiError {
    ApiError::Conflict("the e-mail address is already registered in your organization".into())
}

/// A claim whose user stream is still missing this long after the claim is an orphan (its
/// registration crashed between the two appends). Far longer than the milliseconds between
/// them, so a registration still in flight is never robbed of its claim.
const ORPHAN_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

async fn claim_email(
    state: &AppState,
    organization_id: Uuid,
    email: &Email,
    user_id: Uuid,
    metadata: &Metadata,
) -> Result<(), ApiError> {
    let claim = email_claim::stream_id(organization_id, email);
    let result = state
        .commands
        .handle::<EmailClaim>(
            claim.id(),
            &EmailClaimCommand::Claim { user_id },
            &context(metadata),
        )
        .await;
    let holder = match result {
        Ok(_) => return Ok(()),
        Err(trellis_kernel::HandleError::Domain(EmailClaimError::Taken { holder })) => holder,
        Err(other) => return Err(from_handle(other, |_| email_taken())),
    };
    // An orphan (a crash between the two appends) may be taken over; a holder whose user
    // exists, or whose registration may still be running, keeps it.
    let store = state.commands.store();
    let holder_stream = stream(User::KIND_NAME, holder)?;
    let exists = !store
        .read_stream(&holder_stream, 1, Direction::Forwards, 1)
        .await?
        .is_empty();
    let claimed_at = store
        .read_stream(&claim, u64::MAX, Direction::Backwards, 1)
        .await?
        .first()
        .map(|e| e.recorded_at);
    let young = claimed_at.is_none_or(|at| chrono::Utc::now() - at < ORPHAN_AFTER);
    if exists || young {
        return Err(email_taken());
    }
    let take_over = EmailClaimCommand::TakeOver {
        user_id,
        orphan: holder,
    };
    state
        .commands
        .handle::<EmailClaim>(claim.id(), &take_over, &context(metadata))
        .await
        .map_err(|e| from_handle(e, |_| email_taken()))?;
    Ok(())
}

/// Sign-up: a new organization with its first admin.
///
/// # Errors
/// As [`register_user`].
pub async fn sign_up(
    state: &AppState,
    name: OrganizationName,
    admin: NewUser,
    metadata: &Metadata,
) -> Result<(Uuid, Uuid), ApiError> {
    let organization_id = Uuid::now_v7();
    let mut metadata = metadata.clone();
    metadata.tenant_id = Some(organization_id.into());
    let (admin_id, _) = register_user(state, organization_id, admin, &metadata).await?;
    let command = OrganizationCommand::Create {
        name,
        admin_user_id: admin_id,
    };
    state
        .commands
        .handle::<Organization>(organization_id, &command, &context(&metadata))
        .await
        .map_err(|e| from_handle(e, |e| ApiError::Conflict(e.to_string())))?;
    Ok((organization_id, admin_id))
}

/// Deactivates a user, ends all their sessions and releases their address within the
/// organization (ADR 0009).
///
/// # Errors
/// 404 for unknown users.
pub async fn deactivate(
    state: &AppState,
    user_id: Uuid,
    metadata: &Metadata,
) -> Result<u64, ApiError> {
    let version = change_user(state, user_id, UserCommand::Deactivate, metadata).await?;
    revoke_sessions(state, user_id, None).await?;
    if let Some(user) = projection::user_by_id(&state.pool, user_id).await?
        && let Ok(email) = Email::parse(&user.email)
    {
        state
            .commands
            .handle::<EmailClaim>(
                email_claim::stream_id(user.organization_id, &email).id(),
                &EmailClaimCommand::Release { user_id },
                &context(metadata),
            )
            .await
            .map_err(|e| from_handle(e, |e| ApiError::Conflict(e.to_string())))?;
    }
    Ok(version)
}

/// Revokes every session of `user_id` except `keep` (the caller's own, on a password change).
///
/// # Errors
/// Database failures.
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Tokens returned by login and refresh.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Tokens)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single use: exchange it at `POST /v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    #[schema(minimum = 1)]
    pub expires_in: u64,
}

/// Issues an access token and a refresh token of session `family`, which ends at
/// `family_expires` however often it is refreshed.
async fn issue(
    state: &AppState,
    user: &UserRow,
    family: Uuid,
    family_expires: chrono::DateTime<chrono::Utc>,
) -> Result<TokenPair, ApiError> {
    let access_token = auth::issue_access_token(
        &state.config,
        user.user_id,
        user.organization_id,
        family,
        user.roles.clone(),
    )?;
    let (refresh_token, hash) = auth::new_refresh_token();
    let expires = (chrono::Utc::now()
        + chrono::Duration::from_std(state.config.refresh_ttl).map_err(ApiError::internal)?)
    .min(family_expires);
    sqlx::query(
        "INSERT INTO auth_sessions \
           (token_hash, family_id, user_id, organization_id, expires_at, family_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash)
    .bind(family)
    .bind(user.user_id)
    .bind(user.organization_id)
    .bind(expires)
    .bind(family_expires)
    .execute(&state.pool)
    .await?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.config.access_ttl.as_secs(),
    })
}

/// Login. Unknown e-mail, wrong password and deactivated user all answer the same 401, after
/// argon2 work. Addresses are unique per organization (ADR 0009): without `organization`,
/// the password is checked against each active account of the address (at most
/// [`projection::MAX_LOGIN_CANDIDATES`]); when it opens more than one, the client must name
/// the organization. Failures feed the [`crate::login_guard`].
///
/// # Errors
/// 401; 429 while backing off; 422 naming `organization_id` when it is needed.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    organization: Option<Uuid>,
    client: &str,
) -> Result<TokenPair, ApiError> {
    let account = email.trim().to_lowercase();
    let limits = crate::login_guard::Limits {
        per_ip: state.config.login_limit_per_ip,
        per_account: state.config.login_limit_per_account,
    };
    state
        .login_guard
        .check(&account, client, limits, std::time::Instant::now())
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let candidates = match Email::parse(email) {
        Ok(email) => {
            projection::active_users_by_email(&state.pool, email.as_str(), organization).await?
        }
        Err(_) => Vec::new(),
    };
    let mut opened = Vec::new();
    if candidates.is_empty() {
        // Same work as a wrong password.
        auth::verify_password(password.clone(), None).await?;
    }
    for user in candidates {
        if auth::verify_password(password.clone(), Some(user.password_hash.clone())).await? {
            opened.push(user);
        }
    }
    let now = std::time::Instant::now();
    match opened.as_slice() {
        [user] => {
            state.login_guard.succeeded(&account, client, now);
            let family_expires = chrono::Utc::now()
                + chrono::Duration::from_std(state.config.session_max_ttl)
                    .map_err(ApiError::internal)?;
            issue(state, user, Uuid::now_v7(), family_expires).await
        }
        [] => {
            state.login_guard.failed(&account, client, now);
            Err(ApiError::Unauthorized)
        }
        _ => Err(ApiError::field(
            "organization_id",
            "is required: these credentials open accounts in several organizations",
        )),
    }
}

/// Exchanges a refresh token for a new pair. A token already exchanged (a replay, e.g. by a
/// thief) revokes its whole family. The new token never outlives the session's absolute end.
///
/// # Errors
/// 401 for unknown, expired, revoked or reused tokens.
pub async fn refresh(state: &AppState, token: &str) -> Result<TokenPair, ApiError> {
    let hash = auth::hash_refresh_token(token);
    // Mark the token rotated, atomically: exactly one concurrent refresh wins.
    let rotated: Option<(Uuid, Uuid, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "UPDATE auth_sessions SET rotated_at = now() \
         WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
           AND expires_at > now() AND family_expires_at > now() \
         RETURNING family_id, user_id, family_expires_at",
    )
    .bind(&hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some((family, user_id, family_expires)) = rotated else {
        // Reuse of a rotated token: revoke the family.
        sqlx::query(
            "UPDATE auth_sessions SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
             (SELECT family_id FROM auth_sessions WHERE token_hash = $1 AND rotated_at IS NOT NULL)",
        )
        .bind(&hash)
        .execute(&state.pool)
        .await?;
        return Err(ApiError::Unauthorized);
    };
    match projection::user_by_id(&state.pool, user_id).await? {
        Some(user) if user.active => issue(state, &user, family, family_expires).await,
        _ => Err(ApiError::Unauthorized),
    }
}

/// Logout: revokes the token's family. Unknown tokens are ignored (logout is idempotent).
///
/// # Errors
/// Database failures.
pub async fn logout(state: &AppState, token: &str) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = \
         (SELECT family_id FROM auth_sessions WHERE token_hash = $1)",
    )
    .bind(auth::hash_refresh_token(token))
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Runs a user command (roles, manager, password) and waits for the read model.
///
/// # Errors
/// 404 for unknown users, 409 for deactivated ones.
pub async fn change_user(
    state: &AppState,
    user_id: Uuid,
    command: UserCommand,
    metadata: &Metadata,
) -> Result<u64, ApiError> {
    crate::consistency::handle_and_wait::<User>(
        state,
        user_id,
        &command,
        metadata,
        "rm_identity_users.users",
        "user_id",
        user_error,
    )
    .await
}
