use super::*;

fn week(day: u32, from_hour: u32, to_hour: u32) -> (u32, u32) {
    (day * 1440 + from_hour * 60, day * 1440 + to_hour * 60)
}

fn learner(skill: u128, role: &str, slots: Vec<(u32, u32)>) -> Learner {
    Learner {
        skills: vec![(uuid::Uuid::from_u128(skill), 3)],
        goal_words: goal_words("Build web services in Rust"),
        skill_vector: None,
        goal_vector: None,
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
    assert!((Scorer::new(&same, &skills(Mode::Similar)).group(&[0, 1]) - 1.0).abs() < 1e-9);
    assert!(
        Scorer::new(&differ, &skills(Mode::Similar))
            .group(&[0, 1])
            .abs()
            < 1e-9
    );
    assert!((Scorer::new(&differ, &skills(Mode::Diverse)).group(&[0, 1]) - 1.0).abs() < 1e-9);
    let role = |mode| {
        vec![Criterion {
            attribute: Attribute::Answer("role".into()),
            mode,
            weight: 1.0,
        }]
    };
    assert!((Scorer::new(&same, &role(Mode::Similar)).group(&[0, 1]) - 1.0).abs() < 1e-9);
    assert!((Scorer::new(&differ, &role(Mode::Diverse)).group(&[0, 1]) - 1.0).abs() < 1e-9);
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
    let score = Scorer::new(&learners, &similar).group(&[0, 1]);
    assert!((score - 1.0).abs() < 1e-9, "{score}");
}

/// A unit vector pointing mostly along `axis` (of 8), quantized as the service does.
fn along(axis: usize, tilt: f32) -> Vec<i8> {
    let mut v = [tilt; 8];
    v[axis] = 1.0;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| (x / norm * 127.0).round() as i8).collect()
}

#[test]
fn skills_and_goals_compare_as_vectors_when_every_learner_has_them() {
    // Different skill ids and goal words, but the same meaning (same vectors).
    let mut a = learner(1, "backend", vec![week(0, 0, 24)]);
    let mut b = learner(2, "backend", vec![week(0, 0, 24)]);
    b.goal_words = goal_words("Systems programming");
    let similar = |attribute| {
        vec![Criterion {
            attribute,
            mode: Mode::Similar,
            weight: 1.0,
        }]
    };
    let skills = similar(Attribute::Skills);
    let goals = similar(Attribute::Goals);
    let pair = vec![a.clone(), b.clone()];
    assert!(Scorer::new(&pair, &skills).group(&[0, 1]).abs() < 1e-9);
    assert!(Scorer::new(&pair, &goals).group(&[0, 1]).abs() < 1e-9);

    a.skill_vector = Some(along(0, 0.0));
    b.skill_vector = Some(along(0, 0.0));
    a.goal_vector = Some(along(3, 0.0));
    b.goal_vector = Some(along(3, 0.0));
    let pair = vec![a.clone(), b.clone()];
    assert!(matches!(
        Scorer::new(&pair, &skills).skills,
        Pairwise::Table { .. }
    ));
    let s = Scorer::new(&pair, &skills).group(&[0, 1]);
    assert!((s - 1.0).abs() < 1e-3, "{s}");
    let g = Scorer::new(&pair, &goals).group(&[0, 1]);
    assert!((g - 1.0).abs() < 1e-3, "{g}");

    // Orthogonal meanings: no similarity; opposite ones count as none, not below zero.
    b.skill_vector = Some(along(1, 0.0));
    let pair = vec![a.clone(), b.clone()];
    assert!(Scorer::new(&pair, &skills).group(&[0, 1]).abs() < 1e-3);
    b.skill_vector = Some(a.skill_vector.clone().unwrap().iter().map(|x| -x).collect());
    let pair = vec![a.clone(), b.clone()];
    assert!(Scorer::new(&pair, &skills).group(&[0, 1]).abs() < 1e-9);

    // One learner without vectors: the whole batch compares by ids (one scale per batch).
    b.skill_vector = None;
    let pair = vec![a, b];
    assert!(matches!(
        Scorer::new(&pair, &skills).skills,
        Pairwise::Fallback(_)
    ));
    assert!(Scorer::new(&pair, &skills).group(&[0, 1]).abs() < 1e-9);
}

#[test]
fn precomputed_and_direct_vector_similarities_agree() {
    let mut learners = batch(30);
    for (i, l) in learners.iter_mut().enumerate() {
        l.skill_vector = Some(along(i % 8, 0.1 * (i % 5) as f32));
        l.goal_vector = Some(along((i * 3) % 8, 0.2));
    }
    let criteria = vec![
        Criterion {
            attribute: Attribute::Skills,
            mode: Mode::Diverse,
            weight: 0.5,
        },
        Criterion {
            attribute: Attribute::Goals,
            mode: Mode::Similar,
            weight: 0.5,
        },
    ];
    let table = Scorer::new(&learners, &criteria);
    assert!(matches!(table.skills, Pairwise::Table { .. }));
    let direct = Scorer {
        skills: Pairwise::Vectors(skill_vector),
        goals: Pairwise::Vectors(goal_vector),
        ..Scorer::new(&learners, &criteria)
    };
    for group in [vec![0, 1, 2, 3], vec![4, 9, 17, 25, 29], vec![5, 6]] {
        let (t, d) = (table.group(&group), direct.group(&group));
        assert!((t - d).abs() < 1e-6, "{group:?}: {t} vs {d}");
    }
    // A criterion that weighs nothing costs nothing: no table is built for it.
    let weightless = vec![Criterion {
        weight: 0.0,
        ..criteria[0].clone()
    }];
    assert!(matches!(
        Scorer::new(&learners, &weightless).skills,
        Pairwise::Fallback(_)
    ));
    // A formation scored with vectors keeps the hard constraints.
    let outcome = form(&learners, &Settings::new(4, 6, criteria, 7));
    assert_eq!(
        violations(&outcome, &learners, &Settings::new(4, 6, vec![], 7)),
        0
    );
}
