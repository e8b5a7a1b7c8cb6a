//! Read side and reactions of the demo (tally) context.

mod certifier;
mod tally_totals;

pub use certifier::Certifier;
pub use tally_totals::{TallyRow, TallyTotals, read_tally};
