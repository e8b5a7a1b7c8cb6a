//! The OpenAPI document (`GET /v1/openapi.json`), generated from the handlers' annotations,
//! the request types and the response types below (and beside the handlers).
//!
//! Conventions every operation shares are added by [`Conventions`] rather than repeated on
//! each handler, so an annotation lists only what is particular to its operation:
//! - every error response is `application/problem+json` with the [`Problem`] body;
//! - every operation may answer 503 (the request deadline, the connection cap, a dependency
//!   that is down);
//! - a secured operation may answer 401; an operator route also 404 (no operator token is
//!   configured);
//! - an operation with path parameters may answer 404 (a malformed id names nothing either);
//! - an operation with query parameters may answer 422 naming the parameter;
//! - an operation with a JSON body may answer 400 (not JSON), 413 (over 1 MiB) and 422
//!   (fields, naming each);
//! - a command (every `POST` outside `/v1/auth/` and the operator's routes) takes an optional
//!   `Idempotency-Key` header and may answer 409 (a request with the key is still running),
//!   413 and 422 (a bad key, or the key used for another request); one made by a user may
//!   answer 429 (the write budget, with `Retry-After`). The idempotency layer asks
//!   [`command`] which requests these are.

use serde::Serialize;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, ObjectBuilder, Ref, RefOr, Required, Type};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

use crate::routes;

pub use trellis_edge::schema::{Accepted, FieldProblem, PROBLEM_JSON, Problem, Processing};

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `single-node` without a broker, `ok` when one answers.
    #[schema(value_type = String, pattern = "^(single-node|ok)$")]
    pub kafka: &'static str,
    /// Always `ok` (else the answer is 503).
    #[schema(value_type = String, pattern = "^ok$")]
    pub postgres: &'static str,
    /// Always `ready`.
    #[schema(value_type = String, pattern = "^ready$")]
    pub status: &'static str,
}

/// The OpenAPI document itself (OpenAPI 3.1).
#[derive(Serialize, ToSchema)]
pub struct OpenApiDocument {
    /// The OpenAPI version, `3.1.0`.
    pub openapi: String,
    /// Title, version and description of the API.
    #[schema(value_type = Object)]
    pub info: serde_json::Value,
    /// Every operation, by path.
    #[schema(value_type = Object)]
    pub paths: serde_json::Value,
    /// Schemas and security schemes.
    #[schema(value_type = Object)]
    pub components: serde_json::Value,
}

/// One event as the audit shows it (`password_hash` in payloads reads `[redacted]`).
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id (UUIDv7).
    pub event_id: Uuid,
    /// Type, a PascalCase past-tense name, e.g. `UserRegistered`.
    pub event_type: String,
    /// Position in the global order.
    pub global_position: i64,
    /// Who and why.
    pub metadata: EventMetadata,
    /// The event's data; its shape is the event type's (see `events/`).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Commit time.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Version of the payload's schema.
    #[schema(minimum = 1)]
    pub schema_version: u32,
    /// `<aggregate>-<uuid>`.
    pub stream_id: String,
    /// Version of the stream after this event (1 for the first).
    #[schema(minimum = 1)]
    pub stream_version: u64,
}

/// An event's metadata.
#[derive(Serialize, ToSchema)]
pub struct EventMetadata {
    /// The user or service acting.
    pub actor_id: Option<Uuid>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// The request (or first event) that started the chain.
    pub correlation_id: Option<Uuid>,
    /// The client's own `x-request-id`, when it sent a usable one; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
    /// The organization.
    pub tenant_id: Option<Uuid>,
    /// Trace id of the request, for logs.
    pub trace_id: Option<Uuid>,
}

/// `GET /v1/audit/streams/{stream_id}`.
#[derive(Serialize, ToSchema)]
pub struct AuditStream {
    /// The last version included (0 when `as_of` precedes the stream).
    #[schema(minimum = 0)]
    pub as_of_version: u64,
    /// The stream's events up to `as_of`, oldest first.
    pub events: Vec<AuditEvent>,
    /// The aggregate's state rebuilt from those events (users, organizations and e-mail
    /// claims; `null` for other kinds).
    #[schema(value_type = Option<Object>)]
    pub state: serde_json::Value,
    /// The stream.
    pub stream_id: String,
}

/// `GET /v1/users/{id}/export` and `GET /v1/users/me/export`: what Trellis holds about a user
/// (the right of access, ADR 0017).
#[derive(Serialize, ToSchema)]
pub struct SubjectExport {
    /// The user.
    pub subject: Uuid,
    /// Their organization.
    pub organization_id: Uuid,
    /// When this document was made.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// Every event about them (their stream, their acts, events that concern them or hold
    /// their personal data), decrypted, secrets redacted, in log order.
    pub events: Vec<AuditEvent>,
    /// The read-model rows about them, by `schema.table`.
    #[schema(value_type = std::collections::HashMap<String, Vec<Object>>)]
    pub read_models: serde_json::Value,
}

/// `GET /v1/audit/events`: a page of the organization's events.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Events in global order.
    pub events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; `null` on an empty page.
    pub next_after: Option<i64>,
}

/// `GET /v1/audit/verify`: the organization's hash chain recomputed.
#[derive(Serialize, ToSchema)]
pub struct ChainVerification {
    /// Your organization (its chain).
    pub organization_id: Uuid,
    /// Whether the whole chain verified.
    pub ok: bool,
    /// Seals recomputed (up to the break).
    pub checked: i64,
    /// The log position of the first break, where known; `null` when verified.
    pub first_broken_position: Option<i64>,
    /// The chain's head; `null` before the first seal.
    pub head: Option<ChainHead>,
    /// The first break; `null` when verified.
    pub broken: Option<ChainBreak>,
    /// When.
    pub checked_at: chrono::DateTime<chrono::Utc>,
}

/// A chain's last seal.
#[derive(Serialize, ToSchema)]
pub struct ChainHead {
    /// Seals in the chain.
    pub seq: i64,
    /// The last sealed event's position.
    pub global_position: i64,
    /// The last link (SHA-256, hex).
    pub link: String,
}

/// Where a chain breaks.
#[derive(Serialize, ToSchema)]
pub struct ChainBreak {
    /// The seal where it breaks; `null` for an event that has no seal (inserted).
    pub seq: Option<i64>,
    /// The event's position, where known.
    pub global_position: Option<i64>,
    /// What was found: deleted, changed (or swapped), inserted, a missing seal, a head or
    /// checkpoint the seals do not match.
    pub reason: String,
}

/// `POST /v1/audit/replays`: accepted.
#[derive(Serialize, ToSchema)]
pub struct ReplayStarted {
    /// The replay.
    pub id: Uuid,
    /// `running`.
    pub status: String,
    /// The schema the projections are rebuilt into (query it once completed).
    pub schema: String,
}

/// `GET /v1/audit/replays/{id}`.
#[derive(Serialize, ToSchema)]
pub struct ReplayStatus {
    /// The replay.
    pub id: Uuid,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// The cut as requested.
    pub until: String,
    /// Projections rebuilt.
    pub projections: Vec<String>,
    /// The target schema.
    pub schema: String,
    /// The admin who asked for it.
    pub requested_by: Uuid,
    /// How far it got.
    pub progress: ReplayProgressView,
    /// Why it failed.
    pub error: Option<String>,
    /// Requested at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Ended at.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A replay's progress: the organization's events are read in commit order to the log's end.
#[derive(Serialize, ToSchema)]
pub struct ReplayProgressView {
    /// Events of the organization read.
    pub events_read: i64,
    /// Events the projections applied (those at or before the cut).
    pub events_applied: i64,
    /// Last position read.
    pub position: i64,
    /// The log's last position when the replay started.
    pub end_position: i64,
    /// 0 to 1.
    pub share: f64,
}

/// `GET /v1/audit/correlations/{id}`: one request's consequences.
#[derive(Serialize, ToSchema)]
pub struct AuditCorrelation {
    /// The correlation id.
    pub correlation_id: Uuid,
    /// How many events are shown (at most 10,000).
    pub events: usize,
    /// Whether more events carry it than are shown (the first 10,000 in log order are).
    pub truncated: bool,
    /// Events whose cause is the request itself, each with `caused`: the events it caused,
    /// recursively (an `AuditEvent` plus `caused`).
    #[schema(value_type = Vec<Object>)]
    pub roots: Vec<serde_json::Value>,
}

/// The `data` of each event of `GET /v1/me/events` (`event:` is the event type, `id:` its
/// global position; a slow client gets an `event: lagged` whose data is the number missed).
#[derive(Serialize, ToSchema)]
pub struct LiveEvent {
    /// Type.
    pub event_type: String,
    /// Commit time.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// The stream that changed.
    pub stream_id: String,
    /// Its version after the change.
    pub stream_version: u64,
}

/// Characters no single-line text may hold: control characters (Unicode Cc), the line and
/// paragraph separators, and the bidirectional embedding, override and isolate controls
/// (`trellis_kernel::text`).
const REFUSED_IN_LINE: &str = r"\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069";
/// Multi-line text allows newline and tab (and CR before LF).
const REFUSED_IN_TEXT: &str = r"\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069";

/// An absolute http(s) URL with a host, without whitespace, control or bidi characters
/// (`trellis_kernel::text::check_web_url`), as a regular expression without anchors.
fn web_url() -> String {
    let c = REFUSED_IN_TEXT;
    format!(
        r"[Hh][Tt][Tt][Pp][Ss]?://([^/?#\s@{c}]*@)?[^/?#@:\s\[\]{c}]+(:[^/?#@\s{c}]*)?([/?#][^\s{c}]*)?"
    )
}

/// What a text kind stands for.
struct TextKind {
    /// The regular expression.
    pattern: String,
    /// A standard format besides, if any.
    format: Option<&'static str>,
    /// `(min, max)` length in characters, when the kind fixes them.
    lengths: Option<(usize, usize)>,
    /// The rule in words, appended to the description.
    words: &'static str,
}

/// The text kinds request fields name with `format = "trellis:…"`, as the pattern (and
/// standard format, lengths and words) they stand for.
fn text_kind(kind: &str) -> Option<TextKind> {
    let r = REFUSED_IN_LINE;
    let nonblank = format!(r"^[^{r}]*[^\s{r}][^{r}]*$");
    let (pattern, format, lengths, words) = match kind {
        "trellis:line" => (
            format!("^[^{r}]*$"),
            None,
            None,
            "One line: no control characters (so no newline or tab) and no Unicode \
             bidirectional override or isolate characters.",
        ),
        "trellis:nonblank-line" => (
            nonblank,
            None,
            None,
            "One line, not blank (trimmed): no control characters (so no newline or tab) and \
             no Unicode bidirectional override or isolate characters.",
        ),
        "trellis:text" => (
            format!(r"^([^{REFUSED_IN_TEXT}]|\r\n)*$"),
            None,
            None,
            "Newlines (LF or CR-LF) and tabs allowed; no other control characters and no \
             Unicode bidirectional override or isolate characters.",
        ),
        "trellis:web-url" => (
            format!("^{}$", web_url()),
            None,
            None,
            "An absolute http or https URL with a host, without whitespace.",
        ),
        "trellis:web-url-or-blank" => (
            format!(r"^(\s*|{})$", web_url()),
            None,
            None,
            "An absolute http or https URL with a host, without whitespace; blank means none.",
        ),
        _ => return None,
    };
    Some(TextKind {
        pattern,
        format,
        lengths,
        words,
    })
}

/// Replaces the `trellis:` text formats in every schema below `value` with their patterns.
fn expand_text_kinds(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let kind = map
                .get("format")
                .and_then(|f| f.as_str())
                .map(str::to_owned);
            if let Some(TextKind {
                pattern,
                format,
                lengths,
                words,
            }) = kind.as_deref().and_then(text_kind)
            {
                map.insert("pattern".into(), pattern.into());
                match format {
                    Some(format) => map.insert("format".into(), format.into()),
                    None => map.remove("format"),
                };
                if let Some((min, max)) = lengths {
                    map.insert("minLength".into(), min.into());
                    map.insert("maxLength".into(), max.into());
                }
                let description = match map.get("description").and_then(|d| d.as_str()) {
                    Some(d) => format!("{d}\n\n{words}"),
                    None => words.to_owned(),
                };
                map.insert("description".into(), description.into());
            }
            for child in map.values_mut() {
                expand_text_kinds(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(expand_text_kinds),
        _ => {}
    }
}

/// The API's security schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /v1/auth/login` or `/v1/auth/refresh`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The platform operator's `TRELLIS_OPS_TOKEN` (no tenant role opens \
                         operational routes).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The operations of a path item, with their methods.
fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// The security scheme names an operation accepts.
fn schemes(op: &Operation) -> Vec<String> {
    op.security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| {
            value
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

fn problem_content() -> Content {
    Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
}

fn integer_header(description: &str) -> Header {
    let mut header = Header::new(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0)),
    );
    header.description = Some(description.to_owned());
    header
}

/// Adds `status` with `description` unless the operation declares it already; either way
/// its body becomes the problem.
fn problem(op: &mut Operation, status: u16, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(Response::new(description)));
}

/// The `Idempotency-Key` header of commands.
pub fn idempotency_key_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Send one on every command you may retry: the first final answer (2xx, 400, 404, \
             413, 422) is replayed for 24 hours, marked `Idempotent-Replayed: true`. 1 to 200 \
             visible ASCII characters, scoped to your organization and user; the same key \
             with another request is 422.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200))
                .pattern(Some("^[!-~]+$")),
        ))
        .build()
}

/// Whether an operation takes `Idempotency-Key`: the `POST`s outside `/v1/auth/` (token
/// answers are never stored) that a user or no one (sign-up) makes; the operator's routes
/// ignore the header.
fn takes_idempotency_key(
    method: &str,
    path: &str,
    schemes: &[String],
    op: &utoipa::openapi::path::Operation,
) -> bool {
    // Uploads (multipart bodies up to 100 MB) are streamed to storage, never buffered to be
    // fingerprinted: a repeated upload makes a second content over the same stored bytes.
    let upload = op.request_body.as_ref().is_some_and(|body| {
        body.content
            .keys()
            .any(|media| media.starts_with("multipart/"))
    });
    method == "post"
        && !upload
        && !path.starts_with("/v1/auth/")
        && !schemes.iter().any(|s| s == "operator")
}

/// An operation that takes `Idempotency-Key`, as the idempotency layer needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Made by a signed-in user: keys are scoped to the user.
    User,
    /// Made without credentials (sign-up): keys share the anonymous scope.
    Anonymous,
}

/// The OpenAPI document of everything served: the platform's operations merged with every
/// context module's HTTP slice, with the shared conventions applied; and the commands it
/// names (the operations that take `Idempotency-Key`), for the idempotency layer.
pub struct Document {
    openapi: utoipa::openapi::OpenApi,
    commands: std::collections::HashMap<(String, String), Command>,
}

impl Document {
    /// The document of the platform plus `modules`' slices.
    pub fn of(modules: &trellis_module::Modules) -> Self {
        let mut openapi = ApiDoc::openapi();
        for (_, slice) in modules.http() {
            openapi.merge((slice.openapi)());
        }
        SecuritySchemes.modify(&mut openapi);
        Conventions.modify(&mut openapi);
        let mut commands = std::collections::HashMap::new();
        for (path, item) in &mut openapi.paths.paths {
            for (method, op) in operations(item) {
                let schemes = schemes(op);
                if takes_idempotency_key(method, path, &schemes, op) {
                    let kind = if schemes.is_empty() {
                        Command::Anonymous
                    } else {
                        Command::User
                    };
                    commands.insert((method.to_owned(), path.clone()), kind);
                }
            }
        }
        Self { openapi, commands }
    }

    /// The document.
    pub fn openapi(&self) -> &utoipa::openapi::OpenApi {
        &self.openapi
    }

    /// The command at `method` and `path` (a route template such as
    /// `/v1/users/{id}/roles`), if that operation takes `Idempotency-Key` (a test keeps the
    /// document equal to the router).
    pub fn command(&self, method: &axum::http::Method, path: &str) -> Option<Command> {
        self.commands
            .get(&(method.as_str().to_ascii_lowercase(), path.to_owned()))
            .copied()
    }
}

/// The shared conventions (see the module docs).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            for (method, op) in operations(item) {
                let schemes = schemes(op);
                let operator = schemes.iter().any(|s| s == "operator");
                let user = schemes.iter().any(|s| s == "bearer");
                let parameters = op.parameters.as_deref().unwrap_or_default();
                let in_path = parameters
                    .iter()
                    .any(|p| p.parameter_in == ParameterIn::Path);
                let in_query = parameters
                    .iter()
                    .any(|p| p.parameter_in == ParameterIn::Query);
                let json_body = op.request_body.as_ref().is_some_and(|body| {
                    body.content.keys().any(|media| media == "application/json")
                });
                let command = takes_idempotency_key(method, path, &schemes, op);

                problem(
                    op,
                    503,
                    "Over the request deadline or the connection cap, or a dependency is \
                     down; retry later",
                );
                if user || operator {
                    problem(op, 401, "Missing, invalid or expired credentials");
                }
                if operator {
                    problem(op, 404, "No operator token is configured");
                }
                if in_path {
                    problem(op, 404, "No such resource in your organization");
                }
                if in_query {
                    problem(op, 422, "A query parameter is invalid (`errors` names it)");
                }
                if json_body {
                    problem(op, 400, "The body is not JSON");
                    problem(op, 422, "Invalid fields (`errors` names each)");
                }
                if json_body || command {
                    problem(
                        op,
                        413,
                        "The body is over 1 MiB, or an event it makes is too large",
                    );
                }
                if command {
                    problem(
                        op,
                        409,
                        "A request with this Idempotency-Key is still in progress",
                    );
                    problem(
                        op,
                        422,
                        "A bad Idempotency-Key, or one used for a different request",
                    );
                    if user {
                        problem(op, 429, "Write budget spent; see Retry-After");
                    }
                    op.parameters
                        .get_or_insert_with(Vec::new)
                        .push(idempotency_key_parameter());
                }

                for (status, response) in &mut op.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        response.content.clear();
                        response
                            .content
                            .insert(PROBLEM_JSON.to_owned(), problem_content());
                    }
                    if command && status.starts_with('2') {
                        let mut replayed = Header::new(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some(["true"])),
                        );
                        replayed.description = Some(
                            "`true` when this is the kept answer to an earlier request with \
                             the same Idempotency-Key"
                                .to_owned(),
                        );
                        response
                            .headers
                            .insert("Idempotent-Replayed".to_owned(), replayed);
                    }
                    if status == "429" {
                        response.headers.insert(
                            "Retry-After".to_owned(),
                            integer_header("Seconds until a retry may succeed"),
                        );
                    }
                }
            }
        }
        // The text kinds, wherever a schema names one (components, bodies, parameters).
        if let Ok(mut value) = serde_json::to_value(&*openapi) {
            expand_text_kinds(&mut value);
            if let Ok(expanded) = serde_json::from_value(value) {
                *openapi = expanded;
            }
        }
    }
}

/// The platform's own operations; [`Document`] merges the contexts' and applies the
/// conventions.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trellis API",
        version = "1",
        description = "Career and learning development, event-sourced.\n\n\
            Every error is `application/problem+json` (RFC 9457). Every request may answer \
            503 (deadline, connection cap, a dependency down); a method a path does not have \
            answers 405; an unknown path 404. Commands take an optional `Idempotency-Key` \
            header. Command answers carry the stream version they produced: pass it as \
            `?min_version=` to a read to see your write."
    ),
    paths(
        routes::health::healthz,
        routes::health::ready,
        routes::openapi_document,
        routes::audit::stream,
        routes::audit::events,
        routes::audit::verify,
        routes::audit::export,
        routes::audit::correlation,
        routes::replays::start,
        routes::replays::status,
        routes::subjects::export_user,
        routes::subjects::export_me,
        routes::events::events,
        routes::events::websocket,
        routes::ops::metrics,
        routes::ops::projections,
        routes::ops::parked,
        routes::ops::retry_parked,
    ),
    components(schemas(Problem, FieldProblem, LiveEvent))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
