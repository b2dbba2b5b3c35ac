//! The payer's side, for demos, tests and benchmarks: an `eip712` payer that signs mandates for
//! the terms a payee states, and a plain HTTP/1.1 client for loopback services.

use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{self, Limits, Value};
use aep2::{
    AccountId, Domain, EnvelopeForm, Error, EvmAddress, EvmMandate, Mandate, PayerKey, Reason, Receipt,
    ReceiptExpectations, Result, SignedLane, SignedMandate, SpId, U256, mandate_digest, sign_lane_mandate,
    sign_mandate,
};
use aep2_x402::PaymentRequirements;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest response body the client reads.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// Limits for parsing the JSON bodies of loopback replies (looser than an envelope's).
pub const REPLY_LIMITS: Limits = Limits {
    max_depth: 32,
    max_string_bytes: 65_536,
    max_members: 1024,
    max_number_len: 64,
};

/// An `eip712` payer: a secp256k1 key and the debit-wallet deployment it signs for.
pub struct Payer {
    key: SecretKey,
    domain: Domain,
    nonce: AtomicU64,
    /// The chain this payer signs under (spec `aep2.md#lane-mandate`), root first; empty: it
    /// signs as the owner.
    lanes: Vec<SignedLane>,
}

impl std::fmt::Debug for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Payer")
            .field("address", &self.key.address())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Payer {
    /// A payer with `key` for `domain` (an `eip712` domain). Nonces start at `first_nonce` and
    /// count up, so mandates of one payer never share a nonce.
    pub fn new(key: SecretKey, domain: Domain, first_nonce: u64) -> Payer {
        Payer {
            key,
            domain,
            nonce: AtomicU64::new(first_nonce),
            lanes: Vec::new(),
        }
    }

    /// An agent paying from its owner's funds under a spending lane: `key` is the leaf lane's
    /// agent key and `lanes` the chain, root first. Its mandates name the lanes' owner, are
    /// signed under the leaf, and draw random 128-bit nonces, since every agent of the owner
    /// shares the owner's nonce space (spec `aep2.md#lane-mandate`, *Nonces*). Fails if the chain
    /// is empty, longer than 3 links, or its leaf's agent is not `key`'s address.
    pub fn under_lane(key: SecretKey, domain: Domain, lanes: Vec<SignedLane>) -> Result<Payer> {
        let leaf = lanes
            .last()
            .ok_or_else(|| Error::new(Reason::LaneDepthExceeded, "no lane to pay under"))?;
        if lanes.len() > aep2::lane::MAX_LANE_DEPTH {
            return Err(Error::new(Reason::LaneDepthExceeded, "more than 3 lanes"));
        }
        if leaf.lane.agent != AccountId::Evm(key.address()) {
            return Err(Error::new(
                Reason::SignatureInvalid,
                format!(
                    "the key is {}, the leaf lane's agent {}",
                    key.address(),
                    leaf.lane.agent
                ),
            ));
        }
        Ok(Payer {
            key,
            domain,
            nonce: AtomicU64::new(0),
            lanes,
        })
    }

    /// The address whose funds its mandates debit: the lanes' owner, or its own.
    pub fn address(&self) -> EvmAddress {
        match self.lanes.first().map(|l| l.lane.owner) {
            Some(AccountId::Evm(owner)) => owner,
            _ => self.key.address(),
        }
    }

    /// The lane chain it signs under (empty for an owner).
    pub fn lanes(&self) -> &[SignedLane] {
        &self.lanes
    }

    /// The domain it signs for.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The next unused nonce.
    pub fn next_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    fn fresh_nonce(&self) -> Result<U256> {
        if self.lanes.is_empty() {
            return Ok(U256::from_u64(self.next_nonce()));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes[16..])
            .map_err(|e| Error::new(Reason::SignatureInvalid, format!("no randomness for a nonce: {e}")))?;
        Ok(U256(bytes))
    }

    /// Signs an MVP-envelope mandate paying `amount` of `token` to `payee`, valid until
    /// `deadline`, with `reference` as `ref` and the next nonce.
    pub fn sign(
        &self,
        payee: EvmAddress,
        token: EvmAddress,
        amount: U256,
        deadline: u64,
        reference: [u8; 32],
    ) -> Result<SignedMandate> {
        self.sign_mandate(payee, token, amount, deadline, reference, self.fresh_nonce()?)
    }

    /// [`Payer::sign`] with an explicit nonce.
    pub fn sign_with_nonce(
        &self,
        payee: EvmAddress,
        token: EvmAddress,
        amount: U256,
        deadline: u64,
        reference: [u8; 32],
        nonce: u64,
    ) -> Result<SignedMandate> {
        self.sign_mandate(payee, token, amount, deadline, reference, U256::from_u64(nonce))
    }

    fn sign_mandate(
        &self,
        payee: EvmAddress,
        token: EvmAddress,
        amount: U256,
        deadline: u64,
        reference: [u8; 32],
        nonce: U256,
    ) -> Result<SignedMandate> {
        let mandate = Mandate::Eip712(EvmMandate {
            owner: self.address(),
            token,
            payee,
            amount,
            nonce,
            deadline,
            reference,
        });
        let key = PayerKey::Secp256k1(self.key.clone());
        let (signed, _) = if self.lanes.is_empty() {
            sign_mandate(&mandate, &self.domain, &key, EnvelopeForm::Mvp)?
        } else {
            sign_lane_mandate(&mandate, &self.domain, &key, EnvelopeForm::Mvp, &self.lanes)?
        };
        Ok(signed)
    }

    /// Signs a mandate meeting an x402 entry of scheme `aep2`: its `payTo`, `asset` and `amount`,
    /// `ref` = `reference`. The payer's own checks come first: the entry must be for this payer's
    /// network (`x402_network_mismatch`) and its addresses EVM addresses.
    pub fn sign_for(
        &self,
        accepted: &PaymentRequirements,
        reference: [u8; 32],
        deadline: u64,
    ) -> Result<SignedMandate> {
        if accepted.network != aep2_x402::network_of(&self.domain) {
            return Err(Error::new(
                Reason::X402NetworkMismatch,
                format!(
                    "the payee asks for {}, this payer signs for {}",
                    accepted.network,
                    aep2_x402::network_of(&self.domain)
                ),
            ));
        }
        let evm = |text: &str| match AccountId::parse(text)? {
            AccountId::Evm(a) => Ok(a),
            AccountId::Base58(_) => Err(Error::new(Reason::AddressInvalid, "expected an EVM address")),
        };
        let amount = U256::parse_decimal(&accepted.amount)?;
        self.sign(
            evm(&accepted.pay_to)?,
            evm(&accepted.asset)?,
            amount,
            deadline,
            reference,
        )
    }
}

/// The payer's check of a receipt a payee passed on for `signed`: it parses, is signed by `sp`
/// (the SP the payer trusts, e.g. the quote's `settlementProcessor`), is for this mandate in
/// `domain`, and keeps the deadline rule (spec `aep2.md#receipts`).
pub fn check_receipt(receipt: &Value, signed: &SignedMandate, domain: &Domain, sp: &SpId) -> Result<Receipt> {
    let r = Receipt::from_json(receipt)?;
    // Under a lane the mandate's id binds the leaf lane, and the receipt must name it.
    let (digest, leaf) = if signed.lanes.is_empty() {
        (mandate_digest(&signed.mandate, domain)?, None)
    } else {
        let ids = aep2::lane::check_chain_signatures(&signed.lanes, domain)?;
        let leaf = ids.last().copied().unwrap_or([0; 32]);
        (
            aep2::lane::lane_mandate_digest(&signed.mandate, domain, &leaf)?,
            Some(leaf),
        )
    };
    r.verify(&ReceiptExpectations {
        sp: Some(sp),
        mandate: Some((&signed.mandate, &digest)),
        domain: Some(domain),
        lane: leaf.as_ref(),
    })?;
    Ok(r)
}

/// An HTTP reply as the client read it.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        let text = std::str::from_utf8(&self.body).map_err(|e| Error::new(Reason::Utf8Invalid, e.to_string()))?;
        json::parse(text, &REPLY_LIMITS)
    }

    /// The `reason` member of a JSON error body (the payee's MVP error body), if any.
    pub fn reason(&self) -> Option<String> {
        match self.json().ok()? {
            Value::Object(o) => match o.get("reason") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A plain HTTP/1.1 client (no TLS) with pooled connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// A client with a 10 s time limit per exchange.
    pub fn new() -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends one request and reads the whole reply (at most [`MAX_REPLY_BYTES`]).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::result::Result<Reply, String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = Request::builder().method(method).uri(url);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = Limited::new(resp.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes()
                .to_vec();
            Ok(Reply { status, headers, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer from {url} within {} s", self.timeout.as_secs()))?
    }
}
