//! The HTTP suite: one binary, every scenario on SQLite and on PostgreSQL, `verify` clean
//! after each.

mod helpers;

mod admin;
mod cli;
mod customers;
mod errors;
mod purchases;
mod spend;
