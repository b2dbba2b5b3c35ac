//! The audit trail's pages (spec `aep2.md#sp-audit`): stored mandates in the order the ledger
//! stored them, filtered by lane (its sub-lanes included) and time, a bounded page at a time.

use super::{Ledger, MANDATE_COLUMNS, StoredMandate, row_to_mandate, stored_u64};
use crate::audit::{AuditQuery, AuditRecord, MAX_PAGE};
use aep2::json::{Limits, parse};
use aep2::{Error, Profile, Reason, SignedMandate};
use aep2_replay::params;

impl Ledger {
    /// One page of the audit trail: at most `query.limit` (capped at [`MAX_PAGE`]) records after
    /// `query.after`, of payments under `query.lane` or any lane below it, accepted at or after
    /// `query.since`.
    pub fn audit_page(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        let limit = i64::try_from(query.limit.clamp(1, MAX_PAGE)).unwrap_or(1);
        let after = query.after.map_or(0, |c| i64::try_from(c.seq).unwrap_or(i64::MAX));
        let since = query.since.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let columns: Vec<String> = MANDATE_COLUMNS.split(',').map(|c| format!("m.{}", c.trim())).collect();
        let columns = columns.join(", ");
        let seq_at = MANDATE_COLUMNS.split(',').count();
        // Both read an index range from the cursor on (`mandates_seq`, or `mandate_lanes`, where a
        // payment is listed under every link of its chain, so a lane's rows include its sub-lanes').
        let rows = self.db.read("audit page", |tx| match &query.lane {
            None => tx.query(
                &format!(
                    "SELECT {columns}, m.seq FROM mandates m WHERE m.seq > ?1 AND m.accepted_at >= ?2 \
                     ORDER BY m.seq LIMIT ?3"
                ),
                params![after, since, limit],
            ),
            Some(lane) => tx.query(
                &format!(
                    "SELECT {columns}, m.seq FROM mandate_lanes l JOIN mandates m ON m.seq = l.seq \
                     WHERE l.lane_id = ?1 AND l.seq > ?2 AND m.accepted_at >= ?3 ORDER BY l.seq LIMIT ?4"
                ),
                params![lane, after, since, limit],
            ),
        })?;
        rows.iter()
            .map(|r| record_of(&row_to_mandate(r)?, stored_u64(r, seq_at)?))
            .collect()
    }
}

/// The record of a stored mandate; the lane chain, the signer and the purpose are read from the
/// stored envelope, which the SP verified before storing it.
fn record_of(m: &StoredMandate, seq: u64) -> Result<AuditRecord, Error> {
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
        seq,
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
