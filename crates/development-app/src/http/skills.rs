//! `POST /v1/skills`, `GET /v1/skills?q=&limit=`, `POST /v1/skills/import`.

use crate::catalog::{self, MAX_SKILLS_PER_ORGANIZATION, SkillRow};
use crate::{ImportError, import_esco_skills};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use trellis_development::esco::parse_skill_line;
use trellis_development::skill::{Skill, SkillCommand, SkillError, esco_skill_id};
use trellis_identity::Role;
use uuid::Uuid;

use super::DevelopmentHttp;
use trellis_edge::error::{ApiError, from_handle};
use trellis_edge::extract::{ApiJson, ApiQuery, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::Accepted;

pub(super) fn router() -> Router<DevelopmentHttp> {
    Router::new()
        .route("/v1/skills", post(define).get(search))
        .route("/v1/skills/import", post(import))
}

/// Most non-empty lines one import request may carry (split bigger files).
pub(crate) const MAX_IMPORT_LINES: usize = 2_000;

/// Lines of an import charged as one unit of the expensive budget (rounded up).
pub(crate) const IMPORT_LINES_PER_UNIT: usize = 100;

fn catalog_full() -> ApiError {
    ApiError::Conflict(format!(
        "the organization's catalog is full: it may hold at most {MAX_SKILLS_PER_ORGANIZATION} \
         skills"
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefineSkill {
    /// 1 to 200 characters (trimmed).
    #[schema(min_length = 1, max_length = 200, format = "trellis:nonblank-line")]
    name: String,
    /// At most 5,000 characters.
    #[serde(default)]
    #[schema(max_length = 5000, format = "trellis:text")]
    description: String,
    /// Other names: at most 50, each 1 to 200 characters (trimmed).
    #[serde(default)]
    #[schema(max_items = 50, inline, value_type = Vec<AliasText>)]
    aliases: Vec<String>,
    /// The ESCO concept URI (an absolute http(s) URL of at most 500 characters): the skill
    /// then gets the id an ESCO import gives it.
    #[serde(default)]
    #[schema(max_length = 500, format = "trellis:web-url")]
    esco_uri: Option<String>,
}

/// An alias of a skill in the document: one non-blank line of 1 to
/// [`SKILL_ALIAS_MAX`](trellis_development::limits::SKILL_ALIAS_MAX) characters (documentation
/// only; the request holds plain strings).
pub(crate) struct AliasText;

impl utoipa::PartialSchema for AliasText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(trellis_development::limits::SKILL_ALIAS_MAX))
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "trellis:nonblank-line".into(),
            )))
            .into()
    }
}

impl utoipa::ToSchema for AliasText {}

/// A skill of the catalog.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SkillView {
    /// Skill id.
    id: Uuid,
    /// Name.
    name: String,
    /// Description (may be empty).
    description: String,
    /// Other names.
    aliases: Vec<String>,
    /// ESCO concept URI, for skills from ESCO.
    esco_uri: Option<String>,
}

impl From<SkillRow> for SkillView {
    fn from(row: SkillRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            aliases: row.aliases,
            esco_uri: row.esco_uri,
        }
    }
}

/// What an import did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ImportReport {
    /// Skills defined now.
    imported: usize,
    /// Lines naming skills already in the catalog.
    skipped: usize,
}

fn skill_error(error: SkillError) -> ApiError {
    match error {
        SkillError::AlreadyDefined => ApiError::Conflict("the skill already exists".into()),
        SkillError::BadName => ApiError::field("name", "must be 1 to 200 characters"),
        SkillError::BadAliases => {
            ApiError::field("aliases", "at most 50, each 1 to 200 characters")
        }
        SkillError::Text(e) => e.into(),
    }
}

/// Add a skill to the organization's catalog (admin).
#[utoipa::path(post, path = "/v1/skills", tag = "development", operation_id = "defineSkill",
    request_body = DefineSkill, security(("bearer" = [])),
    responses(
        (status = 201, description = "Defined", body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "Already defined (the same ESCO URI), or the catalog is full"),
    ))]
pub(crate) async fn define(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    ApiJson(body): ApiJson<DefineSkill>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.spend_write(&state.edge)?;
    policy::require_any(&caller, &[Role::Admin])?;
    if catalog::count_skills(&state.edge.pool, caller.organization_id).await?
        >= MAX_SKILLS_PER_ORGANIZATION
    {
        return Err(catalog_full());
    }
    // An ESCO skill gets the same id whether defined by hand or imported.
    let id = match &body.esco_uri {
        Some(uri) => esco_skill_id(caller.organization_id, uri),
        None => Uuid::now_v7(),
    };
    let command = SkillCommand::Define {
        name: body.name,
        description: body.description,
        aliases: body.aliases,
        esco_uri: body.esco_uri,
    };
    let version = state
        .edge
        .commands
        .run::<Skill, catalog::DevelopmentCatalog>(id, &command, &request.metadata(Some(&caller)))
        .await
        .map_err(|e| from_handle(e, skill_error))?
        .version;
    Ok((StatusCode::CREATED, Json(Accepted { id, version })))
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    limit: Option<i64>,
}

/// Search the catalog by name and alias (any member).
#[utoipa::path(get, path = "/v1/skills", tag = "development", operation_id = "searchSkills",
    security(("bearer" = [])),
    params(
        ("q" = Option<String>, Query, max_length = 200,
            description = "Text to find in names and aliases (at most 200 characters); none lists by name"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
    ),
    responses(
        (status = 200, description = "Ranked skills: exact name, name prefix, name substring, alias substring", body = Vec<SkillView>),
        (status = 422, description = "Bad limit or q"),
    ))]
pub(crate) async fn search(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<SkillView>>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 100"));
    }
    let q = query.q.unwrap_or_default();
    if q.chars().count() > 200 || q.contains('\0') {
        return Err(ApiError::field(
            "q",
            "must be at most 200 characters, without NUL",
        ));
    }
    let rows = catalog::search_skills(&state.edge.pool, caller.organization_id, &q, limit).await?;
    Ok(Json(rows.into_iter().map(SkillView::from).collect()))
}

/// Import ESCO skills (JSON Lines, the format of `data/esco/skills.jsonl`), idempotently (admin).
///
/// At most 2,000 lines per request; each started 100 lines spend one unit of the caller's
/// expensive budget; the organization's catalog holds at most 20,000 skills.
#[utoipa::path(post, path = "/v1/skills/import", tag = "development", operation_id = "importEscoSkills",
    security(("bearer" = [])),
    request_body(content = Option<String>, content_type = "application/x-ndjson",
        description = "JSON Lines: one ESCO skill (`uri`, `label`, `alt_labels`, `description`) per line; blank lines are skipped (an empty body imports nothing)"),
    responses(
        (status = 202, description = "Imported", body = ImportReport),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "The catalog would pass its limit"),
        (status = 422, description = "A line is not an ESCO skill (`body[line N]`), or too many lines"),
        (status = 429, description = "Write or import budget spent; see Retry-After"),
    ))]
pub(crate) async fn import(
    State(state): State<DevelopmentHttp>,
    caller: Caller,
    request: RequestId,
    body: String,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    caller.spend_write(&state.edge)?;
    policy::require_any(&caller, &[Role::Admin])?;
    let lines = body.lines().filter(|l| !l.trim().is_empty()).count();
    if lines > MAX_IMPORT_LINES {
        return Err(ApiError::field(
            "body",
            format!(
                "has {lines} lines; an import takes at most {MAX_IMPORT_LINES} (split the file)"
            ),
        ));
    }
    // The work grows with the size: charge it so (one unit per started 100 lines).
    let units = lines.div_ceil(IMPORT_LINES_PER_UNIT).max(1);
    caller.spend_expensive_units(&state.edge, u32::try_from(units).unwrap_or(u32::MAX))?;
    check_catalog_room(&state, &caller, &body).await?;
    let metadata = request.metadata(Some(&caller));
    let report = import_esco_skills(
        state.edge.commands.handler(),
        caller.organization_id,
        &metadata,
        &body,
    )
    .await
    .map_err(|e| match e {
        ImportError::Line(line) => {
            ApiError::field(&format!("body[line {}]", line.line), line.reason)
        }
        ImportError::Refused { uri, source } => {
            ApiError::field("body", format!("skill {uri}: {source}"))
        }
        ImportError::Store(e) => from_handle(e, skill_error),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportReport {
            imported: report.imported,
            skipped: report.skipped,
        }),
    ))
}

/// Refuses an import that would take the catalog past [`MAX_SKILLS_PER_ORGANIZATION`]:
/// counts the lines naming skills not in the catalog yet (a re-import adds nothing, so it
/// always passes). Unparsable lines are left to the import, which names them.
async fn check_catalog_room(
    state: &DevelopmentHttp,
    caller: &Caller,
    body: &str,
) -> Result<(), ApiError> {
    let mut ids: Vec<Uuid> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| parse_skill_line(i + 1, l).ok())
        .map(|(uri, _)| esco_skill_id(caller.organization_id, &uri))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let known = catalog::known_skills(&state.edge.pool, caller.organization_id, &ids).await?;
    let new = ids.len().saturating_sub(known.len());
    if new == 0 {
        return Ok(());
    }
    let count = catalog::count_skills(&state.edge.pool, caller.organization_id).await?;
    if count + new > MAX_SKILLS_PER_ORGANIZATION {
        return Err(ApiError::Conflict(format!(
            "the import would take the organization's catalog to {} skills; it may hold at \
             most {MAX_SKILLS_PER_ORGANIZATION}",
            count + new
        )));
    }
    Ok(())
}
