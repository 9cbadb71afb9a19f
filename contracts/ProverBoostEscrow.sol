// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ProverBoostEscrow
/// @notice Holds prover collateral and sequencer block rewards for the Prover Boost market.
///
/// Every wei the contract holds is in exactly one of four buckets:
///   - free:    a depositor's collateral that backs new bids and may be asked back;
///   - locked:  a depositor's collateral bonded to one block the depositor won;
///   - pending: collateral asked back, paid out after WITHDRAWAL_DELAY;
///   - rewards: block rewards funded by sequencers and not yet settled or refunded.
/// So address(this).balance == sum(free) + sum(locked) + sum(pending) + sum(unsettled rewards).
///
/// Money leaves the contract in only three ways: a completed withdrawal (to the depositor), the
/// burned part of a slash and a penalty's burn (both to address(0)). Rewards, refunds and the sequencer's share of a slash
/// are credited to free balances inside the escrow, so no recipient can block a settlement.
contract ProverBoostEscrow {
    // ---------------------------------------------------------------- errors

    error Unauthorized(address caller);
    error ZeroAddress();
    error ZeroAmount();
    error Reentrancy();
    error InvalidSlashBps(uint256 bps);
    error InsufficientFreeBalance(address account, uint256 available, uint256 requested);
    error NoPendingWithdrawal(address account);
    error WithdrawalNotReady(address account, uint256 readyAt, uint256 nowTs);
    error TransferFailed(address to, uint256 amount);
    error RewardAlreadyFunded(uint256 blockNumber);
    error BlockNotFunded(uint256 blockNumber);
    error BlockClosed(uint256 blockNumber);
    error BondAlreadyLocked(uint256 blockNumber);
    error NoBondLocked(uint256 blockNumber);
    error LengthMismatch(uint256 recipients, uint256 amounts);
    error SplitMismatch(uint256 reward, uint256 sum);
    error PenaltyAlreadyApplied(bytes32 ref);

    // ---------------------------------------------------------------- events

    event Deposited(address indexed account, address indexed from, uint256 amount);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 pending, uint256 readyAt);
    event WithdrawalCancelled(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event RewardFunded(uint256 indexed blockNumber, address indexed sequencer, uint256 amount);
    event BondLocked(uint256 indexed blockNumber, address indexed prover, uint256 amount);
    event BondReleased(uint256 indexed blockNumber, address indexed prover, uint256 amount);
    event BondSlashed(
        uint256 indexed blockNumber,
        address indexed prover,
        address indexed sequencer,
        uint256 amount,
        uint256 toSequencer,
        uint256 burned
    );
    event RewardPaid(uint256 indexed blockNumber, address indexed recipient, uint256 amount);
    event BlockSettled(uint256 indexed blockNumber, uint256 reward, uint256 recipients);
    event RewardRefunded(uint256 indexed blockNumber, address indexed sequencer, uint256 amount);
    /// @notice A penalty `ref` burned `burned` of `prover`'s free balance; `requested` is what the
    /// settler asked for (burned is less only when the free balance was).
    event Penalized(address indexed prover, bytes32 indexed ref, uint256 requested, uint256 burned);
    event SettlerChanged(address indexed previousSettler, address indexed newSettler);
    event SequencerSet(address indexed sequencer, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    // ---------------------------------------------------------------- state

    /// @notice None: never funded. Funded: reward held, open for a bond and settlement.
    /// Settled: reward paid out (final). Refunded: reward returned to the sequencer (final).
    enum BlockState {
        None,
        Funded,
        Settled,
        Refunded
    }

    struct Block {
        BlockState state;
        address sequencer;
        uint256 reward;
        address prover;
        uint256 bond;
    }

    struct Account {
        uint256 free;
        uint256 locked;
        uint256 pending;
        uint256 readyAt;
    }

    uint256 public constant BPS = 10_000;
    /// @notice Seconds between a withdrawal request and the moment it can be completed.
    uint256 public immutable WITHDRAWAL_DELAY;
    /// @notice Share of a slashed bond (in basis points) credited to the block's sequencer; the
    /// rest is burned (sent to address(0)).
    uint256 public immutable SLASH_TO_SEQUENCER_BPS;

    address public owner;
    address public settler;
    /// @notice Addresses the owner allows to fund block rewards. Without this list anyone could
    /// fund a block number first and so keep its real sequencer from funding it.
    mapping(address => bool) public isSequencer;
    /// @notice Wei burned by slashes and penalties so far (sent to address(0)).
    uint256 public totalBurned;
    /// @notice Penalty ids already applied: a penalty burns at most once, however often it is sent.
    mapping(bytes32 => bool) public penaltyApplied;
    /// @notice Sum of funded rewards not yet settled or refunded.
    uint256 public totalUnsettledRewards;

    mapping(address => Account) private accounts;
    mapping(uint256 => Block) private blocks;

    uint256 private entered = 1;

    constructor(address settler_, uint256 withdrawalDelay, uint256 slashToSequencerBps) {
        if (settler_ == address(0)) revert ZeroAddress();
        if (slashToSequencerBps > BPS) revert InvalidSlashBps(slashToSequencerBps);
        owner = msg.sender;
        settler = settler_;
        WITHDRAWAL_DELAY = withdrawalDelay;
        SLASH_TO_SEQUENCER_BPS = slashToSequencerBps;
        emit OwnershipTransferred(address(0), msg.sender);
        emit SettlerChanged(address(0), settler_);
    }

    // ---------------------------------------------------------------- modifiers

    /// @dev One guard for every state-changing entry point: while ETH is being sent out, no
    /// function that changes state can be entered again.
    modifier nonReentrant() {
        if (entered != 1) revert Reentrancy();
        entered = 2;
        _;
        entered = 1;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert Unauthorized(msg.sender);
        _;
    }

    modifier onlySettler() {
        if (msg.sender != settler) revert Unauthorized(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- administration

    function setSettler(address newSettler) external onlyOwner nonReentrant {
        if (newSettler == address(0)) revert ZeroAddress();
        emit SettlerChanged(settler, newSettler);
        settler = newSettler;
    }

    /// @notice Allows or stops `sequencer` funding new blocks. Blocks it already funded are not
    /// affected: they still settle, and refunds and slash shares still reach it.
    function setSequencer(address sequencer, bool allowed) external onlyOwner nonReentrant {
        if (sequencer == address(0)) revert ZeroAddress();
        isSequencer[sequencer] = allowed;
        emit SequencerSet(sequencer, allowed);
    }

    function transferOwnership(address newOwner) external onlyOwner nonReentrant {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ---------------------------------------------------------------- collateral

    /// @notice Adds msg.value to the caller's free balance.
    function deposit() external payable nonReentrant {
        _deposit(msg.sender);
    }

    /// @notice Adds msg.value to `account`'s free balance (e.g. an operator funding its prover key).
    function depositFor(address account) external payable nonReentrant {
        if (account == address(0)) revert ZeroAddress();
        _deposit(account);
    }

    function _deposit(address account) private {
        if (msg.value == 0) revert ZeroAmount();
        accounts[account].free += msg.value;
        emit Deposited(account, msg.sender, msg.value);
    }

    /// @notice Moves `amount` of the caller's free balance to pending; it can be withdrawn
    /// WITHDRAWAL_DELAY seconds after the latest request. Locked funds cannot be requested.
    function requestWithdrawal(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        if (amount > a.free) revert InsufficientFreeBalance(msg.sender, a.free, amount);
        a.free -= amount;
        a.pending += amount;
        a.readyAt = block.timestamp + WITHDRAWAL_DELAY;
        emit WithdrawalRequested(msg.sender, amount, a.pending, a.readyAt);
    }

    /// @notice Returns the whole pending amount to the caller's free balance.
    function cancelWithdrawal() external nonReentrant {
        Account storage a = accounts[msg.sender];
        uint256 amount = a.pending;
        if (amount == 0) revert NoPendingWithdrawal(msg.sender);
        a.pending = 0;
        a.readyAt = 0;
        a.free += amount;
        emit WithdrawalCancelled(msg.sender, amount);
    }

    /// @notice Pays the caller's whole pending amount once its delay has passed.
    function completeWithdrawal() external nonReentrant {
        Account storage a = accounts[msg.sender];
        uint256 amount = a.pending;
        if (amount == 0) revert NoPendingWithdrawal(msg.sender);
        if (block.timestamp < a.readyAt) revert WithdrawalNotReady(msg.sender, a.readyAt, block.timestamp);
        a.pending = 0;
        a.readyAt = 0;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ---------------------------------------------------------------- rewards and bonds

    /// @notice A registered sequencer escrows a block's reward when it opens the block's auction.
    /// A block is funded once; the funder is its sequencer. A zero reward is allowed.
    function fundReward(uint256 blockNumber) external payable nonReentrant {
        if (!isSequencer[msg.sender]) revert Unauthorized(msg.sender);
        Block storage b = blocks[blockNumber];
        if (b.state != BlockState.None) revert RewardAlreadyFunded(blockNumber);
        b.state = BlockState.Funded;
        b.sequencer = msg.sender;
        b.reward = msg.value;
        totalUnsettledRewards += msg.value;
        emit RewardFunded(blockNumber, msg.sender, msg.value);
    }

    /// @notice Settler: bonds `amount` of the winner's free balance to the block at auction close.
    function lockBond(uint256 blockNumber, address prover, uint256 amount) external onlySettler nonReentrant {
        Block storage b = _openBlock(blockNumber);
        if (b.prover != address(0)) revert BondAlreadyLocked(blockNumber);
        if (prover == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[prover];
        if (amount > a.free) revert InsufficientFreeBalance(prover, a.free, amount);
        a.free -= amount;
        a.locked += amount;
        b.prover = prover;
        b.bond = amount;
        emit BondLocked(blockNumber, prover, amount);
    }

    /// @notice Settler: returns the block's bond to its prover's free balance (proof delivered).
    function releaseBond(uint256 blockNumber) external onlySettler nonReentrant {
        Block storage b = _openBlock(blockNumber);
        if (b.prover == address(0)) revert NoBondLocked(blockNumber);
        _release(blockNumber, b);
    }

    /// @notice Settler: the prover missed its deadline. SLASH_TO_SEQUENCER_BPS of the bond is
    /// credited to the block's sequencer, the rest is burned. The block stays funded, so it can
    /// be bonded to another winner, settled or refunded.
    function slashBond(uint256 blockNumber) external onlySettler nonReentrant {
        Block storage b = _openBlock(blockNumber);
        address prover = b.prover;
        if (prover == address(0)) revert NoBondLocked(blockNumber);
        uint256 amount = b.bond;
        uint256 toSequencer = (amount * SLASH_TO_SEQUENCER_BPS) / BPS;
        uint256 burned = amount - toSequencer;
        accounts[prover].locked -= amount;
        b.prover = address(0);
        b.bond = 0;
        accounts[b.sequencer].free += toSequencer;
        totalBurned += burned;
        emit BondSlashed(blockNumber, prover, b.sequencer, amount, toSequencer, burned);
        if (burned > 0) _send(address(0), burned);
    }

    /// @notice Settler: pays a proven block's reward, split among `recipients`, and releases the
    /// block's bond if one is still locked. The amounts must sum to the funded reward exactly.
    /// A block settles at most once.
    function settle(uint256 blockNumber, address[] calldata recipients, uint256[] calldata amounts)
        external
        onlySettler
        nonReentrant
    {
        Block storage b = _openBlock(blockNumber);
        if (recipients.length != amounts.length) revert LengthMismatch(recipients.length, amounts.length);
        uint256 sum = 0;
        for (uint256 i = 0; i < amounts.length; i++) {
            sum += amounts[i];
        }
        if (sum != b.reward) revert SplitMismatch(b.reward, sum);
        if (b.prover != address(0)) _release(blockNumber, b);
        b.state = BlockState.Settled;
        totalUnsettledRewards -= b.reward;
        for (uint256 i = 0; i < recipients.length; i++) {
            address to = recipients[i];
            if (to == address(0)) revert ZeroAddress();
            accounts[to].free += amounts[i];
            emit RewardPaid(blockNumber, to, amounts[i]);
        }
        emit BlockSettled(blockNumber, b.reward, recipients.length);
    }

    /// @notice Settler: the block will not be proven through the market (no winner, or the
    /// auction was abandoned). The reward is credited back to the sequencer's free balance and
    /// a bond still locked is released. Final, like settle.
    function refundReward(uint256 blockNumber) external onlySettler nonReentrant {
        Block storage b = _openBlock(blockNumber);
        if (b.prover != address(0)) _release(blockNumber, b);
        b.state = BlockState.Refunded;
        totalUnsettledRewards -= b.reward;
        accounts[b.sequencer].free += b.reward;
        emit RewardRefunded(blockNumber, b.sequencer, b.reward);
    }

    /// @notice Settler: an off-chain penalty (a withheld or invalid proof) burns up to `amount` of
    /// `prover`'s free balance: what there is, never locked or pending funds. `ref` identifies
    /// the penalty; a second call with the same `ref` reverts, so a resent transaction never
    /// burns twice. A penalty that finds nothing free still marks `ref` as applied.
    function penalize(address prover, uint256 amount, bytes32 ref) external onlySettler nonReentrant {
        if (prover == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (penaltyApplied[ref]) revert PenaltyAlreadyApplied(ref);
        penaltyApplied[ref] = true;
        Account storage a = accounts[prover];
        uint256 burned = amount < a.free ? amount : a.free;
        a.free -= burned;
        totalBurned += burned;
        emit Penalized(prover, ref, amount, burned);
        if (burned > 0) _send(address(0), burned);
    }

    // ---------------------------------------------------------------- views

    function balanceOf(address account)
        external
        view
        returns (uint256 free, uint256 locked, uint256 pending, uint256 withdrawableAt)
    {
        Account storage a = accounts[account];
        return (a.free, a.locked, a.pending, a.readyAt);
    }

    function freeBalance(address account) external view returns (uint256) {
        return accounts[account].free;
    }

    function lockedBalance(address account) external view returns (uint256) {
        return accounts[account].locked;
    }

    function pendingWithdrawal(address account) external view returns (uint256 amount, uint256 readyAt) {
        Account storage a = accounts[account];
        return (a.pending, a.readyAt);
    }

    function blockInfo(uint256 blockNumber)
        external
        view
        returns (BlockState state, address sequencer, uint256 reward, address prover, uint256 bond)
    {
        Block storage b = blocks[blockNumber];
        return (b.state, b.sequencer, b.reward, b.prover, b.bond);
    }

    // ---------------------------------------------------------------- internals

    function _openBlock(uint256 blockNumber) private view returns (Block storage b) {
        b = blocks[blockNumber];
        if (b.state == BlockState.None) revert BlockNotFunded(blockNumber);
        if (b.state != BlockState.Funded) revert BlockClosed(blockNumber);
    }

    function _release(uint256 blockNumber, Block storage b) private {
        address prover = b.prover;
        uint256 amount = b.bond;
        Account storage a = accounts[prover];
        a.locked -= amount;
        a.free += amount;
        b.prover = address(0);
        b.bond = 0;
        emit BondReleased(blockNumber, prover, amount);
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
