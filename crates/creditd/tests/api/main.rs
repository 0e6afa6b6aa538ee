//! The HTTP suite: one binary, every scenario on SQLite and on PostgreSQL, `verify` clean
//! after each.

mod helpers;

mod admin;
mod billing_page;
mod chaos;
mod cli;
mod customers;
mod errors;
mod me;
mod outbound;
mod outbound_billing;
mod outbound_topup;
mod purchases;
mod receiver;
mod refunds;
mod spend;
mod subscriptions;
