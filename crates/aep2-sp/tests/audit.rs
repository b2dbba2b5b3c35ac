//! The audit trail (spec `aep2.md#sp-audit`): the payee's request descriptor stored with the
//! mandate, records with the lane chain, agent and purpose, the lane filter with sub-lanes, the
//! time filter, keyset pages, the CSV and JSON Lines forms, and `GET /v1/audit`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use aep2::json::to_compact;
use aep2::{
    AccountId, EnvelopeForm, EvmMandate, Lane, Mandate, PayerKey, SignedLane, U256, sign_lane, sign_lane_mandate,
};
use aep2_replay::db::Backend;
use aep2_sp::audit::{AuditQuery, Cursor, PageFormat, csv_header, render_page};
use aep2_sp::{PaidRequest, Processor, RequestDescriptor};
use common::*;

fn root_lane(total: u64) -> SignedLane {
    let owner = secp("audit-owner");
    let lane = Lane {
        profile: aep2::Profile::Eip712,
        owner: owner.address().into(),
        agent: secp("audit-agent").address().into(),
        token: token().into(),
        per_payment: U256::from_u64(1000),
        total: U256::from_u64(total),
        max_payments: 0,
        period: 0,
        allowance: U256::ZERO,
        payees: vec![],
        valid_from: NOW - 100,
        valid_until: NOW + 10_000,
        purpose: "research".into(),
        parent: [0; 32],
        salt: [1; 32],
    };
    sign_lane(&lane, None, &evm_domain(), &PayerKey::Secp256k1(owner)).unwrap()
}

fn sub_lane(root: &SignedLane) -> SignedLane {
    let lane = Lane {
        agent: secp("audit-sub-agent").address().into(),
        total: U256::from_u64(2000),
        purpose: "translations".into(),
        parent: root.lane.digest(&evm_domain()).unwrap().id,
        salt: [2; 32],
        ..root.lane.clone()
    };
    sign_lane(
        &lane,
        Some(root),
        &evm_domain(),
        &PayerKey::Secp256k1(secp("audit-agent")),
    )
    .unwrap()
}

fn lane_envelope(agent: &str, chain: &[SignedLane], nonce: u64) -> String {
    let m = Mandate::Eip712(EvmMandate {
        owner: secp("audit-owner").address(),
        token: token(),
        payee: payee(),
        amount: U256::from_u64(1000),
        nonce: U256::from_u64(nonce),
        deadline: NOW + 3600,
        reference: [7; 32],
    });
    let key = PayerKey::Secp256k1(secp(agent));
    let (sm, _) = sign_lane_mandate(&m, &evm_domain(), &key, EnvelopeForm::Native, chain).unwrap();
    to_compact(&sm.to_json())
}

fn http(url: &str) -> RequestDescriptor {
    let paid = PaidRequest::Http {
        method: "GET".into(),
        url: url.into(),
    };
    RequestDescriptor::new(paid, [3; 32])
}

fn processor(backend: Backend, name: &str) -> Processor {
    let db = location(backend, name);
    let sp = Processor::new(&config(&db), open(&db)).unwrap();
    for (id, payer) in [("d1", "audit-owner"), ("d2", "plain-payer")] {
        sp.ledger().deposit(&evm_deposit(id, payer, 1_000_000), NOW).unwrap();
    }
    sp
}

#[test]
fn records_carry_the_chain_the_agent_the_purpose_and_the_request_and_filter_by_lane_time_and_page() {
    on_each_backend("audit-records", |backend| {
        let sp = processor(backend, "audit-records");
        let root = root_lane(10_000);
        let sub = sub_lane(&root);
        let root_id = root.lane.digest(&evm_domain()).unwrap().id;
        let sub_id = sub.lane.digest(&evm_domain()).unwrap().id;
        let chain = [root.clone(), sub.clone()];
        let (plain, _) = evm_envelope("plain-payer", 1, 500, NOW + 3600, EnvelopeForm::Mvp);
        // Accepted at NOW, NOW+1, NOW+2, NOW+3: a plain mandate, the agent's, two of the sub-agent's.
        let d = http("http://payee/paid/intent");
        sp.enqueue_described(plain.as_bytes(), None, Some(&d), NOW).unwrap();
        let e = lane_envelope("audit-agent", std::slice::from_ref(&root), 11);
        sp.enqueue_described(e.as_bytes(), None, Some(&d), NOW + 1).unwrap();
        let mcp = RequestDescriptor::mcp("get_weather", None, [4; 32]);
        for (i, n) in [(2, 12), (3, 13)] {
            let e = lane_envelope("audit-sub-agent", &chain, n);
            sp.enqueue_described(e.as_bytes(), None, Some(&mcp), NOW + i).unwrap();
        }
        // A re-submission with another descriptor changes nothing.
        sp.enqueue_described(plain.as_bytes(), None, Some(&http("http://other/")), NOW + 9)
            .unwrap();

        let all = sp.ledger().audit_page(&AuditQuery::default()).unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
        let first = &all[0];
        assert_eq!((first.lanes.len(), first.purpose.as_deref()), (0, None));
        assert_eq!(first.agent, first.owner);
        assert_eq!(first.request.as_deref(), Some(d.to_header().as_str()));
        let agent = &all[1];
        assert_eq!(agent.lanes, vec![root_id]);
        assert_eq!(agent.agent, AccountId::Evm(secp("audit-agent").address()).to_string());
        assert_eq!(agent.owner, AccountId::Evm(secp("audit-owner").address()).to_string());
        assert_eq!(agent.purpose.as_deref(), Some("research"));
        let by_sub = &all[3];
        assert_eq!(by_sub.lanes, vec![root_id, sub_id]);
        assert_eq!(by_sub.purpose.as_deref(), Some("translations"));
        assert_eq!(by_sub.request.as_deref(), Some(mcp.to_header().as_str()));
        assert_eq!(by_sub.status, "accepted");

        // The root's trail includes its sub-agent's payments; the sub-lane's only its own.
        let under = |lane: [u8; 32]| {
            let q = AuditQuery {
                lane: Some(lane),
                ..AuditQuery::default()
            };
            sp.ledger().audit_page(&q).unwrap().len()
        };
        assert_eq!((under(root_id), under(sub_id), under([9; 32])), (3, 2, 0));
        let since = AuditQuery {
            since: Some(NOW + 2),
            ..AuditQuery::default()
        };
        assert_eq!(sp.ledger().audit_page(&since).unwrap().len(), 2);

        // Pages of 3: the second starts after the first's last record and holds what was stored
        // since, even with an earlier acceptance time (an instance whose clock is behind).
        let mut q = AuditQuery {
            limit: 3,
            ..AuditQuery::default()
        };
        let page1 = sp.ledger().audit_page(&q).unwrap();
        let (_, _, next) = render_page(&page1, 3, PageFormat::Json);
        let next = next.expect("a full page has a next cursor");
        q.after = Some(Cursor::parse(&next).unwrap());
        let e = lane_envelope("audit-agent", std::slice::from_ref(&root), 14);
        sp.enqueue_described(e.as_bytes(), None, None, NOW).unwrap();
        let page2 = sp.ledger().audit_page(&q).unwrap();
        assert_eq!(page2.len(), 2);
        assert_eq!(page2[0].mandate_id, all[3].mandate_id);
        assert_eq!(page2[1].accepted_at, NOW);
        assert_eq!(render_page(&page2, 3, PageFormat::Json).2, None);
        assert_eq!(under(root_id), 4, "the new payment is under the root");

        // CSV: a header and a line per record, 21 quoted fields; JSON Lines: one object per line.
        let (ct, csv, _) = render_page(&all, 1000, PageFormat::Csv);
        assert!(ct.starts_with("text/csv"));
        assert!(csv.starts_with(&csv_header()));
        assert_eq!(csv.matches("\r\n").count(), 5);
        let (_, jsonl, _) = render_page(&all, 1000, PageFormat::Jsonl);
        for line in jsonl.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["mandateId"].is_string() && v["receipt"].is_object());
        }
    });
}

#[tokio::test]
async fn the_http_page_and_the_request_header_round_trip_and_bad_input_is_field_type() {
    for backend in backends() {
        eprintln!("audit-http: on {backend:?}");
        http_page(backend).await;
    }
}

async fn http_page(backend: Backend) {
    let mut c = config(location(backend, "audit-http"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.audit_token = Some("operator-token-0123456789".into());
    let bound = aep2_sp::service::bind(&c).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let now = aep2_sp::unix_now();
    bound
        .state()
        .processor
        .ledger()
        .deposit(&evm_deposit("d", "plain-payer", 1_000_000), now)
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    let client = aep2_sp::SpClient::new(&format!("http://{addr}")).unwrap();
    let d = http("http://payee/paid/intent?q=1");
    for nonce in 1..=3 {
        let (env, _) = evm_envelope("plain-payer", nonce, 10, now + 3600, EnvelopeForm::Mvp);
        client
            .enqueue_described(&env, Some(&[nonce as u8; 16]), Some(&d))
            .await
            .unwrap();
    }
    let get = |q: String| {
        let url = format!("http://{addr}/v1/audit{q}");
        async move {
            send(
                "GET",
                &url,
                &[("authorization", "Bearer operator-token-0123456789")],
                "",
            )
            .await
        }
    };
    // The operator's only: no token, or another, is 401 unauthorized.
    let url = format!("http://{addr}/v1/audit");
    for auth in [
        None,
        Some("Bearer operator-token-012345678"),
        Some("operator-token-0123456789"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, _, body) = send("GET", &url, &headers, "").await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(body.contains("\"unauthorized\""), "{body}");
    }
    let (status, _, body) = get(String::new()).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["request"]["url"], "http://payee/paid/intent?q=1");
    assert!(v["next"].is_null());
    let (status, headers, body) = get("?limit=2&format=csv".into()).await;
    assert_eq!(status, 200);
    assert_eq!(body.matches("\r\n").count(), 3);
    let next = headers
        .iter()
        .find(|(k, _)| k == "aep2-next-cursor")
        .map(|(_, v)| v.clone())
        .expect("a next cursor");
    let (_, _, body) = get(format!("?limit=2&format=jsonl&after={next}")).await;
    assert_eq!(body.lines().count(), 1);
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?lane=0x12",
        "?since=-1",
        "?after=x",
        "?format=xml",
        "?limit=1&limit=2",
    ] {
        let (status, _, body) = get(bad.into()).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains("\"field_type\""), "{bad}: {body}");
    }
    let (status, _, body) = get("?what=1".into()).await;
    assert_eq!((status, body.contains("unknown_field")), (400, true));
    // A malformed descriptor, or two, is refused before the mandate is read: nothing stored.
    let (env, _) = evm_envelope("plain-payer", 9, 10, now + 3600, EnvelopeForm::Mvp);
    let enqueue = format!("http://{addr}/enqueue");
    let json = ("content-type", "application/json");
    let good = d.to_header();
    for headers in [
        vec![json, ("aep2-request", "{\"carrier\":\"ftp\"}")],
        vec![json, ("aep2-request", good.as_str()), ("aep2-request", good.as_str())],
    ] {
        let (status, _, body) = send("POST", &enqueue, &headers, &env).await;
        assert_eq!(status, 400);
        assert!(body.contains("\"field_type\""), "{body}");
    }
    assert_eq!(get(String::new()).await.2.matches("mandateId").count(), 3);
    let _ = stop.send(());
    let _ = task.await;
}

/// A request on loopback: status, headers (lowercase names), body.
async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<(String, String)>, String) {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<hyper::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_owned())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn without_an_audit_token_the_route_does_not_exist() {
    let mut c = config(temp_db("audit-off"));
    c.listen = "127.0.0.1:0".parse().unwrap();
    let bound = aep2_sp::service::bind(&c).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    let (status, _, body) = send("GET", &format!("http://{addr}/v1/audit"), &[], "").await;
    assert_eq!(status, 404);
    assert!(body.contains("\"route_unknown\""), "{body}");
    let _ = stop.send(());
    let _ = task.await;
}

#[test]
fn the_audit_token_is_configured_bounded_and_never_printed() {
    let base = std::path::Path::new("/tmp");
    let config = |token: &str| {
        format!(
            r#"{{"database": "x.db", "domains": [{{"profile": "eip712", "domain": {{"chainId": 1, "verifyingContract": "0x91d861cD4d2F5d8Ffb31CB7308388CA5e6999912"}}}}], "keys": {{"secp256k1": "0x{key}"}}, "auditToken": {token}}}"#,
            key = "11".repeat(32)
        )
    };
    let c = aep2_sp::Config::parse(&config("\"operator-token-0123456789\""), base).unwrap();
    assert_eq!(c.audit_token.as_deref(), Some("operator-token-0123456789"));
    assert!(!format!("{c:?}").contains("operator-token"));
    for bad in [
        "\"short\"",
        "\"has a space in it, sixteen+\"",
        "1",
        &format!("\"{}\"", "x".repeat(257)),
    ] {
        assert!(aep2_sp::Config::parse(&config(bad), base).is_err(), "{bad}");
    }
}
