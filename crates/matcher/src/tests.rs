use super::*;

fn week(day: u32, from_hour: u32, to_hour: u32) -> (u32, u32) {
    (day * 1440 + from_hour * 60, day * 1440 + to_hour * 60)
}

fn learner(skill: u128, role: &str, slots: Vec<(u32, u32)>) -> Learner {
    Learner {
        skills: vec![(uuid::Uuid::from_u128(skill), 3)],
        goal_words: goal_words("Build web services in Rust"),
        utc_offset_minutes: 0,
        slots,
        answers: BTreeMap::from([("role".to_owned(), role.to_owned())]),
    }
}

fn criteria() -> Vec<Criterion> {
    vec![
        Criterion {
            attribute: Attribute::Skills,
            mode: Mode::Diverse,
            weight: 0.6,
        },
        Criterion {
            attribute: Attribute::Answer("role".into()),
            mode: Mode::Similar,
            weight: 0.4,
        },
    ]
}

/// A synthetic batch: `n` learners, skills from 6, roles from 3, evenings on one of two days.
fn batch(n: usize) -> Vec<Learner> {
    (0..n)
        .map(|i| {
            let day = u32::try_from(i % 2).unwrap();
            learner(
                (i % 6) as u128,
                ["backend", "frontend", "data"][i % 3],
                vec![week(day, 18, 21), week(4, 9, 10)],
            )
        })
        .collect()
}

#[test]
fn every_learner_is_placed_once_in_groups_within_bounds() {
    let learners = batch(12);
    let settings = Settings::new(3, 4, criteria(), 7);
    let outcome = form(&learners, &settings);
    assert_eq!(violations(&outcome, &learners, &settings), 0, "{outcome:?}");
    assert!(outcome.unplaced.is_empty(), "{outcome:?}");
    assert_eq!(outcome.groups.iter().map(Vec::len).sum::<usize>(), 12);
}

#[test]
fn the_same_input_and_seed_give_the_same_groups() {
    let learners = batch(200);
    let settings = Settings::new(4, 6, criteria(), 42);
    assert_eq!(form(&learners, &settings), form(&learners, &settings));
}

#[test]
fn learners_without_a_shared_slot_wait_with_a_reason() {
    let mut learners = batch(6);
    // Saturday mornings only: nobody else is free then.
    learners.push(learner(9, "data", vec![week(5, 8, 9)]));
    let settings = Settings::new(3, 4, criteria(), 1);
    let outcome = form(&learners, &settings);
    assert_eq!(violations(&outcome, &learners, &settings), 0, "{outcome:?}");
    assert_eq!(outcome.unplaced, vec![(6, NO_SHARED_SLOT)]);
}

#[test]
fn too_few_learners_form_no_group() {
    let learners = batch(2);
    let outcome = form(&learners, &Settings::new(3, 4, criteria(), 1));
    assert!(outcome.groups.is_empty());
    assert_eq!(outcome.unplaced, vec![(0, NOT_ENOUGH), (1, NOT_ENOUGH)]);
}

#[test]
fn remainders_make_groups_within_bounds() {
    for n in [5, 7, 9, 10, 11, 13, 101] {
        let learners: Vec<Learner> = (0..n)
            .map(|i| learner(i as u128 % 4, "backend", vec![week(0, 0, 24)]))
            .collect();
        let settings = Settings::new(3, 4, criteria(), 3);
        let outcome = form(&learners, &settings);
        assert_eq!(
            violations(&outcome, &learners, &settings),
            0,
            "{n}: {outcome:?}"
        );
        let placed: usize = outcome.groups.iter().map(Vec::len).sum();
        assert_eq!(placed + outcome.unplaced.len(), n);
        assert!(outcome.unplaced.len() < 3, "{n}: {outcome:?}");
    }
}

#[test]
fn local_search_beats_the_greedy_baseline_on_the_worst_group() {
    let learners = batch(240);
    let settings = Settings::new(4, 5, criteria(), 11);
    let ours = form(&learners, &settings);
    let baseline = greedy(&learners, &settings);
    assert_eq!(violations(&ours, &learners, &settings), 0);
    assert!(
        ours.worst() >= baseline.worst(),
        "ours {} < greedy {}",
        ours.worst(),
        baseline.worst()
    );
}

#[test]
fn scores_follow_the_modes() {
    let same = vec![
        learner(1, "backend", vec![week(0, 0, 24)]),
        learner(1, "backend", vec![week(0, 0, 24)]),
    ];
    let differ = vec![
        learner(1, "backend", vec![week(0, 0, 24)]),
        learner(2, "data", vec![week(0, 0, 24)]),
    ];
    let skills = |mode| {
        vec![Criterion {
            attribute: Attribute::Skills,
            mode,
            weight: 1.0,
        }]
    };
    assert!((group_score(&[0, 1], &same, &skills(Mode::Similar)) - 1.0).abs() < 1e-9);
    assert!(group_score(&[0, 1], &differ, &skills(Mode::Similar)).abs() < 1e-9);
    assert!((group_score(&[0, 1], &differ, &skills(Mode::Diverse)) - 1.0).abs() < 1e-9);
    let role = |mode| {
        vec![Criterion {
            attribute: Attribute::Answer("role".into()),
            mode,
            weight: 1.0,
        }]
    };
    assert!((group_score(&[0, 1], &same, &role(Mode::Similar)) - 1.0).abs() < 1e-9);
    assert!((group_score(&[0, 1], &differ, &role(Mode::Diverse)) - 1.0).abs() < 1e-9);
    assert_eq!(
        Attribute::parse("answers.role"),
        Some(Attribute::Answer("role".into()))
    );
    assert_eq!(Attribute::parse("shoe_size"), None);
}

#[test]
fn availability_scores_stay_within_one_for_overlapping_slots() {
    // A's two slots overlap; as merged ranges they share 180 minutes with B, no more.
    let a = trellis_cohorts::merged(vec![week(0, 10, 12), week(0, 11, 13)]);
    let b = vec![week(0, 10, 13)];
    let learners = vec![learner(1, "x", a), learner(2, "y", b)];
    let similar = vec![Criterion {
        attribute: Attribute::Availability,
        mode: Mode::Similar,
        weight: 1.0,
    }];
    let score = group_score(&[0, 1], &learners, &similar);
    assert!((score - 1.0).abs() < 1e-9, "{score}");
}
