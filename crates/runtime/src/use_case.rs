//! What a context's use cases answer when they refuse: one error shape for every context,
//! free of HTTP (the edge kit maps it to statuses in one place).

use trellis_kernel::{HandleError, StoreError};

/// One invalid input field: its path (`target_skills[2].skill_id`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The field's path in the input.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Why a use case did not happen. `D` is the aggregate's own refusal.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError<D: std::error::Error + 'static> {
    /// The entity does not exist for this actor (absent, or another organization's: the two
    /// must look alike).
    #[error("not found")]
    NotFound,
    /// The actor may not do this.
    #[error("not allowed")]
    Forbidden,
    /// Input that breaks a rule the use case checks (unknown ids, missing fields).
    #[error("invalid input")]
    Invalid(Vec<InvalidField>),
    /// The state of things forbids it (a full catalog, say).
    #[error("{0}")]
    Conflict(String),
    /// The aggregate refused the command.
    #[error("command refused")]
    Domain(#[source] D),
    /// The event store or a read model failed.
    #[error("storage failed")]
    Store(#[source] StoreError),
    /// A bug: stored data that does not decode, an undeclared stream kind.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl<D: std::error::Error + 'static> UseCaseError<D> {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![InvalidField {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl<D: std::error::Error + 'static> UseCaseError<D> {
    /// A command failure whose aggregate refusal `domain` turns into this use case's.
    pub fn from_command<E: std::error::Error + Send + Sync + 'static>(
        error: HandleError<E>,
        domain: impl FnOnce(E) -> D,
    ) -> Self {
        match error {
            HandleError::Domain(e) => Self::Domain(domain(e)),
            HandleError::Store(e) => Self::Store(e),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl<D: std::error::Error + Send + Sync + 'static> From<HandleError<D>> for UseCaseError<D> {
    fn from(error: HandleError<D>) -> Self {
        Self::from_command(error, |e| e)
    }
}

impl<D: std::error::Error + 'static> From<StoreError> for UseCaseError<D> {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl<D: std::error::Error + 'static> From<sqlx::Error> for UseCaseError<D> {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(trellis_store_postgres::store_error(error))
    }
}
