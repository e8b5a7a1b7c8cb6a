//! Response bodies every context's HTTP slice shares, as OpenAPI schemas.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details: the body of every error response.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://trellis.dev/problems/validation`.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub kind: String,
    /// Short summary (the status's reason phrase).
    pub title: String,
    /// HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// Human explanation.
    pub detail: String,
    /// For validation problems (422): every invalid field. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldProblem>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
pub struct FieldProblem {
    /// JSON path, e.g. `admin.email` or `roles[1]`; a query parameter's or header's name.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A command's result: the entity and the stream version it produced (pass it as
/// `?min_version=` to read your write).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The entity.
    pub id: Uuid,
    /// Stream version after the command.
    #[schema(minimum = 0)]
    pub version: u64,
}

/// An accepted asynchronous command: the entity is `processing` until a service answers.
#[derive(Serialize, ToSchema)]
pub struct Processing {
    /// The entity.
    pub id: Uuid,
    /// Always `processing`.
    #[schema(value_type = String, pattern = "^processing$")]
    pub status: &'static str,
    /// Stream version after the command.
    #[schema(minimum = 0)]
    pub version: u64,
}
