"""Account recovery by email (issue 25) end to end: the functions behind the local router, their
SES client pointed at the local server, which keeps what it is sent; the mail is read back from
its `/moto-api/data.json` (local_stack.DynamoDb.sent_mail), never from a fake.

The old backend's `backend/tests/security/test_password_reset.py` scenarios, run against this API
(docs/old-backend.md lists where they differ), then what the issue adds."""

from __future__ import annotations

import re
import statistics
import time

import pytest

from conftest import STRONG_PASSWORD, assert_problem, unique_username

NEW_PASSWORD = "Quiet-Harbour-Lantern-7"
GENERIC = {"message": "If an account exists with that email, a password reset link has been sent."}


def mails_to(api, address: str, subject: str) -> list[dict]:
    return [
        message for message in api.dynamodb.sent_mail()
        if address in message["destinations"]["ToAddresses"] and subject in message["subject"]
    ]


def token_of(message: dict, page: str) -> str:
    found = re.search(rf"/{page}\?token=([A-Za-z0-9_-]+)", str(message["body"]))
    assert found, message
    return found.group(1)


def reset_tokens(api, address: str) -> list[str]:
    return [token_of(message, "reset-password") for message in mails_to(api, address, "Reset")]


@pytest.fixture
def user(api) -> dict:
    username = unique_username()
    registered = api.register(username)
    assert registered.status_code == 201, registered.text
    login = api.login(username).json()
    return {"username": username, "email": f"{username}@example.com", **login}


def request_reset(api, email: str):
    return api.post("/api/auth/password-reset/request", json={"email": email})


def confirm(api, token: str, password: str = NEW_PASSWORD):
    return api.post("/api/auth/password-reset/confirm", json={"token": token, "new_password": password})


def mailed_token(api, user: dict) -> str:
    assert request_reset(api, user["email"]).json() == GENERIC
    return reset_tokens(api, user["email"])[-1]


# The old backend's scenarios.

def test_a_request_for_a_known_address_mails_a_link(api, user):
    response = request_reset(api, user["email"])
    assert response.status_code == 200 and response.json() == GENERIC
    (message,) = mails_to(api, user["email"], "Reset")
    assert message["source"] == api.env["MAIL_FROM"]
    assert f"{api.env['APP_BASE_URL']}/reset-password?token=" in str(message["body"])
    assert len(token_of(message, "reset-password")) == 43


def test_an_unknown_address_gets_the_same_bytes_and_no_mail(api, user):
    known = request_reset(api, user["email"])
    unknown = request_reset(api, f"nobody-{user['email']}")
    assert (unknown.status_code, unknown.content) == (known.status_code, known.content)
    assert not mails_to(api, f"nobody-{user['email']}", "")


def test_a_malformed_address_is_422(api):
    assert_problem(request_reset(api, "not-an-email"), 422)


def test_a_mailed_token_sets_the_new_password(api, user):
    response = confirm(api, mailed_token(api, user))
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Your password has been reset successfully."}
    assert api.login(user["username"], NEW_PASSWORD).status_code == 200
    assert api.login(user["username"], STRONG_PASSWORD).status_code == 401


@pytest.mark.parametrize("token", ["invalid_token_123", "", "A" * 43])
def test_a_wrong_token_is_400(api, token):
    body = assert_problem(confirm(api, token), 400)
    assert body["detail"] == "Invalid or expired reset token"


def test_an_access_token_is_no_reset_token(api, user):
    assert_problem(confirm(api, user["access_token"]), 400)


def test_weak_passwords_are_422_and_the_token_stays_usable(api, user):
    token = mailed_token(api, user)
    for weak in ["short", "alllowercase", "ALLUPPERCASE", "12345678", "NoDigits!"]:
        body = assert_problem(confirm(api, token, weak), 422)
        assert [error["field"] for error in body["errors"]] == ["new_password"], weak
    assert confirm(api, token).status_code == 200


def test_a_token_works_once(api, user):
    token = mailed_token(api, user)
    assert confirm(api, token).status_code == 200
    assert_problem(confirm(api, token, "Another-Fine-Password-8"), 400)


def test_the_address_is_matched_in_any_case(api, user):
    assert request_reset(api, user["email"].upper()).json() == GENERIC
    assert len(reset_tokens(api, user["email"])) == 1


def test_three_mails_an_hour_per_address_and_the_same_answer_beyond(api, user):
    answers = [request_reset(api, user["email"]) for _ in range(6)]
    assert {(answer.status_code, answer.content) for answer in answers} == {(200, answers[0].content)}
    assert len(reset_tokens(api, user["email"])) == 3


# Beyond the old backend.

def test_a_reset_ends_every_session_and_clears_the_lockout(api, user):
    token = mailed_token(api, user)
    for _ in range(5):
        api.login(user["username"], "Wrong-Password-1")
    assert api.login(user["username"]).status_code == 423
    assert confirm(api, token).status_code == 200
    assert api.get("/api/auth/me", token=user["access_token"]).status_code == 401
    refreshed = api.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert refreshed.status_code == 401
    assert api.login(user["username"], NEW_PASSWORD).status_code == 200


def test_a_reset_kills_the_other_reset_links(api, user):
    first = mailed_token(api, user)
    second = mailed_token(api, user)
    assert confirm(api, second).status_code == 200
    assert_problem(confirm(api, first, "Another-Fine-Password-8"), 400)


def test_a_known_and_an_unknown_address_take_about_as_long(api, user):
    def seconds(email: str) -> float:
        started = time.perf_counter()
        assert request_reset(api, email).status_code == 200
        return time.perf_counter() - started

    known = statistics.median(seconds(user["email"]) for _ in range(3))
    unknown = statistics.median(seconds(f"nobody-{user['email']}") for _ in range(3))
    assert known >= 0.6 and unknown >= 0.6
    assert abs(known - unknown) < 0.3, (known, unknown)


def test_registration_mails_a_verification_link_that_verifies_the_address(api, user):
    me = api.get("/api/auth/me", token=user["access_token"]).json()
    assert me["email_verified"] is False
    (message,) = mails_to(api, user["email"], "Verify")
    token = token_of(message, "verify-email")
    verified = api.post("/api/auth/verify-email", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True
    assert api.get("/api/auth/me", token=user["access_token"]).json()["email_verified"] is True
    assert_problem(api.post("/api/auth/verify-email", json={"token": token}), 400)


def test_a_resend_mails_a_new_link_three_times_an_hour(api, user):
    for _ in range(3):
        assert api.post("/api/auth/verify-email/resend", token=user["access_token"]).status_code == 202
    capped = api.post("/api/auth/verify-email/resend", token=user["access_token"])
    assert_problem(capped, 429)
    assert int(capped.headers["Retry-After"]) > 0
    assert len(mails_to(api, user["email"], "Verify")) == 4
