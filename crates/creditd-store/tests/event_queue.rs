//! Recorded Stripe events as a work queue shared by replicas, on both backends: one taker
//! per event, failures due again only when their back-off says, give-backs due at once.

use creditd_store::testing::TestDb;
use creditd_store::{Settled, Store};

const NOW_MS: i64 = 1_800_000_000_000;

async fn record(store: &Store, id: &str, due_ms: Option<i64>) {
    store
        .record_stripe_event_due(id, "checkout.session.completed", 1, "{}", 1_800_000_000, due_ms)
        .await
        .unwrap();
}

async fn one_taker_then_back_off_then_give_back(store: Store) {
    record(&store, "evt_due", Some(NOW_MS)).await;
    record(&store, "evt_later", Some(NOW_MS + 60_000)).await;
    record(&store, "evt_handled_inline", None).await;
    // Many replicas look at once: exactly one takes the event.
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_stripe_event(NOW_MS, 120_000).await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.unwrap());
    }
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!((taken[0].id.as_str(), taken[0].attempts), ("evt_due", 1));
    assert_eq!(
        store.claim_stripe_event(NOW_MS + 1, 120_000).await.unwrap(),
        None,
        "held; the others are not due"
    );

    // It failed: due again after its back-off, counting the retry as an attempt.
    let settled = Settled::Failed("Stripe is down", Some(NOW_MS + 1_000));
    store
        .settle_stripe_event("evt_due", settled, 1_800_000_001)
        .await
        .unwrap();
    assert_eq!(store.claim_stripe_event(NOW_MS + 999, 120_000).await.unwrap(), None);
    let retry = store
        .claim_stripe_event(NOW_MS + 1_000, 120_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retry.id.as_str(), retry.attempts), ("evt_due", 2));

    // Given back at shutdown: due at once for anyone; a lease that ran out likewise.
    store.release_stripe_event("evt_due").await.unwrap();
    let again = store
        .claim_stripe_event(NOW_MS + 1_001, 120_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, "evt_due");
    let expired = store.claim_stripe_event(NOW_MS + 1_001 + 120_001, 1_000).await.unwrap();
    assert_eq!(expired.map(|e| e.id).as_deref(), Some("evt_due"), "the lease ran out");

    store
        .settle_stripe_event("evt_due", Settled::Done("processed"), 1_800_000_002)
        .await
        .unwrap();
    let done = store.stripe_event("evt_due").await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.error), ("processed", None));
    let later = store.claim_stripe_event(NOW_MS + 60_000, 1_000).await.unwrap().unwrap();
    assert_eq!(
        later.id, "evt_later",
        "done events are never taken again; the later one is due now"
    );
    store
        .settle_stripe_event("evt_later", Settled::Refused("livemode mismatch"), 1_800_000_003)
        .await
        .unwrap();
    assert_eq!(
        store.stripe_event("evt_later").await.unwrap().unwrap().status,
        "refused"
    );
    assert_eq!(store.claim_stripe_event(i64::MAX / 2, 1_000).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_queue_sqlite() {
    let db = TestDb::sqlite().await;
    one_taker_then_back_off_then_give_back(db.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_queue_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    one_taker_then_back_off_then_give_back(db.store.clone()).await;
}
