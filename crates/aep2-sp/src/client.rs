//! The payee's async client for a settlement processor (plain HTTP/1.1 over hyper-util; no TLS:
//! the SP is expected on loopback or a private network).
//!
//! A receipt returned here has been parsed but not verified: the payee checks it with
//! [`aep2::Receipt::verify`] against the SP it trusts and the mandate it sent.

use crate::audit::RequestDescriptor;
use aep2::json::{Limits, parse};
use aep2::{Error, Reason, Receipt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as J;
use std::fmt;
use std::time::Duration;

/// Largest response body read from the SP.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a call to the SP did not produce a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpClientError {
    /// The SP answered with a rejection carrying a registry reason code.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The reason code and the SP's message.
        error: Error,
    },
    /// The SP could not be reached or did not answer in time; the mandate may or may not have
    /// been accepted, and re-sending it is safe (enqueue is idempotent per mandate).
    Unavailable(String),
    /// The SP answered something that is not this API (bad JSON, unknown code, bad receipt).
    Protocol(String),
}

impl fmt::Display for SpClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpClientError::Rejected { status, error } => write!(f, "settlement processor rejected ({status}): {error}"),
            SpClientError::Unavailable(m) => write!(f, "settlement processor unavailable: {m}"),
            SpClientError::Protocol(m) => write!(f, "settlement processor protocol error: {m}"),
        }
    }
}

impl std::error::Error for SpClientError {}

/// A successful enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueueResponse {
    /// The parsed receipt.
    pub receipt: Receipt,
    /// The receipt as compact JSON, as the SP stored it (to forward byte for byte).
    pub receipt_json: String,
    /// The mandate id, `0x` + 64 hex digits.
    pub mandate_id: String,
    /// The mandate's status at the SP (`accepted` on first acceptance).
    pub status: String,
    /// Whether this submission stored the mandate (`false`: it was stored before, and the answer
    /// is the stored receipt).
    pub fresh: bool,
    /// The submission id the SP holds the mandate for, if any.
    pub submission_id: Option<String>,
}

/// An async client for one settlement processor. Cheap to clone; connections are pooled.
#[derive(Clone, Debug)]
pub struct SpClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl SpClient {
    /// A client for the SP at `base_url` (`http://host:port`, no path). Default timeout 10 s.
    pub fn new(base_url: &str) -> Result<SpClient, SpClientError> {
        let base = base_url.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e| SpClientError::Protocol(format!("SP URL {base_url:?}: {e}")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() || !matches!(uri.path(), "" | "/") {
            return Err(SpClientError::Protocol(format!(
                "SP URL {base_url:?} must be http://host:port"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Ok(SpClient {
            base: base.to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
        })
    }

    /// Sets the time limit of each call (connect, send, and read the whole response).
    pub fn with_timeout(mut self, timeout: Duration) -> SpClient {
        self.timeout = timeout;
        self
    }

    /// Enqueues an envelope (its JSON text: `{mandate, payerSig}` or a native envelope) and
    /// returns the receipt.
    pub async fn enqueue(&self, envelope_json: &str) -> Result<Receipt, SpClientError> {
        self.enqueue_full(envelope_json, None).await.map(|r| r.receipt)
    }

    /// Like [`SpClient::enqueue`], as the submission `submission_id` (sent in
    /// [`crate::SUBMISSION_ID_HEADER`]), with the receipt's JSON text, the mandate id, its status
    /// and whether this submission stored it.
    pub async fn enqueue_full(
        &self,
        envelope_json: &str,
        submission_id: Option<&[u8; 16]>,
    ) -> Result<EnqueueResponse, SpClientError> {
        self.enqueue_described(envelope_json, submission_id, None).await
    }

    /// Like [`SpClient::enqueue_full`], describing the request the mandate pays for in
    /// [`crate::audit::REQUEST_HEADER`], for the SP's audit trail.
    pub async fn enqueue_described(
        &self,
        envelope_json: &str,
        submission_id: Option<&[u8; 16]>,
        request: Option<&RequestDescriptor>,
    ) -> Result<EnqueueResponse, SpClientError> {
        let id = submission_id.map(crate::format_submission_id);
        let described = request.map(RequestDescriptor::to_header);
        let headers: Vec<(&str, &str)> = [
            id.as_deref().map(|v| (crate::SUBMISSION_ID_HEADER, v)),
            described.as_deref().map(|v| (crate::audit::REQUEST_HEADER, v)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let v = self
            .call_with(Method::POST, "/enqueue", Some(envelope_json.to_owned()), &headers)
            .await?;
        let receipt_value = v
            .get("receipt")
            .ok_or_else(|| SpClientError::Protocol("response has no receipt".into()))?;
        let receipt_json = receipt_value.to_string();
        let parsed = parse(&receipt_json, &Limits::AEP2)
            .and_then(|r| Receipt::from_json(&r))
            .map_err(|e| SpClientError::Protocol(format!("receipt: {e}")))?;
        let text = |name: &str| v.get(name).and_then(J::as_str).unwrap_or("").to_owned();
        Ok(EnqueueResponse {
            receipt: parsed,
            receipt_json,
            mandate_id: text("mandateId"),
            status: text("status"),
            fresh: v.get("fresh").and_then(J::as_bool).unwrap_or(false),
            submission_id: v.get("submissionId").and_then(J::as_str).map(str::to_owned),
        })
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<J, SpClientError> {
        self.call(Method::GET, "/health", None).await
    }

    /// `GET /v1/mandates/{id}`: the stored mandate with its status and receipt.
    pub async fn mandate(&self, mandate_id: &str) -> Result<J, SpClientError> {
        if !mandate_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SpClientError::Protocol("mandate id must be 0x-hex".into()));
        }
        self.call(Method::GET, &format!("/v1/mandates/{mandate_id}"), None)
            .await
    }

    /// `GET /v1/accounts?payer=…[&token=…]`: balances, reservations and available funds.
    pub async fn accounts(&self, payer: &str, token: Option<&str>) -> Result<J, SpClientError> {
        let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !plain(payer) || !token.is_none_or(plain) {
            return Err(SpClientError::Protocol(
                "payer and token must be addresses or base58 keys".into(),
            ));
        }
        let mut path = format!("/v1/accounts?payer={payer}");
        if let Some(t) = token {
            path.push_str("&token=");
            path.push_str(t);
        }
        self.call(Method::GET, &path, None).await
    }

    /// `POST /v1/lanes/revoke` with the body `{"revocation", "lanes"}` (its JSON text): the SP's
    /// answer `{"success", "lane", "revoked", "revokedAt"}`.
    pub async fn revoke_lane(&self, body_json: &str) -> Result<J, SpClientError> {
        self.call(Method::POST, "/v1/lanes/revoke", Some(body_json.to_owned()))
            .await
    }

    /// `GET /v1/lanes/{laneId}`: a stored lane's counters (`lane_unknown` if the SP has none).
    pub async fn lane(&self, lane_id: &str) -> Result<J, SpClientError> {
        if !lane_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SpClientError::Protocol("lane id must be 0x-hex".into()));
        }
        self.call(Method::GET, &format!("/v1/lanes/{lane_id}"), None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<String>) -> Result<J, SpClientError> {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<J, SpClientError> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| SpClientError::Protocol(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| SpClientError::Unavailable(e.to_string()))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| SpClientError::Unavailable(format!("reading the response: {e}")))?
                .to_bytes();
            Ok::<_, SpClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SpClientError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis())))??;
        let v: J = serde_json::from_slice(&bytes)
            .map_err(|e| SpClientError::Protocol(format!("status {status}: body is not JSON: {e}")))?;
        if status.is_success() && v.get("success").and_then(J::as_bool) != Some(false) {
            return Ok(v);
        }
        let code = v.get("error").and_then(J::as_str).unwrap_or("");
        let reason = Reason::from_code(code)
            .ok_or_else(|| SpClientError::Protocol(format!("status {status}: unknown error code {code:?}")))?;
        let message = v.get("message").and_then(J::as_str).unwrap_or("").to_owned();
        Err(SpClientError::Rejected {
            status: status.as_u16(),
            error: Error::new(reason, message),
        })
    }
}
