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

/// Registers a user in `organization_id`: claims the e-mail, then writes the user's stream,
/// then waits until the read model shows the user (so the 201 is readable at once).
///
/// # Errors
/// 409 when the e-mail is taken; 422 for a manager outside the organization.
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
    let user_id = Uuid::now_v7();
    claim_email(state, &user.email, user_id, metadata).await?;
    let password_hash = auth::hash_password(user.password).await?;
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

async fn claim_email(
    state: &AppState,
    email: &Email,
    user_id: Uuid,
    metadata: &Metadata,
) -> Result<(), ApiError> {
    let claim = email_claim::stream_id(email);
    let taken = || ApiError::Conflict("the e-mail address is already registered".into());
    let result = state
        .commands
        .handle::<EmailClaim>(
            &claim,
            &EmailClaimCommand::Claim { user_id },
            &context(metadata),
        )
        .await;
    let holder = match result {
        Ok(_) => return Ok(()),
        Err(trellis_kernel::HandleError::Domain(EmailClaimError::Taken { holder })) => holder,
        Err(other) => return Err(from_handle(other, |_| taken())),
    };
    // A claim whose user stream was never written (a crash between the two appends) is
    // an orphan: take it over. A real holder keeps it.
    let holder_stream = stream(User::KIND_NAME, holder)?;
    let exists = !state
        .commands
        .store()
        .read_stream(&holder_stream, 1, Direction::Forwards, 1)
        .await?
        .is_empty();
    if exists {
        return Err(taken());
    }
    let take_over = EmailClaimCommand::TakeOver {
        user_id,
        orphan: holder,
    };
    state
        .commands
        .handle::<EmailClaim>(&claim, &take_over, &context(metadata))
        .await
        .map_err(|e| from_handle(e, |_| taken()))?;
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
        .handle::<Organization>(
            &stream(Organization::KIND_NAME, organization_id)?,
            &command,
            &context(&metadata),
        )
        .await
        .map_err(|e| from_handle(e, |e| ApiError::Conflict(e.to_string())))?;
    Ok((organization_id, admin_id))
}

/// Deactivates a user and ends all their sessions.
///
/// # Errors
/// 404 for unknown users.
pub async fn deactivate(
    state: &AppState,
    user_id: Uuid,
    metadata: &Metadata,
) -> Result<u64, ApiError> {
    let version = change_user(state, user_id, UserCommand::Deactivate, metadata).await?;
    sqlx::query(
        "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&state.pool)
    .await?;
    Ok(version)
}

/// Tokens returned by login and refresh.
#[derive(Debug, serde::Serialize)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

async fn issue(state: &AppState, user: &UserRow, family: Uuid) -> Result<TokenPair, ApiError> {
    let access_token = auth::issue_access_token(
        &state.config,
        user.user_id,
        user.organization_id,
        user.roles.clone(),
    )?;
    let (refresh_token, hash) = auth::new_refresh_token();
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(state.config.refresh_ttl).map_err(ApiError::internal)?;
    sqlx::query(
        "INSERT INTO auth_sessions (token_hash, family_id, user_id, organization_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(family)
    .bind(user.user_id)
    .bind(user.organization_id)
    .bind(expires)
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
/// the same argon2 work.
///
/// # Errors
/// 401.
pub async fn login(state: &AppState, email: &str, password: String) -> Result<TokenPair, ApiError> {
    let user = match Email::parse(email) {
        Ok(email) => projection::user_by_email(&state.pool, email.as_str()).await?,
        Err(_) => None,
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = auth::verify_password(password, hash).await?;
    match user {
        Some(user) if ok && user.active => issue(state, &user, Uuid::now_v7()).await,
        _ => Err(ApiError::Unauthorized),
    }
}

/// Exchanges a refresh token for a new pair. A token already exchanged (a replay, e.g. by a
/// thief) revokes its whole family.
///
/// # Errors
/// 401 for unknown, expired, revoked or reused tokens.
pub async fn refresh(state: &AppState, token: &str) -> Result<TokenPair, ApiError> {
    let hash = auth::hash_refresh_token(token);
    // Mark the token rotated, atomically: exactly one concurrent refresh wins.
    let rotated: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE auth_sessions SET rotated_at = now() \
         WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
           AND expires_at > now() \
         RETURNING family_id, user_id",
    )
    .bind(&hash)
    .fetch_optional(&state.pool)
    .await?;
    let Some((family, user_id)) = rotated else {
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
        Some(user) if user.active => issue(state, &user, family).await,
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
        &stream(User::KIND_NAME, user_id)?,
        &command,
        metadata,
        "rm_identity_users.users",
        "user_id",
        user_error,
    )
    .await
}
