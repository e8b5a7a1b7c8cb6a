//! Authorization in one place. Each endpoint calls one of these before touching data.
//!
//! Rule of thumb: a resource of another organization is **404** (its existence must not
//! leak); a resource of the caller's organization that the caller's role or relation does
//! not allow is **403**.

use trellis_identity::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Caller;

/// The caller must hold one of `roles`.
///
/// # Errors
/// 403 otherwise.
pub fn require_any(caller: &Caller, roles: &[Role]) -> Result<(), ApiError> {
    if roles.iter().any(|r| caller.has(*r)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The resource must belong to the caller's organization.
///
/// # Errors
/// 404 otherwise.
pub fn same_organization(caller: &Caller, organization_id: Uuid) -> Result<(), ApiError> {
    if caller.organization_id == organization_id {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}
