//! The Worklane server as a library: [`run`] takes a validated [`Config`], an already
//! bound listener and a shutdown token, so the binary binds the configured address and
//! tests bind `127.0.0.1:0` and run a whole server in-process.
//!
//! One [`Supervisor`] owns every long-running part: the API, processing, retention, each
//! capture point and each notification target. A part that fails is restarted with backoff, and
//! `/healthz` and `/metrics` show which one is failing. On shutdown inputs stop first (API,
//! capture points: in-flight work finishes), then outputs (processing, retention, notifiers), then
//! the engine writer drains what is queued. Nothing is left half-written.

pub mod bootstrap;
pub mod components;
pub mod config;

pub use config::{Config, ConfigError};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worklane_api::auth::{Auth, AuthMode};
use worklane_api::rules::{Reload, RulesSummary};
use worklane_api::{
    metrics_handle, router, serve_with as serve_api, ApiOptions, AppState, AppStateParts,
};
use worklane_engine::{
    Dispatcher, Engine, EngineOptions, Lease, Processor, Retention, SharedClock, Stage, Supervisor,
    SystemClock,
};

/// What a server needs besides its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The clock every decision reads (tests hand in a test clock).
    pub clock: SharedClock,
    /// This node's name in the lease table; `server.node_id`, else generated per start.
    pub node_id: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            clock: SystemClock::shared(),
            node_id: None,
        }
    }
}

/// Runs the server on `listener` until `shutdown` is cancelled or the API fails.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(cfg, listener, shutdown, RunOptions::default()).await
}

/// [`run`] with options (an injected clock).
pub async fn run_with(
    cfg: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    options: RunOptions,
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
    let rules = worklane_engine::Rules::new(cfg.rules.clone());
    let (departments, processes, rule_count) = cfg.rules.counts();
    tracing::info!(
        departments,
        processes,
        rules = rule_count,
        "business rules in force"
    );
    let engine_options = EngineOptions {
        max_batch: cfg.store.max_batch,
        clock: options.clock,
        // The processor below runs in every server.
        process_on_create: true,
        rules: rules.clone(),
        archive_after: jiff::SignedDuration::try_from(cfg.processing.archive_after).ok(),
        queues: cfg.queues.clone(),
        ..Default::default()
    };
    let (engine, writer) = Engine::start(store, engine_options)
        .await
        .context("starting the engine")?;
    let addr = listener.local_addr()?;
    match cfg.auth.mode {
        AuthMode::On => {
            bootstrap::admin_token(&engine, &cfg.auth.bootstrap_token_file).await?;
        }
        // The configuration checks server.listen; this checks the listener itself (a
        // caller of `run` binds its own).
        AuthMode::Off if !addr.ip().is_loopback() => {
            anyhow::bail!("auth.mode = \"off\" is allowed only on a loopback listener, not {addr}")
        }
        AuthMode::Off => tracing::warn!(
            %addr,
            "auth.mode = \"off\": anyone who reaches this address may read and change every task"
        ),
    }

    let mut sup = Supervisor::new();
    let (poll, batch) = (cfg.processing.poll_interval, cfg.processing.batch);
    let e = engine.clone();
    sup.spawn("processing", Stage::Output, move |token| {
        let processor = Processor::new(e.clone()).poll_interval(poll).batch(batch);
        async move {
            processor.run(token).await;
            Ok(())
        }
    });
    if let Some(queues) = &cfg.queues {
        tracing::info!(
            queues = queues.iter().count(),
            "distribution to agents in force"
        );
        let e = engine.clone();
        sup.spawn("distribution", Stage::Output, move |token| {
            let dispatcher = Dispatcher::new(e.clone()).poll_interval(poll).batch(batch);
            async move {
                dispatcher.run(token).await;
                Ok(())
            }
        });
    }
    // A new name per start unless configured: a restarted node must not mistake its
    // predecessor's leases for its own while they may still be in use.
    let node = options
        .node_id
        .or_else(|| cfg.server.node_id.clone())
        .unwrap_or_else(|| format!("node-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
    tracing::info!(%node, "cluster node name");
    // Pruning runs once in a cluster: passes on several nodes would only contend for
    // the same rows.
    let lease = Lease {
        leases: engine.leases().clone(),
        clock: engine.clock().clone(),
        holder: node.clone(),
        ttl: cfg.server.lease_ttl,
    };
    let (e, r) = (engine.clone(), cfg.retention.clone());
    sup.spawn_leased("retention", Stage::Output, lease, move |token| {
        let retention = Retention::new(e.clone(), r.policy(), r.batch, r.interval);
        async move {
            retention.run(token).await;
            Ok(())
        }
    });
    for c in &cfg.components {
        components::spawn(&mut sup, c.clone(), &engine, &node, cfg.server.lease_ttl);
    }

    let reload = cfg.file.clone().map(|file| reloader(file, rules.clone()));
    if let Some(r) = reload.clone() {
        sup.spawn("rules-reload-signal", Stage::Input, move |token| {
            let r = r.clone();
            async move { reload_on_sighup(r, token).await }
        });
    }
    let tls = cfg.server.tls()?;
    let mut sessions = cfg.auth.sessions();
    // Over HTTPS the session cookie is never sent in the clear.
    sessions.secure_cookie |= tls.is_some();
    let state = AppState::new(AppStateParts {
        reload,
        engine: engine.clone(),
        metrics,
        shutdown: sup.inputs_token(),
        health: sup.health(),
        agent_channels: Default::default(),
        auth: Auth::new(cfg.auth.mode)
            .with_sessions(sessions)
            .with_limits(
                cfg.auth.failed_auth_per_minute,
                cfg.auth.caller_requests_per_second,
            ),
    });
    // The web console is mounted beside the API, under its authorization and layers.
    let extra =
        components::api_extra(&cfg.components, &engine).merge(worklane_web::router(state.clone()));
    let app = router(
        state,
        &ApiOptions {
            max_body_bytes: cfg.server.max_body_bytes,
        },
        extra,
    );
    // The listener cannot be bound again, so the API is not restarted: if it stops on
    // its own the server shuts down.
    let api_token = sup.inputs_token();
    let api = tokio::spawn(async move {
        serve_api(listener, app, api_token, tls)
            .await
            .context("serving the API")
    });
    tracing::info!(%addr, tls = cfg.server.tls_cert.is_some(), "worklane is serving");
    drop(engine);

    let mut api = std::pin::pin!(api);
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        r = &mut api => Some(r),
    };
    if let Some(r) = &failure {
        tracing::error!(result = ?r, "the API stopped; shutting down");
    }
    tracing::info!("shutting down: draining inputs");
    sup.shutdown(cfg.server.shutdown_grace).await;
    let api_result = match failure {
        Some(r) => r,
        None => api.await,
    };
    // Every Engine handle is gone now: the writer commits what is queued and stops.
    writer.await.context("engine writer")?;
    tracing::info!("stopped cleanly");
    api_result?
}

/// Reloads the rules from `file` into `rules`: the whole file is read and checked again
/// (with `WORKLANE_*` variables), and a file with any problem is refused.
fn reloader(file: std::path::PathBuf, rules: worklane_engine::Rules) -> Reload {
    Reload(std::sync::Arc::new(move || {
        let cfg = Config::load(Some(&file)).map_err(|e| vec![e.to_string()])?;
        let summary = RulesSummary::of(&cfg.rules);
        rules.replace(cfg.rules);
        tracing::info!(
            file = %file.display(),
            departments = summary.departments,
            processes = summary.processes,
            rules = summary.rules,
            "business rules reloaded"
        );
        Ok(summary)
    }))
}

/// Reloads the rules on every SIGHUP until `token` is cancelled.
async fn reload_on_sighup(reload: Reload, token: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                got = hup.recv() => if got.is_none() { return Ok(()) },
            }
            let r = reload.clone();
            match tokio::task::spawn_blocking(move || (r.0)()).await {
                Ok(Ok(_)) => {}
                Ok(Err(problems)) => {
                    tracing::error!(
                        ?problems,
                        "SIGHUP: the rules were refused; the rules in force stay"
                    )
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: reloading failed"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        token.cancelled().await;
        Ok(())
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
