//! What the engine's tests share.

use worklane_engine::{Engine, EngineOptions};

/// An engine with its own connection to the store at `url`: one node, when several share a
/// PostgreSQL database. The handle ends when the last clone of the engine is dropped.
pub async fn node(url: &str, options: EngineOptions) -> (Engine, tokio::task::JoinHandle<()>) {
    let store = worklane_store::connect(url).await.unwrap();
    Engine::start(store, options).await.unwrap()
}
