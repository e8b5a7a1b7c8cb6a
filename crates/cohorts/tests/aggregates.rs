//! Given/when/then for the cohort pool (with its queue) and the group; emitted events are
//! schema-checked against `events/cohorts/`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use trellis_cohorts::group::{
    CohortGroup, GroupCommand, GroupError, GroupEvent, Step, StepKind, Task, TaskChanges, TaskState,
};
use trellis_cohorts::pool::{
    CohortPool, FormedGroup, Member, PoolCommand, PoolError, PoolEvent, Unplaced, group_id,
};
use trellis_cohorts::{
    BatchRule, Criterion, Day, FieldError, GroupSize, LearnerProfile, Mode, SkillLevel, Slot,
};
use trellis_kernel::{Aggregate, DomainEvent};
use trellis_testkit::harness::AggregateTest;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn created() -> PoolEvent {
    PoolEvent::PoolCreated {
        name: "Rust study groups".into(),
        group_size: GroupSize { min: 2, max: 3 },
        criteria: vec![
            Criterion {
                attribute: "skills".into(),
                mode: Mode::Diverse,
                weight: 0.6,
            },
            Criterion {
                attribute: "answers.role".into(),
                mode: Mode::Similar,
                weight: 0.4,
            },
        ],
        batch: BatchRule {
            min_queue: 4,
            max_wait_seconds: 60,
        },
        created_by: id(1),
    }
}

fn slot(day: Day, start: &str, end: &str) -> Slot {
    Slot {
        day,
        start: start.into(),
        end: end.into(),
    }
}

fn profile(slots: Vec<Slot>) -> LearnerProfile {
    LearnerProfile {
        skills: vec![SkillLevel {
            skill_id: id(70),
            level: 2,
        }],
        goals: "Write async services".into(),
        timezone: "Europe/Lisbon".into(),
        availability: slots,
        answers: BTreeMap::from([("role".into(), "backend".into())]),
    }
}

fn evenings() -> Vec<Slot> {
    vec![
        slot(Day::Mon, "18:00", "20:00"),
        slot(Day::Wed, "18:00", "20:00"),
    ]
}

/// Learner `n` (id 100 + n) with ticket 200 + n.
fn joined(n: u128, slots: Vec<Slot>) -> PoolEvent {
    PoolEvent::MatchQueueJoined {
        ticket_id: id(200 + n),
        learner_id: id(100 + n),
        profile: profile(slots),
        joined_at: at(n as i64),
    }
}

fn join(n: u128) -> PoolCommand {
    PoolCommand::Join {
        ticket_id: id(200 + n),
        learner_id: id(100 + n),
        profile: profile(evenings()),
        joined_at: at(n as i64),
    }
}

fn member(n: u128) -> Member {
    Member {
        ticket_id: id(200 + n),
        learner_id: id(100 + n),
    }
}

fn form(groups: Vec<Vec<u128>>, unplaced: Vec<u128>) -> PoolCommand {
    PoolCommand::FormGroups {
        batch_id: id(900),
        groups: groups
            .into_iter()
            .map(|g| g.into_iter().map(|n| id(200 + n)).collect())
            .collect(),
        unplaced: unplaced
            .into_iter()
            .map(|n| (id(200 + n), "no common weekly slot with the others".into()))
            .collect(),
    }
}

fn queue_of(n: u128) -> Vec<PoolEvent> {
    std::iter::once(created())
        .chain((1..=n).map(|i| joined(i, evenings())))
        .collect()
}

#[test]
fn a_pool_is_created_with_checked_settings() {
    let PoolEvent::PoolCreated {
        name,
        group_size,
        criteria,
        batch,
        created_by,
    } = created()
    else {
        unreachable!()
    };
    let create =
        |group_size: GroupSize, criteria: Vec<Criterion>, batch: BatchRule| PoolCommand::Create {
            name: format!("  {name} "),
            group_size,
            criteria,
            batch,
            created_by,
        };
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(group_size, criteria.clone(), batch))
        .then_events(vec![created()]);
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(create(group_size, criteria.clone(), batch))
        .then_error(PoolError::AlreadyExists);
    let field = |f: &str, r: &str| PoolError::Field(FieldError::new(f, r));
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(GroupSize { min: 4, max: 3 }, vec![], batch))
        .then_error(field("group_size.max", "must be at least group_size.min"));
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(GroupSize { min: 1, max: 3 }, vec![], batch))
        .then_error(field("group_size.min", "must be at least 2"));
    let mut unknown = criteria.clone();
    unknown[1].attribute = "shoe_size".into();
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(group_size, unknown, batch))
        .then_error(field(
            "criteria[1].attribute",
            "must be skills, goals, timezone, availability or answers.<key> (a-z, 0-9, _)",
        ));
    let mut heavy = criteria;
    heavy[0].weight = 1.5;
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(group_size, heavy, batch))
        .then_error(field("criteria[0].weight", "must be between 0 and 1"));
    AggregateTest::<CohortPool>::given_no_events()
        .when(create(
            group_size,
            vec![],
            BatchRule {
                min_queue: 1,
                max_wait_seconds: 60,
            },
        ))
        .then_error(field("batch.min_queue", "must be 2 to 10000"));
}

#[test]
fn a_learner_holds_one_open_ticket_per_pool() {
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(join(1))
        .then_events(vec![joined(1, evenings())]);
    AggregateTest::<CohortPool>::given(queue_of(1))
        .when(PoolCommand::Join {
            ticket_id: id(299),
            learner_id: id(101),
            profile: profile(evenings()),
            joined_at: at(5),
        })
        .then_error(PoolError::AlreadyQueued);
    // After leaving, or after being placed, they may queue again with a new ticket.
    let mut left = queue_of(1);
    left.push(PoolEvent::MatchQueueLeft {
        ticket_id: id(201),
        learner_id: id(101),
    });
    AggregateTest::<CohortPool>::given(left)
        .when(PoolCommand::Join {
            ticket_id: id(299),
            learner_id: id(101),
            profile: profile(evenings()),
            joined_at: at(5),
        })
        .then_events(vec![PoolEvent::MatchQueueJoined {
            ticket_id: id(299),
            learner_id: id(101),
            profile: profile(evenings()),
            joined_at: at(5),
        }]);
}

#[test]
fn a_profile_is_checked_against_the_pools_criteria() {
    let bad = |change: fn(&mut LearnerProfile)| {
        let mut p = profile(evenings());
        change(&mut p);
        PoolCommand::Join {
            ticket_id: id(201),
            learner_id: id(101),
            profile: p,
            joined_at: at(1),
        }
    };
    let field = |f: &str, r: &str| PoolError::Field(FieldError::new(f, r));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.answers.clear()))
        .then_error(field("answers.role", "is required by the pool's criteria"));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.skills[0].level = 6))
        .then_error(field("skills[0].level", "must be 1 to 5"));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.availability[1].end = "17:00".into()))
        .then_error(field("availability[1].end", "must be after start"));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.availability[0].start = "7pm".into()))
        .then_error(field("availability[0].start", "must be HH:MM"));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.timezone = "Mars/Olympus_Mons".into()))
        .then_error(field(
            "timezone",
            "must be an IANA time zone name such as Europe/Lisbon",
        ));
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(bad(|p| p.availability.clear()))
        .then_error(field("availability", "must list 1 to 42 weekly slots"));
}

#[test]
fn leaving_takes_the_ticket_out_and_is_idempotent() {
    let leave = PoolCommand::Leave {
        learner_id: id(101),
    };
    AggregateTest::<CohortPool>::given(queue_of(2))
        .when(leave.clone())
        .then_events(vec![PoolEvent::MatchQueueLeft {
            ticket_id: id(201),
            learner_id: id(101),
        }]);
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(leave)
        .then_events(vec![]);
}

#[test]
fn a_batch_places_every_ticket_once_or_says_why_not() {
    let formed = PoolEvent::GroupsFormed {
        batch_id: id(900),
        groups: vec![
            FormedGroup {
                group_id: group_id(id(900), 0),
                members: vec![member(1), member(2)],
            },
            FormedGroup {
                group_id: group_id(id(900), 1),
                members: vec![member(3), member(4)],
            },
        ],
        unplaced: vec![Unplaced {
            ticket_id: id(205),
            learner_id: id(105),
            reason: "no common weekly slot with the others".into(),
        }],
    };
    AggregateTest::<CohortPool>::given(queue_of(5))
        .when(form(vec![vec![1, 2], vec![3, 4]], vec![5]))
        .then_events(vec![formed.clone()]);
    // Redelivered: nothing more.
    let mut after = queue_of(5);
    after.push(formed);
    AggregateTest::<CohortPool>::given(after.clone())
        .when(form(vec![vec![1, 2], vec![3, 4]], vec![5]))
        .then_events(vec![]);
    let state = CohortPool::fold(&after);
    assert_eq!(state.queue.len(), 1, "the unplaced ticket stays queued");
    assert!(state.placed.contains(&id(101)));
    // A placed learner cannot leave the queue they are no longer in.
    AggregateTest::<CohortPool>::given(after)
        .when(PoolCommand::Leave {
            learner_id: id(101),
        })
        .then_error(PoolError::AlreadyPlaced);

    AggregateTest::<CohortPool>::given(queue_of(4))
        .when(form(vec![vec![1, 2], vec![2, 3, 4]], vec![]))
        .then_error(PoolError::PlacedTwice(id(202)));
    // A batch of the oldest tickets is whole; one that skips an older ticket is not.
    AggregateTest::<CohortPool>::given(queue_of(4))
        .when(form(vec![vec![1, 2]], vec![]))
        .then_events(vec![PoolEvent::GroupsFormed {
            batch_id: id(900),
            groups: vec![FormedGroup {
                group_id: group_id(id(900), 0),
                members: vec![member(1), member(2)],
            }],
            unplaced: vec![],
        }]);
    AggregateTest::<CohortPool>::given(queue_of(4))
        .when(form(vec![vec![1, 3]], vec![]))
        .then_error(PoolError::TicketLeftOut(id(202)));
    AggregateTest::<CohortPool>::given(queue_of(4))
        .when(form(vec![vec![1, 2, 3, 4]], vec![]))
        .then_error(PoolError::BadGroupSize { index: 0, size: 4 });
    AggregateTest::<CohortPool>::given(queue_of(4))
        .when(form(vec![vec![1], vec![2, 3, 4]], vec![]))
        .then_error(PoolError::BadGroupSize { index: 0, size: 1 });
}

#[test]
fn a_learner_who_left_is_never_placed() {
    // The matcher read four tickets; learner 2 left before its answer was appended. Decided on
    // the fresh state, the batch is refused (and appended with the stale version, it would
    // conflict in the store).
    let mut events = queue_of(4);
    events.push(PoolEvent::MatchQueueLeft {
        ticket_id: id(202),
        learner_id: id(102),
    });
    AggregateTest::<CohortPool>::given(events)
        .when(form(vec![vec![1, 2], vec![3, 4]], vec![]))
        .then_error(PoolError::NotQueued(id(202)));
}

#[test]
fn members_of_a_group_share_a_weekly_slot() {
    let mut events = queue_of(2);
    events.push(joined(3, vec![slot(Day::Sat, "09:00", "10:00")]));
    AggregateTest::<CohortPool>::given(events.clone())
        .when(form(vec![vec![1, 2, 3]], vec![]))
        .then_error(PoolError::NoCommonSlot(0));
    AggregateTest::<CohortPool>::given(events)
        .when(form(vec![vec![1, 2]], vec![3]))
        .then_events(vec![PoolEvent::GroupsFormed {
            batch_id: id(900),
            groups: vec![FormedGroup {
                group_id: group_id(id(900), 0),
                members: vec![member(1), member(2)],
            }],
            unplaced: vec![Unplaced {
                ticket_id: id(203),
                learner_id: id(103),
                reason: "no common weekly slot with the others".into(),
            }],
        }]);
}

#[test]
fn a_batch_is_due_at_min_queue_or_after_the_wait() {
    let three = CohortPool::fold(&queue_of(3));
    assert!(!three.batch_due(at(30)), "3 of 4, oldest waited 29 s");
    assert!(three.batch_due(at(61)), "the oldest waited 60 s");
    assert_eq!(three.wait_deadline(), Some(at(61)));
    assert!(CohortPool::fold(&queue_of(4)).batch_due(at(4)));
    // Tickets a batch left unplaced do not start the timer again.
    let mut deferred = queue_of(1);
    deferred.push(PoolEvent::GroupsFormed {
        batch_id: id(900),
        groups: vec![],
        unplaced: vec![Unplaced {
            ticket_id: id(201),
            learner_id: id(101),
            reason: "not enough learners for a group".into(),
        }],
    });
    let state = CohortPool::fold(&deferred);
    assert!(!state.batch_due(at(10_000)));
    assert_eq!(state.wait_deadline(), None);
    let mut closed = queue_of(4);
    closed.push(PoolEvent::PoolClosed { closed_by: id(1) });
    assert!(!CohortPool::fold(&closed).batch_due(at(100)));
}

#[test]
fn a_closed_pool_takes_no_joins_and_forms_no_batch() {
    let mut closed = queue_of(2);
    closed.push(PoolEvent::PoolClosed { closed_by: id(1) });
    AggregateTest::<CohortPool>::given(closed.clone())
        .when(join(3))
        .then_error(PoolError::Closed);
    AggregateTest::<CohortPool>::given(closed)
        .when(form(vec![vec![1, 2]], vec![]))
        .then_error(PoolError::Closed);
    AggregateTest::<CohortPool>::given_no_events()
        .when(join(1))
        .then_error(PoolError::NotFound);
}

fn opened() -> GroupEvent {
    GroupEvent::GroupOpened {
        pool_id: id(50),
        batch_id: id(900),
        members: vec![member(1), member(2)],
    }
}

fn step(n: u128, skipped_by: Vec<Uuid>) -> Step {
    Step {
        id: id(600 + n),
        title: format!("Step {n}"),
        kind: StepKind::Atom,
        ref_id: id(700 + n),
        skill_id: Some(id(70)),
        minutes: 5,
        skipped_by,
    }
}

#[test]
fn a_group_opens_once_and_gets_one_curriculum() {
    let open = GroupCommand::Open {
        pool_id: id(50),
        batch_id: id(900),
        members: vec![member(1), member(2)],
    };
    AggregateTest::<CohortGroup>::given_no_events()
        .when(open.clone())
        .then_events(vec![opened()]);
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(open)
        .then_events(vec![]);
    let curriculum = GroupEvent::CurriculumGenerated {
        steps: vec![step(1, vec![id(101)]), step(2, vec![])],
        members: vec![id(101), id(102)],
    };
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(GroupCommand::RecordCurriculum {
            steps: vec![step(1, vec![id(101)]), step(2, vec![])],
        })
        .then_events(vec![curriculum.clone()]);
    AggregateTest::<CohortGroup>::given(vec![opened(), curriculum])
        .when(GroupCommand::RecordCurriculum { steps: vec![] })
        .then_error(GroupError::CurriculumExists);
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(GroupCommand::RecordCurriculum {
            steps: vec![step(1, vec![id(999)])],
        })
        .then_error(GroupError::Field(FieldError::new(
            "steps[0].skipped_by",
            format!("{} is not a member", id(999)),
        )));
}

#[test]
fn members_complete_steps_and_may_leave() {
    let given = vec![
        opened(),
        GroupEvent::CurriculumGenerated {
            steps: vec![step(1, vec![])],
            members: vec![id(101), id(102)],
        },
    ];
    let done = GroupCommand::CompleteStep {
        learner_id: id(101),
        step_id: id(601),
    };
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(done.clone())
        .then_events(vec![GroupEvent::StepCompleted {
            learner_id: id(101),
            step_id: id(601),
        }]);
    let mut twice = given.clone();
    twice.push(GroupEvent::StepCompleted {
        learner_id: id(101),
        step_id: id(601),
    });
    AggregateTest::<CohortGroup>::given(twice)
        .when(done)
        .then_events(vec![]);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::CompleteStep {
            learner_id: id(999),
            step_id: id(601),
        })
        .then_error(GroupError::NotAMember);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::CompleteStep {
            learner_id: id(101),
            step_id: id(699),
        })
        .then_error(GroupError::NoSuchStep);
    let left = GroupEvent::MemberLeftGroup {
        learner_id: id(102),
    };
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::Leave {
            learner_id: id(102),
        })
        .then_events(vec![left.clone()]);
    let mut after = given;
    after.push(left);
    AggregateTest::<CohortGroup>::given(after.clone())
        .when(GroupCommand::Leave {
            learner_id: id(102),
        })
        .then_events(vec![]);
    AggregateTest::<CohortGroup>::given(after)
        .when(GroupCommand::CompleteStep {
            learner_id: id(102),
            step_id: id(601),
        })
        .then_error(GroupError::NotAMember);
}

#[test]
fn common_slots_intersect_every_members_week() {
    let a = vec![
        slot(Day::Mon, "18:00", "20:00"),
        slot(Day::Sun, "22:00", "24:00"),
    ];
    let b = vec![slot(Day::Mon, "19:00", "21:00")];
    let c = vec![
        slot(Day::Mon, "19:30", "19:45"),
        slot(Day::Sun, "23:00", "23:30"),
    ];
    assert_eq!(
        trellis_cohorts::common_slots([a.as_slice(), b.as_slice(), c.as_slice()]),
        vec![(19 * 60 + 30, 19 * 60 + 45)]
    );
    assert!(
        trellis_cohorts::common_slots([a.as_slice(), &[slot(Day::Tue, "18:00", "20:00")]])
            .is_empty()
    );
}

#[test]
fn a_later_batch_may_leave_tickets_an_earlier_batch_tried() {
    // Ticket 1 was tried and left queued; tickets 2–3 joined since. A batch of 2–3 alone is
    // whole (and the batch order puts untried tickets first).
    let mut events = queue_of(1);
    events.push(PoolEvent::GroupsFormed {
        batch_id: id(899),
        groups: vec![],
        unplaced: vec![Unplaced {
            ticket_id: id(201),
            learner_id: id(101),
            reason: "not enough learners are queued to form a group yet".into(),
        }],
    });
    events.push(joined(2, evenings()));
    events.push(joined(3, evenings()));
    let state = CohortPool::fold(&events);
    let order: Vec<Uuid> = state.batch_order().iter().map(|(id, _)| *id).collect();
    assert_eq!(order, vec![id(202), id(203), id(201)]);
    AggregateTest::<CohortPool>::given(events)
        .when(form(vec![vec![2, 3]], vec![]))
        .then_events(vec![PoolEvent::GroupsFormed {
            batch_id: id(900),
            groups: vec![FormedGroup {
                group_id: group_id(id(900), 0),
                members: vec![member(2), member(3)],
            }],
            unplaced: vec![],
        }]);
}

#[test]
fn a_learners_overlapping_slots_are_one_range_of_their_week() {
    let overlapping = vec![
        slot(Day::Mon, "10:00", "12:00"),
        slot(Day::Mon, "11:00", "13:00"),
        slot(Day::Mon, "13:00", "14:00"),
    ];
    assert_eq!(
        trellis_cohorts::week_ranges(&overlapping),
        vec![(600, 14 * 60)]
    );
    // Shared minutes are counted once, not once per overlapping slot.
    let other = vec![slot(Day::Mon, "10:00", "13:00")];
    assert_eq!(
        trellis_cohorts::common_slots([overlapping.as_slice(), other.as_slice()]),
        vec![(600, 13 * 60)]
    );
    // Signs are not digits.
    let signed = Slot {
        day: Day::Mon,
        start: "+9:+5".into(),
        end: "10:00".into(),
    };
    assert!(signed.week_minutes().is_err());
    assert!(
        trellis_cohorts::utc_offset_minutes("Mars/Olympus_Mons", jiff::Timestamp::UNIX_EPOCH)
            .is_none()
    );
    assert_eq!(
        trellis_cohorts::utc_offset_minutes("Asia/Kolkata", jiff::Timestamp::UNIX_EPOCH),
        Some(330)
    );
}

fn project_created() -> GroupEvent {
    GroupEvent::ProjectCreated {
        project_id: id(800),
        title: "Capstone".into(),
        created_by: id(101),
    }
}

fn task(assignee: Option<Uuid>, state: TaskState) -> Task {
    Task {
        project_id: id(800),
        title: "Write the parser".into(),
        assignee,
        state,
        due: chrono::NaiveDate::from_ymd_opt(2027, 1, 15),
    }
}

#[test]
fn members_plan_projects_and_tasks_in_their_workspace() {
    let create = GroupCommand::CreateProject {
        project_id: id(800),
        title: "  Capstone ".into(),
        by: id(101),
    };
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(create.clone())
        .then_events(vec![project_created()]);
    // A retried request changes nothing.
    AggregateTest::<CohortGroup>::given(vec![opened(), project_created()])
        .when(create)
        .then_events(vec![]);
    let add = GroupCommand::AddTask {
        project_id: id(800),
        task_id: id(810),
        title: "Write the parser".into(),
        assignee: Some(id(102)),
        due: chrono::NaiveDate::from_ymd_opt(2027, 1, 15),
        by: id(101),
    };
    let added = GroupEvent::TaskAdded {
        task_id: id(810),
        task: task(Some(id(102)), TaskState::Todo),
        added_by: id(101),
    };
    AggregateTest::<CohortGroup>::given(vec![opened(), project_created()])
        .when(add.clone())
        .then_events(vec![added.clone()]);
    let given = vec![opened(), project_created(), added];
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::UpdateTask {
            task_id: id(810),
            changes: TaskChanges {
                state: Some(TaskState::Doing),
                due: Some(None),
                ..TaskChanges::default()
            },
            by: id(102),
        })
        .then_events(vec![GroupEvent::TaskUpdated {
            task_id: id(810),
            task: Task {
                due: None,
                ..task(Some(id(102)), TaskState::Doing)
            },
            updated_by: id(102),
        }]);
    // Setting what is already there is no change.
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::UpdateTask {
            task_id: id(810),
            changes: TaskChanges {
                state: Some(TaskState::Todo),
                assignee: Some(Some(id(102))),
                ..TaskChanges::default()
            },
            by: id(101),
        })
        .then_events(vec![]);
}

#[test]
fn the_workspace_is_the_members_and_assignees_are_members() {
    let given = vec![opened(), project_created()];
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "Mine".into(),
            by: id(999),
        })
        .then_error(GroupError::NotAMember);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::AddTask {
            project_id: id(800),
            task_id: id(811),
            title: "Review".into(),
            assignee: Some(id(999)),
            due: None,
            by: id(101),
        })
        .then_error(GroupError::Field(FieldError::new(
            "assignee",
            "is not a member of the group",
        )));
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::AddTask {
            project_id: id(899),
            task_id: id(811),
            title: "Review".into(),
            assignee: None,
            due: None,
            by: id(101),
        })
        .then_error(GroupError::NoSuchProject);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::UpdateTask {
            task_id: id(899),
            changes: TaskChanges::default(),
            by: id(101),
        })
        .then_error(GroupError::NoSuchTask);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "two\nlines".into(),
            by: id(101),
        })
        .then_error(GroupError::Field(FieldError::new(
            "title",
            trellis_kernel::text::check_line("two\nlines", 200)
                .unwrap_err()
                .to_string(),
        )));
    // A member who left no longer works in the group.
    let mut after = given;
    after.push(GroupEvent::MemberLeftGroup {
        learner_id: id(102),
    });
    AggregateTest::<CohortGroup>::given(after)
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "Later".into(),
            by: id(102),
        })
        .then_error(GroupError::NotAMember);
}

#[test]
fn a_pool_registers_and_removes_webhooks() {
    use trellis_cohorts::webhooks::{PoolWebhooks, WebhookCommand, WebhookError, WebhookEvent};
    let register = |n: u128, url: &str| WebhookCommand::Register {
        webhook_id: id(300 + n),
        url: url.into(),
        registered_by: id(1),
    };
    let registered = WebhookEvent::WebhookRegistered {
        webhook_id: id(301),
        url: "https://hooks.example.com/trellis".into(),
        registered_by: id(1),
    };
    AggregateTest::<PoolWebhooks>::given_no_events()
        .when(register(1, " https://hooks.example.com/trellis "))
        .then_events(vec![registered.clone()]);
    AggregateTest::<PoolWebhooks>::given(vec![registered.clone()])
        .when(register(1, "https://hooks.example.com/trellis"))
        .then_events(vec![]);
    AggregateTest::<PoolWebhooks>::given(vec![registered.clone()])
        .when(register(2, "https://hooks.example.com/trellis"))
        .then_error(WebhookError::Duplicate);
    for (url, reason) in [
        (
            "ftp://example.com/x",
            "must be an absolute http or https URL",
        ),
        ("https:///no-host", "must be an absolute http or https URL"),
        (
            "https://user:pw@example.com/",
            "must not carry a user name or password",
        ),
        (
            "https://example.com/a b",
            "must be an absolute http or https URL",
        ),
        ("https://example.com/#top", "must not have a #fragment"),
    ] {
        AggregateTest::<PoolWebhooks>::given_no_events()
            .when(register(3, url))
            .then_error(WebhookError::Field(FieldError::new("url", reason)));
    }
    let removed = WebhookEvent::WebhookRemoved {
        webhook_id: id(301),
        removed_by: id(2),
    };
    let remove = WebhookCommand::Remove {
        webhook_id: id(301),
        removed_by: id(2),
    };
    AggregateTest::<PoolWebhooks>::given(vec![registered.clone()])
        .when(remove.clone())
        .then_events(vec![removed.clone()]);
    AggregateTest::<PoolWebhooks>::given(vec![registered.clone(), removed.clone()])
        .when(remove)
        .then_events(vec![]);
    // A removed webhook's URL may be registered again, under a new id.
    AggregateTest::<PoolWebhooks>::given(vec![registered, removed])
        .when(register(2, "https://hooks.example.com/trellis"))
        .then_events(vec![WebhookEvent::WebhookRegistered {
            webhook_id: id(302),
            url: "https://hooks.example.com/trellis".into(),
            registered_by: id(1),
        }]);
    AggregateTest::<PoolWebhooks>::given_no_events()
        .when(WebhookCommand::Remove {
            webhook_id: id(309),
            removed_by: id(2),
        })
        .then_error(WebhookError::NotFound);
}

#[test]
fn blank_texts_are_refused_and_a_profile_is_recorded_trimmed() {
    let mut blank_goals = profile(evenings());
    blank_goals.goals = " \n ".into();
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(PoolCommand::Join {
            ticket_id: id(201),
            learner_id: id(101),
            profile: blank_goals,
            joined_at: at(1),
        })
        .then_error(PoolError::Field(FieldError::new(
            "goals",
            "must not be empty",
        )));
    let mut padded = profile(evenings());
    padded.goals = "  Write async services\n".into();
    padded.timezone = " Europe/Lisbon ".into();
    padded.answers = BTreeMap::from([("role".into(), " backend ".into())]);
    AggregateTest::<CohortPool>::given(vec![created()])
        .when(PoolCommand::Join {
            ticket_id: id(201),
            learner_id: id(101),
            profile: padded,
            joined_at: at(1),
        })
        .then_events(vec![joined(1, evenings())]);
    AggregateTest::<CohortPool>::given(queue_of(1))
        .when(PoolCommand::FormGroups {
            batch_id: id(900),
            groups: vec![],
            unplaced: vec![(id(201), "   ".into())],
        })
        .then_error(PoolError::Field(FieldError::new(
            "unplaced.reason",
            "must not be empty",
        )));
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "  ".into(),
            by: id(101),
        })
        .then_error(GroupError::Field(FieldError::new(
            "title",
            "must not be empty",
        )));
    AggregateTest::<CohortGroup>::given(vec![opened()])
        .when(GroupCommand::RecordCurriculum {
            steps: vec![Step {
                title: " ".into(),
                ..step(1, vec![])
            }],
        })
        .then_error(GroupError::Field(FieldError::new(
            "steps[0].title",
            "must not be empty",
        )));
}

#[test]
fn the_workspace_has_bounds_and_retries_change_nothing() {
    let mut full = vec![opened()];
    full.extend((0..50).map(|n| GroupEvent::ProjectCreated {
        project_id: id(10_000 + n),
        title: format!("P{n}"),
        created_by: id(101),
    }));
    AggregateTest::<CohortGroup>::given(full)
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "One more".into(),
            by: id(101),
        })
        .then_error(GroupError::WorkspaceFull(50, "projects"));
    let added = GroupEvent::TaskAdded {
        task_id: id(810),
        task: task(Some(id(102)), TaskState::Todo),
        added_by: id(101),
    };
    let add = |due| GroupCommand::AddTask {
        project_id: id(800),
        task_id: id(810),
        title: "Write the parser".into(),
        assignee: Some(id(102)),
        due,
        by: id(101),
    };
    AggregateTest::<CohortGroup>::given(vec![opened(), project_created(), added.clone()])
        .when(add(chrono::NaiveDate::from_ymd_opt(2027, 1, 15)))
        .then_events(vec![]);
    AggregateTest::<CohortGroup>::given(vec![opened(), project_created()])
        .when(add(chrono::NaiveDate::from_ymd_opt(10_000, 1, 1)))
        .then_error(GroupError::Field(FieldError::new(
            "due",
            "must be a date of the years 1 to 9999",
        )));
    // Member 102 leaves: a non-member cannot change tasks; the task keeps them as assignee
    // when it changes otherwise, but nobody can newly assign them.
    let left = GroupEvent::MemberLeftGroup {
        learner_id: id(102),
    };
    let given = vec![opened(), project_created(), added, left];
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::UpdateTask {
            task_id: id(810),
            changes: TaskChanges {
                state: Some(TaskState::Done),
                ..TaskChanges::default()
            },
            by: id(102),
        })
        .then_error(GroupError::NotAMember);
    AggregateTest::<CohortGroup>::given(given.clone())
        .when(GroupCommand::UpdateTask {
            task_id: id(810),
            changes: TaskChanges {
                state: Some(TaskState::Done),
                assignee: Some(Some(id(102))),
                ..TaskChanges::default()
            },
            by: id(101),
        })
        .then_events(vec![GroupEvent::TaskUpdated {
            task_id: id(810),
            task: task(Some(id(102)), TaskState::Done),
            updated_by: id(101),
        }]);
    AggregateTest::<CohortGroup>::given(given)
        .when(GroupCommand::AddTask {
            project_id: id(800),
            task_id: id(811),
            title: "Review".into(),
            assignee: Some(id(102)),
            due: None,
            by: id(101),
        })
        .then_error(GroupError::Field(FieldError::new(
            "assignee",
            "is not a member of the group",
        )));
    // Nothing happens on a group that never opened.
    AggregateTest::<CohortGroup>::given_no_events()
        .when(GroupCommand::CreateProject {
            project_id: id(801),
            title: "Early".into(),
            by: id(101),
        })
        .then_error(GroupError::NotFound);
}

#[test]
fn a_pool_holds_ten_webhooks_and_urls_are_bounded_as_stored() {
    use trellis_cohorts::webhooks::{PoolWebhooks, WebhookCommand, WebhookError, WebhookEvent};
    let ten: Vec<WebhookEvent> = (0..10)
        .map(|n| WebhookEvent::WebhookRegistered {
            webhook_id: id(400 + n),
            url: format!("https://hooks.example.com/{n}"),
            registered_by: id(1),
        })
        .collect();
    AggregateTest::<PoolWebhooks>::given(ten.clone())
        .when(WebhookCommand::Register {
            webhook_id: id(499),
            url: "https://hooks.example.com/eleventh".into(),
            registered_by: id(1),
        })
        .then_error(WebhookError::Field(FieldError::new(
            "url",
            "a pool has at most 10 webhooks",
        )));
    // A removed id registered again (a retried request) changes nothing.
    let mut removed = ten;
    removed.push(WebhookEvent::WebhookRemoved {
        webhook_id: id(400),
        removed_by: id(1),
    });
    AggregateTest::<PoolWebhooks>::given(removed)
        .when(WebhookCommand::Register {
            webhook_id: id(400),
            url: "https://hooks.example.com/again".into(),
            registered_by: id(1),
        })
        .then_events(vec![]);
    // 1,990 characters that percent-encoding makes longer than 2,000 as stored.
    let long = format!("https://example.com/{}", "é".repeat(985));
    assert!(long.chars().count() <= 2000);
    AggregateTest::<PoolWebhooks>::given_no_events()
        .when(WebhookCommand::Register {
            webhook_id: id(401),
            url: long,
            registered_by: id(1),
        })
        .then_error(WebhookError::Field(FieldError::new(
            "url",
            "must be at most 2000 characters once normalised",
        )));
}

#[test]
fn a_v1_curriculum_upcasts_to_one_made_for_nobody() {
    let v1 = trellis_kernel::RecordedEvent {
        event_id: trellis_kernel::EventId::new(),
        stream_id: trellis_kernel::StreamId::new("cohort_group", id(1)).unwrap(),
        stream_version: 2,
        global_position: trellis_kernel::GlobalPosition(7),
        event_type: "CurriculumGenerated".into(),
        schema_version: 1,
        payload: serde_json::json!({"steps": []}),
        metadata: trellis_kernel::Metadata::default(),
        recorded_at: at(0),
    };
    let upcast = trellis_cohorts::group::upcasters().upcast(v1).unwrap();
    assert_eq!(upcast.schema_version, 2);
    assert_eq!(
        upcast.payload,
        serde_json::json!({"steps": [], "members": []})
    );
    assert_eq!(
        GroupEvent::from_payload("CurriculumGenerated", upcast.payload).unwrap(),
        GroupEvent::CurriculumGenerated {
            steps: vec![],
            members: vec![],
        }
    );
}
