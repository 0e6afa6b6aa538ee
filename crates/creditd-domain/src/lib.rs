//! creditd's domain: exact credit amounts, grants and their spending order, holds, and the
//! commands that change them. Plain Rust with no I/O; storage and HTTP call into it.

pub mod account;
pub mod amount;
pub mod command;
pub mod ids;
pub mod money;
pub mod outbound;
pub mod validate;
pub mod views;

pub use account::{Account, DebtMovement, EntryKind, Insufficient, Lot, Movement, Taken};
pub use amount::{AmountError, Credits};
pub use command::{Command, CommandError, GrantSource, Idempotency, Outcome, Request};
pub use ids::IdKind;
