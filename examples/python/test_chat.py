"""The twilio client (Python) against chatstore-server: Services, Channels
and Messages through every operation, paging both ways, errors, and whole
responses compared with golden files. Every test starts from the example
fixture (../fixture.json) with the clock at 2020-01-01T00:00:00Z, stepping
one second per change, so SIDs and dates are the same in every run."""

import json
from datetime import datetime, timezone

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException


def fixture_service(client):
    """The fixture's first service ("support")."""
    return client.chat.v2.services.list()[0]


def test_starts_from_the_fixture(client, chatstore):
    stats = chatstore.stats()
    assert (stats["services"], stats["channels"], stats["messages"], stats["media"]) == (2, 2, 6, 2)
    assert stats["seed"] == "42"
    assert stats["clock"] == {"now": "2020-01-01T00:00:00Z", "step_seconds": 1, "fixed": True}
    names = [s.friendly_name for s in client.chat.v2.services.list()]
    assert names == ["support", "empty service"]


def test_services(client, golden):
    services = client.chat.v2.services
    svc = services.create(friendly_name="python")
    assert svc.sid.startswith("IS") and svc.friendly_name == "python"
    assert svc.date_created == datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert services(svc.sid).fetch().sid == svc.sid
    renamed = services(svc.sid).update(friendly_name="python, renamed")
    assert renamed.friendly_name == "python, renamed"
    # one step per change: the create at 00:00:00, the update at 00:00:01
    assert renamed.date_updated == datetime(2020, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    assert [s.friendly_name for s in services.list(page_size=2)] == \
        ["support", "empty service", "python, renamed"]
    assert services(svc.sid).delete() is True
    with pytest.raises(TwilioRestException) as e:
        services(svc.sid).fetch()
    assert (e.value.status, e.value.code) == (404, 20404)
    golden("services")


def test_channels(client, golden):
    svc = fixture_service(client)
    channels = client.chat.v2.services(svc.sid).channels
    room = channels.create(unique_name="room", friendly_name="Room",
                           attributes=json.dumps({"topic": "tests"}), created_by="py")
    channels.create(unique_name="vault", type="private")
    assert room.type == "public" and room.created_by == "py"
    assert channels("room").fetch().sid == room.sid
    updated = channels("room").update(friendly_name="The room")
    assert updated.friendly_name == "The room" and updated.sid == room.sid
    # without a type: public channels only; both types on request
    assert [c.unique_name for c in channels.list()] == ["general", "room"]
    assert [c.unique_name for c in channels.list(type=["public", "private"], page_size=1)] == \
        ["general", "escalations", "room", "vault"]
    assert channels("vault").delete() is True
    golden("channels")


def test_messages_create_fetch_update_delete(client, golden):
    svc = fixture_service(client)
    messages = client.chat.v2.services(svc.sid).channels("general").messages
    m = messages.create(body="Hello from Python", from_="py",
                        attributes=json.dumps({"lang": "python"}))
    assert m.index == 4 and m.from_ == "py" and m.was_edited is False
    assert messages(m.sid).fetch().body == "Hello from Python"
    imported = messages.create(body="an old one", date_created=datetime(2015, 5, 5, tzinfo=timezone.utc))
    assert imported.date_created == datetime(2015, 5, 5, tzinfo=timezone.utc)
    edited = messages(m.sid).update(body="Hello again", last_updated_by="py")
    assert edited.was_edited is True and edited.last_updated_by == "py"
    assert messages(m.sid).delete() is True
    assert [x.index for x in messages.list()] == [0, 1, 2, 3, 5]
    golden("messages")


def test_message_pages_both_ways(client, golden):
    svc = fixture_service(client)
    messages = client.chat.v2.services(svc.sid).channels("general").messages
    for i in range(7):
        messages.create(body=f"m{i}")
    # 11 messages: pages of 3, forwards then backwards (a Page is an
    # iterator: its records are read once)
    page = messages.page(page_size=3)
    forward = [[m.index for m in page]]
    while page.next_page_url:
        page = page.next_page()
        forward.append([m.index for m in page])
    assert forward == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    backward = []
    while page.previous_page_url:
        page = page.previous_page()
        backward.append([m.index for m in page])
    assert backward == [[6, 7, 8], [3, 4, 5], [0, 1, 2]]
    second = page.next_page()
    # descending, through list() and stream(), which follow next_page_url
    assert [m.index for m in messages.list(order="desc", page_size=4)] == list(range(10, -1, -1))
    assert [m.index for m in messages.stream(page_size=5, limit=7)] == list(range(7))
    # a page URL, followed verbatim
    again = messages.get_page(second.next_page_url)
    assert [m.index for m in again] == [6, 7, 8]
    golden("pages")


@pytest.mark.parametrize("call, status, code", [
    (lambda c, s: c.chat.v2.services(s).channels("nope").fetch(), 404, 20404),
    (lambda c, s: c.chat.v2.services(s).channels.create(unique_name="general"), 409, 50307),
    (lambda c, s: c.chat.v2.services(s).channels("general").messages.create(attributes="{bad"), 400, 50304),
    (lambda c, s: c.chat.v2.services(s).channels("general").messages.create(body="x" * 32769), 400, 50504),
    (lambda c, s: c.chat.v2.services(s).channels.create(type="secret"), 400, 20001),
    (lambda c, s: c.chat.v2.services.create(friendly_name=""), 400, 20001),
], ids=["missing channel", "unique name taken", "bad attributes", "body too long",
        "bad channel type", "empty friendly name"])
def test_errors_are_twilio_rest_exceptions(client, call, status, code):
    svc = fixture_service(client)
    with pytest.raises(TwilioRestException) as e:
        call(client, svc.sid)
    assert (e.value.status, e.value.code) == (status, code)
    assert e.value.msg


def test_list_errors(client):
    # twilio 7.7.1 raises the base TwilioException for a list that fails,
    # with the HTTP response as its second argument
    svc = fixture_service(client)
    with pytest.raises(TwilioException) as e:
        client.chat.v2.services(svc.sid).channels("nope").messages.list()
    assert not isinstance(e.value, TwilioRestException)
    assert e.value.args[1].status_code == 404
    assert json.loads(e.value.args[1].text)["code"] == 20404


def test_error_bodies(client, golden):
    svc = fixture_service(client)
    for call in (lambda: client.chat.v2.services(svc.sid).channels("nope").fetch(),
                 lambda: client.chat.v2.services(svc.sid).channels.create(unique_name="general"),
                 lambda: client.chat.v2.services(svc.sid).channels("general").messages.create(
                     attributes="{bad")):
        with pytest.raises(TwilioRestException):
            call()
    golden("errors")


def test_fixture_data(client, golden):
    svc = fixture_service(client)
    general = client.chat.v2.services(svc.sid).channels("general")
    msgs = general.messages.list()
    assert [m.from_ for m in msgs] == ["alice", "bob", "alice", "bob"]
    assert msgs[2].was_edited and msgs[2].body == "Looking into it."
    assert msgs[3].type == "media" and msgs[3].media["filename"] == "receipt.txt"
    golden("fixture")


def test_changes_do_not_leak_between_tests_1(client):
    client.chat.v2.services.create(friendly_name="leak?")
    assert len(client.chat.v2.services.list()) == 3


def test_changes_do_not_leak_between_tests_2(client):
    assert [s.friendly_name for s in client.chat.v2.services.list()] == ["support", "empty service"]


def test_a_reset_gives_the_same_sids_again(client, chatstore):
    first = client.chat.v2.services.create(friendly_name="again")
    chatstore.reset()
    second = client.chat.v2.services.create(friendly_name="again")
    assert (second.sid, second.date_created) == (first.sid, first.date_created)
    chatstore.reset(fixture=False)
    assert client.chat.v2.services.list() == []
