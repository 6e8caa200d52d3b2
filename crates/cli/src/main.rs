//! `coffee-rt`: one binary, one subcommand per process role.

/// glibc's malloc was a fifth of the API's CPU time under load (many small, short-lived
/// allocations per request across threads); mimalloc's thread-local free lists are cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = coffee_rt::Cli::parse();
    let _logging = coffee_rt::logging::init(&cli.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(coffee_rt::run(cli))
}
