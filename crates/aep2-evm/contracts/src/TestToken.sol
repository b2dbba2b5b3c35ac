// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken: an ERC-20 for AEP2 tests and the demo. NOT FOR VALUE.
/// @notice `mint` is public and unrestricted: anyone can mint any amount to anyone. That is the point
/// of a test token (tests and the demo fund payers without a faucet); never deploy it as a real asset.
contract TestToken is ERC20 {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Mint `amount` to `to`. Unrestricted (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
