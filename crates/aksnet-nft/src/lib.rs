//! aksnet-nft (skeleton; see docs/architecture.md)
