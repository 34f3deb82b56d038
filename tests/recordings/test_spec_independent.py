"""An independent reading of docs/recording-format.md: re-derive the chain, checkpoints,
manifest signature, key unwrap and record decryption with hashlib/struct/cryptography only
(no recordings.* code but the `export` it is compared with), and check they agree with the
package the writer produced."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import struct
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recordings.export import export_package
from tests.recordings.conftest import Keys


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def test_package_matches_the_written_spec(sealed: Path, keys: Keys, tmp_path: Path) -> None:
    info_raw = (sealed / "recording.json").read_bytes()
    info = json.loads(info_raw)
    rid = bytes.fromhex(info["recording_id"].replace("-", ""))
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(info["signing_key"]["ed25519"]))

    # key unwrap (§4.2) with the archive private key
    stanza = json.loads((sealed / "keys.json").read_bytes())["recipients"][0]
    eph = base64.b64decode(stanza["ephemeral_x25519"])
    archive_raw = keys.archive.public_key.raw
    shared = keys.archive._private.exchange(X25519PublicKey.from_public_bytes(eph))
    kek = _hkdf(shared, eph + archive_raw, b"cevr/v1/dek-wrap" + rid)
    dek = AESGCM(kek).decrypt(bytes(12), base64.b64decode(stanza["wrapped_dek"]), rid)
    assert hmac.new(dek, b"cevr/v1/dek-commit" + rid, "sha256").hexdigest() == info["dek_commit"]

    h = hashlib.sha256(b"cevr/v1/genesis\x00" + hashlib.sha256(info_raw).digest()).digest()
    heads = []
    media_plain = 0
    plain: dict[int, bytearray] = {}
    for seg in sorted((sealed / "segments").glob("*.cevr")):
        data = seg.read_bytes()
        header = data[:132]
        magic, version, suite, kind, seg_rid, index = struct.unpack_from(">4sHHB16sI", header)
        prefix, salt, _commit, prev = header[29:36], header[36:68], header[68:100], header[100:132]
        assert (magic, version, suite, kind, seg_rid) == (b"CEVR", 2, 1, 0, rid)
        assert prev == h
        h = hashlib.sha256(h + header).digest()
        key = _hkdf(dek, salt, b"cevr/v1/payload" + rid + struct.pack(">I", index))
        aead = AESGCM(key)
        pos = 132
        while pos < len(data):
            rh = data[pos : pos + 20]
            rtype, flags, sid, counter, _t, blen = struct.unpack(">BBHIqI", rh)
            body = data[pos + 20 : pos + 20 + blen]
            if rtype == 3:  # checkpoint: signature over context || payload, chain before it
                payload, sig = body[:-64], body[-64:]
                pub.verify(sig, b"cevr/v1/checkpoint\n" + payload)
                assert json.loads(payload)["chain"] == h.hex()
            if rtype in (2, 4):  # EVENT, STREAM (v2): JSON || tag of "" with the JSON in the AAD
                js, tag = body[:-16], body[-16:]
                nonce = prefix + struct.pack(">IB", counter, 0)
                aead.decrypt(nonce, tag, hashlib.sha256(header).digest() + rh + js)
                assert json.loads(js)["v"] == 1
            if rtype in (1, 5):
                nonce = prefix + struct.pack(">IB", counter, flags & 1)
                pt = aead.decrypt(nonce, body, hashlib.sha256(header).digest() + rh)
                media_plain += len(pt)
                if rtype == 1:
                    plain.setdefault(sid, bytearray()).extend(pt)
            h = hashlib.sha256(h + rh + hashlib.sha256(body).digest()).digest()
            pos += 20 + blen
        heads.append(h.hex())

    env = json.loads((sealed / "manifest.json").read_bytes())
    payload = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    pub.verify(base64.b64decode(env["signatures"][0]["sig"]), pae)
    manifest = json.loads(payload)
    assert manifest["root_hash"] == h.hex()
    assert [s["chain_head"] for s in manifest["segments"]] == heads
    assert media_plain > 100_000

    # §9: export remuxes, so compare per packet: the same packets as one's own decryption.
    mine = tmp_path / "mine.webm"
    mine.write_bytes(bytes(plain[1]))
    export_package(sealed, keys.archive, tmp_path / "out", trust_embedded_key=True)
    assert _streamhash(mine) == _streamhash(tmp_path / "out" / "p1.webm")


def _streamhash(path: Path) -> str:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg is required (Debian package ffmpeg)"
    args = [ffmpeg, "-v", "error", "-i", str(path), "-map", "0", "-c", "copy"]
    return subprocess.run(
        [*args, "-f", "streamhash", "-hash", "sha256", "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
