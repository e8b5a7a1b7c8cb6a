//! Values of pools and tickets, each checking its own rules.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{check_line, required_text};
use uuid::Uuid;

use crate::FieldError;
use crate::limits::{
    ANSWER_MAX, ANSWERS_MAX, CRITERIA_MAX, GOALS_MAX, GROUP_SIZE_MAX, MAX_WAIT_SECONDS_MAX,
    MIN_QUEUE_MAX, MIN_QUEUE_MIN, SKILLS_MAX, SLOTS_MAX,
};

/// Attributes every learner has; a pool may also weigh custom answers, named
/// `answers.<key>` (key: 1 to 40 of `a-z`, `0-9`, `_`).
pub const BUILTIN_ATTRIBUTES: &[&str] = &["skills", "goals", "timezone", "availability"];

const ANSWER_PREFIX: &str = "answers.";

/// Group sizes a pool forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSize {
    /// Smallest group (at least 2).
    pub min: u32,
    /// Largest group (at least `min`, at most 50).
    pub max: u32,
}

impl GroupSize {
    /// Checks the bounds.
    ///
    /// # Errors
    /// The field that breaks them.
    pub fn check(self) -> Result<Self, FieldError> {
        if self.min < 2 {
            return Err(FieldError::new("group_size.min", "must be at least 2"));
        }
        if self.max < self.min {
            return Err(FieldError::new(
                "group_size.max",
                "must be at least group_size.min",
            ));
        }
        if self.max > GROUP_SIZE_MAX {
            return Err(FieldError::new(
                "group_size.max",
                format!("must be at most {GROUP_SIZE_MAX}"),
            ));
        }
        Ok(self)
    }
}

/// How a criterion scores a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Members alike (low dispersion).
    Similar,
    /// Members different (high coverage or dispersion).
    Diverse,
}

/// One weighted criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// `skills`, `goals`, `timezone`, `availability` or `answers.<key>`.
    pub attribute: String,
    /// Similar or diverse.
    pub mode: Mode,
    /// 0 to 1.
    pub weight: f64,
}

impl Criterion {
    /// The custom answer key, for `answers.<key>`.
    pub fn answer_key(&self) -> Option<&str> {
        self.attribute.strip_prefix(ANSWER_PREFIX)
    }
}

fn valid_key(key: &str) -> bool {
    (1..=40).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a pool's criteria: known attributes, each once, weights in 0–1.
///
/// # Errors
/// The first field that breaks a rule (`criteria[1].weight`).
pub fn check_criteria(criteria: &[Criterion]) -> Result<(), FieldError> {
    if criteria.len() > CRITERIA_MAX {
        return Err(FieldError::new(
            "criteria",
            format!("at most {CRITERIA_MAX} criteria"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, criterion) in criteria.iter().enumerate() {
        let known = BUILTIN_ATTRIBUTES.contains(&criterion.attribute.as_str())
            || criterion.answer_key().is_some_and(valid_key);
        if !known {
            return Err(FieldError::new(
                format!("criteria[{i}].attribute"),
                "must be skills, goals, timezone, availability or answers.<key> (a-z, 0-9, _)",
            ));
        }
        if !seen.insert(criterion.attribute.as_str()) {
            return Err(FieldError::new(
                format!("criteria[{i}].attribute"),
                "is weighed twice",
            ));
        }
        if !(0.0..=1.0).contains(&criterion.weight) || criterion.weight.is_nan() {
            return Err(FieldError::new(
                format!("criteria[{i}].weight"),
                "must be between 0 and 1",
            ));
        }
    }
    Ok(())
}

/// When a pool forms a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRule {
    /// As soon as this many tickets are queued (2 to 10,000).
    pub min_queue: u32,
    /// Or when the oldest new ticket has waited this long (1 s to 7 days).
    pub max_wait_seconds: u32,
}

impl BatchRule {
    /// Checks the bounds.
    ///
    /// # Errors
    /// The field that breaks them.
    pub fn check(self) -> Result<Self, FieldError> {
        if !(MIN_QUEUE_MIN..=MIN_QUEUE_MAX).contains(&self.min_queue) {
            return Err(FieldError::new(
                "batch.min_queue",
                format!("must be {MIN_QUEUE_MIN} to {MIN_QUEUE_MAX}"),
            ));
        }
        if !(1..=MAX_WAIT_SECONDS_MAX).contains(&self.max_wait_seconds) {
            return Err(FieldError::new(
                "batch.max_wait_seconds",
                format!("must be 1 to {MAX_WAIT_SECONDS_MAX}"),
            ));
        }
        Ok(self)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// A weekly slot in UTC, `start` before `end` on the same day (`"HH:MM"`; `end` may be
/// `"24:00"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Day.
    pub day: Day,
    /// Start, `HH:MM`.
    pub start: String,
    /// End, `HH:MM`.
    pub end: String,
}

fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl Slot {
    /// Minutes from Monday 00:00 UTC: `[start, end)`.
    ///
    /// # Errors
    /// A malformed time or an empty slot, naming `start` or `end` (the caller prefixes it).
    pub fn week_minutes(&self) -> Result<(u32, u32), FieldError> {
        let start =
            minutes(&self.start).ok_or_else(|| FieldError::new("start", "must be HH:MM"))?;
        let end = minutes(&self.end).ok_or_else(|| FieldError::new("end", "must be HH:MM"))?;
        if start >= 24 * 60 {
            return Err(FieldError::new("start", "must be before 24:00"));
        }
        if end <= start {
            return Err(FieldError::new("end", "must be after start"));
        }
        let day = self.day as u32 * 24 * 60;
        Ok((day + start, day + end))
    }
}

/// Minute ranges `[start, end)` from Monday 00:00 UTC, sorted, overlapping or touching ranges
/// merged into one.
pub fn merged(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// A learner's week: their slots as merged minute ranges (malformed slots count as
/// unavailable).
pub fn week_ranges(slots: &[Slot]) -> Vec<(u32, u32)> {
    merged(slots.iter().filter_map(|s| s.week_minutes().ok()).collect())
}

/// The minutes two weeks (each sorted and merged) share.
pub fn intersect(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The weekly minutes every one of `members` is available (empty: no common slot).
pub fn common_slots<'a>(members: impl IntoIterator<Item = &'a [Slot]>) -> Vec<(u32, u32)> {
    let mut weeks = members.into_iter().map(week_ranges);
    let Some(first) = weeks.next() else {
        return Vec::new();
    };
    weeks.fold(first, |shared, week| intersect(&shared, &week))
}

/// A skill a learner has, at a level 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillLevel {
    /// The catalog skill.
    pub skill_id: Uuid,
    /// 1 (beginner) to 5 (expert).
    pub level: u8,
}

/// What a learner tells the pool when joining its queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerProfile {
    /// Skills with levels (each skill once).
    pub skills: Vec<SkillLevel>,
    /// What they want to learn (free text).
    pub goals: String,
    /// IANA time zone name (of the time zone database compiled in).
    pub timezone: String,
    /// Weekly availability in UTC.
    pub availability: Vec<Slot>,
    /// Answers to the pool's custom attributes.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

/// The UTC offset of the IANA zone `zone` at `at`, in minutes (`None`: no such zone).
pub fn utc_offset_minutes(zone: &str, at: jiff::Timestamp) -> Option<i32> {
    jiff::tz::db()
        .get(zone)
        .ok()
        .map(|tz| tz.to_offset(at).seconds() / 60)
}

impl LearnerProfile {
    /// The profile as recorded, checked against the pool's criteria (every custom attribute
    /// answered): goals, time zone and answers without surrounding whitespace, goals not
    /// empty.
    ///
    /// # Errors
    /// The first field that breaks a rule.
    pub fn checked(&self, criteria: &[Criterion]) -> Result<Self, FieldError> {
        if self.skills.len() > SKILLS_MAX {
            return Err(FieldError::new("skills", format!("at most {SKILLS_MAX}")));
        }
        let mut seen = BTreeSet::new();
        for (i, skill) in self.skills.iter().enumerate() {
            if !(1..=5).contains(&skill.level) {
                return Err(FieldError::new(
                    format!("skills[{i}].level"),
                    "must be 1 to 5",
                ));
            }
            if !seen.insert(skill.skill_id) {
                return Err(FieldError::new(
                    format!("skills[{i}].skill_id"),
                    "is listed twice",
                ));
            }
        }
        let goals = required_text(&self.goals, GOALS_MAX)
            .map_err(|p| FieldError::new("goals", p.to_string()))?;
        let timezone = self.timezone.trim();
        if timezone.len() > 64 || jiff::tz::db().get(timezone).is_err() {
            return Err(FieldError::new(
                "timezone",
                "must be an IANA time zone name such as Europe/Lisbon",
            ));
        }
        if self.availability.is_empty() || self.availability.len() > SLOTS_MAX {
            return Err(FieldError::new(
                "availability",
                format!("must list 1 to {SLOTS_MAX} weekly slots"),
            ));
        }
        for (i, slot) in self.availability.iter().enumerate() {
            slot.week_minutes()
                .map_err(|e| FieldError::new(format!("availability[{i}].{}", e.field), e.reason))?;
        }
        if self.answers.len() > ANSWERS_MAX {
            return Err(FieldError::new("answers", format!("at most {ANSWERS_MAX}")));
        }
        for (key, answer) in &self.answers {
            if !valid_key(key) {
                return Err(FieldError::new(
                    format!("answers.{key}"),
                    "keys are 1 to 40 of a-z, 0-9, _",
                ));
            }
            check_line(answer.trim(), ANSWER_MAX)
                .map_err(|p| FieldError::new(format!("answers.{key}"), p.to_string()))?;
        }
        for criterion in criteria {
            if let Some(key) = criterion.answer_key()
                && !self.answers.contains_key(key)
            {
                return Err(FieldError::new(
                    format!("answers.{key}"),
                    "is required by the pool's criteria",
                ));
            }
        }
        Ok(Self {
            skills: self.skills.clone(),
            goals: goals.to_owned(),
            timezone: timezone.to_owned(),
            availability: self.availability.clone(),
            answers: self
                .answers
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .collect(),
        })
    }
}
