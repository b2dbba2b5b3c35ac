//! CORS for a payee: an exact-origin allowlist as a tower `Layer` ([`Cors`]).

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The request headers a preflight allows: the three payment carriers and `Content-Type`
/// (a JSON body is not a CORS-safelisted content type).
pub const ALLOWED_REQUEST_HEADERS: [&str; 4] = ["PAYMENT-SIGNATURE", "X-PAYMENT", "X-Payment-Mandate", "Content-Type"];
/// The response headers an allowed origin's page may read: the x402 v2 terms and payment
/// response, x402 v1's payment response and `Retry-After` (of `503` answers).
pub const EXPOSED_RESPONSE_HEADERS: [&str; 4] = [
    "PAYMENT-REQUIRED",
    "PAYMENT-RESPONSE",
    "X-PAYMENT-RESPONSE",
    "Retry-After",
];
/// Default `Access-Control-Max-Age`: 600 seconds (the longest Chromium honours is 7200).
pub const DEFAULT_MAX_AGE: u64 = 600;

/// A configured origin that is not an exact origin (`scheme://host[:port]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidOrigin {
    /// The origin as given.
    pub origin: String,
    /// Why it is refused.
    pub why: &'static str,
}

impl fmt::Display for InvalidOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CORS origin {:?}: {}", self.origin, self.why)
    }
}

impl std::error::Error for InvalidOrigin {}

/// CORS for a payee, so that a payer running in a browser (a web agent, an extension) can call
/// paid routes and read the payment headers: an exact-origin allowlist as a tower [`Layer`].
///
/// Browsers send a payment header (`PAYMENT-SIGNATURE`, `X-PAYMENT`, `X-Payment-Mandate`) only
/// after a preflight, and let a page read a response header other than the CORS-safelisted
/// ones only when the response exposes it. The layer, outside the paid routes:
///
/// - **Preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
///   origin: answered `204` by the layer itself, never by the service it wraps (so never by
///   payment code), with `Access-Control-Allow-Origin: <origin>`, `Vary: Origin`,
///   `Access-Control-Allow-Methods` (the configured methods), `Access-Control-Allow-Headers`
///   ([`ALLOWED_REQUEST_HEADERS`] and any added with [`Cors::with_allowed_header`]) and
///   `Access-Control-Max-Age` ([`DEFAULT_MAX_AGE`] seconds unless set).
/// - **Preflight from an origin not on the list**: answered `403` by the layer, with no CORS
///   headers (the browser refuses the request it was asking about) and the JSON body
///   `{"error": "FORBIDDEN", "message": "…"}`, which a developer sees in the browser's network
///   panel. The wrapped service is not called.
/// - **Other requests** go to the wrapped service. The response to an allowed origin gets
///   `Access-Control-Allow-Origin: <origin>`, `Vary: Origin` and
///   `Access-Control-Expose-Headers` ([`EXPOSED_RESPONSE_HEADERS`]: `PAYMENT-REQUIRED`,
///   `PAYMENT-RESPONSE`, x402 v1's `X-PAYMENT-RESPONSE`, `Retry-After`). A response to another
///   origin, or to a request without `Origin`, gets no CORS headers, only `Vary: Origin`
///   (appended to any `Vary` already there), because a cache must not serve one origin's
///   response to another.
///
/// Origins are compared exactly (byte for byte) with the `Origin` header, after the
/// configured ones are normalised (lowercased, a default port and one trailing `/` removed).
/// There is no wildcard: `*` and `null` (the opaque origin of sandboxed frames and local files)
/// are refused by [`Cors::new`]. Credentials are not allowed (no
/// `Access-Control-Allow-Credentials`): a payment travels in its own header, not in a cookie.
/// With an empty allowlist the layer is a no-op: every request goes to the wrapped service and
/// every response is unchanged.
///
/// CORS is not access control: a request that needs no preflight (a plain `GET` without a
/// payment header) from any origin still reaches the service, as it would from any non-browser
/// client; a browser only withholds the response from a page of a disallowed origin. The
/// payment rules are the same for every caller.
///
/// ```
/// use aep2_axum::Cors;
/// use axum::http::Method;
/// use axum::{Router, routing::get};
///
/// # fn main() -> Result<(), aep2_axum::InvalidOrigin> {
/// let cors = Cors::new(["https://app.example.com"], &[Method::GET, Method::POST])?;
/// // Last, so that it wraps every route (and the fallback): a preflight never reaches a paid
/// // route's layer.
/// let app: Router = Router::new().route("/report", get(|| async { "paid content" })).layer(cors);
/// # let _ = app;
/// # Ok(()) }
/// ```
///
/// `Cors::layer` wraps a service in a [`CorsService`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cors {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    origins: Vec<HeaderValue>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Vec<String>,
    max_age: u64,
}

/// `origin` in the form browsers send: scheme and host lowercased, the scheme's default port and
/// one trailing `/` removed.
fn normalise(origin: &str) -> Result<HeaderValue, InvalidOrigin> {
    let bad = |why| InvalidOrigin {
        origin: origin.to_owned(),
        why,
    };
    match origin {
        "*" => return Err(bad("a wildcard is not allowed; list each origin")),
        "null" => return Err(bad("the opaque origin null is not allowed")),
        _ => {}
    }
    let lower = origin.strip_suffix('/').unwrap_or(origin).to_ascii_lowercase();
    let Some((scheme, authority)) = lower.split_once("://") else {
        return Err(bad("not scheme://host[:port]"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(bad("the scheme is not a URI scheme"));
    }
    if authority.is_empty() || !authority.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad("the host is empty or not printable ASCII"));
    }
    if authority.contains(['/', '?', '#', '@', '*']) {
        return Err(bad("an origin has no path, query, fragment, userinfo or wildcard"));
    }
    let default_port = match scheme {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    let authority = match default_port {
        Some(p) if authority.len() > p.len() && authority.ends_with(p) => &authority[..authority.len() - p.len()],
        _ => authority,
    };
    HeaderValue::from_str(&format!("{scheme}://{authority}")).map_err(|_| bad("not a header value"))
}

impl Cors {
    /// A CORS layer allowing exactly `origins` (each `scheme://host[:port]`, e.g.
    /// `https://app.example.com`; see [`Cors`] for the normalisation) to use
    /// `methods` (`Access-Control-Allow-Methods`, e.g. `&[Method::GET, Method::POST]`; none
    /// writes no such header, which lets a browser use `GET`, `HEAD` and `POST` only). An empty
    /// `origins` gives a no-op layer. A repeated origin is kept once.
    ///
    /// Errors: an origin that is `*`, `null`, or not `scheme://host[:port]` ([`InvalidOrigin`]).
    pub fn new<I, O>(origins: I, methods: &[Method]) -> Result<Cors, InvalidOrigin>
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        let mut list: Vec<HeaderValue> = Vec::new();
        for o in origins {
            let v = normalise(o.as_ref())?;
            if !list.contains(&v) {
                list.push(v);
            }
        }
        let methods = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let allow_methods = if methods.is_empty() {
            None
        } else {
            HeaderValue::from_str(&methods).ok()
        };
        Ok(Cors {
            config: Arc::new(Config {
                origins: list,
                allow_methods,
                allow_headers: ALLOWED_REQUEST_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
                max_age: DEFAULT_MAX_AGE,
            }),
        })
    }

    fn edit(self, f: impl FnOnce(&mut Config)) -> Cors {
        let c = &self.config;
        let mut config = Config {
            origins: c.origins.clone(),
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
            max_age: c.max_age,
        };
        f(&mut config);
        Cors {
            config: Arc::new(config),
        }
    }

    /// `Access-Control-Max-Age` of preflight answers, in seconds (default [`DEFAULT_MAX_AGE`]).
    #[must_use]
    pub fn with_max_age(self, seconds: u64) -> Cors {
        self.edit(|c| c.max_age = seconds)
    }

    /// Allows one more request header in preflights (beyond [`ALLOWED_REQUEST_HEADERS`]), e.g.
    /// `Authorization` for a route that also takes a bearer token.
    #[must_use]
    pub fn with_allowed_header(self, name: HeaderName) -> Cors {
        self.edit(|c| {
            if !c.allow_headers.iter().any(|h| h.eq_ignore_ascii_case(name.as_str())) {
                c.allow_headers.push(name.as_str().to_owned());
            }
        })
    }

    /// Whether any origin is allowed (an empty allowlist is a no-op layer).
    pub fn is_enabled(&self) -> bool {
        !self.config.origins.is_empty()
    }

    /// The allowed origins, normalised.
    pub fn origins(&self) -> &[HeaderValue] {
        &self.config.origins
    }

    /// Whether a request's `Origin` value is on the list (exact comparison).
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.config.origins.iter().any(|o| o == origin)
    }

    /// The allowed origin of a request, when it names one.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let mut values = headers.get_all(ORIGIN).iter();
        let origin = values.next()?;
        // Two Origin headers are no origin a browser sends.
        (values.next().is_none() && self.allows(origin)).then(|| origin.clone())
    }

    fn preflight<B: Default + From<String>>(&self, origin: Option<HeaderValue>) -> Response<B> {
        let Some(origin) = origin else {
            let body = r#"{"error":"FORBIDDEN","message":"CORS preflight from an origin this payee does not allow"}"#;
            let mut resp = Response::new(B::from(body.to_owned()));
            *resp.status_mut() = StatusCode::FORBIDDEN;
            let h = resp.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.append(VARY, HeaderValue::from_static("Origin"));
            return resp;
        };
        let mut resp = Response::new(B::default());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let c = &self.config;
        let h = resp.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(m) = &c.allow_methods {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, m.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&c.allow_headers.join(", ")) {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(c.max_age));
        resp
    }
}

fn decorate(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE, Retry-After"),
        );
    }
}

impl<S> Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService {
            inner,
            cors: self.clone(),
        }
    }
}

/// A service wrapped by [`Cors`].
#[derive(Clone, Debug)]
pub struct CorsService<S> {
    inner: S,
    cors: Cors,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !self.cors.is_enabled() {
            return Box::pin(self.inner.call(req));
        }
        let headers = req.headers();
        let origin = self.cors.allowed_origin(headers);
        let preflight = req.method() == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let resp = self.cors.preflight(origin);
            return Box::pin(async move { Ok(resp) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            decorate(resp.headers_mut(), origin);
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use std::convert::Infallible;
    use tower::ServiceExt;

    const APP: &str = "https://app.example.com";

    fn cors() -> Cors {
        Cors::new([APP, "http://localhost:5173"], &[Method::GET, Method::POST]).unwrap()
    }

    /// A paid route stand-in that must not be reached.
    fn unreachable_service()
    -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone {
        tower::service_fn(|req: Request<Body>| async move {
            panic!("the CORS layer let {} {} through", req.method(), req.uri())
        })
    }

    /// A paid route stand-in that answers with the payment headers.
    fn paid_service() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone
    {
        tower::service_fn(|_req: Request<Body>| async move {
            let mut resp = Response::new(Body::from("paid content"));
            resp.headers_mut()
                .insert("PAYMENT-RESPONSE", HeaderValue::from_static("eyJzdWNjZXNzIjp0cnVlfQ=="));
            resp.headers_mut()
                .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
            Ok::<_, Infallible>(resp)
        })
    }

    fn preflight(origin: &str) -> Request<Body> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/paid/intent")
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header("Access-Control-Request-Headers", "payment-signature")
            .body(Body::empty())
            .unwrap()
    }

    fn get(origin: Option<&str>) -> Request<Body> {
        let mut b = Request::builder().method(Method::GET).uri("/paid/intent");
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(Body::empty()).unwrap()
    }

    fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
        resp.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn has_cors_headers(resp: &Response<Body>) -> bool {
        resp.headers().keys().any(|k| k.as_str().starts_with("access-control-"))
    }

    async fn body_text(resp: Response<Body>) -> String {
        use http_body_util::BodyExt;
        String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_allowed_preflight_is_answered_by_the_layer() {
        let resp = cors()
            .layer(unreachable_service())
            .oneshot(preflight(APP))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
        assert_eq!(header(&resp, "vary"), Some("Origin"));
        assert_eq!(header(&resp, "access-control-allow-methods"), Some("GET, POST"));
        let allowed = header(&resp, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for h in ["payment-signature", "x-payment", "x-payment-mandate", "content-type"] {
            assert!(allowed.split(", ").any(|a| a == h), "{h} in {allowed}");
        }
        assert_eq!(header(&resp, "access-control-max-age"), Some("600"));
        assert_eq!(header(&resp, "access-control-allow-credentials"), None);
        assert!(body_text(resp).await.is_empty());
    }

    #[tokio::test]
    async fn a_preflight_from_another_origin_is_refused_without_cors_headers() {
        for origin in [
            "https://evil.example.com",
            "https://app.example.com.evil.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "null",
        ] {
            let resp = cors()
                .layer(unreachable_service())
                .oneshot(preflight(origin))
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
            assert!(!has_cors_headers(&resp), "{origin}: {:?}", resp.headers());
            assert_eq!(header(&resp, "content-type"), Some("application/json"));
            let v: serde_json::Value = serde_json::from_str(&body_text(resp).await).unwrap();
            assert_eq!(v["error"], "FORBIDDEN");
        }
    }

    #[tokio::test]
    async fn actual_responses_to_an_allowed_origin_expose_the_payment_headers() {
        let resp = cors().layer(paid_service()).oneshot(get(Some(APP))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
        let vary: Vec<&str> = resp
            .headers()
            .get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"], "appended, not replaced");
        let exposed = header(&resp, "access-control-expose-headers").unwrap();
        assert_eq!(exposed, EXPOSED_RESPONSE_HEADERS.join(", "));
        assert!(exposed.contains("PAYMENT-REQUIRED") && exposed.contains("PAYMENT-RESPONSE"));
        assert!(header(&resp, "payment-response").is_some());
        assert_eq!(body_text(resp).await, "paid content");
    }

    #[tokio::test]
    async fn other_origins_and_no_origin_get_only_vary() {
        for origin in [Some("https://evil.example.com"), None] {
            let resp = cors().layer(paid_service()).oneshot(get(origin)).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(!has_cors_headers(&resp), "{origin:?}");
            let vary: Vec<&str> = resp
                .headers()
                .get_all(VARY)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        }
    }

    #[tokio::test]
    async fn options_without_cors_headers_is_not_a_preflight() {
        let req = Request::builder()
            .method(Method::OPTIONS)
            .uri("/paid/intent")
            .header(ORIGIN, APP)
            .body(Body::empty())
            .unwrap();
        let resp = cors().layer(paid_service()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "the service answered");
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    }

    #[tokio::test]
    async fn an_empty_allowlist_is_a_no_op() {
        let off = Cors::new(Vec::<String>::new(), &[Method::GET]).unwrap();
        assert!(!off.is_enabled());
        let resp = off.layer(paid_service()).oneshot(preflight(APP)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "the preflight reached the service");
        assert!(!has_cors_headers(&resp));
        let vary: Vec<&str> = resp
            .headers()
            .get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(vary, ["Accept-Encoding"], "unchanged");
    }

    #[tokio::test]
    async fn an_axum_router_answers_preflights_before_the_route() {
        use axum::routing::get as get_route;
        let paid =
            get_route(|| async { "paid content" }).layer(tower::layer::layer_fn(|_inner: axum::routing::Route| {
                unreachable_service()
            }));
        let app = axum::Router::new().route("/paid/intent", paid).layer(cors());
        let resp = app.clone().oneshot(preflight(APP)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
        // An unknown path: the router's fallback, wrapped too.
        let mut other = preflight(APP);
        *other.uri_mut() = "/nowhere".parse().unwrap();
        let resp = app.oneshot(other).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        let c = Cors::new(
            [
                "HTTPS://App.Example.COM/",
                "http://localhost:80",
                "https://api.example.com:443",
                "http://127.0.0.1:8080",
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
                "https://app.example.com",
            ],
            &[Method::GET],
        )
        .unwrap();
        let got: Vec<&str> = c.origins().iter().map(|o| o.to_str().unwrap()).collect();
        assert_eq!(
            got,
            [
                "https://app.example.com",
                "http://localhost",
                "https://api.example.com",
                "http://127.0.0.1:8080",
                "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
            ]
        );
        for bad in [
            "*",
            "null",
            "app.example.com",
            "https://",
            "https://app.example.com/path",
            "https://app.example.com?x",
            "https://user@app.example.com",
            "https://*.example.com",
            "https://app example.com",
            "1http://app.example.com",
        ] {
            let e = Cors::new([bad], &[Method::GET]).unwrap_err();
            assert_eq!(e.origin, bad);
            assert!(e.to_string().starts_with("CORS origin"), "{e}");
        }
    }

    #[tokio::test]
    async fn extra_headers_and_max_age_are_configurable() {
        let c = cors()
            .with_allowed_header(axum::http::header::AUTHORIZATION)
            .with_allowed_header(HeaderName::from_static("x-payment"))
            .with_max_age(60);
        let resp = c.layer(unreachable_service()).oneshot(preflight(APP)).await.unwrap();
        assert_eq!(
            header(&resp, "access-control-allow-headers"),
            Some("PAYMENT-SIGNATURE, X-PAYMENT, X-Payment-Mandate, Content-Type, authorization")
        );
        assert_eq!(header(&resp, "access-control-max-age"), Some("60"));
    }
}
