"""push_to_gcs / pull_from_gcs through the real google-cloud-storage client, on the GCS emulator."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from google.cloud import storage

from gcs_emulator import gcs, gcs_emulator
from skyrun.deploy.steps import StepError, run_steps
from skyrun.deploy.steps.gcs import pull_from_gcs, push_to_gcs

__all__ = ["gcs", "gcs_emulator"]  # fixtures used by name

BINARY = bytes(range(256)) * 4
# What google-auth puts in a service account's token request, wherever token_uri points.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@pytest.fixture
def bucket(gcs: storage.Client) -> str:
    name = f"skyrun-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / "flow.py").write_text("def main():\n    return 1\n")
    (root / "pkg" / "data.bin").write_bytes(BINARY)
    (root / "run.log").write_text("noise")
    (root / ".venv" / "lib" / "x.py").write_text("")
    (root / ".skyrunignore").write_text("# not shipped\n*.log\n.venv/\n")
    return root


def names(gcs: storage.Client, bucket: str) -> set[str]:
    return {blob.name for blob in gcs.list_blobs(bucket)}


def files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def test_a_project_goes_up_without_ignored_files_and_comes_back_whole(
    gcs: storage.Client, bucket: str, project: Path, tmp_path: Path
) -> None:
    outputs = run_steps(
        [
            {
                "push_to_gcs": {
                    "id": "push",
                    "bucket": bucket,
                    "folder": "weather",
                    "directory": str(project),
                }
            },
            {
                "pull_from_gcs": {
                    "bucket": "{{ push.bucket }}",
                    "folder": "{{ push.folder }}",
                    "directory": str(tmp_path / "run" / "code"),
                }
            },
        ],
        section="build",
    )
    assert outputs[0] == {"bucket": bucket, "folder": "weather"}
    assert outputs[1] == {
        "bucket": bucket,
        "folder": "weather",
        "directory": str(tmp_path / "run" / "code"),
    }
    assert names(gcs, bucket) == {
        "weather/flow.py",
        "weather/pkg/data.bin",
        "weather/.skyrunignore",
    }
    assert files(tmp_path / "run" / "code") == {
        "flow.py": b"def main():\n    return 1\n",
        "pkg/data.bin": BINARY,
        ".skyrunignore": b"# not shipped\n*.log\n.venv/\n",
    }


def test_no_folder_is_the_bucket_root_and_slashes_do_not_matter(
    gcs: storage.Client, bucket: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    push_to_gcs(bucket)
    assert names(gcs, bucket) == {"flow.py", "pkg/data.bin", ".skyrunignore"}
    push_to_gcs(bucket, folder="/a/b/")
    assert "a/b/pkg/data.bin" in names(gcs, bucket)
    outputs = pull_from_gcs(bucket, folder="a/b", directory=str(tmp_path / "ab"))
    assert set(files(Path(outputs["directory"]))) == {"flow.py", "pkg/data.bin", ".skyrunignore"}


def test_a_pull_takes_only_its_folder(
    gcs: storage.Client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = gcs.bucket(bucket)
    target.blob("app/flow.py").upload_from_string("mine")
    target.blob("app2/flow.py").upload_from_string("other")
    target.blob("app/empty/").upload_from_string("")  # a folder placeholder
    monkeypatch.chdir(tmp_path)
    outputs = pull_from_gcs(bucket, folder="app")
    assert outputs["directory"] == str(tmp_path)
    assert files(tmp_path) == {"flow.py": b"mine"}


def test_a_missing_bucket_is_named(gcs: storage.Client, project: Path) -> None:
    with pytest.raises(StepError) as info:
        run_steps([{"push_to_gcs": {"bucket": "skyrun-no-such-bucket", "directory": str(project)}}])
    assert str(info.value) == (
        "pull step 1 (push_to_gcs): bucket 'skyrun-no-such-bucket' does not exist; "
        "create it or fix `bucket:`"
    )
    with pytest.raises(StepError, match=r"^bucket 'skyrun-no-such-bucket' does not exist"):
        pull_from_gcs("skyrun-no-such-bucket")


def test_an_empty_folder_is_explained(gcs: storage.Client, bucket: str) -> None:
    with pytest.raises(StepError, match=rf"no objects under gs://{bucket}/nothing/; check"):
        pull_from_gcs(bucket, folder="nothing")


def test_a_bad_ignore_line_names_file_and_line(
    gcs: storage.Client, bucket: str, project: Path
) -> None:
    (project / ".skyrunignore").write_text("*.log\nbad\\\n")
    with pytest.raises(StepError, match=r"\.skyrunignore:2: "):
        push_to_gcs(bucket, directory=str(project))
    assert names(gcs, bucket) == set()


def test_unusable_credentials_are_explained(gcs: storage.Client, bucket: str) -> None:
    with pytest.raises(StepError, match=r"`credentials:` is not a service account key"):
        pull_from_gcs(bucket, credentials={"type": "service_account"})


def test_a_missing_directory_is_named(gcs: storage.Client, bucket: str) -> None:
    with pytest.raises(StepError, match=r"directory '/no/such/project' does not exist"):
        push_to_gcs(bucket, directory="/no/such/project")


class _TokenHandler(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint as a service account key's `token_uri` sees it."""

    server: _TokenServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        assertion = parse_qs(body)["assertion"][0]
        self.server.claims.append(
            jwt.decode(
                assertion, certs=self.server.public_key, verify=True, audience=GOOGLE_TOKEN_AUDIENCE
            )
        )
        reply = json.dumps({"access_token": "token-1", "expires_in": 3600, "token_type": "Bearer"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())


class _TokenServer(ThreadingHTTPServer):
    def __init__(self, public_key: str) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.public_key = public_key
        self.url = f"http://127.0.0.1:{self.server_address[1]}/token"
        self.claims: list[dict[str, object]] = []


def test_a_service_account_key_signs_the_token_request(
    gcs: storage.Client, bucket: str, project: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    server = _TokenServer(public_pem)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        credentials = {
            "type": "service_account",
            "project_id": "skyrun-test",
            "private_key_id": "k1",
            "private_key": private_pem,
            "client_email": "deployer@skyrun-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": server.url,
        }
        push_to_gcs(bucket, folder="signed", credentials=credentials, directory=str(project))
    finally:
        server.shutdown()
        server.server_close()
    assert "signed/flow.py" in names(gcs, bucket)
    assert server.claims  # the key was used: each request for a token was signed with it
    assert {claims["iss"] for claims in server.claims} == {credentials["client_email"]}
