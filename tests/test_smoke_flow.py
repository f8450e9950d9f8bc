"""The README's walk-through, end to end: register, log in, read @me, create a bot, call as the bot."""

from tests.conftest import PASSWORD


def test_readme_walkthrough(client, register):
    person = register(email="River@Example.com")
    login = client.post("/v1/auth/login", json={"email": "river@example.com", "password": PASSWORD},
                        headers={"X-Forwarded-For": person.ip})
    assert login.status_code == 200
    token = login.json()["token"]
    assert token.startswith("flx_") and token != person.token

    me = client.get("/v1/users/@me", headers={"Authorization": token})
    assert me.status_code == 200
    assert me.json()["email"] == "river@example.com"  # stored lower-case

    created = client.post("/v1/oauth2/applications", json={"name": "Weather Bot"}, headers={"Authorization": token})
    assert created.status_code == 200
    bot_token = created.json()["bot"]["token"]

    as_bot = client.get("/v1/users/@me", headers={"Authorization": f"Bot {bot_token}"})
    assert as_bot.status_code == 200
    assert as_bot.json()["bot"] is True
    assert as_bot.json()["id"] == created.json()["bot"]["id"]
