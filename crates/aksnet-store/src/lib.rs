//! aksnet-store (skeleton; see docs/architecture.md)
