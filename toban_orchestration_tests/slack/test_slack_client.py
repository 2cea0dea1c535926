"""The Slack client's transport: slack-sdk's own WebClient (a connection of its own for each
call), checked against the local Slack server through the real slack-sdk code."""

import ipaddress
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.error import URLError

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from toban_orchestration.slack.client import ClientOptions, SlackApi, SlackError
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, Fault, generate_workspace

TOKEN = "xoxb-client-test"


@pytest.fixture
def server() -> Iterator[FakeSlackServer]:
    with FakeSlackServer(generate_workspace(3), TOKEN, idle_timeout=0.3) as server:
        yield server
        assert server.internal_errors == []


def _api(server: FakeSlackServer, max_retries: int = 5) -> SlackApi:
    return SlackApi(
        TOKEN,
        ClientOptions(
            base_url=server.base_url,
            pacing=False,
            max_retries=max_retries,
            retry_backoff_seconds=0.01,
        ),
    )


def test_one_client_serves_several_threads_one_connection_a_call(
    server: FakeSlackServer,
) -> None:
    with _api(server) as api:
        pages = [list(api.paginate("users.list", "members")) for _ in range(5)]
        assert all(page == pages[0] for page in pages)
        assert api.stats.total_calls >= 5

        def team(_: int) -> str:
            return str(api.call("team.info")["team"]["id"])

        with ThreadPoolExecutor(max_workers=3) as pool:
            assert len(set(pool.map(team, range(30)))) == 1
        # slack-sdk's urllib transport opens and closes a connection for each call
        assert server.connections_accepted == api.stats.total_calls
        assert api.stats.total_retries == 0


def test_a_call_after_the_servers_idle_timeout_needs_no_retry(
    server: FakeSlackServer,
) -> None:
    with _api(server) as api:
        first = api.call("team.info")
        time.sleep(0.6)  # past the server's idle timeout
        assert api.call("team.info") == first
        assert server.connections_accepted == 2
        assert api.stats.total_retries == 0


def test_a_dropped_answer_is_retried_by_slack_sdk(
    server: FakeSlackServer,
) -> None:
    with _api(server) as api:
        first = api.call("team.info")
        server.inject("team.info", Fault.drop())
        assert api.call("team.info") == first
        assert api.stats.retries["connection_error"] == 1


def test_http_errors_keep_slack_sdk_retry_semantics(server: FakeSlackServer) -> None:
    with _api(server, max_retries=2) as api:
        server.inject("team.info", Fault.rate_limited(retry_after=0))
        server.inject("users.list", Fault.server_error(status=503))
        api.call("team.info")
        list(api.paginate("users.list", "members"))
        assert api.stats.retries == {"rate_limited": 1, "server_error": 1}
        server.inject("team.info", Fault.server_error(status=500), times=3)
        with pytest.raises(SlackError, match=r"team\.info failed: internal_error"):
            api.call("team.info")
        assert api.call("team.info")["ok"] is True  # the client is usable afterwards


def test_a_closed_client_still_works_if_used_again(server: FakeSlackServer) -> None:
    api = _api(server)
    api.call("team.info")
    api.close()
    try:
        assert api.call("team.info")["ok"] is True
        assert server.connections_accepted == 2
    finally:
        api.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "toban-test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_verifies_the_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    with FakeSlackServer(generate_workspace(3), TOKEN, tls=tls) as server:
        assert server.base_url.startswith("https://")
        # Not trusted: the handshake fails (no retry: the certificate will not change).
        with _api(server, max_retries=0) as api, pytest.raises(URLError, match="CERTIFICATE"):
            api.call("team.info")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted, as a system CA would be
        accepted = server.connections_accepted
        with _api(server) as api:
            for _ in range(5):
                assert api.call("team.info")["ok"] is True
            assert server.connections_accepted == accepted + 5
        assert server.internal_errors == []


def test_a_long_retry_after_on_history_is_taken_as_slacks_2025_limits() -> None:
    """A 429 asking to wait about a minute on conversations.history is the 1-a-minute limit of
    non-Marketplace apps: the client waits it out, and paces history a minute apart after."""
    workspace = generate_workspace(seed=3, days=1)
    channel = workspace.channels[0].id
    with FakeSlackServer(workspace) as server:
        api = SlackApi(
            "xoxb-fake-token",
            ClientOptions(base_url=server.base_url, pacing=False, retry_backoff_seconds=0.01),
        )
        with api:
            api.call("conversations.history", channel=channel, limit=5)
            assert not api.limited_detected
            server.inject("conversations.history", Fault.rate_limited(retry_after=21))
            began = time.monotonic()
            api.call("conversations.history", channel=channel, limit=5)
            assert time.monotonic() - began >= 21  # slack-sdk waited Retry-After
            assert api.limited_detected
            assert api.stats.retries["rate_limited"] == 1
            # a short Retry-After elsewhere is a burst, not the limit
            server.inject("users.list", Fault.rate_limited(retry_after=1))
            api.call("users.list", limit=5)
