//! The service configuration: a JSON file, closed (an unknown member is an error):
//!
//! | member | value |
//! |---|---|
//! | `database` | the ledger (required): a SQLite file, relative to the configuration's directory, or a `postgres://` URL |
//! | `databasePoolSize` | Postgres: connections this process keeps to the ledger's server, 1 to 256 (default 8; ignored for SQLite) |
//! | `listen` | `host:port` (default `127.0.0.1:0`) |
//! | `keys` | `{"secp256k1", "ed25519"}`: each `0x` + 64 hex, or `{"file": PATH}` |
//! | `domains` | `[{"profile", "domain"}]`, the deployments served |
//! | `settlementWindow`, `clockSkew` | seconds (defaults 300 and 5) |
//! | `deposits`, `depositsFile` | ledger credits applied once per id at start-up |
//! | `http` | `{"maxBodyBytes", "headerTimeoutMs", "bodyTimeoutMs", "maxConnections"}` |
//! | `auditToken` | the operator's bearer token for `GET /v1/audit` (16 to 256 visible ASCII characters); without it that route does not exist |
//! | `chain` | `{"rpcUrl", "wallet", "txKey", "fromBlock", "confirmations", "maxItems", "maxAgeSeconds", "marginSeconds", "bumpAfterSeconds", "pollMs"}`: settle on that node through that debit wallet; or `{"embedded": {"chainId", "fund"}, …}`: on an in-process EVM, for tests and demos ([`ChainConfig`], spec `aep2.md#settlement`) |
//!
//! Secrets (the SP keys) are read from the file or from files it names, never printed: the
//! [`Config`] `Debug` output redacts them.

use crate::Location;
use crate::ledger::{AccountKey, Deposit};
use crate::{account_display, domain_key};
use aep2::codec::hex_decode_0x;
use aep2::crypto::secp256k1::SecretKey;
use aep2::json::{self, Limits, Object, Value};
use aep2::uint::{MAX_JSON_INTEGER, U256, parse_json_integer};
use aep2::{AccountId, Domain, Profile, SpKey};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Largest configuration or deposits file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Parser limits for configuration files: deeper and wider than envelopes, still bounded.
const CONFIG_LIMITS: Limits = Limits {
    max_depth: 8,
    max_string_bytes: 4096,
    max_members: 100_000,
    max_number_len: 24,
};

/// Limits that keep one client from holding the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body (bytes); larger is `413 header_too_large`. Default 8192, the
    /// envelope limit of spec §5.5: the `/enqueue` body *is* the envelope.
    pub max_body_bytes: usize,
    /// Time allowed from a connection's (or keep-alive request's) first byte to the end of its
    /// headers; a slower client is disconnected. Default 5 s.
    pub header_timeout: Duration,
    /// Time allowed to deliver the body after the headers; slower is `408 request_timeout`.
    /// Default 5 s.
    pub body_timeout: Duration,
    /// Connections served at once; further connections wait in the kernel's accept queue.
    /// Default 1024.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: aep2::envelope::MAX_HEADER_BYTES,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_connections: 1024,
        }
    }
}

/// Everything the service needs to run.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the bound address is reported).
    pub listen: SocketAddr,
    /// The ledger: a SQLite file or a Postgres URL.
    pub database: Location,
    /// Postgres: the connections this process keeps to the ledger's server (default 8). A fleet
    /// of `n` processes holds up to `n ×` this many server connections.
    pub database_pool_size: usize,
    /// The secp256k1 SP key: signs `mvp-evm` and native `eip712` receipts.
    pub secp256k1_key: Option<SpKey>,
    /// The Ed25519 SP key: signs `mvp-solana` and native `ed25519` receipts.
    pub ed25519_key: Option<SpKey>,
    /// The deployments served, in order; the first `eip712` domain serves MVP EVM envelopes.
    pub domains: Vec<Domain>,
    /// `w`: seconds after acceptance by which the SP promises settlement (`enqueueDeadline =
    /// now + w`). Default 300.
    pub settlement_window: u64,
    /// `s`: tolerated clock skew in the expiry check, seconds. Default 5.
    pub clock_skew: u64,
    /// Deposits applied (once per id) at start-up.
    pub deposits: Vec<Deposit>,
    /// HTTP limits.
    pub http: HttpLimits,
    /// Where the accepted `eip712` mandates settle (spec `aep2.md#settlement`); `None`: they
    /// wait in the ledger and `aep2 sp deposit` funds accounts.
    pub chain: Option<ChainConfig>,
    /// The bearer token `GET /v1/audit` requires (spec `aep2.md#sp-audit`); `None`: the route is
    /// not served.
    pub audit_token: Option<String>,
}

/// The chain an SP settles on, the SP's transaction key there and the worker's settings.
#[derive(Clone)]
pub struct ChainConfig {
    /// Where the chain is.
    pub source: ChainSource,
    /// The key that signs the SP's settlement transactions (authorised in the wallet, holding gas
    /// money); used for nothing else.
    pub tx_key: [u8; 32],
    /// The worker's settings.
    pub settlement: crate::settlement::SettlementOptions,
}

/// Where an SP's chain is.
#[derive(Clone, Debug)]
pub enum ChainSource {
    /// A node's JSON-RPC URL (`http://…`) and the debit wallet deployed there; the wallet's
    /// `eip712:<chainId>:<wallet>` must be a configured domain.
    Rpc {
        /// The node's URL.
        url: String,
        /// The debit wallet's address.
        wallet: aep2::EvmAddress,
    },
    /// An in-process EVM that the SP creates at start-up, deploying the debit wallet and a test
    /// token and funding the listed payers; its domain is served without being listed. It lives
    /// only as long as the process, so its ledger must be new (tests and demos only).
    Embedded(EmbeddedChain),
}

/// The in-process chain of [`ChainSource::Embedded`].
#[derive(Clone)]
pub struct EmbeddedChain {
    /// Its EIP-155 chain id (default 31337).
    pub chain_id: u64,
    /// Payers funded at start-up: each key's account gets `amount` of the test token, deposited
    /// into the debit wallet (the deposit reaches the ledger from the chain's event).
    pub fund: Vec<([u8; 32], U256)>,
}

/// The most payers an embedded chain funds at start-up.
pub const MAX_EMBEDDED_FUND: usize = 1000;

impl fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("chain_id", &self.chain_id)
            .field("fund", &self.fund.len())
            .finish()
    }
}

impl fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainConfig")
            .field("source", &self.source)
            .field("settlement", &self.settlement)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |k: &Option<SpKey>| k.as_ref().map(|k| k.id().to_string());
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database.display())
            .field("database_pool_size", &self.database_pool_size)
            .field("secp256k1_sp", &id(&self.secp256k1_key))
            .field("ed25519_sp", &id(&self.ed25519_key))
            .field("domains", &self.domains)
            .field("settlement_window", &self.settlement_window)
            .field("clock_skew", &self.clock_skew)
            .field("deposits", &self.deposits.len())
            .field("http", &self.http)
            .field("chain", &self.chain)
            .field("audit_token", &self.audit_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Config {
    /// A configuration with defaults, serving `domains` and storing in `database`.
    pub fn new(database: impl Into<Location>, domains: Vec<Domain>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.into(),
            database_pool_size: crate::LedgerOptions::default().pool_size,
            secp256k1_key: None,
            ed25519_key: None,
            domains,
            settlement_window: 300,
            clock_skew: 5,
            deposits: Vec::new(),
            http: HttpLimits::default(),
            chain: None,
            audit_token: None,
        }
    }

    /// Reads a configuration file; relative paths in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = read_bounded(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses configuration JSON; relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, String> {
        let v = json::parse(text, &CONFIG_LIMITS).map_err(|e| e.to_string())?;
        let obj = object(&v, "config")?;
        const KNOWN: &[&str] = &[
            "listen",
            "database",
            "databasePoolSize",
            "keys",
            "domains",
            "settlementWindow",
            "clockSkew",
            "deposits",
            "depositsFile",
            "http",
            "chain",
            "auditToken",
        ];
        closed(obj, "config", KNOWN)?;
        // A URL names a server, not a file: it is not joined to the configuration's directory.
        let database = match Location::parse(string(obj, "database")?.ok_or("config: missing \"database\"")?) {
            Location::Sqlite(path) => Location::Sqlite(base.join(path)),
            url => url,
        };
        let domains = match obj.get("domains") {
            Some(Value::Array(items)) => items.iter().map(parse_domain).collect::<Result<Vec<_>, _>>()?,
            _ => return Err("config: \"domains\" must be a non-empty array".into()),
        };
        let mut c = Config::new(database, domains);
        if let Some(l) = string(obj, "listen")? {
            c.listen = l.parse().map_err(|e| format!("listen {l:?}: {e}"))?;
        }
        if let Some(keys) = obj.get("keys") {
            let keys = object(keys, "keys")?;
            closed(keys, "keys", &["secp256k1", "ed25519"])?;
            if let Some(k) = keys.get("secp256k1") {
                let bytes = secret(k, base, "keys.secp256k1")?;
                let sk = SecretKey::from_bytes(&bytes).ok_or("keys.secp256k1 is not a valid secp256k1 secret")?;
                c.secp256k1_key = Some(SpKey::Secp256k1(sk));
            }
            if let Some(k) = keys.get("ed25519") {
                c.ed25519_key = Some(SpKey::Ed25519(secret(k, base, "keys.ed25519")?));
            }
        }
        if let Some(t) = string(obj, "auditToken")? {
            let visible = t.bytes().all(|b| b.is_ascii_graphic());
            if !(16..=256).contains(&t.len()) || !visible {
                return Err("auditToken must be 16 to 256 visible ASCII characters".into());
            }
            c.audit_token = Some(t.to_owned());
        }
        if let Some(n) = uint(obj, "databasePoolSize")? {
            c.database_pool_size = usize::try_from(n)
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or("databasePoolSize must be 1 to 256")?;
        }
        if let Some(w) = uint(obj, "settlementWindow")? {
            c.settlement_window = w;
        }
        if let Some(s) = uint(obj, "clockSkew")? {
            c.clock_skew = s;
        }
        if let Some(h) = obj.get("http") {
            let h = object(h, "http")?;
            closed(
                h,
                "http",
                &["maxBodyBytes", "headerTimeoutMs", "bodyTimeoutMs", "maxConnections"],
            )?;
            let as_usize = |n: u64| usize::try_from(n).map_err(|_| "http limit out of range".to_owned());
            if let Some(n) = uint(h, "maxBodyBytes")? {
                c.http.max_body_bytes = as_usize(n)?;
            }
            if let Some(n) = uint(h, "headerTimeoutMs")? {
                c.http.header_timeout = Duration::from_millis(n);
            }
            if let Some(n) = uint(h, "bodyTimeoutMs")? {
                c.http.body_timeout = Duration::from_millis(n);
            }
            if let Some(n) = uint(h, "maxConnections")? {
                c.http.max_connections = as_usize(n)?.max(1);
            }
        }
        if let Some(d) = obj.get("deposits") {
            c.deposits = parse_deposits(d, &c.domains)?;
        }
        if let Some(ch) = obj.get("chain") {
            c.chain = Some(parse_chain(object(ch, "chain")?, base)?);
        }
        if let Some(f) = string(obj, "depositsFile")? {
            let path = base.join(f);
            c.deposits.extend(load_deposits(&path, &c.domains)?);
        }
        c.check()?;
        Ok(c)
    }

    /// Checks that every domain has a key that can sign its receipts and that the numbers are sane.
    pub fn check(&self) -> Result<(), String> {
        let embedded = matches!(
            self.chain,
            Some(ChainConfig {
                source: ChainSource::Embedded(_),
                ..
            })
        );
        if self.domains.is_empty() && !embedded {
            return Err("no domains configured".into());
        }
        if embedded && self.secp256k1_key.is_none() {
            return Err("chain.embedded needs a secp256k1 SP key (keys.secp256k1)".into());
        }
        for (i, d) in self.domains.iter().enumerate() {
            if self.domains[..i].contains(d) {
                return Err(format!("domain {} listed twice", domain_key(d)));
            }
            let has_key = match d.profile() {
                Profile::Eip712 => self.secp256k1_key.is_some(),
                Profile::Ed25519 | Profile::SolanaMvp => self.ed25519_key.is_some(),
            };
            if !has_key {
                return Err(format!(
                    "domain {} needs a {} SP key",
                    domain_key(d),
                    key_type(d.profile())
                ));
            }
        }
        if self.settlement_window == 0 || self.settlement_window > MAX_JSON_INTEGER {
            return Err("settlementWindow must be in 1..=2^53-1 seconds".into());
        }
        if self.http.max_body_bytes == 0 {
            return Err("http.maxBodyBytes must be positive".into());
        }
        Ok(())
    }
}

fn parse_chain(ch: &Object, base: &Path) -> Result<ChainConfig, String> {
    closed(
        ch,
        "chain",
        &[
            "rpcUrl",
            "wallet",
            "embedded",
            "txKey",
            "fromBlock",
            "confirmations",
            "maxItems",
            "maxAgeSeconds",
            "marginSeconds",
            "bumpAfterSeconds",
            "pollMs",
        ],
    )?;
    let mut settlement = crate::settlement::SettlementOptions::default();
    let (source, tx_key) = match ch.get("embedded") {
        Some(e) => {
            if ch.get("rpcUrl").is_some() || ch.get("wallet").is_some() || ch.get("fromBlock").is_some() {
                return Err("chain: \"embedded\" takes no \"rpcUrl\", \"wallet\" or \"fromBlock\"".into());
            }
            let e = object(e, "chain.embedded")?;
            closed(e, "chain.embedded", &["chainId", "fund"])?;
            let chain_id = uint(e, "chainId")?.unwrap_or(31337);
            let mut fund = Vec::new();
            if let Some(f) = e.get("fund") {
                let Value::Array(items) = f else {
                    return Err("chain.embedded.fund must be an array".into());
                };
                if items.len() > MAX_EMBEDDED_FUND {
                    return Err(format!("chain.embedded.fund: more than {MAX_EMBEDDED_FUND} entries"));
                }
                for (i, item) in items.iter().enumerate() {
                    let what = format!("chain.embedded.fund[{i}]");
                    let o = object(item, &what)?;
                    closed(o, &what, &["key", "amount"])?;
                    let key = secret(
                        o.get("key").ok_or_else(|| format!("{what}: missing \"key\""))?,
                        base,
                        &what,
                    )?;
                    let amount =
                        U256::parse_decimal(string(o, "amount")?.ok_or_else(|| format!("{what}: missing \"amount\""))?)
                            .map_err(|err| format!("{what}.amount: {err}"))?;
                    fund.push((key, amount));
                }
            }
            // The embedded chain trusts its process: a fixed key is as good as any.
            let tx_key = match ch.get("txKey") {
                Some(k) => secret(k, base, "chain.txKey")?,
                None => aep2_evm::TxKey::from_label("aep2 serve sp: embedded chain settlement").secret_bytes(),
            };
            // One block per transaction: more confirmations would wait for traffic.
            settlement.confirmations = 1;
            (ChainSource::Embedded(EmbeddedChain { chain_id, fund }), tx_key)
        }
        None => {
            let url = string(ch, "rpcUrl")?
                .ok_or("chain: missing \"rpcUrl\" (or \"embedded\")")?
                .to_owned();
            let wallet = aep2::EvmAddress::parse(string(ch, "wallet")?.ok_or("chain: missing \"wallet\"")?)
                .map_err(|e| format!("chain.wallet: {e}"))?;
            let tx_key = secret(ch.get("txKey").ok_or("chain: missing \"txKey\"")?, base, "chain.txKey")?;
            if let Some(n) = uint(ch, "confirmations")? {
                settlement.confirmations = n.max(1);
            }
            if let Some(n) = uint(ch, "fromBlock")? {
                settlement.from_block = n;
            }
            (ChainSource::Rpc { url, wallet }, tx_key)
        }
    };
    if let Some(n) = uint(ch, "maxItems")? {
        settlement.max_items = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .clamp(1, aep2_evm::contract::MAX_BATCH_ITEMS);
    }
    if let Some(n) = uint(ch, "maxAgeSeconds")? {
        settlement.max_age = n;
    }
    if let Some(n) = uint(ch, "marginSeconds")? {
        settlement.margin = n;
    }
    if let Some(n) = uint(ch, "bumpAfterSeconds")? {
        settlement.bump_after = n.max(1);
    }
    if let Some(n) = uint(ch, "pollMs")? {
        settlement.poll = Duration::from_millis(n.max(10));
    }
    Ok(ChainConfig {
        source,
        tx_key,
        settlement,
    })
}

fn key_type(p: Profile) -> &'static str {
    match p {
        Profile::Eip712 => "secp256k1",
        _ => "ed25519",
    }
}

/// Reads a deposits file: `{"deposits": [<deposit>, …]}`.
pub fn load_deposits(path: &Path, domains: &[Domain]) -> Result<Vec<Deposit>, String> {
    let text = read_bounded(path)?;
    let v = json::parse(&text, &CONFIG_LIMITS).map_err(|e| format!("{}: {e}", path.display()))?;
    let obj = object(&v, "deposits file")?;
    closed(obj, "deposits file", &["deposits"])?;
    let d = obj.get("deposits").ok_or("deposits file: missing \"deposits\"")?;
    parse_deposits(d, domains).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses an array of deposits: `{"id", "payer", "token", "amount", "domain"?}`, where
/// `domain` is `{"profile", "domain"?}` as in `domains` and may be left out when exactly one
/// configured domain fits the payer's kind (EVM address or base58 key).
pub fn parse_deposits(v: &Value, domains: &[Domain]) -> Result<Vec<Deposit>, String> {
    let Value::Array(items) = v else {
        return Err("\"deposits\" must be an array".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_deposit(item, domains).map_err(|e| format!("deposits[{i}]: {e}")))
        .collect()
}

fn parse_deposit(v: &Value, domains: &[Domain]) -> Result<Deposit, String> {
    let obj = object(v, "deposit")?;
    closed(obj, "deposit", &["id", "payer", "token", "amount", "domain"])?;
    let id = string(obj, "id")?.ok_or("missing \"id\"")?;
    if id.is_empty() || id.len() > 256 {
        return Err("\"id\" must be 1 to 256 bytes".into());
    }
    let payer =
        AccountId::parse(string(obj, "payer")?.ok_or("missing \"payer\"")?).map_err(|e| format!("payer: {e}"))?;
    let token =
        AccountId::parse(string(obj, "token")?.ok_or("missing \"token\"")?).map_err(|e| format!("token: {e}"))?;
    let amount =
        U256::parse_decimal(string(obj, "amount")?.ok_or("missing \"amount\"")?).map_err(|e| format!("amount: {e}"))?;
    let domain = match obj.get("domain") {
        Some(d) => parse_domain(d)?,
        None => only_domain_for(&payer, domains)?,
    };
    let account = account_key(&domain, &payer, &token)?;
    Ok(Deposit {
        id: id.to_owned(),
        account,
        amount,
    })
}

/// The ledger account of `payer`'s `token` in `domain`, checking that the identifiers are of the
/// domain's kind (EVM addresses for `eip712`, base58 keys otherwise).
pub fn account_key(domain: &Domain, payer: &AccountId, token: &AccountId) -> Result<AccountKey, String> {
    let evm = domain.profile() == Profile::Eip712;
    for (what, id) in [("payer", payer), ("token", token)] {
        if matches!(id, AccountId::Evm(_)) != evm {
            return Err(format!(
                "{what} {id} is not an identifier of a {} domain",
                domain.profile()
            ));
        }
    }
    Ok(AccountKey {
        domain: domain_key(domain),
        payer: account_display(payer),
        token: account_display(token),
    })
}

fn only_domain_for(payer: &AccountId, domains: &[Domain]) -> Result<Domain, String> {
    let evm = matches!(payer, AccountId::Evm(_));
    let fits: Vec<&Domain> = domains
        .iter()
        .filter(|d| (d.profile() == Profile::Eip712) == evm)
        .collect();
    match fits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no configured domain takes payer {payer}")),
        _ => Err("several configured domains fit this payer: name its \"domain\"".into()),
    }
}

/// Parses `{"profile": "eip712" | "ed25519", "domain": {…}}` or `{"profile": "solana-mvp"}`.
pub fn parse_domain(v: &Value) -> Result<Domain, String> {
    let obj = object(v, "domain entry")?;
    closed(obj, "domain entry", &["profile", "domain"])?;
    let profile = Profile::parse(string(obj, "profile")?.ok_or("domain entry: missing \"profile\"")?)
        .map_err(|e| e.to_string())?;
    match (profile, obj.get("domain")) {
        (Profile::SolanaMvp, None) => Ok(Domain::SolanaMvp),
        (Profile::SolanaMvp, Some(_)) => Err("solana-mvp has no domain object".into()),
        (p, Some(d)) => Domain::from_json(p, d).map_err(|e| e.to_string()),
        (p, None) => Err(format!("profile {p} needs a \"domain\" object")),
    }
}

fn secret(v: &Value, base: &Path, what: &str) -> Result<[u8; 32], String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            closed(o, what, &["file"])?;
            let f = string(o, "file")?.ok_or_else(|| format!("{what}: missing \"file\""))?;
            let text = read_bounded(&base.join(f))?;
            text.trim().to_owned()
        }
        _ => return Err(format!("{what} must be 0x-hex text or {{\"file\": PATH}}")),
    };
    // The message never includes the text: it may be a secret with a typo.
    hex_decode_0x(&text)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{what} must be 0x followed by 64 hex digits"))
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!("{}: larger than {MAX_CONFIG_BYTES} bytes", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Object, String> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(format!("{what} must be an object, found {}", other.type_name())),
    }
}

fn closed(obj: &Object, what: &str, known: &[&str]) -> Result<(), String> {
    match obj.iter().find(|(k, _)| !known.contains(k)) {
        Some((k, _)) => Err(format!("{what}: unknown member {k:?}")),
        None => Ok(()),
    }
}

fn string<'a>(obj: &'a Object, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{name:?} must be a string, found {}", other.type_name())),
    }
}

fn uint(obj: &Object, name: &str) -> Result<Option<u64>, String> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => parse_json_integer(n).map(Some).map_err(|e| format!("{name:?}: {e}")),
        Some(other) => Err(format!("{name:?} must be an integer, found {}", other.type_name())),
    }
}
