//! ESCO occupations shipped with Trellis: the target roles of IDPs (the edge expands them) and
//! co-occurrence evidence for the recommender.

use trellis_development::esco::Occupations;

/// ESCO occupations shipped with Trellis (`data/esco/occupations.jsonl`, CC BY 4.0; see
/// `data/esco/README.md`).
pub fn bundled_occupations() -> Occupations {
    // The file is part of the repository and parsed by a test, so this cannot fail at run time.
    Occupations::parse(include_str!("../../../data/esco/occupations.jsonl")).unwrap_or_default()
}
