use coffee_server::Application;

use crate::config::{ServeArgs, server_config};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signal();
    let config = server_config(&args.services, &args.kafka, &args.http, &args.warehouse)?;
    let app = Application::build(&config).await?;
    println!("coffee-rt serving on http://{}:{}/", config.listen.ip(), app.port());
    app.run_until(shutdown.cancelled_owned()).await
}
