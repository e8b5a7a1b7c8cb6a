//! Every bounded context Trellis runs, registered once (ADR 0011).
//!
//! [`modules`] is the list `trellis serve`, the topic routing, the test support, audit and
//! live updates read. Adding a context means adding its module here (docs/adding-a-context.md).
//! [`with_fixture`] adds the demo tally, a test and benchmark fixture that is not part of the
//! product: no product topic carries it.

use std::sync::Arc;

use futures::future::BoxFuture;
use trellis_module::{ContextModule, Modules, Service, StartedService};

/// The identity context: organizations, users, e-mail claims.
pub fn identity() -> ContextModule {
    use trellis_identity::{email_claim::EmailClaim, organization::Organization, user::User};
    ContextModule::new("identity")
        .aggregate::<Organization>()
        .aggregate::<User>()
        .aggregate::<EmailClaim>()
        .projection(trellis_identity_app::IdentityUsers)
        .sessions(|pool| Arc::new(trellis_identity_app::sessions::IdentitySessions::new(pool)))
        .migrations(trellis_identity_app::migrations)
        .http(trellis_identity_app::http::router, || {
            <trellis_identity_app::http::IdentityApi as utoipa::OpenApi>::openapi()
        })
        .personal_data(trellis_identity::PERSONAL_DATA)
        .subject_rows("rm_identity_users.users", "user_id")
        // A user hears about changes to their own stream.
        .owners(|event| {
            if event.stream_id.kind() == User::KIND_NAME {
                vec![event.stream_id.id()]
            } else {
                Vec::new()
            }
        })
}

/// The development context: skills, resources, reviews, IDPs.
pub fn development() -> ContextModule {
    use trellis_development::{idp::Idp, resource::Resource, review::Review, skill::Skill};
    ContextModule::new("development")
        .aggregate::<Skill>()
        .aggregate::<Resource>()
        .aggregate::<Review>()
        .aggregate::<Idp>()
        .projection(trellis_development_app::catalog::DevelopmentCatalog)
        .projection(trellis_development_app::plans::DevelopmentPlans)
        .http(trellis_development_app::http::router, || {
            <trellis_development_app::http::DevelopmentApi as utoipa::OpenApi>::openapi()
        })
        .searchable(|pool| {
            Arc::new(trellis_development_app::catalog::CatalogSearch::skills(
                pool,
            ))
        })
        .searchable(|pool| {
            Arc::new(trellis_development_app::catalog::CatalogSearch::resources(
                pool,
            ))
        })
        .service(recommender())
        .personal_data(trellis_development::PERSONAL_DATA)
        .subject_rows("rm_development_plans.reviews", "employee_id")
        .subject_rows("rm_development_plans.idps", "employee_id")
        .subject_rows("rm_development_catalog.resource_ratings", "user_id")
        // The employee hears about their plan's creation and their reviews.
        .owners(trellis_development_app::concerned_users)
}

/// The process's embedding model, shared by its services and search (loaded off the async
/// workers on first use).
async fn embedding_model() -> anyhow::Result<Arc<trellis_embed::MiniLm>> {
    tokio::task::spawn_blocking(trellis_embed::MiniLm::shared)
        .await?
        .map_err(|e| {
            anyhow::anyhow!("loading the embedding model (scripts/fetch-model installs it): {e}")
        })
}

/// The IDP recommender: loads the embedding model, folds the catalog from the store and
/// answers new and retried plans as a consumer-group member of `trellis.development`.
fn recommender() -> Service {
    Service {
        name: "recommender",
        reads: &["development"],
        start: |deps| {
            Box::pin(async move {
                let model = embedding_model().await?;
                let recommender = Arc::new(trellis_recommender_service::Recommender::new(
                    deps.store, model,
                ));
                let follower = Arc::clone(&recommender);
                let shutdown = (deps.shutdown)();
                let follow: BoxFuture<'static, anyhow::Result<()>> = Box::pin(async move {
                    follower.follow(shutdown).await;
                    Ok(())
                });
                Ok(StartedService {
                    handler: recommender,
                    tasks: vec![follow],
                })
            })
        },
    }
}

/// The career context (so far: skill profiles).
pub fn career() -> ContextModule {
    use trellis_career::skill_profile::SkillProfile;
    ContextModule::new("career")
        .aggregate::<SkillProfile>()
        .http(trellis_career_app::http::router, || {
            <trellis_career_app::http::CareerApi as utoipa::OpenApi>::openapi()
        })
        // One profile per user: `skill_profile-<user id>`.
        .owners(|event| vec![event.stream_id.id()])
}

/// The content context: uploads, their atoms, search, and the atomizer.
pub fn content() -> ContextModule {
    use trellis_content::content::Content;
    ContextModule::new("content")
        .aggregate::<Content>()
        .projection(trellis_content_app::ContentLibrary)
        .http(trellis_content_app::http::router, || {
            <trellis_content_app::http::ContentApi as utoipa::OpenApi>::openapi()
        })
        .service(atomizer())
        .personal_data(trellis_content::PERSONAL_DATA)
        .subject_rows("rm_content_library.contents", "uploaded_by")
}

/// Links atom concepts to the development catalog's skills (the composition is the one place
/// two contexts meet).
struct CatalogSkillLinks(sqlx::PgPool);

#[async_trait::async_trait]
impl trellis_content_app::SkillLinks for CatalogSkillLinks {
    async fn link(
        &self,
        organization_id: uuid::Uuid,
        phrases: &[String],
    ) -> Result<Vec<Vec<uuid::Uuid>>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(
            trellis_development_app::catalog::skills_named_by(&self.0, organization_id, phrases)
                .await?,
        )
    }
}

/// The atomizer: loads the embedding model and answers uploads, new versions and
/// re-atomizations as a consumer-group member of `trellis.content`, extracting each file in
/// a limited worker process.
fn atomizer() -> Service {
    Service {
        name: "atomizer",
        reads: &["content"],
        start: |deps| {
            Box::pin(async move {
                let settings = trellis_content_app::ContentSettings::from_env()?;
                let storage =
                    trellis_content_app::storage::ContentStorage::from_settings(&settings)?;
                if !settings.worker.program.is_file() {
                    anyhow::bail!(
                        "the extraction worker {} is missing: build it with `cargo build -p trellis-extract` or set TRELLIS_EXTRACT_WORKER",
                        settings.worker.program.display()
                    );
                }
                let model = embedding_model().await?;
                let sweep: BoxFuture<'static, anyhow::Result<()>> = Box::pin({
                    let (pool, storage) = (deps.pool.clone(), storage.clone());
                    let shutdown = (deps.shutdown)();
                    async move {
                        trellis_content_app::atomizer::sweep_periodically(
                            pool,
                            storage,
                            std::time::Duration::from_secs(3600),
                            shutdown,
                        )
                        .await;
                        Ok(())
                    }
                });
                let atomizer = trellis_content_app::Atomizer::new(
                    deps.store,
                    deps.pool.clone(),
                    storage,
                    settings.worker,
                    model,
                    Arc::new(CatalogSkillLinks(deps.pool)),
                );
                Ok(StartedService {
                    handler: Arc::new(atomizer),
                    tasks: vec![sweep],
                })
            })
        },
    }
}

/// The demo tally: a fixture for tests and benchmarks (`events/fixture/`), never served.
pub fn fixture() -> ContextModule {
    ContextModule::new("fixture")
        .aggregate::<trellis_demo::Tally>()
        .projection(trellis_demo_app::TallyTotals)
        .upcasters(trellis_demo::upcasters())
}

/// The product's modules.
pub fn product() -> Vec<ContextModule> {
    vec![identity(), development(), career(), content(), cohorts()]
}

/// The cohorts context: pools and their match queue, groups with their curricula and
/// workspaces, pool webhooks, and the matcher, curriculum and webhook services.
pub fn cohorts() -> ContextModule {
    use trellis_cohorts::group::CohortGroup;
    use trellis_cohorts::pool::CohortPool;
    ContextModule::new("cohorts")
        .aggregate::<CohortPool>()
        .aggregate::<CohortGroup>()
        .aggregate::<trellis_cohorts::webhooks::PoolWebhooks>()
        .projection(trellis_cohorts_app::CohortPools)
        .upcasters(trellis_cohorts::group::upcasters())
        .migrations(trellis_cohorts_app::migrations)
        .http(trellis_cohorts_app::http::router, || {
            <trellis_cohorts_app::http::CohortsApi as utoipa::OpenApi>::openapi()
        })
        .service(matcher())
        .service(curriculum())
        .service(webhooks())
        .personal_data(trellis_cohorts::PERSONAL_DATA)
        .subject_rows("rm_cohort_pools.tickets", "learner_id")
        .subject_rows("rm_cohort_pools.steps_done", "learner_id")
        .subject_rows("rm_cohort_pools.tasks", "assignee")
        .owners(trellis_cohorts_app::concerned_users)
}

/// Curricula from the development catalog and the content library (the composition is the
/// one place the contexts meet).
struct CatalogAndLibrary(sqlx::PgPool);

#[async_trait::async_trait]
impl trellis_cohorts_app::LearningSources for CatalogAndLibrary {
    async fn skills_for_goals(
        &self,
        organization_id: uuid::Uuid,
        goals: &str,
        limit: usize,
    ) -> Result<Vec<uuid::Uuid>, trellis_cohorts_app::curriculum::SourceError> {
        Ok(trellis_development_app::catalog::skills_for_text(
            &self.0,
            organization_id,
            goals,
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?)
    }

    async fn atoms(
        &self,
        organization_id: uuid::Uuid,
        skills: &[uuid::Uuid],
    ) -> Result<
        Vec<trellis_cohorts_app::curriculum::AtomSource>,
        trellis_cohorts_app::curriculum::SourceError,
    > {
        let rows =
            trellis_content_app::library::atoms_teaching(&self.0, organization_id, skills, 500)
                .await?;
        Ok(rows
            .into_iter()
            .map(|a| trellis_cohorts_app::curriculum::AtomSource {
                id: a.atom_id,
                title: a.title,
                skill_id: a.skill_id,
                minutes: u32::try_from(a.estimated_minutes).unwrap_or(0),
                prerequisites: a.prerequisites,
                order: (a.content_id, a.sequence),
                quality: a.quality,
            })
            .collect())
    }

    async fn resources(
        &self,
        organization_id: uuid::Uuid,
        skills: &[uuid::Uuid],
    ) -> Result<
        Vec<trellis_cohorts_app::curriculum::ResourceSource>,
        trellis_cohorts_app::curriculum::SourceError,
    > {
        let rows = trellis_development_app::catalog::resources_teaching(
            &self.0,
            organization_id,
            skills,
            500,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| trellis_cohorts_app::curriculum::ResourceSource {
                id: r.resource_id,
                title: r.title,
                skill_id: r.skill_id,
                minutes: u32::try_from(r.duration_minutes).unwrap_or(0),
            })
            .collect())
    }
}

/// The webhook dispatcher: records each group event's deliveries as a consumer-group member
/// of `trellis.cohorts`, and delivers them (signed, retried with backoff) beside it.
fn webhooks() -> Service {
    Service {
        name: "webhooks",
        reads: &["cohorts"],
        start: |deps| {
            Box::pin(async move {
                let settings =
                    trellis_cohorts_app::webhooks::WebhookSettings::from_lookup(&*deps.settings)?;
                let client = trellis_cohorts_app::webhooks::client(&settings)?;
                let deliver: BoxFuture<'static, anyhow::Result<()>> = Box::pin({
                    let pool = deps.pool.clone();
                    let shutdown = (deps.shutdown)();
                    async move {
                        trellis_cohorts_app::webhooks::deliver_periodically(
                            pool, client, settings, shutdown,
                        )
                        .await;
                        Ok(())
                    }
                });
                Ok(StartedService {
                    handler: Arc::new(trellis_cohorts_app::webhooks::Dispatcher::new(
                        deps.store, deps.pool,
                    )),
                    tasks: vec![deliver],
                })
            })
        },
    }
}

/// The curriculum service: answers every opened group with its curriculum, as a
/// consumer-group member of `trellis.cohorts`.
fn curriculum() -> Service {
    Service {
        name: "curriculum",
        reads: &["cohorts"],
        start: |deps| {
            Box::pin(async move {
                let sources = Arc::new(CatalogAndLibrary(deps.pool));
                Ok(StartedService {
                    handler: Arc::new(trellis_cohorts_app::Curriculum::new(deps.store, sources)),
                    tasks: Vec::new(),
                })
            })
        },
    }
}

/// The matcher: forms due batches of every pool (joins as they arrive, a tick against the
/// clock) and opens the groups they formed, as a consumer-group member of `trellis.cohorts`.
fn matcher() -> Service {
    Service {
        name: "matcher",
        reads: &["cohorts"],
        start: |deps| {
            Box::pin(async move {
                let model = embedding_model().await?;
                let matcher = Arc::new(trellis_cohorts_app::Matcher::new(
                    deps.store, deps.pool, model,
                ));
                let tick: BoxFuture<'static, anyhow::Result<()>> = Box::pin({
                    let matcher = Arc::clone(&matcher);
                    let shutdown = (deps.shutdown)();
                    async move {
                        matcher.tick(shutdown).await;
                        Ok(())
                    }
                });
                Ok(StartedService {
                    handler: matcher,
                    tasks: vec![tick],
                })
            })
        },
    }
}

/// The modules Trellis runs.
///
/// # Panics
/// When two modules declare one stream kind or event type: a programming error that every
/// test run catches.
pub fn modules() -> Modules {
    Modules::new(product()).unwrap_or_else(|e| panic!("context modules clash: {e}"))
}

/// The product's modules plus the fixture (tests and benchmarks).
///
/// # Panics
/// As [`modules`].
pub fn with_fixture() -> Modules {
    let mut all = product();
    all.push(fixture());
    Modules::new(all).unwrap_or_else(|e| panic!("context modules clash: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_kernel::RecordedEvent;
    use uuid::Uuid;

    #[test]
    fn modules_do_not_clash_and_every_kind_routes_to_its_context() {
        let modules = with_fixture();
        assert_eq!(modules.context_of("idp").unwrap(), "development");
        assert_eq!(modules.context_of("user").unwrap(), "identity");
        assert_eq!(modules.context_of("skill_profile").unwrap(), "career");
        assert_eq!(modules.context_of("tally").unwrap(), "fixture");
        let unknown = modules.context_of("nonsense").unwrap_err();
        assert!(unknown.to_string().contains("`nonsense`"));
        assert!(
            self::modules().context_of("tally").is_err(),
            "the fixture is not product"
        );
    }

    #[test]
    fn personal_data_names_event_types_of_its_own_module() {
        for module in self::modules().iter() {
            for declared in &module.personal_data {
                assert!(
                    module
                        .aggregates
                        .iter()
                        .any(|a| a.event_types.contains(&declared.event_type)),
                    "{} declares personal data of {}, not one of its event types",
                    module.name,
                    declared.event_type
                );
            }
        }
    }

    #[test]
    fn event_types_come_from_the_event_enums() {
        let modules = modules();
        let idp = modules.aggregate("idp").unwrap();
        assert!(idp.event_types.contains(&"IdpCreated"));
        assert!(idp.event_types.contains(&"IdpRecommendationsGenerated"));
        assert_eq!(modules.context_of_event("SkillDeclared"), Some("career"));
    }

    #[test]
    fn projections_read_the_topics_of_the_events_they_apply() {
        let modules = modules();
        for (projection, contexts) in modules.projections() {
            assert!(!contexts.is_empty(), "{} reads nothing", projection.name());
            for event_type in projection.event_types() {
                assert!(
                    modules.context_of_event(event_type).is_some(),
                    "{} applies {event_type}, which no module declares",
                    projection.name()
                );
            }
        }
    }

    #[test]
    fn every_event_type_has_its_schema_under_its_context() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        for module in with_fixture().iter() {
            for aggregate in &module.aggregates {
                for event_type in aggregate.event_types {
                    let schema = root.join(module.name).join(format!("{event_type}.v1.json"));
                    assert!(schema.exists(), "missing {}", schema.display());
                }
            }
        }
    }

    #[test]
    fn every_personal_field_admits_its_ciphertext_in_every_schema_version() {
        // Outside consumers validate topic records against these schemas, and the topics
        // carry personal fields encrypted (ADR 0017).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        for module in modules().iter() {
            for declared in &module.personal_data {
                for version in 1.. {
                    let file = root
                        .join(module.name)
                        .join(format!("{}.v{version}.json", declared.event_type));
                    if !file.exists() {
                        assert!(version > 1, "missing {}", file.display());
                        break;
                    }
                    let schema: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                    for path in declared.fields {
                        let node = path
                            .split('.')
                            .fold(&schema, |node, key| &node["properties"][key]);
                        let admits = node["anyOf"].as_array().is_some_and(|options| {
                            options.iter().any(|o| {
                                o["pattern"]
                                    .as_str()
                                    .is_some_and(|p| p.starts_with("^enc:v1:"))
                            })
                        });
                        assert!(
                            admits,
                            "{}: {path} does not admit its ciphertext",
                            file.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_event_of_a_user_concerns_them() {
        let modules = modules();
        let user = Uuid::now_v7();
        let event = RecordedEvent {
            event_id: trellis_kernel::EventId::new(),
            stream_id: trellis_kernel::StreamId::new("skill_profile", user).unwrap(),
            stream_version: 1,
            global_position: trellis_kernel::GlobalPosition(1),
            event_type: "SkillDeclared".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
            metadata: trellis_kernel::Metadata::default(),
            recorded_at: chrono::Utc::now(),
        };
        assert!(modules.concerns(user, &event));
        assert!(!modules.concerns(Uuid::now_v7(), &event));
    }

    #[test]
    fn a_stored_event_holding_a_users_encrypted_data_concerns_them() {
        // Live updates see events as stored: the ticket's answers are ciphertext there, so the
        // pool's event does not decode, yet it still concerns its learner (ADR 0017).
        let learner = Uuid::now_v7();
        let event = RecordedEvent {
            event_id: trellis_kernel::EventId::new(),
            stream_id: trellis_kernel::StreamId::new("cohort_pool", Uuid::now_v7()).unwrap(),
            stream_version: 2,
            global_position: trellis_kernel::GlobalPosition(1),
            event_type: "MatchQueueJoined".into(),
            schema_version: 1,
            payload: serde_json::json!({"ticket_id": Uuid::now_v7(), "learner_id": learner,
                "profile": {"skills": [], "goals": "enc:v1:x", "answers": "enc:v1:y",
                            "timezone": "UTC", "availability": []},
                "joined_at": "2026-12-07T10:00:00Z"}),
            metadata: trellis_kernel::Metadata::default(),
            recorded_at: chrono::Utc::now(),
        };
        assert!(modules().concerns(learner, &event));
    }
}
