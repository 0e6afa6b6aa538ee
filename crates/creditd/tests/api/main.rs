//! The HTTP suite: one binary, every scenario on SQLite and on PostgreSQL, `verify` clean
//! after each.

mod helpers;

mod billing_page;
mod cli;
mod customers;
mod errors;
mod me;
mod purchases;
mod spend;
