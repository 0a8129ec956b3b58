//! aksnet-cniproto (skeleton; see docs/architecture.md)
