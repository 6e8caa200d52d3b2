use coffee_server::Settings;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let pool = coffee_store::postgres::connect(&args.settings.database_url, 2).await?;
    coffee_store::postgres::migrate(&pool).await?;
    println!("migrations applied to {}", args.settings.database_url);
    Ok(())
}
