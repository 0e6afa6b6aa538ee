//! Verified API keys are cached in memory by every replica; a revocation empties the cache of
//! the replica that revoked at once and of every other replica within a second.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(
    keys_are_served_from_memory_once_verified,
    a_revocation_reaches_the_revoking_replica_at_once_and_the_others_within_a_second,
);

/// The contract: a request sent a second or more after the revocation is refused.
pub const REVOCATION_REACHES_EVERY_REPLICA: Duration = Duration::from_secs(1);

/// Sends `GET /v1/customers/{customer}` to `addr` until it is refused (401); fails if a
/// request sent [`REVOCATION_REACHES_EVERY_REPLICA`] after `revoked` or later was accepted.
pub async fn refused_within_a_second(app: &TestApp, addr: SocketAddr, customer: &str, key: &str, revoked: Instant) {
    loop {
        let sent = Instant::now();
        let reply = app.get_at(addr, &format!("/v1/customers/{customer}"), key).await;
        if reply.status == 401 {
            return;
        }
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            sent.duration_since(revoked) < REVOCATION_REACHES_EVERY_REPLICA,
            "{addr} still accepted a revoked key {:?} after the revocation",
            sent.duration_since(revoked)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Both replicas use the key until their caches hold it (each trusts its cache once it has
/// read the revocation count).
async fn warm(app: &TestApp, addrs: &[SocketAddr], key: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    for &addr in addrs {
        for _ in 0..3 {
            assert_eq!(app.get_at(addr, "/v1/customers/u", key).await.status, 200);
        }
    }
}

/// A changed hash in the database (which no revocation counts) does not reach a replica that
/// verified the key already: its requests are not looked up again.
async fn keys_are_served_from_memory_once_verified(app: &TestApp) {
    app.customer("u").await;
    let b = app.replica().await;
    let key = app.db.store.create_api_key("cached", 0).await.unwrap();
    warm(app, &[app.addr, b.addr], &key.secret).await;
    let sql = format!("UPDATE api_keys SET hash = 'changed' WHERE id = '{}'", key.key.id);
    assert_eq!(crate::helpers::raw_execute(&app.db.url, &sql).await, 1);
    for addr in [app.addr, b.addr] {
        assert_eq!(
            app.get_at(addr, "/v1/customers/u", &key.secret).await.status,
            200,
            "{addr}"
        );
    }
    let fresh = app.replica().await;
    let reply = app.get_at(fresh.addr, "/v1/customers/u", &key.secret).await;
    assert_eq!(reply.status, 401, "a replica that never saw the key asks the database");
}

async fn a_revocation_reaches_the_revoking_replica_at_once_and_the_others_within_a_second(app: &TestApp) {
    app.customer("u").await;
    let b = app.replica().await;
    let key = app.db.store.create_api_key("revoked", 0).await.unwrap();
    let other = app.db.store.create_api_key("kept", 0).await.unwrap();
    warm(app, &[app.addr, b.addr], &key.secret).await;
    warm(app, &[app.addr, b.addr], &other.secret).await;
    // Replica A's own store revokes: A refuses at once, B within a second.
    assert!(app.db.store.revoke_api_key(&key.key.id, 0).await.unwrap());
    let revoked = Instant::now();
    let reply = app.get_at(app.addr, "/v1/customers/u", &key.secret).await;
    assert_eq!(reply.status, 401, "the revoking replica refuses at once");
    refused_within_a_second(app, b.addr, "u", &key.secret, revoked).await;
    for addr in [app.addr, b.addr] {
        let reply = app.get_at(addr, "/v1/customers/u", &other.secret).await;
        assert_eq!(reply.status, 200, "another key keeps working on {addr}");
    }
    // And the other way round: B revokes, A follows within a second.
    assert!(b.state.store.revoke_api_key(&other.key.id, 0).await.unwrap());
    let revoked = Instant::now();
    assert_eq!(app.get_at(b.addr, "/v1/customers/u", &other.secret).await.status, 401);
    refused_within_a_second(app, app.addr, "u", &other.secret, revoked).await;
}
