//! One integration-test binary for the sandbox: each module checks one
//! behaviour end to end against a sandbox started on port 0.

mod checkout_flow;
mod disputes;
mod events;
mod faults;
mod helpers;
mod idempotency;
mod payment_intents;
mod python_client;
mod refunds;
mod shapes;
mod subscriptions;
mod webhooks;
