from tests.conftest import API_KEY, FAST, FULL_SHA, cloud_build_env


def test_cloud_build_branch_build_delivers_commit(cli, receiver, app):
    env = cloud_build_env(BUGSTER_API_KEY=API_KEY)
    run = cli(
        "notify",
        "--project-id=proj-1",
        "--organization-id=org_abc",
        f"--environment-url={app.url}",
        f"--api-url={receiver.url}",
        *FAST,
        env=env,
    )
    assert run.code == 0, run.err
    [request] = receiver.accepted
    assert request.json["commit_sha"] == FULL_SHA
    assert "branch" not in request.json
    assert API_KEY not in run.output
