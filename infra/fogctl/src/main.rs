//! Operator CLI: changes a user's flags directly in the table.
//!
//! `cargo run -q -p fogctl -- [--table NAME] [--endpoint URL | --aws] <command> <username>`
//! runs against the local stack by default; `--aws` uses the AWS endpoint of the usual
//! AWS_REGION / AWS_PROFILE settings.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::store::{Store, UserFlag, client, sdk_config};

#[derive(Parser)]
#[command(about = "Fog Compute operator CLI")]
struct Cli {
    /// The DynamoDB table.
    #[arg(long, env = "TABLE_NAME", default_value = "fog-compute-local")]
    table: String,
    /// A local DynamoDB-compatible endpoint.
    #[arg(
        long,
        env = "DYNAMODB_ENDPOINT",
        default_value = "http://127.0.0.1:8000",
        conflicts_with = "aws"
    )]
    endpoint: String,
    /// Use AWS itself rather than a local endpoint.
    #[arg(long)]
    aws: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a user an administrator.
    Promote { username: String },
    /// Take administrator rights away.
    Demote { username: String },
    /// Disable an account: logins are refused and its tokens stop working.
    Deactivate { username: String },
    /// Enable a disabled account again.
    Activate { username: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (username, flag, value, done) = match &cli.command {
        Command::Promote { username } => {
            (username, UserFlag::Admin, true, "is now an administrator")
        }
        Command::Demote { username } => (
            username,
            UserFlag::Admin,
            false,
            "is no longer an administrator",
        ),
        Command::Deactivate { username } => (username, UserFlag::Active, false, "is deactivated"),
        Command::Activate { username } => (username, UserFlag::Active, true, "is active"),
    };
    let endpoint = (!cli.aws).then_some(cli.endpoint.as_str());
    let store = Store::new(client(&sdk_config(endpoint).await), &cli.table);
    let username = username.to_ascii_lowercase();
    match store.set_user_flag(&username, flag, value).await {
        Ok(true) => {
            println!("{username} {done}");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("fogctl: no user named {username} in table {}", cli.table);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("fogctl: {error}");
            ExitCode::FAILURE
        }
    }
}
