//! Learning atoms: the small, self-contained units the atomizer cuts a document into.

use serde::{Deserialize, Serialize};
use trellis_kernel::text::{check_line, check_multiline};
use uuid::Uuid;

use crate::content::ContentError;
use crate::limits::{
    ATOM_TEXT_MAX, ATOM_TITLE_MAX, CONCEPT_MAX, CONCEPT_SKILLS_MAX, CONCEPTS_MAX,
    ESTIMATED_MINUTES_MAX, OBJECTIVE_MAX, PREREQUISITES_MAX, VECTOR_MAX,
};

/// A keyphrase of an atom, linked to the organization's catalog skills it is close to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concept {
    /// The keyphrase.
    pub phrase: String,
    /// Catalog skills close to it (possibly none).
    pub skill_ids: Vec<Uuid>,
}

/// How good an atom is, 0 to 1, and what the score is made of (each 0 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// The overall score.
    pub score: f64,
    /// It starts without leaning on what came before ("As shown above, …").
    pub self_contained: f64,
    /// Its length is in the target range (about 150 to 600 words).
    pub length_in_range: f64,
    /// It has a learning objective.
    pub has_objective: f64,
    /// Concepts per hundred words, scaled.
    pub concept_density: f64,
}

impl Quality {
    fn check(&self) -> bool {
        [
            self.score,
            self.self_contained,
            self.length_in_range,
            self.has_objective,
            self.concept_density,
        ]
        .iter()
        .all(|v| (0.0..=1.0).contains(v))
    }
}

/// One learning atom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atom {
    /// Atom id (deterministic for the content, its version and the atomizer version).
    pub id: Uuid,
    /// Position in the content, from 1.
    pub sequence: u32,
    /// Title (the section heading it came from, or a made one).
    pub title: String,
    /// The text.
    pub text: String,
    /// One sentence with a Bloom verb, e.g. "Explain how ownership moves values".
    pub objective: String,
    /// Keyphrases and the catalog skills they link to.
    pub concepts: Vec<Concept>,
    /// 1 (introductory) to 5 (expert).
    pub difficulty: u8,
    /// Minutes to study it.
    pub estimated_minutes: u32,
    /// Atoms to study first: earlier atoms of this content, or atoms of other contents of
    /// the organization.
    pub prerequisites: Vec<Uuid>,
    /// Quality and its components.
    pub quality: Quality,
    /// The atom's unit embedding for search (all-MiniLM-L6-v2, 384 components), as base64
    /// of signed bytes (component × 127): part of the atomizer's answer, so search indexes
    /// rebuild from the log without the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

impl Atom {
    /// Checks one atom's fields, naming the failing one under `atoms[i]`.
    ///
    /// # Errors
    /// [`ContentError::BadAtom`] naming the field, or a text error.
    pub fn check(&self, i: usize) -> Result<(), ContentError> {
        let at = |field: &str| format!("atoms[{i}].{field}");
        let bad = |field: &str, why: &str| ContentError::BadAtom {
            field: at(field),
            reason: why.to_owned(),
        };
        if self.title.trim().is_empty() {
            return Err(bad("title", "must not be empty"));
        }
        check_line(&self.title, ATOM_TITLE_MAX).map_err(|p| p.at(at("title")))?;
        if self.text.trim().is_empty() {
            return Err(bad("text", "must not be empty"));
        }
        check_multiline(&self.text, ATOM_TEXT_MAX).map_err(|p| p.at(at("text")))?;
        check_line(&self.objective, OBJECTIVE_MAX).map_err(|p| p.at(at("objective")))?;
        if self.concepts.len() > CONCEPTS_MAX {
            return Err(bad("concepts", "too many concepts"));
        }
        for (c, concept) in self.concepts.iter().enumerate() {
            let field = format!("concepts[{c}].phrase");
            if concept.phrase.trim().is_empty() {
                return Err(bad(&field, "must not be empty"));
            }
            check_line(&concept.phrase, CONCEPT_MAX).map_err(|p| p.at(at(&field)))?;
            if concept.skill_ids.len() > CONCEPT_SKILLS_MAX {
                return Err(bad(&format!("concepts[{c}].skill_ids"), "too many skills"));
            }
        }
        if !(1..=5).contains(&self.difficulty) {
            return Err(bad("difficulty", "must be 1 to 5"));
        }
        if self.estimated_minutes == 0 || self.estimated_minutes > ESTIMATED_MINUTES_MAX {
            return Err(bad("estimated_minutes", "must be 1 to 600"));
        }
        if self.prerequisites.len() > PREREQUISITES_MAX {
            return Err(bad("prerequisites", "too many prerequisites"));
        }
        if self.prerequisites.contains(&self.id) {
            return Err(bad("prerequisites", "an atom cannot require itself"));
        }
        if self
            .vector
            .as_ref()
            .is_some_and(|v| v.len() > VECTOR_MAX || v.is_empty())
        {
            return Err(bad("vector", "must be base64 of at most 1,024 bytes"));
        }
        if !self.quality.check() {
            return Err(bad("quality", "every component must be 0 to 1"));
        }
        Ok(())
    }
}

/// Checks a whole answer: each atom, sequences 1..n in order, unique ids, and prerequisites
/// inside the content pointing only backwards (so the graph is acyclic).
///
/// # Errors
/// The first rule broken.
pub fn check_atoms(atoms: &[Atom]) -> Result<(), ContentError> {
    if atoms.is_empty() {
        return Err(ContentError::NoAtoms);
    }
    if atoms.len() > crate::limits::ATOMS_MAX {
        return Err(ContentError::TooManyAtoms);
    }
    let mut seen = std::collections::HashMap::new();
    for (i, atom) in atoms.iter().enumerate() {
        atom.check(i)?;
        if usize::try_from(atom.sequence).ok() != Some(i + 1) {
            return Err(ContentError::BadAtom {
                field: format!("atoms[{i}].sequence"),
                reason: "sequences must run 1, 2, 3, … in order".into(),
            });
        }
        if seen.insert(atom.id, i).is_some() {
            return Err(ContentError::BadAtom {
                field: format!("atoms[{i}].id"),
                reason: "atom ids must be unique".into(),
            });
        }
    }
    for (i, atom) in atoms.iter().enumerate() {
        for prerequisite in &atom.prerequisites {
            if let Some(&j) = seen.get(prerequisite)
                && j >= i
            {
                return Err(ContentError::BadAtom {
                    field: format!("atoms[{i}].prerequisites"),
                    reason: "a prerequisite inside the content must come earlier".into(),
                });
            }
        }
    }
    Ok(())
}
