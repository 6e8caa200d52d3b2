use crate::config::ReconcileArgs;

/// Prints the report as JSON; exits non-zero when there was drift and it was not fixed.
pub async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let (pool, projection) = super::sinks(&args.services).await?;
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
