use std::process::ExitCode;

use clap::Parser;
use dplab::cli::{Cli, Command, Failure};
use dplab::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    dplab::terminal::init_logging(cli.verbosity.level());
    // `dplab exec` relays signals to its program instead (commands/exec.rs).
    if !matches!(cli.command, Command::Exec { .. }) {
        dplab::signals::install();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(dispatch(cli.command));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            // Errors are printed whatever -q says: they explain the status.
            match &failure {
                Failure::BadInput(msg) => eprintln!("dplab: error: {msg}"),
                Failure::Error(e) => eprintln!("dplab: error: {e:#}"),
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn dispatch(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Probe { json } => commands::probe::run(json).await,
        Command::Up {
            topology,
            datapath,
            proxy,
            overlay,
        } => commands::lifecycle::up(&topology, datapath, proxy, overlay).await,
        Command::Exec { run, pod, command } => commands::exec::run(&run, &pod, &command),
        Command::Down { run, all } => commands::lifecycle::down(run.as_deref(), all),
        Command::Cleanup => commands::lifecycle::cleanup(),
        Command::Test {
            run,
            from,
            to,
            workload,
            duration,
            tool,
            cpus,
            json,
        } => {
            let flags = commands::test::TestFlags {
                from,
                to,
                workload,
                duration,
                tool,
                cpus: cpus.unwrap_or_default(),
                json,
            };
            commands::test::run(&run, flags).await
        }
        Command::Run(args) => commands::run::run(args).await,
        Command::Report { results, out } => commands::report::report(&results, out.as_deref()),
        Command::Compare { a, b, json } => commands::report::compare(&a, &b, json),
    }
}
