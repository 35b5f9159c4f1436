//! The `crius` binary: parses the command line and either prints the effective configuration or
//! runs the daemon until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::Parser;
use crius_server::cli::{Cli, Command};
use crius_server::{config, daemon, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crius: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = config::load(cli)?;
    match cli.command {
        Some(Command::Config) => {
            #[allow(clippy::print_stdout)] // printing the configuration is this command's job
            {
                print!("{}", config.to_toml()?);
            }
            Ok(())
        }
        None => {
            config.check_host()?;
            logging::init(&config.log)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("crius")
                .build()?;
            runtime.block_on(daemon::run(config))
        }
    }
}
