"""DAO proposals and votes end to end."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from conftest import assert_problem, invalid_fields

T = "/api/tokenomics"
TITLE = "Lower the fees"
DESCRIPTION = "Halve the platform fee for jobs on the bronze tier, for a trial quarter."


def staker(api, admin, amount):
    """A new user's token and address, with `amount` tokens minted and staked."""
    _, token = api.new_user()
    address = api.wallet(token)
    if amount != "0":
        assert api.post(f"{T}/mint", token=admin, json={"address": address, "amount": amount}).status_code == 200
        assert api.post(f"{T}/stake", token=token, json={"address": address, "amount": amount}).status_code == 200
    return token, address


def propose(api, token, address, title=TITLE, description=DESCRIPTION):
    response = api.post(f"{T}/proposals", token=token,
                        json={"title": title, "description": description, "proposer": address})
    assert response.status_code == 201, response.text
    return response.json()["proposalId"]


def walk(api, token, limit):
    seen, cursor = [], None
    while True:
        page = api.get(f"{T}/proposals", token=token, params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        assert len(page.json()["proposals"]) <= limit
        seen += page.json()["proposals"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


def listed(api, token, proposal_id):
    return next(p for p in walk(api, token, 100) if p["id"] == proposal_id)


def test_create_and_list_a_proposal(api):
    _, token = api.new_user()
    address = api.wallet(token)
    response = api.post(f"{T}/proposals", token=token, json={
        "title": "  <b>Fees</b> & more  ", "description": f" {DESCRIPTION} <script>x</script> ",
        "proposer": address.upper().replace("0X", "0x"), "status": "passed", "votesFor": "999"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    proposal = listed(api, token, body["proposalId"])
    assert proposal["title"] == "&lt;b&gt;Fees&lt;/b&gt; &amp; more"
    assert proposal["description"] == f"{DESCRIPTION} &lt;script&gt;x&lt;/script&gt;"
    assert proposal["proposer"] == address and proposal["status"] == "active"
    assert (proposal["votesFor"], proposal["votesAgainst"]) == ("0", "0")
    period = datetime.fromisoformat(proposal["voting_ends_at"]) - datetime.fromisoformat(proposal["createdAt"])
    assert abs(period - timedelta(hours=168)) < timedelta(seconds=1), proposal


def test_proposal_bounds(api):
    _, token = api.new_user()
    address = api.wallet(token)
    for title, description in [("t" * 10, "d" * 50), ("t" * 200, "d" * 5000), (" " + "t" * 10 + " ", "d" * 50)]:
        propose(api, token, address, title, description)
    for title, description, bad in [
        ("t" * 9, "d" * 50, {"title"}), ("  " + "t" * 9 + "  ", "d" * 50, {"title"}), ("t" * 201, "d" * 50, {"title"}),
        ("t" * 10, "d" * 49, {"description"}), ("t" * 10, "d" * 5001, {"description"}),
        (None, 5, {"title", "description"}),
    ]:
        response = api.post(f"{T}/proposals", token=token, json={"title": title, "description": description, "proposer": address})
        assert invalid_fields(response) == bad, (title, description)
    assert invalid_fields(api.post(f"{T}/proposals", token=token, json={})) == {"title", "description", "proposer"}
    _, other = api.new_user()
    assert_problem(api.post(f"{T}/proposals", token=other, json={"title": TITLE, "description": DESCRIPTION, "proposer": address}), 403)


def test_votes_are_weighted_by_stake_and_counted_once(api, admin):
    proposer, proposer_address = staker(api, admin, "0")
    proposal_id = propose(api, proposer, proposer_address)
    yes, yes_address = staker(api, admin, "2.500000000000000001")
    no, no_address = staker(api, admin, "1")

    voted = api.post(f"{T}/vote", token=yes, json={"proposal_id": proposal_id, "voter": yes_address, "vote": True})
    assert voted.status_code == 200, voted.text
    assert voted.json() == {"success": True, "proposalId": proposal_id, "vote": "for", "weight": "2.500000000000000001"}
    against = api.post(f"{T}/vote", token=no, json={"proposal_id": proposal_id, "voter": no_address, "vote": False})
    assert against.json()["vote"] == "against"

    for choice in (True, False):
        again = api.post(f"{T}/vote", token=yes, json={"proposal_id": proposal_id, "voter": yes_address, "vote": choice})
        assert_problem(again, 409)
    proposal = listed(api, proposer, proposal_id)
    assert (proposal["votesFor"], proposal["votesAgainst"]) == ("2.500000000000000001", "1")


def test_vote_rules(api, admin):
    proposer, proposer_address = staker(api, admin, "0")
    proposal_id = propose(api, proposer, proposer_address)
    voter, voter_address = staker(api, admin, "1")
    vote = lambda token, **body: api.post(f"{T}/vote", token=token,
                                          json={"proposal_id": proposal_id, "voter": voter_address, "vote": True, **body})
    nothing_staked = vote(proposer, voter=proposer_address)
    assert invalid_fields(nothing_staked) == {"voter"}
    assert_problem(vote(proposer), 403)
    assert_problem(vote(voter, proposal_id=str(uuid.uuid4())), 404)
    assert invalid_fields(vote(voter, proposal_id="not-an-id", vote="yes")) == {"proposal_id", "vote"}
    assert invalid_fields(api.post(f"{T}/vote", token=voter, json={})) == {"proposal_id", "voter", "vote"}
    assert vote(voter).status_code == 200
    assert listed(api, proposer, proposal_id)["votesFor"] == "1"


def test_pagination_walks_every_proposal_once_newest_first(api):
    _, token = api.new_user()
    address = api.wallet(token)
    mine = [propose(api, token, address, title=f"Proposal number {n}") for n in range(5)]
    everything = [p["id"] for p in walk(api, token, 100)]
    for limit in (1, 2, 3):
        ids = [p["id"] for p in walk(api, token, limit)]
        assert ids == everything
    assert len(set(everything)) == len(everything)
    assert [i for i in everything if i in mine] == mine[::-1]
    assert_problem(api.get(f"{T}/proposals", token=token, params={"cursor": "%%%"}), 400)
    assert invalid_fields(api.get(f"{T}/proposals", token=token, params={"limit": "101"})) == {"limit"}
    assert_problem(api.get(f"{T}/proposals"), 401)


def balance(api, token):
    response = api.get(f"{T}/balance", token=token)
    assert response.status_code == 200, response.text
    return response.json()


def unstake(api, token, address, amount):
    return api.post(f"{T}/unstake", token=token, json={"address": address, "amount": amount})


def vote(api, token, address, proposal_id):
    return api.post(f"{T}/vote", token=token, json={"proposal_id": proposal_id, "voter": address, "vote": True})


def test_the_same_stake_cannot_vote_twice_on_a_proposal(api, admin):
    """Issue 12: A stakes 100 and votes; A unstakes, sends the tokens to B; B stakes and votes."""
    a, a_address = staker(api, admin, "100")
    b, b_address = staker(api, admin, "0")
    proposal_id = propose(api, a, a_address)
    assert vote(api, a, a_address, proposal_id).status_code == 200
    assert balance(api, a) == {"address": a_address, "balance": "0", "staked": "100", "locked": "100", "total": "100"}

    refused = assert_problem(unstake(api, a, a_address, "100"), 409)
    voting_ends_at = listed(api, a, proposal_id)["voting_ends_at"]
    assert "100 " in refused["detail"] and "locked" in refused["detail"], refused
    assert voting_ends_at in refused["detail"], refused
    assert_problem(api.post(f"{T}/transfer", token=a, json={"from_address": a_address, "to_address": b_address, "amount": "100"}), 409)
    assert_problem(api.post(f"{T}/stake", token=b, json={"address": b_address, "amount": "100"}), 409)
    assert invalid_fields(vote(api, b, b_address, proposal_id)) == {"voter"}
    assert listed(api, a, proposal_id)["votesFor"] == "100"
    assert balance(api, a)["staked"] == "100"


def test_a_vote_and_an_unstake_at_once_never_both_succeed(api, admin):
    proposer, proposer_address = staker(api, admin, "0")
    proposal_id = propose(api, proposer, proposer_address)
    votes_won = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(10):
            token, address = staker(api, admin, "10")
            voted, unstaked = pool.map(lambda send: send(), [
                lambda: vote(api, token, address, proposal_id),
                lambda: unstake(api, token, address, "10"),
            ])
            outcome = (voted.status_code, unstaked.status_code)
            assert outcome in {(200, 409), (409, 200), (422, 200)}, (round_, voted.text, unstaked.text)
            figures = balance(api, token)
            if voted.status_code == 200:
                votes_won += 1
                assert (figures["staked"], figures["locked"]) == ("10", "10"), round_
            else:
                assert (figures["staked"], figures["locked"], figures["balance"]) == ("0", "0", "10"), round_
    assert listed(api, proposer, proposal_id)["votesFor"] == str(10 * votes_won)


def end_voting_now(api, proposal_id, *wallets):
    """What the passing of the voting period does, without waiting for it: the proposal's voting
    end and the wallets' locks on it are moved to a second ago (the functions' clock cannot be
    moved; shared/tests/handlers/governance.rs moves it in-process)."""
    client = api.dynamodb.client()
    past = {"N": str(int(time.time()) - 1)}
    client.update_item(TableName=api.table, Key={"PK": {"S": f"PROPOSAL#{proposal_id}"}, "SK": {"S": "PROPOSAL"}},
                       UpdateExpression="SET voting_ends_at = :past", ExpressionAttributeValues={":past": past})
    for wallet in wallets:
        client.update_item(TableName=api.table, Key={"PK": {"S": f"WALLET#{wallet}"}, "SK": {"S": "WALLET"}},
                           UpdateExpression="SET #locks.#proposal.#until = :past",
                           ExpressionAttributeNames={"#locks": "locks", "#proposal": proposal_id, "#until": "until"},
                           ExpressionAttributeValues={":past": past})


def test_the_stake_unlocks_and_votes_close_when_voting_ends(api, admin):
    token, address = staker(api, admin, "100")
    late, late_address = staker(api, admin, "5")
    proposal_id = propose(api, token, address)
    assert vote(api, token, address, proposal_id).status_code == 200
    assert_problem(unstake(api, token, address, "1"), 409)

    end_voting_now(api, proposal_id, address)
    assert listed(api, token, proposal_id)["status"] == "closed"
    assert balance(api, token)["locked"] == "0"
    closed = assert_problem(vote(api, late, late_address, proposal_id), 409)
    assert "closed" in closed["detail"], closed
    unstaked = unstake(api, token, address, "100")
    assert unstaked.status_code == 200, unstaked.text
    assert unstaked.json()["totalStaked"] == "0"
    proposal = listed(api, token, proposal_id)
    assert (proposal["votesFor"], proposal["votesAgainst"]) == ("100", "0")
    assert balance(api, late) == {"address": late_address, "balance": "0", "staked": "5", "locked": "0", "total": "5"}


def test_the_voting_period_is_a_whole_number_of_hours_from_1_to_720(api):
    _, token = api.new_user()
    address = api.wallet(token)
    body = {"title": TITLE, "description": DESCRIPTION, "proposer": address}
    for hours in (1, 720):
        response = api.post(f"{T}/proposals", token=token, json={**body, "voting_period_hours": hours})
        assert response.status_code == 201, response.text
        proposal = listed(api, token, response.json()["proposalId"])
        period = datetime.fromisoformat(proposal["voting_ends_at"]) - datetime.fromisoformat(proposal["createdAt"])
        assert abs(period - timedelta(hours=hours)) < timedelta(seconds=1), (hours, proposal)
        assert proposal["status"] == "active"
    for bad in (0, 721, "x", 1.5, -1, True, "24"):
        response = api.post(f"{T}/proposals", token=token, json={**body, "voting_period_hours": bad})
        assert invalid_fields(response) == {"voting_period_hours"}, bad
    assert sum(p["proposer"] == address for p in walk(api, token, 100)) == 2
