use crate::config::MigrateArgs;

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let pool = coffee_store::postgres::connect(&args.services.database_url, 2).await?;
    coffee_store::postgres::migrate(&pool).await?;
    println!("migrations applied to {}", args.services.database_url);
    Ok(())
}
