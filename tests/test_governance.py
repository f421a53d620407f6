"""DAO proposals and votes end to end."""

import uuid

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
    assert proposal["createdAt"]


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
