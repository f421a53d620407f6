//! Operator CLI: changes a user's flags and clears a username's login lockout directly in the
//! table, through the same audited store function as the admin API (each writes its audit event
//! with the actor `fogctl`); lists or revokes a user's API keys; lists in the user index the users
//! written before it existed.
//!
//! `cargo run -q -p fogctl -- [--table NAME] [--endpoint URL | --aws] <command> <username>`
//! finds the local stack `make run` started through its state file unless told where to go (see
//! `WHERE`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Deserialize;
use shared::config::{AUDIT_RETENTION_DAYS, DEFAULT_AUDIT_RETENTION_DAYS};
use shared::domain::{Actor, ApiKey, AuditContext, AuditEventType, UserAction, rfc3339};
use shared::store::{
    RevokeApiKey, Store, StoreError, UserActionError, UserActionOutcome, client, sdk_config,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which table fogctl acts on, and where (the end of `--help`).
const WHERE: &str = "\
Which DynamoDB, and which table:
  (no option)      the local stack `make run` (or `make sam-local`) is running: it writes its
                   DynamoDB endpoint and table to .local/stack.json at the checkout's root (the
                   nearest directory holding Cargo.lock, from the current one up) and removes it
                   when it stops, so the ports RUN_ARGS gave it are found too
  --endpoint URL   that DynamoDB-compatible server (also DYNAMODB_ENDPOINT); the table is
                   fog-compute-local unless --table says otherwise
  --aws            AWS itself, with the usual AWS_REGION / AWS_PROFILE settings; --table is
                   required (the deployed stack's TableName output)
--table NAME (also TABLE_NAME) overrides the table in every case.";

/// The local stack's table unless told otherwise (`make run`'s default).
const LOCAL_TABLE: &str = "fog-compute-local";

#[derive(Parser)]
#[command(about = "Fog Compute operator CLI", after_help = WHERE)]
struct Cli {
    /// The DynamoDB table [default: the local stack's].
    #[arg(long, env = "TABLE_NAME")]
    table: Option<String>,
    /// A local DynamoDB-compatible endpoint [default: the local stack's].
    #[arg(long, env = "DYNAMODB_ENDPOINT", conflicts_with = "aws")]
    endpoint: Option<String>,
    /// Use AWS itself rather than a local endpoint.
    #[arg(long)]
    aws: bool,
    #[command(subcommand)]
    command: Command,
}

/// What the running local stack wrote in its state file (infra/local_stack.py `stack_state`).
#[derive(Deserialize)]
struct StackState {
    dynamodb_endpoint: String,
    table: String,
}

/// The endpoint (none: AWS) and table the options name, or the running local stack's.
fn target(cli: &Cli) -> Result<(Option<String>, String), Failure> {
    if cli.aws {
        let table = cli.table.clone().ok_or_else(|| {
            Failure::Refused("--aws needs --table (the deployed stack's TableName output)".into())
        })?;
        return Ok((None, table));
    }
    if let Some(endpoint) = &cli.endpoint {
        let table = cli.table.clone().unwrap_or_else(|| LOCAL_TABLE.to_owned());
        return Ok((Some(endpoint.clone()), table));
    }
    let here = std::env::current_dir()
        .map_err(|error| Failure::Refused(format!("the current directory: {error}")))?;
    let path = stack_file(&here);
    let state = read_stack_state(&path)?;
    Ok((
        Some(state.dynamodb_endpoint),
        cli.table.clone().unwrap_or(state.table),
    ))
}

/// `.local/stack.json` at the checkout's root: the nearest directory from `here` up that holds
/// Cargo.lock, else `here` itself.
fn stack_file(here: &Path) -> PathBuf {
    let root = (here.ancestors())
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(here);
    root.join(".local").join("stack.json")
}

fn read_stack_state(path: &Path) -> Result<StackState, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Failure::Refused(if error.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no local stack is running ({} is missing): start one with `make run`, \
                 or pass --endpoint URL or --aws (see --help)",
                path.display()
            )
        } else {
            format!("{}: {error}", path.display())
        })
    })?;
    serde_json::from_str(&text).map_err(|error| {
        Failure::Refused(format!(
            "{} is not a local stack's state file: {error}",
            path.display()
        ))
    })
}

#[derive(Subcommand)]
enum Command {
    /// Make a user an administrator.
    Promote { username: String },
    /// Take administrator rights away.
    Demote { username: String },
    /// Disable an account: logins are refused and its tokens and API keys stop working.
    Deactivate { username: String },
    /// Enable a disabled account again.
    Activate { username: String },
    /// Clear the login lockout of a username (its failed logins are forgotten).
    Unlock { username: String },
    /// List in the user index (GET /api/admin/users) the users written before it existed.
    ReindexUsers,
    /// A user's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Every API key of a user, revoked and expired ones included (never a secret).
    List { username: String },
    /// Revoke one of a user's API keys: it stops working at once.
    Revoke { username: String, key_id: Uuid },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(&Cli::parse()).await {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("fogctl: {failure}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<String, Failure> {
    let (endpoint, table) = target(cli)?;
    let store = Store::new(client(&sdk_config(endpoint.as_deref()).await), &table);
    match &cli.command {
        Command::Keys(command) => keys(&store, command).await,
        Command::ReindexUsers => reindex_users(&store).await,
        command => act_on_user(&store, command).await,
    }
}

enum Failure {
    /// The username, and the table it is not in.
    NoSuchUser(String, String),
    Refused(String),
    Store(StoreError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchUser(username, table) => {
                write!(f, "no user named {username} in table {table}")
            }
            Self::Refused(reason) => f.write_str(reason),
            Self::Store(error) => write!(f, "{error}"),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The action's audit context: fogctl acting now, from no request; kept AUDIT_RETENTION_DAYS as
/// the functions keep events.
fn audit_context() -> Result<AuditContext, Failure> {
    let retention_days = match std::env::var("AUDIT_RETENTION_DAYS") {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|days| AUDIT_RETENTION_DAYS.contains(days))
            .ok_or_else(|| {
                Failure::Refused(format!(
                    "environment variable AUDIT_RETENTION_DAYS is invalid: must be a whole number of days from {} to {}",
                    AUDIT_RETENTION_DAYS.start(),
                    AUDIT_RETENTION_DAYS.end()
                ))
            })?,
        _ => DEFAULT_AUDIT_RETENTION_DAYS,
    };
    Ok(AuditContext {
        actor: Actor::Fogctl,
        source_ip: None,
        request_id: None,
        at: OffsetDateTime::now_utc(),
        retention_days,
    })
}

async fn act_on_user(store: &Store, command: &Command) -> Result<String, Failure> {
    let (username, action, done) = match command {
        Command::Promote { username } => (username, UserAction::Promote, "is now an administrator"),
        Command::Demote { username } => (
            username,
            UserAction::Demote,
            "is no longer an administrator",
        ),
        Command::Deactivate { username } => (username, UserAction::Deactivate, "is deactivated"),
        Command::Activate { username } => (username, UserAction::Activate, "is active"),
        Command::Unlock { username } => (username, UserAction::Unlock, "is unlocked"),
        Command::Keys(_) | Command::ReindexUsers => unreachable!("handled in main"),
    };
    let username = username.to_ascii_lowercase();
    let context = audit_context()?;
    let Some(user) = store.user_by_username(&username).await? else {
        return Err(Failure::NoSuchUser(username, store.table().to_owned()));
    };
    match store.act_on_user(&user, action, &context).await {
        Ok(UserActionOutcome::Done { .. } | UserActionOutcome::Unchanged(_)) => {
            Ok(format!("{username} {done}"))
        }
        Err(UserActionError::NotFound) => {
            Err(Failure::NoSuchUser(username, store.table().to_owned()))
        }
        Err(UserActionError::Store(error)) => Err(error.into()),
        // Only an administrator acting through the API meets these.
        Err(error @ (UserActionError::OwnAccount(_) | UserActionError::ActorNotAdmin)) => {
            Err(Failure::Refused(error.to_string()))
        }
    }
}

async fn reindex_users(store: &Store) -> Result<String, Failure> {
    let indexed = store.index_unlisted_users().await?;
    Ok(format!("{indexed} user(s) added to the user index"))
}

async fn keys(store: &Store, command: &KeysCommand) -> Result<String, Failure> {
    let (KeysCommand::List { username } | KeysCommand::Revoke { username, .. }) = command;
    let username = username.to_ascii_lowercase();
    let Some(credential) = store.credential(&username).await? else {
        return Err(Failure::NoSuchUser(username, store.table().to_owned()));
    };
    let now = OffsetDateTime::now_utc();
    match command {
        KeysCommand::List { .. } => {
            let keys = store.api_keys(credential.user_id).await?;
            let mut lines = vec![format!("{username}: {} API key(s)", keys.len())];
            lines.extend(keys.iter().map(|key| describe(key, now)));
            Ok(lines.join("\n"))
        }
        KeysCommand::Revoke { key_id, .. } => {
            let revoked = audit_context()?
                .event(
                    AuditEventType::ApiKeyRevoked,
                    credential.user_id.to_string(),
                )
                .with_api_key(*key_id);
            match store
                .revoke_api_key(credential.user_id, *key_id, now, &revoked)
                .await?
            {
                RevokeApiKey::Revoked => Ok(format!("API key {key_id} of {username} is revoked")),
                RevokeApiKey::AlreadyInactive => Ok(format!(
                    "API key {key_id} of {username} was already inactive"
                )),
                RevokeApiKey::NotFound => Err(Failure::Refused(format!(
                    "{username} has no API key {key_id}"
                ))),
            }
        }
    }
}

/// One line per key: id, prefix, state, scopes, limit, times, name (never the secret or its
/// hash).
fn describe(key: &ApiKey, now: OffsetDateTime) -> String {
    let state = if !key.is_active {
        "revoked"
    } else if key.expired(now) {
        "expired"
    } else {
        "active"
    };
    let time = |at: Option<OffsetDateTime>, none: &str| {
        at.and_then(|at| rfc3339(at).ok())
            .unwrap_or_else(|| none.to_owned())
    };
    let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
    format!(
        "{}  {}  {state}  {}  {}/h  created {}  last used {}  expires {}  {}",
        key.id,
        key.prefix,
        scopes.join(","),
        key.rate_limit,
        time(Some(key.created_at), "-"),
        time(key.last_used, "never"),
        time(key.expires_at, "never"),
        key.name,
    )
}
