//! Context modules (ADR 0011): the one place a bounded context is registered.
//!
//! A [`ContextModule`] says, once, what the rest of Trellis needs to know about a context:
//! its name (and so its topic, `trellis.<name>`), its aggregates (stream kinds taken from each
//! aggregate's `KIND`, event types derived from the event enums, an audit fold per
//! aggregate), its projections, its upcasters, which users its events concern (live
//! updates) and which event fields hold personal data. [`Modules`] is the list the process
//! runs with; serve, topic routing, the test support, audit and live updates all read it, so
//! a context is never half registered. A stream kind no module declares is an error that
//! names it ([`UnknownKind`]), never a silent default topic.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use serde::Serialize;
use trellis_kernel::{Aggregate, DomainEvent, PersonalData, RecordedEvent, UpcastError, Upcasters};
use trellis_runtime::projection::Projection;
use uuid::Uuid;

/// A stream kind that no module declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no context module declares the stream kind `{0}`")]
pub struct UnknownKind(pub String);

/// Why a stream could not be folded for an audit.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// A stored event could not be upcast.
    #[error("cannot upcast a stored event")]
    Upcast(#[from] UpcastError),
    /// A stored event does not decode into its aggregate's event type.
    #[error("stored event {event_type} does not decode: {reason}")]
    Decode {
        /// The event type.
        event_type: String,
        /// Why.
        reason: String,
    },
    /// The state does not serialize.
    #[error("state does not serialize")]
    Serialize(#[from] serde_json::Error),
}

type FoldFn = fn(&[RecordedEvent]) -> Result<serde_json::Value, FoldError>;

/// One aggregate of a context, as the platform sees it.
#[derive(Clone)]
pub struct AggregateInfo {
    /// The stream kind (`A::KIND`).
    pub kind: &'static str,
    /// Every event type its streams hold (the event enum's variants).
    pub event_types: &'static [&'static str],
    fold: FoldFn,
}

impl std::fmt::Debug for AggregateInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateInfo")
            .field("kind", &self.kind)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

fn fold_with<A: Aggregate>(events: &[RecordedEvent]) -> Result<serde_json::Value, FoldError>
where
    A::State: Serialize,
{
    let mut state = A::State::default();
    for event in events {
        let decoded =
            A::Event::from_payload(&event.event_type, event.payload.clone()).map_err(|e| {
                FoldError::Decode {
                    event_type: event.event_type.clone(),
                    reason: e.to_string(),
                }
            })?;
        A::evolve(&mut state, &decoded);
    }
    Ok(serde_json::to_value(state)?)
}

impl AggregateInfo {
    /// The description of aggregate `A`.
    pub fn of<A: Aggregate>() -> Self
    where
        A::State: Serialize,
    {
        Self {
            kind: A::KIND,
            event_types: <A::Event as strum::VariantNames>::VARIANTS,
            fold: fold_with::<A>,
        }
    }

    /// The state after `events` (already upcast, in stream order).
    ///
    /// # Errors
    /// [`FoldError`] when an event does not decode.
    pub fn fold(&self, events: &[RecordedEvent]) -> Result<serde_json::Value, FoldError> {
        (self.fold)(events)
    }
}

/// A read-model table holding rows about a user, found by one of its columns: what the right
/// of access (`GET /v1/users/{id}/export`, ADR 0017) returns beside the user's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectRows {
    /// `schema.table`.
    pub table: &'static str,
    /// The column holding the user's id.
    pub column: &'static str,
}

/// Which users an event concerns beyond its actor (live updates, `GET /v1/me/events`).
pub type Owners = fn(&RecordedEvent) -> Vec<Uuid>;

fn no_owners(_: &RecordedEvent) -> Vec<Uuid> {
    Vec::new()
}

/// A context's HTTP slice: its routes over the edge kit's state, and their OpenAPI
/// operations (merged into one document with the platform's).
#[derive(Clone, Copy)]
pub struct HttpSlice {
    /// The context's routes, with their state applied.
    pub router: fn(&trellis_edge::Edge) -> axum::Router,
    /// The context's operations and schemas.
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

/// What a reactive service starts with.
#[derive(Clone)]
pub struct ServiceDeps {
    /// The event store (services fold and append through it).
    pub store: Arc<dyn trellis_kernel::EventStore>,
    /// The database pool.
    pub pool: sqlx::PgPool,
    /// Resolves when the process drains.
    pub shutdown: Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>,
    /// The process's settings by name: the environment, then `TRELLIS_CONFIG`'s file (tests
    /// pass their own).
    pub settings: SettingsLookup,
}

/// A process's settings by name.
pub type SettingsLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A started service: the handler its consumer runs, and its background tasks.
pub struct StartedService {
    /// Handles the events of the contexts it reads, as a consumer-group member.
    pub handler: Arc<dyn trellis_runtime::EventHandler>,
    /// Tasks beside the consumer (e.g. a follower folding the store); they end on shutdown.
    pub tasks: Vec<BoxFuture<'static, anyhow::Result<()>>>,
}

/// A reactive service of a context: answers events with commands. Its name is the role that
/// runs it (`trellis serve --roles <name>`).
#[derive(Clone, Copy)]
pub struct Service {
    /// The role name.
    pub name: &'static str,
    /// The contexts (topics) it reads.
    pub reads: &'static [&'static str],
    /// Starts it (loads models, folds state).
    pub start: fn(ServiceDeps) -> BoxFuture<'static, anyhow::Result<StartedService>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// One bounded context.
pub struct ContextModule {
    /// The context's name: its topic is `trellis.<name>`, its schemas `events/<name>/`.
    pub name: &'static str,
    /// Its aggregates.
    pub aggregates: Vec<AggregateInfo>,
    /// Its projections (read models).
    pub projections: Vec<Arc<dyn Projection>>,
    /// Its upcast steps.
    pub upcasters: Upcasters,
    /// Its personal data.
    pub personal_data: Vec<PersonalData>,
    /// Its read-model tables that hold rows about a user.
    pub subject_rows: Vec<SubjectRows>,
    /// Which users its events concern.
    pub owners: Owners,
    /// Its HTTP slice, if it has routes.
    pub http: Option<HttpSlice>,
    /// Its reactive services.
    pub services: Vec<Service>,
    /// Whether it answers who is signed in (the identity context does).
    pub sessions: Option<SessionsFactory>,
    /// Its own tables' migrations (beside its projections' schemas).
    pub migrations: Option<fn() -> trellis_store_postgres::migrations::Owned>,
    /// What it lets `GET /v1/search` find.
    pub searchables: Vec<SearchableFactory>,
}

/// Builds one kind of search hits over a pool.
pub type SearchableFactory = fn(sqlx::PgPool) -> Arc<dyn trellis_edge::Searchable>;

/// Builds the edge's view of who is signed in over a pool.
pub type SessionsFactory = fn(sqlx::PgPool) -> Arc<dyn trellis_edge::Sessions>;

impl ContextModule {
    /// An empty module named `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            aggregates: Vec::new(),
            projections: Vec::new(),
            upcasters: Upcasters::new(),
            personal_data: Vec::new(),
            subject_rows: Vec::new(),
            owners: no_owners,
            http: None,
            services: Vec::new(),
            sessions: None,
            migrations: None,
            searchables: Vec::new(),
        }
    }

    /// Declares aggregate `A`.
    #[must_use]
    pub fn aggregate<A: Aggregate>(mut self) -> Self
    where
        A::State: Serialize,
    {
        self.aggregates.push(AggregateInfo::of::<A>());
        self
    }

    /// Adds a projection.
    #[must_use]
    pub fn projection(mut self, projection: impl Projection) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Adds upcast steps.
    #[must_use]
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = self.upcasters.merge(upcasters);
        self
    }

    /// Declares personal data: which fields of which event types hold it and whose it is, as
    /// the domain crate lists them (the only place event type names are written). The
    /// process-wide cipher encrypts exactly these (ADR 0017).
    #[must_use]
    pub fn personal_data(mut self, declared: &'static [PersonalData]) -> Self {
        self.personal_data.extend_from_slice(declared);
        self
    }

    /// Declares a read-model table (`schema.table`) whose rows about a user are found by
    /// `column`, for the right of access.
    #[must_use]
    pub fn subject_rows(mut self, table: &'static str, column: &'static str) -> Self {
        self.subject_rows.push(SubjectRows { table, column });
        self
    }

    /// Declares the context's HTTP slice.
    #[must_use]
    pub fn http(
        mut self,
        router: fn(&trellis_edge::Edge) -> axum::Router,
        openapi: fn() -> utoipa::openapi::OpenApi,
    ) -> Self {
        self.http = Some(HttpSlice { router, openapi });
        self
    }

    /// Lets `GET /v1/search` find one more kind of this context's things.
    #[must_use]
    pub fn searchable(mut self, searchable: SearchableFactory) -> Self {
        self.searchables.push(searchable);
        self
    }

    /// Declares that this context answers who is signed in.
    #[must_use]
    pub fn sessions(mut self, sessions: SessionsFactory) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Declares the migrations of the context's own tables.
    #[must_use]
    pub fn migrations(
        mut self,
        migrations: fn() -> trellis_store_postgres::migrations::Owned,
    ) -> Self {
        self.migrations = Some(migrations);
        self
    }

    /// Declares a reactive service.
    #[must_use]
    pub fn service(mut self, service: Service) -> Self {
        self.services.push(service);
        self
    }

    /// Declares which users the context's events concern.
    #[must_use]
    pub fn owners(mut self, owners: Owners) -> Self {
        self.owners = owners;
        self
    }
}

/// Two modules claim the same stream kind or event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// A stream kind declared twice.
    #[error("the stream kind `{kind}` is declared by both `{first}` and `{second}`")]
    DuplicateKind {
        /// The kind.
        kind: String,
        /// One module.
        first: String,
        /// The other.
        second: String,
    },
    /// An event type declared twice.
    #[error("the event type `{event_type}` is declared by both `{first}` and `{second}`")]
    DuplicateEventType {
        /// The event type.
        event_type: String,
        /// One module.
        first: String,
        /// The other.
        second: String,
    },
}

/// The modules a process runs with.
pub struct Modules {
    modules: Vec<ContextModule>,
    /// kind -> (module index, aggregate index)
    kinds: HashMap<&'static str, (usize, usize)>,
    /// event type -> module index
    event_types: HashMap<&'static str, usize>,
}

impl Modules {
    /// Checks the modules against each other: every stream kind and event type belongs to
    /// exactly one.
    ///
    /// # Errors
    /// [`ModuleError`] naming the clash.
    pub fn new(modules: Vec<ContextModule>) -> Result<Self, ModuleError> {
        let mut kinds = HashMap::new();
        let mut event_types = HashMap::new();
        for (m, module) in modules.iter().enumerate() {
            for (a, aggregate) in module.aggregates.iter().enumerate() {
                if let Some((other, _)) = kinds.insert(aggregate.kind, (m, a)) {
                    return Err(ModuleError::DuplicateKind {
                        kind: aggregate.kind.to_owned(),
                        first: modules[other].name.to_owned(),
                        second: module.name.to_owned(),
                    });
                }
                for event_type in aggregate.event_types {
                    match event_types.insert(*event_type, m) {
                        Some(other) if other != m => {
                            return Err(ModuleError::DuplicateEventType {
                                event_type: (*event_type).to_owned(),
                                first: modules[other].name.to_owned(),
                                second: module.name.to_owned(),
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Self {
            modules,
            kinds,
            event_types,
        })
    }

    /// Every module.
    pub fn iter(&self) -> impl Iterator<Item = &ContextModule> {
        self.modules.iter()
    }

    /// The module with this name.
    pub fn get(&self, name: &str) -> Option<&ContextModule> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The context a stream kind belongs to.
    ///
    /// # Errors
    /// [`UnknownKind`] naming a kind no module declares.
    pub fn context_of(&self, kind: &str) -> Result<&'static str, UnknownKind> {
        self.kinds
            .get(kind)
            .map(|(m, _)| self.modules[*m].name)
            .ok_or_else(|| UnknownKind(kind.to_owned()))
    }

    /// The context an event type belongs to.
    pub fn context_of_event(&self, event_type: &str) -> Option<&'static str> {
        self.event_types
            .get(event_type)
            .map(|m| self.modules[*m].name)
    }

    /// The aggregate behind a stream kind.
    ///
    /// # Errors
    /// [`UnknownKind`].
    pub fn aggregate(&self, kind: &str) -> Result<&AggregateInfo, UnknownKind> {
        self.kinds
            .get(kind)
            .map(|(m, a)| &self.modules[*m].aggregates[*a])
            .ok_or_else(|| UnknownKind(kind.to_owned()))
    }

    /// Every (stream kind, context) pair: the topic routing.
    pub fn routes(&self) -> Vec<(&'static str, &'static str)> {
        let mut routes: Vec<_> = self
            .modules
            .iter()
            .flat_map(|m| m.aggregates.iter().map(move |a| (a.kind, m.name)))
            .collect();
        routes.sort_unstable();
        routes
    }

    /// Every projection with the contexts (topics) it must read: those of the event types it
    /// applies, derived rather than listed by hand.
    pub fn projections(&self) -> Vec<(Arc<dyn Projection>, Vec<&'static str>)> {
        self.modules
            .iter()
            .flat_map(|m| m.projections.iter().cloned())
            .map(|p| {
                let mut contexts: Vec<&'static str> = p
                    .event_types()
                    .iter()
                    .filter_map(|t| self.context_of_event(t))
                    .collect();
                contexts.sort_unstable();
                contexts.dedup();
                (p, contexts)
            })
            .collect()
    }

    /// The projection named `name`.
    pub fn projection(&self, name: &str) -> Option<Arc<dyn Projection>> {
        self.modules
            .iter()
            .flat_map(|m| m.projections.iter())
            .find(|p| p.name() == name)
            .cloned()
    }

    /// Every context's HTTP slice, with the context's name.
    pub fn http(&self) -> impl Iterator<Item = (&'static str, HttpSlice)> + '_ {
        self.modules
            .iter()
            .filter_map(|m| m.http.map(|slice| (m.name, slice)))
    }

    /// Every kind of search hit the modules register, over `pool`.
    pub fn searchables(&self, pool: &sqlx::PgPool) -> Arc<[Arc<dyn trellis_edge::Searchable>]> {
        self.modules
            .iter()
            .flat_map(|m| m.searchables.iter().map(|f| f(pool.clone())))
            .collect()
    }

    /// Who is signed in, answered by the module that declares it.
    ///
    /// # Panics
    /// When no module does: the edge cannot authenticate anyone (a registration bug every
    /// test run catches).
    pub fn sessions(&self, pool: sqlx::PgPool) -> Arc<dyn trellis_edge::Sessions> {
        let factory = self
            .modules
            .iter()
            .find_map(|m| m.sessions)
            .unwrap_or_else(|| panic!("no context module declares sessions (identity does)"));
        factory(pool)
    }

    /// Every context's own migrations.
    pub fn migrations(&self) -> Vec<trellis_store_postgres::migrations::Owned> {
        self.modules
            .iter()
            .filter_map(|m| m.migrations.map(|migrations| migrations()))
            .collect()
    }

    /// Every context's reactive services.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.modules.iter().flat_map(|m| m.services.iter())
    }

    /// Every module's upcast steps, merged.
    pub fn upcasters(&self) -> Upcasters {
        self.modules
            .iter()
            .fold(Upcasters::new(), |all, m| all.merge(m.upcasters.clone()))
    }

    /// Installs [`Self::upcasters`] as the process-wide registry
    /// ([`trellis_kernel::upcast::install`]); returns whether this call installed it.
    pub fn install_upcasters(&self) -> bool {
        trellis_kernel::upcast::install(self.upcasters())
    }

    /// Whether `event` concerns `user`: the user acted (or a reaction acted on their behalf,
    /// carried by the correlation chain's actor), or the event's module names them.
    pub fn concerns(&self, user: Uuid, event: &RecordedEvent) -> bool {
        self.concerned(event).contains(&user)
    }

    /// Everyone `event` concerns (see [`Self::concerns`]), once: live updates decide this per
    /// event, not per listener.
    pub fn concerned(&self, event: &RecordedEvent) -> Vec<Uuid> {
        let mut users = self
            .kinds
            .get(event.stream_id.kind())
            .map(|(m, _)| (self.modules[*m].owners)(event))
            .unwrap_or_default();
        users.extend(event.metadata.actor_id.map(|a| a.as_uuid()));
        // Whose personal data it holds: read from ids, so it holds for stored (encrypted)
        // events as for decrypted ones.
        users.extend(self.personal_subject(event));
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Installs the process-wide personal-data cipher (ADR 0017): the modules' declarations,
    /// `master` wrapping data keys kept in the store's database (`pool`). Every append then
    /// encrypts, and every read path decrypts, through it.
    pub fn install_cipher(&self, pool: sqlx::PgPool, master: trellis_privacy::MasterKey) {
        trellis_store_postgres::keys::install_cipher(pool, master, self.personal_data());
    }

    /// Every read-model table that holds rows about a user.
    pub fn subject_rows(&self) -> impl Iterator<Item = &SubjectRows> {
        self.modules.iter().flat_map(|m| m.subject_rows.iter())
    }

    /// The user whose personal data `event` holds, by its type's declaration.
    fn personal_subject(&self, event: &RecordedEvent) -> Option<Uuid> {
        let module = &self.modules[*self.event_types.get(event.event_type.as_str())?];
        module
            .personal_data
            .iter()
            .find(|d| d.event_type == event.event_type)
            .and_then(|d| d.subject_of(&event.stream_id, &event.payload))
    }

    /// Every module's personal-data declarations: what the process-wide cipher encrypts.
    pub fn personal_data(&self) -> Vec<PersonalData> {
        self.modules
            .iter()
            .flat_map(|m| m.personal_data.iter().copied())
            .collect()
    }
}
