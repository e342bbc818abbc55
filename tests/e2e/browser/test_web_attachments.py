# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""Attachments in the web engine against the `nt2sync` CLI on one real local server (moto S3
behind presigned URLs): a file attached in the browser is byte-identical in the CLI and the
other way round, a blob altered or swapped on the server is refused in the page, and a
removal on either side reaches the other and deletes the blob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_harness import evaluate_error, open_harness, web_context
from tests.e2e.browser.web_ui import add_item, create_vault, enable_sync, go, said, shot
from tests.e2e.client_cli import run

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e

BUCKET = "nt2-sync-local-attachments"  # devserver's default BUCKET_NAME
# Bytes that exercise the padding: a 0x80 and zeros at the end, every byte value inside.
FILE = bytes(range(256)) * 300 + b"tail\x80\x00\x00"


def ok(vault: Path, *args: str, password: str = "pw-one") -> Any:
    result = run(vault, *args, "--json", password=password)
    assert result.code == 0, result.err
    return result.json()


def s3(server: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.backend_url(),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )


def object_key(server: Any, attachment_id: str) -> str | None:
    """The bucket key of an attachment's blob (under its vault's prefix), None if gone."""
    listed = s3(server).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    found = [o["Key"] for o in listed if o["Key"].endswith(attachment_id)]
    return found[0] if found else None


@pytest.fixture
def page(web_context: Any, web_server: Any) -> Any:
    page = open_harness(web_context, web_server.web_url())
    yield page
    page.close()


def web_vault_with_item(page: Any, server: Any) -> str:
    return page.evaluate(  # type: ignore[no-any-return]
        """async (api) => {
        await nt2.createVault("pw-one");
        const id = await nt2.saveItem({title: "passport", body: "scan attached"});
        await nt2.enableSync(api);
        return id; }""",
        server.url,
    )


def attach_in_page(page: Any, item_id: str, name: str, data: bytes) -> str:
    return page.evaluate(  # type: ignore[no-any-return]
        "async ([id, name, data]) => nt2.addAttachment(id, name, new Uint8Array(data))",
        [item_id, name, list(data)],
    )


def open_in_page(page: Any, attachment_id: str) -> bytes:
    return bytes(
        page.evaluate("async (id) => Array.from(await nt2.getAttachment(id))", attachment_id)
    )


def join_cli(page: Any, tmp_path: Path) -> Path:
    kit = tmp_path / "kit.json"
    kit.write_text(page.evaluate("async () => (await nt2.exportKit()).text") + "\n")
    cli = tmp_path / "cli.sqlite3"
    ok(cli, "join", "--kit", str(kit))
    return cli


def test_a_file_attached_in_the_browser_is_byte_identical_in_the_cli_and_its_removal_reaches_the_page(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a browser vault with an item, synced, and a file attached to it in the page
    item_id = web_vault_with_item(page, web_server)
    attachment_id = attach_in_page(page, item_id, "scan.pdf", FILE)
    page.evaluate("() => nt2.syncNow()")
    assert page.evaluate("(id) => nt2.listAttachments(id)", item_id) == [
        {"id": attachment_id, "name": "scan.pdf", "size": len(FILE)}
    ]
    assert object_key(web_server, attachment_id) is not None
    # WHEN the CLI joins and gets the attachment
    cli = join_cli(page, tmp_path)
    listed = ok(cli, "attach", "list")
    assert [(a["id"], a["itemId"], a["name"], a["size"]) for a in listed] == [
        (attachment_id, item_id, "scan.pdf", len(FILE))
    ]
    out = tmp_path / "out.pdf"
    assert ok(cli, "attach", "get", attachment_id, str(out))["size"] == len(FILE)
    # THEN it holds the very bytes attached in the browser
    assert out.read_bytes() == FILE
    # WHEN the CLI removes it and syncs THEN the blob is gone and the page no longer lists it
    ok(cli, "attach", "rm", attachment_id)
    assert object_key(web_server, attachment_id) is None
    page.evaluate("() => nt2.syncNow()")
    assert page.evaluate("(id) => nt2.listAttachments(id)", item_id) == []
    err = evaluate_error(page, "(id) => nt2.getAttachment(id)", attachment_id)
    assert err["code"] == "no_attachment"
    assert page.errors == []


def test_a_cli_attachment_opens_in_the_browser_and_a_removal_there_reaches_the_cli(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a CLI vault whose item has an attachment, synced
    cli = tmp_path / "a.sqlite3"
    ok(cli, "init")
    item_id = ok(cli, "item", "add", "contract")["id"]
    ok(cli, "sync", "enable", "--server", web_server.url)
    src = tmp_path / "contract.odt"
    src.write_bytes(FILE[::-1])
    attachment_id = ok(cli, "attach", "add", item_id, str(src))["id"]
    kit = tmp_path / "kit.json"
    ok(cli, "kit", "--out", str(kit))
    # WHEN the browser joins and opens it
    page.evaluate(
        "async (kit) => nt2.joinFromKit(await nt2.parseKit(kit), 'pw-one')", kit.read_text()
    )
    assert page.evaluate("(id) => nt2.listAttachments(id)", item_id) == [
        {"id": attachment_id, "name": "contract.odt", "size": len(FILE)}
    ]
    # THEN the page holds the very bytes the CLI attached
    assert open_in_page(page, attachment_id) == FILE[::-1]
    # WHEN the browser removes it and syncs
    page.evaluate(
        "async (id) => { await nt2.removeAttachment(id); return nt2.syncNow(); }", attachment_id
    )
    # THEN the blob is gone from the server and the CLI's item no longer references it
    assert object_key(web_server, attachment_id) is None
    ok(cli, "sync", "now")
    assert ok(cli, "attach", "list") == []
    assert page.errors == []


def test_a_blob_altered_or_swapped_on_the_server_is_refused_in_the_page(
    web_server: Any, page: Any
) -> None:
    # GIVEN two files attached in the browser
    item_id = web_vault_with_item(page, web_server)
    first = attach_in_page(page, item_id, "first.txt", b"the first file")
    second = attach_in_page(page, item_id, "second.txt", b"the second file")
    assert open_in_page(page, first) == b"the first file"
    bucket = s3(web_server)
    key_first, key_second = object_key(web_server, first), object_key(web_server, second)
    assert key_first and key_second
    original = bucket.get_object(Bucket=BUCKET, Key=key_first)["Body"].read()
    # WHEN the server flips one bit of the first blob THEN the page refuses it in one sentence
    altered = bytearray(original)
    altered[-1] ^= 1
    bucket.put_object(Bucket=BUCKET, Key=key_first, Body=bytes(altered))
    err = evaluate_error(page, "(id) => nt2.getAttachment(id)", first)
    assert err == {
        "code": "tampered_attachment",
        "message": "Attachment first.txt was altered or swapped on the server; refusing it.",
    }
    # WHEN it serves the second file's blob for the first THEN that is refused too
    swapped = bucket.get_object(Bucket=BUCKET, Key=key_second)["Body"].read()
    bucket.put_object(Bucket=BUCKET, Key=key_first, Body=swapped)
    assert (
        evaluate_error(page, "(id) => nt2.getAttachment(id)", first)["code"]
        == "tampered_attachment"
    )
    # WHEN it serves a longer blob THEN the page stops reading and refuses it
    bucket.put_object(Bucket=BUCKET, Key=key_first, Body=original + bytes(4096))
    assert (
        evaluate_error(page, "(id) => nt2.getAttachment(id)", first)["code"]
        == "tampered_attachment"
    )
    # AND the untouched file still opens
    assert open_in_page(page, second) == b"the second file"
    assert page.errors == []


def test_attaching_needs_sync_and_a_live_item(web_server: Any, page: Any) -> None:
    # GIVEN a vault that does not sync
    item_id = page.evaluate(
        """async () => { await nt2.createVault("pw-one"); return nt2.saveItem({title: "x"}); }"""
    )
    # WHEN a file is attached THEN the page says sync must be on (no file is kept locally)
    err = evaluate_error(
        page, "(id) => nt2.addAttachment(id, 'a.txt', new Uint8Array([1]))", item_id
    )
    assert err["code"] == "sync_off"
    # WHEN the item is unknown THEN that is said
    page.evaluate("(api) => nt2.enableSync(api)", web_server.url)
    err = evaluate_error(page, "() => nt2.addAttachment('nope', 'a.txt', new Uint8Array([1]))")
    assert err["code"] == "no_item"


def test_an_upload_whose_answer_is_lost_is_retried_and_committed_once(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a storage whose first answer to a PUT is lost after the object landed
    item_id = web_vault_with_item(page, web_server)
    backend = web_server.backend_url()
    seen: list[str] = []

    def lose_first_answer(route: Any) -> None:
        if route.request.method != "PUT":
            route.continue_()
            return
        seen.append("put")
        if len(seen) == 1:
            route.fetch()  # the object is stored…
            route.abort()  # …but the page never hears so
        else:
            route.continue_()  # a retry: S3 answers 412 (If-None-Match: *)

    page.route(backend + "/**", lose_first_answer)
    # WHEN a file is attached THEN the retry is taken as "already there" and committed
    attachment_id = attach_in_page(page, item_id, "notes.txt", b"kept once")
    page.unroute(backend + "/**")
    assert seen == ["put", "put"]
    assert open_in_page(page, attachment_id) == b"kept once"
    # AND the CLI opens it after the next sync
    page.evaluate("() => nt2.syncNow()")
    cli = join_cli(page, tmp_path)
    out = tmp_path / "notes.txt"
    ok(cli, "attach", "get", attachment_id, str(out))
    assert out.read_bytes() == b"kept once"


def test_an_upload_that_never_reaches_the_storage_leaves_the_item_unchanged(
    web_server: Any, page: Any
) -> None:
    # GIVEN a storage that cannot be reached
    item_id = web_vault_with_item(page, web_server)
    backend = web_server.backend_url()
    page.route(backend + "/**", lambda route: route.abort())
    # WHEN a file is attached THEN the page says so and the item references nothing
    err = evaluate_error(
        page, "(id) => nt2.addAttachment(id, 'a.txt', new Uint8Array([1, 2, 3]))", item_id
    )
    assert err == {"code": "network", "message": "Cannot reach the attachment storage; try again."}
    assert page.evaluate("(id) => nt2.listAttachments(id)", item_id) == []
    # AND once the storage is back the same file attaches
    page.unroute(backend + "/**")
    attachment_id = attach_in_page(page, item_id, "a.txt", b"\x01\x02\x03")
    assert open_in_page(page, attachment_id) == b"\x01\x02\x03"


def test_the_item_editor_attaches_downloads_and_removes_a_file(
    new_page: Any, web_server: Any, page_errors: list, tmp_path: Path
) -> None:
    # GIVEN a synced vault with one item, open in the editor
    ui = new_page(accept_downloads=True)
    create_vault(ui, web_server)
    add_item(ui, "Passport", body="scan attached")
    enable_sync(ui, web_server)
    go(ui, "Vault", "Vault")
    ui.get_by_role("button", name="Edit Passport").click()
    expect(ui.get_by_text("No attachments.")).to_be_visible()
    # WHEN a file is chosen THEN it is listed with its size
    src = tmp_path / "scan.pdf"
    src.write_bytes(FILE)
    ui.get_by_label("Attach a file").set_input_files(str(src))
    said(ui, "Attached “scan.pdf”.", timeout=15_000)
    files = ui.get_by_role("list", name="Attachments")
    expect(files.get_by_text("scan.pdf", exact=True)).to_be_visible()
    expect(files.get_by_text("75.0 KiB")).to_be_visible()
    shot(ui, "attachments")
    # WHEN it is downloaded THEN the file saved is the very bytes attached
    with ui.expect_download() as download:
        ui.get_by_role("button", name="Download scan.pdf").click()
    assert download.value.suggested_filename == "scan.pdf"
    out = tmp_path / "out.pdf"
    download.value.save_as(out)
    assert out.read_bytes() == FILE
    # WHEN it is removed (after a confirmation) THEN the item lists none
    ui.get_by_role("button", name="Remove scan.pdf").click()
    ui.get_by_role("dialog").get_by_role("button", name="Remove").click()
    said(ui, "Removed “scan.pdf”.")
    expect(ui.get_by_text("No attachments.")).to_be_visible()
    assert page_errors == []


def test_a_blob_whose_deletion_failed_is_deleted_by_the_next_sync(
    page: Any, web_server: Any
) -> None:
    # GIVEN an attached file, and the server's DELETE of it failing (the network drops it)
    item_id = web_vault_with_item(page, web_server)
    attachment_id = attach_in_page(page, item_id, "scan.bin", FILE)
    assert object_key(web_server, attachment_id) is not None
    page.route(f"**/api/attachments/{attachment_id}", lambda route: route.abort())
    # WHEN the person removes it: the removal itself is done, the blob is still held
    page.evaluate("async (id) => nt2.removeAttachment(id)", attachment_id)
    assert object_key(web_server, attachment_id) is not None
    # THEN the next sync, with the network back, deletes the blob
    page.unroute(f"**/api/attachments/{attachment_id}")
    page.evaluate("async () => nt2.syncNow()")
    assert object_key(web_server, attachment_id) is None
