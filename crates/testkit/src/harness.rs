//! Given/when/then for aggregates.
//!
//! ```ignore
//! AggregateTest::<Tally>::given(vec![opened()])
//!     .when(TallyCommand::Add { amount: 2 })
//!     .then_events(vec![added(2)]);
//! ```
//! Every event the aggregate emits is also checked against its schema in `events/`.

use std::fmt::Debug;

use trellis_kernel::{Aggregate, DomainEvent, Metadata, NewEvent};

use crate::schemas::SchemaRegistry;

/// A scenario under construction.
pub struct AggregateTest<A: Aggregate> {
    state: A::State,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from a stream holding `events`.
    pub fn given(events: Vec<A::Event>) -> Self {
        Self {
            state: A::fold(&events),
        }
    }

    /// Starts from a stream that does not exist.
    pub fn given_no_events() -> Self {
        Self::given(Vec::new())
    }

    /// Runs the decision.
    pub fn when(self, command: A::Command) -> Decided<A> {
        let result = A::decide(&self.state, &command);
        if let Ok(events) = &result {
            check_schemas(events);
        }
        Decided { result }
    }
}

/// The outcome of `when`, to assert on.
pub struct Decided<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Decided<A>
where
    A::Event: PartialEq + Debug,
    A::Error: PartialEq + Debug,
{
    /// Asserts the command produced exactly `expected`.
    pub fn then_events(self, expected: Vec<A::Event>) {
        match self.result {
            Ok(events) => assert_eq!(events, expected, "unexpected events"),
            Err(error) => panic!("expected events {expected:?}, got error {error:?}"),
        }
    }

    /// Asserts the command was refused with `expected`.
    pub fn then_error(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(error) => assert_eq!(error, expected, "unexpected error"),
        }
    }
}

fn check_schemas<E: DomainEvent>(events: &[E]) {
    let envelopes: Vec<NewEvent> = events
        .iter()
        .map(|event| NewEvent {
            event_id: trellis_kernel::EventId::new(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.to_payload().expect("event serializes"),
            metadata: Metadata::default(),
        })
        .collect();
    SchemaRegistry::global().assert_valid(&envelopes);
}
