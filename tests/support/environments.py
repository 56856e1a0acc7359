"""Keys and request bodies for the 0.171 environment registry tests (the sans-IO registry and
its routes over loopback): two tenants' credentials, a fresh Noise public key, a key's JSON
with fields overridden, a register body, and a websocket-URL minter for a role."""

from __future__ import annotations

import json
import os
from typing import Any

from twisted_exec.rendezvous.environments import SECURITY_PROFILE, NoisePublicKey

ALICE = "cred-alice"
BOB = "cred-bob"


def newKey() -> NoisePublicKey:
    return NoisePublicKey(os.urandom(32), os.urandom(1184))


def keyJson(key: NoisePublicKey | None = None, **override: Any) -> dict[str, Any]:
    value: dict[str, Any] = (key or newKey()).toJson()
    value.update(override)
    return value


def registerBody(key: NoisePublicKey, **override: Any) -> bytes:
    body: dict[str, Any] = {
        "security_profile": SECURITY_PROFILE,
        "executor_public_key": key.toJson(),
    }
    body.update(override)
    return json.dumps(body).encode()


def mint(role: str) -> Any:
    return lambda env, reg: f"ws://rdv/ws/environment/{env}?role={role}&reg={reg}"
