#!/usr/bin/env python3
"""Generates the committed seed corpus in fuzz/corpus/<target>/.

Seeds are derived deterministically from vectors/peer-signed/peer-signed.json (headers,
decoded envelope JSON, mandates, receipts, signature/key/message byte layouts), from native
envelopes and receipts this script signs itself (pure-Python Ed25519, secp256k1 with RFC 6979
and Keccak-256, so nothing needs installing), and from a few hand-picked edge inputs.

Each file is named by the SHA-1 of its content (libFuzzer's own naming), so regenerating gives
no diff, and files the fuzzer adds never collide with seeds.

    python3 fuzz/seeds.py          # rewrite fuzz/corpus/ (removes files that are not seeds)
    python3 fuzz/seeds.py --check  # exit 1 if fuzz/corpus/ differs from what would be written

The domains used for native seeds are the fuzz verifiers' domains in
crates/aep2/src/fuzzing.rs (FUZZ_CHAIN_ID, FUZZ_VERIFYING_CONTRACT, FUZZ_NETWORK,
FUZZ_WALLET_LABEL); keep the two in step.
"""

import base64
import hashlib
import hmac
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
FIXTURES = os.path.join(ROOT, "vectors", "peer-signed", "peer-signed.json")
TARGETS = [
    "header_decode",
    "mandate_json",
    "verify_eip712",
    "verify_ed25519",
    "receipt_json",
    "x402_request",
    "a2a_message",
    "mcp_tool_call",
]
VECTORS = os.path.join(ROOT, "vectors")

# Must match crates/aep2/src/fuzzing.rs.
FUZZ_CHAIN_ID = 84532
FUZZ_VERIFYING_CONTRACT = "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"
FUZZ_NETWORK = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
FUZZ_WALLET_LABEL = b"aep2/fuzz/wallet"


def sha256(b):
    return hashlib.sha256(b).digest()


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(b):
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    pad = len(b) - len(b.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(s):
    n = 0
    for c in s:
        n = n * 58 + B58.index(c)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\0" * pad + body


def hex0x(b):
    return "0x" + b.hex()


def unhex0x(s):
    assert s.startswith("0x")
    return bytes.fromhex(s[2:])


def compact(obj):
    """ECMAScript JSON.stringify: compact, insertion order, literal UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def jcs(obj):
    """RFC 8785 for the objects used here (ASCII keys, safe integers, strings)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def header(obj):
    return base64.b64encode(compact(obj).encode()).decode()


# --------------------------------------------------------------------------------------
# Keccak-256 (Ethereum's, with the original 0x01 padding)
# --------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1


def _rol(a, n):
    n %= 64
    return ((a << n) | (a >> (64 - n))) & MASK64


def _keccak_f(lanes):
    r = 1
    for _ in range(24):
        c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        d = [c[(x + 4) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        lanes = [[lanes[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        x, y = 1, 0
        cur = lanes[x][y]
        for t in range(24):
            x, y = y, (2 * x + 3 * y) % 5
            cur, lanes[x][y] = lanes[x][y], _rol(cur, (t + 1) * (t + 2) // 2)
        for y in range(5):
            t = [lanes[x][y] for x in range(5)]
            for x in range(5):
                lanes[x][y] = t[x] ^ ((~t[(x + 1) % 5]) & t[(x + 2) % 5])
        for j in range(7):
            r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256
            if r & 2:
                lanes[0][0] ^= 1 << ((1 << j) - 1)
    return lanes


def keccak256(data):
    rate = 136
    msg = bytearray(data) + b"\x01"
    while len(msg) % rate:
        msg += b"\0"
    msg[-1] |= 0x80
    state = bytearray(200)
    for off in range(0, len(msg), rate):
        for i in range(rate):
            state[i] ^= msg[off + i]
        lanes = [[int.from_bytes(state[8 * (x + 5 * y) : 8 * (x + 5 * y) + 8], "little") for y in range(5)] for x in range(5)]
        lanes = _keccak_f(lanes)
        for x in range(5):
            for y in range(5):
                state[8 * (x + 5 * y) : 8 * (x + 5 * y) + 8] = lanes[x][y].to_bytes(8, "little")
    return bytes(state[:32])


# --------------------------------------------------------------------------------------
# secp256k1: RFC 6979 signing (what ethers does), v in {27, 28}, low s
# --------------------------------------------------------------------------------------

SP = 2**256 - 2**32 - 977
SN = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SG = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def _sadd(p, q):
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % SP == 0:
        return None
    if p == q:
        lam = 3 * p[0] * p[0] * pow(2 * p[1], SP - 2, SP) % SP
    else:
        lam = (q[1] - p[1]) * pow(q[0] - p[0], SP - 2, SP) % SP
    x = (lam * lam - p[0] - q[0]) % SP
    return (x, (lam * (p[0] - x) - p[1]) % SP)


def _smul(k, p):
    acc = None
    while k:
        if k & 1:
            acc = _sadd(acc, p)
        p = _sadd(p, p)
        k >>= 1
    return acc


def eth_address(key):
    pub = _smul(key, SG)
    return keccak256(pub[0].to_bytes(32, "big") + pub[1].to_bytes(32, "big"))[12:]


def checksum(addr):
    low = addr.hex()
    h = keccak256(low.encode()).hex()
    return "0x" + "".join(c.upper() if int(h[i], 16) >= 8 else c for i, c in enumerate(low))


def secp_sign(key, digest):
    xb = key.to_bytes(32, "big")
    hb = (int.from_bytes(digest, "big") % SN).to_bytes(32, "big")
    mac = lambda k, m: hmac.new(k, m, hashlib.sha256).digest()  # noqa: E731
    v, k = b"\x01" * 32, b"\x00" * 32
    k = mac(k, v + b"\x00" + xb + hb)
    v = mac(k, v)
    k = mac(k, v + b"\x01" + xb + hb)
    v = mac(k, v)
    while True:
        v = mac(k, v)
        nonce = int.from_bytes(v, "big")
        if 1 <= nonce < SN:
            pt = _smul(nonce, SG)
            r = pt[0] % SN
            s = pow(nonce, SN - 2, SN) * (int.from_bytes(digest, "big") + r * key) % SN
            if r and s:
                odd = pt[1] & 1
                if s > SN // 2:
                    s, odd = SN - s, odd ^ 1
                return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + odd])
        k = mac(k, v + b"\x00")
        v = mac(k, v)


def word(n):
    return n.to_bytes(32, "big")


def addr_word(text):
    return b"\0" * 12 + unhex0x(text)


DOMAIN_TYPEHASH = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
MANDATE_TYPEHASH = keccak256(
    b"Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)"
)
RECEIPT_TYPEHASH = keccak256(b"Receipt(address sp,bytes32 mandateDigest,uint256 enqueueDeadline)")


def domain_separator(name, chain_id, contract):
    return keccak256(DOMAIN_TYPEHASH + keccak256(name) + keccak256(b"1") + word(chain_id) + addr_word(contract))


def eip712_mandate_digest(m, chain_id, contract):
    struct = keccak256(
        MANDATE_TYPEHASH
        + addr_word(m["owner"])
        + addr_word(m["token"])
        + addr_word(m["payee"])
        + word(int(m["amount"]))
        + word(int(m["nonce"]))
        + word(m["deadline"])
        + unhex0x(m["ref"])
    )
    return keccak256(b"\x19\x01" + domain_separator(b"AEP2DebitWallet", chain_id, contract) + struct)


def eip712_receipt_digest(sp, mandate_digest, enqueue_deadline, chain_id, contract):
    struct = keccak256(RECEIPT_TYPEHASH + addr_word(sp) + mandate_digest + word(enqueue_deadline))
    return keccak256(b"\x19\x01" + domain_separator(b"AEP2SettlementProcessor", chain_id, contract) + struct)


def personal_sign_hash(msg):
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(msg)).encode() + msg)


# --------------------------------------------------------------------------------------
# Ed25519 (RFC 8032 section 6 reference code)
# --------------------------------------------------------------------------------------

EP = 2**255 - 19
EL = 2**252 + 27742317777372353535851937790883648493
ED = -121665 * pow(121666, EP - 2, EP) % EP
SQRT_M1 = pow(2, (EP - 1) // 4, EP)


def _eadd(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % EP
    b = (p[1] + p[0]) * (q[1] + q[0]) % EP
    c = 2 * p[3] * q[3] * ED % EP
    d = 2 * p[2] * q[2] % EP
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % EP, g * h % EP, f * g % EP, e * h % EP)


def _emul(s, p):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _eadd(q, p)
        p = _eadd(p, p)
        s >>= 1
    return q


def _recover_x(y, sign):
    if y >= EP:
        return None
    x2 = (y * y - 1) * pow(ED * y * y + 1, EP - 2, EP)
    if x2 % EP == 0:
        return None if sign else 0
    x = pow(x2, (EP + 3) // 8, EP)
    if (x * x - x2) % EP:
        x = x * SQRT_M1 % EP
    if (x * x - x2) % EP:
        return None
    if (x & 1) != sign:
        x = EP - x
    return x


_GY = 4 * pow(5, EP - 2, EP) % EP
_GX = _recover_x(_GY, 0)
EG = (_GX, _GY, 1, _GX * _GY % EP)


def ecompress(p):
    zinv = pow(p[2], EP - 2, EP)
    x, y = p[0] * zinv % EP, p[1] * zinv % EP
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def edecompress(b):
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % EP)


def _expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed_public(seed):
    return ecompress(_emul(_expand(seed)[0], EG))


def ed_sign(seed, msg):
    a, prefix = _expand(seed)
    pub = ecompress(_emul(a, EG))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % EL
    rb = ecompress(_emul(r, EG))
    k = int.from_bytes(hashlib.sha512(rb + pub + msg).digest(), "little") % EL
    return rb + ((r + k * a) % EL).to_bytes(32, "little")


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------

MANDATE_TAG = b"AEP2/ed25519/mandate/v1\0"
RECEIPT_TAG = b"AEP2/ed25519/receipt/v1\0"
FUZZ_WALLET = b58encode(sha256(FUZZ_WALLET_LABEL))
FUZZ_ED_DOMAIN = {"network": FUZZ_NETWORK, "wallet": FUZZ_WALLET}
SP_SEED = sha256(b"aep2/fuzz/sp")
SP_SECP_KEY = int.from_bytes(sha256(b"aep2/fuzz/sp-secp256k1"), "big")


def ed_native_envelope(seed, base, domain, ref_label):
    """A native ed25519 envelope for the mandate `base` re-keyed to `seed`, signed for `domain`."""
    m = {
        "payer": b58encode(ed_public(seed)),
        "token": base["token"],
        "payee": base["payee"],
        "amount": base["amount"],
        "nonce": base["nonce"],
        "deadline": base["deadline"],
        "ref": hex0x(sha256(ref_label.encode())),
    }
    msg = MANDATE_TAG + jcs({"domain": domain, "mandate": m}).encode()
    env = {"aep2": 1, "profile": "ed25519", "domain": domain, "mandate": m, "signature": b58encode(ed_sign(seed, msg))}
    return env, msg


def ed_native_receipt(domain, mandate_id, enqueue_deadline):
    body = {"sp": b58encode(ed_public(SP_SEED)), "mandateDigest": hex0x(mandate_id), "enqueueDeadline": enqueue_deadline}
    msg = RECEIPT_TAG + jcs({"domain": domain, "receipt": body}).encode()
    sig = ed_sign(SP_SEED, msg)
    r = {"aep2": 1, "kind": "receipt", "profile": "ed25519", "domain": domain}
    r.update(body)
    r["signature"] = b58encode(sig)
    return r, msg, sig


def evm_native_receipt(domain, mandate_digest, enqueue_deadline):
    sp = checksum(eth_address(SP_SECP_KEY))
    digest = eip712_receipt_digest(sp, mandate_digest, enqueue_deadline, domain["chainId"], domain["verifyingContract"])
    sig = secp_sign(SP_SECP_KEY, digest)
    r = {
        "aep2": 1,
        "kind": "receipt",
        "profile": "eip712",
        "domain": domain,
        "sp": sp,
        "mandateDigest": hex0x(mandate_digest),
        "enqueueDeadline": enqueue_deadline,
        "signature": hex0x(sig),
    }
    return r, digest, sig


def build():
    fx = json.load(open(FIXTURES, encoding="utf-8"))
    seeds = {t: [] for t in TARGETS}

    def add(target, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        seeds[target].append(bytes(data))

    def add_envelope(obj):
        text = compact(obj)
        add("header_decode", header(obj))
        add("header_decode", text)
        add("mandate_json", text)

    # Self-checks: the pure-Python primitives reproduce the peer libraries' bytes.
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    for case in fx["evm"]:
        if "signerPrivateKey" in case:
            key = int(case["signerPrivateKey"], 16)
            digest = eip712_mandate_digest(case["mandate"], case["chainId"], case["verifyingContract"])
            assert hex0x(digest) == case["digest"], case["id"]
            assert hex0x(secp_sign(key, digest)) == case["payerSig"].lower(), case["id"]
            assert checksum(eth_address(key)) == case["signer"], case["id"]
    for case in fx["solana"]:
        if "signerSeedHex" in case:
            seed = unhex0x(case["signerSeedHex"])
            assert b58encode(ed_public(seed)) == case["mandate"]["payer"], case["id"]
            assert b58encode(ed_sign(seed, case["signedBytesUtf8"].encode())) == case["payerSig"], case["id"]
            assert b58decode(b58encode(seed)) == seed

    evm_domain = {"chainId": FUZZ_CHAIN_ID, "verifyingContract": FUZZ_VERIFYING_CONTRACT}

    # --- EVM fixtures -------------------------------------------------------------------
    for case in fx["evm"]:
        add("header_decode", case["header"])
        decoded = base64.b64decode(case["header"])
        add("header_decode", decoded)
        add("mandate_json", decoded)
        add("mandate_json", compact(case["mandate"]))
        domain = {"chainId": case["chainId"], "verifyingContract": case["verifyingContract"]}
        add("mandate_json", compact(domain))
        # The EIP-712 digest does not depend on the envelope form, so the MVP signature is
        # also the native envelope's signature.
        add_envelope({"aep2": 1, "profile": "eip712", "domain": domain, "mandate": case["mandate"], "signature": case["payerSig"]})
        sig = unhex0x(case["payerSig"])
        if "digest" in case:
            digest = unhex0x(case["digest"])
            key = unhex0x(case["signerPrivateKey"])
            add("verify_eip712", sig + digest + key)
            add("verify_eip712", sig + digest)
            add("verify_eip712", case["payerSig"])
        if "receipt" in case:
            rc = case["receipt"]
            add("receipt_json", compact(rc))
            commitment = keccak256(unhex0x(rc["mandateDigest"]) + word(rc["enqueueDeadline"]))
            add("verify_eip712", unhex0x(rc["spEnqueueSig"]) + personal_sign_hash(commitment) + commitment)

    valid_evm = [c for c in fx["evm"] if c["expect"] == "valid"]
    first = valid_evm[0]
    m0 = first["mandate"]
    key0 = int(first["signerPrivateKey"], 16)

    # Native eip712 envelope signed for another chain: a valid signature for the claimed
    # domain, which is not the verifier's (domain_mismatch).
    other = {"chainId": 8453, "verifyingContract": FUZZ_VERIFYING_CONTRACT}
    sig_other = secp_sign(key0, eip712_mandate_digest(m0, other["chainId"], other["verifyingContract"]))
    add_envelope({"aep2": 1, "profile": "eip712", "domain": other, "mandate": m0, "signature": hex0x(sig_other)})
    # A mandate with the largest amount and nonce, all-lowercase and all-uppercase addresses.
    big = dict(m0, amount=str(2**256 - 1), nonce=str(2**256 - 1), deadline=2**53 - 1)
    big["owner"] = big["owner"].lower()
    big["payee"] = "0x" + big["payee"][2:].upper()
    big_sig = secp_sign(key0, eip712_mandate_digest(big, FUZZ_CHAIN_ID, FUZZ_VERIFYING_CONTRACT))
    add_envelope({"mandate": big, "payerSig": hex0x(big_sig).upper().replace("0X", "0x")})
    # Native eip712 receipt for the first valid mandate, with and without the deadline rule.
    d0 = unhex0x(first["digest"])
    for deadline in (m0["deadline"], m0["deadline"] + 10800):
        r, digest, sig = evm_native_receipt(evm_domain, d0, deadline)
        add("receipt_json", compact(r))
        add("verify_eip712", sig + digest)

    # --- Solana fixtures ----------------------------------------------------------------
    for case in fx["solana"]:
        add("header_decode", case["header"])
        decoded = base64.b64decode(case["header"])
        add("header_decode", decoded)
        add("mandate_json", decoded)
        add("mandate_json", compact(case["mandate"]))
        sig = b58decode(case["payerSig"])
        payer = b58decode(case["mandate"]["payer"])
        if "signedBytesUtf8" in case:
            add("verify_ed25519", sig + payer + case["signedBytesUtf8"].encode())
            add("verify_ed25519", case["payerSig"])
        if "receipt" in case:
            rc = case["receipt"]
            add("receipt_json", compact(rc))
            msg = ("%s:%d" % (rc["mandateDigest"], rc["enqueueDeadline"])).encode()
            add("verify_ed25519", b58decode(rc["spEnqueueSig"]) + b58decode(rc["sp"]) + msg)

    valid_sol = [c for c in fx["solana"] if c["expect"] == "valid"]
    # Native ed25519 envelopes and receipts: the Solana fixtures' mandates re-signed natively.
    for i, case in enumerate(valid_sol):
        seed = unhex0x(case["signerSeedHex"])
        env, msg = ed_native_envelope(seed, case["mandate"], FUZZ_ED_DOMAIN, case["mandate"]["ref"])
        add_envelope(env)
        add("mandate_json", compact(env["mandate"]))
        add("mandate_json", compact(FUZZ_ED_DOMAIN))
        add("verify_ed25519", b58decode(env["signature"]) + b58decode(env["mandate"]["payer"]) + msg)
        if i == 0:
            mandate_id = sha256(msg)
            for deadline in (env["mandate"]["deadline"], env["mandate"]["deadline"] + 10800):
                r, rmsg, rsig = ed_native_receipt(FUZZ_ED_DOMAIN, mandate_id, deadline)
                add("receipt_json", compact(r))
                add("verify_ed25519", rsig + ed_public(SP_SEED) + rmsg)
            # Signed for another network: domain_mismatch.
            elsewhere = {"network": "solana:devnet", "wallet": FUZZ_WALLET}
            add_envelope(ed_native_envelope(seed, case["mandate"], elsewhere, "elsewhere")[0])

    # solana-mvp refs that need escaping; the header spells them differently from the signed
    # text (reordered keys, \u escapes, whitespace), which must not change the verdict.
    seed = unhex0x(valid_sol[0]["signerSeedHex"])
    for ref in ['q"b\\s/\n\t\u0001\u001f\u007f', "é€😀", "x", "\u2028\u2029" + "z" * 26]:
        m = dict(valid_sol[0]["mandate"], ref=ref)
        assert 1 <= len(ref.encode()) <= 32
        sig = ed_sign(seed, compact(m).encode())
        env = {"mandate": m, "payerSig": b58encode(sig)}
        add_envelope(env)
        add("verify_ed25519", sig + ed_public(seed) + compact(m).encode())
        reordered = {"payerSig": env["payerSig"], "mandate": dict(reversed(list(m.items())))}
        spelled = json.dumps(reordered, indent=1, ensure_ascii=True).encode()
        add("header_decode", base64.b64encode(spelled))
        add("header_decode", spelled)
        add("mandate_json", spelled)

    # --- Hand-picked edge inputs --------------------------------------------------------
    mvp_sol = json.loads(base64.b64decode(valid_sol[0]["header"]))
    mvp_evm = json.loads(base64.b64decode(first["header"]))
    edge_json = [
        "",
        "{}",
        "[]",
        "null",
        '"x"',
        "0",
        "-0",
        "1.0",
        "1e3",
        "12345678901234567890123456",
        "\ufeff{}",
        '{"a":1,"a":2}',
        '"\\ud800"',
        '"\\udc00"',
        '"\\ud83d\\ude00\\u00e9\\/\\b\\f"',
        "[[[[[[[[]]]]]]]]",
        "[[[[[[[[[]]]]]]]]]",
        "[" + ",".join(["0"] * 33) + "]",
        '"' + "a" * 1025 + '"',
        '{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}',
        '{"aep2":1}',
        '{"aep2":2,"profile":"eip712","domain":{},"mandate":{},"signature":""}',
        '{"aep2":1.0,"profile":"eip712","domain":{},"mandate":{},"signature":""}',
        '{"mandate":{},"payerSig":""}',
        '{"mandate":null,"payerSig":null,"extra":1}',
        compact({"aep2": 1, "profile": "solana-mvp", "domain": {}, "mandate": mvp_sol["mandate"], "signature": mvp_sol["payerSig"]}),
        compact({"aep2": 1, "profile": "ed25519", "domain": evm_domain, "mandate": m0, "signature": first["payerSig"]}),
        compact({"aep2": 1, "profile": "eip712", "domain": dict(evm_domain, chainId=0), "mandate": m0, "signature": first["payerSig"]}),
        compact({"aep2": 1, "profile": "ed25519", "domain": {"network": "Solana:x", "wallet": FUZZ_WALLET}, "mandate": m0, "signature": ""}),
    ]
    for field, value in [
        ("amount", "0"),
        ("amount", "01"),
        ("amount", str(2**256)),
        ("amount", str(2**64)),
        ("amount", 1000),
        ("nonce", "-1"),
        ("deadline", 2**53),
        ("deadline", "1893456000"),
        ("ref", "0x" + "AB" * 32),
        ("ref", ""),
        ("ref", "r" * 33),
        # Multi-byte characters in a 66-byte ref (a fixed-offset string slice once panicked here).
        ("ref", "\u20ac" + "a" * 63),
        ("ref", "a\u00e9" + "a" * 63),
        ("ref", "0x" + "\u00e9" * 32),
        ("owner", "0x0d7ce9e165583c576c334d75d43367f49dd019fA"),
        ("payee", "0xaad167617df02dd30208722c88d9027a2fdd88"),
    ]:
        edge_json.append(compact({"mandate": dict(mvp_evm["mandate"], **{field: value}), "payerSig": mvp_evm["payerSig"]}))
        edge_json.append(compact({"mandate": dict(mvp_sol["mandate"], **{field: value}), "payerSig": mvp_sol["payerSig"]}))
    for sig in ["0x" + "00" * 65, "0x" + "00" * 64, "0X" + first["payerSig"][2:], first["payerSig"][:-2] + "00", "0xzz", "0OIl", "1" * 88]:
        edge_json.append(compact({"mandate": mvp_evm["mandate"], "payerSig": sig}))
        edge_json.append(compact({"mandate": mvp_sol["mandate"], "payerSig": sig}))
    for text in edge_json:
        add("header_decode", base64.b64encode(text.encode()))
        add("mandate_json", text)
    for text in ["", "=", "====", "not base64!", "aGl=", "aGk", "aGk=\n", "a-_=", "A" * 8193, base64.b64encode(b"\xff\xfe{}").decode()]:
        add("header_decode", text)
    add("header_decode", b"\xff\xfe")
    add("mandate_json", b'{"a":"\xff"}')

    # Receipts: malformed and mismatched forms.
    sol_rc = valid_sol[0]["receipt"]
    evm_rc = first["receipt"]
    for r in [
        dict(evm_rc, mandateDigest=evm_rc["mandateDigest"].upper().replace("0X", "0x")),
        dict(evm_rc, mandateDigest="0x00"),
        dict(evm_rc, spEnqueueSig="0x" + "00" * 65),
        dict(sol_rc, mandateDigest=""),
        dict(sol_rc, mandateDigest="0OIl"),
        dict(sol_rc, sp="0x" + "00" * 20),
        dict(sol_rc, enqueueDeadline=-1),
        {"aep2": 1, "kind": "receipt", "profile": "ed25519", "domain": evm_domain, "sp": sol_rc["sp"], "mandateDigest": evm_rc["mandateDigest"], "enqueueDeadline": 1, "signature": sol_rc["spEnqueueSig"]},
        {"aep2": 1, "kind": "mandate", "profile": "eip712", "domain": evm_domain, "sp": evm_rc["sp"], "mandateDigest": evm_rc["mandateDigest"], "enqueueDeadline": 1, "signature": evm_rc["spEnqueueSig"]},
        {"aep2": 1, "kind": "receipt", "profile": "solana-mvp", "domain": {}, "sp": sol_rc["sp"], "mandateDigest": sol_rc["mandateDigest"], "enqueueDeadline": 1, "signature": sol_rc["spEnqueueSig"]},
    ]:
        add("receipt_json", compact(r))
    for text in ["", "{}", "[]", '{"aep2":1}', '{"sp":"","mandateDigest":"","enqueueDeadline":0,"spEnqueueSig":""}']:
        add("receipt_json", text)

    # Signature primitives: degenerate and boundary encodings.
    n_bytes = SN.to_bytes(32, "big")
    half_n = (SN // 2).to_bytes(32, "big")
    one = (1).to_bytes(32, "big")
    # An x with no curve point (x^3 + 7 is not a square mod p).
    x_bad = next(x for x in range(1, 100) if pow((x**3 + 7) % SP, (SP - 1) // 2, SP) != 1)
    digest = unhex0x(first["digest"])
    for sig in [
        b"\0" * 65,
        one + one + b"\x1b",
        one + half_n + b"\x1c",
        one + (SN // 2 + 1).to_bytes(32, "big") + b"\x1b",
        n_bytes + one + b"\x1b",
        one + b"\0" * 32 + b"\x1b",
        x_bad.to_bytes(32, "big") + one + b"\x1c",
        unhex0x(first["payerSig"])[:64] + b"\x00",
        unhex0x(first["payerSig"])[:64] + b"\x25",
    ]:
        add("verify_eip712", sig + digest)
    add("verify_eip712", b"\0" * 64)

    L_bytes = EL.to_bytes(32, "little")
    identity = (1).to_bytes(32, "little")
    noncanonical = (EP).to_bytes(32, "little")  # y = p encodes y = 0 non-canonically
    t8 = edecompress(bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))  # order-8 point
    good = valid_sol[0]
    gseed = unhex0x(good["signerSeedHex"])
    gpub = ed_public(gseed)
    gmsg = good["signedBytesUtf8"].encode()
    gsig = b58decode(good["payerSig"])
    mixed_key = ecompress(_eadd(edecompress(gpub), t8))
    mixed_r = ecompress(_eadd(edecompress(gsig[:32]), t8))
    for data in [
        b"\0" * 96,
        identity + b"\0" * 32 + identity + b"any message",  # weak key, R = identity, S = 0
        gsig + noncanonical + gmsg,
        gsig + mixed_key + gmsg,
        gsig[:32] + L_bytes + gpub + gmsg,
        mixed_r + gsig[32:] + gpub + gmsg,
        noncanonical + gsig[32:] + gpub + gmsg,
        b"\xff" * 128,
    ]:
        add("verify_ed25519", data)
    # RFC 8032 section 7.1 tests 1-3: signature, public key, message.
    for sk, msg in [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", ""),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82"),
    ]:
        s, m = bytes.fromhex(sk), bytes.fromhex(msg)
        add("verify_ed25519", ed_sign(s, m) + ed_public(s) + m)

    binding_seeds(add)
    return seeds


def binding_seeds(add):
    """Seeds for the binding targets: every input of the binding vectors, in the target's layout."""

    def cases(topic):
        with open(os.path.join(VECTORS, topic + ".json"), encoding="utf-8") as f:
            doc = json.load(f)
        for group in doc["testGroups"]:
            for test in group["tests"]:
                yield group["kind"], test["input"]

    for kind, inp in cases("x402"):
        if kind == "extract_x402":
            lines = [f"{name}: {value}" for name, value in inp["headers"].items()]
            add("x402_request", ("\n".join(lines) + "\n@ POST https://api.example.com/v1/data\n\n{}").encode())
        elif kind == "http_request_hash":
            add("x402_request", f"@ {inp['method']} {inp['url']}\n\n".encode() + bytes.fromhex(inp["body"]))
    for _, inp in cases("a2a"):
        add("a2a_message", inp["a2aMessage"].encode())
    for kind, inp in cases("mcp"):
        if kind == "extract_mcp":
            add("mcp_tool_call", inp["request"].encode())
        else:
            args = inp.get("arguments")
            text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":' + json.dumps(inp["name"])
            add("mcp_tool_call", (text + (',"arguments":' + args if args is not None else "") + "}}").encode())


def main():
    check = "--check" in sys.argv[1:]
    seeds = build()
    differs = False
    for target, items in seeds.items():
        d = os.path.join(CORPUS, target)
        want = {hashlib.sha1(b).hexdigest(): b for b in items}
        have = set(os.listdir(d)) if os.path.isdir(d) else set()
        stale = sorted(have - set(want))
        missing = sorted(n for n in want if n not in have or open(os.path.join(d, n), "rb").read() != want[n])
        if check:
            if stale or missing:
                differs = True
                print(f"{target}: {len(missing)} missing or changed, {len(stale)} not seeds", file=sys.stderr)
            continue
        os.makedirs(d, exist_ok=True)
        for name in stale:
            os.remove(os.path.join(d, name))
        for name in missing:
            with open(os.path.join(d, name), "wb") as f:
                f.write(want[name])
        print(f"{target}: {len(want)} seeds ({len(missing)} written, {len(stale)} removed)")
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
