use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn unit(dim: usize, hot: &[usize]) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    for h in hot {
        v[*h] = 1.0;
    }
    let n = (hot.len() as f32).sqrt().max(1.0);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn resource(n: u128, kind: &str, skills: &[(u128, u8)], difficulty: u8) -> ResourceInfo {
    ResourceInfo {
        id: id(n),
        title: format!("resource {n}"),
        kind: kind.to_owned(),
        difficulty,
        duration_minutes: 60,
        skills: skills.iter().map(|(s, l)| (id(*s), *l)).collect(),
        rating_sum: 0,
        rating_count: 0,
    }
}

fn gap(skill: u128, current: u8, target: u8) -> GapSpec {
    GapSpec {
        skill_id: id(skill),
        current,
        target,
        importance: 1.0,
    }
}

/// Three skills on orthogonal axes; resources 100.. tagged with them.
fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for s in 1..=3u128 {
        c.add_skill(id(s), format!("skill {s}"), Some(unit(8, &[s as usize])));
    }
    // Two courses on skill 1, one on skill 2, one on skill 3, one on 1 and 2.
    c.add_resource(resource(100, "course", &[(1, 4)], 2), unit(8, &[1]));
    c.add_resource(resource(101, "course", &[(1, 4)], 2), unit(8, &[1]));
    c.add_resource(resource(102, "book", &[(2, 4)], 2), unit(8, &[2]));
    c.add_resource(resource(103, "video", &[(3, 4)], 2), unit(8, &[3]));
    c.add_resource(
        resource(104, "course", &[(1, 3), (2, 3)], 2),
        unit(8, &[1, 2]),
    );
    c
}

#[test]
fn gaps_drop_skills_already_at_target() {
    let current = HashMap::from([(id(1), 3), (id(2), 1)]);
    let g = gaps(
        &[(id(1), 3, 1.0), (id(2), 4, 1.0), (id(3), 2, 0.5)],
        &current,
    );
    assert_eq!(
        g,
        vec![
            gap(2, 1, 4),
            GapSpec {
                importance: 0.5,
                ..gap(3, 0, 2)
            }
        ]
    );
}

#[test]
fn the_list_covers_every_gap_before_repeating_one() {
    let c = catalog();
    let picks = c.rank(
        &[gap(1, 1, 3), gap(2, 1, 3), gap(3, 1, 3)],
        &RankOptions::default(),
    );
    let first3: Vec<Uuid> = picks.iter().take(3).map(|p| p.resource_id).collect();
    // 104 covers two gaps at once; then 103 for skill 3; a second skill-1 course comes later.
    assert_eq!(first3[0], id(104));
    assert!(first3.contains(&id(103)), "{picks:?}");
    let covered: std::collections::HashSet<Uuid> = picks
        .iter()
        .take(3)
        .flat_map(|p| p.skill_ids.clone())
        .collect();
    assert_eq!(covered.len(), 3);
    for pair in picks.windows(2) {
        assert!(pair[0].score >= pair[1].score, "{picks:?}");
    }
}

#[test]
fn bigger_gaps_weigh_more() {
    let c = catalog();
    let picks = c.rank(&[gap(2, 0, 1), gap(3, 0, 5)], &RankOptions::default());
    assert_eq!(picks[0].resource_id, id(103));
}

#[test]
fn difficulty_fit_and_ratings_break_ties() {
    let mut c = Catalog::default();
    c.add_skill(id(1), "sql".into(), Some(unit(4, &[1])));
    c.add_resource(resource(200, "course", &[(1, 5)], 5), unit(4, &[1]));
    c.add_resource(resource(201, "course", &[(1, 5)], 2), unit(4, &[1]));
    let picks = c.rank(&[gap(1, 1, 4)], &RankOptions::default());
    assert_eq!(picks[0].resource_id, id(201), "difficulty 2 fits level 1");

    let mut c = Catalog::default();
    c.add_skill(id(1), "sql".into(), Some(unit(4, &[1])));
    c.add_resource(resource(300, "course", &[(1, 5)], 2), unit(4, &[1]));
    c.add_resource(resource(301, "course", &[(1, 5)], 2), unit(4, &[1]));
    for _ in 0..10 {
        c.rate(id(301), 5);
        c.rate(id(300), 2);
    }
    let picks = c.rank(&[gap(1, 1, 4)], &RankOptions::default());
    assert_eq!(picks[0].resource_id, id(301));
    assert!(
        picks[0].reason.contains("rated 5.0/5 (10)"),
        "{}",
        picks[0].reason
    );
}

#[test]
fn related_skills_and_text_find_untagged_resources() {
    let mut c = Catalog::default();
    // Skill 1 and 2 nearly the same direction; resource 400 tagged only with skill 2.
    let mut near = unit(4, &[1]);
    near[2] = 0.3;
    crate_normalise(&mut near);
    c.add_skill(id(1), "postgresql".into(), Some(unit(4, &[1])));
    c.add_skill(id(2), "sql".into(), Some(near.clone()));
    c.add_resource(resource(400, "course", &[(2, 4)], 2), near);
    // Resource 401: no tags at all, but its text is about skill 1.
    c.add_resource(resource(401, "article", &[], 2), unit(4, &[1]));
    let picks = c.rank(&[gap(1, 0, 3)], &RankOptions::default());
    let ids: Vec<Uuid> = picks.iter().map(|p| p.resource_id).collect();
    assert!(
        ids.contains(&id(400)) && ids.contains(&id(401)),
        "{picks:?}"
    );
    let without = RankOptions {
        use_related: false,
        use_semantic: false,
        ..RankOptions::default()
    };
    assert!(c.rank(&[gap(1, 0, 3)], &without).is_empty());
}

fn crate_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

#[test]
fn reasons_name_the_skills_and_gap() {
    let c = catalog();
    let picks = c.rank(&[gap(3, 1, 4)], &RankOptions::default());
    assert_eq!(picks[0].resource_id, id(103));
    assert!(
        picks[0]
            .reason
            .starts_with("Covers skill 3 (level 1 → 4); difficulty 2/5, 60 min"),
        "{}",
        picks[0].reason
    );
    assert_eq!(picks[0].skill_ids, vec![id(3)]);
}

#[test]
fn no_gaps_or_no_resources_give_an_empty_list() {
    assert!(catalog().rank(&[], &RankOptions::default()).is_empty());
    assert!(
        Catalog::default()
            .rank(&[gap(1, 0, 3)], &RankOptions::default())
            .is_empty()
    );
    assert!(
        catalog()
            .rank(&[gap(1, 3, 3)], &RankOptions::default())
            .is_empty()
    );
}

#[test]
fn a_resource_is_added_once() {
    let mut c = catalog();
    assert!(!c.add_resource(resource(100, "course", &[(1, 4)], 2), unit(8, &[1])));
    assert_eq!(c.len(), 5);
}
