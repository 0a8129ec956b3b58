//! aksnet-ipam (skeleton; see docs/architecture.md)
