use coffee_server::{Application, Settings};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Settings,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let app = Application::build(&args.settings).await?;
    println!("coffee-rt serving on http://{}:{}/", args.settings.listen.ip(), app.port());
    app.run_until(shutdown.cancelled_owned()).await
}
