//! Dashboard capacity bench: 1,000 WebSocket clients, orders posted one at a time, the
//! server's RSS and the push latency (order POST → frame read by each client).
//!
//! ```text
//! cargo run --release -p coffee-server --example ws_bench                  # starts its own server
//! cargo run --release -p coffee-server --example ws_bench -- --clients 1000 --orders 50
//! cargo run --release -p coffee-server --example ws_bench -- --url http://127.0.0.1:8005 --pid 1234
//! ```
//!
//! Without `--url` it starts the server as a child process (this same binary, `serve`), so the
//! RSS reported is the server's alone, not the clients'. The child runs the API, the dashboard
//! hub, the v2 worker and the v1 aggregator like `coffee-rt up`, against the PostgreSQL server
//! of DATABASE_URL (default 127.0.0.1:5432) and REDIS_URL, with a database and a Redis
//! namespace of its own that are dropped at the end: a run never inherits another's positions.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::Parser;
use coffee_pipeline::{
    v1::{AggregateMode, Aggregator},
    v2::{Worker, WorkerConfig},
};
use coffee_server::{Application, Settings, dashboard::bench};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// A running server; without it, one is started as a child process.
    #[arg(long)]
    url: Option<String>,
    /// The pid of `--url`'s server, for its RSS.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 50)]
    orders: usize,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// (internal) the server side, started by the bench itself.
    Serve {
        #[command(flatten)]
        settings: Box<Settings>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Mode::Serve { settings }) = cli.mode {
        return serve(*settings).await;
    }
    let (url, pid, child) = match (&cli.url, cli.pid) {
        (Some(url), pid) => (url.clone(), pid, None),
        (None, _) => {
            let (url, child, db) = start_server()?;
            let pid = child.id();
            (url, Some(pid), Some((child, db)))
        }
    };
    let report =
        bench::run(bench::BenchConfig { base_url: url, server_pid: pid, clients: cli.clients, orders: cli.orders, ..Default::default() })
            .await;
    if let Some((mut child, db)) = child {
        drop(child.stdin.take()); // EOF: the server shuts down gracefully
        child.wait()?;
        drop_database(&db).await?;
    }
    print!("{}", report?);
    Ok(())
}

/// The run's own database on DATABASE_URL's server.
fn database_url() -> String {
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://coffee:coffee@127.0.0.1:5432/postgres".into());
    let server = server.rsplit_once('/').map(|(s, _)| s.to_owned()).unwrap_or(server);
    format!("{server}/coffee_bench_ws_{}", std::process::id())
}

async fn drop_database(url: &str) -> anyhow::Result<()> {
    let (server, db) = url.rsplit_once('/').context("database URL")?;
    let (client, conn) = tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await?;
    Ok(())
}

fn start_server() -> anyhow::Result<(String, std::process::Child, String)> {
    let exe = std::env::current_exe()?;
    let db = database_url();
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db, "--namespace", &format!("wsbench{}:", std::process::id())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let port: u16 = line.trim().strip_prefix("port ").context("the server did not report its port")?.parse()?;
    Ok((format!("http://127.0.0.1:{port}"), child, db))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(&settings).await?;
    let state = app.state().clone();
    let stop = CancellationToken::new();
    let worker = Worker::new(
        WorkerConfig::new("ws-bench"),
        state.pool.clone(),
        state.projection.clone(),
        Arc::clone(&state.catalog),
        &settings.redis_url,
    );
    let worker = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
    let agg_stop = stop.clone();
    let aggregator =
        tokio::spawn(
            async move { aggregator.run_every(Duration::from_secs(1), AggregateMode::Incremental, agg_stop.cancelled_owned()).await },
        );
    let namespace = settings.namespace.clone();
    let projection = state.projection.clone();
    // Like `up`: no handle of the API may outlive the router, or the v1 writers never drain.
    drop(state);
    println!("port {}", app.port());
    // The parent closes our stdin when it is done.
    let eof = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        eof.cancel();
    });
    app.run_until(stop.clone().cancelled_owned()).await?;
    worker.await??;
    aggregator.await?;
    // Leave no keys behind: the namespace was this run's own.
    let mut conn = projection.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{namespace}*")).query_async(&mut conn).await?;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    }
    Ok(())
}
