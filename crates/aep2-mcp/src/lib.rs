//! The AEP2 binding of MCP (`spec/aep2.md#binding-mcp`). Being written.
