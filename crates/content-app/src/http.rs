//! The content context over HTTP: uploads (multipart, streamed), versions, archive,
//! re-atomization, reads, lists and search. Parse with the edge kit, call [`Library`] and
//! [`crate::search`], map their errors.

use std::sync::Arc;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trellis_content::ContentMetadata;
use trellis_content::content::ContentError;
use trellis_edge::consistency::MinVersion;
use trellis_edge::error::{FieldError, from_use_case};
use trellis_edge::extract::{ApiPath, ApiQuery, Caller, RequestId};
use trellis_edge::policy;
use trellis_edge::schema::{Accepted, Processing};
use trellis_edge::{ApiError, Edge};
use uuid::Uuid;

use crate::library::{AtomRow, ContentRow};
use crate::search::{Hit, Search};
use crate::use_cases::{FileError, Library, LibraryError};

/// What the content handlers reach.
#[derive(Clone)]
pub struct ContentHttp {
    edge: Edge,
    library: Library,
    search: Arc<Search>,
}

impl FromRef<ContentHttp> for Edge {
    fn from_ref(state: &ContentHttp) -> Self {
        state.edge.clone()
    }
}

/// The context's routes over `edge`.
///
/// # Panics
/// When the content settings are invalid or the storage URL cannot be opened: the process
/// must not start half-configured.
pub fn router(edge: &Edge) -> Router {
    let settings = crate::settings::ContentSettings::from_env()
        .unwrap_or_else(|e| panic!("content settings: {e}"));
    let storage = crate::storage::ContentStorage::from_settings(&settings)
        .unwrap_or_else(|e| panic!("content storage: {e}"));
    let library = Library {
        commands: edge.commands.clone(),
        storage,
        settings: Arc::new(settings),
    };
    let search = Arc::new(Search::new(edge.pool.clone(), &edge.searchables));
    Router::new()
        .route("/v1/contents", post(upload).get(list))
        .route("/v1/contents/{id}", get(read))
        .route("/v1/contents/{id}/atoms", get(atoms))
        .route("/v1/contents/{id}/versions", post(upload_version))
        .route("/v1/contents/{id}/archive", post(archive))
        .route("/v1/contents/{id}/reatomize", post(reatomize))
        .route("/v1/search", get(search_handler))
        // Uploads stream to storage under TRELLIS_UPLOAD_MAX_BYTES (checked while streaming),
        // not the edge's 1 MiB JSON limit.
        .layer(DefaultBodyLimit::disable())
        .with_state(ContentHttp {
            edge: edge.clone(),
            library,
            search,
        })
}

/// The context's operations, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    upload,
    upload_version,
    list,
    read,
    atoms,
    archive,
    reatomize,
    search_handler
))]
pub struct ContentApi;

fn content_error(error: ContentError) -> ApiError {
    match error {
        ContentError::BadTitle => ApiError::field("title", error.to_string()),
        ContentError::BadLanguage => ApiError::field("metadata.language", error.to_string()),
        ContentError::TooManyTags => ApiError::field("metadata.tags", error.to_string()),
        ContentError::NotFound => ApiError::NotFound,
        ContentError::AlreadyExists | ContentError::Archived | ContentError::AlreadyProcessing => {
            ApiError::Conflict(error.to_string())
        }
        ContentError::Text(e) => e.into(),
        other => ApiError::internal(other),
    }
}

fn mapped(error: LibraryError) -> ApiError {
    from_use_case(error, content_error)
}

fn file_error(error: FileError) -> ApiError {
    match error {
        FileError::TooLarge { .. } => {
            ApiError::FileTooLarge(FieldError::new("file", error.to_string()))
        }
        FileError::Empty => ApiError::field("file", error.to_string()),
        FileError::Type(e) => ApiError::UnsupportedFile(FieldError::new("file", e.to_string())),
        FileError::Stream(why) => ApiError::BadRequest(format!("the upload broke off: {why}")),
        FileError::Storage(e) => ApiError::Unavailable(Box::new(e)),
    }
}

/// 202: accepted, the atomizer answers asynchronously.
fn processing(written: trellis_runtime::Written) -> (StatusCode, Json<Processing>) {
    (
        StatusCode::ACCEPTED,
        Json(Processing {
            id: written.id,
            status: "processing",
            version: written.version,
        }),
    )
}

fn required(field: &str) -> ApiError {
    ApiError::field(field, "is required")
}

/// The multipart form of an upload (documentation only: the handler streams the parts).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct UploadForm {
    /// The document: plain text, Markdown, HTML, PDF, DOCX, reStructuredText, WebVTT or SRT,
    /// recognised from its bytes (a name or `Content-Type` that disagrees is refused, 415).
    #[schema(value_type = String, format = Binary, min_length = 1)]
    file: Vec<u8>,
    /// 1 to 300 characters, one line.
    #[schema(min_length = 1, max_length = 300, format = "trellis:nonblank-line")]
    title: String,
    /// What the uploader says about it (a JSON part).
    metadata: Option<MetadataForm>,
}

/// An upload's `metadata` part.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetadataForm {
    /// Who wrote it.
    #[serde(default)]
    #[schema(max_length = 200, format = "trellis:line")]
    author: Option<String>,
    /// Its subject.
    #[serde(default)]
    #[schema(max_length = 200, format = "trellis:line")]
    subject: Option<String>,
    /// A BCP 47 language tag such as `en` or `pt-BR`.
    #[serde(default)]
    #[schema(max_length = 35, pattern = "^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$")]
    language: Option<String>,
    /// Tags (each kept once).
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<String>)]
    tags: Vec<String>,
}

impl From<MetadataForm> for ContentMetadata {
    fn from(form: MetadataForm) -> Self {
        Self {
            author: form.author,
            subject: form.subject,
            language: form.language,
            tags: form.tags,
        }
    }
}

/// The multipart form of a new version (documentation only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct VersionForm {
    /// The new file (same formats as the upload).
    #[schema(value_type = String, format = Binary, min_length = 1)]
    file: Vec<u8>,
}

/// The parts of an upload form.
#[derive(Default)]
struct Form {
    file: Option<trellis_content::StoredFile>,
    title: Option<String>,
    metadata: Option<ContentMetadata>,
}

/// Reads a multipart form, storing the `file` part as it streams in. `fields` names the text
/// fields this form takes.
async fn read_form(
    library: &Library,
    multipart: Result<Multipart, MultipartRejection>,
    fields: &[&str],
) -> Result<Form, ApiError> {
    let mut multipart = multipart
        .map_err(|e| ApiError::BadRequest(format!("expected a multipart/form-data body: {e}")))?;
    let mut form = Form::default();
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("malformed multipart body: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" if form.file.is_none() => {
                let filename = field.file_name().map(str::to_owned);
                let declared = field.content_type().map(str::to_owned);
                let chunks = futures::stream::unfold(field, |mut field| async move {
                    match field.chunk().await {
                        Ok(Some(bytes)) => Some((Ok(bytes), field)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), field)),
                    }
                });
                let stored = library
                    .store_file(Box::pin(chunks), filename.as_deref(), declared.as_deref())
                    .await
                    .map_err(file_error)?;
                form.file = Some(stored);
            }
            "title" if fields.contains(&"title") && form.title.is_none() => {
                let text = field.text().await.map_err(malformed)?;
                if text.len() > 4096 {
                    return Err(ApiError::field("title", "must be at most 300 characters"));
                }
                form.title = Some(text);
            }
            "metadata" if fields.contains(&"metadata") && form.metadata.is_none() => {
                let text = field.text().await.map_err(malformed)?;
                if text.len() > 64 * 1024 {
                    return Err(ApiError::field(
                        "metadata",
                        "must be at most 64 KiB of JSON",
                    ));
                }
                let metadata: Option<MetadataForm> = serde_json::from_str(&text).map_err(|e| {
                    ApiError::field(
                        "metadata",
                        format!("must be a JSON object {{author, subject, language, tags}}: {e}"),
                    )
                })?;
                form.metadata = metadata.map(Into::into);
            }
            "" => return Err(ApiError::BadRequest("a form part without a name".into())),
            other => {
                return Err(ApiError::field(
                    other,
                    "unknown or repeated form field".to_owned(),
                ));
            }
        }
    }
    Ok(form)
}

/// Upload a document (admin, manager, instructor): multipart `file`, `title`, optional
/// `metadata`. The file is streamed to storage; 202 once its bytes are stored and the upload
/// is recorded. The atomizer answers asynchronously: read the content back with
/// `GET /v1/contents/{id}?min_version=2`.
#[utoipa::path(post, path = "/v1/contents", tag = "content", operation_id = "uploadContent",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored and recorded; atomization follows", body = Processing),
        (status = 400, description = "Not a multipart/form-data body, or it broke off"),
        (status = 403, description = "Not an admin, manager or instructor"),
        (status = 413, description = "The file is over TRELLIS_UPLOAD_MAX_BYTES (`errors` names `file`)"),
        (status = 415, description = "The file's type is not accepted, or its bytes contradict its name or Content-Type (`errors` names `file`)"),
        (status = 422, description = "Missing or invalid fields: an empty `file`, `title`, `metadata`"),
        (status = 429, description = "Write budget spent; see Retry-After"),
    ))]
pub(crate) async fn upload(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state.edge)?;
    let actor = caller.actor(&request);
    // Refused before a byte is read or stored.
    policy::require_any(&caller, crate::use_cases::UPLOADERS)?;
    let form = read_form(&state.library, multipart, &["title", "metadata"]).await?;
    let file = form.file.ok_or_else(|| required("file"))?;
    let title = form.title.ok_or_else(|| required("title"))?;
    let metadata = form
        .metadata
        .unwrap_or_default()
        .normalized()
        .map_err(content_error)?;
    let written = state
        .library
        .upload(&actor, title, metadata, file)
        .await
        .map_err(mapped)?;
    Ok(processing(written))
}

/// Upload a new version of a content's file (multipart `file`): atomized afresh, history
/// kept in the log.
#[utoipa::path(post, path = "/v1/contents/{id}/versions", tag = "content",
    operation_id = "uploadContentVersion",
    params(("id" = Uuid, Path, description = "Content id")),
    request_body(content = VersionForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stored and recorded; atomization follows", body = Processing),
        (status = 400, description = "Not a multipart/form-data body, or it broke off"),
        (status = 403, description = "Not an admin, manager or instructor"),
        (status = 409, description = "Archived, or the previous version is still being atomized"),
        (status = 413, description = "The file is over TRELLIS_UPLOAD_MAX_BYTES"),
        (status = 415, description = "The file's type is not accepted or contradicts its name"),
        (status = 422, description = "A missing or empty `file`"),
        (status = 429, description = "Write budget spent; see Retry-After"),
    ))]
pub(crate) async fn upload_version(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state.edge)?;
    let actor = caller.actor(&request);
    // Existence (404 for another organization's id) and role, before any byte is stored.
    let target = state
        .library
        .version_target(&actor, id)
        .await
        .map_err(mapped)?;
    let form = read_form(&state.library, multipart, &[]).await?;
    let file = form.file.ok_or_else(|| required("file"))?;
    let written = state
        .library
        .upload_version(&actor, target, file)
        .await
        .map_err(mapped)?;
    Ok(processing(written))
}

/// Archive a content (admin, or its uploader): it leaves lists and search.
#[utoipa::path(post, path = "/v1/contents/{id}/archive", tag = "content",
    operation_id = "archiveContent",
    params(("id" = Uuid, Path, description = "Content id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Archived", body = Accepted),
        (status = 403, description = "Neither an admin nor the uploader"),
    ))]
pub(crate) async fn archive(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    caller.spend_write(&state.edge)?;
    let written = state
        .library
        .archive(&caller.actor(&request), id)
        .await
        .map_err(mapped)?;
    Ok(Json(Accepted {
        id: written.id,
        version: written.version,
    }))
}

/// Atomize a content's current version again (admin), e.g. after an atomizer upgrade.
#[utoipa::path(post, path = "/v1/contents/{id}/reatomize", tag = "content",
    operation_id = "reatomizeContent",
    params(("id" = Uuid, Path, description = "Content id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Atomization requested", body = Processing),
        (status = 403, description = "Not an admin"),
        (status = 409, description = "Archived, or still being atomized"),
    ))]
pub(crate) async fn reatomize(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Processing>), ApiError> {
    caller.spend_write(&state.edge)?;
    let written = state
        .library
        .reatomize(&caller.actor(&request), id)
        .await
        .map_err(mapped)?;
    Ok(processing(written))
}

/// A content (`GET /v1/contents/{id}`).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ContentView {
    /// Archived contents are out of lists and search.
    archived: bool,
    /// Atoms of the current answer.
    #[schema(minimum = 0)]
    atoms_count: i32,
    /// The atomizer version of the current answer.
    atomizer_version: Option<i32>,
    /// The current file version (1, 2, …).
    content_version: i32,
    /// Uploaded.
    created_at: DateTime<Utc>,
    /// Why atomization failed (status `failed`).
    error: Option<String>,
    /// The file's name as uploaded.
    filename: Option<String>,
    /// Id.
    id: Uuid,
    /// The sniffed type: `plain_text`, `markdown`, `html`, `pdf`, `docx`,
    /// `restructuredtext`, `webvtt`, `srt`.
    media_type: String,
    /// `{author, subject, language, tags}`.
    #[schema(value_type = Object)]
    metadata: serde_json::Value,
    /// SHA-256 of the file.
    sha256: String,
    /// Bytes.
    size_bytes: i64,
    /// `processing`, `completed` or `failed`.
    #[schema(pattern = "^(uploaded|processing|completed|failed)$")]
    status: String,
    /// Title.
    title: String,
    /// Last change.
    updated_at: DateTime<Utc>,
    /// Who uploaded it.
    uploaded_by: Uuid,
    /// Stream version.
    version: i64,
}

impl From<ContentRow> for ContentView {
    fn from(row: ContentRow) -> Self {
        Self {
            archived: row.archived,
            atoms_count: row.atoms_count,
            atomizer_version: row.atomizer_version,
            content_version: row.content_version,
            created_at: row.created_at,
            error: row.error,
            filename: row.filename,
            id: row.content_id,
            media_type: row.media_type,
            metadata: row.metadata,
            sha256: row.sha256,
            size_bytes: row.size_bytes,
            status: row.status,
            title: row.title,
            updated_at: row.updated_at,
            uploaded_by: row.uploaded_by,
            version: row.version,
        }
    }
}

/// Read a content (anyone of its organization). `?min_version=2` waits for the atomizer's
/// answer.
#[utoipa::path(get, path = "/v1/contents/{id}", tag = "content", operation_id = "getContent",
    params(("id" = Uuid, Path, description = "Content id"),
           ("min_version" = Option<u64>, Query, minimum = 0,
               description = "Wait (bounded) until this stream version is visible")),
    security(("bearer" = [])),
    responses((status = 200, description = "The content and its status", body = ContentView)))]
pub(crate) async fn read(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(consistency): ApiQuery<MinVersion>,
) -> Result<Json<ContentView>, ApiError> {
    let row = state
        .library
        .get(&caller.actor(&request), id, consistency.min_version)
        .await
        .map_err(mapped)?;
    Ok(Json(row.into()))
}

/// An atom (`GET /v1/contents/{id}/atoms`).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AtomView {
    /// `[{phrase, skill_ids}]`: keyphrases and the catalog skills they link to.
    #[schema(value_type = Vec<Object>)]
    concepts: serde_json::Value,
    /// 1 (introductory) to 5 (expert).
    #[schema(minimum = 1, maximum = 5)]
    difficulty: i16,
    /// Minutes to study it.
    #[schema(minimum = 1)]
    estimated_minutes: i32,
    /// Id.
    id: Uuid,
    /// One sentence with a Bloom verb.
    objective: String,
    /// Atoms to study first (earlier in this content, or in earlier contents).
    prerequisites: Vec<Uuid>,
    /// `{score, self_contained, length_in_range, has_objective, concept_density}`, each 0–1.
    #[schema(value_type = Object)]
    quality: serde_json::Value,
    /// Position in the content, from 1.
    sequence: i32,
    /// The text.
    text: String,
    /// Title.
    title: String,
}

impl From<AtomRow> for AtomView {
    fn from(row: AtomRow) -> Self {
        Self {
            concepts: row.concepts,
            difficulty: row.difficulty,
            estimated_minutes: row.estimated_minutes,
            id: row.atom_id,
            objective: row.objective,
            prerequisites: row.prerequisites,
            quality: row.quality,
            sequence: row.sequence,
            text: row.body,
            title: row.title,
        }
    }
}

/// The atoms of a content, in order (empty until it is completed).
#[utoipa::path(get, path = "/v1/contents/{id}/atoms", tag = "content",
    operation_id = "listContentAtoms",
    params(("id" = Uuid, Path, description = "Content id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Atoms in order", body = Vec<AtomView>)))]
pub(crate) async fn atoms(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<AtomView>>, ApiError> {
    let rows = state
        .library
        .atoms(&caller.actor(&request), id)
        .await
        .map_err(mapped)?;
    Ok(Json(rows.into_iter().map(AtomView::from).collect()))
}

/// `GET /v1/contents` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Words of the title, subject or tags.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Also archived contents.
    #[serde(default)]
    include_archived: bool,
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// The organization's contents, newest first.
#[utoipa::path(get, path = "/v1/contents", tag = "content", operation_id = "listContents",
    params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "Contents", body = Vec<ContentView>)))]
pub(crate) async fn list(
    State(state): State<ContentHttp>,
    caller: Caller,
    request: RequestId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ContentView>>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 100"));
    }
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let rows = state
        .library
        .list(
            &caller.actor(&request),
            query.q.as_deref(),
            query.include_archived,
            limit,
        )
        .await
        .map_err(mapped)?;
    Ok(Json(rows.into_iter().map(ContentView::from).collect()))
}

/// `GET /v1/search` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// What to find: words, "quoted phrases", -excluded words (web search syntax).
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// `atom`, `content`, `resource` or `skill` (default all).
    #[param(pattern = "^(atom|content|resource|skill)$")]
    kind: Option<String>,
    /// 1 to 50 (default 10).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<usize>,
}

/// A search hit.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct HitView {
    /// The matching passage, matched terms in `<mark>…</mark>` (the rest HTML-escaped).
    highlight: String,
    /// The hit's id.
    id: Uuid,
    /// `atom`, `content`, `resource` or `skill`.
    kind: String,
    /// Fused rank score, higher first.
    score: f64,
    /// Title.
    title: String,
    /// For an atom, its content.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    content_id: Option<Uuid>,
}

impl From<Hit> for HitView {
    fn from(hit: Hit) -> Self {
        Self {
            highlight: hit.highlight,
            id: hit.id,
            kind: hit.kind.name().to_owned(),
            score: hit.score,
            title: hit.title,
            content_id: hit.content_id,
        }
    }
}

/// Search the organization's atoms, contents, resources and skills: full text (PostgreSQL
/// `websearch_to_tsquery`, `ts_rank_cd`; skills also by part of a name or alias) and MiniLM
/// vector similarity, fused by reciprocal rank. Archived contents and their atoms are never
/// found.
#[utoipa::path(get, path = "/v1/search", tag = "content", operation_id = "searchContent",
    params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, description = "Hits, best first", body = Vec<HitView>)))]
pub(crate) async fn search_handler(
    State(state): State<ContentHttp>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<HitView>>, ApiError> {
    let q = query.q.trim();
    if q.is_empty() || q.chars().count() > 200 {
        return Err(ApiError::field("q", "must be 1 to 200 characters"));
    }
    let limit = query.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 50"));
    }
    let kinds = match query.kind.as_deref() {
        None => state.search.kinds(),
        Some(name) => vec![state.search.kind(name).ok_or_else(|| {
            let names: Vec<&str> = state.search.kinds().iter().map(|k| k.name()).collect();
            ApiError::field("kind", format!("must be one of {}", names.join(", ")))
        })?],
    };
    caller.spend_expensive(&state.edge)?;
    let hits = state
        .search
        .search(caller.organization_id, q, &kinds, limit)
        .await?;
    Ok(Json(hits.into_iter().map(HitView::from).collect()))
}
