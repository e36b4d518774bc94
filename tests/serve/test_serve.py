"""`emolens serve`: the API through httpx against a real uvicorn on a loopback port, and the page in headless
Chromium driven by Playwright (photo upload, and the webcam fed a video of the sample portrait)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import ROOT, bomb_png, start_server

ASTRONAUT = ROOT / "samples" / "astronaut.png"
MAX_UPLOAD_MB = 1.0


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve") / "server.log"


@pytest.fixture(scope="module")
def server(server_log) -> Iterator[str]:
    process, url = start_server(server_log, "--max-upload-mb", str(MAX_UPLOAD_MB))
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def astronaut_bytes() -> bytes:
    return ASTRONAUT.read_bytes()


def test_health_and_model_card(server):
    health = httpx.get(f"{server}/v1/health").json()
    assert health["status"] == "ok" and health["model"] == "default"
    info = httpx.get(f"{server}/v1/model").json()
    assert "happy" in info["card"]["class_names"] and "training_state" not in info["card"]
    assert info["max_upload_bytes"] == MAX_UPLOAD_MB * 1_000_000 and info["colors"]["happy"].startswith("#")
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/predict"]["post"]


def test_predict_gives_what_predict_json_prints(server, astronaut_bytes):
    served = httpx.post(f"{server}/v1/predict", files={"file": ("astronaut.png", astronaut_bytes, "image/png")}).json()
    printed = subprocess.run(
        [sys.executable, "-m", "emolens", "predict", str(ASTRONAUT), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(printed.stdout)
    # Everything but the timings, which are the serving process's own.
    assert set(served.pop("speed")) == set(expected.pop("speed")) == {"decode", "detect", "classify"}
    assert served == {**expected, "source": "astronaut.png"}
    assert [face["emotion"] for face in served["faces"]] == ["happy"]


def test_a_raw_body_works_too(server, astronaut_bytes):
    answer = httpx.post(f"{server}/v1/predict", content=astronaut_bytes, headers={"Content-Type": "image/png"})
    assert answer.status_code == 200 and answer.json()["source"] == "upload" and len(answer.json()["faces"]) == 1


def test_a_client_file_name_is_only_echoed(server, astronaut_bytes):
    answer = httpx.post(f"{server}/v1/predict", files={"file": ("../../etc/passwd", astronaut_bytes, "image/png")})
    assert answer.status_code == 200 and answer.json()["source"] == "passwd" and answer.json()["faces"]


@pytest.mark.parametrize(
    ("send", "status", "words"),
    [
        ({"files": {"file": ("notes.txt", b"hello, not an image", "text/plain")}}, 415, "not an image"),
        ({"content": b"\x89PNG\r\n\x1a\n truncated"}, 415, "not an image"),
        # EPS is decoded by running Ghostscript: outside the allowlist, whatever the upload's name says.
        (
            {
                "files": {
                    "file": (
                        "photo.jpg",
                        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 48 48\nshowpage\n",
                        "image/jpeg",
                    )
                }
            },
            415,
            "not an image format emolens reads",
        ),
        ({"content": bomb_png()}, 413, "too large"),
        ({"content": b"\0" * int(MAX_UPLOAD_MB * 1_000_000 + 1)}, 413, "limit"),
        ({"content": b""}, 400, "no image"),
        ({"files": {"name": (None, "no file here")}}, 400, "no file"),
    ],
    ids=["text-file", "truncated", "eps", "bomb", "too-big", "empty", "form-without-file"],
)
def test_bad_uploads_get_a_json_error(server, send, status, words):
    answer = httpx.post(f"{server}/v1/predict", **send)
    assert answer.status_code == status and words in answer.json()["error"]


def test_an_upload_without_content_length_is_capped_too(server):
    def chunks():  # a generator body goes out chunked, with no Content-Length to check up front
        for _ in range(30):
            yield b"\0" * 50_000

    answer = httpx.post(f"{server}/v1/predict", content=chunks())
    assert answer.status_code == 413


def test_a_client_that_disconnects_does_not_disturb_others(server, server_log, astronaut_bytes):
    port = int(server.rsplit(":", 1)[1])
    for _ in range(5):  # promise a big body, send a little, hang up
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 900000\r\n\r\n"
            )
            raw.sendall(astronaut_bytes[:1000])
    answers: list[int] = []

    def ask() -> None:
        answers.append(httpx.post(f"{server}/v1/predict", content=astronaut_bytes, timeout=60).status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8 and httpx.get(f"{server}/v1/health").status_code == 200
    assert "Traceback" not in server_log.read_text()


def test_other_errors_are_json_too(server, astronaut_bytes):
    assert httpx.get(f"{server}/v1/nothing").json() == {"error": "Not Found"}
    assert httpx.get(f"{server}/v1/predict").status_code == 405 and "error" in httpx.get(f"{server}/v1/predict").json()
    # Media types are case-insensitive.
    request = httpx.Request("POST", f"{server}/v1/predict", files={"file": ("a.png", astronaut_bytes, "image/png")})
    body = request.read()
    headers = {"Content-Type": request.headers["Content-Type"].replace("multipart/form-data", "Multipart/Form-Data")}
    assert httpx.post(f"{server}/v1/predict", content=body, headers=headers).json()["source"] == "a.png"


def test_the_docs_can_send_an_image(server):
    body = httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"]
    assert set(body["content"]) == {"multipart/form-data", "image/*"}


@pytest.mark.parametrize("args", [["--workers", "2"], ["--host", "::1"]], ids=["two-workers", "ipv6-loopback"])
def test_other_ways_to_serve(args, tmp_path, astronaut_bytes):
    host = args[1] if args[0] == "--host" else "127.0.0.1"
    if host == "::1":
        try:
            socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        except OSError:
            pytest.skip("no IPv6 loopback here")
    process, url = start_server(tmp_path / "server.log", *([] if args[0] == "--host" else args), host=host)
    try:
        answer = httpx.post(f"{url}/v1/predict", content=astronaut_bytes, timeout=60)
        assert answer.status_code == 200 and answer.json()["faces"][0]["emotion"] == "happy"
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_it_listens_on_loopback_only_by_default(server):
    addresses = (
        subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        if shutil.which("hostname")
        else []
    )
    outside = [a for a in addresses if ":" not in a and not a.startswith("127.")]
    if not outside:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection((outside[0], port), timeout=2).close()


@pytest.mark.parametrize(
    ("args", "words"), [(["--max-upload-mb", "nan"], "positive number"), (["--port", "70000"], "between 0 and 65535")]
)
def test_bad_settings_are_one_line_errors(args, words):
    result = subprocess.run(
        [sys.executable, "-m", "emolens", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
    assert "serves on" not in result.stderr + result.stdout


def test_a_port_in_use_is_a_one_line_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "emolens", "serve", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2 and "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def test_the_app_loads_the_onnx_model_without_tensorflow():
    code = (
        "import sys; from emolens.serve.app import create_app; create_app(); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- the page, in a real browser --------------------------------------------------------------------------------


@pytest.fixture
def page(browser, server):
    context = browser.new_context()
    context.grant_permissions(["camera"], origin=server)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=yes]", timeout=20_000)
    yield page, requested
    context.close()


def test_the_page_shows_the_emotion_of_an_uploaded_photo(page, server):
    page, requested = page
    page.set_input_files("#file", str(ASTRONAUT))
    page.wait_for_selector(".face .emotion", timeout=20_000)
    assert page.inner_text(".face .emotion") == "happy"
    assert page.get_attribute("#photo", "data-labels") == "happy"
    assert page.is_visible("#photo") and "1 face(s) in astronaut.png" in page.inner_text("#status")
    classes = httpx.get(f"{server}/v1/model").json()["card"]["class_names"]
    assert len(page.query_selector_all(".face .bar")) == len(classes)
    # The top bar is drawn as long as its probability says (the server's own answer for this photo).
    confidence = httpx.post(server + "/v1/predict", content=ASTRONAUT.read_bytes()).json()["faces"][0]["confidence"]
    share = page.evaluate(
        "(() => { const bar = document.querySelector('.face .bar'); "
        "return bar.querySelector('.fill').offsetWidth / bar.querySelector('.track').offsetWidth; })()"
    )
    assert share == pytest.approx(confidence, abs=0.03)
    assert all(url.startswith(server) for url in requested), "the page fetched something from elsewhere"
    assert page.inner_text("#model") == "model: default (mini_resnet), detector: yunet (faces from 40 px)"


def test_a_format_the_browser_cannot_show_still_gets_its_results(page, tmp_path):
    page, _ = page
    Image.open(ASTRONAUT).save(tmp_path / "astronaut.tiff")
    page.set_input_files("#file", str(tmp_path / "astronaut.tiff"))
    page.wait_for_selector(".face .emotion", timeout=20_000)
    assert page.inner_text(".face .emotion") == "happy" and not page.is_visible("#photo")
    assert "cannot show this format" in page.inner_text("#status")


def test_the_page_says_what_went_wrong(page, tmp_path):
    page, _ = page
    (tmp_path / "notes.png").write_bytes(b"not really a picture")
    page.set_input_files("#file", str(tmp_path / "notes.png"))
    page.wait_for_selector("#status.error", timeout=20_000)
    assert "not an image" in page.inner_text("#status")


def test_the_webcam_gets_live_labels(page):
    page, requested = page
    page.click("#camera")
    page.wait_for_function("document.querySelector('#overlay').dataset.labels === 'happy'", timeout=30_000)
    page.wait_for_timeout(1500)  # (a plain sleep would not let Playwright record the requests)
    frames = sum(url.endswith("/v1/predict") for url in requested)
    assert frames >= 3, f"only {frames} frames sent"
    page.click("#camera")
    assert "Camera off" in page.inner_text("#status")
