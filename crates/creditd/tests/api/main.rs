//! The HTTP suite: one binary, every scenario on SQLite and on PostgreSQL, `verify` clean
//! after each.

mod helpers;

mod admin;
mod billing_page;
mod chaos;
mod cli;
mod cors;
mod customers;
mod entitlements;
mod errors;
mod me;
mod openapi;
mod ops;
mod outage;
mod outbound;
mod outbound_billing;
mod outbound_topup;
mod package_sync;
mod purchases;
mod receiver;
mod references;
mod refunds;
mod revocation;
mod shutdown;
mod spend;
mod subscriptions;
mod usage_batch;
mod webhooks;
