use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = omi_server::config::Cli::parse();
    omi_server::telemetry::init_logging();
    omi_server::cli::run(cli).await
}
