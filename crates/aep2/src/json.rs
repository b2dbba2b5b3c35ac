//! A strict, bounded JSON parser and writer (spec `aep2.md#json-rules`, `aep2.md#limits`).
//!
//! General-purpose JSON libraries keep the last of two duplicate members and round large
//! numbers; either would let two verifiers read the same bytes differently. This parser
//! rejects duplicates, keeps number text verbatim, preserves member order, and enforces
//! every size limit while parsing, so hostile input costs at most linear time and bounded
//! memory.

use crate::error::{Error, Result};
use crate::reason::Reason;

/// Parser limits. The defaults are the normative AEP2 limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting depth of arrays and objects (the top-level value is depth 1).
    pub max_depth: usize,
    /// Maximum length of one decoded string, in UTF-8 bytes.
    pub max_string_bytes: usize,
    /// Maximum number of members in one object (and elements in one array).
    pub max_members: usize,
    /// Maximum length of one number token, in characters.
    pub max_number_len: usize,
}

impl Limits {
    /// The AEP2 v1 limits for envelopes and receipts.
    pub const AEP2: Limits = Limits {
        max_depth: 8,
        max_string_bytes: 1024,
        max_members: 32,
        max_number_len: 24,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::AEP2
    }
}

/// A parsed JSON value. Numbers keep their source text; objects keep member order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as its exact source text (RFC 8259 grammar already checked).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Object),
}

impl Value {
    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// A number value from an unsigned integer (always canonical JSON text).
    pub fn from_u64(n: u64) -> Value {
        Value::Number(n.to_string())
    }
}

/// A JSON object with unique member names, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    members: Vec<(String, Value)>,
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object::default()
    }

    /// Appends a member. Callers building objects use distinct names; a repeated name
    /// replaces the earlier value so the uniqueness invariant always holds.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        let name = name.into();
        if let Some(slot) = self.members.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.members.push((name, value));
        }
    }

    /// Builder form of [`Object::insert`].
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.insert(name, value);
        self
    }

    /// Removes a member, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.members.iter().position(|(k, _)| k == name)?;
        Some(self.members.remove(i).1)
    }

    /// Looks a member up by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Members in source order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Parses exactly one JSON value from `text` under `limits`.
///
/// Errors: `json_invalid` (syntax, BOM, lone surrogates, trailing data),
/// `json_duplicate_key`, `json_limit_exceeded`.
pub fn parse(text: &str, limits: &Limits) -> Result<Value> {
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        i: 0,
        limits,
    };
    p.ws();
    let v = p.value(1)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing data after the JSON value"));
    }
    Ok(v)
}

/// The bytes that end a run of literal string content: the quote, the backslash and the
/// control characters, which must be escaped. One table lookup per byte, because the string
/// contents are most of an envelope's bytes.
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

struct Parser<'a> {
    /// The input as text, so string and number tokens are sliced out of it without
    /// validating their UTF-8 a second time.
    text: &'a str,
    s: &'a [u8],
    i: usize,
    limits: &'a Limits,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::new(Reason::JsonInvalid, format!("{what} at byte {}", self.i))
    }

    fn limit(&self, what: &str) -> Error {
        Error::new(Reason::JsonLimitExceeded, format!("{what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect_lit(&mut self, lit: &[u8], v: Value) -> Result<Value> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.expect_lit(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_lit(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_lit(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn enter(&self, depth: usize) -> Result<()> {
        if depth > self.limits.max_depth {
            Err(self.limit("nesting deeper than the limit"))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.i += 1;
        // Room for a mandate's seven members up front, rather than growing 4 -> 8.
        let mut obj = Object {
            members: Vec::with_capacity(8),
        };
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(obj));
        }
        loop {
            self.ws();
            // The count is checked before the next member is read, so the first fault met in
            // reading order is the one reported.
            if obj.len() == self.limits.max_members {
                return Err(self.limit("more object members than the limit"));
            }
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a member name"));
            }
            let start = self.i;
            let name = self.string()?;
            if obj.get(&name).is_some() {
                return Err(Error::new(
                    Reason::JsonDuplicateKey,
                    format!("duplicate member {name:?} at byte {start}"),
                ));
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            obj.members.push((name, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(obj));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        self.enter(depth)?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            if items.len() == self.limits.max_members {
                return Err(self.limit("more array elements than the limit"));
            }
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.i;
        // The length limit is enforced while scanning, so an over-long token is reported as
        // such even if it would turn out malformed later.
        let scan = |p: &mut Self| -> Result<()> {
            while let Some(b'0'..=b'9') = p.peek() {
                p.i += 1;
                p.check_number_len(start)?;
            }
            Ok(())
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => scan(self)?,
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.check_number_len(start)?;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number fraction"));
            }
            scan(self)?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.check_number_len(start)?;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number exponent"));
            }
            scan(self)?;
        }
        self.check_number_len(start)?;
        // The grammar above admits ASCII only, so these are character boundaries.
        let text = self.text[start..self.i].to_owned();
        // I-JSON (RFC 7493 §2.2): a number beyond the IEEE 754 double range has no agreed value,
        // and RFC 8785 cannot canonicalise it. Only an exponent or more than 308 digits can get
        // there, so plain numbers (every number of a mandate) skip the float parse.
        let may_overflow = text.len() > 308 || text.bytes().any(|b| b == b'e' || b == b'E');
        if may_overflow && !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(Error::new(
                Reason::JsonInvalid,
                format!("number at byte {start} is outside the IEEE 754 double range"),
            ));
        }
        Ok(Value::Number(text))
    }

    fn check_number_len(&self, start: usize) -> Result<()> {
        if self.i - start > self.limits.max_number_len {
            return Err(Error::new(
                Reason::JsonLimitExceeded,
                format!("number longer than the limit at byte {start}"),
            ));
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            v = (v << 4) | u16::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote, escape or control byte in one go.
            let start = self.i;
            self.i += self.s[start..]
                .iter()
                .position(|&c| STRING_STOP[usize::from(c)])
                .unwrap_or(self.s.len() - start);
            // The run ends at an ASCII byte or the end of the input, so both ends are character
            // boundaries of the input text.
            let run = &self.text[start..self.i];
            if out.is_empty() && self.peek() == Some(b'"') {
                // No escapes (every AEP2 string): one allocation of the exact size.
                if run.len() > self.limits.max_string_bytes {
                    return Err(self.limit("string longer than the limit"));
                }
                self.i += 1;
                return Ok(run.to_owned());
            }
            out.push_str(run);
            if out.len() > self.limits.max_string_bytes {
                return Err(self.limit("string longer than the limit"));
            }
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.err("lone high surrogate"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("high surrogate not followed by a low surrogate"));
                                }
                                0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("lone low surrogate"));
                            } else {
                                u32::from(hi)
                            };
                            char::from_u32(cp).ok_or_else(|| self.err("invalid code point"))?
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    out.push(ch);
                }
                _ => return Err(self.err("unescaped control character in string")),
            }
        }
        if out.len() > self.limits.max_string_bytes {
            return Err(self.limit("string longer than the limit"));
        }
        Ok(out)
    }
}

/// Writes `s` as a JSON string literal the way ECMAScript `JSON.stringify` and RFC 8785 do:
/// only `"`, `\` and control characters are escaped; everything else is literal UTF-8.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Bytes below 0x80 are whole characters, so these slice points are char boundaries.
        out.push_str(&s[run..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// RFC 8785 member order: by UTF-16 code units. For ASCII names that is byte order, which
/// is what AEP2 objects use, so the UTF-16 walk is only needed otherwise.
fn jcs_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Serialises `v` compactly, members in their stored order (what `JSON.stringify` produces
/// for the same object). Numbers are written as their stored text.
pub fn to_compact(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, false);
    out
}

/// Serialises `v` per RFC 8785 (JCS): compact, members sorted by UTF-16 code units, numbers in
/// the ECMAScript Number-to-String form of their IEEE 754 double value (`1.50` → `1.5`,
/// `1E3` → `1000`, `1e21` → `1e+21`), so two producers' texts of the same value hash alike.
pub fn to_canonical(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, true);
    out
}

/// Serialises `v` with two-space indentation for people to read (member order and number text
/// kept exactly, unlike a round trip through a general JSON library).
pub fn to_pretty(v: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, v, 0);
    out
}

fn write_pretty(out: &mut String, v: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 2);
                write_pretty(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Value::Object(obj) if !obj.is_empty() => {
            out.push_str("{\n");
            for (i, (k, val)) in obj.members.iter().enumerate() {
                pad(out, indent + 2);
                write_string(out, k);
                out.push_str(": ");
                write_pretty(out, val, indent + 2);
                out.push_str(if i + 1 < obj.members.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
        other => write_value(out, other, false),
    }
}

fn write_value(out: &mut String, v: &Value, sorted: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if sorted => write_jcs_number(out, n),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, sorted);
            }
            out.push(']');
        }
        Value::Object(obj) => {
            let mut members: Vec<&(String, Value)> = obj.members.iter().collect();
            if sorted {
                members.sort_by(|a, b| jcs_key_order(&a.0, &b.0));
            }
            out.push('{');
            for (i, (k, val)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, val, sorted);
            }
            out.push('}');
        }
    }
}

/// Writes number text in its RFC 8785 form (ECMAScript Number-to-String of the double value).
fn write_jcs_number(out: &mut String, n: &str) {
    // Plain integers of at most 15 digits are exact doubles whose ECMAScript form is the text
    // itself (bar `-0`), which covers every number a mandate or quote carries.
    let digits = n.strip_prefix('-').unwrap_or(n);
    if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) && digits != "0" {
        out.push_str(n);
        return;
    }
    // The parser admits only finite numbers in the RFC 8259 grammar, which `f64::from_str`
    // accepts and rounds correctly; a `Value` built by hand with other text is written as zero
    // rather than as text no peer could reproduce.
    let x = n.parse::<f64>().ok().filter(|x| x.is_finite()).unwrap_or(0.0);
    if x == 0.0 {
        out.push('0'); // covers -0, which ECMAScript also writes as "0"
    } else {
        out.push_str(ryu_js::Buffer::new().format_finite(x));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_numbers_follow_rfc8785() {
        // RFC 8785 §3.2.2.3 and Appendix B examples, and the integer fast path's edges.
        let cases = [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("1.0", "1"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("1E3", "1000"),
            ("1e21", "1e+21"),
            ("1e+30", "1e+30"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("333333333.33333329", "333333333.3333333"),
            ("1e-27", "1e-27"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740993", "9007199254740992"),
            ("123456789012345", "123456789012345"),
            ("1234567890123456789", "1234567890123456800"),
            ("-5e-324", "-5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("295147905179352830000", "295147905179352830000"),
        ];
        for (input, want) in cases {
            let v = p(input).unwrap();
            assert_eq!(to_canonical(&v), want, "{input}");
            assert_eq!(to_compact(&v), input, "compact keeps the text of {input}");
        }
    }

    #[test]
    fn numbers_outside_the_double_range_are_rejected() {
        for input in ["1e309", "-1e400", "[1,2e999]"] {
            assert_eq!(p(input).unwrap_err().reason(), Reason::JsonInvalid, "{input}");
        }
        assert!(p("1e308").is_ok());
        // Without an exponent only a very long integer overflows (under wide limits).
        let wide = Limits {
            max_number_len: 400,
            ..Limits::AEP2
        };
        let digits = |n: usize| format!("1{}", "0".repeat(n - 1));
        assert!(parse(&digits(308), &wide).is_ok(), "1e307 is finite");
        assert_eq!(parse(&digits(310), &wide).unwrap_err().reason(), Reason::JsonInvalid);
        assert!(p("1e-400").is_ok(), "underflow to zero is a finite value");
    }

    fn p(s: &str) -> Result<Value> {
        parse(s, &Limits::AEP2)
    }

    #[test]
    fn accepts_plain_documents() {
        let v = p(" {\"a\": [1, -2.5e3, true, false, null], \"b\": \"x\\u00e9\\ud83d\\ude00\"} ").unwrap();
        assert_eq!(to_compact(&v), "{\"a\":[1,-2.5e3,true,false,null],\"b\":\"xé😀\"}");
    }

    #[test]
    fn rejects_with_stable_reasons() {
        let cases: &[(&str, Reason)] = &[
            ("", Reason::JsonInvalid),
            ("{\"a\":1,\"a\":2}", Reason::JsonDuplicateKey),
            ("{\"a\":1}x", Reason::JsonInvalid),
            ("\u{feff}{}", Reason::JsonInvalid),
            ("\"\\ud800\"", Reason::JsonInvalid),
            ("\"\\udc00\"", Reason::JsonInvalid),
            ("\"a\u{1}\"", Reason::JsonInvalid),
            ("01", Reason::JsonInvalid),
            ("1.", Reason::JsonInvalid),
            ("[1,]", Reason::JsonInvalid),
            ("{\"a\" 1}", Reason::JsonInvalid),
            ("[[[[[[[[[]]]]]]]]]", Reason::JsonLimitExceeded),
            ("1234567890123456789012345", Reason::JsonLimitExceeded),
        ];
        for (input, reason) in cases {
            assert_eq!(p(input).unwrap_err().reason(), *reason, "{input:?}");
        }
        let long = format!("\"{}\"", "a".repeat(1025));
        assert_eq!(p(&long).unwrap_err().reason(), Reason::JsonLimitExceeded);
        let many = format!("[{}]", vec!["0"; 33].join(","));
        assert_eq!(p(&many).unwrap_err().reason(), Reason::JsonLimitExceeded);
    }

    #[test]
    fn first_fault_in_reading_order() {
        assert_eq!(
            p("[12345678901234567890123456.]").unwrap_err().reason(),
            Reason::JsonLimitExceeded
        );
        assert_eq!(
            p("[12345678901234567890123456e]").unwrap_err().reason(),
            Reason::JsonLimitExceeded
        );
        let members: Vec<String> = (0..32).map(|i| format!("\"k{i}\":1")).collect();
        let full = members.join(",");
        assert!(p(&format!("{{{full}}}")).is_ok());
        assert_eq!(
            p(&format!("{{{full},\"k0\":1}}")).unwrap_err().reason(),
            Reason::JsonLimitExceeded
        );
        assert_eq!(
            p(&format!("{{{full},\"\\x\":1}}")).unwrap_err().reason(),
            Reason::JsonLimitExceeded
        );
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(p("[[[[[[[[]]]]]]]]").is_ok()); // depth 8
    }

    #[test]
    fn jcs_sorts_by_utf16_code_units() {
        // RFC 8785 §3.2.3 sorting example.
        let src = "{\"\\u20ac\":\"Euro Sign\",\"\\r\":\"Carriage Return\",\"\\ufb33\":\"Hebrew Letter Dalet With Dagesh\",\"1\":\"One\",\"\\ud83d\\ude00\":\"Emoji: Grinning Face\",\"\\u0080\":\"Control\",\"\\u00f6\":\"Latin Small Letter O With Diaeresis\"}";
        let v = p(src).unwrap();
        let Value::Object(o) = parse(&to_canonical(&v), &Limits::AEP2).unwrap() else {
            panic!()
        };
        let names: Vec<&str> = o.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["\r", "1", "\u{80}", "\u{f6}", "\u{20ac}", "\u{1f600}", "\u{fb33}"]
        );
    }

    #[test]
    fn pretty_keeps_order_and_number_text() {
        let v = p("{\"b\":[1.50,-0],\"a\":{},\"c\":12345678901234567890123}").unwrap();
        let pretty = to_pretty(&v);
        assert_eq!(
            pretty,
            "{\n  \"b\": [\n    1.50,\n    -0\n  ],\n  \"a\": {},\n  \"c\": 12345678901234567890123\n}"
        );
        assert_eq!(parse(&pretty, &Limits::AEP2).unwrap(), v);
    }

    #[test]
    fn string_escaping_matches_ecmascript() {
        let mut s = String::new();
        write_string(&mut s, "\u{0}\u{1f}\"\\/\u{7f}é\n");
        assert_eq!(s, "\"\\u0000\\u001f\\\"\\\\/\u{7f}é\\n\"");
    }
}
