//! The bench user's world: the wallets, job and proposal that the `events/` fixtures name with
//! placeholder ids, made real, so that every route does its whole work rather than answering 403
//! or 404 early.

use serde_json::Value;

/// The caller's wallet in the fixtures.
pub const FIXTURE_WALLET: &str =
    "0x7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f";
/// The wallet a transfer pays into in the fixtures.
pub const FIXTURE_RECIPIENT: &str =
    "0xa3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
/// The job of `get-job` and `cancel-job` in the fixtures.
pub const FIXTURE_JOB: &str = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b";
/// The proposal of `vote` in the fixtures.
pub const FIXTURE_PROPOSAL: &str = "0190b1c5-7d3e-7a41-9c55-2f6e8d9a0b1c";
/// The refresh token of `refresh` and `revoke` in the fixtures: of the right form, of no session.
pub const FIXTURE_REFRESH_TOKEN: &str =
    "fog_rt_UkVQTEFDRS1XSVRILUEtUkVGUkVTSC1UT0tFTi1PRi1BLUZPRy1DT01QVVRFLVNFU1NJT04tMDEyMzQ1Njc4OQ";
/// The session `delete-session` ends in the fixtures.
pub const FIXTURE_SESSION: &str = "0190b1c5-9e2f-7c3a-8b4d-5e6f7a8b9c0d";
/// The user `admin-user-action` acts on (unlocks) in the fixtures.
pub const FIXTURE_USER: &str = "0190b1c5-3c4d-7e5f-8a6b-7c8d9e0f1a2b";

/// The real ids that stand for the fixtures' placeholders.
#[derive(Clone, Debug)]
pub struct World {
    pub wallet: String,
    pub recipient: String,
    pub job: String,
    pub proposal: String,
    /// A refresh token of a session of the bench user's that the bench may end (revoke's).
    pub refresh_token: String,
    /// That session's id (delete-session's).
    pub session: String,
    /// The user an administrator acts on (admin-user-action's): the recipient's id.
    pub user: String,
}

impl World {
    /// The fixtures' own ids, before anything is made real.
    pub fn fixtures() -> Self {
        Self {
            wallet: FIXTURE_WALLET.into(),
            recipient: FIXTURE_RECIPIENT.into(),
            job: FIXTURE_JOB.into(),
            proposal: FIXTURE_PROPOSAL.into(),
            refresh_token: FIXTURE_REFRESH_TOKEN.into(),
            session: FIXTURE_SESSION.into(),
            user: FIXTURE_USER.into(),
        }
    }

    /// `event` with every placeholder id (path, path parameters, body) replaced by this world's.
    pub fn apply(&self, event: &Value) -> Value {
        let text = event
            .to_string()
            .replace(FIXTURE_WALLET, &self.wallet)
            .replace(FIXTURE_RECIPIENT, &self.recipient)
            .replace(FIXTURE_JOB, &self.job)
            .replace(FIXTURE_PROPOSAL, &self.proposal)
            .replace(FIXTURE_REFRESH_TOKEN, &self.refresh_token)
            .replace(FIXTURE_SESSION, &self.session)
            .replace(FIXTURE_USER, &self.user);
        serde_json::from_str(&text).expect("ids are plain text inside JSON strings")
    }
}

/// The function whose fixture the bench also sends with an API key instead of a token: a
/// key-authenticated request, held to the same budgets (issue 14).
pub const KEY_FUNCTION: &str = "list-jobs";
/// The scopes of the bench's key: what `KEY_FUNCTION` needs.
pub const KEY_SCOPES: &[&str] = &["jobs:read"];
/// The bench key's hourly budget: more than a run's cold starts and warm invocations.
pub const KEY_RATE_LIMIT: u64 = 100_000;

/// How the report names the key-authenticated request of `binary`.
pub fn key_subject_name(binary: &str) -> String {
    format!("{binary}+key")
}

/// The body of the bench's `POST /api/keys`.
pub fn key_request_body() -> Value {
    serde_json::json!({"name": "fog-bench", "rate_limit": KEY_RATE_LIMIT, "scopes": KEY_SCOPES})
}

/// `event` carrying `secret` in `X-API-Key`, and no bearer token (a token and a key together
/// are refused).
pub fn with_api_key(event: &Value, secret: &str) -> Value {
    let mut event = event.clone();
    if !event["headers"].is_object() {
        event["headers"] = serde_json::json!({});
    }
    let headers = event["headers"].as_object_mut().expect("an object");
    headers.retain(|name, _| {
        !name.eq_ignore_ascii_case("authorization") && !name.eq_ignore_ascii_case("x-api-key")
    });
    headers.insert("x-api-key".into(), Value::String(secret.to_owned()));
    event
}

/// `event` with its JSON body changed by `change`.
pub fn with_body(event: &Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut event = event.clone();
    let mut body: Value = event["body"]
        .as_str()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    change(&mut body);
    event["body"] = Value::String(body.to_string());
    event
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_are_replaced_in_path_parameters_and_body() {
        let world = World {
            wallet: "0xw".into(),
            recipient: "0xr".into(),
            job: "job-1".into(),
            proposal: "proposal-1".into(),
            refresh_token: "fog_rt_real".into(),
            session: "session-1".into(),
            user: "user-1".into(),
        };
        let event = json!({
            "rawPath": format!("/api/scheduler/jobs/{FIXTURE_JOB}"),
            "pathParameters": {"id": FIXTURE_JOB},
            "body": json!({
                "from_address": FIXTURE_WALLET,
                "to_address": FIXTURE_RECIPIENT,
                "proposal_id": FIXTURE_PROPOSAL,
                "refresh_token": FIXTURE_REFRESH_TOKEN,
            }).to_string(),
        });
        let applied = world.apply(&event);
        assert_eq!(applied["rawPath"], "/api/scheduler/jobs/job-1");
        assert_eq!(applied["pathParameters"]["id"], "job-1");
        let body: Value = serde_json::from_str(applied["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"from_address": "0xw", "to_address": "0xr", "proposal_id": "proposal-1", "refresh_token": "fog_rt_real"})
        );
        let session = json!({"pathParameters": {"id": FIXTURE_SESSION}});
        assert_eq!(world.apply(&session)["pathParameters"]["id"], "session-1");
        let user = json!({"pathParameters": {"id": FIXTURE_USER, "action": "unlock"}});
        assert_eq!(world.apply(&user)["pathParameters"]["id"], "user-1");
        assert_eq!(World::fixtures().apply(&event), event);
    }

    #[test]
    fn a_body_field_can_be_changed() {
        let event = json!({"body": r#"{"address":"0xw","amount":"10"}"#});
        let changed = with_body(&event, |body| body["amount"] = json!("1000000"));
        let body: Value = serde_json::from_str(changed["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"address": "0xw", "amount": "1000000"}));
    }

    #[test]
    fn a_key_request_carries_the_key_and_no_token() {
        let event = json!({
            "headers": {"Authorization": "Bearer t", "X-Api-Key": "old", "accept": "application/json"},
            "rawPath": "/api/scheduler/jobs",
        });
        let keyed = with_api_key(&event, "fog_sk_secret");
        let headers = keyed["headers"].as_object().unwrap();
        assert_eq!(headers.get("x-api-key"), Some(&json!("fog_sk_secret")));
        assert!(
            !headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case("authorization"))
        );
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert_eq!(keyed["rawPath"], event["rawPath"]);
        let bare = with_api_key(&json!({"rawPath": "/"}), "k");
        assert_eq!(bare["headers"]["x-api-key"], "k");
    }

    #[test]
    fn the_key_opens_the_route_it_is_sent_to() {
        let fixture = format!(
            "{}/../events/{KEY_FUNCTION}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        assert_eq!(event["routeKey"], "GET /api/scheduler/jobs");
        assert_eq!(key_request_body()["scopes"], json!(["jobs:read"]));
        assert!(key_request_body()["rate_limit"].as_u64().unwrap() >= 10_000);
        assert_eq!(key_subject_name(KEY_FUNCTION), "list-jobs+key");
    }

    #[test]
    fn the_fixtures_use_the_placeholders() {
        let fixture = |name: &str| {
            let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
        };
        for (name, placeholders) in [
            ("transfer", &[FIXTURE_WALLET, FIXTURE_RECIPIENT][..]),
            ("stake", &[FIXTURE_WALLET]),
            ("unstake", &[FIXTURE_WALLET]),
            ("mint", &[FIXTURE_WALLET]),
            ("create-proposal", &[FIXTURE_WALLET]),
            ("vote", &[FIXTURE_WALLET, FIXTURE_PROPOSAL]),
            ("get-job", &[FIXTURE_JOB]),
            ("cancel-job", &[FIXTURE_JOB]),
            ("refresh", &[FIXTURE_REFRESH_TOKEN]),
            ("revoke", &[FIXTURE_REFRESH_TOKEN]),
            ("delete-session", &[FIXTURE_SESSION]),
            ("admin-user-action", &[FIXTURE_USER]),
        ] {
            for placeholder in placeholders {
                assert!(fixture(name).contains(placeholder), "{name}: {placeholder}");
            }
        }
    }
}
