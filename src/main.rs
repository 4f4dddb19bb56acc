use std::process::ExitCode;

use clap::Parser;

use caravan::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    caravan::cli::init_logging(cli.log_format);
    match caravan::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", caravan::cli::describe(&e));
            ExitCode::FAILURE
        }
    }
}
