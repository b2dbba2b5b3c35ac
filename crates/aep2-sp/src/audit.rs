//! The audit trail (spec `aep2.md#sp-audit`): what request a payment paid for, as the payee
//! describes it to the SP ([`RequestDescriptor`], header [`REQUEST_HEADER`]), and one record per
//! stored mandate, exported as JSON Lines or CSV in bounded pages.

use aep2::codec::{hex_decode_0x, hex_encode_0x};
use aep2::json::{self, Limits, Object, Value};
use aep2::uint::U256;
use aep2::{Error, Reason};

/// The request header in which a payee describes, to `POST /enqueue`, the request a mandate pays
/// for (spec `aep2.md#sp-audit`): the compact JSON of a [`RequestDescriptor`].
pub const REQUEST_HEADER: &str = "aep2-request";

/// The longest header value [`RequestDescriptor::parse`] reads, in bytes.
pub const MAX_REQUEST_HEADER_BYTES: usize = 2048;

/// The longest text member (method, URL, tool name, message id) of a descriptor, in bytes: a
/// longer one is cut at a character boundary by [`RequestDescriptor::new`] and marked `truncated`.
pub const MAX_DESCRIPTOR_TEXT_BYTES: usize = 512;

/// What was paid for: the carrier's own description of the request, and the request hash the
/// payee bound the payment to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDescriptor {
    /// The request.
    pub request: PaidRequest,
    /// The payee's request hash: the x402 request's, the MCP tool call's, the A2A message's.
    pub hash: [u8; 32],
    /// Whether a text member was cut to [`MAX_DESCRIPTOR_TEXT_BYTES`].
    pub truncated: bool,
}

/// The request of a [`RequestDescriptor`], by carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaidRequest {
    /// An HTTP request (x402): its method and its target as received (path and query).
    Http {
        /// The method.
        method: String,
        /// The request target.
        url: String,
    },
    /// An MCP tool call: the tool's name and the SHA-256 of the JCS form of its arguments.
    Mcp {
        /// The tool's name.
        tool: String,
        /// SHA-256 of JCS(arguments), `{}` when the call has none.
        arguments_hash: [u8; 32],
    },
    /// An A2A message: its `messageId`.
    A2a {
        /// The message id.
        message_id: String,
    },
}

impl RequestDescriptor {
    /// A descriptor, cutting any text member longer than [`MAX_DESCRIPTOR_TEXT_BYTES`].
    pub fn new(request: PaidRequest, hash: [u8; 32]) -> RequestDescriptor {
        let mut truncated = false;
        let mut cut = |s: String| {
            if s.len() <= MAX_DESCRIPTOR_TEXT_BYTES {
                return s;
            }
            truncated = true;
            let mut end = MAX_DESCRIPTOR_TEXT_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        };
        let request = match request {
            PaidRequest::Http { method, url } => PaidRequest::Http {
                method: cut(method),
                url: cut(url),
            },
            PaidRequest::Mcp { tool, arguments_hash } => PaidRequest::Mcp {
                tool: cut(tool),
                arguments_hash,
            },
            PaidRequest::A2a { message_id } => PaidRequest::A2a {
                message_id: cut(message_id),
            },
        };
        RequestDescriptor {
            request,
            hash,
            truncated,
        }
    }

    /// The MCP descriptor of a tool call: `arguments` hashed in JCS form (`{}` when absent).
    pub fn mcp(tool: &str, arguments: Option<&Value>, hash: [u8; 32]) -> RequestDescriptor {
        let empty = Value::Object(Object::new());
        let canonical = json::to_canonical(arguments.unwrap_or(&empty));
        let arguments_hash = aep2::hash::sha256(canonical.as_bytes());
        RequestDescriptor::new(
            PaidRequest::Mcp {
                tool: tool.to_owned(),
                arguments_hash,
            },
            hash,
        )
    }

    /// The JSON object: `carrier` (`http`, `mcp`, `a2a`), the carrier's members, `requestHash`,
    /// and `truncated` only when true.
    pub fn to_json(&self) -> Value {
        let text = |s: &str| Value::String(s.to_owned());
        let mut o = Object::new();
        match &self.request {
            PaidRequest::Http { method, url } => {
                o.insert("carrier", text("http"));
                o.insert("method", text(method));
                o.insert("url", text(url));
            }
            PaidRequest::Mcp { tool, arguments_hash } => {
                o.insert("carrier", text("mcp"));
                o.insert("tool", text(tool));
                o.insert("argumentsHash", Value::String(hex_encode_0x(arguments_hash)));
            }
            PaidRequest::A2a { message_id } => {
                o.insert("carrier", text("a2a"));
                o.insert("messageId", text(message_id));
            }
        }
        o.insert("requestHash", Value::String(hex_encode_0x(&self.hash)));
        if self.truncated {
            o.insert("truncated", Value::Bool(true));
        }
        Value::Object(o)
    }

    /// The header form: compact JSON.
    pub fn to_header(&self) -> String {
        json::to_compact(&self.to_json())
    }

    /// Reads a header value: at most [`MAX_REQUEST_HEADER_BYTES`], a closed object of one
    /// carrier's members, text members of at most [`MAX_DESCRIPTOR_TEXT_BYTES`] without control
    /// characters, hashes as `0x` and 64 lowercase hex digits. Anything else is `field_type`.
    pub fn parse(text: &str) -> Result<RequestDescriptor, Error> {
        let bad = |why: &str| Error::new(Reason::FieldType, format!("{REQUEST_HEADER}: {why}"));
        if text.len() > MAX_REQUEST_HEADER_BYTES {
            return Err(bad(&format!("over {MAX_REQUEST_HEADER_BYTES} bytes")));
        }
        let v = json::parse(text, &Limits::AEP2).map_err(|e| bad(&e.to_string()))?;
        let Value::Object(o) = v else {
            return Err(bad("not a JSON object"));
        };
        let string = |name: &str| -> Result<String, Error> {
            match o.get(name) {
                Some(Value::String(s)) if s.len() <= MAX_DESCRIPTOR_TEXT_BYTES && !s.chars().any(char::is_control) => {
                    Ok(s.clone())
                }
                Some(_) => Err(bad(&format!(
                    "{name} must be a string of at most {MAX_DESCRIPTOR_TEXT_BYTES} bytes without control characters"
                ))),
                None => Err(bad(&format!("{name} is missing"))),
            }
        };
        let hash = |name: &str| -> Result<[u8; 32], Error> {
            let s = string(name)?;
            let lower = s.len() == 66 && s[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            lower
                .then(|| hex_decode_0x(&s).and_then(|b| <[u8; 32]>::try_from(b).ok()))
                .flatten()
                .ok_or_else(|| bad(&format!("{name} must be 0x and 64 lowercase hex digits")))
        };
        let (request, members): (PaidRequest, &[&str]) = match string("carrier")?.as_str() {
            "http" => (
                PaidRequest::Http {
                    method: string("method")?,
                    url: string("url")?,
                },
                &["carrier", "method", "url", "requestHash", "truncated"],
            ),
            "mcp" => (
                PaidRequest::Mcp {
                    tool: string("tool")?,
                    arguments_hash: hash("argumentsHash")?,
                },
                &["carrier", "tool", "argumentsHash", "requestHash", "truncated"],
            ),
            "a2a" => (
                PaidRequest::A2a {
                    message_id: string("messageId")?,
                },
                &["carrier", "messageId", "requestHash", "truncated"],
            ),
            other => return Err(bad(&format!("unknown carrier {other:?}"))),
        };
        if let Some((name, _)) = o.iter().find(|(name, _)| !members.contains(name)) {
            return Err(bad(&format!("unknown member {name:?}")));
        }
        let truncated = match o.get("truncated") {
            None => false,
            Some(Value::Bool(true)) => true,
            Some(_) => return Err(bad("truncated, when present, must be true")),
        };
        Ok(RequestDescriptor {
            request,
            hash: hash("requestHash")?,
            truncated,
        })
    }
}

/// The most records one page of the audit trail holds.
pub const MAX_PAGE: usize = 1000;

/// One payment as the audit trail shows it (spec `aep2.md#sp-audit`, *Record*).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its storage sequence number (the page order; not a member of the record).
    pub seq: u64,
    /// When the SP accepted it (unix seconds).
    pub accepted_at: u64,
    /// The mandate id.
    pub mandate_id: [u8; 32],
    /// The profile name.
    pub profile: String,
    /// The ledger's deployment name.
    pub domain: String,
    /// Whose funds.
    pub owner: String,
    /// Who signed: the leaf lane's agent, or the owner.
    pub agent: String,
    /// The chain's lane ids, root first (empty without lanes); the last is the leaf.
    pub lanes: Vec<[u8; 32]>,
    /// The leaf lane's purpose.
    pub purpose: Option<String>,
    /// The payee.
    pub payee: String,
    /// The token.
    pub token: String,
    /// The amount.
    pub amount: U256,
    /// The nonce in decimal.
    pub nonce: String,
    /// The mandate's deadline.
    pub deadline: u64,
    /// The mandate's `ref`.
    pub reference: String,
    /// The payee's request descriptor (compact JSON), if it sent one.
    pub request: Option<String>,
    /// The stored receipt (compact JSON).
    pub receipt: String,
    /// `accepted`, `settled` or `failed`.
    pub status: &'static str,
    /// The settlement's reason code, for `failed`.
    pub failure: Option<String>,
    /// The settling transaction.
    pub tx: Option<[u8; 32]>,
    /// Its block.
    pub block: Option<u64>,
}

/// The CSV header line's fields, in record order.
pub const CSV_COLUMNS: [&str; 21] = [
    "acceptedAt",
    "mandateId",
    "profile",
    "domain",
    "owner",
    "agent",
    "lane",
    "lanes",
    "purpose",
    "payee",
    "token",
    "amount",
    "nonce",
    "deadline",
    "ref",
    "request",
    "receipt",
    "status",
    "failure",
    "tx",
    "block",
];

impl AuditRecord {
    /// The page position just after this record.
    pub fn cursor(&self) -> Cursor {
        Cursor { seq: self.seq }
    }

    /// The JSON object (spec member order; stored JSON texts embedded as values).
    pub fn to_json(&self) -> Value {
        let text = |s: &str| Value::String(s.to_owned());
        let hex = |b: &[u8; 32]| Value::String(hex_encode_0x(b));
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        // Stored by the ledger from checked JSON; shown as text should it ever not parse.
        let embedded = |t: &str| json::parse(t, &Limits::AEP2).unwrap_or_else(|_| text(t));
        Value::Object(
            Object::new()
                .with("acceptedAt", Value::from_u64(self.accepted_at))
                .with("mandateId", hex(&self.mandate_id))
                .with("profile", text(&self.profile))
                .with("domain", text(&self.domain))
                .with("owner", text(&self.owner))
                .with("agent", text(&self.agent))
                .with("lane", opt(self.lanes.last().map(hex)))
                .with("lanes", Value::Array(self.lanes.iter().map(hex).collect()))
                .with("purpose", opt(self.purpose.as_deref().map(text)))
                .with("payee", text(&self.payee))
                .with("token", text(&self.token))
                .with("amount", Value::String(self.amount.to_string()))
                .with("nonce", text(&self.nonce))
                .with("deadline", Value::from_u64(self.deadline))
                .with("ref", text(&self.reference))
                .with("request", opt(self.request.as_deref().map(embedded)))
                .with("receipt", embedded(&self.receipt))
                .with("status", text(self.status))
                .with("failure", opt(self.failure.as_deref().map(text)))
                .with("tx", opt(self.tx.as_ref().map(hex)))
                .with("block", opt(self.block.map(Value::from_u64))),
        )
    }

    /// One JSON Lines line (compact JSON and `\n`).
    pub fn to_jsonl(&self) -> String {
        let mut line = json::to_compact(&self.to_json());
        line.push('\n');
        line
    }

    /// One CSV line (RFC 4180, every field quoted, formula-like text defused) and `\r\n`.
    pub fn to_csv(&self) -> String {
        let hex = |b: &[u8; 32]| hex_encode_0x(b);
        let fields = [
            self.accepted_at.to_string(),
            hex(&self.mandate_id),
            self.profile.clone(),
            self.domain.clone(),
            self.owner.clone(),
            self.agent.clone(),
            self.lanes.last().map(hex).unwrap_or_default(),
            self.lanes.iter().map(hex).collect::<Vec<_>>().join(" "),
            self.purpose.clone().unwrap_or_default(),
            self.payee.clone(),
            self.token.clone(),
            self.amount.to_string(),
            self.nonce.clone(),
            self.deadline.to_string(),
            self.reference.clone(),
            self.request.clone().unwrap_or_default(),
            self.receipt.clone(),
            self.status.to_owned(),
            self.failure.clone().unwrap_or_default(),
            self.tx.as_ref().map(hex).unwrap_or_default(),
            self.block.map(|b| b.to_string()).unwrap_or_default(),
        ];
        csv_line(fields.iter().map(String::as_str))
    }
}

/// The CSV header line.
pub fn csv_header() -> String {
    csv_line(CSV_COLUMNS.into_iter())
}

fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('"');
        if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            line.push('\'');
        }
        line.push_str(&f.replace('"', "\"\""));
        line.push('"');
    }
    line.push_str("\r\n");
    line
}

/// A position in the audit trail: the storage sequence number of the last record read (the
/// ledger numbers mandates as it stores them, so a page never misses one stored after it,
/// whatever the clocks of the instances that stored them say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// The record's sequence number.
    pub seq: u64,
}

impl Cursor {
    /// Its text form: the sequence number in decimal.
    pub fn to_text(&self) -> String {
        self.seq.to_string()
    }

    /// Reads the text form (`field_type` otherwise).
    pub fn parse(text: &str) -> Result<Cursor, Error> {
        let canonical = !text.is_empty()
            && text.len() <= 20
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        canonical
            .then(|| text.parse::<u64>().ok())
            .flatten()
            .map(|seq| Cursor { seq })
            .ok_or_else(|| Error::new(Reason::FieldType, "after: not a cursor this SP returned"))
    }
}

/// A decimal unix time without sign or leading zeros, at most 2^53 − 1.
pub fn parse_unix(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|&t| t < (1 << 53))
}

/// Which records to read (spec `aep2.md#sp-audit`, *Export*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only payments under this lane or one of its sub-lanes.
    pub lane: Option<[u8; 32]>,
    /// Only records accepted at or after this time.
    pub since: Option<u64>,
    /// Only records after this position.
    pub after: Option<Cursor>,
    /// The most records returned, 1 ..= [`MAX_PAGE`].
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            lane: None,
            since: None,
            after: None,
            limit: MAX_PAGE,
        }
    }
}

/// The form of a page of `GET /v1/audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFormat {
    /// `{"success": true, "records": [...], "next": cursor | null}`.
    Json,
    /// One record per line; the next cursor in [`NEXT_CURSOR_HEADER`].
    Jsonl,
    /// A header line, then one record per line; the next cursor in [`NEXT_CURSOR_HEADER`].
    Csv,
}

/// The response header naming the next page of a `jsonl` or `csv` page.
pub const NEXT_CURSOR_HEADER: &str = "aep2-next-cursor";

/// Reads the query of `GET /v1/audit`: `lane`, `since`, `after`, `limit` (1 ..= 1000),
/// `format`, each at most once; anything else is `field_type` (`unknown_field` for another name).
pub fn parse_audit_query(raw: Option<&str>) -> Result<(AuditQuery, PageFormat), Error> {
    let bad = |why: String| Error::new(Reason::FieldType, why);
    let mut query = AuditQuery::default();
    let mut format = PageFormat::Json;
    let mut seen = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&k) {
            return Err(bad(format!("query parameter {k} given twice")));
        }
        seen.push(k);
        match k {
            "lane" => {
                let lower = v.len() == 66
                    && v.starts_with("0x")
                    && v[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                query.lane = Some(
                    lower
                        .then(|| hex_decode_0x(v).and_then(|b| <[u8; 32]>::try_from(b).ok()))
                        .flatten()
                        .ok_or_else(|| bad("lane must be 0x and 64 lowercase hex digits".into()))?,
                );
            }
            "since" => query.since = Some(parse_unix(v).ok_or_else(|| bad("since must be a unix time".into()))?),
            "after" => query.after = Some(Cursor::parse(v)?),
            "limit" => {
                query.limit = parse_unix(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("limit must be 1 to {MAX_PAGE}")))?;
            }
            "format" => {
                format = match v {
                    "json" => PageFormat::Json,
                    "jsonl" => PageFormat::Jsonl,
                    "csv" => PageFormat::Csv,
                    _ => return Err(bad("format must be json, jsonl or csv".into())),
                }
            }
            _ => {
                return Err(Error::new(
                    Reason::UnknownField,
                    "query parameters are lane, since, after, limit and format",
                ));
            }
        }
    }
    Ok((query, format))
}

/// A rendered page: its content type, body and the cursor of the next page (`None` on the last).
pub fn render_page(page: &[AuditRecord], limit: usize, format: PageFormat) -> (&'static str, String, Option<String>) {
    let next = (page.len() == limit)
        .then(|| page.last().map(|r| r.cursor().to_text()))
        .flatten();
    match format {
        PageFormat::Json => {
            let body = Object::new()
                .with("success", Value::Bool(true))
                .with("records", Value::Array(page.iter().map(AuditRecord::to_json).collect()))
                .with("next", next.clone().map_or(Value::Null, Value::String));
            ("application/json", json::to_compact(&Value::Object(body)), next)
        }
        PageFormat::Jsonl => (
            "application/x-ndjson",
            page.iter().map(AuditRecord::to_jsonl).collect(),
            next,
        ),
        PageFormat::Csv => {
            let mut body = csv_header();
            body.extend(page.iter().map(AuditRecord::to_csv));
            ("text/csv; charset=utf-8", body, next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carrier_round_trips_through_its_header_form() {
        let all = [
            RequestDescriptor::new(
                PaidRequest::Http {
                    method: "GET".into(),
                    url: "/paid/intent?q=1".into(),
                },
                [1; 32],
            ),
            RequestDescriptor::mcp("weather", None, [2; 32]),
            RequestDescriptor::new(
                PaidRequest::A2a {
                    message_id: "m-1".into(),
                },
                [3; 32],
            ),
        ];
        for d in all {
            assert_eq!(RequestDescriptor::parse(&d.to_header()).unwrap(), d);
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let url = format!("/{}", "é".repeat(400));
        let d = RequestDescriptor::new(
            PaidRequest::Http {
                method: "GET".into(),
                url,
            },
            [0; 32],
        );
        let PaidRequest::Http { url, .. } = &d.request else {
            unreachable!()
        };
        assert!(d.truncated && url.len() <= MAX_DESCRIPTOR_TEXT_BYTES && url.len() >= MAX_DESCRIPTOR_TEXT_BYTES - 1);
        assert_eq!(RequestDescriptor::parse(&d.to_header()).unwrap(), d);
    }

    #[test]
    fn csv_quotes_every_field_and_defuses_formulas() {
        let line = csv_line(["plain", "a \"q\", b", "=HYPERLINK(1)", "-1", ""].into_iter());
        assert_eq!(line, "\"plain\",\"a \"\"q\"\", b\",\"'=HYPERLINK(1)\",\"'-1\",\"\"\r\n");
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_text() {
        let c = Cursor { seq: 1_700_000_000 };
        assert_eq!(Cursor::parse(&c.to_text()).unwrap(), c);
        for bad in ["", "01", "-1", "1.5", "x", "99999999999999999999999"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_headers_are_field_type() {
        let hash = format!("\"requestHash\":\"0x{}\"", "ab".repeat(32));
        for text in [
            "[]".to_owned(),
            "{}".to_owned(),
            format!("{{\"carrier\":\"ftp\",{hash}}}"),
            format!("{{\"carrier\":\"http\",\"method\":\"GET\",{hash}}}"),
            format!("{{\"carrier\":\"http\",\"method\":\"GET\",\"url\":\"/\",{hash},\"x\":1}}"),
            format!("{{\"carrier\":\"http\",\"method\":\"GET\",\"url\":\"/\\n\",{hash}}}"),
            format!("{{\"carrier\":\"http\",\"method\":\"GET\",\"url\":\"/\",{hash},\"truncated\":false}}"),
            format!(
                "{{\"carrier\":\"a2a\",\"messageId\":\"m\",\"requestHash\":\"0x{}\"}}",
                "AB".repeat(32)
            ),
            format!("{{\"carrier\":\"a2a\",\"messageId\":\"{}\",{hash}}}", "m".repeat(2100)),
        ] {
            let e = RequestDescriptor::parse(&text).unwrap_err();
            assert_eq!(e.code(), "field_type", "{text}");
        }
    }
}
