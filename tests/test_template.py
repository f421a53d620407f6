"""What template.yaml grants and declares, read from the template itself (no stack needed).

Least privilege: each function may write only the item types it writes, named by their partition
key prefixes through `dynamodb:LeadingKeys`. There is no IAM policy simulator offline, so the
policies are compared with the table below, which says what the code writes (shared/src/store/).
A new function, or a function that starts writing another item type, fails here until the table
and the template's policy are updated together."""

from __future__ import annotations

import pytest

from conftest import local_stack

TEMPLATE = local_stack.load_template()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = local_stack.template_functions(TEMPLATE)

PUT, UPDATE, CHECK = "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"
DELETE = "dynamodb:DeleteItem"
# Every action that writes, or that is authorised item by item inside TransactWriteItems.
WRITE_ACTIONS = {
    PUT, UPDATE, CHECK, "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
}
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}

# The rate limiter's window counters: an UpdateItem counts, a conditional PutItem replaces a
# counter past its TTL (store/rate_counters.rs). Every function but health and docs is rate limited.
COUNTERS = {(UPDATE, "RATE#"), (PUT, "RATE#")}
MOVEMENT = COUNTERS | {(UPDATE, "WALLET#"), (PUT, "WALLET#"), (PUT, "IDEMPOTENCY#")}
# A route that takes API keys writes a calling key's last_used (at most once a minute).
KEY_LAST_USED = {(UPDATE, "APIKEY#")}
# An audit event, written in its action's transaction (store/audit.rs).
AUDIT = {(PUT, "AUDIT#")}
KEY_ROUTES = {"BalanceFunction", "CancelJobFunction", "CreateProposalFunction", "GetJobFunction", "ListDevicesFunction", "ListJobsFunction", "ListProposalsFunction", "MeFunction", "RegisterDeviceFunction", "StakeFunction", "SubmitJobFunction", "TransferFunction", "UnstakeFunction", "VoteFunction"}

# Function -> (action, partition key prefix) pairs it may write. TransactWriteItems is authorised
# per item, as PutItem, UpdateItem or ConditionCheckItem.
EXPECTED_WRITES: dict[str, set[tuple[str, str]]] = {
    "RootFunction": COUNTERS,
    "HealthFunction": set(),
    # One TransactWriteItems: the profile, the credential, the email reservation, the wallet, the
    # event,
    # the address's verification token (issue 25).
    "RegisterFunction": COUNTERS | AUDIT | {
        (PUT, "USER#"), (PUT, "USERNAME#"), (PUT, "EMAIL#"), (PUT, "WALLET#"), (PUT, "VERIFY#"),
    },
    # The failed-login record with the attempt's provisional failure events, and last_login on
    # the profile; then one TransactWriteItems: the session, its first refresh token, the
    # success event, the provisional events deleted, the attempt released, on the conditions
    # that the credential and the profile's session epoch are as verified.
    "LoginFunction": COUNTERS | AUDIT | {
        (UPDATE, "LOGINFAIL#"), (UPDATE, "USER#"), (PUT, "SESSION#"), (PUT, "REFRESH#"), (DELETE, "AUDIT#"),
        (CHECK, "USERNAME#"), (CHECK, "USER#"), (PUT, "MFALOGIN#"),
    },
    # The second factor (issue 24). A wrong code: one TransactWriteItems counting it (USER#,
    # and the login's temp token's wrong codes, MFALOGIN#) with `mfa.failed`.
    "MfaStatusFunction": COUNTERS,
    "MfaSetupFunction": COUNTERS | {(PUT, "USER#")},
    # The factor enabled, the credential marked, the user's epoch and the current session's.
    "MfaVerifyFunction": COUNTERS | AUDIT | {
        (UPDATE, "USER#"), (UPDATE, "USERNAME#"), (UPDATE, "SESSION#"), (CHECK, "USER#"),
    },
    "MfaValidateFunction": COUNTERS | AUDIT | {(UPDATE, "USER#"), (CHECK, "USER#")},
    "MfaRegenerateBackupCodesFunction": COUNTERS | AUDIT | {(UPDATE, "USER#"), (CHECK, "USER#")},
    # The password's attempt; the factor deleted, the credential's mark cleared.
    "MfaDisableFunction": COUNTERS | AUDIT | {
        (UPDATE, "LOGINFAIL#"), (DELETE, "USER#"), (UPDATE, "USERNAME#"), (UPDATE, "USER#"),
        (CHECK, "USER#"), (DELETE, "AUDIT#"),
    },
    # The temp token spent, the factor's step or backup code, the session and its first refresh
    # token, on the conditions that the failures are under the limit and the epoch as read.
    "LoginMfaFunction": COUNTERS | AUDIT | {
        (UPDATE, "USER#"), (UPDATE, "MFALOGIN#"), (DELETE, "MFALOGIN#"), (PUT, "SESSION#"),
        (PUT, "REFRESH#"), (CHECK, "USER#"),
    },
    "MeFunction": COUNTERS,
    # One TransactWriteItems: the revocation item and the session's end; with all=true, the
    # user's session epoch instead.
    "LogoutFunction": COUNTERS | AUDIT | {(PUT, "TOKEN#"), (UPDATE, "SESSION#"), (UPDATE, "USER#")},
    # One TransactWriteItems: the presented token spent, its successor, the session's last use;
    # a reused token's session revoked.
    "RefreshFunction": COUNTERS | AUDIT | {(UPDATE, "REFRESH#"), (PUT, "REFRESH#"), (UPDATE, "SESSION#")},
    # The token's session ended.
    "RevokeFunction": COUNTERS | AUDIT | {(UPDATE, "SESSION#")},
    "ListSessionsFunction": COUNTERS,
    # One TransactWriteItems: the session ended and its `session.revoked` event.
    "DeleteSessionFunction": COUNTERS | AUDIT | {(UPDATE, "SESSION#")},
    # The attempt's reservation (with its provisional failure events) and release; one
    # TransactWriteItems: the session's auth_time, the success event, the provisional events
    # deleted.
    "ReauthenticateFunction": COUNTERS | AUDIT | {
        (UPDATE, "LOGINFAIL#"), (UPDATE, "SESSION#"), (DELETE, "AUDIT#"), (UPDATE, "USER#"),
        (CHECK, "USER#"),
    },
    # The attempt's reservation (with its provisional failure events); one TransactWriteItems:
    # the credential's hash, the user's session epoch, the current session's epoch, the event,
    # the attempt released and the provisional events deleted; with revoke_api_keys, every
    # active key set inactive and the active-key count to zero.
    "ChangePasswordFunction": COUNTERS | AUDIT | {
        (UPDATE, "LOGINFAIL#"), (UPDATE, "USERNAME#"), (UPDATE, "USER#"), (UPDATE, "SESSION#"),
        (UPDATE, "APIKEY#"), (UPDATE, "APIKEYS#"), (DELETE, "AUDIT#"),
    },
    "OpenApiFunction": COUNTERS,
    # The `$default` route's answer (404, 405): rate limited per source IP, it writes nothing else.
    "NotFoundFunction": COUNTERS,
    # The docs page and its assets, built into the function: it writes nothing, and reads nothing.
    "DocsFunction": set(),
    # Jobs live in their user's partition, beside the profile.
    "SubmitJobFunction": COUNTERS | {(PUT, "USER#")},
    "ListJobsFunction": COUNTERS,
    "GetJobFunction": COUNTERS,
    "CancelJobFunction": COUNTERS | {(UPDATE, "USER#")},
    "RegisterDeviceFunction": COUNTERS | {(UPDATE, "DEVICE#")},
    "ListDevicesFunction": COUNTERS,
    "BalanceFunction": COUNTERS,
    # One TransactWriteItems: the wallet updates, the ledger entry (in the wallet's partition),
    # the Idempotency-Key record.
    "TransferFunction": MOVEMENT,
    "StakeFunction": MOVEMENT,
    "UnstakeFunction": MOVEMENT,
    "MintFunction": MOVEMENT | AUDIT,
    "CreateProposalFunction": COUNTERS | {(PUT, "PROPOSAL#")},
    "ListProposalsFunction": COUNTERS,
    # One TransactWriteItems: the vote record (put) and the tally (update) in the proposal's
    # partition; the wallet's vote lock (update, conditioned on its stake being the weight).
    "VoteFunction": COUNTERS | {(PUT, "PROPOSAL#"), (UPDATE, "PROPOSAL#"), (UPDATE, "WALLET#")},
    # One TransactWriteItems: the key and its owner's active-key count; at the cap, expired keys
    # retired.
    "CreateApiKeyFunction": COUNTERS | AUDIT | {(PUT, "APIKEY#"), (UPDATE, "APIKEY#"), (UPDATE, "APIKEYS#")},
    "ListApiKeysFunction": COUNTERS,
    "GetApiKeyFunction": COUNTERS,
    # One TransactWriteItems: the key set inactive, its owner's active-key count lowered.
    "RevokeApiKeyFunction": COUNTERS | AUDIT | {(UPDATE, "APIKEY#"), (UPDATE, "APIKEYS#")},
    "AdminAuditFunction": COUNTERS,
    "AdminListUsersFunction": COUNTERS,
    # Issue 25. The reset token's item; `mail.failed` when SES refuses the mail.
    "PasswordResetRequestFunction": COUNTERS | AUDIT | {(PUT, "RESET#")},
    # One TransactWriteItems: the token spent (deleted), the credential's hash, the user's session
    # epoch and reset generation, the username's failed logins cleared, `password.reset`.
    "PasswordResetConfirmFunction": COUNTERS | AUDIT | {
        (DELETE, "RESET#"), (UPDATE, "USERNAME#"), (UPDATE, "USER#"), (DELETE, "LOGINFAIL#"),
    },
    # One TransactWriteItems: the token spent (deleted), the user's email_verified, the event.
    "VerifyEmailFunction": COUNTERS | AUDIT | {(DELETE, "VERIFY#"), (UPDATE, "USER#")},
    # The new verification token's item; `mail.failed` when SES refuses the mail.
    "VerifyEmailResendFunction": COUNTERS | AUDIT | {(PUT, "VERIFY#")},
    # One TransactWriteItems: the target's flag (or, for unlock, its username's failed logins),
    # the acting administrator checked still one, the audit event.
    "AdminUserActionFunction": COUNTERS | AUDIT | {
        (UPDATE, "USER#"), (CHECK, "USER#"), (UPDATE, "LOGINFAIL#"),
    },
}
for _function in KEY_ROUTES:
    EXPECTED_WRITES[_function] = EXPECTED_WRITES[_function] | KEY_LAST_USED

TABLE, INDEX = "Table", "Table/index/GSI1"
# Function -> (action, resource) pairs it may read. The rate limiter's BatchGetItem reads the
# previous window's counter, the caller's profile, token revocation and session, and a handler's
# first items (change-password reads its credential with a BatchGetItem of its own).
LIMITER = {("dynamodb:BatchGetItem", TABLE)}
WALLET_READ = LIMITER | {("dynamodb:GetItem", TABLE)}
EXPECTED_READS: dict[str, set[tuple[str, str]]] = {
    **{function: LIMITER for function in EXPECTED_WRITES},
    "HealthFunction": {("dynamodb:GetItem", TABLE)},
    "DocsFunction": set(),
    "ListJobsFunction": LIMITER | {("dynamodb:Query", TABLE)},
    "ListSessionsFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "ListDevicesFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "ListProposalsFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "CreateApiKeyFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "ChangePasswordFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "ListApiKeysFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "AdminListUsersFunction": LIMITER | {("dynamodb:Query", INDEX)},
    "BalanceFunction": WALLET_READ,
    "TransferFunction": WALLET_READ,
    "StakeFunction": WALLET_READ,
    "UnstakeFunction": WALLET_READ,
    "MintFunction": WALLET_READ,
    "AdminAuditFunction": LIMITER | {("dynamodb:Query", TABLE), ("dynamodb:Query", INDEX)},
    # The address's reservation and its user's profile; the token's item.
    "PasswordResetRequestFunction": LIMITER | {("dynamodb:GetItem", TABLE)},
    "PasswordResetConfirmFunction": LIMITER | {("dynamodb:GetItem", TABLE)},
    "VerifyEmailFunction": LIMITER | {("dynamodb:GetItem", TABLE)},
}


def statements(function: str) -> list[dict]:
    """The inline policy statements of a function (SAM `Policies`)."""
    found = []
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
            f"{function}: only inline statements, no managed or SAM policy templates: {policy}"
        )
        found.extend(policy["Statement"])
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def dynamodb_statements(function: str) -> list[dict]:
    return [
        statement for statement in statements(function)
        if any(action.startswith("dynamodb:") for action in as_list(statement["Action"]))
    ]


def resource_name(resource) -> str:
    """`Table` for !GetAtt Table.Arn, `Table/index/GSI1` for !Sub "${Table.Arn}/index/GSI1"."""
    if resource == "Table.Arn":
        return TABLE
    if resource == "${Table.Arn}/index/GSI1":
        return INDEX
    raise AssertionError(f"an unexpected resource: {resource!r}")


def leading_key_prefixes(statement: dict) -> list[str]:
    """The partition key prefixes a write statement is limited to; fails on any other condition."""
    condition = statement.get("Condition") or {}
    assert list(condition) == ["ForAllValues:StringLike"] and list(condition["ForAllValues:StringLike"]) == [
        "dynamodb:LeadingKeys"
    ], f"a write statement without exactly one ForAllValues:StringLike dynamodb:LeadingKeys condition: {statement}"
    patterns = as_list(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
    for pattern in patterns:
        assert isinstance(pattern, str) and pattern.endswith("#*") and not set(pattern[:-1]) & {"*", "?"}, (
            f"a leading-key pattern must be one partition key prefix: {pattern!r}"
        )
    return [pattern[:-1] for pattern in patterns]


def test_the_table_names_every_function_of_the_template():
    assert set(FUNCTIONS) == set(EXPECTED_WRITES) == set(EXPECTED_READS)


@pytest.mark.parametrize("function", sorted(EXPECTED_WRITES))
def test_writes_are_limited_to_the_key_prefixes_the_function_writes(function):
    granted = set()
    for statement in dynamodb_statements(function):
        assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions = set(as_list(statement["Action"]))
        if not actions & WRITE_ACTIONS:
            continue
        assert actions <= WRITE_ACTIONS, f"{function}: reads and writes in one statement: {sorted(actions)}"
        assert [resource_name(resource) for resource in as_list(statement["Resource"])] == [TABLE]
        prefixes = leading_key_prefixes(statement)
        granted |= {(action, prefix) for action in actions for prefix in prefixes}
    assert granted == EXPECTED_WRITES[function], {
        "granted but never written": granted - EXPECTED_WRITES[function],
        "written but not granted": EXPECTED_WRITES[function] - granted,
    }


@pytest.mark.parametrize("function", sorted(EXPECTED_READS))
def test_reads_are_the_calls_the_function_makes(function):
    granted = set()
    for statement in dynamodb_statements(function):
        actions = set(as_list(statement["Action"]))
        if actions & WRITE_ACTIONS:
            continue
        assert actions <= READ_ACTIONS, f"{function}: {sorted(actions - READ_ACTIONS)}"
        granted |= {(action, resource_name(resource)) for action in actions for resource in as_list(statement["Resource"])}
    assert granted == EXPECTED_READS[function], {
        "granted but never called": granted - EXPECTED_READS[function],
        "called but not granted": EXPECTED_READS[function] - granted,
    }


# The functions that send mail (issue 25): ses:SendEmail on MAIL_FROM's identity, nothing else.
MAIL_SENDERS = {"RegisterFunction", "PasswordResetRequestFunction", "VerifyEmailResendFunction"}
MAIL_IDENTITY_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${MailFrom}"


@pytest.mark.parametrize("function", sorted(EXPECTED_WRITES))
def test_no_other_service_and_no_wildcard_actions(function):
    sends = False
    for statement in statements(function):
        for action in as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, f"{function}: {action}"
            assert action.startswith("dynamodb:") or action in ("secretsmanager:GetSecretValue", "ses:SendEmail"), f"{function}: {action}"
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
            assert statement["Resource"] in ("JwtSecret", "MfaKey"), f"{function}: the JWT secret or the MFA key"
        if "ses:SendEmail" in as_list(statement["Action"]):
            assert as_list(statement["Action"]) == ["ses:SendEmail"] and "Condition" not in statement
            assert statement["Resource"] == MAIL_IDENTITY_ARN, f"{function}: MAIL_FROM's identity alone"
            sends = True
    assert sends == (function in MAIL_SENDERS), function


def test_the_template_declares_the_sending_identity():
    identities = [resource for resource in RESOURCES.values() if resource["Type"] == "AWS::SES::EmailIdentity"]
    assert identities == [{"Type": "AWS::SES::EmailIdentity", "Properties": {"EmailIdentity": "MailFrom"}}]
    for name in ("MailFrom", "AppBaseUrl"):
        assert "Default" not in TEMPLATE["Parameters"][name], f"{name}: the deployer's own, no default"


ARGON2_FUNCTIONS = ("RegisterFunction", "LoginFunction")
RESERVED = "PasswordHashingReservedConcurrency"


def test_register_and_login_reserve_concurrency_only_when_asked():
    parameter = TEMPLATE["Parameters"][RESERVED]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0
    # 0 by default: a reservation fails the deploy where it would leave the account fewer than
    # 100 unreserved executions, and ReservedConcurrentExecutions: 0 would stop the function.
    assert parameter["Default"] == 0
    condition_name = next(
        name for name, condition in TEMPLATE["Conditions"].items()
        if condition == [[RESERVED, "0"]]
    )
    for function in ARGON2_FUNCTIONS:
        reserved = RESOURCES[function]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == [condition_name, RESERVED, "AWS::NoValue"], function
    others = set(FUNCTIONS) - set(ARGON2_FUNCTIONS)
    assert not [function for function in others if "ReservedConcurrentExecutions" in RESOURCES[function]["Properties"]]


def test_the_throttling_parameters_say_they_apply_per_route():
    """API Gateway applies the stage's default route throttling to each route on its own; the
    descriptions say so, with the figures for the whole API at the defaults."""
    routes = len(local_stack.template_routes(TEMPLATE))
    for name in ("ApiThrottlingBurstLimit", "ApiThrottlingRateLimit"):
        parameter = TEMPLATE["Parameters"][name]
        description = " ".join(parameter["Description"].split())
        default = parameter["Default"]
        assert "per route, not per API" in description, f"{name}: {description}"
        assert f"each of the {routes} routes" in description, f"{name}: {description}"
        assert f"{routes} x {default} = {routes * default:,}" in description, f"{name}: {description}"
    settings = RESOURCES["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {"ThrottlingBurstLimit": "ApiThrottlingBurstLimit", "ThrottlingRateLimit": "ApiThrottlingRateLimit"}


def test_every_checkov_skip_gives_its_reason():
    """`make test-checkov` fails on any failed check; a check skipped in a resource's Metadata
    must say why in one line."""
    for name, resource in RESOURCES.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert set(skip) == {"id", "comment"}, f"{name}: {skip}"
            assert skip["id"].startswith("CKV_"), f"{name}: {skip}"
            comment = skip["comment"].strip()
            assert comment and "\n" not in comment and len(comment) <= 200, f"{name} {skip['id']}: {comment!r}"


def test_only_the_functions_that_read_a_token_may_read_the_jwt_secret():
    """health and docs read no token (exempt routes), nor does the `$default` route's function
    (every request it answers counts against its source IP): their functions start without the
    JWT secret, so they get neither the right to read it nor its ARN."""
    readers = {
        function for function in FUNCTIONS
        if any("secretsmanager:GetSecretValue" in as_list(statement["Action"]) for statement in statements(function))
    }
    exempt = {"HealthFunction", "DocsFunction", "NotFoundFunction"}
    assert readers == set(FUNCTIONS) - exempt
    for function in exempt:
        assert RESOURCES[function]["Properties"]["Environment"]["Variables"]["JWT_SECRET_ARN"] == "", function


SECOND_FACTOR_FUNCTIONS = {
    "MfaSetupFunction", "MfaVerifyFunction", "MfaValidateFunction", "MfaDisableFunction",
    "MfaRegenerateBackupCodesFunction", "LoginMfaFunction", "ReauthenticateFunction",
}


def test_only_the_functions_that_check_second_factors_may_read_the_mfa_key():
    """The MFA key (the TOTP secrets' encryption key, the backup codes' hash key) is a secret of
    its own, never defaulted: the functions that check second factors alone read it, by its ARN
    in their own environment."""
    readers = {
        function for function in FUNCTIONS
        if any(statement["Resource"] == "MfaKey" for statement in statements(function)
               if "secretsmanager:GetSecretValue" in as_list(statement["Action"]))
    }
    assert readers == SECOND_FACTOR_FUNCTIONS
    for function in FUNCTIONS:
        variables = RESOURCES[function]["Properties"].get("Environment", {}).get("Variables", {})
        assert ("MFA_KEY_ARN" in variables) == (function in SECOND_FACTOR_FUNCTIONS), function
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["MFA_KEY"] == ""
    assert TEMPLATE["Parameters"]["AdminMfaRequired"]["Default"] == "true"


def test_the_docs_function_has_no_permission_at_all():
    """It answers the page and assets built into it: no policy, so no AWS call could succeed."""
    assert "Policies" not in RESOURCES["DocsFunction"]["Properties"]
