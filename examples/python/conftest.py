"""pytest fixtures: chatstore-server as the Twilio Chat API of a test suite.

One seeded server per test session, on a free loopback port, with a fixed
clock, the example fixture file and the test endpoints; the real `twilio`
client pointed at it; the store reset to the fixture before every test.

  chatstore  the running server: .origin, .account_sid, .auth_token,
             .reset(), .stats(), .exchanges (every request and answer the
             client made in the current test)
  client     a twilio.rest.Client that talks to it
  golden     golden(name): compares the current test's exchanges with
             golden/<name>.txt (CHATSTORE_UPDATE_GOLDEN=1 rewrites the file)

The server binary is $CHATSTORE_SERVER_BIN, else chatstore-server on PATH.
"""

import difflib
import os
import pathlib
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest
import requests
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

HERE = pathlib.Path(__file__).resolve().parent
FIXTURE = HERE.parent / "fixture.json"
GOLDEN = HERE / "golden"
TOKEN = "python-example-token"
SEED = "42"
CLOCK = "2020-01-01T00:00:00Z+1s"

# The client rewrites hosts when these are set; proxies must stay out of
# loopback traffic.
for var in ("TWILIO_EDGE", "TWILIO_REGION", "HTTP_PROXY", "http_proxy",
            "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(var, None)


class LocalHttpClient(TwilioHttpClient):
    """The client's https://chat.twilio.com/... requests (first requests and
    followed page URLs alike) go to the local server; each exchange is
    recorded for golden files."""

    def __init__(self, origin):
        super().__init__(timeout=10)
        self.origin = origin
        self.session.trust_env = False
        self.exchanges = []

    def request(self, method, url, params=None, data=None, headers=None,
                auth=None, timeout=None, allow_redirects=False):
        u = urllib.parse.urlsplit(url)
        local = self.origin + u.path + ("?" + u.query if u.query else "")
        r = super().request(method, local, params=params, data=data,
                            headers=headers, auth=auth, timeout=timeout,
                            allow_redirects=allow_redirects)
        query = urllib.parse.urlencode(params or {})
        target = u.path + "?" + "&".join(q for q in (u.query, query) if q)
        self.exchanges.append((method, target.rstrip("?"),
                               urllib.parse.urlencode(data or {}),
                               r.status_code, r.text))
        return r


class Server:
    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--auth-token", TOKEN,
             "--seed", SEED, "--clock", CLOCK, "--fixture", str(FIXTURE),
             "--test-endpoints"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = []
        ready = threading.Event()

        def read():  # until "listening on", then drain
            for line in self.proc.stdout:
                out.append(line)
                if line.startswith("listening on "):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(10) or not out or not out[-1].startswith("listening on "):
            self.proc.kill()
            raise RuntimeError("chatstore-server did not start:\n" + "".join(out)
                               + self.proc.stderr.read())
        text = "".join(out)
        self.origin = re.search(r"listening on (http://\S+)", text).group(1)
        # --seed without --account-sid: the account SID comes from the seed
        self.account_sid = re.search(r"account sid (AC[0-9a-f]{32})", text).group(1)
        self.auth_token = TOKEN
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.auth = (self.account_sid, TOKEN)
        self.exchanges = []

    def reset(self, fixture=True):
        """Back to the state of the start: the fixture's data, the same SIDs,
        the clock at its start (Fixture=false: an empty store)."""
        r = self.http.post(self.origin + "/_chatstore/reset",
                           data={"Fixture": "true" if fixture else "false"}, timeout=10)
        r.raise_for_status()
        return r.json()

    def stats(self):
        r = self.http.get(self.origin + "/_chatstore/stats", timeout=10)
        r.raise_for_status()
        return r.json()

    def stop(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert code == 0, "chatstore-server did not stop cleanly: " + self.proc.stderr.read()


@pytest.fixture(scope="session")
def chatstore():
    binary = os.environ.get("CHATSTORE_SERVER_BIN") or shutil.which("chatstore-server")
    if not binary:
        pytest.fail("set CHATSTORE_SERVER_BIN to the chatstore-server binary")
    server = Server(binary)
    yield server
    server.stop()


@pytest.fixture
def client(chatstore):
    http = LocalHttpClient(chatstore.origin)
    chatstore.exchanges = http.exchanges
    return Client(chatstore.account_sid, chatstore.auth_token, http_client=http)


@pytest.fixture(autouse=True)
def _fresh_store(chatstore):
    """Every test starts from the fixture, with the clock at its start."""
    chatstore.reset()


@pytest.fixture
def golden(chatstore):
    def check(name):
        got = "".join(
            f"> {method} {target}\n" + (f"> {data}\n" if data else "") +
            f"< {status}\n{body}\n\n"
            for method, target, data, status, body in chatstore.exchanges)
        path = GOLDEN / f"{name}.txt"
        if os.environ.get("CHATSTORE_UPDATE_GOLDEN") == "1":
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(got, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"{path} is missing: run once with CHATSTORE_UPDATE_GOLDEN=1, "
                        "review it, commit it")
        want = path.read_text(encoding="utf-8")
        if got != want:
            diff = "".join(difflib.unified_diff(
                want.splitlines(True), got.splitlines(True), str(path), "this run"))
            pytest.fail("the responses differ from the golden file:\n" + diff)
    return check
