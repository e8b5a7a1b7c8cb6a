//! Given/when/then for the demo aggregate; every emitted event is schema-checked.

use trellis_demo::{Tally, TallyCommand, TallyError, TallyEvent};
use trellis_testkit::harness::AggregateTest;

fn opened() -> TallyEvent {
    TallyEvent::TallyOpened { name: "t".into() }
}

fn added(amount: i64) -> TallyEvent {
    TallyEvent::AmountAdded {
        amount,
        unit: "point".into(),
    }
}

#[test]
fn opening_a_new_tally_emits_tally_opened() {
    AggregateTest::<Tally>::given_no_events()
        .when(TallyCommand::Open { name: "t".into() })
        .then_events(vec![opened()]);
}

#[test]
fn opening_twice_is_refused() {
    AggregateTest::<Tally>::given(vec![opened()])
        .when(TallyCommand::Open { name: "t".into() })
        .then_error(TallyError::AlreadyExists);
}

#[test]
fn names_must_be_one_to_two_hundred_characters() {
    AggregateTest::<Tally>::given_no_events()
        .when(TallyCommand::Open {
            name: String::new(),
        })
        .then_error(TallyError::BadName);
    AggregateTest::<Tally>::given_no_events()
        .when(TallyCommand::Open {
            name: "é".repeat(201),
        })
        .then_error(TallyError::BadName);
}

#[test]
fn adding_to_an_open_tally_emits_amount_added_v2() {
    AggregateTest::<Tally>::given(vec![opened()])
        .when(TallyCommand::Add { amount: 3 })
        .then_events(vec![added(3)]);
}

#[test]
fn adding_nothing_or_to_a_closed_tally_is_refused() {
    AggregateTest::<Tally>::given(vec![opened()])
        .when(TallyCommand::Add { amount: 0 })
        .then_error(TallyError::NonPositiveAmount);
    AggregateTest::<Tally>::given(vec![opened(), TallyEvent::TallyClosed { total: 0 }])
        .when(TallyCommand::Add { amount: 1 })
        .then_error(TallyError::NotOpen);
}

#[test]
fn closing_reports_the_total() {
    AggregateTest::<Tally>::given(vec![opened(), added(2), added(5)])
        .when(TallyCommand::Close)
        .then_events(vec![TallyEvent::TallyClosed { total: 7 }]);
}

#[test]
fn certifying_a_closed_tally_emits_tally_certified_once() {
    let closed = TallyEvent::TallyClosed { total: 2 };
    AggregateTest::<Tally>::given(vec![opened(), added(2), closed.clone()])
        .when(TallyCommand::Certify)
        .then_events(vec![TallyEvent::TallyCertified { total: 2 }]);
    AggregateTest::<Tally>::given(vec![
        opened(),
        closed,
        TallyEvent::TallyCertified { total: 2 },
    ])
    .when(TallyCommand::Certify)
    .then_events(vec![]);
    AggregateTest::<Tally>::given(vec![opened()])
        .when(TallyCommand::Certify)
        .then_error(TallyError::NotClosed);
}
