//! Typed identifiers.
//!
//! One newtype per kind of id so that an actor id can never be passed where a tenant id is
//! expected. Ids that Trellis mints are UUIDv7: time-ordered, so b-tree indexes on them stay
//! append-mostly and a log sorted by id reads roughly chronologically.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a textual id was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The text is not a UUID.
    #[error("`{0}` is not a UUID")]
    NotAUuid(String),
    /// A stream id must read `<aggregate>-<uuid>`.
    #[error("stream id `{0}` must read `<aggregate>-<uuid>` with a lowercase aggregate name")]
    BadStreamId(String),
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (read back from storage or a request).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::NotAUuid(s.to_owned()))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// Identity of one event, unique across the store (`ce_id` on Kafka).
    EventId
);
uuid_id!(
    /// The organization an event belongs to; every read is scoped by it.
    TenantId
);
uuid_id!(
    /// The user (or service) that caused an event.
    ActorId
);
uuid_id!(
    /// Groups every event caused, directly or not, by one incoming request.
    TraceId
);

/// Position of an event in the store's global log (`$all`).
///
/// Unique and increasing within one append, but **not** dense and not by itself the read
/// order of `$all`: the store orders `$all` by commit (see ADR 0001). A position is still the
/// right checkpoint: "everything after the event at position P" is well defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GlobalPosition(pub i64);

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Version of a stream: the number of events in it. The first event has version 1.
pub type StreamVersion = u64;

/// Name of an event stream: `<aggregate>-<uuid>`, e.g. `idp-0190c3e2-…`.
///
/// The aggregate part is lowercase ASCII letters, digits and underscores, starting with a
/// letter, at most 64 characters; it is how topics and audits tell streams apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId {
    kind: String,
    id: Uuid,
}

impl StreamId {
    /// Builds a stream id from an aggregate kind and an entity id.
    ///
    /// # Errors
    /// [`IdError::BadStreamId`] when `kind` is not a valid aggregate name.
    pub fn new(kind: &str, id: Uuid) -> Result<Self, IdError> {
        if !valid_kind(kind) {
            return Err(IdError::BadStreamId(format!("{kind}-{id}")));
        }
        Ok(Self {
            kind: kind.to_owned(),
            id,
        })
    }

    /// Parses `<aggregate>-<uuid>`.
    ///
    /// # Errors
    /// [`IdError::BadStreamId`] for anything else.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bad = || IdError::BadStreamId(text.chars().take(200).collect());
        let (kind, id) = text.split_once('-').ok_or_else(bad)?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        // Only the hyphenated form round-trips through Display.
        if id.hyphenated().to_string() != text[kind.len() + 1..] {
            return Err(bad());
        }
        Self::new(kind, id).map_err(|_| bad())
    }

    /// The aggregate kind, e.g. `idp`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The entity id part.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

fn valid_kind(kind: &str) -> bool {
    let mut chars = kind.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && kind.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind, self.id.hyphenated())
    }
}

impl FromStr for StreamId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for StreamId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip_through_text() {
        let id = StreamId::new("cohort_pool", Uuid::now_v7()).expect("valid kind");
        assert_eq!(StreamId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn malformed_stream_ids_are_typed_errors() {
        for bad in [
            "",
            "idp",
            "idp-",
            "idp-not-a-uuid",
            "Idp-0190c3e2-0000-7000-8000-000000000000",
            "-0190c3e2-0000-7000-8000-000000000000",
            "idp x-0190c3e2-0000-7000-8000-000000000000",
            "idp-0190C3E2-0000-7000-8000-000000000000",
            "idp-0190c3e200007000800000000000000",
        ] {
            assert!(
                matches!(StreamId::parse(bad), Err(IdError::BadStreamId(_))),
                "{bad:?} should be rejected"
            );
        }
    }
}
