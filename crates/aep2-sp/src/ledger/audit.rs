//! The audit trail's pages (spec `aep2.md#sp-audit`): stored mandates in `(acceptedAt,
//! mandateId)` order, filtered by lane (its sub-lanes included) and time, a bounded page at a time.

use super::{Ledger, MANDATE_COLUMNS, StoredMandate, row_to_mandate, unavailable};
use crate::audit::{AuditQuery, AuditRecord, MAX_PAGE};
use aep2::json::{Limits, parse};
use aep2::{Error, Profile, Reason, SignedMandate};

impl Ledger {
    /// One page of the audit trail: at most `query.limit` (capped at [`MAX_PAGE`]) records after
    /// `query.after`, of payments under `query.lane` or any lane below it, accepted at or after
    /// `query.since`.
    pub fn audit_page(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let conn = self.conn();
        // The lane and every lane whose chain passes through it; chains have at most 3 links.
        let sql = format!(
            "SELECT {MANDATE_COLUMNS} FROM mandates \
             WHERE (?1 IS NULL OR lane_id IN ( \
                 WITH RECURSIVE under(id, depth) AS ( \
                     SELECT ?1, 0 \
                     UNION SELECT l.lane_id, u.depth + 1 FROM lanes l JOIN under u ON l.parent = u.id WHERE u.depth < 3) \
                 SELECT id FROM under)) \
               AND accepted_at >= ?2 \
               AND (accepted_at > ?3 OR (accepted_at = ?3 AND mandate_id > ?4)) \
             ORDER BY accepted_at, mandate_id LIMIT ?5"
        );
        let (after_time, after_id) = match &query.after {
            Some(c) => (i64::try_from(c.accepted_at).unwrap_or(i64::MAX), c.mandate_id.to_vec()),
            None => (-1, Vec::new()),
        };
        let since = query.since.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let mut s = conn.prepare_cached(&sql).map_err(|e| unavailable("audit page", &e))?;
        let rows = s
            .query_map(
                rusqlite::params![
                    query.lane.map(|l| l.to_vec()),
                    since,
                    after_time,
                    after_id,
                    limit as i64
                ],
                row_to_mandate,
            )
            .map_err(|e| unavailable("audit page", &e))?;
        rows.map(|r| record_of(&r.map_err(|e| unavailable("audit page", &e))??))
            .collect()
    }
}

/// The record of a stored mandate; the lane chain, the signer and the purpose are read from the
/// stored envelope, which the SP verified before storing it.
fn record_of(m: &StoredMandate) -> Result<AuditRecord, Error> {
    let corrupt = |e: Error| Error::new(Reason::ReplayStoreUnavailable, format!("stored envelope: {e}"));
    let profile = Profile::parse(&m.profile).map_err(corrupt)?;
    let envelope = parse(&m.envelope, &Limits::AEP2).map_err(corrupt)?;
    let signed = SignedMandate::from_json(&envelope, profile).map_err(corrupt)?;
    // Link i names link i − 1 as its parent; the leaf's own id is stored with the mandate.
    let mut lanes: Vec<[u8; 32]> = signed.lanes.iter().skip(1).map(|l| l.lane.parent).collect();
    if !signed.lanes.is_empty() {
        lanes.push(m.lane.ok_or_else(|| {
            Error::new(
                Reason::ReplayStoreUnavailable,
                "a lane mandate stored without its lane id",
            )
        })?);
    }
    let leaf = signed.lanes.last();
    Ok(AuditRecord {
        accepted_at: m.accepted_at,
        mandate_id: m.mandate_id,
        profile: m.profile.clone(),
        domain: m.account.domain.clone(),
        owner: m.account.payer.clone(),
        agent: leaf.map_or_else(|| signed.mandate.signer(), |l| l.lane.agent.to_string()),
        lanes,
        purpose: leaf.map(|l| l.lane.purpose.clone()),
        payee: m.payee.clone(),
        token: m.account.token.clone(),
        amount: m.amount,
        nonce: m.nonce.clone(),
        deadline: m.deadline,
        reference: m.reference.clone(),
        request: m.request.clone(),
        receipt: m.receipt.clone(),
        status: m.status.as_str(),
        failure: m.settlement.failure.clone(),
        tx: m.settlement.tx,
        block: m.settlement.block,
    })
}
