//! creditd's domain: exact credit amounts, grants and their spending order, holds, and the
//! commands that change them. Plain Rust with no I/O; storage and HTTP call into it.

pub mod account;
pub mod allowance;
pub mod amount;
pub mod announce;
pub mod book;
pub mod calendar;
pub mod command;
pub mod entitlement;
pub mod gate;
pub mod ids;
pub mod money;
pub mod outbound;
pub mod package_sync;
pub mod pricing;
pub mod purchase;
pub mod rate_limit;
pub mod refund;
pub mod retry;
pub mod state;
pub mod validate;
pub mod views;

pub use account::{Account, DebtMovement, EntryKind, Insufficient, Lot, Movement, Taken};
pub use amount::{AmountError, Credits};
pub use book::{Book, Changes, Effect, Facts};
pub use command::{Command, CommandError, GrantSource, Idempotency, Outcome, Request};
pub use ids::IdKind;
pub use state::{CustomerState, OpenHold};
