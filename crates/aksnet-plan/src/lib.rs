//! aksnet-plan (skeleton; see docs/architecture.md)
