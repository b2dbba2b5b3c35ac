//! The tower `Layer` and `Service` of a paid route (spec `aep2.md#x402-payee-processing`).

use crate::checkout::{Checkout, Taken};
use crate::quotes::{QuoteBook, QuoteEntry};
use aep2::json::{self, Limits, Value};
use aep2::{
    Error, Mandate, OrderOptions, PayeePolicy, PaymentRequest, QuoteRef, Reason, Receipt, SpId, Verified, Verifier,
};
use aep2_sp::{PaidRequest, RequestDescriptor};
use aep2_x402::{
    Carrier, MvpBody, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PaymentRequired, PaymentRequirements, PaymentResponse,
    ResourceInfo, check_headers, http_status, request_hash,
};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};

/// Default bound on a request body the layer buffers (it needs the whole body for the request
/// hash): 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default bound on the total size of a request's headers (names, values and separators): 16 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest response body the layer rewrites for MVP clients; larger bodies pass unchanged.
const MAX_MVP_REWRITE_BYTES: usize = 1 << 20;
/// Parser limits for a served JSON body that gets the MVP `payment` member.
const RESPONSE_LIMITS: Limits = Limits {
    max_depth: 64,
    max_string_bytes: MAX_MVP_REWRITE_BYTES,
    max_members: 100_000,
    max_number_len: 64,
};

/// A source of unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(aep2_sp::unix_now)
}

/// The HTTP status of a rejection: `503` for `settlement_unavailable` and `payment_in_progress`
/// (present the same mandate again), else x402's mapping
/// ([`aep2_x402::http_status`]: `402` for a payment that does not pay, `400` for a malformed
/// one, `503` for `replay_store_unavailable`).
pub fn status_for(reason: Reason) -> StatusCode {
    let code = match reason {
        Reason::SettlementUnavailable | Reason::PaymentInProgress => 503,
        r => http_status(r),
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

/// How the FluxA MVP 402 body states the price: the integer price shifted by `decimals`, named
/// `currency` (informative only, spec `aep2.md#x402-mvp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MvpPrice {
    /// Decimals of the asset (USDC: 6).
    pub decimals: u32,
    /// The currency name shown (`USD`).
    pub currency: String,
}

impl Default for MvpPrice {
    fn default() -> Self {
        MvpPrice {
            decimals: 6,
            currency: "USD".into(),
        }
    }
}

/// What an Order Mode quote states beyond the policy's payee, asset, price and settlement window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteTerms {
    /// What is sold (the quote's `description`, at most 256 bytes).
    pub description: String,
    /// Seconds a quote stays open (its `expiry` is `now + ttl`).
    pub ttl: u64,
    /// The SP the payee forwards to (the quote's `settlementProcessor`).
    pub settlement_processor: SpId,
}

/// Intent Mode (the payer knows the price) or Order Mode (the payee quotes first).
#[derive(Clone, Debug)]
pub enum Pricing {
    /// Accept mandates under this policy.
    Intent(PayeePolicy),
    /// Issue a quote per unpaid request and accept mandates against the payee's own copy.
    Order {
        /// Payee, asset, price (exact), settlement window, clock skew and horizon.
        policy: PayeePolicy,
        /// The rest of each quote.
        terms: QuoteTerms,
        /// The quotes issued.
        book: Arc<QuoteBook>,
    },
}

/// The payment of a served request, in the request's extensions (`axum::Extension<Paid>`).
///
/// A route's side effects should be keyed on `verified.digest.id` (the mandate id): after a crash
/// between running the route and recording the serve, the payer's retry runs the route again
/// (spec `aep2.md#payee-payment-state`).
#[derive(Clone, Debug)]
pub struct Paid {
    /// The accepted mandate.
    pub verified: Verified,
    /// The SP's receipt, verified.
    pub receipt: Receipt,
    /// The header it came in.
    pub carrier: Carrier,
    /// Whether an earlier presentation took the mandate and left it unserved (a retry).
    pub resumed: bool,
}

/// `Cache-Control` of every response of a paid route: a paid response is the payer's alone, and a
/// `402` carries a fresh quote.
const NO_STORE: HeaderValue = HeaderValue::from_static("private, no-store");

/// A paid route's configuration: price, verification, binding, limits.
pub struct Paywall {
    verifier: Arc<Verifier>,
    pricing: Pricing,
    checkout: Arc<Checkout>,
    methods: Vec<Method>,
    content_types: Vec<String>,
    bind_request: bool,
    public_origin: Option<String>,
    description: Option<String>,
    max_body_bytes: usize,
    max_header_bytes: usize,
    body_timeout: Duration,
    max_timeout_seconds: u64,
    mvp: MvpPrice,
    clock: Clock,
}

impl fmt::Debug for Paywall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paywall")
            .field("domain", self.verifier.expected())
            .field("pricing", &self.pricing)
            .field("bind_request", &self.bind_request)
            .field("public_origin", &self.public_origin)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}

static QUOTE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh `requestId`: the issuing time in nanoseconds, the process and a counter, so that no
/// two quotes of this payee (across restarts and processes) share one.
pub(crate) fn fresh_request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = QUOTE_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("q-{nanos:x}-{:x}-{n:x}", std::process::id())
}

/// Builds the quote for an unpaid request (`requestId` fresh, `expiry = now + ttl`).
pub(crate) fn issue_quote(
    verifier: &Verifier,
    policy: &PayeePolicy,
    terms: &QuoteTerms,
    now: u64,
) -> Result<PaymentRequest, Error> {
    PaymentRequest {
        domain: verifier.expected().clone(),
        request_id: fresh_request_id(),
        payee: policy.payee,
        asset: policy.asset,
        amount: policy.price,
        expiry: now.saturating_add(terms.ttl),
        description: terms.description.clone(),
        settlement_processor: terms.settlement_processor,
        settlement_window: policy.settlement_window,
    }
    .validated()
}

/// The key under which a mandate's quote was recorded: its `ref` as a hash, or for `solana-mvp`
/// as the request id text.
pub(crate) fn quote_key(m: &Mandate) -> QuoteRef {
    match m {
        Mandate::Eip712(m) => QuoteRef::Hash(m.reference),
        Mandate::Ed25519(m) => QuoteRef::Hash(m.reference),
        Mandate::SolanaMvp(m) => QuoteRef::RequestId(m.reference.clone()),
    }
}

/// The options of Order Mode acceptance taken from a policy: its clock skew and horizon.
pub(crate) fn order_options(policy: &PayeePolicy) -> OrderOptions {
    OrderOptions::default()
        .with_clock_skew(policy.clock_skew)
        .with_max_horizon(policy.max_horizon)
}

impl Paywall {
    fn new(verifier: Arc<Verifier>, pricing: Pricing, checkout: Arc<Checkout>) -> Paywall {
        Paywall {
            verifier,
            pricing,
            checkout,
            methods: vec![Method::GET],
            content_types: Vec::new(),
            bind_request: false,
            public_origin: None,
            description: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            body_timeout: Duration::from_secs(5),
            max_timeout_seconds: 60,
            mvp: MvpPrice::default(),
            clock: system_clock(),
        }
    }

    /// Intent Mode: mandates are accepted under `policy` (its price, payee, asset, window, skew,
    /// horizon; its `request_hash` is replaced per request when request binding is on).
    pub fn intent(verifier: Arc<Verifier>, policy: PayeePolicy, checkout: Arc<Checkout>) -> Paywall {
        Paywall::new(verifier, Pricing::Intent(policy), checkout)
    }

    /// Order Mode: an unpaid request gets a quote (payee, asset, price, settlement window from
    /// `policy`, the rest from `terms`) recorded in `book`; the retry is accepted against that record.
    pub fn order(
        verifier: Arc<Verifier>,
        policy: PayeePolicy,
        terms: QuoteTerms,
        book: Arc<QuoteBook>,
        checkout: Arc<Checkout>,
    ) -> Paywall {
        Paywall::new(verifier, Pricing::Order { policy, terms, book }, checkout)
    }

    /// Intent Mode: require the mandate's `ref` to be the request hash of the request it pays for
    /// (`aep2_x402::request_hash` of method, URL and body; spec `aep2.md#request-binding`).
    #[must_use]
    pub fn with_request_binding(mut self, on: bool) -> Paywall {
        self.bind_request = on;
        self
    }

    /// The scheme and authority clients address (`https://api.example.com`), for the URL of the
    /// request hash behind a proxy. Default: `http://` and the request's `Host` header.
    #[must_use]
    pub fn with_public_origin(mut self, origin: impl Into<String>) -> Paywall {
        self.public_origin = Some(origin.into().trim_end_matches('/').to_owned());
        self
    }

    /// The methods the route serves (default `GET`). Any other method is refused with `405` and
    /// `Allow` before any payment is read, and `OPTIONS` is answered `204` with `Allow`: a request
    /// the route cannot serve must never be charged.
    #[must_use]
    pub fn with_methods(mut self, methods: &[Method]) -> Paywall {
        self.methods = methods.to_vec();
        self
    }

    /// The media types (`type/subtype`, compared case-insensitively, parameters ignored) a request
    /// body may have; default: any. A request with a body of another type, or with a body and no
    /// `Content-Type`, is refused with `415 content_type_unsupported` before any payment is read.
    #[must_use]
    pub fn with_content_types(mut self, types: &[&str]) -> Paywall {
        self.content_types = types.iter().map(|t| t.to_ascii_lowercase()).collect();
        self
    }

    /// The resource description in `PAYMENT-REQUIRED`.
    #[must_use]
    pub fn with_description(mut self, text: impl Into<String>) -> Paywall {
        self.description = Some(text.into());
        self
    }

    /// Bounds on the buffered body, on the headers, and on the time to receive the body.
    #[must_use]
    pub fn with_limits(mut self, max_body_bytes: usize, max_header_bytes: usize, body_timeout: Duration) -> Paywall {
        self.max_body_bytes = max_body_bytes;
        self.max_header_bytes = max_header_bytes;
        self.body_timeout = body_timeout;
        self
    }

    /// How the MVP 402 body states the price.
    #[must_use]
    pub fn with_mvp_price(mut self, mvp: MvpPrice) -> Paywall {
        self.mvp = mvp;
        self
    }

    /// Intent Mode's `maxTimeoutSeconds` (default 60).
    #[must_use]
    pub fn with_max_timeout_seconds(mut self, seconds: u64) -> Paywall {
        self.max_timeout_seconds = seconds;
        self
    }

    /// The clock (default: the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Paywall {
        self.clock = clock;
        self
    }

    fn policy(&self) -> &PayeePolicy {
        match &self.pricing {
            Pricing::Intent(p) | Pricing::Order { policy: p, .. } => p,
        }
    }

    /// The response for a rejection: the status of [`status_for`] (or `status` when given), the
    /// MVP error body with the reason code, and on `402` `PAYMENT-REQUIRED` with current terms.
    fn reject(&self, e: &Error, status: Option<StatusCode>, now: u64, req: Option<(&str, [u8; 32])>) -> Response<Body> {
        self.reject_via(e, status, now, req, None)
    }

    /// [`Paywall::reject`] naming the carrier the payment came in. A `402` gets the payee's current
    /// terms (in Order Mode a new quote) twice from one [`PaymentRequired`]: in `PAYMENT-REQUIRED`
    /// for x402 v2 clients and in the body for x402 v1 and MVP clients (spec `aep2.md#x402-mvp`).
    fn reject_via(
        &self,
        e: &Error,
        status: Option<StatusCode>,
        now: u64,
        req: Option<(&str, [u8; 32])>,
        carrier: Option<Carrier>,
    ) -> Response<Body> {
        let status = status.unwrap_or_else(|| status_for(e.reason()));
        let policy = self.policy();
        let required = match req {
            Some((url, hash)) if status == StatusCode::PAYMENT_REQUIRED => self.payment_required(e, url, hash, now),
            _ => None,
        };
        let body = match (&required, e.reason()) {
            (Some(required), Reason::PaymentMissing) => MvpBody::payment_required_for(
                required,
                &policy.price,
                self.mvp.decimals,
                &self.mvp.currency,
                &policy.payee.to_string(),
            ),
            (Some(required), _) => MvpBody::rejection_with_status(e, status.as_u16(), carrier).with_x402_v1(required),
            (None, _) => MvpBody::rejection_with_status(e, status.as_u16(), carrier),
        };
        let mut resp = json_response(status, body.to_text());
        resp.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
        if e.reason() == Reason::PaymentInProgress {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(self.checkout.claim_lease()));
        }
        if let Some(v) = required.and_then(|r| HeaderValue::from_str(&r.encode()).ok()) {
            resp.headers_mut().insert(PAYMENT_REQUIRED, v);
        }
        resp
    }

    fn payment_required(&self, e: &Error, url: &str, request: [u8; 32], now: u64) -> Option<PaymentRequired> {
        let accepts = match &self.pricing {
            Pricing::Intent(policy) => {
                PaymentRequirements::for_policy(policy, self.verifier.expected(), self.max_timeout_seconds)
            }
            Pricing::Order { policy, terms, book } => {
                let quote = issue_quote(&self.verifier, policy, terms, now).ok()?;
                let accepts = PaymentRequirements::for_quote(&quote, now);
                book.insert(QuoteEntry { quote, request }, now);
                accepts
            }
        };
        Some(PaymentRequired {
            error: Some(e.code().to_owned()),
            resource: ResourceInfo {
                url: url.to_owned(),
                description: self.description.clone(),
                mime_type: None,
            },
            accepts: vec![accepts],
        })
    }

    /// The URL the client addressed, in absolute form.
    fn url_of(&self, parts: &Parts) -> Result<String, Error> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(origin) = &self.public_origin {
            return Ok(format!("{origin}{path}"));
        }
        let host = match parts.uri.authority() {
            Some(a) => a.as_str().to_owned(),
            None => parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| Error::new(Reason::RequestDescriptorInvalid, "the request has no Host header"))?,
        };
        Ok(format!("http://{host}{path}"))
    }

    /// `Allow` for this route: its methods and `OPTIONS`.
    fn allow(&self) -> HeaderValue {
        let mut names: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        names.push("OPTIONS");
        HeaderValue::from_str(&names.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"))
    }

    /// What the route cannot serve, refused before any payment is read (spec
    /// `aep2.md#x402-payee-processing` step 0): `OPTIONS`, another method, a body of another type.
    fn refuse_unservable(&self, parts: &Parts, now: u64) -> Option<Response<Body>> {
        if parts.method == Method::OPTIONS {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp.headers_mut().insert(header::ALLOW, self.allow());
            return Some(resp);
        }
        if !self.methods.contains(&parts.method) {
            let allow = self.allow();
            let e = Error::new(
                Reason::RouteUnknown,
                format!(
                    "method {} is not served here (Allow: {})",
                    parts.method,
                    allow.to_str().unwrap_or("")
                ),
            );
            let mut resp = self.reject(&e, Some(StatusCode::METHOD_NOT_ALLOWED), now, None);
            resp.headers_mut().insert(header::ALLOW, allow);
            return Some(resp);
        }
        if !self.content_types.is_empty() && has_body(&parts.headers) {
            let essence = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|ct| ct.split(';').next())
                .map(|e| e.trim().to_ascii_lowercase());
            if !essence.is_some_and(|e| self.content_types.contains(&e)) {
                let e = Error::new(
                    Reason::ContentTypeUnsupported,
                    format!("the body must be one of {}", self.content_types.join(", ")),
                );
                return Some(self.reject(&e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE), now, None));
            }
        }
        None
    }

    async fn handle<S>(self: Arc<Self>, req: Request<Body>, inner: S) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
        S::Future: Send,
    {
        let now = (self.clock)();
        let header_bytes: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
        if header_bytes > self.max_header_bytes {
            let e = Error::new(
                Reason::HeaderTooLarge,
                format!(
                    "request headers of {header_bytes} bytes, limit {}",
                    self.max_header_bytes
                ),
            );
            return self.reject(&e, Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE), now, None);
        }
        let (parts, body) = req.into_parts();
        if let Some(refused) = self.refuse_unservable(&parts, now) {
            return refused;
        }
        let body = match read_body(&parts.headers, body, self.max_body_bytes, self.body_timeout).await {
            Ok(b) => b,
            Err((status, e)) => return closing(self.reject(&e, Some(status), now, None)),
        };
        let url = match self.url_of(&parts) {
            Ok(u) => u,
            Err(e) => return self.reject(&e, None, now, None),
        };
        let hash = match request_hash(parts.method.as_str(), &url, &body) {
            Ok(h) => h,
            Err(e) => return self.reject(&e, None, now, None),
        };
        let paid = PaidRequest::Http {
            method: parts.method.as_str().to_owned(),
            url: url.clone(),
        };
        let described = RequestDescriptor::new(paid, hash);
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (name, value) in &parts.headers {
            let payment = Carrier::ALL
                .iter()
                .any(|c| c.header().eq_ignore_ascii_case(name.as_str()));
            if !payment {
                continue;
            }
            match value.to_str() {
                Ok(v) => pairs.push((name.as_str(), v)),
                Err(_) => {
                    let e = Error::new(Reason::Base64Invalid, format!("{name} is not printable ASCII"));
                    return self.reject(&e, None, now, Some((&url, hash)));
                }
            }
        }
        let accepted = match &self.pricing {
            Pricing::Intent(policy) => self.accept_intent(&pairs, policy, &described, now).await,
            Pricing::Order { policy, book, .. } => self.accept_order(&pairs, policy, book, &described, now).await,
        };
        // The carrier named in a rejection: the one payment header sent, if exactly one was.
        let used = match pairs.as_slice() {
            [(name, _)] => Carrier::ALL
                .iter()
                .copied()
                .find(|c| c.header().eq_ignore_ascii_case(name)),
            _ => None,
        };
        drop(pairs);
        let (carrier, verified, taken) = match accepted {
            Ok(ok) => ok,
            Err(e) => return self.reject_via(&e, None, now, Some((&url, hash)), used),
        };
        let response_header = PaymentResponse::accepted(&verified, Some(&taken.receipt)).encode();
        let receipt_json = taken.receipt.to_json();
        let mut req = Request::from_parts(parts, Body::from(body));
        req.extensions_mut().insert(Paid {
            verified,
            receipt: taken.receipt.clone(),
            carrier,
            resumed: taken.resumed,
        });
        let Ok(mut resp) = inner.oneshot(req).await;
        let done = (self.clock)();
        if carrier == Carrier::XPaymentMandate && !resp.status().is_server_error() {
            resp = mvp_payment_body(resp, receipt_json).await;
        }
        if resp.status().is_server_error() {
            // The route failed (or its body broke off while being rewritten): not served. The
            // payer, who is charged, presents the same mandate again and is served then.
            self.checkout.unserved(&taken, done).await;
            resp.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
            return resp;
        }
        // Recorded before delivery, and delivered only if recorded by this presentation: a crash
        // can then lose a delivery (the documented window), never make a second one.
        if let Err(e) = self.checkout.served(&taken, done).await {
            return self.reject(&e, None, done, None);
        }
        if let Ok(v) = HeaderValue::from_str(&response_header) {
            resp.headers_mut().insert(PAYMENT_RESPONSE, v);
        }
        resp.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
        let (parts, body) = resp.into_parts();
        Response::from_parts(parts, self.checkout.deliver(&taken, body))
    }

    async fn accept_intent(
        &self,
        pairs: &[(&str, &str)],
        policy: &PayeePolicy,
        described: &RequestDescriptor,
        now: u64,
    ) -> Result<(Carrier, Verified, Taken), Error> {
        let hash = described.hash;
        let bound;
        let policy = if self.bind_request {
            bound = policy.clone().with_request_hash(hash);
            &bound
        } else {
            policy
        };
        // Core verification without expiry: the policy's check 2 applies it with the skew.
        let (carrier, report) = check_headers(pairs.iter().copied(), &self.verifier, None);
        let v = report.into_result()?;
        let verdict = policy.check(&v, now);
        let taken = self.checkout.take(&v, described, verdict, now).await?;
        Ok((carrier.unwrap_or(Carrier::PaymentSignature), v, taken))
    }

    async fn accept_order(
        &self,
        pairs: &[(&str, &str)],
        policy: &PayeePolicy,
        book: &QuoteBook,
        described: &RequestDescriptor,
        now: u64,
    ) -> Result<(Carrier, Verified, Taken), Error> {
        let hash = described.hash;
        let (carrier, report) = check_headers(pairs.iter().copied(), &self.verifier, None);
        let carrier = carrier.unwrap_or(Carrier::PaymentSignature);
        let v = report.into_result()?;
        let key = quote_key(v.mandate());
        let id = v.digest.id;
        let verdict = judge_against_quote(&v, policy, book, &key, hash, now);
        let claimed = verdict.is_ok();
        if claimed && !book.claim(&key, id) {
            if book.claimed_by(&key) == Some(id) {
                return Err(Error::new(
                    Reason::PaymentInProgress,
                    "another presentation of this mandate is paying this quote; present it again shortly",
                ));
            }
            let e = Error::new(
                Reason::RequestMismatch,
                "the quote is paid, or being paid, by another mandate",
            );
            // A retry of the mandate that holds the quote may still be owed its serve.
            let taken = self.checkout.take(&v, described, Err(e), now).await?;
            return Ok((carrier, v, taken));
        }
        let taken = self.checkout.take(&v, described, verdict, now).await;
        if claimed {
            book.conclude(&key, id, &taken);
        }
        Ok((carrier, v, taken?))
    }
}

/// Order Mode's stateless verdict: the quote this payee issued for the mandate's `ref`, for this
/// request, accepts the mandate (spec `aep2.md#payment-request-acceptance`).
fn judge_against_quote(
    v: &Verified,
    policy: &PayeePolicy,
    book: &QuoteBook,
    key: &QuoteRef,
    hash: [u8; 32],
    now: u64,
) -> Result<(), Error> {
    let entry = book.get(key).ok_or_else(|| {
        Error::new(
            Reason::RequestMismatch,
            "the mandate's ref names no open quote of this payee: request a new quote",
        )
    })?;
    if entry.request != hash {
        return Err(Error::new(
            Reason::RequestMismatch,
            "the quote was issued for another request (method, URL or body)",
        ));
    }
    entry.quote.check(v, now, order_options(policy))?;
    if book.paid_by(key) == Some(v.digest.id) {
        return Err(Error::new(
            Reason::MandateReplayed,
            "this mandate already paid this quote",
        ));
    }
    Ok(())
}

/// Whether a request has a body (a non-zero `Content-Length`, or any `Transfer-Encoding`).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `resp` with `Connection: close`: for an answer given before the request's body was read to
/// its end, so that no client sends its next request on a connection the server then closes.
pub(crate) fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads the whole body within `limit` bytes and `timeout`: `413 header_too_large` (declared or
/// found), `408 request_timeout`, `400 json_invalid` for a broken transfer. The caller answers
/// an error [`closing`]: the rest of the body was never read.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, (StatusCode, Error)> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            Error::new(Reason::HeaderTooLarge, format!("body of {n} bytes, limit {limit}")),
        ));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            Error::new(
                Reason::RequestTimeout,
                format!("body not received within {} ms", timeout.as_millis()),
            ),
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            Error::new(Reason::HeaderTooLarge, format!("body over {limit} bytes")),
        )),
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            Error::new(Reason::JsonInvalid, format!("reading the body: {e}")),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes().to_vec()),
    }
}

/// The FluxA MVP payee convention: a served JSON object gets `"payment": {"status": "enqueued",
/// "spReceipt": <receipt>}` unless it already has a `payment` member or is not a JSON object.
/// A body that yields `prefix` (already read) and then the rest of the original body.
struct Prefixed {
    prefix: Option<axum::body::Bytes>,
    rest: Body,
}

impl hyper::body::Body for Prefixed {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

async fn mvp_payment_body(resp: Response<Body>, receipt: Value) -> Response<Body> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return resp;
    }
    let (mut parts, mut body) = resp.into_parts();
    // The payment is taken by now: a body too large to rewrite is served as it is (the receipt
    // is in PAYMENT-RESPONSE), never dropped.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_MVP_REWRITE_BYTES as u64) {
        return Response::from_parts(parts, body);
    }
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() > MAX_MVP_REWRITE_BYTES {
                        let prefixed = Prefixed {
                            prefix: Some(buf.into()),
                            rest: body,
                        };
                        return Response::from_parts(parts, Body::new(prefixed));
                    }
                }
            }
            Err(_) => {
                // The route's body broke half-way: nothing whole can be sent.
                parts.status = StatusCode::INTERNAL_SERVER_ERROR;
                parts.headers.remove(header::CONTENT_LENGTH);
                return Response::from_parts(parts, Body::empty());
            }
        }
    }
    let bytes = axum::body::Bytes::from(buf);
    let rewritten = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| json::parse(t, &RESPONSE_LIMITS).ok())
        .and_then(|v| match v {
            Value::Object(mut o) if o.get("payment").is_none() => {
                let payment = json::Object::new()
                    .with("status", Value::String("enqueued".into()))
                    .with("spReceipt", receipt);
                o.insert("payment", Value::Object(payment));
                Some(json::to_compact(&Value::Object(o)))
            }
            _ => None,
        });
    parts.headers.remove(header::CONTENT_LENGTH);
    match rewritten {
        Some(text) => Response::from_parts(parts, Body::from(text)),
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// A tower `Layer` that puts a [`Paywall`] in front of a route.
#[derive(Clone, Debug)]
pub struct PaidLayer {
    paywall: Arc<Paywall>,
}

impl PaidLayer {
    /// The layer for `paywall`.
    pub fn new(paywall: Paywall) -> PaidLayer {
        PaidLayer {
            paywall: Arc::new(paywall),
        }
    }

    /// The paywall.
    pub fn paywall(&self) -> &Arc<Paywall> {
        &self.paywall
    }
}

impl<S> Layer<S> for PaidLayer {
    type Service = PaidService<S>;

    fn layer(&self, inner: S) -> PaidService<S> {
        PaidService {
            inner,
            paywall: self.paywall.clone(),
        }
    }
}

/// The service [`PaidLayer`] wraps a route in.
#[derive(Clone, Debug)]
pub struct PaidService<S> {
    inner: S,
    paywall: Arc<Paywall>,
}

impl<S> Service<Request<Body>> for PaidService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is driven with `oneshot`, which waits for its readiness itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let paywall = self.paywall.clone();
        Box::pin(async move { Ok(paywall.handle(req, inner).await) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::VecDeque;

    fn json_response(body: Body) -> Response<Body> {
        let mut r = Response::new(body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }

    /// A streamed body of several chunks and no declared length.
    struct Chunks(VecDeque<axum::body::Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn mvp_bodies_get_the_payment_member_and_large_ones_pass_unchanged() {
        let small = mvp_payment_body(json_response(Body::from(r#"{"a":1}"#)), Value::String("r".into())).await;
        let bytes = small.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &bytes[..],
            br#"{"a":1,"payment":{"status":"enqueued","spReceipt":"r"}}"#
        );

        // Over the rewrite limit and streamed: served whole and unchanged, not dropped.
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_MVP_REWRITE_BYTES + 10));
        let chunks = big
            .as_bytes()
            .chunks(64 * 1024)
            .map(axum::body::Bytes::copy_from_slice)
            .collect();
        let served = mvp_payment_body(json_response(Body::new(Chunks(chunks))), Value::Null).await;
        assert_eq!(served.status(), StatusCode::OK);
        let bytes = served.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], big.as_bytes());
    }
}
