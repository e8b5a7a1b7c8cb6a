//! Given/when/then for the identity aggregates; emitted events are schema-checked.

#![allow(clippy::unwrap_used)]

use trellis_identity::email_claim::{
    EmailClaim, EmailClaimCommand, EmailClaimError, EmailClaimEvent,
};
use trellis_identity::organization::{
    Organization, OrganizationCommand, OrganizationError, OrganizationEvent,
};
use trellis_identity::user::{User, UserCommand, UserError, UserEvent};
use trellis_identity::{DisplayName, Email, OrganizationName, Role};
use trellis_testkit::harness::AggregateTest;
use uuid::Uuid;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn org() -> Uuid {
    Uuid::from_u128(1)
}

fn registered(roles: Vec<Role>) -> UserEvent {
    UserEvent::UserRegistered {
        organization_id: org(),
        email: "ada@example.com".into(),
        display_name: "Ada".into(),
        password_hash: HASH.into(),
        roles,
        manager_id: None,
    }
}

fn register(roles: Vec<Role>) -> UserCommand {
    UserCommand::Register {
        organization_id: org(),
        email: Email::parse("Ada@Example.com").unwrap(),
        display_name: DisplayName::parse("Ada").unwrap(),
        password_hash: HASH.into(),
        roles,
        manager_id: None,
    }
}

#[test]
fn creating_an_organization_names_its_first_admin() {
    let admin = Uuid::from_u128(2);
    let command = OrganizationCommand::Create {
        name: OrganizationName::parse("Acme").unwrap(),
        admin_user_id: admin,
    };
    AggregateTest::<Organization>::given_no_events()
        .when(command.clone())
        .then_events(vec![OrganizationEvent::OrganizationCreated {
            name: "Acme".into(),
            admin_user_id: admin,
        }]);
    AggregateTest::<Organization>::given(vec![OrganizationEvent::OrganizationCreated {
        name: "Acme".into(),
        admin_user_id: admin,
    }])
    .when(command)
    .then_error(OrganizationError::AlreadyExists);
}

#[test]
fn registering_normalises_the_email_and_deduplicates_roles() {
    AggregateTest::<User>::given_no_events()
        .when(register(vec![Role::Manager, Role::Employee, Role::Manager]))
        .then_events(vec![registered(vec![Role::Manager, Role::Employee])]);
}

#[test]
fn a_user_needs_a_role_and_registers_once() {
    AggregateTest::<User>::given_no_events()
        .when(register(vec![]))
        .then_error(UserError::NoRoles);
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(register(vec![Role::Employee]))
        .then_error(UserError::AlreadyRegistered);
}

#[test]
fn commands_on_unknown_users_are_not_found() {
    AggregateTest::<User>::given_no_events()
        .when(UserCommand::Deactivate)
        .then_error(UserError::NotFound);
}

#[test]
fn role_and_manager_changes_emit_only_real_changes() {
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(UserCommand::AssignRoles {
            roles: vec![Role::Employee],
        })
        .then_events(vec![]);
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(UserCommand::AssignRoles {
            roles: vec![Role::Learner, Role::Employee],
        })
        .then_events(vec![UserEvent::RolesAssigned {
            roles: vec![Role::Employee, Role::Learner],
        }]);
    let manager = Uuid::from_u128(9);
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(UserCommand::AssignManager {
            manager_id: Some(manager),
        })
        .then_events(vec![UserEvent::ManagerAssigned {
            manager_id: Some(manager),
        }]);
}

#[test]
fn deactivated_users_refuse_changes_and_deactivating_again_is_a_no_op() {
    let given = vec![
        registered(vec![Role::Employee]),
        UserEvent::UserDeactivated {},
    ];
    AggregateTest::<User>::given(given.clone())
        .when(UserCommand::ChangePassword {
            password_hash: HASH.into(),
        })
        .then_error(UserError::Deactivated);
    AggregateTest::<User>::given(given)
        .when(UserCommand::Deactivate)
        .then_events(vec![]);
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(UserCommand::Deactivate)
        .then_events(vec![UserEvent::UserDeactivated {}]);
}

#[test]
fn forgetting_a_user_erases_them_once_active_or_not_and_then_refuses_everything() {
    AggregateTest::<User>::given(vec![registered(vec![Role::Employee])])
        .when(UserCommand::Forget)
        .then_events(vec![UserEvent::SubjectForgotten {}]);
    AggregateTest::<User>::given(vec![
        registered(vec![Role::Employee]),
        UserEvent::UserDeactivated {},
    ])
    .when(UserCommand::Forget)
    .then_events(vec![UserEvent::SubjectForgotten {}]);
    let forgotten = vec![
        registered(vec![Role::Employee]),
        UserEvent::SubjectForgotten {},
    ];
    AggregateTest::<User>::given(forgotten.clone())
        .when(UserCommand::Forget)
        .then_events(vec![]);
    AggregateTest::<User>::given(forgotten.clone())
        .when(UserCommand::AssignRoles {
            roles: vec![Role::Admin],
        })
        .then_error(UserError::Deactivated);
    AggregateTest::<User>::given(forgotten)
        .when(UserCommand::Deactivate)
        .then_events(vec![]);
    AggregateTest::<User>::given_no_events()
        .when(UserCommand::Forget)
        .then_error(UserError::NotFound);
    assert_eq!(
        trellis_kernel::DomainEvent::event_type(&UserEvent::SubjectForgotten {}),
        trellis_identity::SUBJECT_FORGOTTEN
    );
}

#[test]
fn an_email_is_claimed_once_and_orphaned_claims_can_be_taken_over() {
    let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
    AggregateTest::<EmailClaim>::given_no_events()
        .when(EmailClaimCommand::Claim { user_id: a })
        .then_events(vec![EmailClaimEvent::EmailClaimed { user_id: a }]);
    let claimed = vec![EmailClaimEvent::EmailClaimed { user_id: a }];
    AggregateTest::<EmailClaim>::given(claimed.clone())
        .when(EmailClaimCommand::Claim { user_id: b })
        .then_error(EmailClaimError::Taken { holder: a });
    AggregateTest::<EmailClaim>::given(claimed.clone())
        .when(EmailClaimCommand::Claim { user_id: a })
        .then_events(vec![]);
    AggregateTest::<EmailClaim>::given(claimed.clone())
        .when(EmailClaimCommand::TakeOver {
            user_id: b,
            orphan: a,
        })
        .then_events(vec![EmailClaimEvent::EmailClaimed { user_id: b }]);
    AggregateTest::<EmailClaim>::given(claimed)
        .when(EmailClaimCommand::TakeOver {
            user_id: b,
            orphan: Uuid::from_u128(12),
        })
        .then_error(EmailClaimError::Taken { holder: a });
}

#[test]
fn claim_streams_are_derived_from_the_organization_and_the_normalised_address() {
    let org = Uuid::from_u128(1);
    let one =
        trellis_identity::email_claim::stream_id(org, &Email::parse("Ada@Example.com").unwrap());
    let two =
        trellis_identity::email_claim::stream_id(org, &Email::parse("ada@example.com ").unwrap());
    assert_eq!(one, two);
    assert_eq!(one.kind(), "email_claim");
    // Another organization's claim of the same address is another stream (ADR 0009).
    let elsewhere = trellis_identity::email_claim::stream_id(
        Uuid::from_u128(2),
        &Email::parse("ada@example.com").unwrap(),
    );
    assert_ne!(one, elsewhere);
}

#[test]
fn a_released_address_can_be_claimed_again_and_only_its_holder_releases_it() {
    let (a, b) = (Uuid::from_u128(10), Uuid::from_u128(11));
    let claimed = vec![EmailClaimEvent::EmailClaimed { user_id: a }];
    AggregateTest::<EmailClaim>::given(claimed.clone())
        .when(EmailClaimCommand::Release { user_id: b })
        .then_events(vec![]);
    AggregateTest::<EmailClaim>::given(claimed.clone())
        .when(EmailClaimCommand::Release { user_id: a })
        .then_events(vec![EmailClaimEvent::EmailReleased { user_id: a }]);
    let released = vec![
        EmailClaimEvent::EmailClaimed { user_id: a },
        EmailClaimEvent::EmailReleased { user_id: a },
    ];
    AggregateTest::<EmailClaim>::given(released)
        .when(EmailClaimCommand::Claim { user_id: b })
        .then_events(vec![EmailClaimEvent::EmailClaimed { user_id: b }]);
}
