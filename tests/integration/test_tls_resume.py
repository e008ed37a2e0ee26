"""Each exec stream is a new TLS connection: the next one resumes the last one's session."""

from __future__ import annotations

import asyncio

from session_operator.kube import login, resuming


def test_a_new_connection_resumes_the_last_session(kubeconfig: str) -> None:
    # The fixture points KUBECONFIG at the control plane, which login() reads.
    asyncio.run(_resumes())


async def _resumes() -> None:
    info = login()
    host, port = info.server.split("//", 1)[1].rsplit(":", 1)
    loop = asyncio.get_running_loop()

    async def connect(context: object) -> bool:
        transport, _ = await loop.create_connection(
            asyncio.Protocol, host, int(port), ssl=context, server_hostname=host
        )
        tls = transport.get_extra_info("ssl_object")
        transport.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for _ in range(100):  # a TLS 1.3 ticket comes after the handshake: wait for it
            if tls.session is not None and tls.session.has_ticket:
                break
            await asyncio.sleep(0.01)
        transport.close()
        return bool(tls.session_reused)

    plain = info.as_ssl_context()
    assert [await connect(plain) for _ in range(3)] == [False, False, False]
    context = resuming(info.as_ssl_context())
    assert [await connect(context) for _ in range(3)] == [False, True, True]
