//! `dbaudit`: forward database audit records to a SIEM through a WebAssembly sink plugin.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use dbaudit_host::{commands, logging};

const EXIT_CODES: &str = "\
Exit codes:
  0  every record read was delivered or filtered (nothing dead-lettered); command succeeded
  1  failure: `validate` found a problem, a `test-connection` check failed, the input or
     plugin cannot be loaded, ...
  2  run/replay/queries/rules: configuration error in the pipeline file or the plugin's settings
  3  run/replay: finished, but some records are in the dead letter";

#[derive(Parser)]
#[command(name = "dbaudit", version, about = "Forward database audit records to a SIEM through a sandboxed WebAssembly sink plugin", after_help = EXIT_CODES)]
struct Cli {
    /// More logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Forward the input until it ends (or until SIGINT/SIGTERM when following).
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9898).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
    },
    /// Check the pipeline file and the plugin's settings; report every problem.
    Validate {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run the plugin's connection checks, one line each.
    TestConnection {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Print the plugin's hunting queries for these settings.
    Queries {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// A query parameter, NAME=VALUE (e.g. client_ip=10.0.1.50); repeatable.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Print the plugin's detection rules; --apply creates the missing ones.
    Rules {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        apply: bool,
    },
    /// The whole job against a built-in SentinelOne emulator: no arguments, no network.
    Demo,
    /// Write a realistic, reproducible audit data set as JSON Lines.
    Generate {
        /// How many records.
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        /// Same seed, same records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file ("-" for stdout).
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
    },
    /// Send the records of a dead-letter file again.
    Replay {
        #[arg(short, long)]
        config: PathBuf,
        deadletter: PathBuf,
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

fn main() {
    let cli = Cli::parse();
    // The demo tells its own story; its logs only when asked for (-v).
    let quiet = cli.quiet || (matches!(cli.command, Command::Demo) && cli.verbose == 0);
    logging::init(cli.verbose, quiet);
    let code = match cli.command {
        Command::Run {
            config,
            metrics_addr,
        } => commands::run(&config, metrics_addr),
        Command::Validate { config } => commands::validate(&config),
        Command::TestConnection { config } => commands::test_connection(&config),
        Command::Queries {
            config,
            format,
            params,
        } => commands::queries(&config, matches!(format, Format::Json), &params),
        Command::Rules { config, apply } => commands::rules(&config, apply),
        Command::Demo => dbaudit_host::demo::run(),
        Command::Generate {
            records,
            seed,
            output,
        } => commands::generate(records, seed, &output),
        Command::Replay {
            config,
            deadletter,
            metrics_addr,
        } => commands::replay(&config, &deadletter, metrics_addr),
    };
    std::process::exit(code);
}
