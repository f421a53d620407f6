"""The admin API end to end (issue 17), through the real binaries and fogctl: the user list, the
actions on a user account and their audit events, administrators only (read from the table on
every request); deactivation effective on the user's next request; unlock after a lockout;
self-deactivation and self-demotion refused."""

import uuid

from conftest import STRONG_PASSWORD, assert_problem, invalid_fields, unique_username

USERS = "/api/admin/users"
ACTIONS = ("deactivate", "activate", "promote", "demote", "unlock")
# The seven fields, and whether the address is verified (issue 25).
USER_FIELDS = {"id", "username", "email", "is_active", "is_admin", "created_at", "last_login", "email_verified"}
EVENT_TYPES = {
    "deactivate": "user.deactivated", "activate": "user.activated", "promote": "user.promoted",
    "demote": "user.demoted", "unlock": "user.unlocked",
}


def me(api, token) -> dict:
    response = api.get("/api/auth/me", token=token)
    assert response.status_code == 200, response.text
    return response.json()


def act(api, token, user_id, action):
    return api.post(f"{USERS}/{user_id}/{action}", token=token)


def events(api, subject: str) -> list[dict]:
    """The admin actions' audit events about `subject`, as stored (GSI1 partition
    AUDITSUBJECT#<subject>; the user's own registration and logins are events too, not these)."""
    found = api.dynamodb.client().query(
        TableName=api.table, IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :subject",
        ExpressionAttributeValues={":subject": {"S": f"AUDITSUBJECT#{subject}"}},
    )["Items"]
    return [{name: plain(value) for name, value in item.items()} for item in found
            if item["type"]["S"] in EVENT_TYPES.values()]


def plain(value: dict):
    """A DynamoDB attribute value as Python: strings, None, dicts."""
    (kind, inner), = value.items()
    if kind == "NULL":
        return None
    if kind == "M":
        return {name: plain(member) for name, member in inner.items()}
    return inner


def admin_events(api, subject: str) -> list[dict]:
    """Those whose actor is a user (an administrator through the API), not fogctl."""
    return [event for event in events(api, subject) if event.get("actor") not in (None, "fogctl")]


def test_every_admin_route_is_401_without_a_token_and_403_for_a_non_administrator(api, admin):
    _, user = api.new_user()
    target = me(api, api.new_user()[1])["id"]
    assert_problem(api.get(USERS), 401)
    assert api.get(USERS).headers["WWW-Authenticate"] == "Bearer"
    body = assert_problem(api.get(USERS, token=user), 403)
    assert body["detail"] == "Administrator privileges required"
    assert api.get(USERS, token=admin).status_code == 200
    for action in ACTIONS:
        assert_problem(act(api, None, target, action), 401)
        assert assert_problem(act(api, user, target, action), 403)["detail"] == "Administrator privileges required"
    assert events(api, target) == []
    for action in ACTIONS:
        answered = act(api, admin, target, action)
        assert answered.status_code == 200, f"{action}: {answered.text}"
        assert set(answered.json()) == USER_FIELDS


def test_the_list_pages_through_users_in_username_order_and_filters_by_prefix(api, admin):
    prefix = "e" + uuid.uuid4().hex[:10]
    names = sorted(f"{prefix}{suffix}" for suffix in ("b", "a", "c", "a1", "d"))
    for name in names:
        assert api.register(name).status_code == 201
    walked, cursor, pages = [], None, 0
    while True:
        params = {"q": prefix.upper(), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(USERS, token=admin, params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"users", "next_cursor"}
        for user in body["users"]:
            assert set(user) == USER_FIELDS
            assert user["is_active"] is True and user["is_admin"] is False and user["last_login"] is None
            walked.append(user["username"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert walked == names
    assert pages == 3
    assert invalid_fields(api.get(USERS, token=admin, params={"q": "no.dot"})) == {"q"}
    assert invalid_fields(api.get(USERS, token=admin, params={"limit": "0", "q": ""})) == {"limit", "q"}
    assert assert_problem(api.get(USERS, token=admin, params={"cursor": "!!"}), 400)["detail"] == "Invalid cursor"


def test_deactivation_takes_effect_on_the_users_next_request(api, admin):
    username, token = api.new_user()
    user_id = me(api, token)["id"]
    key = api.post("/api/keys", token=token, json={"name": "agent", "scopes": ["jobs:read"]}).json()["secret_key"]
    assert api.get("/api/scheduler/jobs", headers={"X-API-Key": key}).status_code == 200

    deactivated = act(api, admin, user_id, "deactivate")
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["is_active"] is False and deactivated.json()["username"] == username

    assert_problem(api.get("/api/auth/me", token=token), 401)
    assert_problem(api.get("/api/scheduler/jobs", headers={"X-API-Key": key}), 401)
    assert assert_problem(api.login(username), 403)["detail"] == "Account is disabled"

    assert act(api, admin, user_id, "activate").json()["is_active"] is True
    assert api.login(username).status_code == 200
    assert api.get("/api/scheduler/jobs", headers={"X-API-Key": key}).status_code == 200


def test_unlock_lets_the_right_password_in_after_a_lockout(api, admin):
    username, token = api.new_user()
    user_id = me(api, token)["id"]
    for _ in range(5):
        assert api.login(username, "Wrong-Password-1").status_code == 401
    assert api.login(username).status_code == 423
    unlocked = act(api, admin, user_id, "unlock")
    assert unlocked.status_code == 200, unlocked.text
    assert api.login(username).status_code == 200


def test_an_administrator_cannot_deactivate_or_demote_themselves(api):
    token = api.new_admin()
    own = me(api, token)
    for action in ("deactivate", "demote"):
        body = assert_problem(act(api, token, own["id"], action), 409)
        assert body["detail"] == f"An administrator cannot {action} their own account"
    assert me(api, token) == own, "nothing written"
    assert admin_events(api, own["id"]) == [], "no event"
    assert api.get(USERS, token=token).status_code == 200


def test_each_action_records_one_event_with_its_fields_and_no_secret(api, admin):
    admin_id = me(api, admin)["id"]
    username, token = api.new_user()
    user_id = me(api, token)["id"]
    for action in ("promote", "demote", "deactivate", "activate", "unlock"):
        answered = act(api, admin, user_id, action)
        assert answered.status_code == 200, answered.text
    recorded = sorted(admin_events(api, user_id), key=lambda event: event["id"])
    assert [event["type"] for event in recorded] == [
        "user.promoted", "user.demoted", "user.deactivated", "user.activated", "user.unlocked",
    ]
    for event in recorded:
        assert event["actor"] == admin_id and event["subject"] == user_id
        assert event["source_ip"] == "127.0.0.1"
        assert event["request_id"], event
        assert event["detail"] == {"username": username}, event
        assert STRONG_PASSWORD not in str(event) and token not in str(event)
    # A flag that has the value already: 200, nothing recorded.
    assert act(api, admin, user_id, "activate").status_code == 200
    assert len(admin_events(api, user_id)) == 5


def test_unknown_actions_users_and_ids(api, admin):
    target = me(api, api.new_user()[1])["id"]
    for action in ("delete", "Promote"):
        assert_problem(act(api, admin, target, action), 404)
    assert assert_problem(act(api, admin, uuid.uuid4(), "promote"), 404)["detail"] == "User not found"
    assert invalid_fields(act(api, admin, "42", "promote")) == {"id"}


def test_fogctl_acts_through_the_same_audited_path(api, admin):
    username, token = api.new_user()
    user_id = me(api, token)["id"]
    for _ in range(5):
        assert api.login(username, "Wrong-Password-1").status_code == 401
    unlocked = api.fogctl("unlock", username.upper())
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.strip() == f"{username} is unlocked"
    assert api.login(username).status_code == 200
    deactivated = api.fogctl("deactivate", username)
    assert deactivated.stdout.strip() == f"{username} is deactivated"
    assert_problem(api.get("/api/auth/me", token=token), 401)
    by_fogctl = sorted(events(api, user_id), key=lambda event: event["id"])
    assert [(event["type"], event["actor"]) for event in by_fogctl] == [
        ("user.unlocked", "fogctl"), ("user.deactivated", "fogctl"),
    ]
    assert all(event["source_ip"] is None and event["request_id"] is None for event in by_fogctl), by_fogctl
    missing = api.fogctl("unlock", unique_username())
    assert missing.returncode == 1 and "no user named" in missing.stderr


def test_fogctl_reindex_users_lists_users_written_before_the_list(api, admin):
    username, token = api.new_user()
    user_id = me(api, token)["id"]
    # As a user registered before this version: a profile without GSI1 keys.
    api.dynamodb.client().update_item(
        TableName=api.table, Key={"PK": {"S": f"USER#{user_id}"}, "SK": {"S": "PROFILE"}},
        UpdateExpression="REMOVE GSI1PK, GSI1SK",
    )
    listed = lambda: [user["username"] for user in api.get(USERS, token=admin, params={"q": username}).json()["users"]]  # noqa: E731
    assert listed() == []
    reindexed = api.fogctl("reindex-users")
    assert reindexed.returncode == 0, reindexed.stderr
    assert reindexed.stdout.strip().endswith("user(s) added to the user index")
    assert int(reindexed.stdout.split()[0]) >= 1
    assert listed() == [username]
