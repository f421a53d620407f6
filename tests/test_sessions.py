"""Sessions end to end (issue 15), over HTTP through the real function binaries: refresh tokens
with rotation, the grace for honest races, logout of one session and of all, revocation, the
session list, ending a session, changing the password. Reuse after the grace, which needs time to
pass, is tested in-process with a moved clock (shared/tests/handlers/sessions.rs)."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

from conftest import STRONG_PASSWORD, assert_problem, invalid_fields, unique_username

INVALID = "Invalid or expired refresh token"


def login_pair(api, username: str, password: str = STRONG_PASSWORD, **kwargs) -> dict:
    response = api.post("/api/auth/login", json={"username": username, "password": password}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def new_user_pair(api) -> tuple[str, dict]:
    username = unique_username()
    assert api.register(username).status_code == 201
    return username, login_pair(api, username)


def refresh(api, token):
    return api.post("/api/auth/refresh", json={"refresh_token": token})


def claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def assert_invalid_refresh(response):
    body = assert_problem(response, 401)
    assert body["detail"] == INVALID
    assert response.headers["WWW-Authenticate"] == "Bearer"


def me_status(api, access_token: str) -> int:
    return api.get("/api/auth/me", token=access_token).status_code


def test_login_answers_a_refresh_token_and_refresh_rotates_it(api):
    _, pair = new_user_pair(api)
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"}
    assert pair["refresh_token"].startswith("fog_rt_") and len(pair["refresh_token"]) == 93
    assert (pair["token_type"], pair["expires_in"], pair["refresh_expires_in"]) == ("bearer", 1800, 7 * 24 * 3600)
    sid = claims(pair["access_token"])["sid"]

    response = refresh(api, pair["refresh_token"])
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert set(rotated) == set(pair)
    assert rotated["refresh_token"] != pair["refresh_token"]
    assert claims(rotated["access_token"])["sid"] == sid
    assert me_status(api, rotated["access_token"]) == 200
    again = refresh(api, rotated["refresh_token"])
    assert again.status_code == 200 and claims(again.json()["access_token"])["sid"] == sid


def test_refresh_statuses(api):
    username, pair = new_user_pair(api)
    assert invalid_fields(api.post("/api/auth/refresh", json={})) == {"refresh_token"}
    assert invalid_fields(api.post("/api/auth/refresh", json={"refresh_token": 5})) == {"refresh_token"}
    assert_problem(api.post("/api/auth/refresh", data="{", headers={"Content-Type": "application/json"}), 400)
    assert_problem(api.post("/api/auth/refresh", data=b'{"refresh_token": "x"}'), 415)
    for token in [pair["access_token"], "fog_rt_" + "A" * 86, "garbage", pair["refresh_token"][:-1]]:
        assert_invalid_refresh(refresh(api, token))
    # Disabled: 403 and the token stays current; enabled again, it refreshes.
    assert api.fogctl("deactivate", username).returncode == 0
    disabled = refresh(api, pair["refresh_token"])
    assert assert_problem(disabled, 403)["detail"] == "Account is disabled"
    assert api.fogctl("activate", username).returncode == 0
    assert refresh(api, pair["refresh_token"]).status_code == 200


def test_tokens_are_not_interchangeable(api):
    _, pair = new_user_pair(api)
    assert_problem(api.get("/api/auth/me", token=pair["refresh_token"]), 401)
    assert_invalid_refresh(refresh(api, pair["access_token"]))
    assert me_status(api, pair["access_token"]) == 200


def test_two_tabs_refreshing_at_once_get_the_same_pair(api):
    _, pair = new_user_pair(api)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: refresh(api, pair["refresh_token"]), range(20)))
    successes = [answer for answer in answers if answer.status_code == 200]
    assert successes, [answer.text for answer in answers]
    for answer in answers:
        if answer.status_code == 200:
            assert answer.json() == successes[0].json(), "the one new pair"
        else:
            assert_invalid_refresh(answer)
    winner = successes[0].json()
    assert me_status(api, winner["access_token"]) == 200
    listed = api.get("/api/auth/sessions", token=winner["access_token"]).json()["sessions"]
    assert len(listed) == 1, "one family"
    assert refresh(api, winner["refresh_token"]).status_code == 200


def test_logout_ends_its_session_and_logout_all_every_session(api):
    username, first = new_user_pair(api)
    second = login_pair(api, username)
    assert api.post("/api/auth/logout", token=first["access_token"]).status_code == 200
    assert me_status(api, first["access_token"]) == 401
    assert_invalid_refresh(refresh(api, first["refresh_token"]))
    assert me_status(api, second["access_token"]) == 200

    third = login_pair(api, username)
    assert_problem(api.post("/api/auth/logout?all=yes", token=third["access_token"]), 422)
    assert me_status(api, third["access_token"]) == 200
    everywhere = api.post("/api/auth/logout?all=true", token=third["access_token"])
    assert everywhere.status_code == 200 and everywhere.json()["success"] is True
    for pair in (second, third):
        assert me_status(api, pair["access_token"]) == 401
        assert_invalid_refresh(refresh(api, pair["refresh_token"]))
    assert me_status(api, login_pair(api, username)["access_token"]) == 200


def test_revoke_always_answers_200(api):
    _, pair = new_user_pair(api)
    for token in ["fog_rt_" + "A" * 86, "not-a-token", pair["access_token"]]:
        response = api.post("/api/auth/revoke", json={"refresh_token": token})
        assert response.status_code == 200 and response.json()["success"] is True
    assert me_status(api, pair["access_token"]) == 200
    assert invalid_fields(api.post("/api/auth/revoke", json={})) == {"refresh_token"}
    assert api.post("/api/auth/revoke", json={"refresh_token": pair["refresh_token"]}).status_code == 200
    assert me_status(api, pair["access_token"]) == 401
    assert_invalid_refresh(refresh(api, pair["refresh_token"]))


def test_sessions_are_listed_and_ended_by_their_user_alone(api):
    username = unique_username()
    assert api.register(username).status_code == 201
    first = login_pair(api, username, headers={"User-Agent": "fog-e2e/1 <b>"})
    second = login_pair(api, username)
    _, stranger = new_user_pair(api)

    listed = api.get("/api/auth/sessions", token=first["access_token"])
    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert [session["id"] for session in sessions] == [claims(second["access_token"])["sid"],
                                                       claims(first["access_token"])["sid"]]
    assert [session["current"] for session in sessions] == [False, True]
    assert set(sessions[0]) == {"id", "created_at", "last_used_at", "user_agent", "source_ip", "current"}
    assert sessions[1]["user_agent"] == "fog-e2e/1 &lt;b&gt;"
    assert sessions[1]["source_ip"] == "127.0.0.1"

    second_id = sessions[0]["id"]
    for token, session_id in [(stranger["access_token"], second_id), (first["access_token"], "no-such-session"),
                              (first["access_token"], "0190b1c5-0000-7000-8000-000000000000")]:
        assert_problem(api.delete(f"/api/auth/sessions/{session_id}", token=token), 404)
    assert me_status(api, second["access_token"]) == 200
    ended = api.delete(f"/api/auth/sessions/{second_id}", token=first["access_token"])
    assert ended.status_code == 200 and ended.json() == {"success": True, "id": second_id}
    assert me_status(api, second["access_token"]) == 401
    assert_invalid_refresh(refresh(api, second["refresh_token"]))
    assert_problem(api.delete(f"/api/auth/sessions/{second_id}", token=first["access_token"]), 404)
    assert len(api.get("/api/auth/sessions", token=first["access_token"]).json()["sessions"]) == 1


def test_changing_the_password_keeps_this_session_and_ends_the_others(api):
    username, current = new_user_pair(api)
    other = login_pair(api, username)
    new_password = "Quiet-Harbour-Lantern-7"
    path = "/api/auth/change-password"
    assert invalid_fields(api.post(path, token=current["access_token"], json={})) == {"old_password", "new_password"}
    weak = api.post(path, token=current["access_token"], json={"old_password": STRONG_PASSWORD, "new_password": "weak"})
    assert invalid_fields(weak) == {"new_password"}
    wrong = api.post(path, token=current["access_token"],
                     json={"old_password": "Wrong-Password-1", "new_password": new_password})
    assert assert_problem(wrong, 401)["detail"] == "Incorrect password"
    assert_problem(api.post(path, json={"old_password": STRONG_PASSWORD, "new_password": new_password}), 401)

    changed = api.post(path, token=current["access_token"],
                       json={"old_password": STRONG_PASSWORD, "new_password": new_password})
    assert changed.status_code == 200, changed.text
    assert me_status(api, current["access_token"]) == 200
    assert refresh(api, current["refresh_token"]).status_code == 200
    assert me_status(api, other["access_token"]) == 401
    assert_invalid_refresh(refresh(api, other["refresh_token"]))
    assert api.login(username).status_code == 401
    assert api.login(username, new_password).status_code == 200


def test_a_login_racing_a_password_change_never_outlives_it(api):
    """Second security review, item 1: a login on the old password in flight while the password
    changes. Whichever wins, no session of the old password survives the change: the login is
    refused, or its tokens die with every other session from before the change."""
    for _ in range(6):
        username, pair = new_user_pair(api)
        change = {"old_password": STRONG_PASSWORD, "new_password": "Fog-Compute-2025"}
        with ThreadPoolExecutor(max_workers=2) as pool:
            changed = pool.submit(
                api.post, "/api/auth/change-password", token=pair["access_token"], json=change)
            login = pool.submit(
                api.post, "/api/auth/login", json={"username": username, "password": STRONG_PASSWORD})
            changed, login = changed.result(), login.result()
        assert changed.status_code == 200, changed.text
        assert login.status_code in (200, 401), login.text
        if login.status_code == 200:
            raced = login.json()
            assert me_status(api, raced["access_token"]) == 401
            assert_invalid_refresh(refresh(api, raced["refresh_token"]))
        listed = api.get("/api/auth/sessions", token=pair["access_token"]).json()["sessions"]
        assert [session["current"] for session in listed] == [True]


def test_changing_the_password_may_revoke_every_api_key(api):
    """Second security review, item 6: keys outlive sessions, so a takeover's clean-up can end
    them with the password change, in its transaction."""
    _, pair = new_user_pair(api)
    token = pair["access_token"]
    secrets = [api.post("/api/keys", token=token, json={"name": name}).json()["secret_key"] for name in ("a", "b")]
    assert all(api.get("/api/auth/me", headers={"X-API-Key": secret}).status_code == 200 for secret in secrets)
    path = "/api/auth/change-password"
    changed = api.post(path, token=token, json={
        "old_password": STRONG_PASSWORD, "new_password": "Quiet-Harbour-Lantern-7", "revoke_api_keys": True,
    })
    assert changed.status_code == 200, changed.text
    assert changed.json()["message"].endswith("every API key is revoked")
    for secret in secrets:
        assert_problem(api.get("/api/auth/me", headers={"X-API-Key": secret}), 401)
    keys = api.get("/api/keys", token=token, params={"include_inactive": "true"}).json()["keys"]
    assert [key["is_active"] for key in keys] == [False, False]
    assert me_status(api, token) == 200, "this session goes on"
