//! The AEP2 binding of A2A (`spec/aep2.md#binding-a2a`). Being written.
