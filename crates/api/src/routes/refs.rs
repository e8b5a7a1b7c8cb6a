//! Ids named in a request body must belong to the caller's organization: one check per kind,
//! shared by every endpoint, each answering 422 on the field that names the id (the same
//! answer for another organization's id, so nothing leaks).

use std::collections::HashSet;

use trellis_development_app::catalog;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, FieldError};
use crate::extract::Caller;
use crate::identity::projection::{UserRow, user_by_id};

/// Most skills one list in a request may name (targets, ratings, taught skills, an item's
/// skills): bounds the work one request costs, e.g. co-occurrence is quadratic in a list.
pub(crate) const MAX_SKILLS: usize = 100;

/// An active user of the caller's organization named in body field `field`.
pub(crate) async fn employee_in_org(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    field: &str,
) -> Result<UserRow, ApiError> {
    match user_by_id(&state.pool, id).await? {
        Some(user) if user.organization_id == caller.organization_id && user.active => Ok(user),
        _ => Err(ApiError::field(
            field,
            "is not an active user of your organization",
        )),
    }
}

/// Every id of `ids` is a skill of the caller's catalog; otherwise 422 naming `path(i)` for
/// each unknown one (e.g. `skills[2].skill_id`). At most [`MAX_SKILLS`].
pub(crate) async fn check_known_skills(
    state: &AppState,
    caller: &Caller,
    ids: &[Uuid],
    path: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    if ids.len() > MAX_SKILLS {
        let list = path(0);
        let list = list.split('[').next().unwrap_or(&list);
        return Err(ApiError::field(
            list,
            format!("at most {MAX_SKILLS} skills"),
        ));
    }
    let known: HashSet<Uuid> = catalog::known_skills(&state.pool, caller.organization_id, ids)
        .await?
        .into_iter()
        .collect();
    let unknown: Vec<FieldError> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(i, _)| FieldError::new(path(i), "is not a skill of your organization"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(unknown))
    }
}
