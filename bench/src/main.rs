use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bench::chain::Chain;
use bench::events::{TokenMint, api_gateway_event, fill_path_parameters};
use bench::measure::{Answer, ColdRun, Subject, WarmRun, cold_start, warm};
use bench::report::{FunctionResult, Measured, Report, Sizes};
use bench::template::{self, Api, Function};
use bench::world::{
    KEY_FUNCTION, World, key_request_body, key_subject_name, with_api_key, with_body,
};
use clap::Parser;
use serde_json::{Value, json};

type Route = (&'static str, &'static str);
const REGISTER_ROUTE: Route = ("POST", "/api/auth/register");
const LOGIN_ROUTE: Route = ("POST", "/api/auth/login");
const MINT_ROUTE: Route = ("POST", "/api/tokenomics/mint");
const STAKE_ROUTE: Route = ("POST", "/api/tokenomics/stake");
const SUBMIT_JOB_ROUTE: Route = ("POST", "/api/scheduler/jobs");
const CREATE_PROPOSAL_ROUTE: Route = ("POST", "/api/tokenomics/proposals");
const LOGOUT_ROUTE: Route = ("POST", "/api/auth/logout");
const REFRESH_ROUTE: Route = ("POST", "/api/auth/refresh");
const CHANGE_PASSWORD_ROUTE: Route = ("POST", "/api/auth/change-password");
const CREATE_API_KEY_ROUTE: Route = ("POST", "/api/keys");
/// What the bench user gets before anything is measured: enough for every transfer, stake and
/// unstake of a run to succeed.
const SEED_FUNDS: &str = "1000000";
const SEED_STAKE: &str = "100000";
const FLOOR: &str = "floor";
/// `shared::telemetry::COST_LOG_VARIABLE` (the bench does not link `shared`).
const COST_LOG_VARIABLE: &str = "FOG_LOG_COSTS";
/// The rate limits a function gets: high enough never to refuse the bench.
const UNLIMITED: &str = "1000000";
/// How recent a sign-in creating an API key needs, in minutes: the longest allowed, so that the
/// bench's tokens (copies of one login's, `auth_time` included) make keys however long the run.
const REAUTHENTICATION_MINUTES: &str = "1440";

/// What the bench needs from its environment, and who provides it.
const ENVIRONMENT: &str =
    "Needs TABLE_NAME and DYNAMODB_ENDPOINT (infra/local_stack.py with-dynamodb sets them).";

#[derive(Parser, Debug, PartialEq)]
#[command(name = "bench", about, after_help = ENVIRONMENT)]
struct Options {
    /// Only these functions (comma-separated binary names), beside the floor.
    #[arg(long, value_name = "F1,F2", value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Fresh processes started per function, for init and cold start (at least 5).
    #[arg(long, value_name = "N", default_value_t = 7, value_parser = at_least::<5>)]
    cold_runs: usize,
    /// Invocations of one warm process per function, for warm latency and peak RSS (at least
    /// 200).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = at_least::<200>)]
    warm_invocations: usize,
    /// The x86_64 bootstraps measured, one file per function (`make bench` passes the release
    /// directory of the host's target).
    #[arg(long, value_name = "DIR")]
    binaries: PathBuf,
    /// cargo lambda's arm64 builds (`DIR/<function>/bootstrap`), for their sizes.
    #[arg(long, value_name = "DIR")]
    arm64: Option<PathBuf>,
    /// The fixtures, `DIR/<function>.json` (a function without one gets an event built from
    /// openapi.yaml).
    #[arg(long, value_name = "DIR", default_value = "events")]
    events: PathBuf,
    /// Where results.md, results.json and cold-start.svg are written.
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    out: PathBuf,
}

/// A whole number of at least `LEAST`: with fewer runs, a median or a p99 says little.
fn at_least<const LEAST: usize>(raw: &str) -> Result<usize, String> {
    raw.parse::<usize>()
        .ok()
        .filter(|count| *count >= LEAST)
        .ok_or(format!("a whole number of at least {LEAST}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(error) = run(Options::parse()).await {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}

type Failure = Box<dyn std::error::Error>;

async fn run(options: Options) -> Result<(), Failure> {
    let table = std::env::var("TABLE_NAME").map_err(|_| ENVIRONMENT)?;
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").map_err(|_| ENVIRONMENT)?;
    let functions = template::functions(&std::fs::read_to_string("template.yaml")?)?;
    let api = Api::parse(&std::fs::read_to_string("openapi.yaml")?)?;
    let secret = random_key()?;
    let mfa_key = random_key()?;
    let env: Vec<(String, String)> = [
        ("TABLE_NAME", table.as_str()),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("JWT_SECRET", secret.as_str()),
        ("MFA_KEY", mfa_key.as_str()),
        ("RATE_LIMIT_AUTH_PER_MIN", UNLIMITED),
        ("RATE_LIMIT_WRITE_PER_MIN", UNLIMITED),
        ("RATE_LIMIT_READ_PER_MIN", UNLIMITED),
        ("RATE_LIMIT_ADMIN_PER_MIN", UNLIMITED),
        ("REAUTHENTICATION_MINUTES", REAUTHENTICATION_MINUTES),
        // The sender infra/local_stack.py verifies on the local server; the mails stay there.
        ("MAIL_FROM", "no-reply@fog-compute.local"),
        ("APP_BASE_URL", "http://localhost:5173"),
        (COST_LOG_VARIABLE, "1"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();

    let user = json!({"username": "fogbench", "email": "fogbench@example.com", "password": "Fog-Compute-2024"});
    let prepared: Vec<(Function, Value, String)> = functions
        .iter()
        .map(|function| {
            let (event, source) = event_for(function, &api, &options.events, &user)?;
            Ok((function.clone(), event, source))
        })
        .collect::<Result<_, Failure>>()?;
    let subject = |function: &Function, event: &Value, tokens: Option<Arc<TokenMint>>| Subject {
        name: function.binary.clone(),
        binary: options.binaries.join(&function.binary),
        memory_mb: function.memory_mb,
        env: env.clone(),
        event: event.clone(),
        tokens,
        chain: None,
    };

    let (tokens, mut world, api_key) = match seed_token(&prepared, &subject, secret.as_bytes())
        .await
    {
        Ok((mint, wallet)) => {
            let mint = Arc::new(mint);
            let seeds = Seeds {
                prepared: &prepared,
                subject: &subject,
                tokens: &mint,
            };
            let world = seeds
                .world(&options.binaries.join("fogctl"), wallet)
                .await
                .unwrap_or_else(|reason| {
                    eprintln!("bench: the fixtures' placeholder ids stay (routes naming a wallet, job or proposal answer 403 or 404 early): {reason}");
                    World::fixtures()
                });
            let api_key = seeds
                .api_key()
                .await
                .inspect_err(|reason| {
                    eprintln!("bench: no API key, so {KEY_FUNCTION} is measured with a token only: {reason}");
                })
                .ok();
            (Some(mint), world, api_key)
        }
        Err(reason) => {
            eprintln!("bench: no access token, so routes that take one go without: {reason}");
            (None, World::fixtures(), None)
        }
    };
    let sessions = match seed_sessions(&prepared, &subject, secret.as_bytes()).await {
        Ok(sessions) => {
            world.refresh_token = sessions.spare_refresh.clone();
            world.session = sessions.spare_session.clone();
            Some(sessions)
        }
        Err(reason) => {
            eprintln!(
                "bench: the session routes keep the fixtures' placeholders (refresh answers 401, delete-session 404; logout and change-password use the bench user's own session): {reason}"
            );
            None
        }
    };
    let floor = Function {
        binary: FLOOR.into(),
        method: "GET".into(),
        path: "/".into(),
        memory_mb: 256,
    };
    let floor_event = api_gateway_event("GET", "/", None);
    // Each subject: how it runs, its function, its event's source, whether it carries a token,
    // and how the report names it and its route.
    let mut subjects = vec![(
        subject(&floor, &floor_event, None),
        floor.clone(),
        "built".to_owned(),
        false,
        (FLOOR.to_owned(), "GET /".to_owned()),
    )];
    for (function, event, source) in prepared {
        if options
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(&function.binary))
        {
            continue;
        }
        let token = api.takes_token(&function.method, &function.path);
        let tokens = tokens.clone().filter(|_| token);
        let event = world.apply(&event);
        let route = format!("{} {}", function.method, function.path);
        if let Some(key) = api_key.as_ref().filter(|_| function.binary == KEY_FUNCTION) {
            // The same request with the bench user's API key instead of a token.
            let mut keyed = subject(&function, &with_api_key(&event, key), None);
            keyed.name = key_subject_name(&function.binary);
            let names = (keyed.name.clone(), format!("{route} (API key)"));
            let keyed_source = format!("{source} + X-API-Key");
            subjects.push((keyed, function.clone(), keyed_source, false, names));
        }
        let names = (function.binary.clone(), route);
        let mut measured = subject(&function, &event, tokens);
        if let Some(sessions) = &sessions {
            sessions.apply(&function, &mut measured);
        }
        subjects.push((measured, function, source, token, names));
    }

    // Rounds of one cold start per function, so that a busy spell of the machine hits all alike.
    let mut cold: Vec<Vec<ColdRun>> = vec![Vec::new(); subjects.len()];
    for round in 1..=options.cold_runs {
        progress(&format!(
            "cold starts, round {round} of {}",
            options.cold_runs
        ));
        for (index, (subject, ..)) in subjects.iter().enumerate() {
            cold[index].push(cold_start(subject).await?);
        }
    }
    let mut warm_runs: Vec<WarmRun> = Vec::new();
    for (subject, ..) in &subjects {
        progress(&format!(
            "{} warm invocations of {}",
            options.warm_invocations, subject.name
        ));
        warm_runs.push(warm(subject, options.warm_invocations).await?);
    }

    let mut results = Vec::new();
    let floor_cold_runs: Vec<f64> = cold[0].iter().map(|run| run.cold_ms).collect();
    for (index, (subject, function, source, token, (name, route))) in subjects.iter().enumerate() {
        let result = FunctionResult::new(
            Measured {
                function: name,
                route: route.clone(),
                event: source.clone(),
                token: *token,
                cold: &cold[index],
                warm: &warm_runs[index],
                x86_64: sizes(&subject.binary)?,
                arm64: match &options.arm64 {
                    Some(dir) => Some(sizes(&dir.join(&function.binary).join("bootstrap"))?),
                    None => None,
                },
            },
            (index > 0).then_some(floor_cold_runs.as_slice()),
        );
        results.push(result);
    }
    let floor = results.remove(0);
    let report = Report {
        cold_runs: options.cold_runs,
        warm_invocations: options.warm_invocations,
        floor,
        functions: results,
    };
    std::fs::create_dir_all(&options.out)?;
    let markdown = report.markdown();
    std::fs::write(options.out.join("results.md"), &markdown)?;
    std::fs::write(
        options.out.join("results.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    bench::chart::draw(&report, &options.out.join("cold-start.svg"))?;
    println!("{markdown}");
    println!(
        "Written: {0}/results.md, {0}/results.json, {0}/cold-start.svg",
        options.out.display()
    );
    Ok(())
}

/// The fixture `events/<binary>.json` when there is one, else an event built from the route
/// and the OpenAPI document; and where it came from.
fn event_for(
    function: &Function,
    api: &Api,
    events: &Path,
    user: &Value,
) -> Result<(Value, String), Failure> {
    let fixture = events.join(format!("{}.json", function.binary));
    if fixture.exists() {
        let event = serde_json::from_str(&std::fs::read_to_string(&fixture)?)
            .map_err(|error| format!("{}: {error}", fixture.display()))?;
        return Ok((event, fixture.display().to_string()));
    }
    let body = api.body(
        &function.method,
        &function.path,
        user.as_object().expect("an object"),
    );
    let mut event = api_gateway_event(&function.method, &function.path, body.as_ref());
    fill_path_parameters(&mut event, &function.path);
    Ok((event, "built from openapi.yaml".to_owned()))
}

fn find_route(
    prepared: &[(Function, Value, String)],
    (method, path): Route,
) -> Result<(&Function, &Value), Failure> {
    prepared
        .iter()
        .find(|(function, ..)| function.method == method && function.path == path)
        .map(|(function, event, _)| (function, event))
        .ok_or_else(|| format!("the template has no {method} {path}").into())
}

/// The body of a 2xx answer, as JSON.
fn succeeded(route: Route, answer: Answer) -> Result<Value, Failure> {
    match answer {
        Answer::Http { status, body } if (200..300).contains(&status) => {
            Ok(serde_json::from_str(&body)?)
        }
        answer => Err(format!("{} {} answered {answer:?}", route.0, route.1).into()),
    }
}

/// Registers the bench user and logs it in, through the functions themselves, for a real token;
/// and the user's wallet.
async fn seed_token(
    prepared: &[(Function, Value, String)],
    subject: &impl Fn(&Function, &Value, Option<Arc<TokenMint>>) -> Subject,
    key: &[u8],
) -> Result<(TokenMint, String), Failure> {
    let (register, register_event) = find_route(prepared, REGISTER_ROUTE)?;
    let (login, login_event) = find_route(prepared, LOGIN_ROUTE)?;
    progress("registering and logging in the bench user");
    let user = succeeded(
        REGISTER_ROUTE,
        subject(register, register_event, None)
            .invoke_once()
            .await?,
    )?;
    let wallet = user["wallet_address"]
        .as_str()
        .ok_or("register answered no wallet_address")?
        .to_owned();
    let session = succeeded(
        LOGIN_ROUTE,
        subject(login, login_event, None).invoke_once().await?,
    )?;
    let token = session["access_token"]
        .as_str()
        .ok_or("login answered no access_token")?;
    Ok((TokenMint::new(token, key)?, wallet))
}

/// The sessions the session routes work on, so that none of them ends the session every other
/// route's token belongs to: logout, revoke and delete-session end a spare session of the bench
/// user (the first time; then they find it ended, the same round trips with a refused write),
/// refresh rotates a session of its own, one refresh token after the other, and change-password
/// changes the password of a user of its own back and forth (it ends its user's other sessions).
struct SessionSeeds {
    spare: Arc<TokenMint>,
    spare_refresh: String,
    spare_session: String,
    refresh: String,
    password_user: Arc<TokenMint>,
    passwords: (String, String),
}

impl SessionSeeds {
    fn apply(&self, function: &Function, subject: &mut Subject) {
        let route = (function.method.as_str(), function.path.as_str());
        if route == LOGOUT_ROUTE {
            subject.tokens = Some(self.spare.clone());
        } else if route == REFRESH_ROUTE {
            subject.chain = Some(Arc::new(Chain::refresh(&self.refresh)));
        } else if route == CHANGE_PASSWORD_ROUTE {
            subject.tokens = Some(self.password_user.clone());
            let (current, other) = &self.passwords;
            subject.chain = Some(Arc::new(Chain::passwords(current, other)));
        }
    }
}

/// Logs the bench user in twice more (a spare session, and one for the refresh chain) and
/// registers and logs in the user whose password change-password changes, through the functions.
async fn seed_sessions(
    prepared: &[(Function, Value, String)],
    subject: &impl Fn(&Function, &Value, Option<Arc<TokenMint>>) -> Subject,
    key: &[u8],
) -> Result<SessionSeeds, Failure> {
    let (register, register_event) = find_route(prepared, REGISTER_ROUTE)?;
    let (login, login_event) = find_route(prepared, LOGIN_ROUTE)?;
    let (_, change_event) = find_route(prepared, CHANGE_PASSWORD_ROUTE)?;
    progress("starting the sessions the session routes work on");
    let log_in = |event: Value| async move {
        succeeded(
            LOGIN_ROUTE,
            subject(login, &event, None).invoke_once().await?,
        )
    };
    let text = |body: &Value, field: &str| -> Result<String, Failure> {
        Ok(body[field]
            .as_str()
            .ok_or(format!("no {field} in {body}"))?
            .to_owned())
    };
    let spare = log_in(login_event.clone()).await?;
    let spare_mint = TokenMint::new(&text(&spare, "access_token")?, key)?;
    let spare_session = spare_mint
        .claim("sid")
        .and_then(Value::as_str)
        .ok_or("the access token has no sid")?
        .to_owned();
    let refresh = text(&log_in(login_event.clone()).await?, "refresh_token")?;

    let body_of = |event: &Value| -> Value {
        event["body"]
            .as_str()
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null)
    };
    let username = format!("{}pw", text(&body_of(register_event), "username")?);
    let register_event = with_body(register_event, |body| {
        body["username"] = json!(username);
        body["email"] = json!(format!("{username}@example.com"));
    });
    succeeded(
        REGISTER_ROUTE,
        subject(register, &register_event, None)
            .invoke_once()
            .await?,
    )?;
    let current = text(&body_of(&register_event), "password")?;
    let other = text(&body_of(change_event), "new_password")?;
    let login_event = with_body(login_event, |body| {
        body["username"] = json!(username);
        body["password"] = json!(current);
    });
    let password_user = log_in(login_event).await?;
    Ok(SessionSeeds {
        spare: Arc::new(spare_mint),
        spare_refresh: text(&spare, "refresh_token")?,
        spare_session,
        refresh,
        password_user: Arc::new(TokenMint::new(&text(&password_user, "access_token")?, key)?),
        passwords: (current, other),
    })
}

/// What seeding the bench user's world needs.
struct Seeds<'a, S> {
    prepared: &'a [(Function, Value, String)],
    subject: &'a S,
    tokens: &'a Arc<TokenMint>,
}

impl<S: Fn(&Function, &Value, Option<Arc<TokenMint>>) -> Subject> Seeds<'_, S> {
    /// Makes the fixtures' placeholders real, through the functions themselves: a second user
    /// whose wallet receives the transfers (and whom the bench user, as an administrator,
    /// unlocks); the bench user an administrator (`fogctl promote`, as an operator would) with
    /// minted funds and a stake; a job; a proposal.
    async fn world(&self, fogctl: &Path, wallet: String) -> Result<World, Failure> {
        progress("seeding the bench user's wallets, job and proposal");
        let (register, register_event) = find_route(self.prepared, REGISTER_ROUTE)?;
        let username = register_event["body"]
            .as_str()
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
            .and_then(|body| body["username"].as_str().map(str::to_owned))
            .ok_or("the register event has no username")?;
        let recipient_event = with_body(register_event, |body| {
            body["username"] = json!(format!("{username}recipient"));
            body["email"] = json!(format!("{username}recipient@example.com"));
        });
        let recipient = succeeded(
            REGISTER_ROUTE,
            (self.subject)(register, &recipient_event, None)
                .invoke_once()
                .await?,
        )?;
        let field = |name: &str| {
            recipient[name]
                .as_str()
                .map(str::to_owned)
                .ok_or(format!("register answered no {name}"))
        };
        let (user, recipient) = (field("id")?, field("wallet_address")?);
        let promoted = tokio::process::Command::new(fogctl)
            .args(["promote", &username])
            .status()
            .await
            .map_err(|error| format!("{}: {error}", fogctl.display()))?;
        if !promoted.success() {
            return Err(format!("fogctl promote {username}: {promoted}").into());
        }
        let mut world = World {
            wallet,
            recipient,
            user,
            ..World::fixtures()
        };
        self.move_amount(&world, MINT_ROUTE, SEED_FUNDS).await?;
        self.move_amount(&world, STAKE_ROUTE, SEED_STAKE).await?;
        world.job = self.created_id(&world, SUBMIT_JOB_ROUTE, "jobId").await?;
        world.proposal = self
            .created_id(&world, CREATE_PROPOSAL_ROUTE, "proposalId")
            .await?;
        Ok(world)
    }

    /// A key of the bench user's, made through the create-api-key function: its secret.
    async fn api_key(&self) -> Result<String, Failure> {
        progress("creating the bench user's API key");
        let (function, event) = find_route(self.prepared, CREATE_API_KEY_ROUTE)?;
        let event = with_body(event, |body| *body = key_request_body());
        let created = self.invoke(CREATE_API_KEY_ROUTE, function, &event).await?;
        Ok(created["secret_key"]
            .as_str()
            .ok_or("create-api-key answered no secret_key")?
            .to_owned())
    }

    /// Invokes `route`'s function once with its fixture, in `world`, moving `amount`.
    async fn move_amount(&self, world: &World, route: Route, amount: &str) -> Result<(), Failure> {
        let (function, event) = find_route(self.prepared, route)?;
        let event = with_body(&world.apply(event), |body| body["amount"] = json!(amount));
        self.invoke(route, function, &event).await.map(drop)
    }

    /// The id (the answer's `field`) of what `route`'s function creates from its fixture, in
    /// `world`.
    async fn created_id(
        &self,
        world: &World,
        route: Route,
        field: &str,
    ) -> Result<String, Failure> {
        let (function, event) = find_route(self.prepared, route)?;
        let created = self.invoke(route, function, &world.apply(event)).await?;
        Ok(created[field]
            .as_str()
            .ok_or(format!("{} {} answered no {field}", route.0, route.1))?
            .to_owned())
    }

    async fn invoke(
        &self,
        route: Route,
        function: &Function,
        event: &Value,
    ) -> Result<Value, Failure> {
        let answer = (self.subject)(function, event, Some(self.tokens.clone()))
            .invoke_once()
            .await?;
        succeeded(route, answer)
    }
}

/// A fresh random key for this run's functions: its HS256 key, and its MFA key.
fn random_key() -> Result<String, Failure> {
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(|error| error.to_string())?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The stripped bootstrap's size, and the size of the zip SAM would upload (`bootstrap` alone,
/// deflated, executable).
fn sizes(bootstrap: &Path) -> Result<Sizes, Failure> {
    let bytes =
        std::fs::read(bootstrap).map_err(|error| format!("{}: {error}", bootstrap.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(&bytes)?;
    let zip_bytes = zip.finish()?.into_inner().len() as u64;
    Ok(Sizes {
        bootstrap_bytes: bytes.len() as u64,
        zip_bytes,
    })
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    /// `args` after the program's name, and `--binaries bin` where `args` do not name them.
    fn parsed(args: &[&str]) -> Result<Options, clap::Error> {
        let binaries: &[&str] = if args.contains(&"--binaries") {
            &[]
        } else {
            &["--binaries", "bin"]
        };
        Options::try_parse_from(
            std::iter::once("bench").chain(binaries.iter().chain(args).copied()),
        )
    }

    #[test]
    fn the_command_is_well_formed() {
        Options::command().debug_assert();
    }

    #[test]
    fn the_binaries_are_required_and_alone_give_the_defaults() {
        let error = Options::try_parse_from(["bench"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            parsed(&[]).unwrap(),
            Options {
                only: None,
                cold_runs: 7,
                warm_invocations: 200,
                binaries: "bin".into(),
                arm64: None,
                events: "events".into(),
                out: "bench/results".into(),
            }
        );
    }

    #[test]
    fn every_flag_is_read() {
        let args = [
            "--arm64",
            "target/lambda",
            "--only",
            "me,health",
            "--cold-runs",
            "11",
            "--warm-invocations",
            "500",
            "--binaries",
            "bin",
            "--events",
            "fixtures",
            "--out",
            "out",
        ];
        assert_eq!(
            parsed(&args).unwrap(),
            Options {
                only: Some(vec!["me".into(), "health".into()]),
                cold_runs: 11,
                warm_invocations: 500,
                binaries: "bin".into(),
                arm64: Some("target/lambda".into()),
                events: "fixtures".into(),
                out: "out".into(),
            }
        );
    }

    #[test]
    fn counts_are_whole_numbers_from_their_bounds() {
        assert_eq!(parsed(&["--cold-runs", "5"]).unwrap().cold_runs, 5);
        assert_eq!(
            parsed(&["--warm-invocations", "200"])
                .unwrap()
                .warm_invocations,
            200
        );
        for refused in [
            ["--cold-runs", "4"],
            ["--cold-runs", "seven"],
            ["--cold-runs", "7.5"],
            ["--warm-invocations", "199"],
        ] {
            let error = parsed(&refused).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{refused:?}");
        }
        let error = parsed(&["--cold-runs", "4"]).unwrap_err().to_string();
        assert!(error.contains("a whole number of at least 5"), "{error}");
    }

    #[test]
    fn unknown_flags_and_missing_values_are_refused() {
        assert_eq!(
            parsed(&["--cold-starts", "7"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            parsed(&["--out"]).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }
}
