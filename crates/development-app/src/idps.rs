//! Use cases of individual development plans: create (the recommender answers
//! asynchronously), read (optionally waiting for a version), list, add and complete items,
//! approve, retry.
//!
//! Who may do what: the employee owns their plan; their manager (the `manager_id` on the
//! employee) may create, read and change it and is the only one who approves; admins may read
//! every plan of their organization but change none. Everyone else in the organization is
//! refused ([`UseCaseError::Forbidden`]), anyone outside it finds nothing
//! ([`UseCaseError::NotFound`]).

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use trellis_development::idp::{Idp, IdpCommand, IdpError};
use trellis_development::skill::esco_skill_id;
use trellis_development::{Level, SkillLevel};
use trellis_identity::{Actor, Role};
use trellis_runtime::{UseCaseError, Written};
use uuid::Uuid;

use crate::Development;
use crate::catalog;
use crate::plans::{self, DevelopmentPlans, IdpRow, ItemRow, SummaryRow};

/// What IDP use cases answer when they refuse.
pub type PlanError = UseCaseError<IdpError>;

/// Earliest and latest accepted due dates: PostgreSQL's `date` and sane plans.
pub const DUE_DATES: (i32, i32) = (2000, 2200);

/// Target level a target role's skills get unless the request names them itself.
pub const ROLE_TARGET_LEVEL: u8 = 3;

/// Most skills one list in a request may name (targets, ratings, taught skills, an item's
/// skills): bounds the work one request costs, e.g. co-occurrence is quadratic in a list.
pub const MAX_SKILLS: usize = 100;

/// A new plan.
#[derive(Debug, Clone)]
pub struct NewIdp {
    /// Whose plan.
    pub employee_id: Uuid,
    /// Title.
    pub title: String,
    /// Explicit targets.
    pub target_skills: Vec<SkillLevel>,
    /// An ESCO occupation (URI or label) whose catalog skills become targets.
    pub target_role: Option<String>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
}

/// A new item.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// Title; defaults to the resource's.
    pub title: Option<String>,
    /// The resource it is about.
    pub resource_id: Option<Uuid>,
    /// Skills it trains; defaults to the resource's.
    pub skill_ids: Vec<Uuid>,
}

/// A plan with its items, recommendations titled.
#[derive(Debug, Clone)]
pub struct IdpDetails {
    /// The plan; its `recommendations` carry each resource's `title` where it still exists.
    pub plan: IdpRow,
    /// Its items.
    pub items: Vec<ItemRow>,
}

/// How an actor stands to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Manager,
    Admin,
    Other,
}

/// How `actor` stands to `employee_id`'s plans; not found outside their organization.
async fn relation_to(
    development: &Development,
    actor: &Actor,
    employee_id: Uuid,
) -> Result<Relation, PlanError> {
    if actor.user_id == employee_id {
        return Ok(Relation::Owner);
    }
    let employee = trellis_identity_app::user_by_id(development.pool(), employee_id)
        .await?
        .filter(|e| e.organization_id == actor.organization_id)
        .ok_or(UseCaseError::NotFound)?;
    if employee.manager_id == Some(actor.user_id) {
        return Ok(Relation::Manager);
    }
    Ok(if actor.has(Role::Admin) {
        Relation::Admin
    } else {
        Relation::Other
    })
}

async fn load(
    development: &Development,
    actor: &Actor,
    id: Uuid,
) -> Result<(IdpRow, Relation), PlanError> {
    let row = plans::idp(development.pool(), id)
        .await?
        .filter(|row| row.organization_id == actor.organization_id)
        .ok_or(UseCaseError::NotFound)?;
    let relation = relation_to(development, actor, row.employee_id).await?;
    if relation == Relation::Other {
        return Err(UseCaseError::Forbidden);
    }
    Ok((row, relation))
}

/// Changes to a plan (items, completion, retry) are the owner's and their manager's.
async fn owner_or_manager(
    development: &Development,
    actor: &Actor,
    id: Uuid,
) -> Result<(), PlanError> {
    match load(development, actor, id).await?.1 {
        Relation::Owner | Relation::Manager => Ok(()),
        Relation::Admin | Relation::Other => Err(UseCaseError::Forbidden),
    }
}

/// An active user of `organization_id`, named in input field `field`.
///
/// # Errors
/// Invalid `field` otherwise (the same answer for another organization's user: nothing
/// leaks); database failures.
pub async fn employee_in_org<D: std::error::Error + 'static>(
    pool: &sqlx::PgPool,
    organization_id: Uuid,
    id: Uuid,
    field: &str,
) -> Result<trellis_identity_app::UserRow, UseCaseError<D>> {
    match trellis_identity_app::user_by_id(pool, id).await? {
        Some(user) if user.organization_id == organization_id && user.active => Ok(user),
        _ => Err(UseCaseError::field(
            field,
            "is not an active user of your organization",
        )),
    }
}

/// Every id of `ids` is a skill of `organization_id`'s catalog; otherwise invalid, naming `path(i)`
/// for each unknown one (e.g. `skills[2].skill_id`). At most [`MAX_SKILLS`].
///
/// # Errors
/// As above; database failures.
pub async fn check_known_skills<D: std::error::Error + 'static>(
    pool: &sqlx::PgPool,
    organization_id: Uuid,
    ids: &[Uuid],
    path: impl Fn(usize) -> String,
) -> Result<(), UseCaseError<D>> {
    if ids.len() > MAX_SKILLS {
        let list = path(0);
        let list = list.split('[').next().unwrap_or(&list);
        return Err(UseCaseError::field(
            list,
            format!("at most {MAX_SKILLS} skills"),
        ));
    }
    let known: HashSet<Uuid> = catalog::known_skills(pool, organization_id, ids)
        .await?
        .into_iter()
        .collect();
    let unknown: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !known.contains(id))
        .map(|(i, _)| trellis_runtime::InvalidField {
            field: path(i),
            message: "is not a skill of your organization".into(),
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(UseCaseError::Invalid(unknown))
    }
}

/// The target role's occupation URI and the catalog skills it adds beyond `explicit`.
async fn role_targets(
    development: &Development,
    actor: &Actor,
    role: &str,
    explicit: &[SkillLevel],
) -> Result<(String, Vec<SkillLevel>), PlanError> {
    let occupation = development
        .occupations
        .find(role)
        .ok_or_else(|| UseCaseError::field("target_role", "is not a known ESCO occupation"))?;
    let level =
        Level::try_from(ROLE_TARGET_LEVEL).map_err(|e| UseCaseError::Internal(Box::new(e)))?;
    let mut seen = HashSet::new();
    let extra: Vec<Uuid> = occupation
        .skills
        .iter()
        .map(|s| esco_skill_id(actor.organization_id, &s.uri))
        .filter(|id| !explicit.iter().any(|t| t.skill_id == *id) && seen.insert(*id))
        .collect();
    let known = catalog::known_skills(development.pool(), actor.organization_id, &extra).await?;
    let extra = extra
        .into_iter()
        .filter(|id| known.contains(id))
        .map(|skill_id| SkillLevel { skill_id, level })
        .collect();
    Ok((occupation.uri.clone(), extra))
}

/// Creates a plan (the employee, or their manager). The plan is `processing` until the
/// recommender answers.
///
/// # Errors
/// Forbidden for anyone else; invalid fields (unknown employee, skills or role, no targets,
/// a due date out of range); the aggregate's refusals; storage failures.
pub async fn create(
    development: &Development,
    actor: &Actor,
    input: NewIdp,
) -> Result<Written, PlanError> {
    let pool = development.pool();
    let employee = employee_in_org(
        pool,
        actor.organization_id,
        input.employee_id,
        "employee_id",
    )
    .await?;
    if employee.user_id != actor.user_id && employee.manager_id != Some(actor.user_id) {
        return Err(UseCaseError::Forbidden);
    }
    let ids: Vec<Uuid> = input.target_skills.iter().map(|t| t.skill_id).collect();
    check_known_skills(pool, actor.organization_id, &ids, |i| {
        format!("target_skills[{i}].skill_id")
    })
    .await?;
    let mut targets = input.target_skills;
    let mut target_role = None;
    if let Some(role) = input
        .target_role
        .as_deref()
        .filter(|r| !r.trim().is_empty())
    {
        let (uri, extra) = role_targets(development, actor, role, &targets).await?;
        if extra.is_empty() && targets.is_empty() {
            return Err(UseCaseError::field(
                "target_role",
                "none of this occupation's skills are in your catalog (import ESCO skills first)",
            ));
        }
        targets.extend(extra);
        target_role = Some(uri);
    }
    if targets.is_empty() {
        return Err(UseCaseError::field(
            "target_skills",
            "needs at least one skill (or a target_role)",
        ));
    }
    targets.truncate(MAX_SKILLS);
    if let Some(due) = input.due_date
        && !(DUE_DATES.0..=DUE_DATES.1).contains(&due.year())
    {
        return Err(UseCaseError::field(
            "due_date",
            format!("must be a date between {} and {}", DUE_DATES.0, DUE_DATES.1),
        ));
    }
    let command = IdpCommand::Create {
        employee_id: input.employee_id,
        created_by: actor.user_id,
        title: input.title,
        target_skills: targets,
        target_role,
        due_date: input.due_date,
    };
    run(development, actor, Uuid::now_v7(), &command).await
}

async fn run(
    development: &Development,
    actor: &Actor,
    id: Uuid,
    command: &IdpCommand,
) -> Result<Written, PlanError> {
    Ok(development
        .commands
        .run::<Idp, DevelopmentPlans>(id, command, &actor.metadata)
        .await?)
}

/// Plan `id` (owner, their manager, admin), after waiting (bounded) for `min_version` when
/// given. The wait starts only for a plan of the actor's organization that the store holds:
/// an unknown id, or another organization's plan, is not found at once, never after a wait
/// (the time taken must not tell whether an id exists).
///
/// # Errors
/// Not found; forbidden; storage failures.
pub async fn get(
    development: &Development,
    actor: &Actor,
    id: Uuid,
    min_version: Option<u64>,
) -> Result<IdpDetails, PlanError> {
    let pool = development.pool();
    if let Some(version) = min_version {
        development
            .commands
            .wait_in_organization::<Idp, DevelopmentPlans, _>(id, actor.organization_id, version)
            .await?;
    }
    let (mut plan, _) = load(development, actor, id).await?;
    let items = plans::items(pool, id).await?;
    if let Some(list) = plan.recommendations.as_array_mut() {
        let id_of = |r: &serde_json::Value| -> Option<Uuid> {
            r.get("resource_id")?.as_str()?.parse().ok()
        };
        let ids: Vec<Uuid> = list.iter().filter_map(id_of).collect();
        let titles = catalog::resource_titles(pool, actor.organization_id, &ids).await?;
        for r in list.iter_mut() {
            let title = id_of(r).and_then(|id| titles.get(&id).cloned());
            if let (Some(obj), Some(title)) = (r.as_object_mut(), title) {
                obj.insert("title".into(), title.into());
            }
        }
    }
    Ok(IdpDetails { plan, items })
}

/// The plans of `employee_id` (default: the actor's own): the owner's, their manager's, or
/// any employee's for an admin.
///
/// # Errors
/// Not found outside the organization; forbidden; storage failures.
pub async fn list(
    development: &Development,
    actor: &Actor,
    employee_id: Option<Uuid>,
) -> Result<(Uuid, Vec<SummaryRow>), PlanError> {
    let employee_id = employee_id.unwrap_or(actor.user_id);
    if relation_to(development, actor, employee_id).await? == Relation::Other {
        return Err(UseCaseError::Forbidden);
    }
    let rows = plans::idps_of(development.pool(), actor.organization_id, employee_id).await?;
    Ok((employee_id, rows))
}

/// Adds an item to plan `id` (owner or manager); returns the item's id and the plan's
/// version.
///
/// # Errors
/// Not found; forbidden; invalid fields (unknown resource or skills, no title); the
/// aggregate's refusals (not active, too many items, duplicate); storage failures.
pub async fn add_item(
    development: &Development,
    actor: &Actor,
    id: Uuid,
    input: NewItem,
) -> Result<(Uuid, Written), PlanError> {
    let pool = development.pool();
    owner_or_manager(development, actor, id).await?;
    check_known_skills(pool, actor.organization_id, &input.skill_ids, |i| {
        format!("skill_ids[{i}]")
    })
    .await?;
    let mut title = input.title;
    let mut skill_ids = input.skill_ids;
    if let Some(resource_id) = input.resource_id {
        let resource = catalog::resource(pool, resource_id)
            .await?
            .filter(|r| r.organization_id == actor.organization_id)
            .ok_or_else(|| {
                UseCaseError::field("resource_id", "is not a resource of your organization")
            })?;
        // Item titles are at most 200 characters; resource titles may be longer.
        title.get_or_insert_with(|| resource.title.chars().take(200).collect());
        if skill_ids.is_empty() {
            skill_ids = resource.skill_ids();
        }
    }
    let title =
        title.ok_or_else(|| UseCaseError::field("title", "is required without a resource_id"))?;
    let item_id = Uuid::now_v7();
    let command = IdpCommand::AddItem {
        item_id,
        title,
        resource_id: input.resource_id,
        skill_ids,
    };
    Ok((item_id, run(development, actor, id, &command).await?))
}

/// Marks item `item_id` of plan `id` done (owner or manager).
///
/// # Errors
/// Not found; forbidden; not active; storage failures.
pub async fn complete_item(
    development: &Development,
    actor: &Actor,
    id: Uuid,
    item_id: Uuid,
) -> Result<Written, PlanError> {
    owner_or_manager(development, actor, id).await?;
    run(
        development,
        actor,
        id,
        &IdpCommand::CompleteItem { item_id },
    )
    .await
}

/// Approves plan `id` (the employee's manager only).
///
/// # Errors
/// Not found; forbidden; not active; storage failures.
pub async fn approve(
    development: &Development,
    actor: &Actor,
    id: Uuid,
) -> Result<Written, PlanError> {
    let (_, relation) = load(development, actor, id).await?;
    if relation != Relation::Manager {
        return Err(UseCaseError::Forbidden);
    }
    let command = IdpCommand::Approve {
        approver_id: actor.user_id,
    };
    run(development, actor, id, &command).await
}

/// Asks the recommender again after a failure (owner or manager).
///
/// # Errors
/// Not found; forbidden; the plan has not failed; storage failures.
pub async fn retry(
    development: &Development,
    actor: &Actor,
    id: Uuid,
) -> Result<Written, PlanError> {
    owner_or_manager(development, actor, id).await?;
    run(development, actor, id, &IdpCommand::RetryRecommendations).await
}
