"""The token ledger end to end: balance, mint, transfer, stake, unstake, Idempotency-Key."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from conftest import assert_problem, invalid_fields

T = "/api/tokenomics"
MAX_TOKENS = "1000000000000"


def balance(api, token, address=None) -> dict:
    response = api.get(f"{T}/balance", token=token, params={"address": address} if address else None)
    assert response.status_code == 200, response.text
    return response.json()


def mint(api, admin, address, amount, **kwargs):
    response = api.post(f"{T}/mint", token=admin, json={"address": address, "amount": amount}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def funded_user(api, admin, amount="0"):
    """A new user's token and wallet address, with `amount` minted onto its balance."""
    _, token = api.new_user()
    address = api.wallet(token)
    if amount != "0":
        mint(api, admin, address, amount)
    return token, address


def transfer(api, token, from_address, to_address, amount, **kwargs):
    return api.post(f"{T}/transfer", token=token,
                    json={"from_address": from_address, "to_address": to_address, "amount": amount}, **kwargs)


def raw_post(api, path, token, text, **headers):
    return api.post(path, token=token, data=text, headers={"Content-Type": "application/json", **headers})


def test_a_new_wallet_is_empty_and_only_its_owner_sees_it(api):
    token, address = funded_user(api, None)
    assert balance(api, token) == {"address": address, "balance": "0", "staked": "0", "locked": "0", "total": "0"}
    assert balance(api, token, address.upper().replace("0X", "0x"))["address"] == address
    other, other_address = funded_user(api, None)
    assert_problem(api.get(f"{T}/balance", token=other, params={"address": address}), 403)
    assert_problem(api.get(f"{T}/balance", token=token, params={"address": "0x" + "0" * 64}), 403)
    assert invalid_fields(api.get(f"{T}/balance", token=token, params={"address": "0x123"})) == {"address"}
    assert_problem(api.get(f"{T}/balance"), 401)


def test_mint_is_for_administrators_and_needs_an_existing_wallet(api, admin):
    token, address = funded_user(api, admin)
    assert_problem(api.post(f"{T}/mint", token=token, json={"address": address, "amount": "5"}), 403)
    minted = mint(api, admin, address, "5.25")
    assert minted["success"] is True and minted["address"] == address
    assert minted["amount"] == "5.25" and minted["balance"] == "5.25"
    uuid.UUID(minted["transactionId"])
    assert balance(api, token)["balance"] == "5.25"
    assert_problem(api.post(f"{T}/mint", token=admin, json={"address": "0x" + "ab" * 32, "amount": "1"}), 404)
    assert invalid_fields(api.post(f"{T}/mint", token=admin, json={"address": "nope", "amount": "0"})) == {"address", "amount"}


def test_transfer_moves_exactly_and_answers_the_senders_balance(api, admin):
    sender, sender_address = funded_user(api, admin, "10")
    receiver, receiver_address = funded_user(api, admin)
    response = transfer(api, sender, sender_address, receiver_address.upper().replace("0X", "0x"), "2.5")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["amount"] == "2.5" and body["balance"] == "7.5"
    assert (body["from_address"], body["to_address"]) == (sender_address, receiver_address)
    uuid.UUID(body["transactionId"])
    assert balance(api, receiver) == {"address": receiver_address, "balance": "2.5", "staked": "0", "locked": "0", "total": "2.5"}


def test_transfer_rules(api, admin):
    sender, sender_address = funded_user(api, admin, "1")
    other, other_address = funded_user(api, admin, "1")
    assert_problem(transfer(api, sender, other_address, sender_address, "1"), 403)
    assert_problem(transfer(api, sender, sender_address, "0x" + "cd" * 32, "1"), 404)
    assert invalid_fields(transfer(api, sender, sender_address, sender_address.upper().replace("0X", "0x"), "1")) == {"to_address"}
    assert_problem(transfer(api, sender, sender_address, other_address, "1.000000000000000001"), 409)
    assert invalid_fields(api.post(f"{T}/transfer", token=sender, json={})) == {"from_address", "to_address", "amount"}
    assert balance(api, sender)["balance"] == "1" and balance(api, other)["balance"] == "1"


def test_exact_decimal_amounts(api, admin):
    sender, sender_address = funded_user(api, admin, "1")
    receiver, receiver_address = funded_user(api, admin)
    assert transfer(api, sender, sender_address, receiver_address, "0.1").status_code == 200
    # A JSON number is read from its digits, never through a float.
    body = f'{{"from_address": "{sender_address}", "to_address": "{receiver_address}", "amount": 0.2}}'
    assert raw_post(api, f"{T}/transfer", sender, body).status_code == 200
    assert balance(api, receiver)["balance"] == "0.3"
    assert transfer(api, sender, sender_address, receiver_address, "0.000000000000000001").json()["balance"] == "0.699999999999999999"
    assert balance(api, receiver)["balance"] == "0.300000000000000001"


def test_refused_amounts_move_nothing(api, admin):
    sender, sender_address = funded_user(api, admin, "5")
    _, receiver_address = funded_user(api, admin)
    for amount in ["0", "0.0", "-1", "1e5", "1E-18", "NaN", "Infinity", "abc", "", " 1", "1.", ".5", "0x10",
                   "0.0000000000000000001", "1000000000000.000000000000000001", "1" + "0" * 40,
                   0, -1, True, None, [], {"value": 1}]:
        response = transfer(api, sender, sender_address, receiver_address, amount)
        assert invalid_fields(response) == {"amount"}, (amount, response.text)
    for literal in ["1e5", "-0.5", "0.0000000000000000001", "1" + "0" * 40, "0"]:
        body = f'{{"from_address": "{sender_address}", "to_address": "{receiver_address}", "amount": {literal}}}'
        assert invalid_fields(raw_post(api, f"{T}/transfer", sender, body)) == {"amount"}, literal
    assert balance(api, sender)["balance"] == "5"


def test_twenty_concurrent_transfers_from_a_wallet_that_affords_ten(api, admin):
    sender, sender_address = funded_user(api, admin, "10.5")
    receivers = [funded_user(api, admin, "1") for _ in range(4)]
    minted = Decimal("10.5") + 4
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(
            lambda i: transfer(api, sender, sender_address, receivers[i % 4][1], "1"), range(20)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 10 + [409] * 10, [response.text for response in responses]
    for refused in responses:
        if refused.status_code == 409:
            assert_problem(refused, 409)
    assert balance(api, sender)["balance"] == "0.5"
    wallets = [balance(api, sender)] + [balance(api, token) for token, _ in receivers]
    assert sum(Decimal(w["balance"]) + Decimal(w["staked"]) for w in wallets) == minted
    assert sum(Decimal(balance(api, token)["balance"]) for token, _ in receivers) == 14


def test_an_idempotent_retry_moves_funds_once(api, admin):
    sender, sender_address = funded_user(api, admin, "3")
    receiver, receiver_address = funded_user(api, admin)
    key = {"Idempotency-Key": f"transfer-{uuid.uuid4()}"}
    first = transfer(api, sender, sender_address, receiver_address, "1", headers=key)
    assert first.status_code == 200, first.text
    retried = transfer(api, sender, sender_address, receiver_address, "1.0", headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.json() == first.json()
    assert balance(api, sender)["balance"] == "2" and balance(api, receiver)["balance"] == "1"

    different = transfer(api, sender, sender_address, receiver_address, "2", headers=key)
    assert invalid_fields(different) == {"Idempotency-Key"}
    assert balance(api, sender)["balance"] == "2"

    # Keys are per user: another user's identical key is a new request.
    other, other_address = funded_user(api, admin, "1")
    assert transfer(api, other, other_address, receiver_address, "1", headers=key).status_code == 200
    assert balance(api, receiver)["balance"] == "2"

    assert invalid_fields(transfer(api, sender, sender_address, receiver_address, "1",
                                   headers={"Idempotency-Key": "k" * 256})) == {"Idempotency-Key"}


def test_concurrent_retries_with_one_key_move_funds_once(api, admin):
    sender, sender_address = funded_user(api, admin, "5")
    receiver, receiver_address = funded_user(api, admin)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(
            lambda _: transfer(api, sender, sender_address, receiver_address, "1", headers=key), range(6)))
    assert {response.status_code for response in responses} == {200}, [r.text for r in responses]
    assert len({response.json()["transactionId"] for response in responses}) == 1
    assert balance(api, receiver)["balance"] == "1"


def test_stake_then_unstake_restores_the_balance_exactly(api, admin):
    token, address = funded_user(api, admin, "5")
    staked = api.post(f"{T}/stake", token=token, json={"address": address, "amount": "1.000000000000000001"})
    assert staked.status_code == 200, staked.text
    assert staked.json() == {"success": True, "address": address, "stakedAmount": "1.000000000000000001",
                             "totalStaked": "1.000000000000000001"}
    assert balance(api, token) == {"address": address, "balance": "3.999999999999999999",
                                   "staked": "1.000000000000000001", "locked": "0", "total": "5"}
    assert_problem(api.post(f"{T}/unstake", token=token, json={"address": address, "amount": "1.000000000000000002"}), 409)
    assert_problem(api.post(f"{T}/stake", token=token, json={"address": address, "amount": "4"}), 409)
    unstaked = api.post(f"{T}/unstake", token=token, json={"address": address, "amount": "1.000000000000000001"})
    assert unstaked.status_code == 200, unstaked.text
    assert unstaked.json() == {"success": True, "address": address, "unstakedAmount": "1.000000000000000001",
                               "totalStaked": "0"}
    assert balance(api, token) == {"address": address, "balance": "5", "staked": "0", "locked": "0", "total": "5"}


def test_stake_and_unstake_only_your_own_wallet_and_retry_idempotently(api, admin):
    owner, address = funded_user(api, admin, "2")
    other, _ = funded_user(api, admin, "2")
    for path in ["stake", "unstake"]:
        assert_problem(api.post(f"{T}/{path}", token=other, json={"address": address, "amount": "1"}), 403)
        assert invalid_fields(api.post(f"{T}/{path}", token=owner, json={"address": address, "amount": "-1"})) == {"amount"}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(3):
        response = api.post(f"{T}/stake", token=owner, json={"address": address, "amount": "1"}, headers=key)
        assert response.status_code == 200 and response.json()["totalStaked"] == "1"
    # The same key on another operation is a different request.
    assert invalid_fields(api.post(f"{T}/unstake", token=owner, json={"address": address, "amount": "1"},
                                   headers=key)) == {"Idempotency-Key"}
    assert balance(api, owner) == {"address": address, "balance": "1", "staked": "1", "locked": "0", "total": "2"}


def test_a_mint_retried_with_its_key_credits_once(api, admin):
    token, address = funded_user(api, admin)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = mint(api, admin, address, "7", headers=key)
    again = mint(api, admin, address, "7", headers=key)
    assert again["transactionId"] == first["transactionId"]
    assert balance(api, token)["balance"] == "7"


def test_no_wallet_holds_more_than_the_maximum(api, admin):
    token, address = funded_user(api, admin, MAX_TOKENS)
    assert_problem(api.post(f"{T}/mint", token=admin, json={"address": address, "amount": "0.000000000000000001"}), 409)
    other, other_address = funded_user(api, admin, "1")
    assert_problem(transfer(api, other, other_address, address, "1"), 409)
    assert balance(api, other)["balance"] == "1"
    assert balance(api, token)["balance"] == MAX_TOKENS
