//! `worklane bench ...`: benchmarks that start the real server as a child process (so its
//! RSS is its own and it can be killed with SIGKILL) and measure it from this process.

pub mod console;
pub mod create;
pub mod distribute;
pub mod failover;
pub mod read;
pub mod rules;

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Resolves `sqlite` (a new file in a temp dir), `postgres` (a new database on the local
/// server, or `WORKLANE_TEST_POSTGRES`), or a store URL as given.
pub async fn store_url(spec: &str) -> anyhow::Result<String> {
    Ok(match spec {
        "sqlite" => worklane_store::testing::fresh_sqlite_url(),
        "postgres" => worklane_store::testing::fresh_postgres_url().await?,
        url => url.to_owned(),
    })
}

/// A `worklane serve` child process, with authentication on as installed.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    /// The admin token the store's first server wrote.
    pub token: String,
}

/// An HTTP client builder that sends `token`.
pub fn client(token: &str) -> anyhow::Result<reqwest::ClientBuilder> {
    let headers = crate::credentials::bearer(token).map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(reqwest::Client::builder().default_headers(headers))
}

/// Where the servers of the store at `store` find the admin token: one file per store, so
/// a node that joins finds the token whichever node made it.
fn token_file(store: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    store.hash(&mut h);
    std::env::temp_dir().join(format!("worklane-bench-{:016x}.token", h.finish()))
}

impl ServerProcess {
    /// Starts `worklane serve` on a free port with `store`, and waits until it is healthy.
    pub async fn start(store: &str) -> anyhow::Result<Self> {
        Self::start_with(store, None).await
    }

    /// [`ServerProcess::start`] with a configuration file.
    pub async fn start_with(store: &str, config: Option<&std::path::Path>) -> anyhow::Result<Self> {
        Self::start_opts(store, config, true).await
    }

    /// [`ServerProcess::start_with`], with authentication on or off (`auth.mode`), to
    /// measure what it costs.
    pub async fn start_opts(
        store: &str,
        config: Option<&std::path::Path>,
        auth: bool,
    ) -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let exe: PathBuf = std::env::current_exe().context("finding the worklane executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve");
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let child = cmd
            .args(["--listen", &format!("127.0.0.1:{port}"), "--store", store])
            // WORKLANE_BENCH_LOG: the servers' log filter, to look inside a run.
            .env(
                "RUST_LOG",
                std::env::var("WORKLANE_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env("WORKLANE_AUTH__BOOTSTRAP_TOKEN_FILE", token_file(store))
            .env("WORKLANE_AUTH__MODE", if auth { "on" } else { "off" })
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let file = token_file(store);
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                // Healthy, and the token written (by this node or the first one).
                if r.status().is_success() && (!auth || file.exists()) {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("the server did not become healthy in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token = if auth {
            std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .trim()
                .to_owned()
        } else {
            String::new()
        };
        Ok(Self { child, base, token })
    }

    /// The server's resident set size and its peak, in MiB.
    pub fn rss_mib(&self) -> Option<(f64, f64)> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// CPU time the server has used so far: see [`cpu_seconds`].
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.child.id()?)
    }

    /// The state of component `name` on `/healthz` (`running`, `standby`...), if it answers.
    pub async fn state_of(&self, http: &reqwest::Client, name: &str) -> Option<String> {
        let r = http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["components"][name]["state"].as_str().map(str::to_owned)
    }

    /// SIGKILL, no goodbye.
    pub async fn kill9(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// CPU time process `pid` has used so far (user + system, all threads), in seconds:
/// divided by the work done between two readings, it is a cost that other load on the
/// machine does not distort the way it distorts a rate.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and
    // stime are the 14th and 15th fields, in USER_HZ (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Writes `n` tasks through the store's write port, 20,000 a transaction: copies of
/// `template` (round robin) with new brokerIds and the captureId `capture_id` gives each.
pub async fn seed_tasks(
    store: &dyn worklane_store::Store,
    n: usize,
    template: &[worklane_domain::Task],
    capture_id: impl Fn(i64) -> String,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let k = left.min(20_000);
        let mut tx = store.begin().await?;
        let ids = tx.alloc_ids(k).await?;
        let batch: Vec<worklane_domain::Task> = ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| {
                let mut t = template[i % template.len()].clone();
                t.broker_id = id;
                t.capture_id = capture_id(id.0);
                t
            })
            .collect();
        let refs: Vec<&worklane_domain::Task> = batch.iter().collect();
        tx.put_tasks(&refs).await?;
        tx.commit().await?;
        left -= k;
        bar.inc(k as u64);
    }
    Ok(())
}

/// Refreshes PostgreSQL's planner statistics after a bulk load, as an operator does after
/// one (autovacuum does it a minute later where it runs; some servers run without it).
/// Without statistics the planner guesses, and one guess turned an agent's holdings count
/// on a partial index into a scan of a million rows (94 ms a pull). SQLite: nothing to do.
pub async fn analyze(store: &dyn worklane_store::Store, url: &str) -> anyhow::Result<()> {
    if store.backend() == "postgres" {
        worklane_store::testing::analyze_postgres(url).await?;
    }
    Ok(())
}

/// Latency percentiles of a sample, in milliseconds.
/// The median of `v` (the upper one of an even count); `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99), at(0.999))
}
