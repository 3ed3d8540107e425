//! User commands: `worklane dbcp check` runs the start-up checks of the database capture
//! points in a configuration file against their sources, without starting anything.

use crate::config::DatabaseCaptureConfig;
use crate::{CapturePoint, CheckError};
use anyhow::Context as _;
use std::path::PathBuf;
use worklane_engine::{Engine, EngineOptions};

/// `dbcp check`: prepare every statement of the database capture points against their
/// sources and report what is wrong.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file (as for `worklane serve --config`).
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// Only the capture point with this id (all database capture points when absent).
    #[arg(long)]
    pub id: Option<String>,
}

/// The `kind = "database"` entries of a configuration file's `[[capture_point]]` array.
pub fn database_entries(text: &str) -> anyhow::Result<Vec<DatabaseCaptureConfig>> {
    let doc: toml::Table = toml::from_str(text).context("the configuration is not valid TOML")?;
    let Some(points) = doc.get("capture_point") else {
        return Ok(Vec::new());
    };
    let points = points
        .as_array()
        .context("capture_point must be an array of tables ([[capture_point]])")?;
    let mut out = Vec::new();
    for (i, p) in points.iter().enumerate() {
        if p.get("kind").and_then(|k| k.as_str()) != Some("database") {
            continue;
        }
        let cfg: DatabaseCaptureConfig = p
            .clone()
            .try_into()
            .with_context(|| format!("capture_point[{i}] (kind = \"database\")"))?;
        out.push(cfg);
    }
    Ok(out)
}

/// Runs `dbcp check`: prints one line per capture point; fails when any check failed.
pub async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let entries: Vec<_> = database_entries(&text)?
        .into_iter()
        .filter(|c| args.id.as_ref().is_none_or(|id| &c.id == id))
        .collect();
    if entries.is_empty() {
        anyhow::bail!(
            "no database capture point{} in {}",
            args.id
                .as_ref()
                .map(|i| format!(" {i:?}"))
                .unwrap_or_default(),
            args.config.display()
        );
    }
    // The checks need no store; a throwaway in-memory one satisfies the engine.
    let store = worklane_store::connect("sqlite::memory:").await?;
    let (engine, writer) = Engine::start(store, EngineOptions::default()).await?;
    let mut failed = 0;
    for cfg in entries {
        let id = cfg.id.clone();
        let result = match CapturePoint::new(engine.clone(), cfg).await {
            Ok(point) => {
                let r = point.check().await.map_err(|e| match e {
                    CheckError::Statement(m) | CheckError::Unavailable(m) => m,
                });
                point.source().close().await;
                r
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => println!("{id}: ok"),
            Err(m) => {
                failed += 1;
                println!("{m}");
            }
        }
    }
    drop(engine);
    writer.await?;
    if failed > 0 {
        anyhow::bail!("{failed} database capture point(s) failed the checks");
    }
    Ok(())
}
