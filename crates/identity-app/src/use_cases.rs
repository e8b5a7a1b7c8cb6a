//! Identity use cases: sign-up, user registration, role, manager and password changes,
//! deactivation, login, refresh, logout. They answer [`IdentityError`], which knows nothing
//! of HTTP.

use std::sync::Arc;

use trellis_edge::auth;
use trellis_edge::config::ApiConfig;
use trellis_identity::email_claim::{self, EmailClaim, EmailClaimCommand, EmailClaimError};
use trellis_identity::organization::{Organization, OrganizationCommand};
use trellis_identity::user::{User, UserCommand, UserError};
use trellis_identity::{Actor, DisplayName, Email, OrganizationName, Role};
use trellis_kernel::{CommandContext, Direction, HandleError, Metadata, StreamId};
use trellis_runtime::{Commands, UseCaseError, Written};
use uuid::Uuid;

use crate::login_guard::{Limits, LoginGuard};
use crate::{IdentityUsers, UserRow, sessions};

/// What identity refuses beyond the generic refusals.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The user aggregate refused.
    #[error(transparent)]
    User(UserError),
    /// The address is taken in the organization.
    #[error("the e-mail address is already registered in your organization")]
    EmailTaken,
    /// Unknown e-mail, wrong password, deactivated user, or a bad refresh token: all alike.
    #[error("the credentials are not valid")]
    BadCredentials,
    /// Too many failed logins: retry after this many seconds.
    #[error("too many failed logins; retry in {0} s")]
    Throttled(u64),
    /// The organization or e-mail claim aggregate refused (a race; retrying helps).
    #[error("{0}")]
    Conflict(String),
}

/// What identity use cases answer when they refuse.
pub type IdentityError = UseCaseError<Refusal>;

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> IdentityError {
    UseCaseError::Internal(Box::new(error))
}

fn user_refusal(error: HandleError<UserError>) -> IdentityError {
    UseCaseError::from_command(error, Refusal::User)
}

fn conflict<E: std::error::Error + Send + Sync + 'static>(error: HandleError<E>) -> IdentityError {
    UseCaseError::from_command(error, |e| Refusal::Conflict(e.to_string()))
}

/// What identity use cases run with.
#[derive(Clone)]
pub struct Identity {
    /// Commands and read-your-writes waits.
    pub commands: Commands,
    /// Token lifetimes and keys, login budgets.
    pub config: Arc<ApiConfig>,
    /// Failed-login memory of this process.
    pub login_guard: Arc<LoginGuard>,
}

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
    /// Manager (checked by [`Identity::register_user`]).
    pub manager_id: Option<Uuid>,
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

fn context(metadata: &Metadata) -> CommandContext {
    CommandContext {
        metadata: metadata.clone(),
        ..CommandContext::default()
    }
}

/// A claim whose user stream is still missing this long after the claim is an orphan (its
/// registration crashed between the two appends). Far longer than the milliseconds between
/// them, so a registration still in flight is never robbed of its claim.
const ORPHAN_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Identity {
    fn pool(&self) -> &sqlx::PgPool {
        self.commands.pool()
    }

    /// Registers a user in `organization_id`: hashes the password, claims the address
    /// within the organization, then writes the user's stream, then waits until the read
    /// model shows the user (so the answer is readable at once).
    ///
    /// # Errors
    /// [`Refusal::EmailTaken`]; `manager_id` invalid for a manager outside the organization.
    pub async fn register_user(
        &self,
        organization_id: Uuid,
        user: NewUser,
        metadata: &Metadata,
    ) -> Result<Written, IdentityError> {
        if let Some(manager) = user.manager_id {
            let ok = crate::user_by_id(self.pool(), manager)
                .await?
                .is_some_and(|m| m.organization_id == organization_id && m.active);
            if !ok {
                return Err(UseCaseError::field(
                    "manager_id",
                    "must be an active user of your organization",
                ));
            }
        }
        // Users registered before per-organization claims (ADR 0009) hold no claim of that
        // kind.
        let holders =
            crate::active_users_by_email(self.pool(), user.email.as_str(), Some(organization_id))
                .await?;
        if !holders.is_empty() {
            return Err(UseCaseError::Domain(Refusal::EmailTaken));
        }
        // Hash first: the claim and the user's stream are then written milliseconds apart,
        // and a claim without its user is an orphan only after ORPHAN_AFTER.
        let password_hash = auth::hash_password(user.password).await.map_err(internal)?;
        let user_id = Uuid::now_v7();
        self.claim_email(organization_id, &user.email, user_id, metadata)
            .await?;
        let command = UserCommand::Register {
            organization_id,
            email: user.email,
            display_name: user.display_name,
            password_hash,
            roles: user.roles,
            manager_id: user.manager_id,
        };
        self.change_user(user_id, &command, metadata).await
    }

    async fn claim_email(
        &self,
        organization_id: Uuid,
        email: &Email,
        user_id: Uuid,
        metadata: &Metadata,
    ) -> Result<(), IdentityError> {
        let claim = email_claim::stream_id(organization_id, email);
        let handler = self.commands.handler();
        let result = handler
            .handle::<EmailClaim>(
                claim.id(),
                &EmailClaimCommand::Claim { user_id },
                &context(metadata),
            )
            .await;
        let holder = match result {
            Ok(_) => return Ok(()),
            Err(HandleError::Domain(EmailClaimError::Taken { holder })) => holder,
            Err(other) => return Err(UseCaseError::from_command(other, |_| Refusal::EmailTaken)),
        };
        // An orphan (a crash between the two appends) may be taken over; a holder whose
        // user exists, or whose registration may still be running, keeps it.
        let store = handler.store();
        let holder_stream = StreamId::new(User::KIND_NAME, holder).map_err(internal)?;
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
            return Err(UseCaseError::Domain(Refusal::EmailTaken));
        }
        let take_over = EmailClaimCommand::TakeOver {
            user_id,
            orphan: holder,
        };
        handler
            .handle::<EmailClaim>(claim.id(), &take_over, &context(metadata))
            .await
            .map_err(|e| UseCaseError::from_command(e, |_| Refusal::EmailTaken))?;
        Ok(())
    }

    /// Sign-up: a new organization with its first admin. Returns the organization's and
    /// the admin's ids.
    ///
    /// # Errors
    /// As [`Identity::register_user`].
    pub async fn sign_up(
        &self,
        name: OrganizationName,
        admin: NewUser,
        metadata: &Metadata,
    ) -> Result<(Uuid, Uuid), IdentityError> {
        let organization_id = Uuid::now_v7();
        let mut metadata = metadata.clone();
        metadata.tenant_id = Some(organization_id.into());
        let admin = self
            .register_user(organization_id, admin, &metadata)
            .await?;
        let command = OrganizationCommand::Create {
            name,
            admin_user_id: admin.id,
        };
        self.commands
            .handler()
            .handle::<Organization>(organization_id, &command, &context(&metadata))
            .await
            .map_err(conflict)?;
        Ok((organization_id, admin.id))
    }

    /// Runs a user command (roles, manager, password) and waits for the read model.
    ///
    /// # Errors
    /// The user aggregate's refusals (unknown, deactivated).
    pub async fn change_user(
        &self,
        user_id: Uuid,
        command: &UserCommand,
        metadata: &Metadata,
    ) -> Result<Written, IdentityError> {
        self.commands
            .run::<User, IdentityUsers>(user_id, command, metadata)
            .await
            .map_err(user_refusal)
    }

    /// Replaces `user`'s roles. Without the admin role, refused for the organization's last
    /// active admin ([`Self::keeping_an_admin`]).
    ///
    /// # Errors
    /// The user aggregate's refusals; a conflict for the last admin.
    pub async fn assign_roles(
        &self,
        user: &UserRow,
        roles: Vec<Role>,
        metadata: &Metadata,
    ) -> Result<Written, IdentityError> {
        let keeps_admin = roles.contains(&Role::Admin);
        let command = UserCommand::AssignRoles { roles };
        if keeps_admin {
            return self.change_user(user.user_id, &command, metadata).await;
        }
        self.keeping_an_admin(user, "give up the admin role", async |_| {
            self.change_user(user.user_id, &command, metadata).await
        })
        .await
    }

    /// Deactivates a user, ends all their sessions and releases their address within the
    /// organization (ADR 0009). Refused for the organization's last active admin.
    ///
    /// # Errors
    /// The aggregate's refusals (unknown user); a conflict for the last admin.
    pub async fn deactivate(
        &self,
        user: &UserRow,
        metadata: &Metadata,
    ) -> Result<Written, IdentityError> {
        self.keeping_an_admin(user, "be deactivated", async |current| {
            let user_id = current.user_id;
            let written = self
                .change_user(user_id, &UserCommand::Deactivate, metadata)
                .await?;
            sessions::revoke_all(self.pool(), user_id, None).await?;
            // Deactivation does not change the address: the row read under the lock has it.
            self.release(&current, metadata).await?;
            Ok(written)
        })
        .await
    }

    /// Runs `work` on `user` as they stand under their organization's admin lock
    /// ([`crate::with_admins_locked`]), unless they are its last active admin: an
    /// organization always keeps one, also when two admins give the role up, deactivate or
    /// erase each other at the same moment (each waits for the read model before the lock
    /// is released, so the next one counts what it did).
    ///
    /// # Errors
    /// A conflict naming `action` for the last admin; not found; `work`'s.
    async fn keeping_an_admin<T>(
        &self,
        user: &UserRow,
        action: &str,
        work: impl AsyncFnOnce(UserRow) -> Result<T, IdentityError>,
    ) -> Result<T, IdentityError> {
        crate::with_admins_locked(self.pool(), user.organization_id, async || {
            let current = crate::user_by_id(self.pool(), user.user_id)
                .await?
                .ok_or(UseCaseError::NotFound)?;
            if crate::is_last_admin(self.pool(), &current).await? {
                return Err(UseCaseError::Conflict(format!(
                    "the organization's last admin cannot {action}; make another user admin \
                     first"
                )));
            }
            work(current).await
        })
        .await
    }

    /// Frees `user`'s address within the organization (a no-op unless they hold it, or once
    /// the read model blanked it).
    async fn release(&self, user: &UserRow, metadata: &Metadata) -> Result<(), IdentityError> {
        if let Ok(email) = Email::parse(&user.email) {
            self.commands
                .handler()
                .handle::<EmailClaim>(
                    email_claim::stream_id(user.organization_id, &email).id(),
                    &EmailClaimCommand::Release {
                        user_id: user.user_id,
                    },
                    &context(metadata),
                )
                .await
                .map_err(conflict)?;
        }
        Ok(())
    }

    /// Erases a user (GDPR, ADR 0017): destroys their data key first (from then on every
    /// personal field of theirs, in every event and every copy, reads as erased in every
    /// process), records `SubjectForgotten` (read models blank what they hold), releases their
    /// address and ends their sessions. Each step is idempotent: a retry after a failure
    /// finishes what the first attempt began.
    ///
    /// # Errors
    /// The aggregate's refusals (unknown user); a key store that cannot be reached (retry);
    /// a conflict for the organization's last admin. `user` is their row as read before.
    pub async fn forget(
        &self,
        user: &crate::UserRow,
        metadata: &Metadata,
    ) -> Result<Written, IdentityError> {
        self.keeping_an_admin(user, "be erased", async |user| {
            let user_id = user.user_id;
            trellis_kernel::personal::forget(user_id)
                .await
                .map_err(internal)?;
            let written = self
                .change_user(user_id, &UserCommand::Forget, metadata)
                .await?;
            self.release(&user, metadata).await?;
            sessions::revoke_all(self.pool(), user_id, None).await?;
            Ok(written)
        })
        .await
    }

    /// Changes the actor's own password: the new one must pass the policy (not built from
    /// their name or address), the current one must match; every other session of theirs
    /// ends, the one that changed it goes on.
    ///
    /// # Errors
    /// `new_password` invalid for a weak one (checked first, before any hashing),
    /// `current_password` invalid when it does not match; the aggregate's refusals.
    pub async fn change_password(
        &self,
        actor: &Actor,
        session: Uuid,
        current: String,
        new: String,
    ) -> Result<Written, IdentityError> {
        let user = crate::user_by_id(self.pool(), actor.user_id)
            .await?
            // The edge checked the caller a moment ago; gone since is a lost session.
            .ok_or(UseCaseError::Domain(Refusal::BadCredentials))?;
        let context = [user.email.as_str(), user.display_name.as_str()];
        if let Err(why) = auth::check_password_policy(&new, &context) {
            return Err(UseCaseError::field("new_password", why));
        }
        if !auth::verify_password(current, Some(user.password_hash))
            .await
            .map_err(internal)?
        {
            return Err(UseCaseError::field(
                "current_password",
                "is not your current password",
            ));
        }
        let password_hash = auth::hash_password(new).await.map_err(internal)?;
        let written = self
            .change_user(
                actor.user_id,
                &UserCommand::ChangePassword { password_hash },
                &actor.metadata,
            )
            .await?;
        // Whoever else holds a session (a stolen refresh token, say) is logged out.
        sessions::revoke_all(self.pool(), actor.user_id, Some(session)).await?;
        Ok(written)
    }

    /// Issues an access token and a refresh token of session `family`, which ends at
    /// `family_expires` however often it is refreshed.
    async fn issue(
        &self,
        user: &UserRow,
        family: Uuid,
        family_expires: chrono::DateTime<chrono::Utc>,
    ) -> Result<TokenPair, IdentityError> {
        let access_token = auth::issue_access_token(
            &self.config,
            user.user_id,
            user.organization_id,
            family,
            user.roles.clone(),
        )
        .map_err(internal)?;
        let (refresh_token, hash) = auth::new_refresh_token();
        let expires = (chrono::Utc::now()
            + chrono::Duration::from_std(self.config.refresh_ttl).map_err(internal)?)
        .min(family_expires);
        sessions::insert(self.pool(), &hash, family, user, expires, family_expires).await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.config.access_ttl.as_secs(),
        })
    }

    /// Login. Unknown e-mail, wrong password and deactivated user all answer
    /// [`Refusal::BadCredentials`], after argon2 work. Addresses are unique per organization
    /// (ADR 0009): without `organization`, the password is checked against each active
    /// account of the address (at most [`crate::MAX_LOGIN_CANDIDATES`]); when it opens more
    /// than one, the client must name the organization. Failures feed the
    /// [`crate::login_guard`].
    ///
    /// # Errors
    /// Bad credentials; throttled while backing off; `organization_id` invalid when needed.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        organization: Option<Uuid>,
        client: &str,
    ) -> Result<TokenPair, IdentityError> {
        let account = email.trim().to_lowercase();
        let limits = Limits {
            per_ip: self.config.login_limit_per_ip,
            per_account: self.config.login_limit_per_account,
        };
        self.login_guard
            .check(&account, client, limits, std::time::Instant::now())
            .map_err(|retry_after| UseCaseError::Domain(Refusal::Throttled(retry_after)))?;
        let candidates = match Email::parse(email) {
            Ok(email) => {
                crate::active_users_by_email(self.pool(), email.as_str(), organization).await?
            }
            Err(_) => Vec::new(),
        };
        let mut opened = Vec::new();
        if candidates.is_empty() {
            // Same work as a wrong password.
            auth::verify_password(password.clone(), None)
                .await
                .map_err(internal)?;
        }
        for user in candidates {
            if auth::verify_password(password.clone(), Some(user.password_hash.clone()))
                .await
                .map_err(internal)?
            {
                opened.push(user);
            }
        }
        let now = std::time::Instant::now();
        match opened.as_slice() {
            [user] => {
                self.login_guard.succeeded(&account, client, now);
                let family_expires = chrono::Utc::now()
                    + chrono::Duration::from_std(self.config.session_max_ttl).map_err(internal)?;
                self.issue(user, Uuid::now_v7(), family_expires).await
            }
            [] => {
                self.login_guard.failed(&account, client, now);
                Err(UseCaseError::Domain(Refusal::BadCredentials))
            }
            _ => Err(UseCaseError::field(
                "organization_id",
                "is required: these credentials open accounts in several organizations",
            )),
        }
    }

    /// Exchanges a refresh token for a new pair. A token already exchanged (a replay, e.g.
    /// by a thief) revokes its whole family. The new token never outlives the session's
    /// absolute end.
    ///
    /// # Errors
    /// Bad credentials for unknown, expired, revoked or reused tokens.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, IdentityError> {
        let hash = auth::hash_refresh_token(token);
        let Some(rotated) = sessions::rotate(self.pool(), &hash).await? else {
            return Err(UseCaseError::Domain(Refusal::BadCredentials));
        };
        match crate::user_by_id(self.pool(), rotated.user_id).await? {
            Some(user) if user.active => {
                self.issue(&user, rotated.family, rotated.family_expires)
                    .await
            }
            _ => Err(UseCaseError::Domain(Refusal::BadCredentials)),
        }
    }

    /// Logout: revokes the token's session. Unknown tokens are ignored (logout is
    /// idempotent).
    ///
    /// # Errors
    /// Database failures.
    pub async fn logout(&self, token: &str) -> Result<(), IdentityError> {
        sessions::revoke_family_of(self.pool(), &auth::hash_refresh_token(token)).await?;
        Ok(())
    }
}
