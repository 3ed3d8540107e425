//! Leases on every backend: one holder at a time, renewal, takeover after expiry, release.

use std::sync::Arc;
use worklane_domain::Timestamp;
use worklane_store::Store;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

async fn one_holder_until_expiry_or_release(s: Arc<dyn Store>) {
    assert_eq!(s.lease_holder("p").await.unwrap(), None);
    assert!(s.acquire_lease("p", "a", at(0), at(15)).await.unwrap());
    assert!(
        !s.acquire_lease("p", "b", at(1), at(16)).await.unwrap(),
        "held by a"
    );
    // The holder renews, before or even after expiry while nobody took it.
    assert!(s.acquire_lease("p", "a", at(5), at(20)).await.unwrap());
    assert!(!s.acquire_lease("p", "b", at(19), at(34)).await.unwrap());
    assert_eq!(
        s.lease_holder("p").await.unwrap(),
        Some(("a".into(), at(20)))
    );
    // Expired: another takes it, and the old holder cannot renew it any more.
    assert!(s.acquire_lease("p", "b", at(20), at(35)).await.unwrap());
    assert!(!s.acquire_lease("p", "a", at(21), at(36)).await.unwrap());
    // Only the holder's release counts; then anyone takes it at once.
    s.release_lease("p", "a").await.unwrap();
    assert_eq!(s.lease_holder("p").await.unwrap().unwrap().0, "b");
    s.release_lease("p", "b").await.unwrap();
    assert_eq!(s.lease_holder("p").await.unwrap(), None);
    assert!(s.acquire_lease("p", "a", at(22), at(37)).await.unwrap());
    // Leases are independent by name.
    assert!(s.acquire_lease("q", "b", at(22), at(37)).await.unwrap());
}

/// Many nodes racing for one free lease: exactly one wins.
async fn racing_nodes_get_one_winner(s: Arc<dyn Store>) {
    let tries = (0..8).map(|i| {
        let s = s.clone();
        async move {
            s.acquire_lease("race", &format!("n{i}"), at(0), at(15))
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(tries).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
}

worklane_store::store_suite!(
    one_holder_until_expiry_or_release,
    racing_nodes_get_one_winner
);
