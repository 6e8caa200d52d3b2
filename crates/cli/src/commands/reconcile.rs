use coffee_core::Version;
use coffee_server::Settings;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
    /// Which path's metrics to check (v1, v2 or v3).
    #[arg(long)]
    pub version: Version,
    /// Overwrite Redis with the recomputation.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: overwrite even when Redis is ahead of PostgreSQL (its database was reset).
    /// Stop every writer of this version first; a live writer's newest delta would be erased.
    #[arg(long, requires = "fix")]
    pub force: bool,
}

/// Prints the report as JSON; exits non-zero when there was drift and it was not fixed.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (pool, projection) = super::sinks(&args.settings).await?;
    let report = if args.force {
        coffee_pipeline::reconcile::force_reset(&pool, &projection, args.version).await?
    } else {
        coffee_pipeline::reconcile::reconcile(&pool, &projection, args.version, args.fix).await?
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.drift.is_empty() && !report.fixed {
        std::process::exit(2);
    }
    Ok(())
}
