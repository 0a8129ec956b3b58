//! aksnet-agent (skeleton; see docs/architecture.md)
