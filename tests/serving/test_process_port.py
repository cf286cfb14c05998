"""serving.process.start chooses the port again when the server finds it taken at start (seen
once in CI: BentoML's control socket and the chosen port collided); an explicit port is not
changed behind the caller's back."""

from __future__ import annotations

import pytest

import serving.process as process


def test_a_port_taken_at_start_is_chosen_again_unless_the_caller_gave_it(tmp_path, monkeypatch):
    calls = []

    def start_once(env, log, port, *rest):
        calls.append(port)
        if len(calls) < 3:
            raise process.PortTaken("the service exited: Address already in use")
        return "served"

    monkeypatch.setattr(process, "_start", start_once)
    assert process.start({}, tmp_path / "log") == "served"
    assert calls == [None, None, None]  # each attempt chose its own free port
    calls.clear()
    with pytest.raises(process.PortTaken):
        process.start({}, tmp_path / "log", port=8123)
    assert calls == [8123]
    calls.clear()
    monkeypatch.setattr(
        process, "_start", lambda *a: calls.append(1) or (_ for _ in ()).throw(process.PortTaken())
    )
    with pytest.raises(process.PortTaken):
        process.start({}, tmp_path / "log")
    assert len(calls) == 3  # bounded
