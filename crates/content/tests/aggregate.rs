//! Given/when/then for the content aggregate; emitted events are schema-checked.

#![allow(clippy::unwrap_used)]

use trellis_content::content::{
    ATOMS_PART_BYTES, Content, ContentCommand, ContentError, ContentEvent, ContentStatus,
};
use trellis_content::{Atom, ContentMetadata, MediaType, Quality, StoredFile};
use trellis_kernel::Aggregate;
use trellis_testkit::harness::AggregateTest;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn file(n: u8) -> StoredFile {
    let sha256 = format!("{n:02x}").repeat(32);
    StoredFile {
        key: StoredFile::key_of(&sha256),
        sha256,
        size: 1_234,
        media_type: MediaType::Markdown,
        filename: Some("ownership.md".into()),
    }
}

fn uploaded() -> ContentEvent {
    ContentEvent::ContentUploaded {
        title: "Ownership in Rust".into(),
        file: file(1),
        metadata: ContentMetadata {
            author: Some("Ada".into()),
            subject: None,
            language: Some("en".into()),
            tags: vec!["rust".into()],
        },
        uploaded_by: id(9),
    }
}

fn atom(sequence: u32, prerequisites: Vec<Uuid>) -> Atom {
    Atom {
        id: id(100 + u128::from(sequence)),
        sequence,
        title: format!("Section {sequence}"),
        text: "Every value has one owner; moving it transfers ownership.".into(),
        objective: "Explain how ownership moves values".into(),
        concepts: vec![trellis_content::Concept {
            phrase: "ownership".into(),
            skill_ids: vec![id(7)],
        }],
        difficulty: 2,
        estimated_minutes: 3,
        prerequisites,
        quality: Quality {
            score: 0.8,
            self_contained: 1.0,
            length_in_range: 0.5,
            has_objective: 1.0,
            concept_density: 0.7,
        },
        vector: None,
    }
}

fn record(version: u32, atoms: Vec<Atom>) -> ContentCommand {
    ContentCommand::RecordAtoms {
        content_version: version,
        atomizer_version: 1,
        atoms,
    }
}

#[test]
fn an_upload_trims_and_normalizes_and_is_processing() {
    AggregateTest::<Content>::given_no_events()
        .when(ContentCommand::Upload {
            title: "  Ownership in Rust ".into(),
            file: file(1),
            metadata: ContentMetadata {
                author: Some(" Ada ".into()),
                subject: Some("  ".into()),
                language: Some("en".into()),
                tags: vec!["rust".into(), " rust ".into()],
            },
            uploaded_by: id(9),
        })
        .then_events(vec![uploaded()]);
    AggregateTest::<Content>::given(vec![uploaded()])
        .when(ContentCommand::Upload {
            title: "Again".into(),
            file: file(1),
            metadata: ContentMetadata::default(),
            uploaded_by: id(9),
        })
        .then_error(ContentError::AlreadyExists);
    let state = Content::fold(&[uploaded()]);
    assert_eq!(state.status, ContentStatus::Processing);
    assert_eq!(state.content_version, 1);
}

#[test]
fn bad_uploads_name_what_is_wrong() {
    let upload =
        |title: &str, file: StoredFile, metadata: ContentMetadata| ContentCommand::Upload {
            title: title.into(),
            file,
            metadata,
            uploaded_by: id(9),
        };
    AggregateTest::<Content>::given_no_events()
        .when(upload(" ", file(1), ContentMetadata::default()))
        .then_error(ContentError::BadTitle);
    let mut bad = file(1);
    bad.key = "elsewhere".into();
    AggregateTest::<Content>::given_no_events()
        .when(upload("T", bad, ContentMetadata::default()))
        .then_error(ContentError::BadFile);
    AggregateTest::<Content>::given_no_events()
        .when(upload(
            "T",
            file(1),
            ContentMetadata {
                language: Some("en_US!".into()),
                ..ContentMetadata::default()
            },
        ))
        .then_error(ContentError::BadLanguage);
    AggregateTest::<Content>::given_no_events()
        .when(upload(
            "T",
            file(1),
            ContentMetadata {
                tags: (0..21).map(|i| format!("t{i}")).collect(),
                ..ContentMetadata::default()
            },
        ))
        .then_error(ContentError::TooManyTags);
    let error = Content::decide(
        &Content::fold(&[]),
        &upload("a\u{202e}b", file(1), ContentMetadata::default()),
    )
    .unwrap_err();
    assert!(matches!(error, ContentError::Text(e) if e.field == "title"));
}

#[test]
fn the_atomizers_answer_completes_the_content_once() {
    let atoms = vec![atom(1, vec![]), atom(2, vec![id(101)])];
    let atomized = ContentEvent::ContentAtomized {
        content_version: 1,
        atomizer_version: 1,
        part: 1,
        parts: 1,
        atoms: atoms.clone(),
    };
    AggregateTest::<Content>::given(vec![uploaded()])
        .when(record(1, atoms.clone()))
        .then_events(vec![atomized.clone()]);
    // A redelivered or stale answer changes nothing: never atomized twice.
    AggregateTest::<Content>::given(vec![uploaded(), atomized.clone()])
        .when(record(1, atoms.clone()))
        .then_events(vec![]);
    AggregateTest::<Content>::given(vec![uploaded(), atomized.clone()])
        .when(ContentCommand::RecordFailure {
            content_version: 1,
            atomizer_version: 1,
            reason: "late".into(),
        })
        .then_events(vec![]);
    let state = Content::fold(&[uploaded(), atomized]);
    assert_eq!(state.status, ContentStatus::Completed);
    assert_eq!(state.atoms, 2);
    AggregateTest::<Content>::given_no_events()
        .when(record(1, atoms))
        .then_error(ContentError::NotFound);
}

#[test]
fn atoms_must_be_well_formed_and_prerequisites_point_back() {
    let refuse =
        |atoms: Vec<Atom>| Content::decide(&Content::fold(&[uploaded()]), &record(1, atoms));
    assert_eq!(refuse(vec![]).unwrap_err(), ContentError::NoAtoms);
    // A prerequisite inside the content must come earlier: the graph stays acyclic.
    let forward = refuse(vec![atom(1, vec![id(102)]), atom(2, vec![])]).unwrap_err();
    assert!(
        matches!(&forward, ContentError::BadAtom { field, .. } if field == "atoms[0].prerequisites"),
        "{forward:?}"
    );
    let mut hard = atom(1, vec![]);
    hard.difficulty = 6;
    assert!(matches!(
        refuse(vec![hard]).unwrap_err(),
        ContentError::BadAtom { field, .. } if field == "atoms[0].difficulty"
    ));
    let mut out_of_order = atom(2, vec![]);
    out_of_order.sequence = 5;
    assert!(matches!(
        refuse(vec![atom(1, vec![]), out_of_order]).unwrap_err(),
        ContentError::BadAtom { field, .. } if field == "atoms[1].sequence"
    ));
    let mut noisy = atom(1, vec![]);
    noisy.quality.score = 1.5;
    assert!(refuse(vec![noisy]).is_err());
    // Prerequisites in other contents are fine.
    assert!(refuse(vec![atom(1, vec![id(999)])]).is_ok());
}

#[test]
fn a_long_documents_atoms_are_split_into_parts_that_fit_the_store() {
    let text = "word ".repeat(3_000);
    let atoms: Vec<Atom> = (1..=60)
        .map(|n| {
            let mut a = atom(n, vec![]);
            a.text = text.clone();
            a
        })
        .collect();
    let events = Content::decide(&Content::fold(&[uploaded()]), &record(1, atoms)).unwrap();
    assert!(events.len() > 1, "900 KB of atoms in one event");
    let total = events.len();
    let mut seen = 0;
    for (i, event) in events.iter().enumerate() {
        let ContentEvent::ContentAtomized {
            part, parts, atoms, ..
        } = event
        else {
            panic!("{event:?}")
        };
        assert_eq!(*part as usize, i + 1);
        assert_eq!(*parts as usize, total);
        assert!(serde_json::to_vec(atoms).unwrap().len() <= ATOMS_PART_BYTES + 20_000 * 4);
        seen += atoms.len();
    }
    assert_eq!(seen, 60);
    let mut all = vec![uploaded()];
    all.extend(events);
    let state = Content::fold(&all);
    assert_eq!(state.status, ContentStatus::Completed);
    assert_eq!(state.atoms, 60);
}

#[test]
fn failures_versions_reatomization_and_archive() {
    let failed = ContentEvent::AtomizationFailed {
        content_version: 1,
        atomizer_version: 1,
        reason: "the PDF has no text layer".into(),
    };
    AggregateTest::<Content>::given(vec![uploaded()])
        .when(ContentCommand::RecordFailure {
            content_version: 1,
            atomizer_version: 1,
            reason: "  the PDF has no text layer ".into(),
        })
        .then_events(vec![failed.clone()]);
    AggregateTest::<Content>::given(vec![uploaded()])
        .when(ContentCommand::Reatomize {
            requested_by: id(1),
        })
        .then_error(ContentError::AlreadyProcessing);
    AggregateTest::<Content>::given(vec![uploaded(), failed.clone()])
        .when(ContentCommand::Reatomize {
            requested_by: id(1),
        })
        .then_events(vec![ContentEvent::ContentReatomizationRequested {
            requested_by: id(1),
        }]);
    let version2 = ContentEvent::ContentVersionUploaded {
        content_version: 2,
        file: file(2),
        uploaded_by: id(9),
    };
    AggregateTest::<Content>::given(vec![uploaded(), failed.clone()])
        .when(ContentCommand::UploadVersion {
            file: file(2),
            uploaded_by: id(9),
        })
        .then_events(vec![version2.clone()]);
    // An answer for version 1 arriving after version 2 was uploaded is stale.
    AggregateTest::<Content>::given(vec![uploaded(), version2.clone()])
        .when(record(1, vec![atom(1, vec![])]))
        .then_events(vec![]);
    let archived = ContentEvent::ContentArchived { archived_by: id(1) };
    AggregateTest::<Content>::given(vec![uploaded()])
        .when(ContentCommand::Archive { archived_by: id(1) })
        .then_events(vec![archived.clone()]);
    AggregateTest::<Content>::given(vec![uploaded(), archived.clone()])
        .when(ContentCommand::Archive { archived_by: id(1) })
        .then_events(vec![]);
    AggregateTest::<Content>::given(vec![uploaded(), failed, archived])
        .when(ContentCommand::UploadVersion {
            file: file(3),
            uploaded_by: id(9),
        })
        .then_error(ContentError::Archived);
}
