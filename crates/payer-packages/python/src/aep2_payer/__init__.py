"""AEP2 payer: sign mandates and pay AEP2 payees through the official x402 SDK, MCP and A2A."""

from .errors import Aep2Error
from .hashes import a2a_request_hash, http_request_hash, mcp_request_hash, quote_hash
from .lanes import (
    LaneFile,
    LaneMandate,
    grant_lane,
    lane_id,
    load_lane_file,
    sign_lane,
    sign_lane_mandate,
    verify_lane_chain,
    verify_lane_envelope,
)
from .mandate import (
    Ed25519Domain,
    Ed25519Key,
    Eip712Domain,
    Secp256k1Key,
    SignedMandate,
    domain_from_json,
    sign_mandate,
)

__version__ = "0.1.0"

__all__ = [
    "Aep2Error",
    "Ed25519Domain",
    "Ed25519Key",
    "LaneFile",
    "LaneMandate",
    "Eip712Domain",
    "Secp256k1Key",
    "SignedMandate",
    "a2a_request_hash",
    "domain_from_json",
    "grant_lane",
    "lane_id",
    "load_lane_file",
    "http_request_hash",
    "mcp_request_hash",
    "quote_hash",
    "sign_lane",
    "sign_lane_mandate",
    "sign_mandate",
    "verify_lane_chain",
    "verify_lane_envelope",
]
