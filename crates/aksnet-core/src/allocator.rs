//! The IPAM allocator (pure state machine). See crates/aksnet-ipam for its store.
