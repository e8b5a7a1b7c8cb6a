//! A tally: the smallest aggregate that exercises everything the kernel offers (creation,
//! updates guarded by state, closing, and one event whose schema evolved from v1 to v2).
//!
//! Its events are the kernel's test events: their JSON Schemas live in `events/fixture/` (a test and benchmark fixture, not a product context).

use serde::{Deserialize, Serialize};
use trellis_kernel::{Aggregate, DomainEvent, Upcasters};

/// Commands on a tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TallyCommand {
    /// Start counting.
    Open {
        /// Display name, 1 to 200 characters.
        name: String,
    },
    /// Add points.
    Add {
        /// Points to add, positive.
        amount: i64,
    },
    /// Stop counting; later additions are refused.
    Close,
    /// Certify a closed tally's total (issued by the certifier reaction). Certifying twice
    /// is a no-op, so the reaction may be redelivered safely.
    Certify,
}

/// Events of a tally. Stored adjacently tagged: the variant name is the event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "event_type", content = "payload")]
pub enum TallyEvent {
    /// A tally was opened.
    TallyOpened {
        /// Display name.
        name: String,
    },
    /// Points were added. v2 added `unit`; v1 events are upcast with unit `point`.
    AmountAdded {
        /// Points added.
        amount: i64,
        /// What was counted.
        unit: String,
    },
    /// The tally was closed.
    TallyClosed {
        /// Total at closing.
        total: i64,
    },
    /// The certifier confirmed a closed tally's total.
    TallyCertified {
        /// The certified total.
        total: i64,
    },
}

impl DomainEvent for TallyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::TallyOpened { .. } => "TallyOpened",
            Self::AmountAdded { .. } => "AmountAdded",
            Self::TallyClosed { .. } => "TallyClosed",
            Self::TallyCertified { .. } => "TallyCertified",
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::AmountAdded { .. } => 2,
            _ => 1,
        }
    }
}

/// Folded state.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct TallyState {
    /// Opened and not closed.
    pub open: bool,
    /// Ever opened.
    pub exists: bool,
    /// Sum of amounts.
    pub total: i64,
    /// Certified after closing.
    pub certified: bool,
}

/// Business rules of a tally.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TallyError {
    /// Open on an existing tally.
    #[error("the tally already exists")]
    AlreadyExists,
    /// Add or close on a tally that is not open.
    #[error("the tally is not open")]
    NotOpen,
    /// Certify on a tally that is not closed.
    #[error("the tally is not closed")]
    NotClosed,
    /// Amount zero or negative.
    #[error("amount must be positive")]
    NonPositiveAmount,
    /// Empty or overlong name.
    #[error("name must be 1 to 200 characters")]
    BadName,
}

/// The aggregate marker.
pub struct Tally;

impl Aggregate for Tally {
    const KIND: &'static str = "tally";
    type State = TallyState;
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = TallyError;

    fn decide(state: &TallyState, command: &TallyCommand) -> Result<Vec<TallyEvent>, TallyError> {
        match command {
            TallyCommand::Open { name } => {
                if state.exists {
                    return Err(TallyError::AlreadyExists);
                }
                let len = name.chars().count();
                if len == 0 || len > 200 {
                    return Err(TallyError::BadName);
                }
                Ok(vec![TallyEvent::TallyOpened { name: name.clone() }])
            }
            TallyCommand::Add { amount } => {
                if !state.open {
                    return Err(TallyError::NotOpen);
                }
                if *amount <= 0 {
                    return Err(TallyError::NonPositiveAmount);
                }
                Ok(vec![TallyEvent::AmountAdded {
                    amount: *amount,
                    unit: "point".into(),
                }])
            }
            TallyCommand::Close => {
                if !state.open {
                    return Err(TallyError::NotOpen);
                }
                Ok(vec![TallyEvent::TallyClosed { total: state.total }])
            }
            TallyCommand::Certify => {
                if !state.exists || state.open {
                    return Err(TallyError::NotClosed);
                }
                if state.certified {
                    return Ok(Vec::new());
                }
                Ok(vec![TallyEvent::TallyCertified { total: state.total }])
            }
        }
    }

    fn evolve(state: &mut TallyState, event: &TallyEvent) {
        match event {
            TallyEvent::TallyOpened { .. } => {
                state.exists = true;
                state.open = true;
            }
            TallyEvent::AmountAdded { amount, .. } => state.total += amount,
            TallyEvent::TallyClosed { .. } => state.open = false,
            TallyEvent::TallyCertified { .. } => state.certified = true,
        }
    }
}

/// Upcasters for the tally's events: `AmountAdded` v1 had no unit.
pub fn upcasters() -> Upcasters {
    Upcasters::new().with("AmountAdded", 1, |mut payload| {
        let object = payload
            .as_object_mut()
            .ok_or_else(|| "payload is not an object".to_owned())?;
        object
            .entry("unit")
            .or_insert_with(|| serde_json::Value::String("point".into()));
        Ok(payload)
    })
}
