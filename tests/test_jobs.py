"""The job endpoints end to end: submit, list, get, cancel."""

from concurrent.futures import ThreadPoolExecutor

from conftest import assert_problem, invalid_fields

JOBS = "/api/scheduler/jobs"


def job(**overrides) -> dict:
    return {"name": "render", "sla_tier": "gold", "cpu_required": 2, "memory_required": 4, **overrides}


def submit(api, token, **overrides):
    response = api.post(JOBS, token=token, json=job(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def test_submit_get_list_cancel(api):
    _, token = api.new_user()
    created = submit(api, token, name="  nightly <render> ", sla_tier="PLATINUM", gpu_required=1.5,
                     duration_estimate=90, data_size_mb=2048.5)
    assert created["success"] is True and created["status"] == "pending" and created["sla"] == "platinum"
    job_id = created["jobId"]

    fetched = api.get(f"{JOBS}/{job_id}", token=token)
    assert fetched.status_code == 200
    body = fetched.json()
    assert body["id"] == job_id and body["name"] == "nightly &lt;render&gt;"
    assert (body["cpu"], body["memory"], body["gpu"]) == (2, 4, 1.5)
    assert (body["duration_estimate"], body["data_size_mb"]) == (90, 2048.5)
    assert body["status"] == "pending" and body["sla"] == "platinum"

    listed = api.get(JOBS, token=token).json()
    assert [j["id"] for j in listed["jobs"]] == [job_id]
    assert listed["total"] == 1 and listed["next_cursor"] is None

    cancelled = api.delete(f"{JOBS}/{job_id}", token=token)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"success": True, "jobId": job_id, "status": "cancelled"}
    assert api.get(f"{JOBS}/{job_id}", token=token).json()["status"] == "cancelled"
    assert_problem(api.delete(f"{JOBS}/{job_id}", token=token), 409)


def test_job_bounds_just_inside_are_accepted(api):
    _, token = api.new_user()
    for overrides in [
        {"name": "x"}, {"name": "x" * 200}, {"name": "  " + "y" * 200 + "  "}, {"name": "<" * 200},
        {"sla_tier": "bronze"}, {"sla_tier": "Silver"},
        {"cpu_required": 0, "memory_required": 0, "gpu_required": 0},
        {"cpu_required": 64, "memory_required": 512, "gpu_required": 8},
        {"duration_estimate": 0, "data_size_mb": 0},
    ]:
        response = api.post(JOBS, token=token, json=job(**overrides))
        assert response.status_code == 201, (overrides, response.text)


def test_job_bounds_just_outside_are_refused(api):
    _, token = api.new_user()
    for overrides, field in [
        ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 201}, "name"),
        ({"name": 5}, "name"), ({"sla_tier": "diamond"}, "sla_tier"),
        ({"cpu_required": -0.001}, "cpu_required"), ({"cpu_required": 64.001}, "cpu_required"),
        ({"memory_required": 512.001}, "memory_required"), ({"memory_required": -1}, "memory_required"),
        ({"gpu_required": 8.5}, "gpu_required"), ({"gpu_required": -1}, "gpu_required"),
        ({"duration_estimate": -0.5}, "duration_estimate"), ({"data_size_mb": -1}, "data_size_mb"),
        ({"cpu_required": "2"}, "cpu_required"), ({"memory_required": None}, "memory_required"),
    ]:
        response = api.post(JOBS, token=token, json=job(**overrides))
        assert invalid_fields(response) == {field}, (overrides, response.text)
    json_header = {"Content-Type": "application/json"}
    beyond_f64 = '{"name": "x", "sla_tier": "gold", "cpu_required": 1e999, "memory_required": 1}'
    assert invalid_fields(api.post(JOBS, token=token, data=beyond_f64, headers=json_header)) == {"cpu_required"}
    not_json = '{"name": "x", "sla_tier": "gold", "cpu_required": NaN, "memory_required": 1}'
    assert_problem(api.post(JOBS, token=token, data=not_json, headers=json_header), 400)
    assert api.get(JOBS, token=token).json()["total"] == 0


def test_numbers_dynamodb_cannot_store_are_refused_not_a_server_error(api):
    """DynamoDB stores magnitudes from 1e-130 to just under 1e126 (and 0); a job holding another
    finite number used to fail at PutItem with a 500."""
    _, token = api.new_user()
    for overrides, field in [
        ({"duration_estimate": 1e126}, "duration_estimate"), ({"data_size_mb": 1.7976931348623157e308}, "data_size_mb"),
        ({"cpu_required": 5e-324}, "cpu_required"), ({"memory_required": 1e-131}, "memory_required"),
        ({"gpu_required": 2.2250738585072014e-308}, "gpu_required"),
    ]:
        response = api.post(JOBS, token=token, json=job(**overrides))
        assert invalid_fields(response) == {field}, (overrides, response.text)
    stored = submit(api, token, duration_estimate=1e125, data_size_mb=1e-130, cpu_required=1e-130)["job"]
    assert (stored["duration_estimate"], stored["data_size_mb"], stored["cpu"]) == (1e125, 1e-130, 1e-130)


def test_every_bad_job_field_is_listed(api):
    _, token = api.new_user()
    response = api.post(JOBS, token=token, json={"gpu_required": 99, "data_size_mb": "big"})
    assert invalid_fields(response) == {"name", "sla_tier", "cpu_required", "memory_required", "gpu_required", "data_size_mb"}


def test_another_users_job_is_not_found(api):
    _, owner = api.new_user()
    _, other = api.new_user()
    job_id = submit(api, owner)["jobId"]
    assert_problem(api.get(f"{JOBS}/{job_id}", token=other), 404)
    assert_problem(api.delete(f"{JOBS}/{job_id}", token=other), 404)
    assert api.get(JOBS, token=other).json()["jobs"] == []
    assert api.get(f"{JOBS}/{job_id}", token=owner).json()["status"] == "pending"
    assert_problem(api.get(f"{JOBS}/not-a-job", token=owner), 404)


def test_racing_cancels_give_one_200_and_one_409(api):
    _, token = api.new_user()
    job_ids = [submit(api, token)["jobId"] for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda job_id: api.delete(f"{JOBS}/{job_id}", token=token).status_code,
                                 [job_id for job_id in job_ids for _ in range(2)]))
    for first, second in zip(statuses[::2], statuses[1::2]):
        assert sorted([first, second]) == [200, 409], statuses


def test_pagination_walks_every_job_once_and_refuses_bad_cursors(api):
    _, token = api.new_user()
    job_ids = [submit(api, token, name=f"job {n}")["jobId"] for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(JOBS, token=token, params=params)
        assert page.status_code == 200, page.text
        seen += [j["id"] for j in page.json()["jobs"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == job_ids[::-1]
    assert_problem(api.get(JOBS, token=token, params={"cursor": "not a cursor"}), 400)
    assert invalid_fields(api.get(JOBS, token=token, params={"limit": 101})) == {"limit"}
    assert invalid_fields(api.get(JOBS, token=token, params={"limit": "0"})) == {"limit"}
    assert api.get(JOBS, token=token, params={"limit": 100}).status_code == 200


def test_jobs_need_a_token(api):
    for response in [api.get(JOBS), api.post(JOBS, json=job()), api.get(f"{JOBS}/x"), api.delete(f"{JOBS}/x")]:
        assert_problem(response, 401)


def test_a_misspelt_query_parameter_is_refused_not_ignored(api):
    """Issue 23, item 5: `?stauts=pending` answered every job, the typo silently ignored."""
    _, token = api.new_user()
    submit(api, token)
    typo = api.get("/api/scheduler/jobs?stauts=pending", token=token)
    body = assert_problem(typo, 422)
    assert body["errors"] == [{
        "field": "stauts",
        "message": "is not a query parameter of GET /api/scheduler/jobs; it takes status, limit, cursor",
    }]
    assert api.get("/api/scheduler/jobs?status=pending", token=token).json()["total"] == 1
    # Every operation, the routes that take no parameter included.
    for path in ("/health", "/", "/openapi.json", "/api/auth/me"):
        assert invalid_fields(api.get(f"{path}?v=2", token=token)) == {"v"}, path
