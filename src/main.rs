// warp's filter types nest one level per route; the API's routes need more than the default.
#![recursion_limit = "256"]

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
