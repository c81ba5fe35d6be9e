"""Download links (Viewer.peopleFileLink, Transfer.auditLogLink): a signed path that opens one CSV
file with no Authorization header, for a plain `<a href download>` in a browser."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from graph.auth import links
from graph.core.relay import pk_of, to_global_id
from models import bulk, settings
from models.clock import now
from models.tenancy import ApiToken, User
from models.transfers import BulkUpload
from tests.processes import Service
from tests.support import Api, GraphQLErrors, World, free_port, run_pairs
from tests.test_cli import UDT, udt

PEOPLE_LINK = "{ viewer { peopleFileLink { url expiresAt } } }"
AUDIT_LINK = "query ($id: ID!, $all: Boolean) { transfer(id: $id) { auditLogLink(all: $all) { url expiresAt } } }"
LINK_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"}
REFUSED = {"errors": [{"message": "This download link is not valid.", "extensions": {"code": "FORBIDDEN"}}]}
EXPIRED = {"errors": [{"message": "This download link has expired. Ask for a new one.", "extensions": {"code": "LINK_EXPIRED"}}]}
# What a refusal's headers may say: nothing about the server, the signature or the key.
REFUSAL_HEADERS = {"content-type", "content-length", "date", "server", "vary", "x-request-id", *LINK_HEADERS}


async def people_link(api: Api, token: str) -> dict:
    return (await api(PEOPLE_LINK, token))["viewer"]["peopleFileLink"]


async def audit_link(api: Api, token: str, gid: str, every_pair: bool | None = None) -> dict:
    return (await api(AUDIT_LINK, token, id=gid, all=every_pair))["transfer"]["auditLogLink"]


async def get(api: Api, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(api.base + path, headers=headers or {})


async def finished_transfer(api: Api, world: World, source: int = 10) -> str:
    """The admin's bulk transfer, applied: `source` -> `source` + 10 succeeded, the next source -> its
    target failed (TENANT_ADMIN). Its ID."""
    pairs = ((source, source + 10), (source + 1, source + 11))
    for each, _ in pairs:
        await world.give(each, "CCR")
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{t}\n" for s, t in pairs)
    upload = (await api.upload(world.admin, content))["upload"]
    transfer, _ = await bulk.start(world.users[1], await BulkUpload.get(id=pk_of(upload["id"], "BulkUpload")))
    failing = world.users[pairs[1][1]]
    failing.tenant_admin = True  # after the start's check: the pair fails when applied
    await failing.save()
    await run_pairs(transfer.id)
    return to_global_id("Transfer", transfer.id)


def tampered(url: str, **changes: object) -> str:
    """`url` with fields of its payload changed and its signature kept, as an attacker would."""
    payload, signature = url.removeprefix(links.PREFIX).split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{links.PREFIX}{encoded}.{signature}"


def resigned(url: str) -> str:
    """`url` with the first character of its signature changed: not the last, whose low bits base64
    leaves unused (a last character changed in those bits alone decodes to the same signature)."""
    payload, signature = url.split(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def assert_refused(response: httpx.Response, status: int = 403, body: dict = REFUSED) -> None:
    assert response.status_code == status, response.text
    assert response.json() == body
    assert set(response.headers) <= REFUSAL_HEADERS, response.headers
    assert all(response.headers[name] == value for name, value in LINK_HEADERS.items())


async def test_a_people_file_link_opens_the_bearer_routes_file_with_no_header(api: Api, world: World) -> None:
    link = await people_link(api, world.admin)
    assert link["url"].startswith(links.PREFIX)
    opened = await get(api, link["url"])
    assert opened.status_code == 200
    assert opened.headers["content-type"].startswith("text/csv")
    assert opened.headers["content-disposition"] == 'attachment; filename="people.csv"'
    assert all(opened.headers[name] == value for name, value in LINK_HEADERS.items())
    bearer = await get(api, "/exports/people.csv", {"Authorization": f"Bearer {world.admin}"})
    assert opened.text == bearer.text and len(opened.text.splitlines()) == 1 + len(world.users)


async def test_audit_log_links_open_the_failed_pairs_or_every_pair_as_the_bearer_route_does(api: Api, world: World) -> None:
    gid = await finished_transfer(api, world)
    pk = pk_of(gid, "Transfer")
    for every_pair, name, lines in ((None, "failed", 1), (False, "failed", 1), (True, "all", 2)):
        opened = await get(api, (await audit_link(api, world.admin, gid, every_pair))["url"])
        assert opened.status_code == 200
        assert opened.headers["content-disposition"] == f'attachment; filename="transfer-{pk}-{name}.csv"'
        assert all(opened.headers[name] == value for name, value in LINK_HEADERS.items())
        query = "?all=1" if every_pair else ""
        bearer = await get(api, f"/transfers/{gid}/audit.csv{query}", {"Authorization": f"Bearer {world.admin}"})
        assert opened.text == bearer.text and len(opened.text.splitlines()) == 1 + lines


async def test_a_link_works_for_the_configured_seconds(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "DOWNLOAD_LINK_SECONDS", 120)
    before = now()
    expires = datetime.fromisoformat((await people_link(api, world.admin))["expiresAt"])
    assert before + timedelta(seconds=119) <= expires <= now() + timedelta(seconds=120)


async def test_an_expired_link_answers_410_saying_to_ask_for_a_new_one(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "DOWNLOAD_LINK_SECONDS", 1)
    link = await people_link(api, world.admin)
    async with asyncio.timeout(10):  # it works until expiresAt, and answers 410 from then on
        while (asked := now()) and (opened := await get(api, link["url"])).status_code == 200:
            assert asked < datetime.fromisoformat(link["expiresAt"])  # asked before then (answered maybe just after)
            await asyncio.sleep(0.1)
    assert_refused(opened, 410, EXPIRED)
    assert now() >= datetime.fromisoformat(link["expiresAt"])
    long_ago = links.make(links.Download(world.pk(1), links.PEOPLE), now=now() - timedelta(days=1))
    assert_refused(await get(api, long_ago.url), 410, EXPIRED)


async def test_asking_for_a_link_needs_the_transfer_permission(api: Api, world: World) -> None:
    gid = await finished_transfer(api, world)
    for query, variables in ((PEOPLE_LINK, {}), (AUDIT_LINK, {"id": gid})):
        with pytest.raises(GraphQLErrors) as refused:
            await api(query, world.tokens["clerk"], **variables)
        assert refused.value.codes == ["FORBIDDEN"]
        with pytest.raises(GraphQLErrors) as refused:
            await api(query, None, **variables)
        assert refused.value.codes == ["UNAUTHENTICATED"]


async def test_the_file_follows_the_operators_view_as_it_is_when_the_link_is_opened(api: Api, world: World) -> None:
    link = await people_link(api, world.lead)  # view East
    lead = world.users[2]
    lead.view = world.views["West"]
    await lead.save()
    rows = (await get(api, link["url"])).text.splitlines()[1:]
    assert sorted(int(row.split(",")[0]) for row in rows) == list(range(30, 40))


async def test_a_transfer_no_longer_visible_answers_404_as_the_bearer_route_does(api: Api, world: World) -> None:
    gid = await finished_transfer(api, world)
    link = await audit_link(api, world.lead, gid)  # its pairs are all in view East
    lead = world.users[2]
    lead.view = world.views["West"]
    await lead.save()
    opened = await get(api, link["url"])
    bearer = await get(api, f"/transfers/{gid}/audit.csv", {"Authorization": f"Bearer {world.lead}"})
    assert opened.status_code == bearer.status_code == 404
    assert opened.json() == bearer.json()


async def test_a_link_stops_working_when_its_operator_is_inactive_or_gone_or_loses_the_permission(api: Api, world: World) -> None:
    link = await people_link(api, world.lead)
    lead = world.users[2]
    lead.active = False
    await lead.save()
    assert_refused(await get(api, link["url"]))
    lead.active, lead.can_transfer = True, False
    await lead.save()
    assert_refused(await get(api, link["url"]))
    lead.can_transfer = True
    await lead.save()
    assert (await get(api, link["url"])).status_code == 200
    newest = await User.all().order_by("-id").first()
    gone = links.make(links.Download(newest.id + 1, links.PEOPLE))  # signed here, for nobody
    assert_refused(await get(api, gone.url))


async def test_a_link_made_for_one_file_never_opens_another_whichever_field_is_changed(api: Api, world: World) -> None:
    gid = await finished_transfer(api, world)
    other = await finished_transfer(api, world, source=12)
    people = (await people_link(api, world.lead))["url"]
    failed = (await audit_link(api, world.lead, gid))["url"]
    for url in (
        tampered(people, op=world.pk(1)),  # another operator (the admin: the whole tenant)
        tampered(people, file=links.AUDIT_ALL, transfer=pk_of(gid, "Transfer")),
        tampered(failed, file=links.PEOPLE),
        tampered(failed, file=links.AUDIT_ALL),
        tampered(failed, transfer=pk_of(other, "Transfer")),
        tampered(people, exp=int(time.time()) + 86400),  # a longer life
        tampered(people, exp=int(time.time()) - 10),  # expired, and changed: the signature speaks first
        resigned(people),  # the signature's first character
        people.replace(".", ".x", 1),
        people.split(".")[0],  # no signature
    ):
        assert_refused(await get(api, url))
    assert (await get(api, people)).status_code == 200 and (await get(api, failed)).status_code == 200


async def test_a_link_signed_with_a_key_not_listed_answers_403(api: Api, world: World) -> None:
    payload = {"op": world.pk(1), "file": links.PEOPLE, "exp": int(time.time()) + 300}
    for key, salt in (("another-key-" + "x" * 32, links.SALT), (settings.SECRET_KEYS[0], "another-salt")):
        forged = URLSafeSerializer(key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256}).dumps(payload)
        assert_refused(await get(api, links.PREFIX + forged))


async def test_a_signed_payload_that_is_not_a_link_this_service_makes_opens_nothing(api: Api, world: World) -> None:
    """Signed with the real key and salt, as if another use of them signed it: only a link's exact shape opens."""
    expires = int(time.time()) + 300
    signer = URLSafeSerializer(list(reversed(settings.SECRET_KEYS)), salt=links.SALT, signer_kwargs={"digest_method": hashlib.sha256})
    for payload in (
        {"op": world.pk(1), "file": links.PEOPLE, "exp": expires, "transfer": 1},
        {"op": world.pk(1), "file": links.AUDIT_ALL, "exp": expires},
        {"op": world.pk(1), "file": "../people", "exp": expires},
        {"op": True, "file": links.PEOPLE, "exp": expires},
        {"op": str(world.pk(1)), "file": links.PEOPLE, "exp": expires},
        {"op": world.pk(1), "file": links.PEOPLE, "exp": float(expires)},
        {"op": world.pk(1), "file": links.PEOPLE},
        [world.pk(1), links.PEOPLE, expires],
        "people",
    ):
        assert_refused(await get(api, links.PREFIX + signer.dumps(payload)))
    assert (await get(api, links.PREFIX + signer.dumps({"op": world.pk(1), "file": links.PEOPLE, "exp": expires}))).status_code == 200


async def test_a_link_made_under_an_old_key_opens_while_that_key_is_listed(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = "old-key-" + "o" * 32, "new-key-" + "n" * 32
    monkeypatch.setattr(settings, "SECRET_KEYS", [old])
    made_under_old = (await people_link(api, world.admin))["url"]
    monkeypatch.setattr(settings, "SECRET_KEYS", [new, old])  # newest first
    made_under_new = (await people_link(api, world.admin))["url"]
    assert (await get(api, made_under_old)).status_code == 200
    assert (await get(api, made_under_new)).status_code == 200
    monkeypatch.setattr(settings, "SECRET_KEYS", [old])  # the new key signed it: the old one alone cannot open it
    assert_refused(await get(api, made_under_new))
    monkeypatch.setattr(settings, "SECRET_KEYS", [new])  # the old key dropped: its links open nothing
    assert_refused(await get(api, made_under_old))
    assert (await get(api, made_under_new)).status_code == 200


async def test_a_link_is_not_a_bearer_token_and_holds_none(api: Api, world: World) -> None:
    url = (await people_link(api, world.admin))["url"]
    assert world.admin not in url and not any(token in url for token in world.tokens.values())
    signed = url.removeprefix(links.PREFIX)
    with pytest.raises(GraphQLErrors) as refused:
        await api("{ viewer { user { userId } } }", signed)
    assert refused.value.codes == ["UNAUTHENTICATED"]
    assert (await get(api, "/exports/people.csv", {"Authorization": f"Bearer {signed}"})).status_code == 401
    assert await ApiToken.authenticate(signed) is None


async def test_a_long_or_garbage_path_answers_403_within_a_second(api: Api) -> None:
    for path in (
        "", "x", "." * 200, "a.b.c", "%00", "%FF%FE", "..%2F..%2Fetc%2Fpasswd", "a/b/c", "é" * 100,
        "eyJhbGciOiJub25lIn0.e30.", "A" * 511 + "." + "B" * 43, "A" * 8000,
    ):
        started = time.perf_counter()
        response = await get(api, links.PREFIX + path)
        assert time.perf_counter() - started < 1, path
        assert_refused(response)


def unchunked(body: bytes) -> bytes:
    """A chunked body's content (RFC 9112 7.1)."""
    content = b""
    while True:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            return content
        content, body = content + rest[:length], rest[length + 2 :]


async def test_a_plain_get_with_no_headers_downloads_the_file(api: Api, world: World) -> None:
    """As the plainest client sends it: only the Host that HTTP/1.1 requires, no Accept, no User-Agent."""
    url = (await people_link(api, world.admin))["url"]
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    async with asyncio.timeout(30):
        answer = await reader.read()  # to the end: the server closes the connection after the file
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"200"
    assert b'content-disposition: attachment; filename="people.csv"' in head.lower()
    assert b"transfer-encoding: chunked" in head.lower()  # streamed
    bearer = await get(api, "/exports/people.csv", {"Authorization": f"Bearer {world.admin}"})
    assert unchunked(body).decode() == bearer.text


async def test_a_browser_downloads_the_file_from_a_plain_link(api: Api, world: World) -> None:
    """Headless Chromium (as tests/console_support.py runs it) clicks `<a href={url} download>`."""
    from tests.console_support import CHROMIUM, FLAGS, REQUIRED

    if not CHROMIUM.exists() and not REQUIRED:
        pytest.skip(f"no browser here: {CHROMIUM} is missing")
    from playwright.async_api import async_playwright

    url = (await people_link(api, world.admin))["url"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = await (await browser.new_context(accept_downloads=True)).new_page()
            await page.goto(api.base + "/healthz")  # a page of the service's origin, as a front end's would be
            await page.set_content(f'<a id="file" href="{api.base}{url}" download>Download all users</a>')
            async with page.expect_download() as download_info:
                await page.click("#file")
            download = await download_info.value
            assert download.suggested_filename == "people.csv"
            content = Path(await download.path()).read_bytes().decode()
        finally:
            await browser.close()
    bearer = await get(api, "/exports/people.csv", {"Authorization": f"Bearer {world.admin}"})
    assert content == bearer.text


async def test_serve_refuses_to_start_without_a_key_saying_how_to_make_one(database: str, redis_url: str) -> None:
    for key, says in (("", "needs UDT_SECRET_KEY"), (" , ", "needs UDT_SECRET_KEY"), ("short", "at least 32 characters")):
        code, out = await udt("serve", "--port", str(free_port()), database=database, REDIS_URL=redis_url, UDT_SECRET_KEY=key)
        assert code != 0 and says in out, out
        assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in out


async def test_a_link_one_api_instance_made_opens_on_another_that_shares_the_key_and_no_log_holds_it(
    api: Api, world: World, database: str, redis_url: str, tmp_path: Path
) -> None:
    """Two `udt serve` processes of one deployment: newest key first, the older one still listed."""
    new, old = "n" * 32, settings.SECRET_KEYS[0]
    env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": redis_url, "UDT_METRICS": "off", "UDT_SECRET_KEY": f"{new},{old}"}
    ports = [free_port(), free_port()]
    instances = [
        await Service.start(env, tmp_path / f"api{port}.log", UDT, "serve", "--port", str(port)) for port in ports
    ]
    try:
        first, second = (Api(f"http://127.0.0.1:{port}") for port in ports)
        async with asyncio.timeout(60):
            for instance in (first, second):
                while not await _ready(instance):
                    await asyncio.sleep(0.2)
        made_by_first = (await people_link(first, world.admin))["url"]
        made_here_under_the_old_key = (await people_link(api, world.admin))["url"]
        bearer = await get(api, "/exports/people.csv", {"Authorization": f"Bearer {world.admin}"})
        for url in (made_by_first, made_here_under_the_old_key):
            opened = await get(second, url)
            assert opened.status_code == 200 and opened.text == bearer.text
        assert_refused(await get(api, made_by_first))  # this instance does not have the new key
        log = (tmp_path / f"api{ports[1]}.log").read_text()
        assert f'"GET {links.PREFIX}... HTTP/1.1" 200' in log  # the access log notes the download
        assert not any(url.removeprefix(links.PREFIX) in log for url in (made_by_first, made_here_under_the_old_key))
    finally:
        for instance in instances:
            await instance.stop()


async def _ready(api: Api) -> bool:
    with contextlib.suppress(httpx.TransportError):
        return (await get(api, "/readyz")).status_code == 200
    return False


async def test_a_worker_refuses_to_start_without_a_key_since_it_signs_webhooks(database: str, redis_url: str) -> None:
    """Webhook secrets are sealed under UDT_SECRET_KEY (models/webhook_secrets.py): a worker without it could not sign."""
    for key, says in (("", "needs UDT_SECRET_KEY"), ("short", "at least 32 characters")):
        code, out = await udt("worker", database=database, REDIS_URL=redis_url, UDT_SECRET_KEY=key, UDT_METRICS="off")
        assert code != 0 and says in out and "udt worker" in out, out


async def test_dev_makes_a_key_under_its_data_directory_on_the_first_run_and_keeps_it(tmp_path: Path) -> None:
    """Links `udt dev` gave out still open after it restarts."""
    async with running_dev(tmp_path) as (api, token):
        key_file = tmp_path / "secret_key"
        key = key_file.read_text()
        assert len(key.strip()) >= 32 and key_file.stat().st_mode & 0o777 == 0o600
        url = (await people_link(api, token))["url"]
        assert (await get(api, url)).status_code == 200
    async with running_dev(tmp_path) as (api, token):
        assert key_file.read_text() == key
        opened = await get(api, url)
        assert opened.status_code == 200 and "John" in opened.text


@contextlib.asynccontextmanager
async def running_dev(data_dir: Path) -> AsyncIterator[tuple[Api, str]]:
    """`udt dev` on `data_dir`, with no key, database or Redis given: (its API, the token it printed)."""
    port = free_port()
    unset = ("DATABASE_URL", "REDIS_URL", "UDT_SECRET_KEY", "UDT_WEBHOOK_ALLOW_PRIVATE")  # udt dev sets the last itself
    env = {**{k: v for k, v in os.environ.items() if k not in unset}, "UDT_DATA_DIR": str(data_dir), "UDT_LOG_LEVEL": "WARNING"}
    log = data_dir / f"dev{port}.log"
    dev = await Service.start(env, log, UDT, "dev", "--port", str(port))
    api = Api(f"http://127.0.0.1:{port}")
    try:
        async with asyncio.timeout(90):
            while not await _ready(api):
                assert dev.process.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
        token = re.search(r'"Bearer (udt_[^"]+)"', log.read_text()).group(1)  # type: ignore[union-attr]
        yield api, token
    finally:
        if dev.process.returncode is None:
            dev.process.send_signal(signal.SIGTERM)  # stops its private Redis too
            async with asyncio.timeout(60):
                await dev.process.wait()
