//! aksnet-netlink (skeleton; see docs/architecture.md)
