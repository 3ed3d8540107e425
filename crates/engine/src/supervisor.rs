//! One supervisor owns every long-running part of a server (the API, each capture point,
//! processing, each notifier): it starts each as a task of its own, restarts a part that
//! fails with backoff, keeps each part's state for `/healthz` and `/metrics`, and stops
//! them in order: inputs first (in-flight work finishes), then outputs.

use crate::clock::SharedClock;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use worklane_domain::Timestamp;
use worklane_store::Leases;

/// A run at least this long counts as healthy: the restart delays after it start anew.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How a part that must run once in a cluster holds its lease.
#[derive(Debug, Clone)]
pub struct Lease {
    pub leases: Arc<dyn Leases>,
    /// Expiry is a time decision: it reads the engine's clock.
    pub clock: SharedClock,
    /// This node's name in the lease table.
    pub holder: String,
    /// How long a lease lasts unless renewed: how long another node waits for a holder
    /// that died.
    pub ttl: Duration,
}

impl Lease {
    fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        now.checked_add(jiff::SignedDuration::try_from(self.ttl).unwrap_or_default())
            .unwrap_or(Timestamp::MAX)
    }

    async fn try_acquire(
        &self,
        name: &str,
    ) -> Result<Option<Timestamp>, worklane_store::StoreError> {
        let now = self.clock.now();
        let until = self.expiry(now);
        Ok(self
            .leases
            .acquire_lease(name, &self.holder, now, until)
            .await?
            .then_some(until))
    }

    /// Waits until this node holds the lease; false when cancelled first.
    async fn wait_until_held(
        &self,
        name: &str,
        cancel: &CancellationToken,
        health: &Health,
    ) -> bool {
        loop {
            match self.try_acquire(name).await {
                Ok(Some(_)) => {
                    tracing::info!(component = %name, holder = %self.holder, "lease taken: running here");
                    return true;
                }
                Ok(None) => health.set(name, "standby", false),
                Err(e) => tracing::warn!(component = %name, error = %e, "taking the lease failed"),
            }
            // The clock says when an abandoned lease expires; a released one is seen at
            // the next real-time look, within a second.
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = self.clock.sleep(self.renew_every()) => {}
                _ = tokio::time::sleep(self.renew_every().min(Duration::from_secs(1))) => {}
            }
        }
    }

    /// Renews the lease while the part runs. Returns the part's end and whether the
    /// lease was lost (the part was then stopped).
    async fn hold_while_running(
        &self,
        name: &str,
        task: &mut tokio::task::JoinHandle<anyhow::Result<()>>,
        part: &CancellationToken,
    ) -> (Result<anyhow::Result<()>, tokio::task::JoinError>, bool) {
        let mut held_until = self.expiry(self.clock.now());
        // Renewals are due a third of the lease after the previous one began, not after
        // it ended: a slow renewal while the clock moved on must not push the next one
        // past the lease's end.
        let every = jiff::SignedDuration::try_from(self.renew_every()).unwrap_or_default();
        let mut renewed_at = self.clock.now();
        loop {
            tokio::select! {
                r = &mut *task => return (r, false),
                _ = self.clock.sleep_until(renewed_at.saturating_add(every).unwrap_or(Timestamp::MAX)) => {}
            }
            renewed_at = self.clock.now();
            let lost = match self.try_acquire(name).await {
                Ok(Some(until)) => {
                    held_until = until;
                    false
                }
                Ok(None) => true,
                // The store did not answer: keep running while the lease surely holds.
                Err(e) => {
                    tracing::warn!(component = %name, error = %e, "renewing the lease failed");
                    self.clock.now() >= held_until
                }
            };
            if lost {
                tracing::warn!(component = %name, holder = %self.holder, "lease lost: stopping here");
                part.cancel();
                return ((&mut *task).await, true);
            }
        }
    }

    async fn release(&self, name: &str) {
        if let Err(e) = self.leases.release_lease(name, &self.holder).await {
            tracing::warn!(component = %name, error = %e, "giving the lease up failed; it expires by itself");
        }
    }
}

/// When a part stops: inputs (API, capture points) before outputs (processing,
/// notifiers), so what the inputs accepted is still carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Input,
    Output,
}

/// What a part is doing, as `/healthz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartState {
    /// `running`, `standby` (another node holds its lease), `failing` (it failed and waits
    /// to be restarted) or `stopped`.
    pub state: &'static str,
    /// Restarts since the server started.
    pub restarts: u64,
}

/// Every part's state, shared by the supervisor and the health endpoint. Error texts are
/// logged, never shown here: they may carry internal details.
#[derive(Debug, Clone, Default)]
pub struct Health {
    parts: Arc<Mutex<BTreeMap<String, PartState>>>,
}

impl Health {
    fn set(&self, part: &str, state: &'static str, restarted: bool) {
        let mut parts = self.parts.lock().expect("health lock");
        let entry = parts
            .entry(part.to_owned())
            .or_insert(PartState { state, restarts: 0 });
        entry.state = state;
        if restarted {
            entry.restarts += 1;
        }
        let up = if state == "running" { 1.0 } else { 0.0 };
        metrics::gauge!("worklane_component_up", "component" => part.to_owned()).set(up);
    }

    /// Every part and its state, by name.
    pub fn parts(&self) -> BTreeMap<String, PartState> {
        self.parts.lock().expect("health lock").clone()
    }

    /// The parts that are failing now.
    pub fn failing(&self) -> Vec<String> {
        self.parts()
            .into_iter()
            .filter(|(_, s)| s.state == "failing")
            .map(|(n, _)| n)
            .collect()
    }
}

/// Owns the server's long-running parts.
#[derive(Debug)]
pub struct Supervisor {
    health: Health,
    inputs: CancellationToken,
    outputs: CancellationToken,
    input_set: JoinSet<()>,
    output_set: JoinSet<()>,
    first_delay: Duration,
    max_delay: Duration,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self {
            health: Health::default(),
            inputs: CancellationToken::new(),
            outputs: CancellationToken::new(),
            input_set: JoinSet::new(),
            output_set: JoinSet::new(),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
        }
    }

    /// Restart delays: the first, doubled after each failure in a row, up to `max`.
    pub fn restart_delays(mut self, first: Duration, max: Duration) -> Self {
        self.first_delay = first;
        self.max_delay = max.max(first);
        self
    }

    /// The parts' states (for the health endpoint).
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The token cancelled when inputs are asked to stop (long-lived responses watch it).
    pub fn inputs_token(&self) -> CancellationToken {
        self.inputs.clone()
    }

    /// Starts a part named `name`. `run` is called again after a failure (an `Err`, a
    /// panic, or an `Ok` before it was asked to stop), after the restart delay; it gets a
    /// token cancelled when its stage stops, and must return soon after.
    pub fn spawn<F, Fut>(&mut self, name: impl Into<String>, stage: Stage, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_inner(name.into(), stage, None, run);
    }

    /// Starts a part that must run once in a cluster: it runs only while this node holds
    /// the lease named like the part, and stands by otherwise. The lease is renewed every
    /// third of its time to live; a part whose lease is lost (another node took it after
    /// it expired) is stopped at once, and a part that fails or stops gives it up so
    /// another node may take over without waiting for it to expire.
    pub fn spawn_leased<F, Fut>(
        &mut self,
        name: impl Into<String>,
        stage: Stage,
        lease: Lease,
        run: F,
    ) where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.spawn_inner(name.into(), stage, Some(lease), run);
    }

    fn spawn_inner<F, Fut>(&mut self, name: String, stage: Stage, lease: Option<Lease>, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (token, set) = match stage {
            Stage::Input => (self.inputs.clone(), &mut self.input_set),
            Stage::Output => (self.outputs.clone(), &mut self.output_set),
        };
        let health = self.health.clone();
        let (first, max) = (self.first_delay, self.max_delay);
        health.set(
            &name,
            if lease.is_some() {
                "standby"
            } else {
                "running"
            },
            false,
        );
        set.spawn(async move {
            let mut backoff = crate::Backoff::new(first, max);
            let mut restarted = false;
            loop {
                if let Some(l) = &lease {
                    if !l.wait_until_held(&name, &token, &health).await {
                        break;
                    }
                }
                health.set(&name, "running", restarted);
                restarted = false;
                // A panic in the part is a failure like any other, not the server's end.
                let started = tokio::time::Instant::now();
                let part = token.child_token();
                let mut task = tokio::spawn(run(part.clone()));
                let (attempt, lost) = match &lease {
                    None => ((&mut task).await, false),
                    Some(l) => l.hold_while_running(&name, &mut task, &part).await,
                };
                // A part that ran a good while before failing starts its delays anew.
                if started.elapsed() >= HEALTHY_RUN {
                    backoff.reset();
                }
                if token.is_cancelled() {
                    if let Ok(Err(e)) | Err(e) = attempt.map_err(anyhow::Error::from) {
                        tracing::warn!(component = %name, error = format!("{e:#}"), "stopped with an error");
                    }
                    break;
                }
                if lost {
                    health.set(&name, "standby", false);
                    continue;
                }
                if let Some(l) = &lease {
                    l.release(&name).await;
                }
                let error = match attempt {
                    Ok(Ok(())) => "it stopped by itself".to_owned(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) => format!("it panicked: {e}"),
                };
                health.set(&name, "failing", false);
                tracing::error!(component = %name, %error, restart_in = ?backoff.peek(), "component failed; restarting");
                if !backoff.wait(&token).await {
                    break;
                }
                metrics::counter!("worklane_component_restarts_total", "component" => name.clone())
                    .increment(1);
                restarted = true;
            }
            if let Some(l) = &lease {
                l.release(&name).await;
            }
            health.set(&name, "stopped", false);
        });
    }

    /// Stops every part: inputs first, waiting at most `grace` for them (then they are
    /// aborted), then outputs, which finish what they hold.
    pub async fn shutdown(mut self, grace: Duration) {
        self.inputs.cancel();
        let drained = tokio::time::timeout(grace, async {
            while self.input_set.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(?grace, "inputs did not drain in time; aborting them");
            self.input_set.abort_all();
            while self.input_set.join_next().await.is_some() {}
        }
        tracing::info!("draining outputs");
        self.outputs.cancel();
        while self.output_set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_failing_part_is_restarted_with_backoff_and_shown_failing_meanwhile() {
        let mut sup =
            Supervisor::new().restart_delays(Duration::from_secs(1), Duration::from_secs(4));
        let health = sup.health();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        sup.spawn("flaky", Stage::Input, move |cancel| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => anyhow::bail!("first run fails"),
                    1 => panic!("second run panics"),
                    _ => {
                        cancel.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(health.failing(), ["flaky"]);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // 1 s after the failure it runs again, panics, and waits 2 s more.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(health.failing(), ["flaky"]);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let parts = health.parts();
        assert_eq!(parts["flaky"].state, "running");
        assert_eq!(parts["flaky"].restarts, 2);
        sup.shutdown(Duration::from_secs(5)).await;
        assert_eq!(health.parts()["flaky"].state, "stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_inputs_before_outputs() {
        let mut sup = Supervisor::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        for (name, stage) in [("out", Stage::Output), ("in", Stage::Input)] {
            let order = order.clone();
            sup.spawn(name, stage, move |cancel| {
                let order = order.clone();
                async move {
                    cancel.cancelled().await;
                    // The input takes a while to drain; the output must still wait for it.
                    if name == "in" {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    order.lock().unwrap().push(name);
                    Ok(())
                }
            });
        }
        sup.shutdown(Duration::from_secs(5)).await;
        assert_eq!(*order.lock().unwrap(), ["in", "out"]);
    }
}
