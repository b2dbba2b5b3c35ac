// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title AEP2DebitWallet: the AEP2 settlement contract for the `eip712` profile
/// @notice A payer deposits ERC-20 funds; authorised settlement processors (SPs) settle payer-signed,
/// one-time mandates from those funds, in batches. The EIP-712 domain (`AEP2DebitWallet` / `1` /
/// chainId / this contract) and the `Mandate` type are those of the AEP2 spec §4.1 and of FluxA's MVP
/// contract, so a mandate signed for the MVP's layout settles here unchanged (under this contract's
/// address as `verifyingContract`).
///
/// @dev SETTLEMENT. `settle(batchId, items)` checks every item and settles those that pass. An item
/// that fails is skipped (event `MandateSkipped(digest, reason)`), never reverting the batch. The
/// checks of one item, in this order (the first failing one is the reason):
///   1. `amount > 0`, else `AmountZero` (spec §3.1 value rule 2, `amount_zero`);
///   2. `deadline <= 2^53 - 1`, else `DeadlineOutOfRange` (spec §3.1 value rule 1, `uint_out_of_range`);
///   3. the payer signature under spec §4.1.2, rules 1 to 6 (see `checkSignature`);
///   4. `block.timestamp <= deadline`, else `Expired` (spec §3.1 value rule 4, `expired`);
///   5. the nonce `(owner, token, nonce)` unused, else `NonceUsed` (spec §8.5, `nonce_reused`);
///   6. `balanceOf(owner, token) >= amount`, else `InsufficientFunds` (`insufficient_funds`).
/// Items are processed in order: of two items with the same nonce key in one batch the first settles
/// and the second is skipped with `NonceUsed`; an item sees the balance left by the items before it.
/// Payouts are aggregated: each (token, payee) receives exactly one transfer per batch, after all
/// state changes. A payout transfer that fails does not revert the batch either: the amount is
/// credited to the payee's claimable balance (`owed`, event `PayoutDeferred`), claimable with
/// `claimPayout`; the mandates it pays remain settled.
///
/// LANES. `settleLanes(batchId, items, laneItems)` settles plain items as `settle` does, then lane
/// items (spec §18.8): a mandate signed by the leaf agent of a chain of 1 to 3 signed lanes. Each is
/// checked in the spec's order (see `_verifyLane`): the mandate's values, the chain's length, each
/// link's values, parents and grantor signatures, the mandate's signature for the leaf's agent,
/// expiry, the lane policy of spec §18.6, the nonce, every link's `total` and `maxPayments` against
/// what has settled under it (`laneSpent`), the funds. A settled item is counted against every link.
/// The periodic allowance and revocation are the SP's (spec §18.8 says why).
///
/// DEADLINE RULE. A mandate is settleable while `block.timestamp <= deadline` (inclusive, spec §3.1
/// value rule 4). The contract never sees receipts. An SP's receipt promises settlement by
/// `enqueueDeadline <= deadline` (spec §6.4), so every receipted mandate that the SP settles in time
/// lands in a block with timestamp `<= enqueueDeadline <= deadline` and is accepted: the contract
/// accepts every mandate the SP could have receipted and settled on time. It accepts no later (the
/// payer authorised nothing after `deadline`), and it does not require `enqueueDeadline` (a late
/// settlement breaks only the SP's promise; refusing it would turn a late payment into none).
///
/// NONCE KEY. Spec §8.5 keys a nonce by (domain, payer, token, nonce). This contract is one domain, so
/// it stores one bit per (owner, token, nonce) (a bitmap of 256 nonces per storage word: payers that
/// use consecutive nonces share words and pay less gas). `nonceKey` returns the spec's SHA-256 nonce
/// key of a slot, so an SP can match its replay store to the chain.
///
/// WITHDRAWAL RULE. Withdrawals never take funds an SP has already promised:
///   1. `requestWithdrawal(token, q)` moves no funds. It records `q` and
///      `unlockAt = block.timestamp + withdrawalDelay`, and emits `WithdrawalRequested`. A new request
///      replaces the pending one and restarts the delay.
///   2. From the block of that event an SP MUST treat `q` as unavailable for NEW acceptances for
///      (owner, token): it accepts a new mandate only if `reserved + amount <= balance - q` (or it
///      simply stops accepting for the pair), until the request is cancelled or executed.
///   3. Until `withdraw`, settlement keeps debiting the balance: mandates accepted before the request
///      still settle during the delay.
///   4. `withdraw(token)` at `block.timestamp >= unlockAt` pays `min(q, balance)` to the owner and
///      clears the request. `cancelWithdrawal(token)` clears it with no transfer.
///   5. `MIN_WITHDRAWAL_DELAY <= withdrawalDelay <= MAX_WITHDRAWAL_DELAY` (one hour, one year), fixed
///      at deployment, and an SP MUST run
///      with `w + L + m <= withdrawalDelay`, where `w` is its settlement window (the longest
///      `enqueueDeadline - acceptance time` it signs), `L` the longest time it may take to observe a
///      `WithdrawalRequested` event (confirmations and polling) while it keeps accepting, and `m > 0`
///      a margin for block-time skew. An SP that cannot observe the chain MUST stop accepting.
/// Then a mandate accepted before the SP observed a request at time `t` has
/// `enqueueDeadline <= t + L + w < unlockAt`, so it is settled before any of the requested funds can
/// leave; mandates accepted after it are covered by `balance - q`.
contract AEP2DebitWallet is EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The AEP2 `eip712` mandate (spec §3.1, §4.1.1). Field order and names are the type's.
    struct Mandate {
        address owner;
        address token;
        address payee;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
        bytes32 ref;
    }

    /// @notice One batch item: a mandate and the payer's signature, exactly as received (65 bytes
    /// `r ‖ s ‖ v`; nothing is normalised).
    struct Item {
        Mandate mandate;
        bytes signature;
    }

    /// @notice Why an item was skipped (or `None`: it settles / would settle). Each value names the
    /// spec reason code the off-chain verifier reports for the same mandate.
    enum SkipReason {
        None, //                       0: accepted
        AmountZero, //                 1: amount_zero
        DeadlineOutOfRange, //         2: uint_out_of_range (deadline > 2^53 - 1)
        SignatureLength, //            3: signature_length (not exactly 65 bytes)
        SignatureVInvalid, //          4: signature_v_invalid (v not 27 or 28)
        SignatureHighS, //             5: signature_high_s (s > n/2, including s >= n)
        SignatureScalarOutOfRange, //  6: signature_scalar_out_of_range (r = 0, r >= n, or s = 0)
        SignatureUnrecoverable, //     7: signature_unrecoverable (ecrecover yields no key)
        SignatureInvalid, //           8: signature_invalid (recovered signer is not owner)
        Expired, //                    9: expired (block.timestamp > deadline)
        NonceUsed, //                 10: nonce_reused (nonce of (owner, token) already settled)
        InsufficientFunds, //         11: insufficient_funds (balance < amount)
        LaneDepthExceeded, //         12: lane_depth_exceeded (a chain of 0 or more than 3 links)
        LaneValueOutOfRange, //       13: uint_out_of_range (a link's maxPayments, period, validFrom or validUntil > 2^53 - 1)
        LaneInvalid, //               14: lane_invalid (a link breaks a value rule of spec §18.1)
        LaneChainInvalid, //          15: lane_chain_invalid (a link's parent is not the previous link's id)
        LaneSignatureInvalid, //      16: lane_signature_invalid (a link's signature, for its grantor)
        LaneAttenuationInvalid, //    17: lane_attenuation_invalid (a sub-lane wider than its parent)
        LaneAgentMismatch, //         18: lane_agent_mismatch (the mandate's owner is not the lanes')
        LaneAssetMismatch, //         19: lane_asset_mismatch (the mandate's token is not the lanes')
        LaneNotYetValid, //           20: lane_not_yet_valid (block.timestamp < a link's validFrom)
        LaneExpired, //               21: lane_expired (deadline, or block.timestamp, after a link's validUntil)
        LanePaymentCapExceeded, //    22: lane_payment_cap_exceeded (amount > a link's perPayment)
        LanePayeeNotAllowed, //       23: lane_payee_not_allowed (payee not in a link's non-empty payees)
        LaneTotalExceeded, //         24: lane_total_exceeded (a link's spent + amount > its total)
        LanePaymentsExhausted //      25: lane_payments_exhausted (a link has had its maxPayments)
    }

    /// @notice A spending lane (spec §18.1): its fourteen members in definition order, as the
    /// `Lane` EIP-712 type of spec §18.2 has them.
    struct Lane {
        address owner;
        address agent;
        address token;
        uint256 perPayment;
        uint256 total;
        uint256 maxPayments;
        uint256 period;
        uint256 allowance;
        address[] payees;
        uint256 validFrom;
        uint256 validUntil;
        string purpose;
        bytes32 parent;
        bytes32 salt;
    }

    /// @notice A lane and its grantor's signature (65 bytes `r ‖ s ‖ v`, as received): the owner's
    /// for a root lane, the parent lane's agent's for a sub-lane.
    struct SignedLane {
        Lane lane;
        bytes signature;
    }

    /// @notice One lane batch item: a mandate, the leaf lane agent's signature of its
    /// `LaneMandate` digest (spec §18.4), and the chain of signed lanes, root first (spec §18.3).
    struct LaneItem {
        Mandate mandate;
        bytes signature;
        SignedLane[] lanes;
    }

    /// What has settled under a lane (by lane id), its sub-lanes included. `spent` is at most the
    /// lane's `total`; it is a uint192 so that both counters share one storage slot.
    struct LaneState {
        uint192 spent;
        uint64 payments;
    }

    struct Withdrawal {
        uint256 amount;
        uint64 unlockAt;
    }

    struct Payout {
        address token;
        address payee;
        uint256 amount;
        bytes32 slot;
    }

    /// @notice keccak256 of the `Mandate` type string of spec §4.1.1
    /// (`0x424644645718e4947e6272163756951857080a3d9ce5b05ceffa90a17603ff85`).
    bytes32 public constant MANDATE_TYPEHASH = keccak256(
        "Mandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref)"
    );

    /// @notice keccak256 of the `Lane` type string of spec §18.2.
    bytes32 public constant LANE_TYPEHASH = keccak256(
        "Lane(address owner,address agent,address token,uint256 perPayment,uint256 total,uint256 maxPayments,uint256 period,uint256 allowance,address[] payees,uint256 validFrom,uint256 validUntil,string purpose,bytes32 parent,bytes32 salt)"
    );

    /// @notice keccak256 of the `LaneMandate` type string of spec §18.4.
    bytes32 public constant LANE_MANDATE_TYPEHASH = keccak256(
        "LaneMandate(address owner,address token,address payee,uint256 amount,uint256 nonce,uint256 deadline,bytes32 ref,bytes32 lane)"
    );

    /// @notice The most links of a lane chain (spec §18.3).
    uint256 public constant MAX_LANE_DEPTH = 3;

    /// @notice The most payees a lane lists (spec §18.1).
    uint256 public constant MAX_LANE_PAYEES = 8;

    /// @notice The longest lane `purpose`, in bytes (spec §18.1).
    uint256 public constant MAX_PURPOSE_BYTES = 64;

    /// @notice The largest deadline a mandate may carry (2^53 - 1, spec §3.1).
    uint256 public constant MAX_DEADLINE = 2 ** 53 - 1;

    /// @notice The lower bound of `withdrawalDelay` (one hour). See the withdrawal rule above: the
    /// delay must also exceed every authorised SP's settlement window plus observation lag plus margin.
    uint256 public constant MIN_WITHDRAWAL_DELAY = 1 hours;

    /// @notice The upper bound of `withdrawalDelay` (one year): `unlockAt` is a uint64, and a delay
    /// that wrapped it would unlock at once while `withdrawalDelay()` promised payees a long wait.
    uint256 public constant MAX_WITHDRAWAL_DELAY = 365 days;

    /// secp256k1 group order n, and n / 2.
    uint256 private constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 private constant SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// Tag of the spec §8.5 nonce key: ASCII `AEP2/nonce/v1` and one zero byte.
    bytes14 private constant NONCE_KEY_TAG = hex"414550322f6e6f6e63652f763100";

    /// Transient-storage namespace of the per-batch payout index (xored into keccak(token, payee)).
    bytes32 private constant PAYOUT_INDEX_SEED = keccak256("AEP2DebitWallet.payoutIndex");

    /// @notice Seconds between a withdrawal request and the earliest `withdraw` (immutable).
    uint256 public immutable withdrawalDelay;

    /// @notice Whether an address may call `settle`.
    mapping(address sp => bool) public isSettlementProcessor;

    mapping(address owner => mapping(address token => uint256)) private _balances;
    mapping(address owner => mapping(address token => Withdrawal)) private _withdrawals;
    mapping(address owner => mapping(address token => mapping(uint256 word => uint256))) private _nonceBitmap;
    mapping(address payee => mapping(address token => uint256)) private _owed;
    mapping(bytes32 lane => LaneState) private _lanes;

    event Deposited(address indexed owner, address indexed token, uint256 amount);
    event WithdrawalRequested(address indexed owner, address indexed token, uint256 amount, uint64 unlockAt);
    event WithdrawalCancelled(address indexed owner, address indexed token, uint256 amount);
    /// @param requested the pending request's amount; `amount` is what was paid, `min(requested, balance)`.
    event Withdrawn(address indexed owner, address indexed token, uint256 requested, uint256 amount);
    event MandateSettled(
        bytes32 indexed digest, address indexed owner, address indexed payee, address token, uint256 amount, bytes32 ref
    );
    event MandateSkipped(bytes32 indexed digest, SkipReason reason);
    /// @notice A settled lane mandate debited `amount` from the lane `lane` (one event per link of
    /// its chain, root first, after its `MandateSettled`).
    event LaneDebited(bytes32 indexed lane, bytes32 indexed digest, uint256 amount);
    /// @param batchId chosen by the SP (e.g. its worker's batch id); `items = settled + skipped`.
    event BatchSettled(bytes32 indexed batchId, address indexed sp, uint256 items, uint256 settled, uint256 skipped);
    event PayoutDeferred(address indexed token, address indexed payee, uint256 amount);
    event PayoutClaimed(address indexed token, address indexed payee, uint256 amount);
    event SettlementProcessorSet(address indexed sp, bool authorised);

    error NotSettlementProcessor(address caller);
    error ZeroAmount();
    error WithdrawalDelayTooShort(uint256 delay, uint256 minimum);
    error WithdrawalDelayTooLong(uint256 delay, uint256 maximum);
    error InsufficientBalance(uint256 balance, uint256 amount);
    error NoPendingWithdrawal();
    error WithdrawalLocked(uint64 unlockAt);
    error NothingOwed();

    /// @param initialOwner administers the SP set (Ownable2Step).
    /// @param withdrawalDelay_ at least `MIN_WITHDRAWAL_DELAY`, at most `MAX_WITHDRAWAL_DELAY`, and larger
    /// than every SP's `w + L + m`.
    constructor(address initialOwner, uint256 withdrawalDelay_)
        EIP712("AEP2DebitWallet", "1")
        Ownable(initialOwner)
    {
        if (withdrawalDelay_ < MIN_WITHDRAWAL_DELAY) {
            revert WithdrawalDelayTooShort(withdrawalDelay_, MIN_WITHDRAWAL_DELAY);
        }
        if (withdrawalDelay_ > MAX_WITHDRAWAL_DELAY) {
            revert WithdrawalDelayTooLong(withdrawalDelay_, MAX_WITHDRAWAL_DELAY);
        }
        withdrawalDelay = withdrawalDelay_;
    }

    // ------------------------------------------------------------------ administration

    /// @notice Authorise or de-authorise a settlement processor.
    function setSettlementProcessor(address sp, bool authorised) external onlyOwner {
        isSettlementProcessor[sp] = authorised;
        emit SettlementProcessorSet(sp, authorised);
    }

    // ------------------------------------------------------------------ funds

    /// @notice Pull `amount` of `token` from the caller (who must have approved this contract) and
    /// credit the caller with what this contract actually received (fee-on-transfer tokens credit less).
    function deposit(address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        IERC20 t = IERC20(token);
        uint256 before = t.balanceOf(address(this));
        t.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = t.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();
        _balances[msg.sender][token] += received;
        emit Deposited(msg.sender, token, received);
    }

    /// @notice Announce a withdrawal of `amount` of `token`. Moves no funds (withdrawal rule 1): the
    /// balance stays debitable by settlement until `withdraw`. Replaces a pending request.
    function requestWithdrawal(address token, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = _balances[msg.sender][token];
        if (amount > balance) revert InsufficientBalance(balance, amount);
        uint64 unlockAt = uint64(block.timestamp + withdrawalDelay);
        _withdrawals[msg.sender][token] = Withdrawal(amount, unlockAt);
        emit WithdrawalRequested(msg.sender, token, amount, unlockAt);
    }

    /// @notice Cancel the caller's pending withdrawal request for `token`.
    function cancelWithdrawal(address token) external {
        Withdrawal memory w = _withdrawals[msg.sender][token];
        if (w.amount == 0) revert NoPendingWithdrawal();
        delete _withdrawals[msg.sender][token];
        emit WithdrawalCancelled(msg.sender, token, w.amount);
    }

    /// @notice Execute the caller's pending withdrawal once `unlockAt` has passed: pays
    /// `min(requested, balance)` to the caller (withdrawal rule 4) and clears the request.
    function withdraw(address token) external nonReentrant {
        Withdrawal memory w = _withdrawals[msg.sender][token];
        if (w.amount == 0) revert NoPendingWithdrawal();
        if (block.timestamp < w.unlockAt) revert WithdrawalLocked(w.unlockAt);
        delete _withdrawals[msg.sender][token];
        uint256 balance = _balances[msg.sender][token];
        uint256 amount = w.amount < balance ? w.amount : balance;
        unchecked {
            _balances[msg.sender][token] = balance - amount;
        }
        emit Withdrawn(msg.sender, token, w.amount, amount);
        if (amount != 0) IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @notice Claim payouts whose transfer failed during settlement (`PayoutDeferred`).
    function claimPayout(address token) external nonReentrant {
        uint256 amount = _owed[msg.sender][token];
        if (amount == 0) revert NothingOwed();
        delete _owed[msg.sender][token];
        emit PayoutClaimed(token, msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Settle a batch of mandates (authorised SPs only). Never reverts because of an item:
    /// each failing item is skipped with `MandateSkipped(digest, reason)`. Emits `MandateSettled` per
    /// settled item, one ERC-20 transfer per (token, payee), and `BatchSettled` at the end.
    /// @return settled the number of items settled.
    function settle(bytes32 batchId, Item[] calldata items) external nonReentrant returns (uint256 settled) {
        if (!isSettlementProcessor[msg.sender]) revert NotSettlementProcessor(msg.sender);
        uint256 n = items.length;
        Payout[] memory payouts = new Payout[](n);
        uint256 payoutCount;
        (settled, payoutCount) = _settleItems(items, payouts, 0);
        _payOut(payouts, payoutCount);
        emit BatchSettled(batchId, msg.sender, n, settled, n - settled);
    }

    /// @notice Settle one batch of plain items and lane items (authorised SPs only): the plain items
    /// first, as `settle` does, then the lane items in order, each checked as `verifyLaneMandate`
    /// says and, when it passes, debited from the owner's balance and counted against every lane of
    /// its chain (`LaneDebited` per link). Payouts are aggregated over both lists: one transfer per
    /// (token, payee), one `BatchSettled` with `items = items.length + laneItems.length`.
    /// @return settled the number of items (of both lists) settled.
    function settleLanes(bytes32 batchId, Item[] calldata items, LaneItem[] calldata laneItems)
        external
        nonReentrant
        returns (uint256 settled)
    {
        if (!isSettlementProcessor[msg.sender]) revert NotSettlementProcessor(msg.sender);
        uint256 n = items.length + laneItems.length;
        Payout[] memory payouts = new Payout[](n);
        uint256 payoutCount;
        (settled, payoutCount) = _settleItems(items, payouts, 0);
        bytes32 seed = PAYOUT_INDEX_SEED;
        for (uint256 i; i < laneItems.length; ++i) {
            LaneItem calldata it = laneItems[i];
            Mandate calldata m = it.mandate;
            (bytes32 digest, SkipReason reason, bytes32[] memory ids) = _verifyLane(m, it.signature, it.lanes);
            if (reason != SkipReason.None) {
                emit MandateSkipped(digest, reason);
                continue;
            }
            uint256 amount = m.amount;
            _debit(m, digest);
            // Effects on every link (`_verifyLane` checked `spent + amount <= total < 2^192`).
            for (uint256 j; j < ids.length; ++j) {
                LaneState storage st = _lanes[ids[j]];
                unchecked {
                    st.spent += uint192(amount);
                    st.payments += 1;
                }
                emit LaneDebited(ids[j], digest, amount);
            }
            unchecked {
                ++settled;
            }
            payoutCount = _addPayout(payouts, payoutCount, m.token, m.payee, amount, seed);
        }
        _payOut(payouts, payoutCount);
        emit BatchSettled(batchId, msg.sender, n, settled, n - settled);
    }

    /// The plain items of a batch: checks, effects and payout aggregation.
    function _settleItems(Item[] calldata items, Payout[] memory payouts, uint256 payoutCount)
        private
        returns (uint256 settled, uint256 count)
    {
        count = payoutCount;
        bytes32 seed = PAYOUT_INDEX_SEED;
        uint256 n = items.length;
        for (uint256 i; i < n; ++i) {
            Mandate calldata m = items[i].mandate;
            (bytes32 digest, SkipReason reason) = _verify(m, items[i].signature);
            if (reason != SkipReason.None) {
                emit MandateSkipped(digest, reason);
                continue;
            }
            _debit(m, digest);
            unchecked {
                ++settled;
            }
            count = _addPayout(payouts, count, m.token, m.payee, m.amount, seed);
        }
    }

    /// The effects of a settled mandate on the owner: its nonce bit and its balance (the checks
    /// guarantee the bit is clear and the balance suffices), and `MandateSettled`.
    function _debit(Mandate calldata m, bytes32 digest) private {
        address owner_ = m.owner;
        address token = m.token;
        uint256 amount = m.amount;
        uint256 nonce = m.nonce;
        _nonceBitmap[owner_][token][nonce >> 8] |= (uint256(1) << (nonce & 0xff));
        unchecked {
            _balances[owner_][token] -= amount;
        }
        emit MandateSettled(digest, owner_, m.payee, token, amount, m.ref);
    }

    /// Aggregates a payout per (token, payee) through a transient index (1-based).
    function _addPayout(
        Payout[] memory payouts,
        uint256 count,
        address token,
        address payee,
        uint256 amount,
        bytes32 seed
    ) private returns (uint256) {
        bytes32 slot;
        uint256 index;
        assembly ("memory-safe") {
            mstore(0x00, token)
            mstore(0x20, payee)
            slot := xor(keccak256(0x00, 0x40), seed)
            index := tload(slot)
        }
        if (index == 0) {
            payouts[count] = Payout(token, payee, amount, slot);
            unchecked {
                ++count;
            }
            assembly ("memory-safe") {
                tstore(slot, count)
            }
        } else {
            // Cannot overflow: the sum is at most the total of balances debited.
            unchecked {
                payouts[index - 1].amount += amount;
            }
        }
        return count;
    }

    /// Interactions: one transfer per (token, payee), after every state change.
    function _payOut(Payout[] memory payouts, uint256 payoutCount) private {
        for (uint256 j; j < payoutCount; ++j) {
            Payout memory p = payouts[j];
            bytes32 slot = p.slot;
            assembly ("memory-safe") {
                tstore(slot, 0)
            }
            if (!IERC20(p.token).trySafeTransfer(p.payee, p.amount)) {
                _owed[p.payee][p.token] += p.amount;
                emit PayoutDeferred(p.token, p.payee, p.amount);
            }
        }
    }

    // ------------------------------------------------------------------ views

    /// @notice The mandate's EIP-712 digest (the AEP2 mandate id), as `settle` computes it.
    function mandateDigest(Mandate calldata m) external view returns (bytes32) {
        return _digest(m);
    }

    /// @notice The EIP-712 domain separator of this deployment (`AEP2DebitWallet`, `1`, chainId, this).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice What `settle` would do with this item now: the digest and `None` if it would settle
    /// (an item alone in a batch), else the reason it would be skipped. Nothing is written.
    function verifyMandate(Mandate calldata m, bytes calldata signature)
        external
        view
        returns (bytes32 digest, SkipReason reason)
    {
        return _verify(m, signature);
    }

    /// @notice The spec §4.1.2 signature rules (2 to 6; rule 1's text encoding is off chain, its length
    /// part is checked here) for any digest and expected signer, e.g. a receipt. `None` if accepted.
    function checkSignature(bytes32 digest, bytes calldata signature, address signer)
        external
        pure
        returns (SkipReason)
    {
        return _checkSignature(digest, signature, signer);
    }

    /// @notice The id of a lane in this deployment (spec §18.2): the EIP-712 digest of its `Lane`
    /// struct, which its grantor signs.
    function laneId(Lane calldata lane) external view returns (bytes32) {
        return _laneId(lane);
    }

    /// @notice The digest (the mandate id) of a mandate under the lane whose id is `lane` (spec
    /// §18.4): the EIP-712 digest of `LaneMandate`, which the leaf lane's agent signs.
    function laneMandateDigest(Mandate calldata m, bytes32 lane) external view returns (bytes32) {
        return _laneMandateDigest(m, lane);
    }

    /// @notice What `settleLanes` would do with this lane item now (alone in a batch): the digest and
    /// `None` if it would settle, else the reason it would be skipped. Nothing is written.
    function verifyLaneMandate(Mandate calldata m, bytes calldata signature, SignedLane[] calldata lanes)
        external
        view
        returns (bytes32 digest, SkipReason reason)
    {
        (digest, reason,) = _verifyLane(m, signature, lanes);
    }

    /// @notice What has settled under the lane `lane` (by id), its sub-lanes included: the sum of
    /// the amounts and the number of mandates.
    function laneSpent(bytes32 lane) external view returns (uint256 spent, uint256 payments) {
        LaneState memory st = _lanes[lane];
        return (st.spent, st.payments);
    }

    /// @notice The owner's debitable balance of `token` (including any amount requested for withdrawal).
    function balanceOf(address owner_, address token) external view returns (uint256) {
        return _balances[owner_][token];
    }

    /// @notice The pending withdrawal request (`amount == 0`: none).
    function pendingWithdrawal(address owner_, address token) external view returns (uint256 amount, uint64 unlockAt) {
        Withdrawal memory w = _withdrawals[owner_][token];
        return (w.amount, w.unlockAt);
    }

    /// @notice Whether a mandate with this (owner, token, nonce) has settled here.
    function nonceUsed(address owner_, address token, uint256 nonce) external view returns (bool) {
        return _nonceUsed(owner_, token, nonce);
    }

    /// @notice The spec §8.5 nonce key of (owner, token, nonce) in this deployment:
    /// `sha256(tag ‖ 0x01 ‖ uint64 chainId ‖ this ‖ owner ‖ token ‖ nonce)` (115 bytes).
    function nonceKey(address owner_, address token, uint256 nonce) external view returns (bytes32) {
        return sha256(
            abi.encodePacked(NONCE_KEY_TAG, bytes1(0x01), uint64(block.chainid), address(this), owner_, token, nonce)
        );
    }

    /// @notice Payouts owed to `payee` in `token` after a failed transfer.
    function owed(address payee, address token) external view returns (uint256) {
        return _owed[payee][token];
    }

    // ------------------------------------------------------------------ internals

    function _digest(Mandate calldata m) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(MANDATE_TYPEHASH, m.owner, m.token, m.payee, m.amount, m.nonce, m.deadline, m.ref))
        );
    }

    function _nonceUsed(address owner_, address token, uint256 nonce) private view returns (bool) {
        return (_nonceBitmap[owner_][token][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// The checks of one item, in the documented order.
    function _verify(Mandate calldata m, bytes calldata signature)
        private
        view
        returns (bytes32 digest, SkipReason reason)
    {
        digest = _digest(m);
        if (m.amount == 0) return (digest, SkipReason.AmountZero);
        if (m.deadline > MAX_DEADLINE) return (digest, SkipReason.DeadlineOutOfRange);
        reason = _checkSignature(digest, signature, m.owner);
        if (reason != SkipReason.None) return (digest, reason);
        if (block.timestamp > m.deadline) return (digest, SkipReason.Expired);
        if (_nonceUsed(m.owner, m.token, m.nonce)) return (digest, SkipReason.NonceUsed);
        if (_balances[m.owner][m.token] < m.amount) return (digest, SkipReason.InsufficientFunds);
        return (digest, SkipReason.None);
    }

    /// Spec §4.1.2, in its order. The signature bytes are taken as received: no normalisation of v,
    /// no expansion of 64-byte compact signatures, no flipping of high s. The acceptance set equals
    /// OpenZeppelin 5 `ECDSA.recover(bytes32, bytes)` followed by a comparison with `signer`.
    function _checkSignature(bytes32 digest, bytes calldata signature, address signer)
        private
        pure
        returns (SkipReason)
    {
        // Rule 1 (length): exactly 65 bytes r ‖ s ‖ v.
        if (signature.length != 65) return SkipReason.SignatureLength;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        // Rule 2: v is 27 or 28 (0/1 and EIP-155 values are rejected, not mapped).
        if (v != 27 && v != 28) return SkipReason.SignatureVInvalid;
        // Rule 3: s <= n/2 (this includes every s >= n).
        if (uint256(s) > SECP256K1_HALF_N) return SkipReason.SignatureHighS;
        // Rule 4: 1 <= r < n and s != 0.
        if (r == 0 || uint256(r) >= SECP256K1_N || s == 0) return SkipReason.SignatureScalarOutOfRange;
        // Rule 5: recovery yields a key (ecrecover returns no address: no point with x = r, or Q at infinity).
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        if (err != ECDSA.RecoverError.NoError) return SkipReason.SignatureUnrecoverable;
        // Rule 6: the recovered address equals the expected signer (20 bytes).
        if (recovered != signer) return SkipReason.SignatureInvalid;
        return SkipReason.None;
    }

    // ------------------------------------------------------------------ lanes

    function _laneId(Lane calldata l) private view returns (bytes32) {
        bytes32 payeesHash = keccak256(abi.encodePacked(l.payees));
        bytes32 purposeHash = keccak256(bytes(l.purpose));
        bytes32 typehash = LANE_TYPEHASH;
        bytes32 structHash;
        // The struct's head words as encoded: owner .. allowance (8), payees (offset), validFrom,
        // validUntil, purpose (offset), parent, salt. Address words are clean: reading them
        // through the ABI decoder (which every check does) reverts on dirty bits.
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            calldatacopy(add(p, 0x20), l, 0x100)
            mstore(add(p, 0x120), payeesHash)
            calldatacopy(add(p, 0x140), add(l, 0x120), 0x40)
            mstore(add(p, 0x180), purposeHash)
            calldatacopy(add(p, 0x1a0), add(l, 0x180), 0x40)
            structHash := keccak256(p, 0x1e0)
        }
        return _hashTypedDataV4(structHash);
    }

    function _laneMandateDigest(Mandate calldata m, bytes32 lane) private view returns (bytes32) {
        bytes32 typehash = LANE_MANDATE_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typehash)
            calldatacopy(add(p, 0x20), m, 0xe0)
            mstore(add(p, 0x100), lane)
            structHash := keccak256(p, 0x120)
        }
        return _hashTypedDataV4(structHash);
    }

    /// The checks of one lane item, in the order of spec §18.8 (the off-chain order of §18.6, then
    /// the state). Returns the digest (under the last link's id; zero for an empty chain) and the
    /// ids of the links.
    function _verifyLane(Mandate calldata m, bytes calldata signature, SignedLane[] calldata links)
        private
        view
        returns (bytes32 digest, SkipReason reason, bytes32[] memory ids)
    {
        uint256 n = links.length;
        ids = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = _laneId(links[i].lane);
        }
        digest = _laneMandateDigest(m, n == 0 ? bytes32(0) : ids[n - 1]);
        // Schema stage: the mandate's values, the chain's length, each link's values, root first.
        if (m.amount == 0) return (digest, SkipReason.AmountZero, ids);
        if (m.deadline > MAX_DEADLINE) return (digest, SkipReason.DeadlineOutOfRange, ids);
        if (n == 0 || n > MAX_LANE_DEPTH) return (digest, SkipReason.LaneDepthExceeded, ids);
        for (uint256 i; i < n; ++i) {
            reason = _laneValues(links[i].lane);
            if (reason != SkipReason.None) return (digest, reason, ids);
        }
        // Signature stage: each link's parent and grantor signature, root first; then the mandate's.
        for (uint256 i; i < n; ++i) {
            SignedLane calldata link = links[i];
            if (link.lane.parent != (i == 0 ? bytes32(0) : ids[i - 1])) {
                return (digest, SkipReason.LaneChainInvalid, ids);
            }
            address grantor = i == 0 ? link.lane.owner : links[i - 1].lane.agent;
            if (_checkSignature(ids[i], link.signature, grantor) != SkipReason.None) {
                return (digest, SkipReason.LaneSignatureInvalid, ids);
            }
        }
        reason = _checkSignature(digest, signature, links[n - 1].lane.agent);
        if (reason != SkipReason.None) return (digest, reason, ids);
        // Policy stage.
        if (block.timestamp > m.deadline) return (digest, SkipReason.Expired, ids);
        reason = _lanePolicy(m, links);
        if (reason != SkipReason.None) return (digest, reason, ids);
        // State: the nonce, then every link's counters, then the funds.
        if (_nonceUsed(m.owner, m.token, m.nonce)) return (digest, SkipReason.NonceUsed, ids);
        uint256 amount = m.amount;
        for (uint256 i; i < n; ++i) {
            LaneState memory st = _lanes[ids[i]];
            uint256 spent = st.spent;
            if (amount > links[i].lane.total - spent || amount > type(uint192).max - spent) {
                return (digest, SkipReason.LaneTotalExceeded, ids);
            }
        }
        for (uint256 i; i < n; ++i) {
            uint256 maxPayments = links[i].lane.maxPayments;
            if (maxPayments != 0 && _lanes[ids[i]].payments >= maxPayments) {
                return (digest, SkipReason.LanePaymentsExhausted, ids);
            }
        }
        if (_balances[m.owner][m.token] < amount) return (digest, SkipReason.InsufficientFunds, ids);
        return (digest, SkipReason.None, ids);
    }

    /// A link's values (spec §18.1): the schema-stage range rules in member order, then the value
    /// rules of the table (`lane_invalid`).
    function _laneValues(Lane calldata l) private pure returns (SkipReason) {
        if (l.perPayment == 0 || l.total == 0) return SkipReason.AmountZero;
        if (l.maxPayments > MAX_DEADLINE || l.period > MAX_DEADLINE) return SkipReason.LaneValueOutOfRange;
        if (l.validFrom > MAX_DEADLINE || l.validUntil > MAX_DEADLINE) return SkipReason.LaneValueOutOfRange;
        if ((l.period == 0) != (l.allowance == 0)) return SkipReason.LaneInvalid;
        address[] calldata payees = l.payees;
        uint256 k = payees.length;
        if (k > MAX_LANE_PAYEES) return SkipReason.LaneInvalid;
        for (uint256 i = 1; i < k; ++i) {
            for (uint256 j; j < i; ++j) {
                if (payees[i] == payees[j]) return SkipReason.LaneInvalid;
            }
        }
        if (l.validUntil < l.validFrom) return SkipReason.LaneInvalid;
        if (!_purposeValid(bytes(l.purpose))) return SkipReason.LaneInvalid;
        return SkipReason.None;
    }

    /// At most 64 bytes of well-formed UTF-8 (as every JSON string is) without a control character
    /// (U+0000-U+001F, U+007F-U+009F), `"` or `\`.
    function _purposeValid(bytes calldata p) private pure returns (bool) {
        uint256 n = p.length;
        if (n > MAX_PURPOSE_BYTES) return false;
        uint256 i;
        while (i < n) {
            uint8 c = uint8(p[i]);
            if (c < 0x80) {
                if (c < 0x20 || c == 0x7f || c == 0x22 || c == 0x5c) return false;
                ++i;
                continue;
            }
            uint256 len;
            uint8 lo = 0x80;
            uint8 hi = 0xbf;
            if (c >= 0xc2 && c <= 0xdf) {
                len = 2;
                if (c == 0xc2) lo = 0xa0; // U+0080-U+009F are controls
            } else if (c >= 0xe0 && c <= 0xef) {
                len = 3;
                if (c == 0xe0) lo = 0xa0; // no overlong form
                if (c == 0xed) hi = 0x9f; // no surrogate
            } else if (c >= 0xf0 && c <= 0xf4) {
                len = 4;
                if (c == 0xf0) lo = 0x90; // no overlong form
                if (c == 0xf4) hi = 0x8f; // nothing above U+10FFFF
            } else {
                return false;
            }
            if (i + len > n) return false;
            uint8 c1 = uint8(p[i + 1]);
            if (c1 < lo || c1 > hi) return false;
            for (uint256 j = 2; j < len; ++j) {
                uint8 cj = uint8(p[i + j]);
                if (cj < 0x80 || cj > 0xbf) return false;
            }
            i += len;
        }
        return true;
    }

    /// The policy rules of spec §18.6 after `expired`, in its order (1 to 6).
    function _lanePolicy(Mandate calldata m, SignedLane[] calldata links) private view returns (SkipReason) {
        uint256 n = links.length;
        for (uint256 i = 1; i < n; ++i) {
            if (!_within(links[i].lane, links[i - 1].lane)) return SkipReason.LaneAttenuationInvalid;
        }
        Lane calldata root = links[0].lane;
        if (m.owner != root.owner) return SkipReason.LaneAgentMismatch;
        if (m.token != root.token) return SkipReason.LaneAssetMismatch;
        for (uint256 i; i < n; ++i) {
            if (block.timestamp < links[i].lane.validFrom) return SkipReason.LaneNotYetValid;
        }
        // `block.timestamp <= deadline` holds here, so a deadline within every link's validUntil
        // also puts the block within it.
        for (uint256 i; i < n; ++i) {
            if (m.deadline > links[i].lane.validUntil) return SkipReason.LaneExpired;
        }
        for (uint256 i; i < n; ++i) {
            if (m.amount > links[i].lane.perPayment) return SkipReason.LanePaymentCapExceeded;
        }
        for (uint256 i; i < n; ++i) {
            address[] calldata payees = links[i].lane.payees;
            if (payees.length != 0 && !_contains(payees, m.payee)) return SkipReason.LanePayeeNotAllowed;
        }
        return SkipReason.None;
    }

    /// Whether the sub-lane `c` is no wider than its parent `p` (spec §18.3, rules 1 to 6).
    function _within(Lane calldata c, Lane calldata p) private pure returns (bool) {
        if (c.owner != p.owner || c.token != p.token) return false;
        if (c.perPayment > p.perPayment || c.total > p.total) return false;
        if (p.maxPayments != 0 && (c.maxPayments == 0 || c.maxPayments > p.maxPayments)) return false;
        if (p.period != 0 && (c.period != p.period || c.allowance > p.allowance)) return false;
        address[] calldata pp = p.payees;
        if (pp.length != 0) {
            address[] calldata cp = c.payees;
            if (cp.length == 0) return false;
            for (uint256 i; i < cp.length; ++i) {
                if (!_contains(pp, cp[i])) return false;
            }
        }
        return c.validFrom >= p.validFrom && c.validUntil <= p.validUntil;
    }

    function _contains(address[] calldata list, address a) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }
}
