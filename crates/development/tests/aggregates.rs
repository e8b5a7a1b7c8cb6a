//! Given/when/then for the development aggregates; emitted events are schema-checked.

#![allow(clippy::unwrap_used)]

use trellis_development::idp::{Gap, Idp, IdpCommand, IdpError, IdpEvent, Recommendation};
use trellis_development::resource::{
    Resource, ResourceCommand, ResourceError, ResourceEvent, ResourceKind,
};
use trellis_development::review::{Review, ReviewCommand, ReviewError, ReviewEvent};
use trellis_development::skill::{Skill, SkillCommand, SkillError, SkillEvent, esco_skill_id};
use trellis_development::{Level, SkillLevel};
use trellis_testkit::harness::AggregateTest;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn sl(skill: u128, level: i64) -> SkillLevel {
    SkillLevel {
        skill_id: id(skill),
        level: Level::parse(level).unwrap(),
    }
}

#[test]
fn skills_are_defined_once_with_trimmed_names() {
    let define = SkillCommand::Define {
        name: "  Rust  ".into(),
        description: "Systems language".into(),
        aliases: vec!["rust-lang".into()],
        esco_uri: None,
    };
    let defined = SkillEvent::SkillDefined {
        name: "Rust".into(),
        description: "Systems language".into(),
        aliases: vec!["rust-lang".into()],
        esco_uri: None,
    };
    AggregateTest::<Skill>::given_no_events()
        .when(define.clone())
        .then_events(vec![defined.clone()]);
    AggregateTest::<Skill>::given(vec![defined])
        .when(define)
        .then_error(SkillError::AlreadyDefined);
    AggregateTest::<Skill>::given_no_events()
        .when(SkillCommand::Define {
            name: " ".into(),
            description: String::new(),
            aliases: vec![],
            esco_uri: None,
        })
        .then_error(SkillError::BadName);
}

#[test]
fn esco_skill_ids_are_stable_per_organization() {
    let uri = "http://data.europa.eu/esco/skill/abc";
    assert_eq!(esco_skill_id(id(1), uri), esco_skill_id(id(1), uri));
    assert_ne!(esco_skill_id(id(1), uri), esco_skill_id(id(2), uri));
}

fn publish(skills: Vec<SkillLevel>) -> ResourceCommand {
    ResourceCommand::Publish {
        title: "Rust for beginners".into(),
        description: "A course".into(),
        url: Some("https://example.com/rust".into()),
        kind: ResourceKind::Course,
        duration_minutes: 600,
        difficulty: Level::parse(2).unwrap(),
        skills,
        published_by: id(9),
    }
}

#[test]
fn resources_need_skills_each_once_and_ratings_replace() {
    AggregateTest::<Resource>::given_no_events()
        .when(publish(vec![]))
        .then_error(ResourceError::BadSkills("needs at least one skill"));
    AggregateTest::<Resource>::given_no_events()
        .when(publish(vec![sl(1, 2), sl(1, 3)]))
        .then_error(ResourceError::BadSkills("names a skill twice"));
    let published = ResourceEvent::ResourcePublished {
        title: "Rust for beginners".into(),
        description: "A course".into(),
        url: Some("https://example.com/rust".into()),
        kind: ResourceKind::Course,
        duration_minutes: 600,
        difficulty: Level::parse(2).unwrap(),
        skills: vec![sl(1, 2)],
        published_by: id(9),
    };
    AggregateTest::<Resource>::given_no_events()
        .when(publish(vec![sl(1, 2)]))
        .then_events(vec![published.clone()]);
    let rate = |r| ResourceCommand::Rate {
        user_id: id(5),
        rating: Level::parse(r).unwrap(),
    };
    let rated = ResourceEvent::ResourceRated {
        user_id: id(5),
        rating: Level::parse(4).unwrap(),
    };
    AggregateTest::<Resource>::given(vec![published.clone()])
        .when(rate(4))
        .then_events(vec![rated.clone()]);
    AggregateTest::<Resource>::given(vec![published, rated])
        .when(rate(4))
        .then_events(vec![]);
    AggregateTest::<Resource>::given_no_events()
        .when(rate(4))
        .then_error(ResourceError::NotFound);
}

#[test]
fn an_unchanged_rating_appends_nothing() {
    // Security probe: re-rating a resource with the same score must not grow its stream.
    let published = ResourceEvent::ResourcePublished {
        title: "Rust for beginners".into(),
        description: "A course".into(),
        url: None,
        kind: ResourceKind::Course,
        duration_minutes: 600,
        difficulty: Level::parse(2).unwrap(),
        skills: vec![sl(1, 2)],
        published_by: id(9),
    };
    let rate = |user: u128, rating: i64| ResourceCommand::Rate {
        user_id: id(user),
        rating: Level::parse(rating).unwrap(),
    };
    let rated = |user: u128, rating: i64| ResourceEvent::ResourceRated {
        user_id: id(user),
        rating: Level::parse(rating).unwrap(),
    };
    let history = vec![published, rated(5, 3), rated(6, 4), rated(5, 4)];
    // The same user, the same (latest) score: nothing.
    AggregateTest::<Resource>::given(history.clone())
        .when(rate(5, 4))
        .then_events(vec![]);
    // Back to an earlier score of theirs, or another user's score: a change each.
    AggregateTest::<Resource>::given(history.clone())
        .when(rate(5, 3))
        .then_events(vec![rated(5, 3)]);
    AggregateTest::<Resource>::given(history)
        .when(rate(7, 4))
        .then_events(vec![rated(7, 4)]);
}

#[test]
fn reviews_rate_someone_else_once() {
    let submit = |employee: u128| ReviewCommand::Submit {
        employee_id: id(employee),
        reviewer_id: id(2),
        period: "2026-H2".into(),
        ratings: vec![sl(1, 3)],
        feedback: "Good progress".into(),
    };
    let submitted = ReviewEvent::ReviewSubmitted {
        employee_id: id(1),
        reviewer_id: id(2),
        period: "2026-H2".into(),
        ratings: vec![sl(1, 3)],
        feedback: "Good progress".into(),
    };
    AggregateTest::<Review>::given_no_events()
        .when(submit(1))
        .then_events(vec![submitted.clone()]);
    AggregateTest::<Review>::given_no_events()
        .when(submit(2))
        .then_error(ReviewError::SelfReview);
    AggregateTest::<Review>::given(vec![submitted])
        .when(submit(1))
        .then_error(ReviewError::AlreadySubmitted);
}

fn created() -> IdpEvent {
    IdpEvent::IdpCreated {
        employee_id: id(1),
        created_by: id(1),
        title: "Grow into backend".into(),
        target_skills: vec![sl(10, 4), sl(11, 3)],
        target_role: None,
        due_date: None,
    }
}

fn generated() -> IdpEvent {
    IdpEvent::IdpRecommendationsGenerated {
        gaps: vec![Gap {
            skill_id: id(10),
            current: 1,
            target: Level::parse(4).unwrap(),
        }],
        recommendations: vec![Recommendation {
            resource_id: id(100),
            score: 0.9,
            skill_ids: vec![id(10)],
            reason: "Covers Rust, your largest gap".into(),
        }],
    }
}

#[test]
fn an_idp_is_created_processing_with_valid_targets() {
    AggregateTest::<Idp>::given_no_events()
        .when(IdpCommand::Create {
            employee_id: id(1),
            created_by: id(1),
            title: "Grow into backend".into(),
            target_skills: vec![sl(10, 4), sl(11, 3)],
            target_role: None,
            due_date: None,
        })
        .then_events(vec![created()]);
    AggregateTest::<Idp>::given_no_events()
        .when(IdpCommand::Create {
            employee_id: id(1),
            created_by: id(1),
            title: "Empty".into(),
            target_skills: vec![],
            target_role: None,
            due_date: None,
        })
        .then_error(IdpError::BadTargets("needs at least one skill"));
}

#[test]
fn recommendations_are_accepted_once_while_processing() {
    let record = IdpCommand::RecordRecommendations {
        gaps: vec![],
        recommendations: vec![],
    };
    AggregateTest::<Idp>::given(vec![created()])
        .when(record.clone())
        .then_events(vec![IdpEvent::IdpRecommendationsGenerated {
            gaps: vec![],
            recommendations: vec![],
        }]);
    // A redelivered answer changes nothing.
    AggregateTest::<Idp>::given(vec![created(), generated()])
        .when(record)
        .then_events(vec![]);
    AggregateTest::<Idp>::given(vec![created(), generated()])
        .when(IdpCommand::RecordRecommendationFailure {
            reason: "late".into(),
        })
        .then_events(vec![]);
}

#[test]
fn a_failed_idp_can_be_retried() {
    let failed = IdpEvent::IdpRecommendationFailed {
        reason: "no resources cover the gaps".into(),
    };
    AggregateTest::<Idp>::given(vec![created(), failed.clone()])
        .when(IdpCommand::RetryRecommendations)
        .then_events(vec![IdpEvent::IdpRecommendationRetried {}]);
    AggregateTest::<Idp>::given(vec![created()])
        .when(IdpCommand::RetryRecommendations)
        .then_error(IdpError::NotFailed);
}

#[test]
fn items_are_unique_completable_once_and_approval_needs_an_active_plan() {
    let add = |item: u128, resource: Option<u128>| IdpCommand::AddItem {
        item_id: id(item),
        title: "Take the course".into(),
        resource_id: resource.map(id),
        skill_ids: vec![id(10)],
    };
    AggregateTest::<Idp>::given(vec![created()])
        .when(add(1, Some(100)))
        .then_error(IdpError::NotActive);
    let added = IdpEvent::IdpItemAdded {
        item_id: id(1),
        title: "Take the course".into(),
        resource_id: Some(id(100)),
        skill_ids: vec![id(10)],
    };
    AggregateTest::<Idp>::given(vec![created(), generated()])
        .when(add(1, Some(100)))
        .then_events(vec![added.clone()]);
    AggregateTest::<Idp>::given(vec![created(), generated(), added.clone()])
        .when(add(2, Some(100)))
        .then_error(IdpError::DuplicateItem);
    AggregateTest::<Idp>::given(vec![created(), generated(), added.clone()])
        .when(add(1, None))
        .then_error(IdpError::DuplicateItem);
    let completed = IdpEvent::IdpItemCompleted { item_id: id(1) };
    AggregateTest::<Idp>::given(vec![created(), generated(), added.clone()])
        .when(IdpCommand::CompleteItem { item_id: id(1) })
        .then_events(vec![completed.clone()]);
    AggregateTest::<Idp>::given(vec![
        created(),
        generated(),
        added.clone(),
        completed.clone(),
    ])
    .when(IdpCommand::CompleteItem { item_id: id(1) })
    .then_events(vec![]);
    AggregateTest::<Idp>::given(vec![created(), generated()])
        .when(IdpCommand::CompleteItem { item_id: id(7) })
        .then_error(IdpError::ItemNotFound);
    AggregateTest::<Idp>::given(vec![created()])
        .when(IdpCommand::Approve { approver_id: id(2) })
        .then_error(IdpError::NotActive);
    AggregateTest::<Idp>::given(vec![created(), generated()])
        .when(IdpCommand::Approve { approver_id: id(2) })
        .then_events(vec![IdpEvent::IdpApproved { approver_id: id(2) }]);
    use trellis_kernel::Aggregate;
    let state = Idp::fold(&[created(), generated(), added, completed]);
    assert!((state.progress() - 1.0).abs() < f64::EPSILON);
}

#[test]
fn commands_on_a_missing_plan_are_not_found() {
    AggregateTest::<Idp>::given_no_events()
        .when(IdpCommand::RetryRecommendations)
        .then_error(IdpError::NotFound);
}

#[test]
fn text_fields_have_limits_and_refuse_control_and_bidi_characters_naming_the_field() {
    use trellis_development::limits::{RESOURCE_DESCRIPTION_MAX, SKILL_DESCRIPTION_MAX};
    use trellis_kernel::TextProblem;

    let skill = |name: &str, description: String, aliases: Vec<String>, esco: Option<&str>| {
        SkillCommand::Define {
            name: name.into(),
            description,
            aliases,
            esco_uri: esco.map(str::to_owned),
        }
    };
    let refused = |command: SkillCommand, field: &str, problem: TextProblem| {
        AggregateTest::<Skill>::given_no_events()
            .when(command)
            .then_error(SkillError::Text(problem.at(field)));
    };
    refused(
        skill("Rust\u{202E}gpj", String::new(), vec![], None),
        "name",
        TextProblem::BidiControl,
    );
    refused(
        skill("Rust\nand more", String::new(), vec![], None),
        "name",
        TextProblem::ControlCharacter,
    );
    refused(
        skill("Rust", "x".repeat(SKILL_DESCRIPTION_MAX + 1), vec![], None),
        "description",
        TextProblem::TooLong {
            max: SKILL_DESCRIPTION_MAX,
        },
    );
    refused(
        skill(
            "Rust",
            String::new(),
            vec!["ok".into(), "a\u{2066}b".into()],
            None,
        ),
        "aliases[1]",
        TextProblem::BidiControl,
    );
    refused(
        skill("Rust", String::new(), vec![], Some("javascript:alert(1)")),
        "esco_uri",
        TextProblem::NotWebUrl,
    );
    // Multi-line descriptions keep their line breaks.
    AggregateTest::<Skill>::given_no_events()
        .when(skill("Rust", "One.\nTwo.\tThree.".into(), vec![], None))
        .then_events(vec![SkillEvent::SkillDefined {
            name: "Rust".into(),
            description: "One.\nTwo.\tThree.".into(),
            aliases: vec![],
            esco_uri: None,
        }]);

    let resource = |description: String, url: Option<&str>| ResourceCommand::Publish {
        title: "Course".into(),
        description,
        url: url.map(str::to_owned),
        kind: ResourceKind::Course,
        duration_minutes: 60,
        difficulty: Level::parse(2).unwrap(),
        skills: vec![sl(1, 2)],
        published_by: id(9),
    };
    for url in [
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
    ] {
        AggregateTest::<Resource>::given_no_events()
            .when(resource(String::new(), Some(url)))
            .then_error(ResourceError::Text(TextProblem::NotWebUrl.at("url")));
    }
    AggregateTest::<Resource>::given_no_events()
        .when(resource("d".repeat(RESOURCE_DESCRIPTION_MAX + 1), None))
        .then_error(ResourceError::Text(
            TextProblem::TooLong {
                max: RESOURCE_DESCRIPTION_MAX,
            }
            .at("description"),
        ));

    AggregateTest::<Review>::given_no_events()
        .when(ReviewCommand::Submit {
            employee_id: id(1),
            reviewer_id: id(2),
            period: "2026-H2".into(),
            ratings: vec![sl(1, 3)],
            feedback: "Good work \u{202D}reversed".into(),
        })
        .then_error(ReviewError::Text(TextProblem::BidiControl.at("feedback")));

    AggregateTest::<Idp>::given_no_events()
        .when(IdpCommand::Create {
            employee_id: id(1),
            created_by: id(1),
            title: "Grow\u{1b}[2J".into(),
            target_skills: vec![sl(1, 3)],
            target_role: None,
            due_date: None,
        })
        .then_error(IdpError::Text(TextProblem::ControlCharacter.at("title")));
}
