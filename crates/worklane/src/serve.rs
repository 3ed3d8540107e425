//! `worklane serve`: one supervisor starts the store, the engine, processing, the API, the
//! capture points and the notifiers, and on SIGTERM/SIGINT stops them in order: inputs first
//! (API, capture points: in-flight work finishes), then outputs (processing, notifiers),
//! then the engine writer drains what is queued. Nothing is left half-written.

use crate::components;
use crate::config::Config;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_api::{metrics_handle, router, serve as serve_api, ApiOptions, AppState};
use worklane_engine::{Engine, EngineOptions, Processor};

/// Runs the server on `listener` until `shutdown` is cancelled.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = metrics_handle();
    let store = worklane_store::connect(&cfg.store.url)
        .await
        .with_context(|| {
            format!(
                "opening the store {}",
                worklane_store::redact_url(&cfg.store.url)
            )
        })?;
    tracing::info!(store = %worklane_store::redact_url(&cfg.store.url), backend = store.backend(), "store ready");
    let options = EngineOptions {
        max_batch: cfg.store.max_batch,
        ..Default::default()
    };
    let (engine, writer) = Engine::start(store, options)
        .await
        .context("starting the engine")?;

    let inputs = CancellationToken::new();
    let outputs = CancellationToken::new();
    let mut inputs_set: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut outputs_set: JoinSet<anyhow::Result<()>> = JoinSet::new();

    let processor = Processor::new(engine.clone()).poll_interval(cfg.processing.poll_interval);
    let token = outputs.clone();
    outputs_set.spawn(async move {
        processor.run(token).await;
        Ok(())
    });
    components::spawn_all(
        &cfg,
        &engine,
        &inputs,
        &outputs,
        &mut inputs_set,
        &mut outputs_set,
    )?;

    let state = AppState {
        engine: engine.clone(),
        metrics,
        shutdown: inputs.clone(),
    };
    let app = router(
        state,
        &ApiOptions {
            max_body_bytes: cfg.server.max_body_bytes,
        },
        components::api_extra(&cfg, &engine)?,
    );
    let addr = listener.local_addr()?;
    let api_token = inputs.clone();
    inputs_set.spawn(async move {
        serve_api(listener, app, api_token)
            .await
            .context("serving the API")
    });
    tracing::info!(%addr, "worklane is serving");
    drop(engine);

    // Run until asked to stop or until a component fails.
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        Some(r) = inputs_set.join_next() => Some(r),
    };
    if let Some(r) = &failure {
        tracing::error!(result = ?r, "a component stopped; shutting down");
    }
    tracing::info!("shutting down: draining inputs");
    inputs.cancel();
    let grace = cfg.server.shutdown_grace;
    if tokio::time::timeout(grace, async {
        while inputs_set.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(?grace, "inputs did not drain in time; aborting them");
        inputs_set.abort_all();
    }
    tracing::info!("draining outputs");
    outputs.cancel();
    while outputs_set.join_next().await.is_some() {}
    // Every Engine handle is gone now: the writer commits what is queued and stops.
    writer.await.context("engine writer")?;
    tracing::info!("stopped cleanly");
    match failure {
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Cancels the returned token on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("signal received");
        t.cancel();
    });
    token
}
