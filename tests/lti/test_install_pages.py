"""What admins paste into Canvas and Moodle."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from tests.test_cli import dev_env, run


def test_canvas_developer_key_json(client: FlaskClient) -> None:
    config = client.get("/lti/canvas.json", base_url="https://preceptor.example.edu").get_json()
    assert config["oidc_initiation_url"] == "https://preceptor.example.edu/lti/login"
    assert config["target_link_uri"] == "https://preceptor.example.edu/lti/launch"
    assert config["public_jwk_url"] == "https://preceptor.example.edu/.well-known/jwks.json"
    assert (
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
        in config["scopes"]
    )
    (extension,) = config["extensions"]
    assert extension["privacy_level"] == "public"
    placements = {p["placement"]: p["message_type"] for p in extension["settings"]["placements"]}
    assert placements == {
        "course_navigation": "LtiResourceLinkRequest",
        "link_selection": "LtiDeepLinkingRequest",
    }


def test_moodle_values_page(client: FlaskClient) -> None:
    page = client.get("/lti/moodle", base_url="https://preceptor.example.edu")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<caption>Values for Moodle's tool settings</caption>" in html.replace("&#39;", "'")
    for value in (
        "https://preceptor.example.edu/lti/launch",
        "https://preceptor.example.edu/lti/login",
        "https://preceptor.example.edu/.well-known/jwks.json",
        "Keyset URL",
    ):
        assert value in html


def test_invite_command_prints_a_registration_url(tmp_path: Path) -> None:
    result = run(
        "platform",
        "invite",
        "--note",
        "Moodle staging",
        env=dev_env(tmp_path, PRECEPTOR_BASE_URL="https://preceptor.example.edu"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://preceptor.example.edu/lti/register/")
